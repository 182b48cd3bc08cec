// metropolis_hastings through the real binary: on a model built outside the project against the frozen
// ABI 2.0 headers (tests/out_of_tree_abi20: binary units, energy functions only, no declared shape or
// domain) passed with --plugin-path, and on the in-tree rbm (parameters from a load stage), each checked
// against its exact distribution; and every bad key with its exact message and exit status 2.
#include "ansatz/tensor.hpp"
#include "outputs/npy.hpp"
#include "support/cli.hpp"
#include "support/statistics.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

using ansatz::test::ChiSquare;

constexpr int kUnits = 6;
constexpr int kStates = 1 << kUnits;

// The couplings J_ij (i < j, row by row) and fields of the out-of-tree model: mixed signs, |J| <= 0.9.
const std::vector<double> kCouplings = { 0.9, -0.6, 0.4, 0.0,  -0.8, 0.7,   -0.3, 0.5,
                                         0.2, -0.9, 0.6, -0.2, 0.45, -0.55, 0.35 };
const std::vector<double> kFields = { -0.5, 0.4, -0.2, 0.6, -0.7, 0.1 };

std::string yaml_list(const std::vector<double>& values)
{
    std::string s = "[";
    for (size_t i = 0; i < values.size(); ++i)
    {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%s%g", i ? ", " : "", values[i]);
        s += buffer;
    }
    return s + "]";
}

// p(v) = exp(-E(v)) / Z of the fully visible model, with the float32 values it holds (bit i of k = v_i).
std::vector<double> fvbm_distribution()
{
    std::vector<double> p(kStates);
    for (int k = 0; k < kStates; ++k)
    {
        double e = 0;
        int pair = 0;
        for (int i = 0; i < kUnits; ++i)
        {
            const double vi = (k >> i) & 1;
            e -= static_cast<float>(kFields[i]) * vi;
            for (int j = i + 1; j < kUnits; ++j, ++pair)
                e -= static_cast<float>(kCouplings[pair]) * vi * ((k >> j) & 1);
        }
        p[k] = std::exp(-e);
    }
    const double z = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p)
        x /= z;
    return p;
}

// Total variation between p and the law after `sweeps` sweeps of exact random-scan Metropolis flips.
double tv_after_sweeps(const std::vector<double>& p, int sweeps)
{
    std::vector<double> dist(kStates, 1.0 / kStates);
    for (int t = 0; t < sweeps * kUnits; ++t)
    {
        std::vector<double> next(kStates, 0.0);
        for (int k = 0; k < kStates; ++k)
            for (int i = 0; i < kUnits; ++i)
            {
                const int flipped = k ^ (1 << i);
                const double accept = std::min(1.0, p[flipped] / p[k]);
                next[flipped] += dist[k] / kUnits * accept;
                next[k] += dist[k] / kUnits * (1 - accept);
            }
        dist = next;
    }
    double tv = 0;
    for (int k = 0; k < kStates; ++k)
        tv += 0.5 * std::abs(dist[k] - p[k]);
    return tv;
}

// The counts per state of binary rows {n, 6} in a .npy file.
std::vector<int64_t> state_counts(const fs::path& file, int64_t n)
{
    ansatz::engine::NpyArray a = ansatz::engine::read_npy(file);
    REQUIRE(a.dtype == ANSATZ_DTYPE_FLOAT32);
    int64_t count = 1;
    for (int64_t e : a.shape)
        count *= e;
    REQUIRE(a.shape[0] == n);
    REQUIRE(count == n * kUnits);
    const float* values = ansatz::f32(a.view());
    std::vector<int64_t> counts(kStates, 0);
    for (int64_t r = 0; r < n; ++r)
    {
        int k = 0;
        for (int i = 0; i < kUnits; ++i)
        {
            const float x = values[r * kUnits + i];
            REQUIRE((x == 0.0f || x == 1.0f));
            k |= (x == 1.0f) << i;
        }
        ++counts[static_cast<size_t>(k)];
    }
    return counts;
}

ChiSquare chi_square(const std::vector<double>& p, const std::vector<int64_t>& counts, int64_t n)
{
    const ChiSquare out = ansatz::test::chi_square(p, counts, n);
    REQUIRE_FALSE(out.pooled_remainder);
    return out;
}

// An IDX file of `count` unsigned-byte images of rows x cols (all zero).
std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols)
{
    std::string s("\x00\x00\x08\x03", 4);
    for (uint32_t v : { count, rows, cols })
        for (int shift = 24; shift >= 0; shift -= 8)
            s += static_cast<char>((v >> shift) & 0xff);
    s += std::string(static_cast<size_t>(count) * rows * cols, '\0');
    return s;
}

// Runs a shell command; its output goes to `log`. Returns the exit status.
int shell(const std::string& command, const fs::path& log)
{
    const std::string line = command + " > '" + log.string() + "' 2>&1";
    const int status = std::system(line.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string run_folder(const fs::path& dir, const ansatz::test::CliResult& r)
{
    std::string folder = r.out;
    while (!folder.empty() && folder.back() == '\n')
        folder.pop_back();
    return (dir / folder).string();
}

std::string replace_all(std::string s, const std::string& from, const std::string& to)
{
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

// A pipeline of the in-tree rbm with `mh` (keys in `mh_keys`) in a sample stage; exit status and stderr.
struct Outcome
{
    int status;
    std::string err;
    fs::path dir;
};

Outcome run_mh(const std::string& name, const std::string& model, const std::string& mh_keys,
               const std::string& stage_extra = "", const std::string& components = "")
{
    const fs::path dir = ansatz::test::fresh_folder("mh_cli/" + name);
    write_text(dir / "images.idx", idx_images(4, 2, 3));
    write_text(dir / "pipeline.yaml",
               "pipeline: mh-bad\nseed: 1\ncomponents:\n  model: " + model + "\n" + components +
                   "  mh: {plugin: metropolis_hastings" + mh_keys +
                   "}\nstages:\n  - sample: {model: model, sampler: mh, count: 4, steps: 2" + stage_extra +
                   "}\n");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    return { r.status, r.err, dir };
}

const std::string plugins = ANSATZ_TEST_PLUGIN_DIR;
const std::string mh_file = plugins + "/libansatz_metropolis_hastings.so";
const std::string mh_prefix = "component 'mh' (sampler 'metropolis_hastings' from " + mh_file + "): ";

// A refusal when the pipeline is validated: the whole of stderr.
void expect(const Outcome& o, const std::string& message)
{
    INFO(o.err);
    CHECK(o.status == 2);
    CHECK(o.err == message + "\n  while validating component 'mh' (plugin file " + mh_file + ")\n");
}

// A refusal when the sampler meets its model (bind, after the run folder is made): the line naming the
// run folder, then the message.
void expect_at_bind(const Outcome& o, const std::string& message)
{
    INFO(o.err);
    CHECK(o.status == 2);
    const size_t newline = o.err.find('\n');
    REQUIRE(newline != std::string::npos);
    CHECK_THAT(o.err.substr(0, newline), Catch::StartsWith("run folder: runs/mh-bad/"));
    CHECK(o.err.substr(newline + 1) == mh_prefix + message + "\n");
}

} // namespace

TEST_CASE(
    "metropolis_hastings samples a model built out of tree against the frozen ABI 2.0 headers exactly "
    "(seed 2022 - 40000 chains x 100 sweeps through `ansatz run --plugin-path` - one sample per chain - "
    "chi-square over 64 states pooled to expected >= 5 - reject above the 1 - 1e-4 quantile)",
    "[metropolis_hastings][cli][out-of-tree][statistical]")
{
    const fs::path dir = ansatz::test::fresh_folder("mh_cli/abi20_out_of_tree");
    const std::string source = std::string(ANSATZ_TEST_SOURCE_DIR);
    const std::string cmake = ANSATZ_TEST_CMAKE;
    REQUIRE(shell("'" + cmake + "' -S '" + source + "/tests/out_of_tree_abi20' -B '" +
                      (dir / "build").string() + "' -DCMAKE_BUILD_TYPE=Release -DANSATZ_ABI20_INCLUDE='" +
                      source + "/tests/fixtures/abi-2.0/include' -DANSATZ_PLUGIN_MAP='" + source +
                      "/sdk/cmake/ansatz_plugin.map'",
                  dir / "configure.log") == 0);
    const int built = shell("'" + cmake + "' --build '" + (dir / "build").string() + "'", dir / "build.log");
    INFO(read_text(dir / "build.log"));
    REQUIRE(built == 0);
    // A fresh folder holding only the new library.
    fs::create_directories(dir / "fresh");
    fs::copy_file(dir / "build" / "libansatz_abi20_fvbm.so", dir / "fresh" / "libansatz_abi20_fvbm.so");
    const auto listed = run_ansatz({ "plugins", "--plugin-path", (dir / "fresh").string() }, dir);
    CHECK(listed.out.find("model      fvbm20") != std::string::npos);

    const std::vector<double> p = fvbm_distribution();
    const int64_t chains = 40000;
    const int sweeps = 100;
    const double tv = tv_after_sweeps(p, sweeps);
    INFO("exact total variation after " << sweeps << " sweeps: " << tv);
    REQUIRE(tv < 1e-6);
    // The model declares no shape: a dataset of 2 x 3 images gives it (and nothing else).
    write_text(dir / "shape.idx", idx_images(1, 2, 3));
    write_text(dir / "pipeline.yaml",
               "pipeline: mh-abi20\nseed: 2022\nthreads: 1\ncomponents:\n"
               "  shape: {plugin: idx, images: shape.idx}\n"
               "  fvbm: {plugin: fvbm20, couplings: " +
                   yaml_list(kCouplings) + ", fields: " + yaml_list(kFields) +
                   "}\n"
                   "  mh: {plugin: metropolis_hastings}\n"
                   "stages:\n  - sample: {model: fvbm, sampler: mh, data: shape, count: " +
                   std::to_string(chains) + ", steps: " + std::to_string(sweeps) + ", image: false}\n");
    const auto r = run_ansatz(
        { "run", "pipeline.yaml", "--runs", "runs", "--plugin-path", (dir / "fresh").string() }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path run = run_folder(dir, r);
    const std::vector<int64_t> counts = state_counts(run / "stage1_samples.npy", chains);
    const ChiSquare good = chi_square(p, counts, chains);
    WARN("out-of-tree ABI 2.0 model, metropolis_hastings: chi-square "
         << good.statistic << " over " << good.cells << " cells, threshold " << good.threshold);
    CHECK(good.statistic < good.threshold);
    CHECK(read_text(run / "metrics.csv").find("acceptance") != std::string::npos);
    // Power: the samples are not those of the model with its fields switched off.
    std::vector<double> q(kStates);
    {
        for (int k = 0; k < kStates; ++k)
        {
            double e = 0;
            int pair = 0;
            for (int i = 0; i < kUnits; ++i)
                for (int j = i + 1; j < kUnits; ++j, ++pair)
                    e -= static_cast<float>(kCouplings[pair]) * ((k >> i) & 1) * ((k >> j) & 1);
            q[k] = std::exp(-e);
        }
        const double z = std::accumulate(q.begin(), q.end(), 0.0);
        for (double& x : q)
            x /= z;
    }
    const ChiSquare other = chi_square(q, counts, chains);
    CHECK(other.statistic > other.threshold);
}

TEST_CASE(
    "metropolis_hastings samples the in-tree rbm through a pipeline (load stage - then sample - seed 2023 - "
    "40000 chains x 100 sweeps - chi-square over 64 states - reject above the 1 - 1e-4 quantile)",
    "[metropolis_hastings][cli][statistical]")
{
    const fs::path dir = ansatz::test::fresh_folder("mh_cli/rbm_pipeline");
    // A 6 x 4 RBM with weights of scale ~1 (a fixed pattern) and biases of both signs.
    std::vector<float> w(6 * 4), a = { 0.5f, -0.8f, 0.3f, -0.2f, 1.0f, -0.6f },
                                 b = { -0.4f, 0.7f, -1.0f, 0.2f };
    for (size_t k = 0; k < w.size(); ++k)
        w[k] = static_cast<float>(1.2 * std::sin(1.7 * static_cast<double>(k) + 0.3));
    fs::create_directories(dir / "params");
    write_text(dir / "params" / "weights.npy",
               ansatz::engine::npy_bytes(ansatz::make_view(w.data(), { 6, 4 })));
    write_text(dir / "params" / "visible_bias.npy",
               ansatz::engine::npy_bytes(ansatz::make_view(a.data(), { 6 })));
    write_text(dir / "params" / "hidden_bias.npy",
               ansatz::engine::npy_bytes(ansatz::make_view(b.data(), { 4 })));
    // p(v) ∝ exp(a.v) prod_j (1 + exp(b_j + (vW)_j)), in double from the float values.
    std::vector<double> p(kStates);
    for (int k = 0; k < kStates; ++k)
    {
        double logp = 0;
        for (int i = 0; i < kUnits; ++i)
            logp += a[i] * ((k >> i) & 1);
        for (int j = 0; j < 4; ++j)
        {
            double pre = b[j];
            for (int i = 0; i < kUnits; ++i)
                pre += w[static_cast<size_t>(i * 4 + j)] * ((k >> i) & 1);
            logp += std::log1p(std::exp(pre));
        }
        p[k] = std::exp(logp);
    }
    const double z = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p)
        x /= z;
    REQUIRE(tv_after_sweeps(p, 100) < 1e-6);
    const int64_t chains = 40000;
    write_text(dir / "pipeline.yaml", "pipeline: mh-rbm\nseed: 2023\nthreads: 1\ncomponents:\n"
                                      "  rbm: {plugin: rbm, visible: 6, hidden: 4}\n"
                                      "  mh: {plugin: metropolis_hastings}\n"
                                      "stages:\n  - load: {model: rbm, from: params}\n"
                                      "  - sample: {model: rbm, sampler: mh, count: " +
                                          std::to_string(chains) + ", steps: 100}\n");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path run = run_folder(dir, r);
    const ChiSquare good = chi_square(p, state_counts(run / "stage2_samples.npy", chains), chains);
    WARN("rbm pipeline, metropolis_hastings: chi-square " << good.statistic << " over " << good.cells
                                                          << " cells, threshold " << good.threshold);
    CHECK(good.statistic < good.threshold);
}

TEST_CASE("bad input: metropolis_hastings keys - each refused with its message and exit status 2",
          "[metropolis_hastings][cli][bad-input]")
{
    const std::string rbm = "{plugin: rbm, visible: 6, hidden: 3}";
    const std::string gauss = "{plugin: rbm, visible: 6, hidden: 3, visible_units: gaussian}";
    // Keys the engine validates against the schema.
    expect(run_mh("steps", rbm, ", steps: 0"), "pipeline.yaml:5:44: key 'steps' of sampler "
                                               "'metropolis_hastings' is 0, out of range: it must be >= 1");
    expect(
        run_mh("proposal", rbm, ", proposal: flop"),
        "pipeline.yaml:5:47: key 'proposal' of sampler 'metropolis_hastings' is 'flop', which is not one of: "
        "auto,flip,category,gaussian,mala (did you mean 'flip'?)");
    expect(run_mh("step_size_range", gauss, ", step_size: 0"),
           "pipeline.yaml:5:48: key 'step_size' of sampler 'metropolis_hastings' is 0, out of range: it must "
           "be > 0");
    expect(run_mh("adapt_range", gauss, ", adapt_sweeps: -1"),
           "pipeline.yaml:5:51: key 'adapt_sweeps' of sampler 'metropolis_hastings' is -1, out of range: it "
           "must "
           "be >= 0");
    expect(
        run_mh("target_range", gauss, ", adapt_sweeps: 5, target_acceptance: 1"),
        "pipeline.yaml:5:73: key 'target_acceptance' of sampler 'metropolis_hastings' is 1, out of range: it "
        "must be (0, 1)");
    expect(run_mh("order", rbm, ", order: diagonal"),
           "pipeline.yaml:5:44: key 'order' of sampler 'metropolis_hastings' is 'diagonal', which is not one "
           "of: "
           "random,checkerboard,sequential");
    // The sampler's own refusals, through the engine's prefix: when it is created ...
    const auto created = [](const Outcome& o, const std::string& message) {
        INFO(o.err);
        CHECK(o.status == 2);
        CHECK(o.err == mh_prefix + message + "\n");
    };
    created(run_mh("target_without_adapt", gauss, ", target_acceptance: 0.3"),
            "target_acceptance is 0.3, but adapt_sweeps is 0: without adaptation nothing aims at it (set "
            "adapt_sweeps, or drop target_acceptance)");
    created(run_mh("adapt_flip", rbm, ", proposal: flip, adapt_sweeps: 10"),
            "adapt_sweeps is 10, but proposal: flip has no step size to adapt (it is for gaussian and mala)");
    created(
        run_mh("mala_order", gauss, ", proposal: mala, order: sequential"),
        "order: sequential has no meaning for proposal: mala, which moves every variable at once; drop the "
        "order key");
    // ... and when it meets its model (the proposal from the model's domain).
    expect_at_bind(run_mh("step_size_flip", rbm, ", step_size: 0.5"),
                   "step_size is 0.5, but proposal: flip has no step size (it is for gaussian and mala)");
    expect_at_bind(run_mh("gaussian_on_binary", rbm, ", proposal: gaussian"),
                   "proposal: gaussian needs real variables, but the model's variables are binary {0, 1}");
    expect_at_bind(run_mh("flip_on_real", gauss, ", proposal: flip"),
                   "proposal: flip needs binary or spin variables, but the model's variables are real");
    expect_at_bind(
        run_mh("category_on_binary", rbm, ", proposal: category"),
        "proposal: category needs categorical variables with at least 2 categories, but the model's "
        "variables are binary {0, 1}");
    expect_at_bind(run_mh("checkerboard_unshaped", "{plugin: rbm, hidden: 3}", ", order: checkerboard",
                          ", data: images", "  images: {plugin: idx, images: images.idx}\n"),
                   "order: checkerboard needs a lattice, a model that declares a sample shape of rank 1 or 2 "
                   "(sample_info), but the model's shape comes from the data");
    // A model without energy_delta is refused when the pipeline is validated (the sampler's needs).
    const fs::path extra = ansatz::test::fresh_folder("mh_cli/energy_only_plugin");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_energy_only.so",
                  extra / "libansatz_fixture_energy_only.so");
    const fs::path dir = ansatz::test::fresh_folder("mh_cli/no_energy_delta");
    write_text(dir / "images.idx", idx_images(4, 2, 3));
    write_text(dir / "pipeline.yaml", "pipeline: mh-bad\nseed: 1\ncomponents:\n"
                                      "  images: {plugin: idx, images: images.idx}\n"
                                      "  model: {plugin: energy_only}\n"
                                      "  mh: {plugin: metropolis_hastings}\n"
                                      "stages:\n  - sample: {model: model, sampler: mh, data: images}\n");
    const auto r =
        run_ansatz({ "run", "pipeline.yaml", "--runs", "runs", "--plugin-path", extra.string() }, dir);
    CHECK(r.status == 2);
    CHECK(r.err ==
          "pipeline.yaml:8:37: stage 1 (sample): sampler 'mh' needs the model's energy_delta, but model "
          "'model' (plugin 'energy_only' from " +
              (extra / "libansatz_fixture_energy_only.so").string() + ") has only: free_energy\n");
}

TEST_CASE(
    "resume: PCD with metropolis_hastings adapting its Gaussian steps - killed mid-epoch and resumed - ends "
    "with the same checkpoint files and samples byte for byte",
    "[metropolis_hastings][cli][resume]")
{
    // Gaussian visible units, 5 persistent chains moved by MH with per-chain step sizes adapted during
    // the first 40 sweeps (the epochs' 6 batches each advance the chains one sweep): the kill at batch 9
    // falls inside the adaptation, so the resumed run needs the step sizes and the sweep count.
    const std::string pipeline =
        "pipeline: mh-resume\nseed: 7\nthreads: 1\ncomponents:\n"
        "  data: {plugin: idx, images: images.idx}\n"
        "  rbm:  {plugin: rbm, hidden: 5, visible_units: gaussian, init_std: 0.1}\n"
        "  mh:   {plugin: metropolis_hastings, adapt_sweeps: 40, step_size: 0.3}\n"
        "  pcd:  {plugin: contrastive_divergence, persistent: true, chains: 5}\n"
        "  sgd:  {plugin: sgd, learning_rate: 0.05}\n"
        "stages:\n"
        "  - train:  {model: rbm, data: data, loss: pcd, sampler: mh, optimizer: sgd, "
        "epochs: 4, batch_size: 8}\n"
        "  - sample: {model: rbm, sampler: mh, count: 3, steps: 10, image: false}\n";
    const auto outputs = [](const fs::path& run) {
        std::map<std::string, std::string> files;
        for (const auto& entry : fs::directory_iterator(run / "checkpoints"))
            for (const auto& file : fs::directory_iterator(entry.path()))
                if (file.path().filename() != "metrics.csv") // its timing columns differ
                    files[entry.path().filename().string() + "/" + file.path().filename().string()] =
                        read_text(file.path());
        files["stage2_samples.npy"] = read_text(run / "stage2_samples.npy");
        return files;
    };
    const auto setup = [&](const std::string& name) {
        const fs::path dir = ansatz::test::fresh_folder("mh_cli/" + name);
        write_text(dir / "pipeline.yaml", pipeline);
        write_text(dir / "images.idx", ansatz::test::square_images(200, 40));
        return dir;
    };
    const fs::path straight = setup("resume_reference");
    auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, straight);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const auto want = outputs(run_folder(straight, r));
    REQUIRE(want.size() >= 3);

    const fs::path dir = setup("resume_killed");
    r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, { "ANSATZ_FAULT=batch:9" });
    REQUIRE(r.status == 128 + 9); // SIGKILL
    const fs::path run = *fs::directory_iterator(dir / "runs" / "mh-resume");
    r = run_ansatz({ "run", "--resume", run.string() }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const auto got = outputs(run);
    REQUIRE(got.size() == want.size());
    for (const auto& [file, bytes] : want)
    {
        INFO(file);
        REQUIRE(got.count(file) == 1);
        CHECK(got.at(file) == bytes);
    }
    // The checkpoint carries the sampler's state: its counts and the adapted step sizes.
    bool has_steps = false;
    for (const auto& [file, bytes] : got)
        has_steps = has_steps || file.find("mh.state.step_sizes.npy") != std::string::npos;
    CHECK(has_steps);
}

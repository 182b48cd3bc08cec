// parallel_tempering through the binary: the beta = 1 replicas of PT with inner Gibbs on a small RBM
// (parameters loaded from .npy) against its exact marginal p(v); PT with inner Metropolis-Hastings on
// the 4 x 4 Ising torus against its exact energy, |m| and energy histogram at three temperatures; swap
// acceptances in metrics.csv; a PCD run with PT killed and resumed ends byte-equal; bad ladders.
#include "models/ising/exact.hpp"
#include "outputs/npy.hpp"
#include "support/cli.hpp"
#include "support/statistics.hpp"

#include <ansatz/math.hpp>
#include <ansatz/random.hpp>
#include <ansatz/statistics.hpp>
#include <ansatz/tensor.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::untimed;
using ansatz::test::write_text;

namespace
{

// Runs the pipeline in a fresh folder; returns the run folder.
fs::path run_pipeline(const fs::path& dir, const std::string& pipeline)
{
    write_text(dir / "pipeline.yaml", pipeline);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    std::string folder = r.out;
    while (!folder.empty() && folder.back() == '\n')
        folder.pop_back();
    return dir / folder;
}

// The value of column `name` in the last row of metrics.csv (of stage `stage`, when given).
double last_metric(const fs::path& run, const std::string& name, int stage = 0)
{
    std::istringstream in(read_text(run / "metrics.csv"));
    std::string header, line, last;
    std::getline(in, header);
    while (std::getline(in, line))
        if (!line.empty() && (stage == 0 || line.rfind(std::to_string(stage) + ",", 0) == 0))
            last = line;
    std::vector<std::string> names, values;
    std::stringstream h(header), v(last);
    for (std::string c; std::getline(h, c, ',');)
        names.push_back(c);
    for (std::string c; std::getline(v, c, ',');)
        values.push_back(c);
    for (size_t k = 0; k < names.size() && k < values.size(); ++k)
        if (names[k] == name)
            return std::stod(values[k]);
    FAIL("metrics.csv has no column " << name);
    return 0;
}

std::vector<float> samples_of(const fs::path& run, const std::string& stage, std::vector<int64_t> shape)
{
    ansatz::engine::NpyArray a = ansatz::engine::read_npy(run / (stage + "_samples.npy"));
    REQUIRE(a.shape == shape);
    const float* x = ansatz::f32(a.view());
    return std::vector<float>(x, x + ansatz::element_count(a.view()));
}

void write_npy(const fs::path& file, std::vector<float> values, std::initializer_list<int64_t> shape)
{
    write_text(file, ansatz::engine::npy_bytes(ansatz::make_view(values.data(), shape)));
}

} // namespace

TEST_CASE(
    "parallel_tempering: PT with inner gibbs on an 8 x 3 RBM reproduces its exact marginal p(v) "
    "(seed 808 - 20000 chains x 300 sweeps - 4 replicas - chi-square over 256 states pooled to expected "
    ">= 5 - below the 1 - 1e-4 quantile)",
    "[parallel_tempering][cli][statistical]")
{
    // Weights of +-2.5 make the marginal multimodal; the biases tilt it.
    const int64_t d = 8, h = 3;
    std::vector<float> w(d * h), a(d), b(h);
    ansatz::Rng rng(17);
    for (float& x : w)
        x = rng.uniform() < 0.5f ? -2.5f : 2.5f;
    for (int64_t i = 0; i < d; ++i)
        a[i] = static_cast<float>(0.3 * i - 1.0);
    for (int64_t j = 0; j < h; ++j)
        b[j] = static_cast<float>(-0.5 * j);
    const fs::path dir = ansatz::test::fresh_folder("parallel_tempering/rbm");
    fs::create_directories(dir / "params");
    write_npy(dir / "params" / "weights.npy", w, { d, h });
    write_npy(dir / "params" / "visible_bias.npy", a, { d });
    write_npy(dir / "params" / "hidden_bias.npy", b, { h });
    const fs::path run =
        run_pipeline(dir, "pipeline: pt-rbm\nseed: 808\nthreads: 1\ncomponents:\n"
                          "  rbm:   {plugin: rbm, hidden: 3, visible: 8}\n"
                          "  gibbs: {plugin: gibbs}\n"
                          "  pt:    {plugin: parallel_tempering, inner: gibbs, replicas: 4, "
                          "beta_min: 0.25}\n"
                          "stages:\n"
                          "  - load:   {model: rbm, from: params}\n"
                          "  - sample: {model: rbm, sampler: pt, count: 20000, steps: 300}\n");
    const std::vector<float> s = samples_of(run, "stage2", { 20000, d });

    // p(v) = exp(-F(v)) / Z by enumeration, F(v) = -a.v - sum_j softplus(b_j + (vW)_j), in double.
    std::vector<double> minus_f(256);
    for (int v = 0; v < 256; ++v)
    {
        double f = 0;
        for (int64_t i = 0; i < d; ++i)
            f -= a[i] * ((v >> i) & 1);
        for (int64_t j = 0; j < h; ++j)
        {
            double x = b[j];
            for (int64_t i = 0; i < d; ++i)
                x += ((v >> i) & 1) * w[i * h + j];
            f -= std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
        }
        minus_f[v] = -f;
    }
    const double log_z = ansatz::logsumexp(minus_f.data(), 256);
    std::vector<double> p(256);
    for (int v = 0; v < 256; ++v)
        p[v] = std::exp(minus_f[v] - log_z);
    std::vector<int64_t> counts(256, 0);
    for (int64_t c = 0; c < 20000; ++c)
    {
        int v = 0;
        for (int64_t i = 0; i < d; ++i)
            v |= (s[c * d + i] == 1.0f) << i;
        ++counts[v];
    }
    const ansatz::test::ChiSquare chi = ansatz::test::chi_square(p, counts, 20000);
    INFO("chi-square " << chi.statistic << " over " << chi.cells << " cells, threshold " << chi.threshold);
    CHECK(chi.statistic < chi.threshold);
    // Every pair's swaps are reported, and some are accepted.
    for (const char* pair : { "swap_acceptance_0_1", "swap_acceptance_1_2", "swap_acceptance_2_3" })
    {
        INFO(pair);
        const double rate = last_metric(run, pair);
        CHECK(rate > 0);
        CHECK(rate <= 1);
    }
    CHECK(last_metric(run, "swap_acceptance") > 0);
}

// ---- bad ladders: one sentence, exit status 2

namespace
{

struct Outcome
{
    int status;
    std::string err;
};

Outcome validate_pt(const std::string& name, const std::string& keys)
{
    const fs::path dir = ansatz::test::fresh_folder("parallel_tempering/bad/" + name);
    write_text(dir / "pipeline.yaml", "pipeline: pt-bad\nseed: 1\ncomponents:\n"
                                      "  rbm:   {plugin: rbm, hidden: 3, visible: 8}\n"
                                      "  gibbs: {plugin: gibbs}\n"
                                      "  pt:    {plugin: parallel_tempering, inner: gibbs" +
                                          keys +
                                          "}\n"
                                          "stages:\n"
                                          "  - sample: {model: rbm, sampler: pt, count: 4, steps: 2}\n");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    return { r.status, r.err };
}

const std::string pt_file = std::string(ANSATZ_TEST_PLUGIN_DIR) + "/libansatz_parallel_tempering.so";

} // namespace

TEST_CASE(
    "bad input: parallel_tempering ladders that are not increasing or out of 0 to 1 or empty or missing",
    "[parallel_tempering][cli][bad-input]")
{
    const std::string where = "\n  while validating component 'pt' (plugin file " + pt_file + ")\n";
    const std::string created = "component 'pt' (sampler 'parallel_tempering' from " + pt_file + "): ";
    Outcome o = validate_pt("not_increasing", ", ladder: list, betas: [0.2, 0.5, 0.5, 1]");
    CHECK(o.status == 2);
    CHECK(o.err == created + "betas must increase: item 3 (0.5) is not above item 2 (0.5)\n");
    o = validate_pt("decreasing", ", ladder: list, betas: [1, 0.5]");
    CHECK(o.status == 2);
    CHECK(o.err == created + "betas must increase: item 2 (0.5) is not above item 1 (1)\n");
    o = validate_pt("zero", ", ladder: list, betas: [0, 0.5, 1]");
    CHECK(o.status == 2);
    CHECK(o.err == "pipeline.yaml:6:75: item 0 of key 'betas' of sampler 'parallel_tempering' is 0, out of "
                   "range: it must be (0, 1]" +
                       where);
    o = validate_pt("above_one", ", ladder: list, betas: [0.5, 1.5]");
    CHECK(o.status == 2);
    CHECK(o.err == "pipeline.yaml:6:80: item 1 of key 'betas' of sampler 'parallel_tempering' is 1.5, out of "
                   "range: it must be (0, 1]" +
                       where);
    o = validate_pt("empty", ", ladder: list, betas: []");
    CHECK(o.status == 2);
    CHECK(o.err == "pipeline.yaml:6:74: key 'betas' of sampler 'parallel_tempering' has 0 items, but it must "
                   "have 1 to 32 items" +
                       where);
    o = validate_pt("missing", ", ladder: list");
    CHECK(o.status == 2);
    CHECK(o.err == created + "ladder: list needs the key betas, the inverse temperatures\n");
    o = validate_pt("one", ", ladder: list, betas: [1]");
    CHECK(o.status == 2);
    CHECK(o.err == created +
                       "betas: [1] is a ladder of one replica; parallel tempering needs at least one inverse "
                       "temperature below 1\n");
    o = validate_pt("stray", ", betas: [0.5, 1]");
    CHECK(o.status == 2);
    CHECK(o.err == created + "betas is given, but ladder is geometric; give ladder: list to use it\n");
    o = validate_pt("beta_min", ", beta_min: 1");
    CHECK(o.status == 2);
    CHECK(o.err ==
          "pipeline.yaml:6:63: key 'beta_min' of sampler 'parallel_tempering' is 1, out of range: it "
          "must be (0, 1)" +
              where);
}

// ---- resume: PT's replicas, their streams, the swap counters and the sweep parity are its state

namespace
{

const std::string resumable = R"(pipeline: pt-resume
seed: 9
threads: 1
components:
  data:  {plugin: idx, images: images.idx, binarize_sampling: true}
  rbm:   {plugin: rbm, hidden: 6, init_std: 0.1}
  gibbs: {plugin: gibbs}
  pt:    {plugin: parallel_tempering, inner: gibbs, replicas: 3, beta_min: 0.3}
  pcd:   {plugin: contrastive_divergence, persistent: true, chains: 5}
  sgd:   {plugin: sgd, learning_rate: 0.1, momentum: 0.5}
stages:
  - train:  {model: rbm, data: data, loss: pcd, sampler: pt, optimizer: sgd, epochs: 4, batch_size: 8}
  - sample: {model: rbm, sampler: pt, count: 4, steps: 20}
)";

// The final checkpoint's files (metrics.csv untimed) and the samples.
std::map<std::string, std::string> outputs(const fs::path& run)
{
    std::map<std::string, std::string> files = ansatz::test::checkpoint_files(run);
    files["stage2_samples.npy"] = read_text(run / "stage2_samples.npy");
    files["metrics.csv"] = untimed(read_text(run / "metrics.csv"));
    return files;
}

fs::path resumable_folder(const std::string& name)
{
    const fs::path dir = ansatz::test::fresh_folder("parallel_tempering/" + name);
    write_text(dir / "pipeline.yaml", resumable);
    write_text(dir / "images.idx", ansatz::test::square_images(200, 40));
    return dir;
}

} // namespace

TEST_CASE("parallel_tempering: a PCD run with PT killed in its second epoch and resumed ends byte-equal",
          "[parallel_tempering][cli][resume]")
{
    const fs::path whole = resumable_folder("resume_whole");
    auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, whole);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path want_run = *fs::directory_iterator(whole / "runs" / "pt-resume");
    const std::map<std::string, std::string> want = outputs(want_run);
    for (const char* piece : { "pt.state.replicas.npy", "pt.state.replica_rngs.npy", "pt.state.swaps.npy",
                               "pt.state.sweeps.npy", "gibbs.state.sweeps.npy" })
        CHECK(want.count(std::string("stage1-epoch4/") + piece) == 1);

    const fs::path cut = resumable_folder("resume_cut");
    r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, cut, { "ANSATZ_FAULT=batch:9" });
    REQUIRE(r.status == 128 + 9); // SIGKILL, in epoch 2 (6 batches per epoch)
    const fs::path run = *fs::directory_iterator(cut / "runs" / "pt-resume");
    r = run_ansatz({ "run", "--resume", run.string() }, cut);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const std::map<std::string, std::string> got = outputs(run);
    REQUIRE(got.size() == want.size());
    for (const auto& [file, bytes] : want)
    {
        INFO(file);
        REQUIRE(got.count(file) == 1);
        CHECK(got.at(file) == bytes);
    }
}

TEST_CASE(
    "parallel_tempering: PT with inner metropolis_hastings on the 4 x 4 Ising torus reproduces the exact "
    "energy and |m| per site (3 standard errors) and energy histogram (chi-square) at T = 1.5 - 2.269 - 3.0 "
    "(seed 1515 - 4000 chains x 300 sweeps - 4 replicas down to beta_min 0.4)",
    "[parallel_tempering][ising][cli][statistical]")
{
    // One pipeline, a model and a PT sampler per temperature. The final states of independent chains are
    // independent draws: the standard error of a mean is the sample deviation over sqrt(4000), and the
    // energy histogram's chi-square is against the exact level probabilities (cells pooled to an
    // expectation of at least 5), below its 1 - 1e-4 quantile.
    const double temperatures[] = { 1.5, 2.269, 3.0 };
    std::string pipeline = "pipeline: pt-ising\nseed: 1515\nthreads: 1\ncomponents:\n";
    std::string stages = "stages:\n";
    for (int k = 0; k < 3; ++k)
    {
        const std::string t = std::to_string(k);
        char beta[32];
        std::snprintf(beta, sizeof beta, "%.17g", 1.0 / temperatures[k]);
        pipeline += "  ising" + t + ": {plugin: ising, size: 4, beta: " + beta + "}\n";
        pipeline += "  mh" + t + ": {plugin: metropolis_hastings}\n";
        pipeline +=
            "  pt" + t + ": {plugin: parallel_tempering, inner: mh" + t + ", replicas: 4, beta_min: 0.4}\n";
        stages += "  - sample: {model: ising" + t + ", sampler: pt" + t + ", count: 4000, steps: 300}\n";
    }
    const fs::path run =
        run_pipeline(ansatz::test::fresh_folder("parallel_tempering/ising"), pipeline + stages);
    const std::string metrics = read_text(run / "metrics.csv");
    CHECK(metrics.find("swap_acceptance_0_1") != std::string::npos);
    CHECK(metrics.find("inner.acceptance") != std::string::npos);

    const ansatz::ising::Lattice lattice{ 2, 4, true };
    const ansatz::ising::DensityOfStates dos(lattice);
    const auto bonds = lattice.bonds();
    for (int k = 0; k < 3; ++k)
    {
        const double beta = 1.0 / temperatures[k];
        INFO("T = " << temperatures[k]);
        const std::vector<float> s = samples_of(run, "stage" + std::to_string(k + 1), { 4000, 4, 4 });
        const ansatz::ising::Observables exact = dos.at(1.0, 0.0, beta);
        const auto levels = dos.energy_distribution(1.0, 0.0, beta);
        std::vector<double> p;
        for (const auto& level : levels)
            p.push_back(level.second);
        std::vector<int64_t> counts(levels.size(), 0);
        ansatz::MeanAndError energy, magnetisation;
        for (int64_t c = 0; c < 4000; ++c)
        {
            double b = 0, m = 0;
            for (const auto& [i, j] : bonds)
                b += s[c * 16 + i] * s[c * 16 + j];
            for (int i = 0; i < 16; ++i)
                m += s[c * 16 + i];
            energy.add(-b / 16);
            magnetisation.add(std::abs(m) / 16);
            size_t at = 0;
            while (at < levels.size() && levels[at].first != -b)
                ++at;
            REQUIRE(at < levels.size());
            ++counts[at];
        }
        INFO("energy " << energy.mean() << " +- " << energy.standard_error() << ", exact " << exact.energy);
        INFO("|m| " << magnetisation.mean() << " +- " << magnetisation.standard_error() << ", exact "
                    << exact.abs_magnetisation);
        CHECK(std::abs(energy.mean() - exact.energy) < 3 * energy.standard_error());
        CHECK(std::abs(magnetisation.mean() - exact.abs_magnetisation) < 3 * magnetisation.standard_error());
        const ansatz::test::ChiSquare chi = ansatz::test::chi_square(p, counts, 4000);
        INFO("chi-square " << chi.statistic << " over " << chi.cells << " cells, threshold "
                           << chi.threshold);
        CHECK(chi.statistic < chi.threshold);
        for (const char* pair : { "swap_acceptance_0_1", "swap_acceptance_1_2", "swap_acceptance_2_3" })
        {
            INFO(pair);
            const double rate = last_metric(run, pair, k + 1);
            CHECK(rate > 0);
            CHECK(rate <= 1);
        }
    }
}

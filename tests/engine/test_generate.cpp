// The generate stage and the npy dataset together: an RBM of known parameters generates a dataset at
// several inverse temperatures with Gibbs sampling, the rows are checked against the exact tempered
// marginals, and one model per temperature is trained on its rows through $run/ paths; reruns and a
// resumed run give the same bytes; every bad key has its exact message.
#include "ansatz/tensor.hpp"
#include "outputs/npy.hpp"
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

constexpr int kVisible = 10, kHidden = 4;

// The teacher RBM: W_ij = 0.8 sin(i + 2j + 1), a_i = 0.3 cos(i), b_j = -0.2 j (float32).
struct Teacher
{
    std::vector<float> w, a, b;
    Teacher() : w(kVisible * kHidden), a(kVisible), b(kHidden)
    {
        for (int i = 0; i < kVisible; ++i)
        {
            a[static_cast<size_t>(i)] = static_cast<float>(0.3 * std::cos(i));
            for (int j = 0; j < kHidden; ++j)
                w[static_cast<size_t>(i * kHidden + j)] = static_cast<float>(0.8 * std::sin(i + 2 * j + 1));
        }
        for (int j = 0; j < kHidden; ++j)
            b[static_cast<size_t>(j)] = static_cast<float>(-0.2 * j);
    }

    // E_beta[v_i] exactly: sum over the 2^H hidden states of p_beta(h) sigmoid(beta (a_i + W_i h)), with
    // p_beta(h) proportional to exp(beta b.h) prod_i (1 + exp(beta (a_i + W_i h))).
    std::vector<double> visible_means(double beta) const
    {
        std::vector<double> mean(kVisible, 0.0);
        double z = 0;
        for (int state = 0; state < (1 << kHidden); ++state)
        {
            double log_weight = 0;
            std::vector<double> field(kVisible);
            for (int j = 0; j < kHidden; ++j)
                if (state >> j & 1)
                    log_weight += beta * b[static_cast<size_t>(j)];
            for (int i = 0; i < kVisible; ++i)
            {
                double x = a[static_cast<size_t>(i)];
                for (int j = 0; j < kHidden; ++j)
                    if (state >> j & 1)
                        x += w[static_cast<size_t>(i * kHidden + j)];
                field[static_cast<size_t>(i)] = beta * x;
                log_weight += std::log1p(std::exp(beta * x));
            }
            const double weight = std::exp(log_weight);
            z += weight;
            for (int i = 0; i < kVisible; ++i)
                mean[static_cast<size_t>(i)] += weight / (1 + std::exp(-field[static_cast<size_t>(i)]));
        }
        for (double& m : mean)
            m /= z;
        return mean;
    }
};

// The pipeline: the teacher loaded from teacher/*.npy, a generate stage at BETAS, then one student
// per listed beta trained on that beta's rows.
std::string pipeline(const std::string& betas, int chains = 16, const std::string& extra_stages = "")
{
    // A student of the beta 0.5 rows too, when there are some.
    const std::string hot_stage =
        betas.find("0.5") == std::string::npos
            ? std::string()
            : "  - train:    {model: hot_student, data: hot, loss: cd, sampler: gibbs, "
              "optimizer: sgd, epochs: 3, batch_size: 50}\n";
    return "pipeline: generated\n"
           "seed: 11\n"
           "threads: 1\n"
           "components:\n"
           "  teacher: {plugin: rbm, visible: 10, hidden: 4}\n"
           "  gibbs:   {plugin: gibbs}\n"
           "  cold:    {plugin: npy, samples: $run/teacher.npy, betas: $run/teacher.beta.npy, beta: 1}\n"
           "  hot:     {plugin: npy, samples: $run/teacher.npy, betas: $run/teacher.beta.npy, temperature: "
           "2}\n"
           "  student: {plugin: rbm, hidden: 4}\n"
           "  hot_student: {plugin: rbm, hidden: 4}\n"
           "  cd:      {plugin: contrastive_divergence, persistent: true, chains: 8}\n"
           "  sgd:     {plugin: sgd, learning_rate: 0.05}\n"
           "stages:\n"
           "  - load:     {model: teacher, from: teacher}\n"
           "  - generate: {model: teacher, sampler: gibbs, chains: " +
           std::to_string(chains) + ", burn_in: 50, thin: 3, samples: 200, betas: " + betas +
           ", to: teacher}\n"
           "  - train:    {model: student, data: cold, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 3, "
           "batch_size: 50}\n" +
           hot_stage + extra_stages;
}

fs::path setup(const std::string& name, const std::string& text)
{
    const fs::path dir = ansatz::test::fresh_folder("generate/" + name);
    write_text(dir / "pipeline.yaml", text);
    fs::create_directories(dir / "teacher");
    const Teacher t;
    using ansatz::engine::npy_bytes;
    write_text(dir / "teacher" / "weights.npy",
               npy_bytes(ansatz::make_view(t.w.data(), { kVisible, kHidden })));
    write_text(dir / "teacher" / "visible_bias.npy", npy_bytes(ansatz::make_view(t.a.data(), { kVisible })));
    write_text(dir / "teacher" / "hidden_bias.npy", npy_bytes(ansatz::make_view(t.b.data(), { kHidden })));
    return dir;
}

fs::path only_run(const fs::path& dir)
{
    return *fs::directory_iterator(dir / "runs" / "generated");
}

ansatz::engine::NpyArray read_array(const fs::path& file)
{
    return ansatz::engine::read_npy(file);
}

// metrics.csv as rows of column -> cell.
std::vector<std::map<std::string, std::string>> metrics_rows(const fs::path& run)
{
    std::istringstream in(read_text(run / "metrics.csv"));
    std::string line;
    std::vector<std::string> names;
    std::vector<std::map<std::string, std::string>> rows;
    while (std::getline(in, line))
    {
        std::vector<std::string> cells;
        std::stringstream cs(line);
        for (std::string c; std::getline(cs, c, ',');)
            cells.push_back(c);
        if (line.size() && line.back() == ',')
            cells.push_back("");
        if (names.empty())
        {
            names = cells;
            continue;
        }
        std::map<std::string, std::string> row;
        for (size_t i = 0; i < names.size() && i < cells.size(); ++i)
            row[names[i]] = cells[i];
        rows.push_back(row);
    }
    return rows;
}

} // namespace

TEST_CASE("generate: Gibbs rows of a known RBM match its exact visible means and train a student through "
          "$run paths",
          "[generate]")
{
    // Seed 11, 16 chains x 200 rows per temperature (thin 3 after 50 sweeps of burn-in). Each unit's
    // mean over a temperature's 3200 rows is compared with the exact E_beta[v_i] within 4 standard
    // errors, the error taken from the spread of the 16 chains' own means (which carries their
    // autocorrelation): 20 comparisons, so a false alarm has odds of about 1e-3.
    const std::vector<double> betas = { 0.5, 1.0 };
    const fs::path dir = setup("end_to_end", pipeline("[0.5, 1]"));
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path run = only_run(dir);

    ansatz::engine::NpyArray rows = read_array(run / "teacher.npy");
    ansatz::engine::NpyArray row_betas = read_array(run / "teacher.beta.npy");
    const int64_t per_beta = 16 * 200;
    REQUIRE(rows.dtype == ANSATZ_DTYPE_FLOAT32);
    REQUIRE(rows.shape == std::vector<int64_t>{ per_beta * static_cast<int64_t>(betas.size()), kVisible });
    REQUIRE(row_betas.dtype == ANSATZ_DTYPE_FLOAT64);
    REQUIRE(row_betas.shape == std::vector<int64_t>{ per_beta * static_cast<int64_t>(betas.size()) });
    const float* v = reinterpret_cast<const float*>(rows.bytes.data());
    const double* rb = reinterpret_cast<const double*>(row_betas.bytes.data());
    const Teacher teacher;
    for (size_t t = 0; t < betas.size(); ++t)
    {
        const std::vector<double> exact = teacher.visible_means(betas[t]);
        for (int64_t k = 0; k < per_beta; ++k)
        {
            REQUIRE(rb[static_cast<size_t>(static_cast<int64_t>(t) * per_beta + k)] == betas[t]);
            for (int i = 0; i < kVisible; ++i)
            {
                const float x = v[(static_cast<int64_t>(t) * per_beta + k) * kVisible + i];
                REQUIRE((x == 0.0f || x == 1.0f));
            }
        }
        // Rows of temperature t: sample s, chain c at row t * per_beta + s * 16 + c.
        for (int i = 0; i < kVisible; ++i)
        {
            std::vector<double> chain_means(16, 0.0);
            for (int s = 0; s < 200; ++s)
                for (int c = 0; c < 16; ++c)
                    chain_means[static_cast<size_t>(c)] +=
                        v[(static_cast<int64_t>(t) * per_beta + s * 16 + c) * kVisible + i] / 200.0;
            double mean = 0, var = 0;
            for (double m : chain_means)
                mean += m / 16;
            for (double m : chain_means)
                var += (m - mean) * (m - mean) / 15;
            const double se = std::sqrt(var / 16);
            INFO("beta " << betas[t] << ", unit " << i << ": " << mean << " vs exact "
                         << exact[static_cast<size_t>(i)] << " (se " << se << ")");
            CHECK(std::abs(mean - exact[static_cast<size_t>(i)]) < 4 * se + 1e-9);
        }
    }

    // metrics.csv: one generate row per temperature (epoch = its number) with the diagnostics, then the
    // student's train rows.
    const auto m = metrics_rows(run);
    std::vector<std::map<std::string, std::string>> generated;
    for (const auto& row : m)
        if (row.at("type") == "generate")
            generated.push_back(row);
    REQUIRE(generated.size() == betas.size());
    for (size_t t = 0; t < betas.size(); ++t)
    {
        const auto& row = generated[t];
        CHECK(row.at("epoch") == std::to_string(t + 1));
        CHECK(std::stod(row.at("beta")) == betas[t]);
        CHECK(std::stod(row.at("rows")) == per_beta);
        for (const char* column :
             { "free_energy_mean", "free_energy_mean_stderr", "free_energy_tau", "free_energy_ess",
               "free_energy_rhat", "state_mean_mean", "state_mean_tau", "state_mean_rhat", "gibbs_sweeps" })
        {
            INFO(column);
            REQUIRE(row.count(column) == 1);
            CHECK(std::isfinite(std::stod(row.at(column))));
        }
        // A well-mixed small RBM: R-hat near 1, ESS a good part of the 3200 rows.
        CHECK(std::stod(row.at("free_energy_rhat")) < 1.05);
        CHECK(std::stod(row.at("free_energy_ess")) > 500);
        CHECK(std::stod(row.at("gibbs_sweeps")) == 50 + 200 * 3);
    }
    // Each student trained on its temperature's 3200 rows: 64 batches of 50 per epoch, 3 epochs each.
    CHECK(std::count_if(m.begin(), m.end(), [](const auto& row) { return row.at("type") == "train"; }) == 6);
    for (const char* line : { "generate [stage 2]: beta 0.5: 16 chains x 200 rows (burn-in 50, thin 3)",
                              "generate [stage 2]: beta 1: 16 chains x 200 rows (burn-in 50, thin 3)" })
        CHECK(r.err.find(line) != std::string::npos);
}

TEST_CASE("generate: reruns give the same bytes and a chain's rows do not depend on the chain count",
          "[generate]")
{
    const fs::path a = setup("rerun_a", pipeline("[1]", 8));
    const fs::path b = setup("rerun_b", pipeline("[1]", 8));
    const fs::path c = setup("rerun_c", pipeline("[1]", 4));
    for (const fs::path& dir : { a, b, c })
    {
        const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        INFO(r.err);
        REQUIRE(r.status == 0);
    }
    const std::string rows_a = read_text(only_run(a) / "teacher.npy");
    CHECK(rows_a == read_text(only_run(b) / "teacher.npy"));
    CHECK(read_text(only_run(a) / "teacher.beta.npy") == read_text(only_run(b) / "teacher.beta.npy"));
    // Chain c < 4 of the 8-chain run draws what chain c of the 4-chain run draws: sample s of chain c is
    // row s * chains + c.
    ansatz::engine::NpyArray eight = read_array(only_run(a) / "teacher.npy");
    ansatz::engine::NpyArray four = read_array(only_run(c) / "teacher.npy");
    const float* x8 = reinterpret_cast<const float*>(eight.bytes.data());
    const float* x4 = reinterpret_cast<const float*>(four.bytes.data());
    for (int s = 0; s < 200; ++s)
        for (int chain = 0; chain < 4; ++chain)
            for (int i = 0; i < kVisible; ++i)
                REQUIRE(x8[(s * 8 + chain) * kVisible + i] == x4[(s * 4 + chain) * kVisible + i]);
}

TEST_CASE("generate: a run killed while training on generated rows resumes to the same bytes", "[generate]")
{
    const fs::path whole = setup("resume_whole", pipeline("[1]"));
    auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, whole);
    REQUIRE(r.status == 0);
    const fs::path killed = setup("resume_killed", pipeline("[1]"));
    // 3200 rows in batches of 50: 64 batches per epoch; killed in the second epoch.
    r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, killed, { "ANSATZ_FAULT=batch:100" });
    REQUIRE(r.status == 128 + 9);
    r = run_ansatz({ "run", "--resume", only_run(killed).string() }, killed);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path a = only_run(whole), b = only_run(killed);
    CHECK(read_text(a / "teacher.npy") == read_text(b / "teacher.npy"));
    for (const auto& entry : fs::directory_iterator(a / "checkpoints"))
        for (const auto& file : fs::directory_iterator(entry.path()))
            if (file.path().extension() == ".npy")
            {
                INFO(file.path());
                CHECK(read_text(file.path()) ==
                      read_text(b / "checkpoints" / entry.path().filename() / file.path().filename()));
            }
}

namespace
{

// A valid pipeline that generates and trains on the rows through $run paths; the bad-input cases edit it.
const std::string base_pipeline = R"(pipeline: bad
seed: 1
components:
  rbm:   {plugin: rbm, visible: 6, hidden: 3}
  gibbs: {plugin: gibbs}
  cold:  {plugin: npy, samples: $run/gen.npy, betas: $run/gen.beta.npy, beta: 1}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 0.1}
stages:
  - generate: {model: rbm, sampler: gibbs, chains: 4, burn_in: 10, samples: 5, to: gen}
  - train:    {model: rbm, data: cold, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 1, batch_size: 4}
)";

std::string replaced(std::string s, const std::string& from, const std::string& to)
{
    const size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
}

// Runs `text` as pipeline.yaml in a fresh folder: exit status 2 and exactly `message` on stderr, and
// no run folder (within 60 seconds: a pipeline that should have been refused and runs is killed).
void expect_refused(const std::string& name, const std::string& text, const std::string& message,
                    const std::vector<std::string>& extra = {})
{
    const fs::path dir = ansatz::test::fresh_folder("generate_bad/" + name);
    write_text(dir / "pipeline.yaml", text);
    std::vector<std::string> args = { "run", "pipeline.yaml", "--runs", "runs" };
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_ansatz(args, dir, 60);
    CHECK(r.status == 2);
    CHECK(r.err == message + "\n");
    CHECK_FALSE(fs::exists(dir / "runs"));
}

} // namespace

TEST_CASE("generate: the base pipeline of the bad-input cases runs", "[generate][bad-input]")
{
    const fs::path dir = ansatz::test::fresh_folder("generate_bad/valid");
    write_text(dir / "pipeline.yaml", base_pipeline);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    CHECK(r.status == 0);
}

TEST_CASE("generate: bad keys of the generate stage get one sentence each", "[generate][bad-input]")
{
    const std::string stage = "to: gen}";
    expect_refused("to_path", replaced(base_pipeline, stage, "to: 'a/b'}"),
                   "pipeline.yaml:10:84: stage 1 (generate): to: 'a/b' names the dataset's files (<to>.npy, "
                   "<to>.beta.npy in the run folder): use 1 to 100 letters, digits, '_' or '-'");
    expect_refused(
        "both", replaced(base_pipeline, stage, "to: gen, betas: [1], temperatures: [1]}"),
        "pipeline.yaml:10:115: stage 1 (generate): keys betas and temperatures exclude each other; "
        "give one of them");
    expect_refused(
        "zero_temperature", replaced(base_pipeline, stage, "to: gen, temperatures: [0, 1]}"),
        "pipeline.yaml:10:104: item 0 of key 'temperatures' of stage 1 (generate) is 0, out of range: "
        "it must be > 0");
    expect_refused("negative_beta", replaced(base_pipeline, stage, "to: gen, betas: [-1]}"),
                   "pipeline.yaml:10:97: item 0 of key 'betas' of stage 1 (generate) is -1, out of range: it "
                   "must be >= 0");
    expect_refused("no_betas", replaced(base_pipeline, stage, "to: gen, betas: []}"),
                   "pipeline.yaml:10:96: key 'betas' of stage 1 (generate) has 0 items, but it must have at "
                   "least 1 item");
    expect_refused(
        "twice", replaced(base_pipeline, stage, "to: gen, betas: [1, 1.0]}"),
        "pipeline.yaml:10:96: stage 1 (generate): inverse temperature 1 is given twice (items 0 and "
        "1); give each once");
    expect_refused(
        "init_data", replaced(base_pipeline, stage, "to: gen, init: data}"),
        "pipeline.yaml:10:95: stage 1 (generate): init: data needs a 'data' key naming a dataset to "
        "start the chains from");
    expect_refused("thin", replaced(base_pipeline, "burn_in: 10", "burn_in: 10, thin: 0"),
                   "pipeline.yaml:10:74: key 'thin' of stage 1 (generate) is 0, out of range: it must be [1, "
                   "1000000000]");
    expect_refused("rows",
                   replaced(replaced(base_pipeline, "samples: 5", "samples: 1000000000"), "chains: 4",
                            "chains: 1000000"),
                   "pipeline.yaml:10:83: stage 1 (generate): chains x samples x temperatures is 1000000 x "
                   "1000000000 x 1 rows, more than 2^40");
    expect_refused(
        "sweeps", replaced(base_pipeline, "burn_in: 10", "burn_in: 4611686018427387903"),
        "pipeline.yaml:10:64: stage 1 (generate): burn_in + samples x thin is 4611686018427387903 + 5 x 1 "
        "sweeps, more than 2^62");
    expect_refused(
        "no_to", replaced(base_pipeline, ", to: gen}", "}"),
        "pipeline.yaml:10:15: missing required key 'to' for stage 1 (generate) (the dataset's name: the run "
        "folder gets <to>.npy (rows {N, D}, float32) and <to>.beta.npy (the beta of each row, float64))\n"
        "  valid keys: model (model, required), sampler (sampler, required), data (dataset, optional), "
        "chains "
        "(int [1, 1000000], default 64), burn_in (int >= 0, default 1000), thin (int [1, 1000000000], "
        "default "
        "1), samples (int [1, 1000000000], default 100), temperatures (list of floats with items > 0, at "
        "least "
        "1 item, optional), betas (list of floats with items >= 0, at least 1 item, optional), init (choice "
        "of "
        "{random data}, default random), to (string, required)");
    expect_refused(
        "same_to",
        base_pipeline +
            "  - generate: {model: rbm, sampler: gibbs, chains: 4, burn_in: 10, samples: 5, to: gen}\n",
        "pipeline.yaml:12:84: stage 3 (generate): to: 'gen' is also written by stage 1 (generate); "
        "give each generate stage a name of its own");
}

TEST_CASE("generate: a sampler without advance_tempered is refused for any beta but 1",
          "[generate][bad-input]")
{
    // The frozen ABI 2.0 fixture's Metropolis sampler cannot run chains at a temperature; at beta 1 it
    // generates (a 2.0 plugin keeps working), at beta 0.5 the pipeline is refused before anything runs.
    const std::string text = "pipeline: bad\n"
                             "seed: 1\n"
                             "components:\n"
                             "  ising: {plugin: abi20_ising, spins: [4], couplings: [1, 1, 1, 1, 1, 1]}\n"
                             "  mh:    {plugin: abi20_metropolis}\n"
                             "stages:\n"
                             "  - generate: {model: ising, sampler: mh, chains: 4, burn_in: 10, samples: 20, "
                             "betas: BETAS, to: spins}\n";
    const std::string plugins = ANSATZ_TEST_ABI20_DIR;
    {
        const fs::path dir = ansatz::test::fresh_folder("generate_bad/abi20_at_1");
        write_text(dir / "pipeline.yaml", replaced(text, "BETAS", "[1]"));
        const auto r =
            run_ansatz({ "run", "pipeline.yaml", "--runs", "runs", "--plugin-path", plugins }, dir);
        INFO(r.err);
        CHECK(r.status == 0);
    }
    expect_refused(
        "abi20_at_half", replaced(text, "BETAS", "[0.5, 1]"),
        "pipeline.yaml:7:87: stage 1 (generate): sampler 'mh' (plugin 'abi20_metropolis' from " + plugins +
            "/libansatz_abi20_fixture.so) has no advance_tempered (plugin ABI 2.2), so it samples only "
            "at beta = 1; give betas: [1] or a sampler that runs chains at an inverse temperature",
        { "--plugin-path", plugins });
}

TEST_CASE("generate: a $run path must be written by an earlier stage", "[generate][bad-input]")
{
    expect_refused(
        "nobody_writes", replaced(base_pipeline, "samples: $run/gen.npy", "samples: $run/other.npy"),
        "pipeline.yaml:6:33: key 'samples' of component 'cold' names $run/other.npy, a file of the run "
        "folder, but no stage writes it (the stages write: $run/gen.npy (stage 1), $run/gen.beta.npy "
        "(stage 1); a generate stage with to: NAME writes $run/NAME.npy and $run/NAME.beta.npy)");
    // Train first, generate second.
    const std::string late =
        "pipeline: bad\nseed: 1\ncomponents:\n" +
        base_pipeline.substr(base_pipeline.find("  rbm:"),
                             base_pipeline.find("stages:") - base_pipeline.find("  rbm:")) +
        "stages:\n"
        "  - train:    {model: rbm, data: cold, loss: cd, sampler: gibbs, optimizer: sgd, "
        "epochs: 1, batch_size: 4}\n"
        "  - generate: {model: rbm, sampler: gibbs, chains: 4, burn_in: 10, samples: 5, to: "
        "gen}\n";
    expect_refused("late", late,
                   "pipeline.yaml:6:33: key 'samples' of component 'cold' names $run/gen.npy, which stage 2 "
                   "(generate) writes, but stage 1 (train) uses component 'cold' before that");
    expect_refused("same_stage",
                   replaced(base_pipeline, "model: rbm, sampler: gibbs, chains",
                            "model: rbm, data: cold, sampler: gibbs, chains"),
                   "pipeline.yaml:6:33: key 'samples' of component 'cold' names $run/gen.npy, which stage 1 "
                   "(generate) writes, but stage 1 (generate) uses component 'cold' in that same stage");
    expect_refused(
        "folder_itself", replaced(base_pipeline, "samples: $run/gen.npy", "samples: $run/"),
        "pipeline.yaml:6:33: key 'samples' of dataset 'npy' names the run folder itself; give a file "
        "in it, e.g. $run/samples.npy\n"
        "  while validating component 'cold' (plugin file " +
            std::string(ANSATZ_TEST_PLUGIN_DIR) + "/libansatz_npy.so)");
}

TEST_CASE("sample: bad trace_every and burn_in keys get one sentence each", "[generate][bad-input]")
{
    const std::string sampling =
        base_pipeline + "  - sample:   {model: rbm, sampler: gibbs, count: 4, steps: 10}\n";
    expect_refused("burn_in", replaced(sampling, "steps: 10}", "steps: 10, burn_in: 10}"),
                   "pipeline.yaml:12:74: stage 3 (sample): burn_in (10) must be below steps (10): the "
                   "diagnostics' traces are recorded after the burn-in");
    expect_refused(
        "trace_every", replaced(sampling, "steps: 10}", "steps: 10, trace_every: -1}"),
        "pipeline.yaml:12:78: key 'trace_every' of stage 3 (sample) is -1, out of range: it must be >= 0");
}

TEST_CASE("sample: the diagnostics columns come with trace_every and a later dataset reads the samples",
          "[generate]")
{
    // 32 chains of a 6 x 3 RBM, 400 sweeps: traces every 5 sweeps after 100 (60 draws per chain); a
    // second sample stage records none. The first stage's samples are read back through $run/.
    const std::string text =
        "pipeline: traced\n"
        "seed: 3\n"
        "components:\n"
        "  rbm:   {plugin: rbm, visible: 6, hidden: 3, init_std: 0.5}\n"
        "  gibbs: {plugin: gibbs}\n"
        "  drawn: {plugin: npy, samples: $run/stage1_samples.npy}\n"
        "  other: {plugin: rbm, hidden: 3}\n"
        "  cd:    {plugin: contrastive_divergence}\n"
        "  sgd:   {plugin: sgd, learning_rate: 0.1}\n"
        "stages:\n"
        "  - sample: {model: rbm, sampler: gibbs, count: 32, steps: 400, trace_every: 5, "
        "burn_in: 100}\n"
        "  - sample: {model: rbm, sampler: gibbs, count: 8, steps: 50, trace_every: 0}\n"
        "  - train:  {model: other, data: drawn, loss: cd, sampler: gibbs, optimizer: sgd, "
        "batch_size: 8}\n";
    const fs::path dir = ansatz::test::fresh_folder("generate/traced");
    write_text(dir / "pipeline.yaml", text);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.find(
              "sample [stage 1]: 60 draws per chain after 100 sweeps of burn-in, every 5: free_energy = ") !=
          std::string::npos);
    const auto rows = metrics_rows(*fs::directory_iterator(dir / "runs" / "traced"));
    REQUIRE(rows.size() == 3);
    for (const char* column :
         { "free_energy_mean", "free_energy_mean_stderr", "free_energy_tau", "free_energy_ess",
           "free_energy_rhat", "state_mean_mean", "state_mean_mean_stderr", "state_mean_tau",
           "state_mean_ess", "state_mean_rhat" })
    {
        INFO(column);
        CHECK(std::isfinite(std::stod(rows[0].at(column))));
        CHECK(rows[1].at(column).empty());
    }
    // A small RBM mixes: R-hat below 1.05, tau of a few draws, ESS near the 1920 draws.
    CHECK(std::stod(rows[0].at("free_energy_rhat")) < 1.05);
    CHECK(std::stod(rows[0].at("free_energy_ess")) > 500);
    CHECK(rows[2].at("type") == "train");
}

TEST_CASE("generate: a sampler that cannot temper the model says so before the first sweep",
          "[generate][bad-input]")
{
    // Gibbs tempers through the model's tempered functions, which the conformance fixture's RBM lacks.
    const fs::path dir = ansatz::test::fresh_folder("generate_bad/cannot_temper");
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_conformance_rbm.so",
                  dir / "plugins" / "libansatz_fixture_conformance_rbm.so");
    write_text(dir / "pipeline.yaml", "pipeline: bad\n"
                                      "seed: 1\n"
                                      "components:\n"
                                      "  rbm:   {plugin: conformance_rbm}\n"
                                      "  gibbs: {plugin: gibbs}\n"
                                      "stages:\n"
                                      "  - generate: {model: rbm, sampler: gibbs, chains: 4, burn_in: 10, "
                                      "samples: 5, betas: [0.5], to: gen}\n");
    const auto r =
        run_ansatz({ "run", "pipeline.yaml", "--runs", "runs", "--plugin-path", "plugins" }, dir, 60);
    CHECK(r.status == 2);
    CHECK(r.err.find(
              "pipeline.yaml:7:15: stage 1 (generate): sampler 'gibbs' cannot temper this model: a tempered "
              "Gibbs sweep needs the model's tempered functions (tempered_free_energy + base_log_partition "
              "+ tempered_conditional), and it has ") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "runs" / "bad" / "finished"));
}

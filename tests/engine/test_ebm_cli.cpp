// A deep energy-based model end to end through the CLI, in small: images read in [-1, 1] and padded,
// a convolutional neural_energy, contrastive divergence with the energy penalty and noisy data, Langevin
// negatives from a replay buffer, the AUROC evaluator, and samples drawn from the buffer (steps: 0) and
// from fresh noise. A run killed in the middle of an epoch and resumed ends with the same checkpoint files
// (the sampler's buffer among them), samples and metrics as a run that never stopped.
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::untimed;
using ansatz::test::write_text;

namespace
{

// 48 images of 6 x 6 (padded to 8 x 8), batches of 8: 6 batches an epoch, 3 epochs.
const std::string pipeline = R"(pipeline: ebm
seed: 5
threads: 1
components:
  data:     {plugin: idx, images: images.idx, range: [-1, 1], pad: 1}
  energy:   {plugin: neural_energy, filters: [4, 8], kernel: [3], dense: [8], bounds: [-1, 1]}
  langevin: {plugin: langevin, steps: 5, step_size: 10, noise: 0.005, clip_gradient: 0.03, buffer: 32,
             restart: 0.05}
  fresh:    {plugin: langevin, steps: 5, step_size: 10, noise: 0.005, clip_gradient: 0.03}
  cd:       {plugin: contrastive_divergence, energy_penalty: 0.1, data_noise: 0.005}
  adam:     {plugin: adam, learning_rate: 0.001}
  auroc:    {plugin: energy_auroc, noise: 100}
stages:
  - train:    {model: energy, data: data, loss: cd, sampler: langevin, optimizer: adam, epochs: 3, batch_size: 8}
  - evaluate: {model: energy, data: data, evaluators: [auroc]}
  - sample:   {model: energy, sampler: langevin, count: 16, steps: 0}
  - sample:   {model: energy, sampler: fresh, count: 16, steps: 30}
)";

fs::path setup(const std::string& name)
{
    const fs::path dir = ansatz::test::fresh_folder("ebm_cli/" + name);
    write_text(dir / "pipeline.yaml", pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images(230, 20));
    return dir;
}

fs::path only_run(const fs::path& dir)
{
    return *fs::directory_iterator(dir / "runs" / "ebm");
}

std::map<std::string, std::string> outputs(const fs::path& run)
{
    std::map<std::string, std::string> files = ansatz::test::checkpoint_files(run);
    for (const char* f : { "stage3_samples.npy", "stage4_samples.npy" })
        files[f] = read_text(run / f);
    files["metrics.csv"] = untimed(read_text(run / "metrics.csv"));
    return files;
}

const std::map<std::string, std::string>& reference()
{
    static const std::map<std::string, std::string> r = [] {
        const fs::path dir = setup("reference-" + std::to_string(::getpid()));
        const auto result = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        INFO(result.err);
        REQUIRE(result.status == 0);
        return outputs(only_run(dir));
    }();
    return r;
}

// The value of a column in the last row of metrics.csv that has it.
double last_value(const std::string& csv, const std::string& column)
{
    std::istringstream in(csv);
    std::string header;
    std::getline(in, header);
    std::vector<std::string> names;
    for (std::istringstream h(header); h.good();)
    {
        std::string name;
        std::getline(h, name, ',');
        names.push_back(name);
    }
    const auto at = std::find(names.begin(), names.end(), column);
    REQUIRE(at != names.end());
    const size_t index = static_cast<size_t>(at - names.begin());
    double value = std::nan("");
    for (std::string line; std::getline(in, line);)
    {
        std::istringstream row(line);
        std::string cell;
        for (size_t i = 0; i <= index && std::getline(row, cell, ','); ++i)
            if (i == index && !cell.empty())
                value = std::stod(cell);
    }
    return value;
}

} // namespace

TEST_CASE(
    "ebm: a small deep EBM trains, reports its energies and AUROC, and draws from its buffer and from noise",
    "[ebm][cli]")
{
    const auto& files = reference();
    for (const char* piece :
         { "langevin.state.buffer.npy", "energy.net.0.weight.npy", "adam.state.step.npy" })
        CHECK(files.count(std::string("stage1-epoch3/") + piece) == 1);
    const std::string& csv = files.at("metrics.csv");
    for (const char* column :
         { "free_energy_data", "free_energy_samples", "energy_penalty", "auroc", "auroc_stderr" })
    {
        INFO(column);
        CHECK(csv.find(column) != std::string::npos);
    }
    // The energy already tells these 48 images from uniform noise after 18 steps (seed 5, 100 noise rows).
    CHECK(last_value(csv, "auroc") > 0.9);
    // Both sample stages wrote a picture (8 x 8 images in [-1, 1], mapped to grey by the model's box).
    const fs::path dir = setup("pictures");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    REQUIRE(r.status == 0);
    CHECK(fs::exists(only_run(dir) / "stage3_samples.png"));
    CHECK(fs::exists(only_run(dir) / "stage4_samples.png"));
}

TEST_CASE("ebm: killed in the middle of an epoch and resumed, the run ends byte-equal (the buffer included)",
          "[ebm][resume]")
{
    const std::map<std::string, std::string>& want = reference();
    const fs::path dir = setup("killed");
    auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, { "ANSATZ_FAULT=batch:9" });
    REQUIRE(r.status == 128 + 9); // epoch 2, batch 4; resumed after epoch 1
    const fs::path run = only_run(dir);
    r = run_ansatz({ "run", "--resume", run.string() }, dir);
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

TEST_CASE("bad input: the deep EBM's keys get one sentence and exit status 2 before any output",
          "[ebm][cli][bad-input]")
{
    const auto refused = [](const std::string& name, const std::string& from, const std::string& to) {
        REQUIRE(pipeline.find(from) != std::string::npos);
        std::string text = pipeline;
        text.replace(text.find(from), from.size(), to);
        const fs::path dir = ansatz::test::fresh_folder("ebm_cli/bad/" + name);
        write_text(dir / "pipeline.yaml", text);
        write_text(dir / "images.idx", ansatz::test::square_images(230, 20));
        const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, 120);
        CHECK(r.status == 2);
        CHECK_FALSE(fs::exists(dir / "runs"));
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') <= 2); // one sentence (and where it was found)
        return r.err;
    };
    const std::string plugins = ANSATZ_TEST_PLUGIN_DIR;
    CHECK(refused("bounds", "bounds: [-1, 1]}", "bounds: [1, -1]}") ==
          "component 'energy' (model 'neural_energy' from " + plugins +
              "/libansatz_neural_energy.so): key bounds is [1, -1], which is not an interval [low, high] of "
              "finite numbers with low < high\n");
    CHECK(refused("range", "range: [-1, 1]", "range: [1, -1]") ==
          "component 'data' (dataset 'idx' from " + plugins +
              "/libansatz_idx.so): key range is [1, -1], which is not an interval [low, high] of finite "
              "numbers "
              "with low < high\n");
    CHECK(
        refused("range_binarize", "range: [-1, 1]", "range: [-1, 1], binarize: 0.5") ==
        "component 'data' (dataset 'idx' from " + plugins +
            "/libansatz_idx.so): key range maps grey levels to an interval, but key binarize makes them 0 or "
            "1; give one of them\n");
    CHECK(refused("hidden_conv", "dense: [8]", "dense: [8], hidden: [4]") ==
          "component 'energy' (model 'neural_energy' from " + plugins +
              "/libansatz_neural_energy.so): key hidden belongs to architecture: mlp, but this neural_energy "
              "is "
              "architecture: conv (its layers are filters, kernel, stride and dense)\n");
    const auto schema = [&](const std::string& where, const std::string& sentence,
                            const std::string& component, const std::string& file) {
        return "pipeline.yaml:" + where + ": " + sentence + "\n  while validating component '" + component +
               "' (plugin file " + plugins + "/libansatz_" + file + ".so)\n";
    };
    CHECK(refused("pad", "pad: 1}", "pad: -1}") ==
          schema("5:68", "key 'pad' of dataset 'idx' is -1, out of range: it must be [0, 4096]", "data",
                 "idx"));
    CHECK(
        refused("penalty", "energy_penalty: 0.1", "energy_penalty: -0.1") ==
        schema("10:62",
               "key 'energy_penalty' of loss 'contrastive_divergence' is -0.1, out of range: it must be >= 0",
               "cd", "contrastive_divergence"));
    CHECK(refused("data_noise", "data_noise: 0.005", "data_noise: -1") ==
          schema("10:79",
                 "key 'data_noise' of loss 'contrastive_divergence' is -1, out of range: it must be >= 0",
                 "cd", "contrastive_divergence"));
    CHECK(refused("auroc_noise", "noise: 100}", "noise: -5}") ==
          schema("12:43",
                 "key 'noise' of evaluator 'energy_auroc' is -5, out of range: it must be [0, 16777216]",
                 "auroc", "energy_auroc"));
    CHECK(refused("activation", "dense: [8]", "dense: [8], activation: gelu") ==
          schema("6:91",
                 "key 'activation' of model 'neural_energy' is 'gelu', which is not one of: "
                 "swish,relu,leaky_relu,tanh,sigmoid,softplus (did you mean 'relu'?)",
                 "energy", "neural_energy"));
    CHECK_THAT(refused("steps", "count: 16, steps: 0}", "count: 16, steps: -1}"), Catch::Contains("steps"));
}

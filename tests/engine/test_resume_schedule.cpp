// Exact resume with Adam and a learning-rate schedule: the rate is a function of the host's progress
// (epoch, step), so a run killed in the middle of a later epoch and resumed must see the same rate at
// every batch as a run that never stopped, and end with the same checkpoint files byte for byte, the
// same samples and the same metrics.csv rows (timing columns aside). Per-batch scheduling makes the
// first batch after a resume depend on the step count the host reports there.
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::untimed;
using ansatz::test::write_text;

namespace
{

// 48 samples in batches of 8: 6 batches an epoch, 5 epochs; a warm-up of one and a half epochs,
// then (times) a cosine over the stage, the rate changing at every batch.
const std::string schedule_keys = "schedule: cosine, schedule_per: batch, warmup_epochs: 1.5, "
                                  "warmup_start_factor: 0.1, min_learning_rate: 0.001";

std::string pipeline_with(const std::string& adam_keys)
{
    return R"(pipeline: scheduled
seed: 11
threads: 1
components:
  data:  {plugin: idx, images: images.idx, binarize_sampling: true}
  rbm:   {plugin: rbm, hidden: 6, init_std: 0.1}
  gibbs: {plugin: gibbs}
  pcd:   {plugin: contrastive_divergence, persistent: true, chains: 5}
  adam:  {plugin: adam, learning_rate: 0.02, amsgrad: true, weight_decay: 0.001, )" +
           adam_keys + R"(}
stages:
  - train:  {model: rbm, data: data, loss: pcd, sampler: gibbs, optimizer: adam, epochs: 5, batch_size: 8}
  - sample: {model: rbm, sampler: gibbs, count: 4, steps: 20}
)";
}

fs::path setup(const std::string& name, const std::string& text = pipeline_with(schedule_keys))
{
    const fs::path dir = ansatz::test::fresh_folder("resume_schedule/" + name);
    write_text(dir / "pipeline.yaml", text);
    write_text(dir / "images.idx", ansatz::test::square_images(200, 40));
    return dir;
}

fs::path only_run(const fs::path& dir)
{
    return *fs::directory_iterator(dir / "runs" / "scheduled");
}

// Every file of the final checkpoint and the samples, by name, and metrics.csv without timing.
std::map<std::string, std::string> outputs(const fs::path& run)
{
    std::map<std::string, std::string> files = ansatz::test::checkpoint_files(run);
    files["stage2_samples.npy"] = read_text(run / "stage2_samples.npy");
    files["metrics.csv"] = untimed(read_text(run / "metrics.csv"));
    return files;
}

const std::map<std::string, std::string>& reference()
{
    // One per test process: ctest runs the test cases of this file in parallel processes.
    static const std::map<std::string, std::string> r = [] {
        const fs::path dir = setup("reference-" + std::to_string(::getpid()));
        const auto result = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        INFO(result.err);
        REQUIRE(result.status == 0);
        return outputs(only_run(dir));
    }();
    return r;
}

// Kills a run at each fault in turn (the first in `ansatz run`, the others in the resumes), resumes
// it to the end and compares every output with the reference.
void kill_and_resume(const std::string& name, const std::vector<std::string>& faults)
{
    const std::map<std::string, std::string>& want = reference();
    const fs::path dir = setup(name);
    auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, { "ANSATZ_FAULT=" + faults[0] });
    REQUIRE(r.status == 128 + 9); // SIGKILL
    const fs::path run = only_run(dir);
    for (size_t k = 1; k <= faults.size(); ++k)
    {
        const std::vector<std::string> env = k < faults.size()
                                                 ? std::vector<std::string>{ "ANSATZ_FAULT=" + faults[k] }
                                                 : std::vector<std::string>{};
        r = run_ansatz({ "run", "--resume", run.string() }, dir, env);
        INFO("after " << faults[k - 1] << ": " << r.err);
        REQUIRE(r.status == (k < faults.size() ? 128 + 9 : 0));
    }
    const std::map<std::string, std::string> got = outputs(run);
    REQUIRE(got.size() == want.size());
    for (const auto& [file, bytes] : want)
    {
        INFO(file);
        REQUIRE(got.count(file) == 1);
        CHECK(got.at(file) == bytes);
    }
}

} // namespace

TEST_CASE("resume with adam: the checkpoint holds its step count and moments, and the schedule acts",
          "[resume][adam][schedule]")
{
    const auto& files = reference();
    for (const char* piece :
         { "adam.state.step.npy", "adam.state.exp_avg.weights.npy", "adam.state.exp_avg_sq.weights.npy",
           "adam.state.max_exp_avg_sq.weights.npy", "adam.state.exp_avg.hidden_bias.npy", "rbm.weights.npy",
           "pcd.state.chains.npy" })
        CHECK(files.count(std::string("stage1-epoch5/") + piece) == 1);

    // The same run with a constant rate ends elsewhere: the schedule is in effect.
    const fs::path dir = setup("constant", pipeline_with("schedule: constant"));
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(read_text(only_run(dir) / "checkpoints" / "stage1-epoch5" / "rbm.weights.npy") !=
          files.at("stage1-epoch5/rbm.weights.npy"));
}

TEST_CASE("resume with adam and a per-batch cosine schedule: killed mid-epoch, it ends byte-equal",
          "[resume][adam][schedule]")
{
    kill_and_resume("mid_epoch", { "batch:16" }); // epoch 3, batch 4; resumed after epoch 2
}

TEST_CASE("resume with adam and a per-batch cosine schedule: killed in the warm-up, while a checkpoint is "
          "written, and again after resuming, it ends byte-equal",
          "[resume][adam][schedule]")
{
    // Epoch 2, batch 3 (in the warm-up); then while writing epoch 2's checkpoint; then epoch 3, batch 2.
    kill_and_resume("twice", { "batch:9", "checkpoint-write:2", "batch:14" });
}

// The langevin sampler through the host: its replay buffer is saved in every checkpoint, and a run
// killed in the middle of training and resumed ends byte-equal to one that never stopped (a Gaussian
// RBM, real visible units with dF/dv, trained by CD whose negatives come from the buffer).
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <map>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::untimed;
using ansatz::test::write_text;

namespace
{

const std::string pipeline = R"(pipeline: langevin-resumable
seed: 11
threads: 1
components:
  data:  {plugin: idx, images: images.idx}
  rbm:   {plugin: rbm, hidden: 6, init_std: 0.1, visible_units: gaussian}
  lgv:   {plugin: langevin, steps: 3, step_size: 0.02, noise: 0.2, clip_gradient: 2.0, buffer: 20, restart: 0.1}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 0.01}
stages:
  - train:  {model: rbm, data: data, loss: cd, sampler: lgv, optimizer: sgd, epochs: 4, batch_size: 8}
  - sample: {model: rbm, sampler: lgv, count: 4, steps: 20}
)";

fs::path setup(const std::string& name)
{
    const fs::path dir = ansatz::test::fresh_folder("langevin_cli/" + name);
    write_text(dir / "pipeline.yaml", pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images());
    return dir;
}

fs::path only_run(const fs::path& dir)
{
    return *fs::directory_iterator(dir / "runs" / "langevin-resumable");
}

std::map<std::string, std::string> outputs(const fs::path& run)
{
    std::map<std::string, std::string> files = ansatz::test::checkpoint_files(run);
    files["stage2_samples.npy"] = read_text(run / "stage2_samples.npy");
    return files;
}

} // namespace

TEST_CASE("langevin: the replay buffer is in the checkpoint - and a run killed mid-epoch and resumed ends "
          "byte-equal to an uninterrupted one",
          "[langevin][resume]")
{
    const fs::path ref_dir = setup("reference");
    auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, ref_dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path ref_run = only_run(ref_dir);
    const std::map<std::string, std::string> want = outputs(ref_run);
    for (const char* piece : { "lgv.state.buffer.npy", "lgv.state.counts.npy", "lgv.state.sums.npy" })
        CHECK(want.count(std::string("stage1-epoch4/") + piece) == 1);
    // The buffer after 4 epochs x 6 batches of 8 chains: full (20 rows of 36 values).
    const std::string metrics = read_text(ref_run / "metrics.csv");
    CHECK(metrics.find("restarted") != std::string::npos);
    CHECK(metrics.find("buffer_filled") != std::string::npos);

    const fs::path dir = setup("killed");
    r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, { "ANSATZ_FAULT=batch:9" });
    REQUIRE(r.status == 128 + 9); // SIGKILL in epoch 2, after the checkpoint of epoch 1
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
    CHECK(untimed(read_text(run / "metrics.csv")) == untimed(metrics));
}

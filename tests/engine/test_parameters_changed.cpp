// ABI 2.3 end to end: the host calls a model's parameters_changed after every write of its parameters
// (each optimizer step, a checkpoint restored on --resume). The conformance fixture's RBM checks every
// call against the values its last parameters_changed saw and fails the call when they differ, so a
// host that forgot one of them fails these runs.
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

TEST_CASE("abi 2.3: a training run calls parameters_changed after every optimizer step and after a resumed "
          "run restores the parameters",
          "[abi23][cli][resume]")
{
    // The fixture's RBM generates its own training rows (6 binary units), then trains on them: 3 epochs
    // of 8 batches, every step writes the parameters.
    const fs::path dir = ansatz::test::fresh_folder("parameters_changed/train");
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_conformance_rbm.so",
                  dir / "plugins" / "libansatz_fixture_conformance_rbm.so");
    write_text(
        dir / "pipeline.yaml",
        "pipeline: announced\n"
        "seed: 5\n"
        "threads: 1\n"
        "components:\n"
        "  teacher: {plugin: conformance_rbm}\n"
        "  student: {plugin: conformance_rbm, init_std: 0.1}\n"
        "  gibbs:   {plugin: gibbs}\n"
        "  rows:    {plugin: npy, samples: $run/rows.npy}\n"
        "  cd:      {plugin: contrastive_divergence, persistent: true, chains: 4}\n"
        "  sgd:     {plugin: sgd, learning_rate: 0.1, momentum: 0.5}\n"
        "stages:\n"
        "  - generate: {model: teacher, sampler: gibbs, chains: 8, burn_in: 20, samples: 8, to: rows}\n"
        "  - train: {model: student, data: rows, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 3, "
        "batch_size: 8, checkpoint_every: 1}\n"
        "  - sample: {model: student, sampler: gibbs, count: 4, steps: 5, image: false}\n");
    const std::vector<std::string> args{
        "run", "pipeline.yaml", "--runs", "runs", "--plugin-path", "plugins"
    };
    auto r = run_ansatz(args, dir, 120);
    INFO(r.err);
    REQUIRE(r.status == 0);

    // Killed in the third epoch, resumed from the second epoch's checkpoint: the restored parameters
    // are announced before the loss's first call.
    const fs::path again = ansatz::test::fresh_folder("parameters_changed/resume");
    fs::create_directories(again / "plugins");
    fs::copy_file(dir / "plugins" / "libansatz_fixture_conformance_rbm.so",
                  again / "plugins" / "libansatz_fixture_conformance_rbm.so");
    fs::copy_file(dir / "pipeline.yaml", again / "pipeline.yaml");
    r = run_ansatz(args, again, { "ANSATZ_FAULT=batch:20" }, 120);
    REQUIRE(r.status == 128 + 9); // SIGKILL
    const fs::path run = *fs::directory_iterator(again / "runs" / "announced");
    r = run_ansatz({ "run", "--resume", run.string(), "--plugin-path", "plugins" }, again, 120);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(fs::exists(run / "finished"));
}

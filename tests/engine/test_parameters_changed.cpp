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
    const fs::path dir = ansatz::test::fixture_rbm_training(
        "parameters_changed/train", "announced", ", momentum: 0.5",
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

// Bad optimizer keys (adam's and the schedule keys sgd and adam share): each case is one message, the
// whole of stderr checked exactly, exit status 2, and no run folder ({PLUGINS} is the in-tree plugin
// folder). The schema's ranges and choices are refused when the pipeline is validated; keys that
// contradict each other when the optimizer is created, before the run folder exists.
#include "support/cli.hpp"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

// The optimizer is on line 8; its keys start at column 45 for adam, 44 for sgd (the columns below
// are those of the values).
const std::string pipeline_head = R"(pipeline: bad-optimizer
seed: 1
components:
  data:  {plugin: idx, images: images.idx}
  rbm:   {plugin: rbm, hidden: 4}
  gibbs: {plugin: gibbs, steps: 1}
  cd:    {plugin: contrastive_divergence}
)";

// Runs the pipeline whose optimizer is `{plugin: <plugin>, learning_rate: 0.1, <keys>}` and checks
// that it is refused with exactly `message` (and a newline), exit status 2, and no run folder.
void expect(const std::string& name, const std::string& plugin, const std::string& keys, std::string message)
{
    const fs::path dir = ansatz::test::fresh_folder("bad_optimizer_inputs/" + name);
    const std::string padded = plugin + ":" + std::string(6 - plugin.size(), ' ');
    write_text(dir / "pipeline.yaml",
               pipeline_head + "  " + padded + "{plugin: " + plugin + ", learning_rate: 0.1, " + keys +
                   "}\nstages:\n  - train: {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: " +
                   plugin + ", epochs: 2, batch_size: 4}\n");
    write_text(dir / "images.idx", ansatz::test::square_images());
    const ansatz::test::CliResult r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    for (size_t at = message.find("{PLUGINS}"); at != std::string::npos; at = message.find("{PLUGINS}"))
        message.replace(at, 9, ANSATZ_TEST_PLUGIN_DIR);
    CHECK(r.status == 2);
    CHECK(r.err == message + "\n");
    CHECK_FALSE(fs::exists(dir / "runs"));
}

const std::string while_adam =
    "\n  while validating component 'adam' (plugin file {PLUGINS}/libansatz_adam.so)";
const std::string created_adam = "component 'adam' (optimizer 'adam' from {PLUGINS}/libansatz_adam.so): ";

} // namespace

TEST_CASE("bad optimizer input: the base pipeline of these tests runs with adam and with sgd",
          "[cli][bad-input][adam]")
{
    for (const std::string plugin : { "adam", "sgd" })
    {
        const fs::path dir = ansatz::test::fresh_folder("bad_optimizer_inputs/valid_" + plugin);
        write_text(
            dir / "pipeline.yaml",
            pipeline_head + "  opt:   {plugin: " + plugin +
                ", learning_rate: 0.1, schedule: cosine, warmup_epochs: 1}\nstages:\n  - train: {model: "
                "rbm, data: data, loss: cd, sampler: gibbs, optimizer: opt, epochs: 2, batch_size: 4}\n");
        write_text(dir / "images.idx", ansatz::test::square_images());
        const ansatz::test::CliResult r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        INFO(r.err);
        CHECK(r.status == 0);
    }
}

TEST_CASE("bad optimizer input: an unknown schedule, with a suggestion", "[cli][bad-input][adam]")
{
    expect("unknown_schedule", "adam", "schedule: cosin",
           "pipeline.yaml:8:55: key 'schedule' of optimizer 'adam' is 'cosin', which is not one of: "
           "constant,step,exponential,cosine (did you mean 'cosine'?)" +
               while_adam);
    expect("unknown_schedule_per", "adam", "schedule: cosine, schedule_per: batches",
           "pipeline.yaml:8:77: key 'schedule_per' of optimizer 'adam' is 'batches', which is not one of: "
           "epoch,batch (did you mean 'batch'?)" +
               while_adam);
}

TEST_CASE("bad optimizer input: adam's betas must be below 1, eps above 0", "[cli][bad-input][adam]")
{
    expect("beta1", "adam", "beta1: 1",
           "pipeline.yaml:8:52: key 'beta1' of optimizer 'adam' is 1, out of range: it must be [0, 1)" +
               while_adam);
    expect("beta2", "adam", "beta2: 1.5",
           "pipeline.yaml:8:52: key 'beta2' of optimizer 'adam' is 1.5, out of range: it must be [0, 1)" +
               while_adam);
    expect("eps", "adam", "eps: 0",
           "pipeline.yaml:8:50: key 'eps' of optimizer 'adam' is 0, out of range: it must be > 0" +
               while_adam);
}

TEST_CASE("bad optimizer input: a negative gamma, a step size of 0, a negative warm-up",
          "[cli][bad-input][adam]")
{
    expect("gamma", "adam", "schedule: step, step_size: 2, gamma: -0.5",
           "pipeline.yaml:8:82: key 'gamma' of optimizer 'adam' is -0.5, out of range: it must be > 0" +
               while_adam);
    expect("step_size", "adam", "schedule: step, step_size: 0",
           "pipeline.yaml:8:72: key 'step_size' of optimizer 'adam' is 0, out of range: it must be >= 1" +
               while_adam);
    expect("warmup", "adam", "warmup_epochs: -1",
           "pipeline.yaml:8:60: key 'warmup_epochs' of optimizer 'adam' is -1, out of range: it must be [0, "
           "1000000000]" +
               while_adam);
}

TEST_CASE("bad optimizer input: a schedule without the key it needs", "[cli][bad-input][adam]")
{
    expect("step_without_size", "adam", "schedule: step",
           created_adam + "schedule: step needs step_size (the epochs between two multiplications by gamma)");
    expect("exponential_without_gamma", "adam", "schedule: exponential",
           created_adam + "schedule: exponential needs gamma (the factor per epoch)");
}

TEST_CASE("bad optimizer input: a schedule key that the chosen schedule has no use for",
          "[cli][bad-input][adam]")
{
    expect("gamma_cosine", "adam", "schedule: cosine, gamma: 0.5",
           created_adam + "gamma applies only to schedule: step or exponential (the schedule is 'cosine')");
    expect("step_size_exponential", "adam", "schedule: exponential, gamma: 0.5, step_size: 2",
           created_adam + "step_size applies only to schedule: step (the schedule is 'exponential')");
    expect("floor_constant", "adam", "min_learning_rate: 0.01",
           created_adam + "min_learning_rate applies only to schedule: cosine (the schedule is 'constant')");
    expect("start_factor_without_warmup", "adam", "warmup_start_factor: 0.5",
           created_adam + "warmup_start_factor applies only with warmup_epochs > 0");
}

TEST_CASE("bad optimizer input: a cosine floor above the rate, a fractional warm-up per epoch",
          "[cli][bad-input][adam]")
{
    expect("floor_above", "adam", "schedule: cosine, min_learning_rate: 0.5",
           created_adam + "min_learning_rate 0.5 is above learning_rate 0.1; the cosine schedule falls from "
                          "learning_rate to min_learning_rate");
    expect("fractional_warmup", "adam", "warmup_epochs: 2.5",
           created_adam +
               "warmup_epochs 2.5 is not a whole number of epochs, and with schedule_per: epoch the "
               "rate changes only between epochs; use schedule_per: batch for a fractional warm-up");
}

TEST_CASE("bad optimizer input: sgd refuses the same schedule keys with the same messages",
          "[cli][bad-input]")
{
    expect("sgd_unknown_schedule", "sgd", "schedule: linear",
           "pipeline.yaml:8:54: key 'schedule' of optimizer 'sgd' is 'linear', which is not one of: "
           "constant,step,exponential,cosine" +
               std::string("\n  while validating component 'sgd' (plugin file {PLUGINS}/libansatz_sgd.so)"));
    expect(
        "sgd_step_without_size", "sgd", "schedule: step, gamma: 0.5",
        "component 'sgd' (optimizer 'sgd' from {PLUGINS}/libansatz_sgd.so): schedule: step needs step_size "
        "(the epochs between two multiplications by gamma)");
    // sgd's own refusal, named once (through the engine's prefix only).
    expect(
        "sgd_nesterov", "sgd", "nesterov: true",
        "component 'sgd' (optimizer 'sgd' from {PLUGINS}/libansatz_sgd.so): nesterov needs momentum > 0 and "
        "dampening 0");
}

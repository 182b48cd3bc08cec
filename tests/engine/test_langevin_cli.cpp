// The langevin sampler through the host: its replay buffer is saved in every checkpoint, and a run
// killed in the middle of training and resumed ends byte-equal to one that never stopped (a Gaussian
// RBM, real visible units with dF/dv, trained by CD whose negatives come from the buffer).
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

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

namespace
{

// The bad-input cases (tests/engine/test_bad_inputs.cpp style): one pipeline, one key changed, the whole
// of stderr checked ({PLUGINS}: the in-tree plugin folder) and exit status 2.
const std::string bad_base = R"(pipeline: bad-input
seed: 1
components:
  data:  {plugin: idx, images: images.idx}
  rbm:   {plugin: rbm, hidden: 4, visible_units: gaussian}
  lgv:   {plugin: langevin, steps: 2}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 0.1}
stages:
  - train:  {model: rbm, data: data, loss: cd, sampler: lgv, optimizer: sgd, epochs: 1, batch_size: 4}
)";

std::string replace_all(std::string s, const std::string& from, const std::string& to)
{
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

struct Outcome
{
    int status;
    std::string err;
};

Outcome with_change(const std::string& name, const std::string& from, const std::string& to,
                    const std::vector<std::string>& extra = {})
{
    REQUIRE(bad_base.find(from) != std::string::npos);
    const fs::path dir = ansatz::test::fresh_folder("langevin_cli/bad/" + name);
    write_text(dir / "pipeline.yaml", replace_all(bad_base, from, to));
    write_text(dir / "images.idx", ansatz::test::square_images());
    std::vector<std::string> args = { "run", "pipeline.yaml", "--runs", "runs" };
    args.insert(args.end(), extra.begin(), extra.end());
    const ansatz::test::CliResult r = run_ansatz(args, dir);
    return { r.status, r.err };
}

void expect(const Outcome& o, const std::string& expected)
{
    CHECK(o.status == 2);
    CHECK(o.err == replace_all(expected, "{PLUGINS}", ANSATZ_TEST_PLUGIN_DIR) + "\n");
}

// A key of the langevin component at column `column` of line 6.
std::string key_error(int column, const std::string& what)
{
    return "pipeline.yaml:6:" + std::to_string(column) + ": key " + what +
           "\n  while validating component 'lgv' (plugin file {PLUGINS}/libansatz_langevin.so)";
}

} // namespace

TEST_CASE("bad input: langevin's keys out of range or of the wrong type", "[cli][bad-input][langevin]")
{
    const std::string from = "steps: 2}";
    expect(with_change("steps_zero", from, "steps: 0}"),
           key_error(36, "'steps' of sampler 'langevin' is 0, out of range: it must be >= 1"));
    expect(with_change("steps_float", from, "steps: 2.5}"),
           key_error(36, "'steps' of sampler 'langevin' expects an int, got '2.5'"));
    expect(with_change("step_size_zero", from, "steps: 2, step_size: 0}"),
           key_error(50, "'step_size' of sampler 'langevin' is 0, out of range: it must be > 0"));
    expect(with_change("step_size_word", from, "steps: 2, step_size: big}"),
           key_error(50, "'step_size' of sampler 'langevin' expects a float, got 'big'"));
    expect(with_change("noise_negative", from, "steps: 2, noise: -0.1}"),
           key_error(46, "'noise' of sampler 'langevin' is -0.1, out of range: it must be >= 0"));
    expect(with_change("clip_zero", from, "steps: 2, clip_gradient: 0}"),
           key_error(54, "'clip_gradient' of sampler 'langevin' is 0, out of range: it must be > 0"));
    expect(with_change("adjusted_word", from, "steps: 2, adjusted: maybe}"),
           key_error(49, "'adjusted' of sampler 'langevin' expects a bool (true or false), got 'maybe'"));
    expect(with_change("buffer_negative", from, "steps: 2, buffer: -1}"),
           key_error(47, "'buffer' of sampler 'langevin' is -1, out of range: it must be >= 0"));
    expect(with_change("buffer_float", from, "steps: 2, buffer: 1.5}"),
           key_error(47, "'buffer' of sampler 'langevin' expects an int, got '1.5'"));
    expect(with_change("restart_above_one", from, "steps: 2, buffer: 4, restart: 1.5}"),
           key_error(59, "'restart' of sampler 'langevin' is 1.5, out of range: it must be [0, 1]"));
}

TEST_CASE("bad input: langevin's refusals - restart without a buffer - adjusted without noise - a binary "
          "model - a model without dF/dx",
          "[cli][bad-input][langevin]")
{
    const std::string component =
        "component 'lgv' (sampler 'langevin' from {PLUGINS}/libansatz_langevin.so): ";
    expect(with_change("restart_without_buffer", "steps: 2}", "steps: 2, restart: 0.1}"),
           component + "restart is 0.1, but buffer is 0: without a replay buffer every chain continues from "
                       "where it is (set buffer, or drop restart)");
    expect(with_change("adjusted_without_noise", "steps: 2}", "steps: 2, adjusted: true, noise: 0}"),
           component +
               "adjusted: true needs noise > 0: the Metropolis-Hastings ratio of the proposal divides "
               "by noise^2 (set noise, or adjusted: false)");
    // Refused at bind, when the train stage starts (after the run folder's line on stderr).
    const Outcome binary = with_change("binary_model", "hidden: 4, visible_units: gaussian}", "hidden: 4}");
    CHECK(binary.status == 2);
    CHECK(binary.err.rfind("run folder: runs/bad-input/", 0) == 0);
    CHECK(binary.err.substr(binary.err.find('\n') + 1) ==
          replace_all(component, "{PLUGINS}", ANSATZ_TEST_PLUGIN_DIR) +
              "it needs real variables, but the model's variables are binary {0, 1}\n");
    // The host refuses the pairing when it validates the pipeline (needs = free_energy_grad_state).
    const fs::path extra = ansatz::test::fresh_folder("langevin_cli/energy_only_plugin");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_energy_only.so",
                  extra / "libansatz_fixture_energy_only.so");
    const Outcome o = with_change("no_state_gradient", "{plugin: rbm, hidden: 4, visible_units: gaussian}",
                                  "{plugin: energy_only}", { "--plugin-path", extra.string() });
    CHECK(o.status == 2);
    CHECK(o.err ==
          "pipeline.yaml:10:57: stage 1 (train): sampler 'lgv' needs the model's free_energy_grad_state, "
          "but model 'rbm' (plugin 'energy_only' from " +
              (extra / "libansatz_fixture_energy_only.so").string() + ") has only: free_energy\n");
}

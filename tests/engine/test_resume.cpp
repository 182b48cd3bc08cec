// Exact resume: a run killed (SIGKILL) at any moment, including in the middle of writing a
// checkpoint, and resumed with `ansatz run --resume DIR` ends with the same checkpoint files, byte
// for byte, the same samples and the same metrics.csv rows (timing columns aside) as a run that was
// never stopped. The kills are placed with the engine's fault points (ANSATZ_FAULT=NAME:N, fault.hpp).
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <map>
#include <sstream>
#include <sys/file.h>
#include <unistd.h>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::untimed;
using ansatz::test::write_text;

namespace
{

// PCD chains, momentum and its first-step flag, a Gibbs sweep counter, a shuffled data order and a
// sample stage after the train stage: every kind of state a resume must carry.
const std::string pipeline = R"(pipeline: resumable
seed: 7
threads: 1
components:
  data:  {plugin: idx, images: images.idx, binarize_sampling: true}
  rbm:   {plugin: rbm, hidden: 6, init_std: 0.1}
  gibbs: {plugin: gibbs}
  pcd:   {plugin: contrastive_divergence, persistent: true, chains: 5}
  sgd:   {plugin: sgd, learning_rate: 0.1, momentum: 0.5}
stages:
  - train:  {model: rbm, data: data, loss: pcd, sampler: gibbs, optimizer: sgd, epochs: 6, batch_size: 8}
  - sample: {model: rbm, sampler: gibbs, count: 4, steps: 20}
)";

fs::path setup(const std::string& name)
{
    const fs::path dir = ansatz::test::fresh_folder("resume/" + name);
    write_text(dir / "pipeline.yaml", pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images(200, 40));
    return dir;
}

fs::path only_run(const fs::path& dir)
{
    return *fs::directory_iterator(dir / "runs" / "resumable");
}

std::string untimed_metrics(const fs::path& run)
{
    return untimed(read_text(run / "metrics.csv"));
}

// Every file of the final checkpoint and the samples, by name.
std::map<std::string, std::string> outputs(const fs::path& run)
{
    std::map<std::string, std::string> files = ansatz::test::checkpoint_files(run);
    files["stage2_samples.npy"] = read_text(run / "stage2_samples.npy");
    return files;
}

struct Reference
{
    std::map<std::string, std::string> files;
    std::string metrics;
};

const Reference& reference()
{
    static const Reference r = [] {
        // One per test process: ctest runs the test cases of this file in parallel processes.
        const fs::path dir = setup("reference-" + std::to_string(::getpid()));
        const auto result = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        INFO(result.err);
        REQUIRE(result.status == 0);
        return Reference{ outputs(only_run(dir)), untimed_metrics(only_run(dir)) };
    }();
    return r;
}

// Kills a run at each fault in turn (the first in `ansatz run`, the others in the resumes), then
// resumes it to the end and compares it with the reference.
void kill_and_resume(const std::string& name, const std::vector<std::string>& faults)
{
    const Reference& want = reference();
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
    CHECK(r.out == run.string() + "\n");
    const std::map<std::string, std::string> got = outputs(run);
    REQUIRE(got.size() == want.files.size());
    for (const auto& [file, bytes] : want.files)
    {
        INFO(file);
        REQUIRE(got.count(file) == 1);
        CHECK(got.at(file) == bytes);
    }
    CHECK(untimed_metrics(run) == want.metrics);
    // Nothing hidden is left behind in the checkpoints folder.
    for (const auto& entry : fs::directory_iterator(run / "checkpoints"))
        CHECK(entry.path().filename().string().rfind('.', 0) != 0);
}

} // namespace

TEST_CASE("resume: the reference run keeps one checkpoint, of its last epoch, with every piece of state",
          "[resume]")
{
    const auto& files = reference().files;
    CHECK(files.count("stage1-epoch6/manifest.yaml") == 1);
    for (const char* piece :
         { "rbm.weights.npy", "rbm.visible_bias.npy", "rbm.hidden_bias.npy", "pcd.state.chains.npy",
           "pcd.state.chain_streams.npy", "gibbs.state.sweeps.npy", "sgd.state.first_step.npy",
           "sgd.state.momentum.weights.npy", "engine.state.order.npy", "engine.state.order_rng.npy",
           "metrics.csv" })
        CHECK(files.count(std::string("stage1-epoch6/") + piece) == 1);
}

TEST_CASE("resume: killed in the middle of an epoch, the resumed run ends byte-equal", "[resume]")
{
    kill_and_resume("mid_epoch", { "batch:9" });
}

TEST_CASE("resume: killed while a checkpoint is half written, the resumed run ends byte-equal", "[resume]")
{
    kill_and_resume("checkpoint_write", { "checkpoint-write:3" });
}

TEST_CASE("resume: killed between the new checkpoint and the removal of the old, it ends byte-equal",
          "[resume]")
{
    kill_and_resume("checkpoint_swap", { "checkpoint-swap:4" });
    kill_and_resume("checkpoint_remove", { "checkpoint-remove:2" });
}

TEST_CASE("resume: killed before the first checkpoint, after the last batch, and again while resuming",
          "[resume]")
{
    kill_and_resume("before_first", { "batch:3" });
    kill_and_resume("after_last_batch", { "batch:36" });
    kill_and_resume("twice", { "batch:10", "checkpoint-write:2", "batch:20" });
}

TEST_CASE("resume: bad requests get one sentence and exit status 2", "[resume][bad-input]")
{
    const fs::path dir = setup("bad");
    auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, { "ANSATZ_FAULT=batch:15" });
    REQUIRE(r.status == 128 + 9);
    const fs::path run = only_run(dir);

    r = run_ansatz({ "run", "--resume", (dir / "nowhere").string() }, dir);
    CHECK(r.status == 2);
    CHECK(r.err == "--resume: " + (dir / "nowhere").string() + " is not a folder (no such run).\n");

    r = run_ansatz({ "run", "--resume", run.string(), "--runs", "elsewhere" }, dir);
    CHECK(r.status == 2);
    CHECK(r.err == "--resume: --runs has no meaning here; the run goes on in " + run.string() + ".\n");

    r = run_ansatz({ "run", "--resume", (dir / "runs").string() }, dir);
    CHECK(r.status == 2);
    CHECK(r.err ==
          "--resume: " + (dir / "runs").string() + " is not a run folder: it has no pipeline.yaml.\n");

    write_text(dir / "other.yaml", "pipeline: other\n" + pipeline.substr(pipeline.find('\n') + 1));
    r = run_ansatz({ "run", "other.yaml", "--resume", run.string() }, dir);
    CHECK(r.status == 2);
    CHECK(r.err ==
          "--resume: " + run.string() + " is a run of pipeline 'resumable', not of 'other' (other.yaml).\n");

    r = run_ansatz({ "run", "pipeline.yaml", "--resume", run.string(), "--set", "components.rbm.hidden=7" },
                   dir);
    CHECK(r.status == 2);
    CHECK(r.err.find("was run with another configuration of pipeline 'resumable' than pipeline.yaml gives") !=
          std::string::npos);

    // The run folder's pipeline.yaml edited after the run began (another seed).
    const std::string resolved = read_text(run / "pipeline.yaml");
    write_text(run / "pipeline.yaml", resolved.substr(0, resolved.find("seed: 7")) + "seed: 8" +
                                          resolved.substr(resolved.find("seed: 7") + 7));
    r = run_ansatz({ "run", "--resume", run.string() }, dir);
    CHECK(r.status == 2);
    CHECK(r.err == "--resume: " + (run / "pipeline.yaml").string() +
                       " is not the pipeline the run was started with (it was changed, or the run's "
                       "pipeline.fingerprint is missing); put it back, or start a new run.\n");
    write_text(run / "pipeline.yaml", resolved);

    // A second resume while another process holds the run folder's lock.
    {
        const int fd = ::open((run / "run.lock").c_str(), O_CREAT | O_RDWR, 0644);
        REQUIRE(::flock(fd, LOCK_EX) == 0);
        r = run_ansatz({ "run", "--resume", run.string() }, dir);
        ::close(fd);
    }
    CHECK(r.status == 2);
    CHECK(r.err == "another ansatz process is running in " + run.string() + " (it holds " +
                       (run / "run.lock").string() + "); wait for it, or stop it first.\n");

    // A checkpoint whose manifest names a stage that is not a train stage.
    const fs::path checkpoint = run / "checkpoints" / "stage1-epoch2";
    const std::string manifest = read_text(checkpoint / "manifest.yaml");
    write_text(checkpoint / "manifest.yaml", "stage: 2\n" + manifest.substr(0, manifest.find("stage: 1")) +
                                                 manifest.substr(manifest.find("stage: 1") + 9));
    r = run_ansatz({ "run", "--resume", run.string() }, dir);
    CHECK(r.status == 2);
    CHECK(r.err.find("the checkpoint is of stage 2, which is not a train stage of the pipeline.\n") !=
          std::string::npos);
    write_text(checkpoint / "manifest.yaml", manifest);

    // A tensor file that is a link to a device is never read.
    fs::rename(checkpoint / "rbm.hidden_bias.npy", checkpoint / "saved.npy");
    fs::create_symlink("/dev/zero", checkpoint / "rbm.hidden_bias.npy");
    r = run_ansatz({ "run", "--resume", run.string() }, dir, 60);
    CHECK(r.status == 2);
    CHECK(r.err ==
          "checkpoint " + checkpoint.string() +
              " is damaged: rbm.hidden_bias.npy: it is not a regular file (a device, FIFO or socket).\n");
    fs::remove(checkpoint / "rbm.hidden_bias.npy");
    fs::rename(checkpoint / "saved.npy", checkpoint / "rbm.hidden_bias.npy");

    // A damaged checkpoint: a file its manifest names is cut short.
    REQUIRE(fs::exists(checkpoint / "manifest.yaml"));
    const std::string weights = read_text(checkpoint / "rbm.weights.npy");
    write_text(checkpoint / "rbm.weights.npy", weights.substr(0, weights.size() - 4));
    r = run_ansatz({ "run", "--resume", run.string() }, dir);
    CHECK(r.status == 2);
    CHECK(r.err == "checkpoint " + checkpoint.string() + " is damaged: rbm.weights.npy: it has " +
                       std::to_string(weights.size() - 4) + " bytes, but its header describes " +
                       std::to_string(weights.size()) + ".\n");
    write_text(checkpoint / "rbm.weights.npy", weights);
    fs::remove(checkpoint / "manifest.yaml");
    r = run_ansatz({ "run", "--resume", run.string() }, dir);
    CHECK(r.status == 2);
    CHECK(r.err == "checkpoint " + checkpoint.string() + " is damaged: its manifest.yaml does not exist.\n");
}

TEST_CASE("resume: a finished run has nothing to resume", "[resume][bad-input]")
{
    const fs::path dir = setup("finished");
    // A malformed fault point is reported, not silently ignored (a kill test would then prove nothing).
    auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs", "--set", "stages.0.train.epochs=1" }, dir,
                        { "ANSATZ_FAULT=batch:x" });
    REQUIRE(r.status == 0);
    CHECK(r.err.find("warning: ANSATZ_FAULT=batch:x is not POINT:N (N >= 1; points: batch, checkpoint-write, "
                     "checkpoint-swap, checkpoint-remove); ignored.\n") != std::string::npos);
    const fs::path run = only_run(dir);
    r = run_ansatz({ "run", "--resume", run.string() }, dir);
    CHECK(r.status == 2);
    CHECK(r.err == "--resume: the run in " + run.string() + " has finished; there is nothing to resume.\n");
}

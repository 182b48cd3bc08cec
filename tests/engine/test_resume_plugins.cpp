// --resume finds the plugins the run used (the files its run.yaml lists) without --plugin-path again:
// a run of an out-of-tree model, killed, resumes from its folder alone; without run.yaml the plugin
// has to be given again, as before.
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

// A folder with the out-of-tree fixture model in plugins/ and a pipeline that trains it for 3 epochs
// of 8 batches with a checkpoint every epoch.
fs::path prepare(const std::string& name)
{
    return ansatz::test::fixture_rbm_training("resume_plugins/" + name, "elsewhere");
}

// Runs the pipeline with --plugin-path plugins and kills it in the third epoch (after the second
// epoch's checkpoint); returns the run folder.
fs::path killed_run(const fs::path& dir)
{
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs", "--plugin-path", "plugins" }, dir,
                              { "ANSATZ_FAULT=batch:20" }, 120);
    INFO(r.err);
    REQUIRE(r.status == 128 + 9); // SIGKILL
    return *fs::directory_iterator(dir / "runs" / "elsewhere");
}

} // namespace

TEST_CASE("resume loads the plugin files of the run's run.yaml without --plugin-path", "[cli][resume]")
{
    const fs::path dir = prepare("recorded");
    const fs::path run = killed_run(dir);
    // From another working directory, where no plugins/ folder is: only run.yaml says where it is.
    const fs::path elsewhere = ansatz::test::fresh_folder("resume_plugins/cwd");
    const auto r = run_ansatz({ "run", "--resume", fs::absolute(run).string() }, elsewhere, 120);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(fs::exists(run / "finished"));
    CHECK(r.err.find("resuming") != std::string::npos);
}

TEST_CASE("resume without run.yaml needs --plugin-path again for a plugin outside the search path",
          "[cli][resume]")
{
    const fs::path dir = prepare("unrecorded");
    const fs::path run = killed_run(dir);
    fs::remove(run / "run.yaml");
    const fs::path elsewhere = ansatz::test::fresh_folder("resume_plugins/cwd2");
    auto r = run_ansatz({ "run", "--resume", fs::absolute(run).string() }, elsewhere, 120);
    CHECK(r.status == 2);
    CHECK(r.err.find("conformance_rbm") != std::string::npos);
    CHECK_FALSE(fs::exists(run / "finished"));
    r = run_ansatz({ "run", "--resume", fs::absolute(run).string(), "--plugin-path",
                     fs::absolute(dir / "plugins").string() },
                   elsewhere, 120);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(fs::exists(run / "finished"));
}

namespace
{

size_t count(const std::string& text, const std::string& part)
{
    size_t n = 0;
    for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("resume puts --plugin-path folders given again before the recorded files and says so once",
          "[cli][resume]")
{
    const fs::path dir = prepare("order");
    const fs::path run = killed_run(dir);
    // Another file with the same component: given with --plugin-path, it wins, and the recorded file is
    // refused as a duplicate, in one warning (not once per scan of the search path).
    fs::create_directories(dir / "newer");
    fs::copy_file(dir / "plugins" / "libansatz_fixture_conformance_rbm.so",
                  dir / "newer" / "libansatz_fixture_copy.so");
    write_text(dir / "newer" / "libansatz_junk.so", "not a library"); // refused: once, though scanned twice
    const fs::path recorded = fs::absolute(dir / "plugins" / "libansatz_fixture_conformance_rbm.so");
    const auto r = run_ansatz({ "run", "--resume", fs::absolute(run).string(), "--plugin-path",
                                fs::absolute(dir / "newer").string() },
                              dir, 120);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(fs::exists(run / "finished"));
    CHECK(count(r.err, "plugin " + recorded.lexically_normal().string() + " (") == 1);
    CHECK(count(r.err,
                "already provided by " +
                    fs::absolute(dir / "newer" / "libansatz_fixture_copy.so").lexically_normal().string()) ==
          1);
    CHECK(count(r.err, "libansatz_junk.so refused") == 1);
}

TEST_CASE("resume names a recorded plugin file that has gone and finds its component on the search path",
          "[cli][resume]")
{
    const fs::path dir = prepare("gone");
    const fs::path run = killed_run(dir);
    fs::create_directories(dir / "moved");
    const fs::path old_file = fs::absolute(dir / "plugins" / "libansatz_fixture_conformance_rbm.so");
    fs::rename(old_file, dir / "moved" / "libansatz_fixture_conformance_rbm.so");
    const auto r = run_ansatz({ "run", "--resume", fs::absolute(run).string(), "--plugin-path",
                                fs::absolute(dir / "moved").string() },
                              dir, 120);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(fs::exists(run / "finished"));
    CHECK(r.err.find("warning: " + (fs::absolute(run) / "run.yaml").string() + " lists the plugin file " +
                     old_file.string() + ", which is gone; its components come from the search path.") !=
          std::string::npos);
}

TEST_CASE("resume keeps the recorded plugin over a later folder's file of the same component in one warning",
          "[cli][resume]")
{
    const fs::path dir = prepare("shadowed");
    const fs::path run = killed_run(dir);
    // $ANSATZ_PLUGIN_PATH comes after the recorded files: its copy of the model (another build's, say)
    // is not loaded, and one sentence counts it instead of a refusal per file.
    fs::create_directories(dir / "other_build");
    fs::copy_file(dir / "plugins" / "libansatz_fixture_conformance_rbm.so",
                  dir / "other_build" / "libansatz_fixture_other.so");
    const auto r = run_ansatz({ "run", "--resume", fs::absolute(run).string() }, dir,
                              { "ANSATZ_PLUGIN_PATH=" + fs::absolute(dir / "other_build").string() }, 120);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(fs::exists(run / "finished"));
    CHECK(r.err.find("libansatz_fixture_other.so") == std::string::npos);
    CHECK(r.err.find("warning: the run goes on with the plugin files " +
                     (fs::absolute(run) / "run.yaml").string() +
                     " lists; 1 plugin file of the search path with the same components was not loaded.") !=
          std::string::npos);
}

TEST_CASE("resume says when a recorded plugin file now holds another version than run.yaml records",
          "[cli][resume]")
{
    const fs::path dir = prepare("version");
    const fs::path run = killed_run(dir);
    // As if the file had been rebuilt at another version since the run started: run.yaml says 0.0.0.
    std::string yaml = ansatz::test::read_text(run / "run.yaml");
    const std::string recorded = "name: fixture_conformance_rbm\n    version: 0.0.1\n";
    REQUIRE(yaml.find(recorded) != std::string::npos);
    yaml.replace(yaml.find(recorded), recorded.size(), "name: fixture_conformance_rbm\n    version: 0.0.0\n");
    write_text(run / "run.yaml", yaml);
    const auto r = run_ansatz({ "run", "--resume", fs::absolute(run).string() }, dir, 120);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(
        r.err.find("warning: " + (fs::absolute(run) / "run.yaml").string() + " lists " +
                   fs::absolute(dir / "plugins" / "libansatz_fixture_conformance_rbm.so").string() +
                   " as fixture_conformance_rbm 0.0.0, but it is now fixture_conformance_rbm 0.0.1; the run "
                   "goes on with it.") != std::string::npos);
}

// support/cli.hpp -- runs the real `ansatz` binary and captures its exit status and output, and
// writes the files a test needs into a folder of its own.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ansatz::test
{

struct CliResult
{
    int status = -1;
    std::string out;
    std::string err;
};

// Runs ANSATZ_TEST_BINARY with these arguments in `cwd`; ANSATZ_PLUGIN_PATH is cleared and `env`
// ("NAME=value") is set. A run killed by a signal has status 128 + the signal. With a timeout, a
// binary still running after that many seconds is killed (status 124), and one that maps more than
// 4 GiB fails to allocate: a hang or a runaway read fails the test instead of stalling the machine.
CliResult run_ansatz(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                     const std::vector<std::string>& env = {}, int timeout_seconds = 0);
inline CliResult run_ansatz(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                            int timeout_seconds)
{
    return run_ansatz(args, cwd, {}, timeout_seconds);
}

// An IDX file of 48 images of 6 x 6 bytes, each a 3 x 3 square of `bright` (at one of 9 places) on
// `dark`: the small data set of the CLI tests (6 batches of 8).
std::string square_images(int bright = 230, int dark = 20);

// A fresh, empty folder under ANSATZ_TEST_WORK_DIR for one test.
std::filesystem::path fresh_folder(const std::string& name);

void write_text(const std::filesystem::path& file, const std::string& text);

// A fresh folder `name` with the out-of-tree fixture model (libansatz_fixture_conformance_rbm.so) in
// plugins/ and a pipeline.yaml `pipeline` in which a teacher of it generates 8 chains x 8 rows and a
// student trains on them for 3 epochs of 8 batches with a checkpoint every epoch; `sgd_keys` are the sgd
// component's extra keys (", momentum: 0.5"), `more_stages` lines appended to the stages.
std::filesystem::path fixture_rbm_training(const std::string& name, const std::string& pipeline,
                                           const std::string& sgd_keys = "",
                                           const std::string& more_stages = "");
std::string read_text(const std::filesystem::path& file);

// A metrics.csv without its timing columns (seconds, *_per_second): what two runs that did the same
// work have in common, byte for byte.
std::string untimed(const std::string& csv);

// Every file of every checkpoint of a run folder, by "<checkpoint>/<file>" (metrics.csv untimed): what
// a resumed run must reproduce of an uninterrupted one.
std::map<std::string, std::string> checkpoint_files(const std::filesystem::path& run);

} // namespace ansatz::test

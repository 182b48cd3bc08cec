// support/cli.hpp -- runs the real `ansatz` binary and captures its exit status and output, and
// writes the files a test needs into a folder of its own.
#pragma once

#include <filesystem>
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
// ("NAME=value") is set. A run killed by a signal has status 128 + the signal.
CliResult run_ansatz(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                     const std::vector<std::string>& env = {});

// A fresh, empty folder under ANSATZ_TEST_WORK_DIR for one test.
std::filesystem::path fresh_folder(const std::string& name);

void write_text(const std::filesystem::path& file, const std::string& text);
std::string read_text(const std::filesystem::path& file);

} // namespace ansatz::test

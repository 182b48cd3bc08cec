// commands.hpp -- the subcommands of the `ansatz` program; each returns the exit status.
#pragma once

#include "outputs/run_info.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace ansatz::engine
{

struct Options
{
    std::string command;
    std::vector<std::string> arguments;              // positional: FILE or NAME
    std::vector<std::filesystem::path> plugin_paths; // --plugin-path, in order
    std::vector<std::string> overrides;              // --set key.path=value
    std::filesystem::path runs = "runs";             // --runs: the folder of run folders
    std::filesystem::path resume;                    // --resume: a run folder to go on with
    // Not an option: with --resume, the plugin files the run used (its run.yaml), loaded after the
    // --plugin-path folders and before the rest of the search path.
    std::vector<RecordedPlugin> recorded_plugins;
    bool verbose = false;
};

// Parses argv; a usage error is a UserError.
Options parse_options(int argc, char** argv);

int command_run(const Options& options);
int command_validate(const Options& options);
int command_plugins(const Options& options);
int command_describe(const Options& options);
int command_report(const Options& options);
void print_usage();

} // namespace ansatz::engine

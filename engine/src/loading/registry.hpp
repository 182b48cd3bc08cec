// registry.hpp -- finds plugin libraries, checks their descriptors, and keeps them loaded.
//
// Discovery order (DESIGN.md §3): --plugin-path, the pipeline's plugin_paths:, ANSATZ_PLUGIN_PATH,
// then <exe>/../lib/ansatz/plugins; a resumed run loads the files its run.yaml lists right after the
// --plugin-path folders. Every candidate file is opened with RTLD_NOW | RTLD_LOCAL and asked
// for the one entry symbol. A refused file is reported in one sentence and skipped; the others load.
// Libraries are never unloaded while the engine runs: each component holds its library.
#pragma once

#include "ansatz/abi.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ansatz::engine
{

struct Library; // a loaded shared library (Boost.DLL), kept alive by shared ownership

struct PluginComponent
{
    const ansatz_component* desc;
    const ansatz_plugin_desc* plugin;
    std::filesystem::path file;
    std::shared_ptr<const Library> library;
};

const char* kind_name(int32_t kind); // "model", "sampler", ...

class Registry
{
public:
    // Loads every plugin library found in these folders, in order; a folder that does not exist is
    // skipped. A component whose kind and name an earlier file already gave is refused.
    void scan(const std::vector<std::filesystem::path>& folders);
    // Loads one file; returns false (and records why) if it was refused. A file tried before is not
    // tried (or refused) again.
    bool load(const std::filesystem::path& file);
    // Loads a file a run's run.yaml (`record`) lists as plugin `name` `version`: only a libansatz_*.so
    // name; one that is gone, or that now holds another plugin or version, is said in notes() (a gone
    // one is skipped: its components then come from the search path).
    void load_recorded(const std::filesystem::path& file, const std::string& name, const std::string& version,
                       const std::string& record);

    const PluginComponent* find(const std::string& name) const;
    const PluginComponent* find(const std::string& name, int32_t kind) const;
    const std::vector<PluginComponent>& components() const { return components_; }
    // One sentence per refused file, in the order met.
    const std::vector<std::string>& refusals() const { return refusals_; }
    // One sentence per recorded file that could not be used (load_recorded).
    const std::vector<std::string>& notes() const { return notes_; }
    // Files of the search path not loaded because a recorded file already gave their components (a run
    // resumed by another build's ansatz keeps the plugins it ran with): counted, not refused one by one.
    int64_t shadowed_by_recorded() const { return shadowed_by_recorded_; }
    std::vector<std::string> names() const;

private:
    std::vector<PluginComponent> components_;
    std::vector<std::string> refusals_;
    std::vector<std::string> notes_;
    std::vector<std::filesystem::path> loaded_files_;
    std::vector<std::filesystem::path> tried_files_;
    std::vector<std::filesystem::path> recorded_files_;
    int64_t shadowed_by_recorded_ = 0;
};

// The folders to scan, in discovery order.
std::vector<std::filesystem::path> plugin_search_path(
    const std::vector<std::filesystem::path>& from_cli,
    const std::vector<std::filesystem::path>& from_pipeline);

} // namespace ansatz::engine

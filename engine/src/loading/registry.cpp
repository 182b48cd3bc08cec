#include "loading/registry.hpp"

#include "loading/descriptor_check.hpp"
#include "loading/elf_check.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace ansatz::engine
{

struct Library
{
    boost::dll::shared_library handle;
};

namespace fs = std::filesystem;

const char* kind_name(int32_t kind)
{
    switch (kind)
    {
    case ANSATZ_KIND_MODEL:
        return "model";
    case ANSATZ_KIND_SAMPLER:
        return "sampler";
    case ANSATZ_KIND_LOSS:
        return "loss";
    case ANSATZ_KIND_OPTIMIZER:
        return "optimizer";
    case ANSATZ_KIND_DATASET:
        return "dataset";
    case ANSATZ_KIND_EVALUATOR:
        return "evaluator";
    default:
        return "unknown kind";
    }
}

namespace
{

// Boost.DLL wraps dlerror() as "... (dlerror system message: TEXT): errno text"; TEXT is the reason.
std::string loader_reason(const std::string& what)
{
    const std::string marker = "dlerror system message: ";
    const size_t start = what.find(marker);
    const size_t end = what.rfind("):");
    if (start == std::string::npos || end == std::string::npos || end < start)
        return what;
    return what.substr(start + marker.size(), end - start - marker.size());
}

bool looks_like_plugin(const fs::path& file)
{
    const std::string name = file.filename().string();
    return name.rfind("libansatz_", 0) == 0 && file.extension() == ".so";
}

} // namespace

bool Registry::load(const fs::path& file_in)
{
    const fs::path file = fs::absolute(file_in).lexically_normal();
    if (std::find(tried_files_.begin(), tried_files_.end(), file) != tried_files_.end())
        // The same file reached twice (through the search path, or recorded and found again): its
        // refusal, if it was refused, is said once.
        return std::find(loaded_files_.begin(), loaded_files_.end(), file) != loaded_files_.end();
    tried_files_.push_back(file);
    if (std::string why = elf_refusal(file); !why.empty()) // before dlopen: a truncated file is a SIGBUS
    {
        refusals_.push_back("plugin " + file.string() + " refused: " + why + ".");
        return false;
    }
    auto library = std::make_shared<Library>();
    const ansatz_plugin_desc* desc = nullptr;
    try
    {
        namespace mode = boost::dll::load_mode;
        library->handle.load(file.string(), mode::rtld_now | mode::rtld_local);
        if (!library->handle.has(ANSATZ_PLUGIN_ENTRY_SYMBOL))
        {
            refusals_.push_back("plugin " + file.string() +
                                " refused: it exports no '" ANSATZ_PLUGIN_ENTRY_SYMBOL
                                "' entry symbol (was it built with ANSATZ_PLUGIN and ansatz_add_plugin?).");
            return false;
        }
        // The one place the engine takes the entry symbol.
        desc = library->handle.get<const ansatz_plugin_desc*()>(ANSATZ_PLUGIN_ENTRY_SYMBOL)();
    }
    catch (const std::exception& e)
    {
        refusals_.push_back("plugin " + file.string() + " refused: it could not be loaded (" +
                            loader_reason(e.what()) + ").");
        return false;
    }
    if (std::string why = descriptor_refusal(desc); !why.empty())
    {
        refusals_.push_back("plugin " + file.string() + " refused: " + why + ".");
        return false;
    }
    // Duplicates: refuse the whole later file, so that a plugin is either wholly there or not.
    for (int32_t i = 0; i < desc->n_components; ++i)
    {
        const ansatz_component& c = component_at(*desc, i);
        // Names are unique across kinds too: a pipeline names a component by `plugin: NAME` alone.
        if (const PluginComponent* other = find(c.name))
        {
            if (std::find(recorded_files_.begin(), recorded_files_.end(), other->file) !=
                recorded_files_.end())
            {
                ++shadowed_by_recorded_;
                return false;
            }
            refusals_.push_back("plugin " + file.string() + " (" + desc->name + " " + desc->version +
                                ") refused: its " + kind_name(c.kind) + " '" + c.name +
                                "' has the name of the " + kind_name(other->desc->kind) + " '" + c.name +
                                "' already provided by " + other->file.string() + " (" + other->plugin->name +
                                " " + other->plugin->version + ").");
            return false;
        }
        for (int32_t j = 0; j < i; ++j)
            if (std::strcmp(component_at(*desc, j).name, c.name) == 0)
            {
                refusals_.push_back("plugin " + file.string() +
                                    " refused: it declares two components named '" + c.name + "'.");
                return false;
            }
    }
    loaded_files_.push_back(file);
    for (int32_t i = 0; i < desc->n_components; ++i)
        components_.push_back(PluginComponent{ &component_at(*desc, i), desc, file, library });
    return true;
}

void Registry::load_recorded(const fs::path& file, const std::string& name, const std::string& version,
                             const std::string& record)
{
    std::error_code ec;
    if (!looks_like_plugin(file))
        notes_.push_back(record + " lists " + file.string() +
                         " as a plugin file, but plugin files are named libansatz_*.so; it is not loaded.");
    else if (!fs::is_regular_file(file, ec))
        notes_.push_back(record + " lists the plugin file " + file.string() +
                         ", which is gone; its components come from the search path.");
    else if (load(file))
    {
        const fs::path normal = fs::absolute(file).lexically_normal();
        recorded_files_.push_back(normal);
        for (const PluginComponent& c : components_)
            if (c.file == normal)
            {
                if (c.plugin->name != name || c.plugin->version != version)
                    notes_.push_back(record + " lists " + file.string() + " as " + name + " " + version +
                                     ", but it is now " + c.plugin->name + " " + c.plugin->version +
                                     "; the run goes on with it.");
                break;
            }
    }
}

void Registry::scan(const std::vector<fs::path>& folders)
{
    for (const fs::path& folder : folders)
    {
        std::error_code ec;
        if (!fs::is_directory(folder, ec))
            continue;
        std::vector<fs::path> files;
        for (const auto& entry : fs::directory_iterator(folder, ec))
            if (entry.is_regular_file(ec) && looks_like_plugin(entry.path()))
                files.push_back(entry.path());
        std::sort(files.begin(), files.end()); // a stable order: the first file of a name wins
        for (const fs::path& file : files)
            load(file);
    }
}

const PluginComponent* Registry::find(const std::string& name) const
{
    for (const PluginComponent& c : components_)
        if (name == c.desc->name)
            return &c;
    return nullptr;
}

const PluginComponent* Registry::find(const std::string& name, int32_t kind) const
{
    for (const PluginComponent& c : components_)
        if (c.desc->kind == kind && name == c.desc->name)
            return &c;
    return nullptr;
}

std::vector<std::string> Registry::names() const
{
    std::vector<std::string> out;
    for (const PluginComponent& c : components_)
        out.emplace_back(c.desc->name);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::vector<fs::path> plugin_search_path(const std::vector<fs::path>& from_cli,
                                         const std::vector<fs::path>& from_pipeline)
{
    std::vector<fs::path> out(from_cli);
    out.insert(out.end(), from_pipeline.begin(), from_pipeline.end());
    if (const char* env = std::getenv("ANSATZ_PLUGIN_PATH"))
    {
        std::stringstream list(env);
        for (std::string item; std::getline(list, item, ':');)
            if (!item.empty())
                out.emplace_back(item);
    }
    out.push_back(boost::dll::program_location().parent_path().parent_path().string() +
                  "/lib/ansatz/plugins");
    return out;
}

} // namespace ansatz::engine

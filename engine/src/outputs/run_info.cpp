#include "outputs/run_info.hpp"

#include "loading/registry.hpp"
#include "outputs/files.hpp"
#include "pipeline/pipeline.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <ctime>
#include <dlfcn.h>
#include <fstream>
#include <sstream>
#include <sys/utsname.h>
#include <thread>
#include <unistd.h>

#ifndef ANSATZ_ENGINE_VERSION
#define ANSATZ_ENGINE_VERSION "unknown"
#endif

// OpenBLAS's own queries (openblas_config.h); the engine links libopenblas itself (see sdk/).
extern "C" char* openblas_get_config(void);
extern "C" char* openblas_get_corename(void);
extern "C" int openblas_get_num_threads(void);
extern "C" int openblas_get_parallel(void);

namespace ansatz::engine
{

namespace fs = std::filesystem;

namespace
{

std::string read_whole(const fs::path& file)
{
    std::ifstream in(file, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The value of the first "key<tab>: value" line of a /proc file.
std::string proc_value(const std::string& text, const std::string& key)
{
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
    {
        if (line.rfind(key, 0) != 0)
            continue;
        const size_t colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        const std::string name = line.substr(0, colon);
        if (name.find_last_not_of(" \t") + 1 != key.size())
            continue;
        const size_t start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? std::string() : line.substr(start);
    }
    return {};
}

std::vector<std::string> command_line()
{
    const std::string raw = read_whole("/proc/self/cmdline");
    std::vector<std::string> out;
    size_t start = 0;
    while (start < raw.size())
    {
        const size_t end = raw.find('\0', start);
        out.push_back(raw.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return out;
}

std::string now_iso()
{
    const std::time_t now = std::time(nullptr);
    char stamp[40];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&now));
    return stamp;
}

std::string abi_of(const ansatz_plugin_desc& d)
{
    return std::to_string(d.abi_major) + "." + std::to_string(d.abi_minor);
}

} // namespace

const char* ansatz_version()
{
    return ANSATZ_ENGINE_VERSION;
}

const char* ansatz_build()
{
    return "g++ " __VERSION__;
}

BlasInfo blas_info()
{
    BlasInfo b;
    b.openblas = true;
    const char* config = openblas_get_config();
    const char* core = openblas_get_corename();
    b.config = config ? config : "";
    b.core = core ? core : "";
    while (!b.config.empty() && b.config.back() == ' ')
        b.config.pop_back();
    std::istringstream words(b.config);
    std::string first, second;
    words >> first >> second;
    if (first == "OpenBLAS")
        b.version = second;
    b.threads = openblas_get_num_threads();
    const int parallel = openblas_get_parallel();
    b.parallel = parallel == 0   ? "sequential"
                 : parallel == 1 ? "pthreads"
                 : parallel == 2 ? "OpenMP"
                                 : "unknown";
    Dl_info where{};
    if (dladdr(reinterpret_cast<void*>(&openblas_get_config), &where) && where.dli_fname)
    {
        std::error_code ec;
        const fs::path real = fs::canonical(where.dli_fname, ec);
        b.file = ec ? where.dli_fname : real.string();
    }
    return b;
}

MachineInfo machine_info()
{
    MachineInfo m;
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0)
        m.hostname = host;
    const std::string cpuinfo = read_whole("/proc/cpuinfo");
    m.cpu = proc_value(cpuinfo, "model name");
    if (m.cpu.empty()) // some architectures name it otherwise
        m.cpu = proc_value(cpuinfo, "Model");
    m.cores = static_cast<int>(std::thread::hardware_concurrency());
    const std::string total = proc_value(read_whole("/proc/meminfo"), "MemTotal"); // "24684632 kB"
    if (!total.empty())
        m.memory_bytes = std::strtoull(total.c_str(), nullptr, 10) * 1024;
    struct utsname u
    {
    };
    if (uname(&u) == 0)
        m.os = std::string(u.sysname) + " " + u.release + " " + u.machine;
    return m;
}

std::string run_info_yaml(const Pipeline& p)
{
    YAML::Emitter e;
    e << YAML::BeginMap;
    e << YAML::Key << "format" << YAML::Value << 1;
    e << YAML::Key << "ansatz" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "version" << YAML::Value << ansatz_version();
    e << YAML::Key << "abi" << YAML::Value << YAML::DoubleQuoted
      << (std::to_string(ANSATZ_ABI_MAJOR) + "." + std::to_string(ANSATZ_ABI_MINOR));
    e << YAML::Key << "build" << YAML::Value << ansatz_build();
    e << YAML::EndMap;
    e << YAML::Key << "command" << YAML::Value << YAML::Flow << command_line();
    std::error_code ec;
    e << YAML::Key << "working_directory" << YAML::Value << fs::current_path(ec).string();
    const fs::path pipeline_file = p.source.name();
    e << YAML::Key << "pipeline_file" << YAML::Value
      << (fs::exists(pipeline_file, ec) ? fs::absolute(pipeline_file, ec).string() : p.source.name());
    e << YAML::Key << "started" << YAML::Value << now_iso();
    e << YAML::Key << "seed" << YAML::Value << p.seed;
    e << YAML::Key << "threads" << YAML::Value << p.threads;

    // One entry per plugin file, with the components the pipeline made of it.
    e << YAML::Key << "plugins" << YAML::Value << YAML::BeginSeq;
    std::vector<std::string> files;
    for (const ComponentDecl& c : p.components)
        if (c.plugin && std::find(files.begin(), files.end(), c.plugin->file.string()) == files.end())
            files.push_back(c.plugin->file.string());
    for (const std::string& file : files)
    {
        const ansatz_plugin_desc* d = nullptr;
        for (const ComponentDecl& c : p.components)
            if (c.plugin && c.plugin->file.string() == file)
                d = c.plugin->plugin;
        e << YAML::BeginMap;
        if (d)
        {
            e << YAML::Key << "name" << YAML::Value << (d->name ? d->name : "");
            e << YAML::Key << "version" << YAML::Value << (d->version ? d->version : "");
        }
        e << YAML::Key << "file" << YAML::Value << file;
        if (d)
        {
            e << YAML::Key << "abi" << YAML::Value << YAML::DoubleQuoted << abi_of(*d);
            e << YAML::Key << "license" << YAML::Value << (d->license ? d->license : "");
            e << YAML::Key << "build" << YAML::Value << (d->build ? d->build : "");
        }
        e << YAML::Key << "components" << YAML::Value << YAML::BeginSeq;
        for (const ComponentDecl& c : p.components)
            if (c.plugin && c.plugin->file.string() == file)
            {
                e << YAML::Flow << YAML::BeginMap;
                e << YAML::Key << "instance" << YAML::Value << c.name;
                e << YAML::Key << "component" << YAML::Value
                  << (c.plugin->desc->name ? c.plugin->desc->name : "");
                e << YAML::Key << "kind" << YAML::Value << kind_name(c.plugin->desc->kind);
                e << YAML::EndMap;
            }
        e << YAML::EndSeq << YAML::EndMap;
    }
    e << YAML::EndSeq;

    const BlasInfo b = blas_info();
    e << YAML::Key << "blas" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "library" << YAML::Value << (b.openblas ? "OpenBLAS" : "unknown");
    e << YAML::Key << "version" << YAML::Value << b.version;
    e << YAML::Key << "config" << YAML::Value << b.config;
    e << YAML::Key << "core" << YAML::Value << b.core;
    e << YAML::Key << "parallel" << YAML::Value << b.parallel;
    e << YAML::Key << "threads" << YAML::Value << b.threads;
    e << YAML::Key << "file" << YAML::Value << b.file;
    e << YAML::EndMap;

    const MachineInfo m = machine_info();
    e << YAML::Key << "machine" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "hostname" << YAML::Value << m.hostname;
    e << YAML::Key << "cpu" << YAML::Value << m.cpu;
    e << YAML::Key << "cores" << YAML::Value << m.cores;
    e << YAML::Key << "memory_bytes" << YAML::Value << m.memory_bytes;
    e << YAML::Key << "os" << YAML::Value << m.os;
    e << YAML::EndMap;
    e << YAML::EndMap;
    return "# What ran, with what, on what; written when the run started. `ansatz report DIR` reads it.\n" +
           std::string(e.c_str()) + "\n";
}

void write_run_info(const fs::path& run_folder, const Pipeline& pipeline)
{
    write_file_atomic(run_folder / "run.yaml", run_info_yaml(pipeline));
}

std::vector<RecordedPlugin> recorded_plugin_files(const fs::path& run_folder)
{
    std::vector<RecordedPlugin> files;
    try
    {
        std::string text;
        if (!read_regular_file(run_folder / "run.yaml", 1 << 20, text).empty())
            return {};
        const YAML::Node plugins = YAML::Load(text)["plugins"];
        if (!plugins.IsSequence())
            return {};
        for (const YAML::Node& plugin : plugins)
            if (plugin.IsMap() && plugin["file"] && plugin["file"].IsScalar())
            {
                const auto text = [&](const char* key) {
                    return plugin[key] && plugin[key].IsScalar() ? plugin[key].as<std::string>()
                                                                 : std::string();
                };
                files.push_back({ plugin["file"].as<std::string>(), text("name"), text("version") });
            }
    }
    catch (const std::exception&)
    {
        return {};
    }
    return files;
}

} // namespace ansatz::engine

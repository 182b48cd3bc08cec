#include "commands.hpp"

#include "ansatz/error.hpp"
#include "ansatz/refs.hpp"
#include "loading/registry.hpp"
#include "outputs/checkpoint.hpp"
#include "outputs/files.hpp"
#include "outputs/report.hpp"
#include "outputs/run_info.hpp"
#include "pipeline/pipeline.hpp"
#include "run/host_services.hpp"
#include "run/run.hpp"
#include "stages/stage_types.hpp"
#include "user_error.hpp"

#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <iostream>
#include <optional>
#include <sys/file.h>
#include <unistd.h>

namespace ansatz::engine
{

namespace fs = std::filesystem;

namespace
{

void print_refusals(const Registry& registry)
{
    for (const std::string& r : registry.refusals())
        std::fprintf(stderr, "warning: %s\n", r.c_str());
}

struct Loaded
{
    Registry registry;
    Pipeline pipeline;
};

Loaded load(const Options& o, std::optional<fs::path> file = std::nullopt)
{
    if (!file && o.arguments.size() != 1)
        throw UserError("ansatz " + o.command + ": expects one pipeline file, e.g. ansatz " + o.command +
                        " pipelines/quickstart.yaml");
    Source source = Source::load(file ? *file : fs::path(o.arguments[0]));
    for (const std::string& assignment : o.overrides)
        source.apply_override(assignment);
    Registry registry;
    if (!o.recorded_plugins.empty())
    {
        // A resumed run: the files it ran with come right after the folders given again, so the same
        // plugin gives each component even where another folder of the search path has one of its name.
        registry.scan(o.plugin_paths);
        for (const RecordedPlugin& recorded : o.recorded_plugins)
            registry.load_recorded(recorded.file, recorded.name, recorded.version,
                                   (o.resume / "run.yaml").string());
    }
    registry.scan(plugin_search_path(o.plugin_paths, pipeline_plugin_paths(source)));
    for (const std::string& note : registry.notes())
        std::fprintf(stderr, "warning: %s\n", note.c_str());
    if (const int64_t shadowed = registry.shadowed_by_recorded(); shadowed > 0)
        std::fprintf(
            stderr,
            "warning: the run goes on with the plugin files %s lists; %lld plugin file%s of the search "
            "path with the same components %s not loaded.\n",
            (o.resume / "run.yaml").string().c_str(), static_cast<long long>(shadowed),
            shadowed == 1 ? "" : "s", shadowed == 1 ? "was" : "were");
    print_refusals(registry);
    Pipeline pipeline = validate_pipeline(std::move(source), registry);
    // More threads than cores only thrash (OpenBLAS with 1024 threads on 2 cores takes minutes for
    // milliseconds of work): the budget used, and recorded in the resolved pipeline, is at most the cores.
    if (const int cores = available_cores(); pipeline.threads > cores)
    {
        std::fprintf(stderr, "warning: threads: %d is more than the %d core%s of this machine; using %d.\n",
                     pipeline.threads, cores, cores == 1 ? "" : "s", cores);
        pipeline.threads = cores;
    }
    return Loaded{ std::move(registry), std::move(pipeline) };
}

std::string run_folder_error(const fs::path& folder, std::string reason)
{
    if (!reason.empty()) // std::error_code's messages start with a capital: "Permission denied"
        reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
    return "cannot create the run folder " + folder.string() + ": " + reason + ".";
}

// Refuses a run folder that cannot be made, before the (possibly slow) components are created;
// creating it now would leave an empty run folder behind when the data turns out to be bad.
void check_run_base(const fs::path& base)
{
    fs::path existing = base;
    std::error_code ec;
    while (!existing.empty() && fs::status(existing, ec).type() == fs::file_type::not_found)
        existing = existing.parent_path();
    if (existing.empty())
        existing = ".";
    const fs::file_status status = fs::status(existing, ec);
    if (ec)
        throw UserError(run_folder_error(base, ec.message() + " (" + existing.string() + ")"));
    if (!fs::is_directory(status))
        throw UserError(run_folder_error(base, existing.string() + " is not a folder"));
    if (access(existing.c_str(), W_OK | X_OK) != 0)
        throw UserError(run_folder_error(base, existing.string() + " is not writable"));
}

fs::path make_run_folder(const fs::path& base)
{
    const std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    fs::path folder = base / stamp;
    try
    {
        fs::create_directories(base);
        for (int i = 2; !fs::create_directory(folder); ++i)
            folder = base / (std::string(stamp) + "-" + std::to_string(i));
    }
    catch (const fs::filesystem_error& e)
    {
        throw UserError(run_folder_error(folder, e.code().message()));
    }
    return folder;
}

std::string emitted(const YAML::Node& node)
{
    YAML::Emitter emitter;
    emitter << node;
    return std::string(emitter.c_str()) + "\n";
}

// Holds an exclusive lock on <run folder>/run.lock while a run writes there, so that a second
// `--resume` of the same folder is refused instead of racing the first (flock: released when the
// process ends, however it ends).
class RunLock
{
public:
    explicit RunLock(const fs::path& folder)
    {
        const fs::path file = folder / "run.lock";
        fd_ = ::open(file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
        if (fd_ < 0)
            throw UserError("cannot open " + file.string() + " to lock the run folder.");
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0)
        {
            ::close(fd_);
            throw UserError("another ansatz process is running in " + folder.string() + " (it holds " +
                            file.string() + "); wait for it, or stop it first.");
        }
    }
    ~RunLock() { ::close(fd_); }
    RunLock(const RunLock&) = delete;
    RunLock& operator=(const RunLock&) = delete;

private:
    int fd_ = -1;
};

// Hidden leftovers of a checkpoint write that a kill interrupted (never read; see checkpoint.hpp).
void remove_checkpoint_leftovers(const fs::path& folder)
{
    std::error_code ec;
    std::vector<fs::path> hidden;
    for (const auto& entry : fs::directory_iterator(folder / "checkpoints", ec))
        if (entry.path().filename().string().rfind('.', 0) == 0)
            hidden.push_back(entry.path());
    for (const fs::path& p : hidden)
        fs::remove_all(p, ec);
}

// Runs the pipeline into `folder`, from the start or from `resume`; marks the folder finished.
int execute(Run& run, const fs::path& folder, const Checkpoint* resume)
{
    std::fprintf(stderr, "run folder: %s\n", folder.string().c_str());
    run.execute(folder, resume);
    write_file_atomic(folder / "finished", "");
    std::printf("%s\n", folder.string().c_str());
    return 0;
}

// ansatz run [FILE] --resume DIR: goes on from DIR's last checkpoint.
int resume_run(const Options& o)
{
    const fs::path folder = o.resume;
    std::error_code ec;
    if (!fs::is_directory(folder, ec))
        throw UserError("--resume: " + folder.string() + " is not a folder (no such run).");
    if (!fs::is_regular_file(folder / "pipeline.yaml", ec))
        throw UserError("--resume: " + folder.string() + " is not a run folder: it has no pipeline.yaml.");
    if (fs::exists(folder / "finished", ec))
        throw UserError("--resume: the run in " + folder.string() +
                        " has finished; there is nothing to resume.");
    if (o.arguments.size() > 1)
        throw UserError("ansatz run --resume: expects at most one pipeline file.");
    if (o.runs != "runs")
        throw UserError("--resume: --runs has no meaning here; the run goes on in " + folder.string() + ".");
    if (o.arguments.empty() && !o.overrides.empty())
        throw UserError("--resume: --set cannot change a run that is resumed; start a new run to change it.");
    Options with_plugins = o;
    with_plugins.recorded_plugins = recorded_plugin_files(folder);
    Options as_saved = with_plugins;
    as_saved.overrides.clear(); // the saved pipeline.yaml is the run's, overrides already applied
    Loaded l = load(as_saved, folder / "pipeline.yaml");
    const Pipeline& p = l.pipeline;
    if (!o.arguments.empty())
    {
        // The pipeline given must be the one the run was started with (its resolved form).
        const Loaded given = load(with_plugins);
        if (given.pipeline.name != p.name)
            throw UserError("--resume: " + folder.string() + " is a run of pipeline '" + p.name +
                            "', not of '" + given.pipeline.name + "' (" + o.arguments[0] + ").");
        if (emitted(given.pipeline.resolved()) != emitted(p.resolved()))
            throw UserError("--resume: " + folder.string() +
                            " was run with another configuration of pipeline '" + p.name + "' than " +
                            o.arguments[0] + " gives; resume it without the file, or start a new run.");
    }
    const RunLock lock(folder);
    std::optional<Checkpoint> checkpoint;
    if (const std::optional<fs::path> last = last_checkpoint(folder))
    {
        checkpoint = read_checkpoint(*last);
        if (checkpoint->pipeline != p.name)
            throw UserError("--resume: checkpoint " + last->string() + " is of pipeline '" +
                            checkpoint->pipeline + "', but " + folder.string() + " runs pipeline '" + p.name +
                            "'.");
    }
    remove_checkpoint_leftovers(folder);
    set_blas_threads(p.threads);
    HostServices host(p.seed, p.threads);
    const StopSignals signals;
    host.watch(&StopSignals::flag());
    Run run(p, host);
    // pipeline.fingerprint was written with pipeline.yaml when the run began.
    std::string started_with;
    read_regular_file(folder / "pipeline.fingerprint", 64, started_with);
    if (started_with != run.fingerprint() + "\n")
        throw UserError("--resume: " + (folder / "pipeline.yaml").string() +
                        " is not the pipeline the run was started with (it was changed, or the run's "
                        "pipeline.fingerprint is missing); put it back, or start a new run.");
    run.preflight(false);
    std::fprintf(stderr, "resuming %s from %s\n", folder.string().c_str(),
                 checkpoint ? ("stage " + std::to_string(checkpoint->stage) + ", epoch " +
                               std::to_string(checkpoint->epoch))
                                  .c_str()
                            : "the start (it has no checkpoint yet)");
    return execute(run, folder, checkpoint ? &*checkpoint : nullptr);
}

void print_keys(const std::vector<KeySpec>& keys)
{
    size_t width = 4;
    for (const KeySpec& k : keys)
        width = std::max(width, k.name.size());
    if (keys.empty())
        std::printf("  (no keys)\n");
    for (const KeySpec& k : keys)
        std::printf("  %-*s  %s\n  %-*s  %s\n", static_cast<int>(width), k.name.c_str(), k.summary().c_str(),
                    static_cast<int>(width), "", k.doc.c_str());
}

} // namespace

Options parse_options(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; ++i)
    {
        const std::string a = argv[i];
        const auto value = [&](const char* flag) -> std::string {
            if (i + 1 >= argc)
                throw UserError(std::string("option ") + flag + " needs a value.");
            return argv[++i];
        };
        // fs::absolute("") throws a filesystem_error, and an empty --runs would write runs into the
        // current folder: an empty folder name is refused as the option's.
        const auto folder = [](const char* flag, const std::string& text) {
            if (text.empty())
                throw UserError(std::string("option ") + flag + " needs a folder, not an empty string.");
            return fs::path(text);
        };
        if (a == "--plugin-path")
            o.plugin_paths.push_back(fs::absolute(folder("--plugin-path", value("--plugin-path"))));
        else if (a.rfind("--plugin-path=", 0) == 0)
            o.plugin_paths.push_back(fs::absolute(folder("--plugin-path", a.substr(14))));
        else if (a == "--set")
            o.overrides.push_back(value("--set"));
        else if (a.rfind("--set=", 0) == 0)
            o.overrides.push_back(a.substr(6));
        else if (a == "--runs")
            o.runs = folder("--runs", value("--runs"));
        else if (a == "--resume")
            o.resume = folder("--resume", value("--resume"));
        else if (a.rfind("--resume=", 0) == 0)
            o.resume = folder("--resume", a.substr(9));
        else if (a == "--verbose" || a == "-v")
            o.verbose = true;
        else if (a == "--help" || a == "-h")
            o.command = "help";
        else if (a == "--version")
            o.command = "version";
        else if (a.size() > 1 && a[0] == '-')
            throw UserError("unknown option '" + a + "'; see ansatz --help.");
        else if (o.command.empty())
            o.command = a;
        else
            o.arguments.push_back(a);
    }
    return o;
}

void print_usage()
{
    std::printf(
        "usage: ansatz COMMAND [ARGS] [OPTIONS]\n"
        "\n"
        "commands:\n"
        "  run FILE         validate and run a pipeline; writes runs/<pipeline>/<time>/\n"
        "  run --resume DIR go on with an interrupted run from its last checkpoint\n"
        "  validate FILE    check a pipeline against the plugins found, without running it\n"
        "  plugins          list every plugin found: kind, name, version, file\n"
        "  describe NAME    print the keys of a plugin component or a stage type\n"
        "  report RUN_DIR   rebuild RUN_DIR/report.html from the run folder's files\n"
        "\n"
        "options:\n"
        "  --plugin-path DIR    look for plugins in DIR first (repeatable; run, validate, plugins, "
        "describe)\n"
        "  --set KEY.PATH=VALUE override a pipeline value, e.g. components.rbm.hidden=128 (repeatable)\n"
        "  --runs DIR           the folder of run folders (default: runs)\n"
        "  --resume DIR         with run: go on from DIR's last checkpoint, with the plugin files its\n"
        "                       run.yaml lists (--plugin-path folders given again come first)\n"
        "  --verbose            plugins: also show each plugin's ABI and build\n"
        "\n"
        "Plugins are searched in: --plugin-path, (with --resume) the files the run's run.yaml lists, the\n"
        "pipeline's plugin_paths:, $ANSATZ_PLUGIN_PATH, then <ansatz>/../lib/ansatz/plugins.\n"
        "Exit status: 0 done, 1 failed while running, 2 bad input.\n");
}

int command_validate(const Options& o)
{
    Loaded l = load(o);
    // Models are asked for the shape they declare (creating them, nothing else): a stage whose model
    // has none and no data is refused here as in `run`.
    HostServices host(l.pipeline.seed, 1);
    Run(l.pipeline, host).preflight(false);
    const size_t components = l.pipeline.components.size(), stages = l.pipeline.stages.size();
    std::printf("%s: valid pipeline '%s': %zu component%s, %zu stage%s\n", l.pipeline.source.name().c_str(),
                l.pipeline.name.c_str(), components, components == 1 ? "" : "s", stages,
                stages == 1 ? "" : "s");
    return 0;
}

int command_run(const Options& o)
{
    if (!o.resume.empty())
        return resume_run(o);
    Loaded l = load(o);
    const Pipeline& p = l.pipeline;
    const fs::path base = o.runs / p.name;
    check_run_base(base);
    set_blas_threads(p.threads);
    HostServices host(p.seed, p.threads);
    const StopSignals signals; // until the run returns or throws
    host.watch(&StopSignals::flag());

    Run run(p, host);
    run.preflight(true);
    if (run.stop_requested())
        throw Error(run.stop_word() + " before the first stage; no run folder was made",
                    ANSATZ_STATUS_CANCELLED);
    const fs::path folder = make_run_folder(base);
    const RunLock lock(folder);
    write_file_atomic(folder / "pipeline.yaml", emitted(p.resolved()));
    write_file_atomic(folder / "pipeline.fingerprint", run.fingerprint() + "\n"); // checked by --resume
    write_run_info(folder, p); // run.yaml: command line, versions, machine
    write_report(folder);
    return execute(run, folder, nullptr);
}

int command_plugins(const Options& o)
{
    Registry registry;
    registry.scan(plugin_search_path(o.plugin_paths, {}));
    print_refusals(registry);
    std::printf("%-10s %-24s %-9s %s\n", "KIND", "NAME", "VERSION", "FILE");
    for (const PluginComponent& c : registry.components())
    {
        std::printf("%-10s %-24s %-9s %s\n", kind_name(c.desc->kind), c.desc->name, c.plugin->version,
                    c.file.string().c_str());
        if (o.verbose)
            std::printf("           %s; ABI %u.%u; %s; build: %s\n", c.desc->summary ? c.desc->summary : "",
                        c.plugin->abi_major, c.plugin->abi_minor, c.plugin->license ? c.plugin->license : "",
                        c.plugin->build ? c.plugin->build : "");
    }
    if (registry.components().empty())
        std::fprintf(stderr, "no plugins found; searched --plugin-path, $ANSATZ_PLUGIN_PATH and "
                             "<ansatz>/../lib/ansatz/plugins\n");
    return 0;
}

int command_describe(const Options& o)
{
    if (o.arguments.size() != 1)
        throw UserError(
            "ansatz describe: expects one name, a plugin component or a stage type (train, sample).");
    const std::string& name = o.arguments[0];
    if (const StageType* stage = find_stage_type(name))
    {
        std::printf("%s (stage)\n  %s\n\nkeys:\n", stage->name.c_str(), stage->summary.c_str());
        print_keys(stage->keys);
        return 0;
    }
    Registry registry;
    registry.scan(plugin_search_path(o.plugin_paths, {}));
    print_refusals(registry);
    const PluginComponent* c = registry.find(name);
    if (!c)
    {
        std::string known, stages;
        for (const std::string& n : registry.names())
            known += (known.empty() ? "" : ", ") + n;
        for (const StageType& t : stage_types())
            stages += (stages.empty() ? "" : ", ") + t.name;
        throw UserError("ansatz describe: no plugin component or stage type named '" + name + "'" +
                        (closest(name, registry.names()).empty()
                             ? ""
                             : " (did you mean '" + closest(name, registry.names()) + "'?)") +
                        "; known: " + known + ", and the stages " + stages + ".");
    }
    const ansatz_component& d = *c->desc;
    std::printf("%s (%s)\n  %s\n\n", d.name, kind_name(d.kind), d.summary ? d.summary : "");
    std::printf("plugin:  %s %s (%s)\nfile:    %s\nABI:     %u.%u\nbuild:   %s\n", c->plugin->name,
                c->plugin->version, c->plugin->license ? c->plugin->license : "", c->file.string().c_str(),
                c->plugin->abi_major, c->plugin->abi_minor, c->plugin->build ? c->plugin->build : "");
    if (d.kind == ANSATZ_KIND_MODEL)
        std::printf("provides: %s\n", model_function_names(model_functions_of(d)).c_str());
    else if (d.needs)
        std::printf("needs of the model: %s\n", model_function_names(d.needs).c_str());
    if (d.kind == ANSATZ_KIND_SAMPLER) // 2.2: the slot was zeroed reserved room before
        std::printf("tempered advance: %s\n",
                    static_cast<const ansatz_sampler_table*>(d.table)->advance_tempered
                        ? "yes (advance_tempered)"
                        : "no");
    if (d.flags & ANSATZ_LOSS_NEEDS_SAMPLER)
        std::printf("needs a sampler in its train stage\n");
    std::printf("\nkeys:\n");
    print_keys(key_specs(d));
    return 0;
}

// ---- ansatz report RUN_DIR (issue 9)
int command_report(const Options& o)
{
    if (o.arguments.size() != 1)
        throw UserError(
            "ansatz report: expects one run folder, e.g. ansatz report runs/quickstart/20261127-131502");
    const fs::path folder = o.arguments[0];
    if (!fs::is_regular_file(folder / "pipeline.yaml"))
        throw UserError(
            "ansatz report: " + folder.string() +
            " is not a run folder (it has no pipeline.yaml); give a folder that `ansatz run` made, "
            "e.g. runs/quickstart/20261127-131502.");
    try
    {
        write_report(folder);
    }
    catch (const fs::filesystem_error& e)
    {
        throw UserError("ansatz report: cannot write the report into " + folder.string() + ": " +
                        e.code().message() + " (" + e.path1().string() + ").");
    }
    std::printf("%s\n", (folder / "report.html").string().c_str());
    return 0;
}

} // namespace ansatz::engine

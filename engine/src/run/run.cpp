#include "run/run.hpp"

#include "ansatz/refs.hpp"
#include "outputs/report.hpp"
#include "stages/stage_types.hpp"
#include "stages/stages.hpp"
#include "user_error.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <set>

namespace ansatz::engine
{

namespace
{

// The first stop signal since StopSignals was installed. Lock-free, so the handler may set it.
std::atomic<int> stop_signal{ 0 };
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_stop_signal(int signal)
{
    if (stop_signal.exchange(signal) == 0)
        return;
    // A second signal: the user insists. Stop as the default action does (status 128 + signal).
    struct sigaction default_action = {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    sigaction(signal, &default_action, nullptr);
    raise(signal);
}

// A bound as the error message shows it: "-1", "0.5", "inf".
std::string bound_text(double x)
{
    char text[32];
    std::snprintf(text, sizeof text, "%g", x);
    return text;
}

} // namespace

StopSignals::StopSignals()
{
    stop_signal.store(0);
    struct sigaction action = {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGINT); // one handler at a time
    sigaddset(&action.sa_mask, SIGTERM);
    action.sa_flags = SA_RESTART; // a signal must not fail a write into the run folder with EINTR
    sigaction(SIGINT, &action, &previous_interrupt_);
    sigaction(SIGTERM, &action, &previous_terminate_);
}

StopSignals::~StopSignals()
{
    sigaction(SIGINT, &previous_interrupt_, nullptr);
    sigaction(SIGTERM, &previous_terminate_, nullptr);
}

const std::atomic<int>& StopSignals::flag()
{
    return stop_signal;
}

int StopSignals::received()
{
    return stop_signal.load();
}

Run::Run(const Pipeline& pipeline, HostServices& host) : pipeline_(pipeline), host_(host)
{
    YAML::Emitter emitter;
    emitter << pipeline_.resolved();
    fingerprint_ = engine::fingerprint(emitter.c_str());
}

Run::~Run()
{
    // A component may hold one created before it (a sampler its model): destroy in reverse order.
    while (!instances_.empty())
        instances_.pop_back();
}

Instance& Run::instance(const std::string& name)
{
    if (const auto found = instance_index_.find(name); found != instance_index_.end())
        return *instances_[found->second];
    const ComponentDecl& c = pipeline_.component(name);
    if (std::find(creating_.begin(), creating_.end(), name) != creating_.end())
        throw UserError("component '" + name +
                        "' names itself through other components; none could be created first.");
    creating_.push_back(name);
    // What it names first: its configuration carries their handles.
    for (const KeySpec& key : c.specs)
        if (key.type == ANSATZ_PARAM_COMPONENT && c.values.at(key.name).present)
            instance(c.values.at(key.name).text);
    // Paths in the run folder ($run/...) resolve now that it exists (the validation made sure an earlier
    // stage writes them).
    Values values = c.values;
    for (const KeySpec& key : c.specs)
        if (Value& v = values.at(key.name); key.type == ANSATZ_PARAM_PATH && v.present && is_run_path(v.text))
        {
            if (folder_.empty())
                throw UserError("component '" + name + "': key '" + key.name + "' names " + v.text +
                                ", a file of the run folder, but the component is needed before the run "
                                "folder exists (to set up a model of a stage before it); give that model "
                                "its shape in its own configuration or a 'data' key in that stage.");
            v.text =
                (folder_ / v.text.substr(std::string(run_folder_prefix).size())).lexically_normal().string();
        }
    configs_.push_back(
        to_config(c.specs, values, [&](const std::string& other) { return instance(other).handle(); }));
    instances_.push_back(std::make_unique<Instance>(*c.plugin, configs_.back().c(c.name), host_.table()));
    creating_.pop_back();
    instance_index_[c.name] = instances_.size() - 1;
    return *instances_.back();
}

void Run::preflight(bool create_first_stage)
{
    std::set<std::string> shaped;
    for (const StageDecl& s : pipeline_.stages)
    {
        if (!s.values.count("model"))
            continue;
        const std::string& model = s.text("model");
        if ((s.values.count("data") && s.has("data")) || shaped.count(model))
        {
            shaped.insert(model);
            continue;
        }
        if (ModelRef(instance(model).model()).sample_info().rank < 0)
            throw UserError(
                pipeline_.source.where(s.node) + ": " + s.label() + ": model '" + model +
                "' has no sample shape: give it one in its configuration (e.g. an rbm's visible:), "
                "run a train stage with data before this one, or give this stage a 'data' key");
        shaped.insert(model);
    }
    if (create_first_stage && !pipeline_.stages.empty())
        for (const std::string& name : stage_components(pipeline_.stages.front()))
            instance(name);
    // A latent stage's keys that need a 2-D latent are checked against its model now (the model knows
    // its latent size from create on, abi.h), and those that need labels against its data if it exists
    // already, before any output.
    for (const StageDecl& s : pipeline_.stages)
        if (s.type == "latent")
            check_latent_model(*this, s);
    if (!create_first_stage || pipeline_.stages.empty())
        return;
    const StageDecl& first = pipeline_.stages.front();
    // Its model is set up now too: a size the machine cannot hold is refused before any output.
    if (!first.values.count("model"))
        return;
    prepare_model(first.text("model"),
                  first.values.count("data") && first.has("data") ? first.text("data") : "", first);
    // And its evaluators bound to it: one that cannot measure this model (a layer too large to
    // enumerate) says so before any output. The stage binds them again when it starts (abi.h).
    if (first.values.count("evaluators") && first.has("evaluators"))
    {
        const ansatz_model_handle model = instance(first.text("model")).model();
        for (const std::string& name : first.values.at("evaluators").texts)
        {
            Instance& evaluator = instance(name);
            ansatz_status st{};
            evaluator.check(evaluator.evaluator().bind(evaluator.self(), &model, &st), st);
        }
    }
}

bool Run::stop_requested()
{
    if (StopSignals::received() != 0)
        host_.request_cancel();
    return host_.cancelled();
}

std::string Run::stop_word() const
{
    return StopSignals::received() == SIGTERM ? "terminated" : "interrupted";
}

void Run::execute(const std::filesystem::path& folder, const Checkpoint* resume)
{
    folder_ = folder;
    metrics_ = std::make_unique<MetricsCsv>(folder_ / "metrics.csv");
    if (resume)
        restore(*resume);
    for (const StageDecl& stage : pipeline_.stages)
    {
        if (resume && stage.index < resume->stage)
            continue; // finished before the checkpoint: its outputs are in the folder
        if (stop_requested())
            throw Error(stop_word() + " before " + stage.label(), ANSATZ_STATUS_CANCELLED);
        host_.progress() = ansatz_progress{};
        host_.progress().struct_size = sizeof(ansatz_progress);
        host_.progress().stage = static_cast<int32_t>(stage.index);
        find_stage_type(stage.type)->run(*this, stage);
        resume_ = nullptr;
        write_report(folder_); // report.html after every stage
    }
}

void Run::restore(const Checkpoint& c)
{
    resume_ = &c;
    try
    {
        metrics_->restore(c.metrics_csv);
    }
    catch (const std::exception& e)
    {
        throw UserError("the checkpoint's metrics.csv is damaged: " + std::string(e.what()) + ".");
    }
    for (const ModelShape& m : c.models)
    {
        if (!pipeline_.has_component(m.model))
            throw UserError("the checkpoint holds model '" + m.model +
                            "', which the pipeline does not have.");
        const ansatz_sample_info own = ModelRef(instance(m.model).model()).sample_info();
        if (own.domain != m.domain ||
            (own.rank >= 0 && std::vector<int64_t>(own.shape, own.shape + own.rank) != m.sample_shape))
            throw UserError("the checkpoint's sample shape or domain of model '" + m.model +
                            "' is not the one the model declares.");
        setup_model(m.model, ModelState{ m.sample_shape, m.is_image, m.shaped_by, m.domain, m.categories });
        Instance& model = instance(m.model);
        const std::vector<ansatz_named_tensor> saved = c.named(m.model, "parameters");
        const std::vector<ansatz_named_tensor> live = model_parameters(model);
        if (saved.size() != live.size())
            throw UserError("the checkpoint holds " + std::to_string(saved.size()) +
                            " parameters of model '" + m.model + "', but it has " +
                            std::to_string(live.size()) + ".");
        for (size_t k = 0; k < live.size(); ++k)
        {
            const ansatz_tensor& from = saved[k].tensor;
            const ansatz_tensor& to = live[k].tensor;
            bool same = std::strcmp(saved[k].name, live[k].name) == 0 && from.dtype == to.dtype &&
                        from.rank == to.rank;
            for (int32_t i = 0; same && i < to.rank; ++i)
                same = from.shape[i] == to.shape[i];
            if (!same)
                throw UserError("the checkpoint's parameter '" + std::string(saved[k].name) + "' " +
                                shape_string(from) + " does not fit parameter '" + live[k].name + "' " +
                                shape_string(to) + " of model '" + m.model + "'.");
            std::memcpy(to.data, from.data, static_cast<size_t>(element_count(to)) * dtype_size(to.dtype));
        }
        model.parameters_changed();
    }
    // State of the components the resumed stage binds is applied after that bind (restore_state);
    // the others' now, before any bind (abi.h lifecycle).
    const StageDecl* stage = nullptr;
    for (const StageDecl& s : pipeline_.stages)
        if (s.index == c.stage)
            stage = &s;
    if (!stage || stage->type != "train")
        throw UserError("the checkpoint is of stage " + std::to_string(c.stage) +
                        ", which is not a train stage of the pipeline.");
    const std::vector<std::string> bound = stage_closure(pipeline_, *stage);
    std::set<std::string> owners;
    for (const CheckpointPiece& p : c.pieces)
        if (p.part == "state" && p.owner != "engine") // the engine's own: the resumed stage takes it
            owners.insert(p.owner);
    for (const std::string& owner : owners)
    {
        if (!pipeline_.has_component(owner))
            throw UserError("the checkpoint holds the state of component '" + owner +
                            "', which the pipeline does not have.");
        pending_state_[owner] = c.named(owner, "state");
        if (std::find(bound.begin(), bound.end(), owner) == bound.end())
            restore_state(owner);
    }
}

const Checkpoint* Run::resuming(size_t stage) const
{
    return resume_ && resume_->stage == stage ? resume_ : nullptr;
}

void Run::restore_bound_state(const StageDecl& stage)
{
    if (!resuming(stage.index))
        return;
    for (const std::string& name : stage_closure(pipeline_, stage))
        restore_state(name);
}

void Run::restore_state(const std::string& component)
{
    const auto found = pending_state_.find(component);
    if (found == pending_state_.end())
        return;
    instance(component).set_state(found->second);
    pending_state_.erase(found);
}

Checkpoint Run::snapshot(size_t stage, int64_t epoch, const std::vector<ansatz_named_tensor>& engine)
{
    Checkpoint c;
    c.pipeline = pipeline_.name;
    c.stage = stage;
    c.epoch = epoch;
    for (const ComponentDecl& declared : pipeline_.components)
    {
        const std::string& name = declared.name;
        if (!models_.count(name))
            continue;
        const ModelState& m = models_.at(name);
        c.models.push_back(
            ModelShape{ name, m.sample_shape, m.shaped_by, m.is_image, m.domain, m.categories });
        for (const ansatz_named_tensor& p : model_parameters(instance(name)))
            c.pieces.push_back(CheckpointPiece{ name, "parameters", p.name, p.tensor, {} });
    }
    // In the pipeline's order, not creation order: a resumed run creates components in another order.
    for (const ComponentDecl& declared : pipeline_.components)
        if (instance_index_.count(declared.name))
            for (const ansatz_named_tensor& p : instance(declared.name).state())
                c.pieces.push_back(CheckpointPiece{ declared.name, "state", p.name, p.tensor, {} });
    for (const ansatz_named_tensor& p : engine)
        c.pieces.push_back(CheckpointPiece{ "engine", "state", p.name, p.tensor, {} });
    c.metrics_csv = metrics_->text();
    return c;
}

const ModelState& Run::model_state(const std::string& model) const
{
    return models_.at(model);
}

void Run::setup_model(const std::string& model, const ModelState& state)
{
    Rng rng = host_.stream("components." + model + ".init");
    const Instance& m = instance(model);
    ansatz_status st{};
    m.check(m.model().table->setup(m.self(), state.sample_shape.data(),
                                   static_cast<int32_t>(state.sample_shape.size()), &rng.state(), &st),
            st);
    models_[model] = state;
}

void Run::prepare_model(const std::string& model, const std::string& dataset, const StageDecl& stage)
{
    std::vector<int64_t> data_shape;
    bool data_is_image = false;
    if (!dataset.empty())
    {
        const ansatz_dataset_info info = dataset_info(instance(dataset));
        data_shape.assign(info.sample_shape, info.sample_shape + info.sample_rank);
        data_is_image = info.is_image != 0;
    }
    const auto mismatch = [&](const std::vector<int64_t>& expected, const std::string& by) {
        return UserError(pipeline_.source.where(stage.node) + ": " + stage.label() + ": dataset '" + dataset +
                         "' has samples of " + std::to_string(flat_size(data_shape)) +
                         " values, but model '" + model + "' " + by + " " +
                         std::to_string(flat_size(expected)) + ".");
    };
    if (const auto found = models_.find(model); found != models_.end())
    {
        const ModelState& state = found->second;
        if (!dataset.empty() && flat_size(state.sample_shape) != flat_size(data_shape))
            throw mismatch(state.sample_shape, state.shaped_by.empty()
                                                   ? std::string("has samples of")
                                                   : "was set up for dataset '" + state.shaped_by + "' with");
        return;
    }
    ansatz_sample_info own{};
    try
    {
        own = ModelRef(instance(model).model()).sample_info();
    }
    catch (const Error& e)
    {
        ansatz_status st{};
        set_status(&st, e.code(), e.what());
        instance(model).check(e.code(), st);
    }
    // 2.5's box of a REAL model's variables: a plugin's mistake here would clamp chains into nothing.
    if (own.low != 0.0 || own.high != 0.0)
    {
        std::string why;
        if (own.domain != ANSATZ_DOMAIN_REAL)
            why = "bounds [" + bound_text(own.low) + ", " + bound_text(own.high) +
                  "] for a domain that is not real";
        else if (std::isnan(own.low) || std::isnan(own.high) || !(own.low < own.high))
            why = "bounds [" + bound_text(own.low) + ", " + bound_text(own.high) +
                  "], which are not an interval low < high";
        if (!why.empty())
            throw UserError(instance(model).describe() + ": its sample info states " + why + ".");
    }
    ModelState state;
    state.domain = own.domain;
    state.categories = own.categories;
    if (own.rank >= 0)
    {
        state.sample_shape.assign(own.shape, own.shape + own.rank);
        if (!dataset.empty() && flat_size(state.sample_shape) != flat_size(data_shape))
            throw mismatch(state.sample_shape, "declares samples of");
        state.is_image = own.rank == 2 || (data_is_image && data_shape == state.sample_shape);
    }
    else if (!dataset.empty())
    {
        state.sample_shape = data_shape;
        state.is_image = data_is_image;
        state.shaped_by = dataset;
    }
    else
        throw UserError(pipeline_.source.where(stage.node) + ": " + stage.label() + ": model '" + model +
                        "' has no sample shape.");
    setup_model(model, state);
}

namespace
{

// The engine sizes buffers and indexes sample_shape by what a dataset reports: check it first.
void check_dataset_info(const Instance& dataset, const ansatz_dataset_info& info)
{
    const auto fail = [&](const std::string& what) {
        throw Error(dataset.describe() + ": its info() reported " + what + " (a bug in the plugin).");
    };
    if (info.sample_rank < 0 || info.sample_rank > ANSATZ_MAX_RANK)
        fail("a sample rank of " + std::to_string(info.sample_rank) + ", outside [0, " +
             std::to_string(ANSATZ_MAX_RANK) + "]");
    // One sample is a row of a batch: its size must be a positive int32 (2^31 - 1 at most).
    constexpr int64_t max_values = INT32_MAX;
    int64_t values = 1;
    for (int32_t i = 0; i < info.sample_rank; ++i)
    {
        const int64_t extent = info.sample_shape[i];
        if (extent <= 0)
            fail("sample_shape[" + std::to_string(i) + "] = " + std::to_string(extent) +
                 "; every extent must be > 0");
        if (extent > max_values / values)
            fail("a sample shape of more than 2^31 - 1 values");
        values *= extent;
    }
    if (info.count < 0)
        fail("a count of " + std::to_string(info.count) + " samples");
}

} // namespace

ansatz_dataset_info dataset_info(const Instance& dataset)
{
    ansatz_dataset_info info{};
    ansatz_status st{};
    dataset.check(dataset.dataset().info(dataset.self(), &info, &st), st);
    check_dataset_info(dataset, info);
    return info;
}

std::vector<ansatz_named_tensor> model_parameters(const Instance& model)
{
    return ModelRef(model.model()).parameters();
}

int64_t flat_size(const std::vector<int64_t>& shape)
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

} // namespace ansatz::engine

#include "run.hpp"

#include "ansatz/refs.hpp"
#include "outputs/report.hpp"
#include "stage_types.hpp"
#include "user_error.hpp"

#include <atomic>
#include <csignal>

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

Run::Run(const Pipeline& pipeline, HostServices& host) : pipeline_(pipeline), host_(host) {}

Run::~Run()
{
    // A component may hold one created before it (a sampler its model): destroy in reverse order.
    while (!instances_.empty())
        instances_.pop_back();
}

void Run::create_components()
{
    configs_.reserve(pipeline_.components.size());
    for (const ComponentDecl& c : pipeline_.components)
    {
        configs_.push_back(to_config(c.specs, c.values));
        instances_.push_back(std::make_unique<Instance>(*c.plugin, configs_.back().c(c.name), host_.table()));
        instance_index_[c.name] = instances_.size() - 1;
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

void Run::execute(const std::filesystem::path& folder)
{
    folder_ = folder;
    metrics_ = std::make_unique<MetricsCsv>(folder_ / "metrics.csv");
    for (const StageDecl& stage : pipeline_.stages)
    {
        if (stop_requested())
            throw Error(stop_word() + " before " + stage.label(), ANSATZ_STATUS_CANCELLED);
        find_stage_type(stage.type)->run(*this, stage);
        write_report(folder_); // report.html after every stage (issue 9)
    }
}

Instance& Run::instance(const std::string& name)
{
    return *instances_.at(instance_index_.at(name));
}

const ModelState& Run::model_state(const std::string& model) const
{
    return models_.at(model);
}

void Run::prepare_model(const std::string& model, const std::string& dataset, const StageDecl& stage)
{
    const ansatz_dataset_info info = dataset_info(instance(dataset));
    std::vector<int64_t> shape(info.sample_shape, info.sample_shape + info.sample_rank);
    ModelState& state = models_[model];
    if (state.set_up)
    {
        if (flat_size(state.sample_shape) != flat_size(shape))
            throw UserError(pipeline_.source.where(stage.node) + ": " + stage.label() + ": dataset '" +
                            dataset + "' has samples of " + std::to_string(flat_size(shape)) +
                            " values, but model '" + model + "' was set up for dataset '" + state.shaped_by +
                            "' with " + std::to_string(flat_size(state.sample_shape)) + ".");
        return;
    }
    Rng rng = host_.stream("components." + model + ".init");
    const Instance& m = instance(model);
    ansatz_status st{};
    m.check(
        m.model().table->setup(m.self(), shape.data(), static_cast<int32_t>(shape.size()), &rng.state(), &st),
        st);
    state = ModelState{ true, shape, info.is_image != 0, dataset };
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

std::vector<std::pair<std::string, double>> checked_metrics(const Instance& from, const ansatz_metrics& m)
{
    if (m.count < 0 || m.count > ANSATZ_MAX_METRICS)
        throw Error(from.describe() + ": reported " + std::to_string(m.count) + " metrics, outside [0, " +
                    std::to_string(ANSATZ_MAX_METRICS) + "] (a bug in the plugin).");
    std::vector<std::pair<std::string, double>> out;
    for (int32_t i = 0; i < m.count; ++i)
    {
        if (m.items[i].name == nullptr || m.items[i].name[0] == '\0')
            throw Error(from.describe() + ": reported metric " + std::to_string(i) +
                        " without a name (a bug in the plugin).");
        out.emplace_back(m.items[i].name, m.items[i].value);
    }
    return out;
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

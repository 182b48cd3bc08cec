#include "run.hpp"

#include "ansatz/refs.hpp"
#include "stage_types.hpp"
#include "user_error.hpp"

namespace ansatz::engine
{

Run::Run(const Pipeline& pipeline, HostServices& host) : pipeline_(pipeline), host_(host) {}

void Run::create_components()
{
    configs_.reserve(pipeline_.components.size());
    for (const ComponentDecl& c : pipeline_.components)
    {
        configs_.push_back(to_config(c.specs, c.values));
        instances_[c.name] = std::make_unique<Instance>(*c.plugin, configs_.back().c(c.name), host_.table());
    }
}

void Run::execute(const std::filesystem::path& folder)
{
    folder_ = folder;
    metrics_ = std::make_unique<MetricsCsv>(folder_ / "metrics.csv");
    for (const StageDecl& stage : pipeline_.stages)
    {
        if (host_.cancelled())
            throw Error("interrupted before " + stage.label(), ANSATZ_STATUS_CANCELLED);
        find_stage_type(stage.type)->run(*this, stage);
    }
}

Instance& Run::instance(const std::string& name)
{
    return *instances_.at(name);
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

ansatz_dataset_info dataset_info(const Instance& dataset)
{
    ansatz_dataset_info info{};
    ansatz_status st{};
    dataset.check(dataset.dataset().info(dataset.self(), &info, &st), st);
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

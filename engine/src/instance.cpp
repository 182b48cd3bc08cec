#include "instance.hpp"

#include "ansatz/error.hpp"
#include "pipeline.hpp"
#include "user_error.hpp"

namespace ansatz::engine
{

Instance::Instance(const PluginComponent& component, const ansatz_config& config, const ansatz_host* host)
    : component_(component), name_(config.instance_name ? config.instance_name : component.desc->name)
{
    ansatz_status st{};
    self_ = component_.desc->create(&config, host, &st);
    if (self_ == nullptr)
        check(st.code == ANSATZ_STATUS_OK ? ANSATZ_STATUS_FAILURE : st.code, st);
}

Instance::~Instance()
{
    if (self_)
        component_.desc->destroy(self_);
}

std::string Instance::describe() const
{
    return "component '" + name_ + "' (" + kind_name(component_.desc->kind) + " '" + component_.desc->name +
           "' from " + component_.file.string() + ")";
}

void Instance::check(int32_t code, const ansatz_status& st) const
{
    if (code == ANSATZ_STATUS_OK)
        return;
    const std::string message = describe() + ": " + (st.message[0] ? st.message : "failed without a message");
    if (code == ANSATZ_STATUS_INVALID_INPUT)
        throw UserError(message);
    throw Error(message, code);
}

const void* Instance::table(int32_t kind) const
{
    if (component_.desc->kind != kind)
        throw Error(describe() + " is " + with_article(kind_name(component_.desc->kind)) + ", not " +
                    with_article(kind_name(kind)));
    return component_.desc->table;
}

ansatz_model_handle Instance::model() const
{
    return { static_cast<const ansatz_model_table*>(table(ANSATZ_KIND_MODEL)), self_ };
}
ansatz_sampler_handle Instance::sampler() const
{
    return { static_cast<const ansatz_sampler_table*>(table(ANSATZ_KIND_SAMPLER)), self_ };
}
const ansatz_loss_table& Instance::loss() const
{
    return *static_cast<const ansatz_loss_table*>(table(ANSATZ_KIND_LOSS));
}
const ansatz_optimizer_table& Instance::optimizer() const
{
    return *static_cast<const ansatz_optimizer_table*>(table(ANSATZ_KIND_OPTIMIZER));
}
const ansatz_dataset_table& Instance::dataset() const
{
    return *static_cast<const ansatz_dataset_table*>(table(ANSATZ_KIND_DATASET));
}

} // namespace ansatz::engine

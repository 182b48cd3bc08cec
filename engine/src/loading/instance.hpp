// instance.hpp -- a created component: its plugin's object, destroyed by its plugin, holding the library.
#pragma once

#include "loading/registry.hpp"

#include <string>
#include <utility>
#include <vector>

namespace ansatz::engine
{

class Instance
{
public:
    // Creates the component; a failure names the instance and the plugin file (UserError when the
    // plugin says the input is wrong).
    Instance(const PluginComponent& component, const ansatz_config& config, const ansatz_host* host);
    ~Instance();
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    const std::string& name() const { return name_; }
    const ansatz_component& desc() const { return *component_.desc; }
    const PluginComponent& component() const { return component_; }
    void* self() const { return self_; }

    ansatz_handle handle() const { return { component_.desc->kind, 0, component_.desc->table, self_ }; }
    ansatz_model_handle model() const;
    ansatz_sampler_handle sampler() const;
    const ansatz_loss_table& loss() const;
    const ansatz_optimizer_table& optimizer() const;
    const ansatz_dataset_table& dataset() const;
    const ansatz_evaluator_table& evaluator() const;

    // A model's parameters were just written through their views (an optimizer's step, a restored
    // checkpoint, a load stage): calls its parameters_changed (abi.h 2.3) when it has one.
    void parameters_changed() const;

    // Samplers, losses and optimizers may have state (abi.h); models and datasets have none.
    bool has_state() const;
    // Views of its state, checked (names, ranks, dtypes, data); a bug in the plugin is an Error.
    std::vector<ansatz_named_tensor> state() const;
    void set_state(const std::vector<ansatz_named_tensor>& pieces) const;

    // "component 'rbm' (model 'rbm' from FILE)": the prefix of this instance's failures.
    std::string describe() const;
    // Throws the failed status of a call on this instance, prefixed with describe().
    void check(int32_t code, const ansatz_status& st) const;

private:
    const void* table(int32_t kind) const;

    PluginComponent component_;
    std::string name_;
    void* self_ = nullptr;
};

} // namespace ansatz::engine

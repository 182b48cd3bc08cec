#include "loading/instance.hpp"

#include "ansatz/error.hpp"
#include "ansatz/tensor.hpp"
#include "pipeline/pipeline.hpp"
#include "user_error.hpp"

#include <cctype>
#include <cstring>

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

namespace
{

std::pair<ansatz_state_fn, ansatz_set_state_fn> state_slots(const ansatz_component& c)
{
    switch (c.kind)
    {
    case ANSATZ_KIND_SAMPLER:
    {
        const auto* t = static_cast<const ansatz_sampler_table*>(c.table);
        return { t->state, t->set_state };
    }
    case ANSATZ_KIND_LOSS:
    {
        const auto* t = static_cast<const ansatz_loss_table*>(c.table);
        return { t->state, t->set_state };
    }
    case ANSATZ_KIND_OPTIMIZER:
    {
        const auto* t = static_cast<const ansatz_optimizer_table*>(c.table);
        return { t->state, t->set_state };
    }
    default:
        return { nullptr, nullptr };
    }
}

bool valid_piece_name(const char* name)
{
    if (!name || !name[0] || name[0] == '.')
        return false;
    for (const char* c = name; *c; ++c)
        if (!(std::isalnum(static_cast<unsigned char>(*c)) || *c == '_' || *c == '.' || *c == '-'))
            return false;
    return std::strlen(name) <= 100;
}

} // namespace

bool Instance::has_state() const
{
    return state_slots(*component_.desc).first != nullptr;
}

std::vector<ansatz_named_tensor> Instance::state() const
{
    const ansatz_state_fn state_fn = state_slots(*component_.desc).first;
    if (!state_fn)
        return {};
    const auto fail = [&](const std::string& what) {
        throw Error(describe() + ": its state() " + what + " (a bug in the plugin).");
    };
    ansatz_status st{};
    const int32_t n = state_fn(self_, nullptr, 0, &st);
    if (n < 0)
        check(st.code ? st.code : ANSATZ_STATUS_FAILURE, st);
    std::vector<ansatz_named_tensor> pieces(static_cast<size_t>(n));
    if (state_fn(self_, pieces.data(), n, &st) != n)
        fail("gave another count of tensors the second time");
    for (const ansatz_named_tensor& t : pieces)
    {
        if (!valid_piece_name(t.name))
            fail("gave a piece without a valid name (letters, digits, '_', '.', '-')");
        if (t.tensor.rank < 0 || t.tensor.rank > ANSATZ_MAX_RANK || dtype_size(t.tensor.dtype) == 0 ||
            t.tensor.device != ANSATZ_DEVICE_HOST)
            fail(std::string("gave the piece '") + t.name + "' with an invalid rank, dtype or device");
        for (int32_t i = 0; i < t.tensor.rank; ++i)
            if (t.tensor.shape[i] < 0)
                fail(std::string("gave the piece '") + t.name + "' a negative extent");
        if (t.tensor.data == nullptr && element_count(t.tensor) > 0)
            fail(std::string("gave the piece '") + t.name + "' without data");
        for (const ansatz_named_tensor& other : pieces)
            if (&other != &t && std::strcmp(other.name, t.name) == 0)
                fail(std::string("gave two pieces named '") + t.name + "'");
    }
    return pieces;
}

void Instance::set_state(const std::vector<ansatz_named_tensor>& pieces) const
{
    const ansatz_set_state_fn set_state_fn = state_slots(*component_.desc).second;
    if (!set_state_fn)
    {
        if (!pieces.empty())
            throw UserError(describe() + ": the checkpoint holds state for it, but it keeps none.");
        return;
    }
    ansatz_status st{};
    check(set_state_fn(self_, pieces.data(), static_cast<int32_t>(pieces.size()), &st), st);
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
void Instance::parameters_changed() const
{
    const ansatz_model_handle m = model();
    if (!m.table->parameters_changed)
        return;
    ansatz_status st{};
    check(m.table->parameters_changed(m.self, &st), st);
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
const ansatz_evaluator_table& Instance::evaluator() const
{
    return *static_cast<const ansatz_evaluator_table*>(table(ANSATZ_KIND_EVALUATOR));
}

} // namespace ansatz::engine

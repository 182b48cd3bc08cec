#include "loading/descriptor_check.hpp"

#include "loading/abi_sizes.hpp"
#include "loading/registry.hpp"
#include "stages/stage_types.hpp"

#include <cstring>
#include <set>

namespace ansatz::engine
{

namespace
{

std::string version_string(uint32_t major, uint32_t minor)
{
    return std::to_string(major) + "." + std::to_string(minor);
}

template <class T>
const T& element(const T* base, uint32_t stride, int32_t i)
{
    return *reinterpret_cast<const T*>(reinterpret_cast<const char*>(base) + static_cast<size_t>(stride) * i);
}

// The first NULL among the named function pointers, or nullptr.
const char* first_missing(std::initializer_list<std::pair<const char*, const void*>> functions)
{
    for (const auto& [name, pointer] : functions)
        if (pointer == nullptr)
            return name;
    return nullptr;
}

template <class Table>
const Table* table_of(const void* table)
{
    const auto* t = static_cast<const Table*>(table);
    return t->struct_size >= abi_2_0_size<Table>() ? t : nullptr;
}

#define ANSATZ_FN(table, name)                                                                               \
    {                                                                                                        \
#name, reinterpret_cast < const void*>((table)->name)                                                \
    }

// True when every byte of the reserved room is zero (abi.h: reserved room is zero).
template <size_t N>
bool zeroed(void* const (&reserved)[N])
{
    for (void* p : reserved)
        if (p != nullptr)
            return false;
    return true;
}

// state and set_state come together or not at all.
template <class Table>
const char* state_refusal(const Table* t)
{
    return (t->state == nullptr) != (t->set_state == nullptr)
               ? "it has one of state and set_state without the other"
               : nullptr;
}

// True when none of the pointers is set: slots a later minor added were reserved room, hence zero, in a
// plugin built for an earlier one (abi.h).
bool none_set(std::initializer_list<const void*> slots)
{
    for (const void* p : slots)
        if (p != nullptr)
            return false;
    return true;
}

// Why a component's table is unfit, or "". A NULL slot is an absent function (abi.h): only the
// functions every component of its kind must have are required here; what a sampler or loss needs
// of its model is checked when a pipeline pairs them. `minor` is the plugin's ABI minor: slots of a
// later minor must be zero (its reserved room).
std::string table_refusal(const ansatz_component& c, uint32_t minor)
{
    const char* missing = nullptr;
    const char* wrong = nullptr;
    bool clean = true;
    switch (c.kind)
    {
    case ANSATZ_KIND_MODEL:
    {
        const auto* t = table_of<ansatz_model_table>(c.table);
        if (!t)
            return "its table is smaller than ABI 2.0's";
        clean = zeroed(t->reserved) && (minor >= 3 || t->parameters_changed == nullptr);
        missing =
            first_missing({ ANSATZ_FN(t, setup), ANSATZ_FN(t, parameters), ANSATZ_FN(t, random_state) });
        if (t->energy)
        {
            if (!table_of<ansatz_energy_table>(t->energy))
                return "its energy table is smaller than ABI 2.0's";
            const ansatz_energy_table* e = t->energy;
            if (minor < 1)
                clean = clean && none_set({ reinterpret_cast<const void*>(e->free_energy_grad_weighted),
                                            reinterpret_cast<const void*>(e->tempered_free_energy),
                                            reinterpret_cast<const void*>(e->base_log_partition) });
            if (minor < 2)
                clean = clean && none_set({ reinterpret_cast<const void*>(e->local_begin),
                                            reinterpret_cast<const void*>(e->local_commit),
                                            reinterpret_cast<const void*>(e->local_end),
                                            reinterpret_cast<const void*>(e->free_energy_grad_state) });
            if (minor < 4)
                clean = clean && none_set({ reinterpret_cast<const void*>(e->local_step) });
            if ((e->tempered_free_energy == nullptr) != (e->base_log_partition == nullptr))
                wrong = "its energy table has one of tempered_free_energy and base_log_partition without the "
                        "other";
            const int local =
                (e->local_begin != nullptr) + (e->local_commit != nullptr) + (e->local_end != nullptr);
            if (local != 0 && local != 3)
                wrong = "its energy table has some of local_begin, local_commit and local_end without the "
                        "others";
            else if (local == 3 && e->energy_delta == nullptr)
                wrong =
                    "its energy table has a local-move session (local_begin, local_commit, local_end) but "
                    "no energy_delta";
            else if (local == 0 && e->local_step != nullptr)
                wrong = "its energy table has local_step but no local-move session (local_begin, "
                        "local_commit, local_end) to run it in";
        }
        if (t->conditionals)
        {
            const auto* k = table_of<ansatz_conditionals_table>(t->conditionals);
            if (!k)
                return "its conditionals table is smaller than ABI 2.0's";
            clean = clean && zeroed(k->reserved);
            if (minor < 1)
                clean = clean && none_set({ reinterpret_cast<const void*>(k->tempered_conditional),
                                            reinterpret_cast<const void*>(k->block_free_energy) });
            if ((k->block_size == nullptr) != (k->conditional == nullptr))
                wrong = "its conditionals table has one of block_size and conditional without the other";
            // The tempered functions (abi.h): tempered_conditional exactly when the energy table is
            // tempered, for a model with conditionals.
            const bool tempered_energy = t->energy && t->energy->tempered_free_energy;
            if (!wrong && k->tempered_conditional && !tempered_energy)
                wrong = "its conditionals table has tempered_conditional, but its energy table has no "
                        "tempered_free_energy and base_log_partition";
            if (!wrong && tempered_energy && k->conditional && !k->tempered_conditional)
                wrong = "its energy table has tempered_free_energy and base_log_partition, but its "
                        "conditionals table has no tempered_conditional (a model with conditionals needs "
                        "all three)";
        }
        if (t->latent)
        {
            const auto* l = table_of<ansatz_latent_table>(t->latent);
            if (!l)
                return "its latent table is smaller than ABI 2.0's";
            clean = clean && zeroed(l->reserved);
            if (minor < 2)
                clean = clean && none_set({ reinterpret_cast<const void*>(l->decode_backward_weighted) });
            if (!missing)
                missing = first_missing({ ANSATZ_FN(l, latent_size), ANSATZ_FN(l, encode),
                                          ANSATZ_FN(l, encode_backward), ANSATZ_FN(l, decode_log_likelihood),
                                          ANSATZ_FN(l, decode_backward), ANSATZ_FN(l, decode_mean) });
        }
        break;
    }
    case ANSATZ_KIND_SAMPLER:
    {
        const auto* t = table_of<ansatz_sampler_table>(c.table);
        if (!t)
            return "its table is smaller than ABI 2.0's";
        clean = zeroed(t->reserved) && (minor >= 2 || t->advance_tempered == nullptr);
        missing = first_missing({ ANSATZ_FN(t, bind), ANSATZ_FN(t, advance) });
        wrong = state_refusal(t);
        break;
    }
    case ANSATZ_KIND_LOSS:
    {
        const auto* t = table_of<ansatz_loss_table>(c.table);
        if (!t)
            return "its table is smaller than ABI 2.0's";
        clean = zeroed(t->reserved);
        missing = first_missing({ ANSATZ_FN(t, bind), ANSATZ_FN(t, compute) });
        wrong = state_refusal(t);
        break;
    }
    case ANSATZ_KIND_OPTIMIZER:
    {
        const auto* t = table_of<ansatz_optimizer_table>(c.table);
        if (!t)
            return "its table is smaller than ABI 2.0's";
        clean = zeroed(t->reserved);
        missing = first_missing({ ANSATZ_FN(t, bind), ANSATZ_FN(t, step) });
        wrong = state_refusal(t);
        break;
    }
    case ANSATZ_KIND_DATASET:
    {
        const auto* t = table_of<ansatz_dataset_table>(c.table);
        if (!t)
            return "its table is smaller than ABI 2.0's";
        clean = zeroed(t->reserved);
        missing = first_missing({ ANSATZ_FN(t, info), ANSATZ_FN(t, read) });
        break;
    }
    case ANSATZ_KIND_EVALUATOR:
    {
        const auto* t = static_cast<const ansatz_evaluator_table*>(c.table);
        if (t->struct_size < abi_2_1_size<ansatz_evaluator_table>())
            return "its table is smaller than ABI 2.1's";
        clean = zeroed(t->reserved);
        missing = first_missing({ ANSATZ_FN(t, bind), ANSATZ_FN(t, evaluate) });
        break;
    }
    }
    if (missing)
        return std::string("its table has no '") + missing + "' function";
    if (wrong)
        return wrong;
    if (!clean)
        return "its table's reserved room is not zero";
    if (c.kind != ANSATZ_KIND_SAMPLER && c.kind != ANSATZ_KIND_LOSS && c.kind != ANSATZ_KIND_EVALUATOR &&
        c.needs != 0)
        return "it declares model functions it needs, but only a sampler, a loss or an evaluator may";
    const uint64_t known = ANSATZ_FN_FREE_ENERGY | ANSATZ_FN_FREE_ENERGY_GRAD | ANSATZ_FN_ENERGY_DELTA |
                           ANSATZ_FN_CONDITIONAL | ANSATZ_FN_LATENT | ANSATZ_FN_TEMPERED |
                           ANSATZ_FN_BLOCK_FREE_ENERGY | ANSATZ_FN_WEIGHTED_GRAD | ANSATZ_FN_LOCAL_MOVES |
                           ANSATZ_FN_STATE_GRAD | ANSATZ_FN_LOCAL_STEP;
    if (c.needs & ~known)
        return "it needs model functions this engine does not know (bits " +
               std::to_string(c.needs & ~known) + ")";
    return "";
}

#undef ANSATZ_FN

// Why a component's parameter specs are unfit, or "".
std::string params_refusal(const ansatz_component& c)
{
    if (c.n_params < 0 || (c.n_params > 0 && c.params == nullptr))
        return "its parameter array is missing";
    if (c.n_params > 0 && c.params[0].struct_size < abi_2_0_size<ansatz_param_spec>())
        return "its parameter specs are smaller than this ABI's";
    std::set<std::string> names;
    for (int32_t i = 0; i < c.n_params; ++i)
    {
        const ansatz_param_spec& p = param_at(c, i);
        if (p.name == nullptr || p.name[0] == '\0')
            return "its key #" + std::to_string(i) + " has no name";
        const std::string key = std::string("its key '") + p.name + "'";
        if (!names.insert(p.name).second)
            return key + " is declared twice";
        if (std::strcmp(p.name, "plugin") == 0)
            return key + " is reserved for the plugin's name in a pipeline";
        if (p.type < ANSATZ_PARAM_BOOL || p.type > ANSATZ_PARAM_COMPONENT)
            return key + " has unknown type " + std::to_string(p.type);
        if (p.type == ANSATZ_PARAM_COMPONENT &&
            (p.component_kind < ANSATZ_KIND_MODEL || p.component_kind > ANSATZ_KIND_EVALUATOR))
            return key + " names a component of unknown kind " + std::to_string(p.component_kind);
        if (p.component_needs && (p.type != ANSATZ_PARAM_COMPONENT || p.component_kind != ANSATZ_KIND_MODEL))
            return key + " needs model functions but does not name a model";
        if (p.min_length < 0 || p.max_length < 0 || (p.max_length > 0 && p.max_length < p.min_length))
            return key + " has an invalid length range";
        if (!zeroed(p.reserved))
            return key + "'s reserved room is not zero";
        if (p.doc == nullptr)
            return key + " has no documentation";
        if (p.type == ANSATZ_PARAM_CHOICE && (p.choices == nullptr || p.choices[0] == '\0'))
            return key + " is a choice without choices";
        const bool no_default = p.flags & (ANSATZ_PARAM_REQUIRED | ANSATZ_PARAM_OPTIONAL);
        if (!no_default && p.default_value == nullptr)
            return key + " is neither required nor optional and has no default";
    }
    return "";
}

} // namespace

const ansatz_component& component_at(const ansatz_plugin_desc& desc, int32_t i)
{
    return element(desc.components, desc.components[0].struct_size, i);
}

const ansatz_param_spec& param_at(const ansatz_component& component, int32_t i)
{
    return element(component.params, component.params[0].struct_size, i);
}

std::string descriptor_refusal(const ansatz_plugin_desc* d)
{
    const std::string engine = version_string(ANSATZ_ABI_MAJOR, ANSATZ_ABI_MINOR);
    if (d == nullptr)
        return "its entry symbol returned no descriptor (did its describe() throw?)";
    if (d->abi_major != ANSATZ_ABI_MAJOR)
        return "it was built for plugin ABI " + version_string(d->abi_major, d->abi_minor) +
               " and this engine speaks ABI " + engine + " (the major versions differ)";
    if (d->abi_minor > ANSATZ_ABI_MINOR)
        return "it was built for plugin ABI " + version_string(d->abi_major, d->abi_minor) +
               ", newer than this engine's ABI " + engine;
    if (d->struct_size < abi_2_0_size<ansatz_plugin_desc>())
        return "its descriptor is " + std::to_string(d->struct_size) + " bytes, smaller than the " +
               std::to_string(abi_2_0_size<ansatz_plugin_desc>()) + " bytes of ABI 2.0";
    if (d->name == nullptr || d->version == nullptr || d->n_components < 0 ||
        (d->n_components > 0 && d->components == nullptr))
        return "its descriptor is incomplete (no name, version or component array)";
    if (d->n_components > 0 && d->components[0].struct_size < abi_2_0_size<ansatz_component>())
        return "its components are smaller than ABI " + engine + " expects";
    if (!zeroed(d->reserved))
        return "its descriptor's reserved room is not zero";
    for (int32_t i = 0; i < d->n_components; ++i)
    {
        const ansatz_component& c = component_at(*d, i);
        if (c.name == nullptr || c.name[0] == '\0' || c.create == nullptr || c.destroy == nullptr ||
            c.table == nullptr)
            return "its component #" + std::to_string(i) +
                   " is incomplete (no name, create, destroy or table)";
        if (c.kind < ANSATZ_KIND_MODEL || c.kind > ANSATZ_KIND_EVALUATOR)
            return "its component '" + std::string(c.name) + "' has unknown kind " + std::to_string(c.kind);
        if (c.kind == ANSATZ_KIND_EVALUATOR && d->abi_minor < 1)
            return "its component '" + std::string(c.name) + "' is an evaluator, which ABI " +
                   version_string(d->abi_major, d->abi_minor) + " does not have (evaluators came in 2.1)";
        const std::string which = std::string(kind_name(c.kind)) + " '" + c.name + "'";
        if (!zeroed(c.reserved))
            return "its " + which + " has reserved room that is not zero";
        if (find_stage_type(c.name))
            return "its " + which + " has the name of the engine's stage type '" + c.name + "'";
        if (const std::string why = table_refusal(c, d->abi_minor); !why.empty())
            return "its " + which + " is unfit: " + why;
        if (const std::string why = params_refusal(c); !why.empty())
            return "its " + which + " is unfit: " + why;
    }
    return "";
}

} // namespace ansatz::engine

// Which tempered functions a model must have (abi.h, ANSATZ_FN_TEMPERED): tempered_free_energy and
// base_log_partition always, tempered_conditional exactly when the model has conditionals. Checked on
// hand-made C tables: the loader's refusals (descriptor_refusal) and the capability bits the host and
// the SDK derive (model_functions); and through the SDK, on a class without conditionals.
#include "loading/descriptor_check.hpp"

#include <ansatz/plugin.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace
{

// Slots that are never called: the checks look at which are NULL.
int32_t setup(void*, const int64_t*, int32_t, ansatz_rng*, ansatz_status*)
{
    return 0;
}
int32_t parameters(void*, ansatz_named_tensor*, int32_t, ansatz_status*)
{
    return 0;
}
int32_t random_state(void*, ansatz_tensor*, ansatz_rng*, ansatz_status*)
{
    return 0;
}
int32_t free_energy(void*, const ansatz_tensor*, ansatz_tensor*, ansatz_status*)
{
    return 0;
}
int32_t tempered_free_energy(void*, const ansatz_tensor*, const double*, const ansatz_tensor*, ansatz_tensor*,
                             ansatz_status*)
{
    return 0;
}
int32_t base_log_partition(void*, const ansatz_tensor*, double*, ansatz_status*)
{
    return 0;
}
int64_t block_size(void*, int32_t)
{
    return 1;
}
int32_t conditional(void*, int32_t, const ansatz_tensor*, ansatz_tensor*, ansatz_tensor*, ansatz_rng*,
                    ansatz_status*)
{
    return 0;
}
int32_t tempered_conditional(void*, int32_t, const ansatz_tensor*, const double*, const ansatz_tensor*,
                             ansatz_tensor*, ansatz_tensor*, ansatz_rng*, ansatz_status*)
{
    return 0;
}
void* create(const ansatz_config*, const ansatz_host*, ansatz_status*)
{
    return nullptr;
}
void destroy(void*) {}

// A model plugin whose tables have the tempered slots asked for.
struct Plugin
{
    ansatz_energy_table energy{};
    ansatz_conditionals_table conditionals{};
    ansatz_model_table model{};
    ansatz_component component{};
    ansatz_plugin_desc desc{};

    Plugin(bool with_conditionals, bool tempered_energy, bool partition, bool tempered_cond)
    {
        energy.struct_size = sizeof energy;
        energy.free_energy = free_energy;
        energy.tempered_free_energy = tempered_energy ? tempered_free_energy : nullptr;
        energy.base_log_partition = partition ? base_log_partition : nullptr;
        conditionals.struct_size = sizeof conditionals;
        conditionals.block_size = block_size;
        conditionals.conditional = conditional;
        conditionals.tempered_conditional = tempered_cond ? tempered_conditional : nullptr;
        model.struct_size = sizeof model;
        model.setup = setup;
        model.parameters = parameters;
        model.random_state = random_state;
        model.energy = &energy;
        model.conditionals = with_conditionals ? &conditionals : nullptr;
        component.struct_size = sizeof component;
        component.kind = ANSATZ_KIND_MODEL;
        component.name = "handmade";
        component.summary = "a hand-made table";
        component.create = create;
        component.destroy = destroy;
        component.table = &model;
        desc.abi_major = ANSATZ_ABI_MAJOR;
        desc.abi_minor = ANSATZ_ABI_MINOR;
        desc.struct_size = sizeof desc;
        desc.n_components = 1;
        desc.name = "handmade";
        desc.version = "0";
        desc.license = "MIT";
        desc.build = "test";
        desc.components = &component;
    }
    Plugin(const Plugin&) = delete;

    std::string refusal() const { return ansatz::engine::descriptor_refusal(&desc); }
    bool tempered() const { return (ansatz::model_functions(&model) & ANSATZ_FN_TEMPERED) != 0; }
};

const std::string prefix = "its model 'handmade' is unfit: ";

// An SDK model without conditionals: the tempered pair alone makes it tempered (it compiles: the
// static_assert of plugin.hpp lets it through).
class TemperedWithoutConditionals final : public ansatz::Model
{
public:
    static void describe(ansatz::Schema&) {}
    TemperedWithoutConditionals(const ansatz::Config&, const ansatz::Host&) {}
    void setup(const std::vector<int64_t>&, ansatz::Rng&) override {}
    std::vector<ansatz_named_tensor> parameters() override { return {}; }
    void random_state(ansatz_tensor&, ansatz::Streams) override {}
    void free_energy(const ansatz_tensor&, ansatz_tensor&) {}
    void tempered_free_energy(const ansatz_tensor&, const double*, const ansatz_tensor*, ansatz_tensor&) {}
    double base_log_partition(const ansatz_tensor*) { return 0; }
};

} // namespace

TEST_CASE("a model without conditionals is tempered with tempered_free_energy and base_log_partition alone",
          "[abi][tempered]")
{
    const Plugin ising_like(false, true, true, false);
    CHECK(ising_like.refusal().empty());
    CHECK(ising_like.tempered());
    const Plugin plain(false, false, false, false);
    CHECK(plain.refusal().empty());
    CHECK_FALSE(plain.tempered());

    // Through the SDK: the slots are filled and the bit follows.
    using Tables = ansatz::detail::ModelTables<TemperedWithoutConditionals>;
    CHECK(Tables::table.conditionals == nullptr);
    CHECK(Tables::table.energy->tempered_free_energy != nullptr);
    CHECK(Tables::table.energy->base_log_partition != nullptr);
    CHECK((ansatz::model_functions(&Tables::table) & ANSATZ_FN_TEMPERED) != 0);
}

TEST_CASE("a model with conditionals is tempered with all three functions and refused with two of them",
          "[abi][tempered]")
{
    const Plugin all(true, true, true, true);
    CHECK(all.refusal().empty());
    CHECK(all.tempered());
    const Plugin none(true, false, false, false);
    CHECK(none.refusal().empty());
    CHECK_FALSE(none.tempered());

    const Plugin no_conditional(true, true, true, false);
    CHECK(no_conditional.refusal() ==
          prefix + "its energy table has tempered_free_energy and base_log_partition, but its conditionals "
                   "table has no tempered_conditional (a model with conditionals needs all three)");
    CHECK_FALSE(no_conditional.tempered());
    const Plugin only_conditional(true, false, false, true);
    CHECK(only_conditional.refusal() == prefix +
                                            "its conditionals table has tempered_conditional, but its energy "
                                            "table has no tempered_free_energy and base_log_partition");
    CHECK_FALSE(only_conditional.tempered());
    const Plugin half(false, true, false, false);
    CHECK(half.refusal() ==
          prefix +
              "its energy table has one of tempered_free_energy and base_log_partition without the other");
    CHECK_FALSE(half.tempered());
}

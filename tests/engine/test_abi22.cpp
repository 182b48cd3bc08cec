// ABI 2.2's (and 2.3's) loader checks, on descriptors built here in memory: the local-move session's three
// slots come together and with energy_delta; slots a later minor added must be zero in a plugin that claims
// an earlier minor (they were its reserved room); the new capability bits are known; a complete 2.2 model and
// sampler load. The C++ side (ModelRef, SamplerRef) reads the bits from the slots.
#include "ansatz/refs.hpp"
#include "loading/descriptor_check.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace
{

int32_t free_energy(void*, const ansatz_tensor*, ansatz_tensor*, ansatz_status*)
{
    return 0;
}
int32_t energy_delta(void*, const ansatz_tensor*, const int64_t*, const float*, ansatz_tensor*,
                     ansatz_status*)
{
    return 0;
}
int32_t local_begin(void*, const ansatz_tensor*, const double*, ansatz_status*)
{
    return 0;
}
int32_t local_commit(void*, const ansatz_tensor*, const int64_t*, const float*, const uint8_t*,
                     ansatz_status*)
{
    return 0;
}
int32_t local_end(void*, ansatz_status*)
{
    return 0;
}
int32_t state_grad(void*, const ansatz_tensor*, ansatz_tensor*, ansatz_status*)
{
    return 0;
}
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
int32_t bind(void*, const ansatz_model_handle*, ansatz_status*)
{
    return 0;
}
int32_t advance(void*, ansatz_tensor*, int32_t, ansatz_rng*, ansatz_status*)
{
    return 0;
}
int32_t advance_tempered(void*, ansatz_tensor*, int32_t, const double*, ansatz_rng*, ansatz_status*)
{
    return 0;
}
void* create(const ansatz_config*, const ansatz_host*, ansatz_status*)
{
    return nullptr;
}
void destroy(void*) {}

// A plugin of one model (with `energy`) or one sampler, claiming ABI 2.`minor`.
struct Plugin
{
    ansatz_energy_table energy{};
    ansatz_model_table model{};
    ansatz_sampler_table sampler{};
    ansatz_component component{};
    ansatz_plugin_desc desc{};

    explicit Plugin(uint32_t minor, bool is_sampler = false)
    {
        energy.struct_size = sizeof energy;
        energy.free_energy = free_energy;
        energy.energy_delta = energy_delta;
        model.struct_size = sizeof model;
        model.setup = setup;
        model.parameters = parameters;
        model.random_state = random_state;
        model.energy = &energy;
        sampler.struct_size = sizeof sampler;
        sampler.bind = bind;
        sampler.advance = advance;
        component.struct_size = sizeof component;
        component.kind = is_sampler ? ANSATZ_KIND_SAMPLER : ANSATZ_KIND_MODEL;
        component.name = is_sampler ? "test_sampler" : "test_model";
        component.summary = "a test";
        component.create = create;
        component.destroy = destroy;
        component.table = is_sampler ? static_cast<const void*>(&sampler) : &model;
        desc.abi_major = 2;
        desc.abi_minor = minor;
        desc.struct_size = sizeof desc;
        desc.n_components = 1;
        desc.name = "test";
        desc.version = "0";
        desc.license = "MIT";
        desc.build = "test";
        desc.components = &component;
    }
    std::string refusal() const { return ansatz::engine::descriptor_refusal(&desc); }
};

} // namespace

TEST_CASE("abi 2.2: a model with the whole local-move session and the state gradient loads - and ModelRef "
          "reads both capability bits from the slots",
          "[abi22][registry]")
{
    Plugin p(2);
    p.energy.local_begin = local_begin;
    p.energy.local_commit = local_commit;
    p.energy.local_end = local_end;
    p.energy.free_energy_grad_state = state_grad;
    CHECK(p.refusal().empty());
    const uint64_t f = ansatz::model_functions(&p.model);
    CHECK((f & ANSATZ_FN_LOCAL_MOVES) != 0);
    CHECK((f & ANSATZ_FN_STATE_GRAD) != 0);
    CHECK(ansatz::model_function_names(ANSATZ_FN_LOCAL_MOVES | ANSATZ_FN_STATE_GRAD) ==
          "local_begin + local_commit + local_end, free_energy_grad_state");
    // A 2.1 model (the slots zero) has neither.
    Plugin old(1);
    CHECK(old.refusal().empty());
    CHECK((ansatz::model_functions(&old.model) & (ANSATZ_FN_LOCAL_MOVES | ANSATZ_FN_STATE_GRAD)) == 0);
}

TEST_CASE("abi 2.2: a local-move session with a slot missing - or without energy_delta - is refused",
          "[abi22][registry]")
{
    Plugin some(2);
    some.energy.local_begin = local_begin;
    some.energy.local_end = local_end;
    CHECK(some.refusal() == "its model 'test_model' is unfit: its energy table has some of local_begin, "
                            "local_commit and local_end without the others");
    Plugin no_delta(2);
    no_delta.energy.energy_delta = nullptr;
    no_delta.energy.local_begin = local_begin;
    no_delta.energy.local_commit = local_commit;
    no_delta.energy.local_end = local_end;
    CHECK(no_delta.refusal() == "its model 'test_model' is unfit: its energy table has a local-move session "
                                "(local_begin, local_commit, local_end) but no energy_delta");
}

TEST_CASE("abi 2.2: a plugin that claims ABI 2.1 or 2.0 but fills a 2.2 slot (its reserved room) is refused",
          "[abi22][registry]")
{
    Plugin model(1);
    model.energy.free_energy_grad_state = state_grad;
    CHECK(model.refusal() == "its model 'test_model' is unfit: its table's reserved room is not zero");
    Plugin sampler(0, true);
    sampler.sampler.advance_tempered = advance_tempered;
    CHECK(sampler.refusal() == "its sampler 'test_sampler' is unfit: its table's reserved room is not zero");
    Plugin sampler22(2, true);
    sampler22.sampler.advance_tempered = advance_tempered;
    CHECK(sampler22.refusal().empty());
    // A 2.0 plugin that fills a 2.1 slot likewise.
    Plugin tempered(0);
    tempered.energy.free_energy_grad_weighted = [](void*, const ansatz_tensor*, const float*, ansatz_tensor*,
                                                   int32_t, ansatz_tensor*, ansatz_status*) { return 0; };
    CHECK(tempered.refusal() == "its model 'test_model' is unfit: its table's reserved room is not zero");
}

TEST_CASE("abi 2.2: a sampler may declare that it needs the new model functions", "[abi22][registry]")
{
    Plugin p(2, true);
    p.component.needs = ANSATZ_FN_ENERGY_DELTA | ANSATZ_FN_LOCAL_MOVES | ANSATZ_FN_STATE_GRAD;
    CHECK(p.refusal().empty());
    p.component.needs = 1u << 11;
    CHECK(p.refusal() == "its sampler 'test_sampler' is unfit: it needs model functions this engine does not "
                         "know (bits 2048)");
}

TEST_CASE(
    "abi 2.2: SamplerRef says whether a sampler can temper - and refuses to temper with one that cannot",
    "[abi22]")
{
    Plugin with(2, true), without(2, true);
    with.sampler.advance_tempered = advance_tempered;
    const ansatz::SamplerRef a(ansatz_sampler_handle{ &with.sampler, nullptr });
    const ansatz::SamplerRef b(ansatz_sampler_handle{ &without.sampler, nullptr });
    CHECK(a.can_temper());
    CHECK_FALSE(b.can_temper());
    CHECK_NOTHROW(a.require_tempering(6));
    REQUIRE_THROWS_AS(b.require_tempering(6), ansatz::InputError);
    REQUIRE_THROWS_WITH(b.require_tempering(6), "the sampler cannot temper (it has no advance_tempered)");
}

// ---- 2.3: a model's parameters_changed

namespace
{
int announced = 0;
int32_t parameters_changed(void*, ansatz_status*)
{
    ++announced;
    return 0;
}
} // namespace

TEST_CASE("abi 2.3: a model's parameters_changed loads in a 2.3 plugin - is refused in one that claims 2.2 - "
          "and ModelRef calls it when it is there",
          "[abi22][abi23][registry]")
{
    Plugin p(3);
    p.model.parameters_changed = parameters_changed;
    CHECK(p.refusal().empty());
    Plugin old(2);
    old.model.parameters_changed = parameters_changed;
    CHECK(old.refusal() == "its model 'test_model' is unfit: its table's reserved room is not zero");

    announced = 0;
    const ansatz::ModelRef with(ansatz_model_handle{ &p.model, nullptr });
    with.parameters_changed();
    with.parameters_changed();
    CHECK(announced == 2);
    // A model without the slot (any 2.0 to 2.2 plugin): nothing to call.
    Plugin none(2);
    const ansatz::ModelRef without(ansatz_model_handle{ &none.model, nullptr });
    CHECK_NOTHROW(without.parameters_changed());
    CHECK(announced == 2);
}

// ---- 2.4: a model's local_step

namespace
{
int32_t local_step(void*, const ansatz_tensor*, int64_t rounds, const int64_t*, const float*, const float*,
                   uint8_t* accepted, ansatz_status*)
{
    for (int64_t t = 0; t < rounds; ++t)
        accepted[t] = 1;
    return 0;
}
} // namespace

TEST_CASE("abi 2.4: local_step loads with the local-move session in a 2.4 plugin - is refused in one that "
          "claims 2.3 - or without the session - and ModelRef reads its bit and calls it",
          "[abi22][abi24][registry]")
{
    Plugin p(4);
    p.energy.local_begin = local_begin;
    p.energy.local_commit = local_commit;
    p.energy.local_end = local_end;
    p.energy.local_step = local_step;
    CHECK(p.refusal().empty());
    CHECK((ansatz::model_functions(&p.model) & ANSATZ_FN_LOCAL_STEP) != 0);
    CHECK(ansatz::model_function_names(ANSATZ_FN_LOCAL_STEP) == "local_step");
    const ansatz::ModelRef ref(ansatz_model_handle{ &p.model, nullptr });
    float v = 0, value = 1, u = 0.5f;
    int64_t site = 0;
    uint8_t accepted = 0;
    ref.local_step(ansatz::make_view(&v, { 1, 1 }), 1, &site, &value, &u, &accepted);
    CHECK(accepted == 1);

    Plugin old(3);
    old.energy.local_begin = local_begin;
    old.energy.local_commit = local_commit;
    old.energy.local_end = local_end;
    old.energy.local_step = local_step;
    CHECK(old.refusal() == "its model 'test_model' is unfit: its table's reserved room is not zero");

    Plugin alone(4);
    alone.energy.local_step = local_step;
    CHECK(alone.refusal() == "its model 'test_model' is unfit: its energy table has local_step but no "
                             "local-move session (local_begin, local_commit, local_end) to run it in");
    CHECK((ansatz::model_functions(&alone.model) & ANSATZ_FN_LOCAL_STEP) == 0);
    // A sampler may declare that it needs it.
    Plugin sampler(4, true);
    sampler.component.needs = ANSATZ_FN_ENERGY_DELTA | ANSATZ_FN_LOCAL_STEP;
    CHECK(sampler.refusal().empty());
}

// ABI 2.2's latent slot on descriptors built here in memory: decode_backward_weighted loads in a 2.2
// plugin, is refused in one that claims 2.1 or 2.0 (it was reserved room there), and is optional: a
// latent model without it loads and ModelRef says so. A latent table without one of its 2.0 functions is
// refused naming it.
#include "ansatz/refs.hpp"
#include "loading/descriptor_check.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace
{

int64_t latent_size(void*)
{
    return 2;
}
int32_t encode(void*, const ansatz_tensor*, ansatz_tensor*, ansatz_tensor*, ansatz_status*)
{
    return 0;
}
int32_t encode_backward(void*, const ansatz_tensor*, const ansatz_tensor*, const ansatz_tensor*, float,
                        ansatz_tensor*, int32_t, ansatz_status*)
{
    return 0;
}
int32_t decode_log_likelihood(void*, const ansatz_tensor*, const ansatz_tensor*, ansatz_tensor*,
                              ansatz_status*)
{
    return 0;
}
int32_t decode_backward(void*, const ansatz_tensor*, const ansatz_tensor*, float, ansatz_tensor*,
                        ansatz_tensor*, int32_t, ansatz_status*)
{
    return 0;
}
int32_t decode_mean(void*, const ansatz_tensor*, ansatz_tensor*, ansatz_status*)
{
    return 0;
}
int32_t decode_backward_weighted(void*, const ansatz_tensor*, const ansatz_tensor*, const float*,
                                 ansatz_tensor*, ansatz_tensor*, int32_t, ansatz_tensor*, ansatz_status*)
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
void* create(const ansatz_config*, const ansatz_host*, ansatz_status*)
{
    return nullptr;
}
void destroy(void*) {}

// A plugin of one latent model claiming ABI 2.`minor`.
struct Plugin
{
    ansatz_latent_table latent{};
    ansatz_model_table model{};
    ansatz_component component{};
    ansatz_plugin_desc desc{};

    explicit Plugin(uint32_t minor)
    {
        latent.struct_size = sizeof latent;
        latent.latent_size = latent_size;
        latent.encode = encode;
        latent.encode_backward = encode_backward;
        latent.decode_log_likelihood = decode_log_likelihood;
        latent.decode_backward = decode_backward;
        latent.decode_mean = decode_mean;
        model.struct_size = sizeof model;
        model.setup = setup;
        model.parameters = parameters;
        model.random_state = random_state;
        model.latent = &latent;
        component.struct_size = sizeof component;
        component.kind = ANSATZ_KIND_MODEL;
        component.name = "test_vae";
        component.summary = "a test";
        component.create = create;
        component.destroy = destroy;
        component.table = &model;
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

TEST_CASE("abi 2.2 latent: decode_backward_weighted loads in a 2.2 plugin and is optional",
          "[abi22][registry]")
{
    Plugin with(2);
    with.latent.decode_backward_weighted = decode_backward_weighted;
    CHECK(with.refusal().empty());
    const ansatz::ModelRef a(ansatz_model_handle{ &with.model, nullptr });
    CHECK(a.has_latent());
    CHECK(a.has_decode_backward_weighted());

    for (uint32_t minor : { 0u, 1u, 2u })
    {
        Plugin without(minor);
        INFO("minor " << minor);
        CHECK(without.refusal().empty());
        const ansatz::ModelRef b(ansatz_model_handle{ &without.model, nullptr });
        CHECK(b.has_latent());
        CHECK_FALSE(b.has_decode_backward_weighted());
    }
}

TEST_CASE("abi 2.2 latent: a plugin that claims 2.1 or 2.0 but fills decode_backward_weighted is refused",
          "[abi22][registry]")
{
    for (uint32_t minor : { 0u, 1u })
    {
        Plugin p(minor);
        p.latent.decode_backward_weighted = decode_backward_weighted;
        INFO("minor " << minor);
        CHECK(p.refusal() == "its model 'test_vae' is unfit: its table's reserved room is not zero");
    }
}

TEST_CASE("abi 2.2 latent: a latent table without one of its functions is refused naming it",
          "[abi22][registry]")
{
    Plugin p(2);
    p.latent.encode_backward = nullptr;
    CHECK(p.refusal() == "its model 'test_vae' is unfit: its table has no 'encode_backward' function");
}

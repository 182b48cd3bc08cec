// support/plugins.hpp -- loads the in-tree plugins through the engine's registry, as the engine does,
// and creates components from `key: value` YAML text with the same validation and defaults.
#pragma once

#include "ansatz/refs.hpp"
#include "loading/instance.hpp"
#include "loading/registry.hpp"
#include "pipeline/config_values.hpp"
#include "pipeline/keys.hpp"
#include "run/host_services.hpp"

#include <memory>
#include <string>

namespace ansatz::test
{

// The registry of the build tree's plugins, loaded once per test binary.
const engine::Registry& in_tree_plugins();

// The registry of the test fixtures' plugins (tests/fixtures/plugins), loaded once.
const engine::Registry& fixture_plugins();

// A host for tests: seed 1234 unless given, one thread.
engine::HostServices& test_host();

// Creates component `name` (any kind) with configuration `yaml` ("hidden: 4, init_std: 0.5").
std::unique_ptr<engine::Instance> make(const std::string& name, const std::string& yaml = "{}",
                                       engine::HostServices* host = nullptr);

// Creates the fixture component `name` (tests/fixtures/plugins) with configuration `yaml`.
std::unique_ptr<engine::Instance> make_fixture(const std::string& name, const std::string& yaml = "{}",
                                               engine::HostServices* host = nullptr);

inline ModelRef model_ref(const engine::Instance& i)
{
    return ModelRef(i.model());
}
inline SamplerRef sampler_ref(const engine::Instance& i)
{
    return SamplerRef(i.sampler());
}

} // namespace ansatz::test

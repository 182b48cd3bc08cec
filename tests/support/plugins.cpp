#include "support/plugins.hpp"

#include "ansatz/error.hpp"

namespace ansatz::test
{

const engine::Registry& in_tree_plugins()
{
    static const engine::Registry registry = [] {
        engine::Registry r;
        r.scan({ ANSATZ_TEST_PLUGIN_DIR });
        return r;
    }();
    return registry;
}

const engine::Registry& fixture_plugins()
{
    static const engine::Registry registry = [] {
        engine::Registry r;
        r.scan({ ANSATZ_TEST_FIXTURE_DIR });
        return r;
    }();
    return registry;
}

engine::HostServices& test_host()
{
    static engine::HostServices host(1234, 1);
    return host;
}

std::unique_ptr<engine::Instance> make(const std::string& name, const std::string& yaml,
                                       engine::HostServices* host)
{
    const engine::PluginComponent* c = in_tree_plugins().find(name);
    if (!c)
        throw Error("test: no plugin component named '" + name + "' in " ANSATZ_TEST_PLUGIN_DIR);
    engine::ConfigValues config = engine::config_from_yaml(*c->desc, yaml);
    return std::make_unique<engine::Instance>(*c, config.c(name), (host ? *host : test_host()).table());
}

} // namespace ansatz::test

namespace ansatz::test
{

std::unique_ptr<engine::Instance> make_fixture(const std::string& name, const std::string& yaml,
                                               engine::HostServices* host)
{
    const engine::PluginComponent* c = fixture_plugins().find(name);
    if (!c)
        throw Error("test: no fixture component named '" + name + "' in " ANSATZ_TEST_FIXTURE_DIR);
    engine::ConfigValues config = engine::config_from_yaml(*c->desc, yaml);
    return std::make_unique<engine::Instance>(*c, config.c(name), (host ? *host : test_host()).table());
}

} // namespace ansatz::test

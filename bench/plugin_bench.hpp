// What the C++ benchmarks that drive plugins through the engine share (bench/ising_flips.cpp,
// bench/mh_vs_gibbs.cpp): a component made from the plugins the build wrote, and the median CPU time of a
// piece of work. Each benchmark defines ANSATZ_BENCH_PLUGIN_DIR (bench/CMakeLists.txt).
#pragma once

#include "loading/instance.hpp"
#include "loading/registry.hpp"
#include "pipeline/config_values.hpp"
#include "run/host_services.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace ansatz::bench
{

// The component `name` of the registry's plugins with its keys from `yaml`; exits when the build has none.
inline std::unique_ptr<engine::Instance> make(const engine::Registry& r, engine::HostServices& host,
                                              const std::string& name, const std::string& yaml)
{
    const engine::PluginComponent* c = r.find(name);
    if (!c)
    {
        std::fprintf(stderr, "no plugin component '%s' in %s\n", name.c_str(), ANSATZ_BENCH_PLUGIN_DIR);
        std::exit(1);
    }
    engine::ConfigValues config = engine::config_from_yaml(*c->desc, yaml);
    return std::make_unique<engine::Instance>(*c, config.c(name), host.table());
}

// The process's CPU time (all its threads, OpenBLAS's included): on a machine shared with other work
// this is what the computation cost, where wall-clock time also counts the waits for a core.
inline double cpu_seconds()
{
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The median CPU seconds of `repeats` calls of f, after one untimed call (buffers, tables, caches).
template <class F>
double median_seconds(F&& f, int repeats)
{
    f();
    std::vector<double> t;
    for (int k = 0; k < repeats; ++k)
    {
        const double start = cpu_seconds();
        f();
        t.push_back(cpu_seconds() - start);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

} // namespace ansatz::bench

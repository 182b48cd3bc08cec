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

// Which CPU time a timing counts. The process's (all its threads, OpenBLAS's included): on a machine shared
// with other work this is what the computation cost, where wall-clock time also counts the waits for a
// core. The calling thread's: for work on one thread, because OpenBLAS starts a pool of one thread per core
// when it loads, whose idle threads spin (sched_yield) for a while after the start and after each call
// they serve, even when OpenBLAS was then told to use one thread; the process's time would add that
// spinning to whichever timing it falls in (measured: up to half of a Gibbs sweep of 64 chains).
enum class CpuClock
{
    process,
    calling_thread
};

inline double cpu_seconds(CpuClock clock = CpuClock::process)
{
    timespec t{};
    clock_gettime(clock == CpuClock::process ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The median CPU seconds of `repeats` calls of f, after one untimed call (buffers, tables, caches).
template <class F>
double median_seconds(F&& f, int repeats, CpuClock clock = CpuClock::process)
{
    f();
    std::vector<double> t;
    for (int k = 0; k < repeats; ++k)
    {
        const double start = cpu_seconds(clock);
        f();
        t.push_back(cpu_seconds(clock) - start);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

} // namespace ansatz::bench

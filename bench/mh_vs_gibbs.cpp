// The cost of a single-site Metropolis-Hastings sweep against a block-Gibbs sweep on the same RBM, in
// one invocation, through the plugins as the engine loads them (a sweep: D proposals per chain for MH,
// h ~ p(h|v), v ~ p(v|h) for Gibbs):
//     cmake --build build --target mh_vs_gibbs && build/bin/mh_vs_gibbs [visible hidden chains sweeps threads
//     init_std]
// defaults 784 256 64 20 1 0.05 (weights N(0, init_std^2), biases 0: the larger the weights, the fewer
// flips are accepted). Prints CPU milliseconds per sweep of each (the median of 5 timed runs after
// a warm-up; CPU time, so other work on the machine does not inflate it: with one thread that thread's, else
// the process's, see plugin_bench.hpp), the ratio, and what
// MH would cost without the model's local-move session (one plain energy_delta per proposal step: all hidden
// pre-activations again). Timings are reported, never asserted.
#include "ansatz/refs.hpp"
#include "loading/instance.hpp"
#include "loading/registry.hpp"
#include "pipeline/config_values.hpp"
#include "pipeline/keys.hpp"
#include "plugin_bench.hpp"
#include "run/host_services.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace
{

using ansatz::engine::Instance;

using ansatz::bench::make;
using ansatz::bench::median_seconds;

} // namespace

int main(int argc, char** argv)
{
    const int64_t d = argc > 1 ? std::atoll(argv[1]) : 784;
    const int64_t h = argc > 2 ? std::atoll(argv[2]) : 256;
    const int64_t n = argc > 3 ? std::atoll(argv[3]) : 64;
    const int32_t sweeps = argc > 4 ? std::atoi(argv[4]) : 20;
    const int threads = argc > 5 ? std::atoi(argv[5]) : 1;
    const double init_std = argc > 6 ? std::atof(argv[6]) : 0.05;
    const std::string order = argc > 7 ? argv[7] : "random";
    openblas_set_num_threads(threads); // the products get the same threads as everything else
    ansatz::engine::Registry registry;
    registry.scan({ ANSATZ_BENCH_PLUGIN_DIR });
    ansatz::engine::HostServices host(1, threads);
    auto rbm = make(registry, host, "rbm",
                    "{visible: " + std::to_string(d) + ", hidden: " + std::to_string(h) +
                        ", init_std: " + std::to_string(init_std) + "}");
    const ansatz::ModelRef model(rbm->model());
    ansatz::Rng init(2);
    model.setup({ d }, init);
    auto gibbs = make(registry, host, "gibbs", "{}");
    auto mh = make(registry, host, "metropolis_hastings", "{order: " + order + "}");
    const ansatz::SamplerRef g(gibbs->sampler()), m(mh->sampler());
    g.bind(model);
    m.bind(model);

    std::vector<float> v(static_cast<size_t>(n * d));
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d });
    ansatz::Rng parent(3);
    ansatz::StreamArray chains;
    const ansatz::Streams streams = chains.split_from(parent, n);
    model.random_state(vt, streams);

    const int repeats = 5;
    // one thread: that thread's CPU time (not OpenBLAS's idle pool's spinning: see plugin_bench.hpp)
    const ansatz::bench::CpuClock clock =
        threads == 1 ? ansatz::bench::CpuClock::calling_thread : ansatz::bench::CpuClock::process;
    const double gibbs_s = median_seconds([&] { g.advance(vt, sweeps, streams); }, repeats, clock) / sweeps;
    const double mh_s = median_seconds([&] { m.advance(vt, sweeps, streams); }, repeats, clock) / sweeps;
    ansatz::engine::MetricsSink sink;
    m.metrics(*sink.c());
    double acceptance = 0;
    for (const auto& [name, value] : sink.take())
        if (name == "acceptance")
            acceptance = value;
    // Without a session: one plain energy_delta per proposal step (D steps per sweep); timed over a
    // few steps and scaled to a sweep.
    std::vector<int64_t> sites(static_cast<size_t>(n));
    std::vector<float> values(static_cast<size_t>(n)), delta(static_cast<size_t>(n));
    ansatz_tensor dt = ansatz::make_view(delta.data(), { n });
    const int64_t probe = std::min<int64_t>(d, 32);
    const double plain_s = median_seconds(
                               [&] {
                                   for (int64_t k = 0; k < probe; ++k)
                                   {
                                       for (int64_t r = 0; r < n; ++r)
                                       {
                                           sites[static_cast<size_t>(r)] = k;
                                           values[static_cast<size_t>(r)] =
                                               1.0f - v[static_cast<size_t>(r * d + k)];
                                       }
                                       model.energy_delta(vt, sites.data(), values.data(), dt);
                                   }
                               },
                               repeats, clock) *
                           static_cast<double>(d) / static_cast<double>(probe);
    std::printf(
        "rbm %lld x %lld (weights N(0, %g^2)), %lld chains, %d thread(s), %d sweeps per timing, median of "
        "%d, %s CPU time\n",
        static_cast<long long>(d), static_cast<long long>(h), init_std, static_cast<long long>(n), threads,
        sweeps, repeats, threads == 1 ? "the thread's" : "process");
    std::printf("  gibbs sweep:                          %9.3f ms\n", 1e3 * gibbs_s);
    std::printf("  metropolis_hastings sweep (session):  %9.3f ms   (acceptance %.3f)\n", 1e3 * mh_s,
                acceptance);
    std::printf("  ratio MH / Gibbs:                     %9.2f\n", mh_s / gibbs_s);
    std::printf("  MH sweep without a session (estimate): %8.1f ms   = %.0f x a Gibbs sweep\n", 1e3 * plain_s,
                plain_s / gibbs_s);
    return 0;
}

// Spin-flip attempts per second of the generic `metropolis_hastings` sampler on the `ising` model (both
// loaded as the engine loads them), beside a plain hand-written single-site Metropolis loop over the same
// lattice, compiled in this build, side by side in one invocation:
//     cmake --build build --target ising_flips && build/bin/ising_flips [L beta sweeps]
// defaults 64 0.44 20: the 2-D periodic Ising model (J = 1, h = 0) on an L x L torus at inverse
// temperature beta, from random spins, with 1 chain and with 64 chains. Both sides do the same
// Markov chain: a uniformly random site per attempt (random scan), accept with min(1, e^-dE) from a
// uniform of the chain's own xoshiro256** stream (ansatz::Rng). Prints attempts per second (the thread's
// CPU time, one thread, the median of 5 timed runs after a warm-up), the ratio generic / hand-written,
// and each side's acceptance rate as a check that both ran the same chain. Timings are reported,
// never asserted (bench/README.md).
#include "ansatz/refs.hpp"
#include "loading/instance.hpp"
#include "loading/registry.hpp"
#include "pipeline/config_values.hpp"
#include "pipeline/keys.hpp"
#include "plugin_bench.hpp"
#include "run/host_services.hpp"

#include <algorithm>
#include <cmath>
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

// The hand-written loop: what one writes for this model and nothing else. Spins as int8, the four
// neighbours of every site in a table, e^(-beta dE) for the two positive dE (4 and 8) in a table; one
// chain at a time, L^2 attempts per sweep. Returns the accepted count.
struct HandWritten
{
    int64_t l, n;
    std::vector<int32_t> neighbours; // {n, 4}
    double accept[9] = {};           // e^(-beta dE) by dE = 0, 4, 8 (the others unused)

    HandWritten(int64_t size, double beta)
        : l(size), n(size * size), neighbours(static_cast<size_t>(4 * size * size))
    {
        for (int64_t i = 0; i < n; ++i)
        {
            const int64_t x = i % l, y = i / l;
            int32_t* nb = neighbours.data() + 4 * i;
            nb[0] = static_cast<int32_t>(y * l + (x + 1) % l);
            nb[1] = static_cast<int32_t>(y * l + (x + l - 1) % l);
            nb[2] = static_cast<int32_t>(((y + 1) % l) * l + x);
            nb[3] = static_cast<int32_t>(((y + l - 1) % l) * l + x);
        }
        for (int de = 0; de <= 8; de += 4)
            accept[de] = std::exp(-beta * de);
    }

    int64_t sweeps(std::vector<int8_t>& spins, int64_t chains, int64_t count, ansatz::Rng* rngs) const
    {
        int64_t accepted = 0;
        for (int64_t c = 0; c < chains; ++c)
        {
            int8_t* s = spins.data() + c * n;
            ansatz::Rng& rng = rngs[c];
            for (int64_t t = 0; t < count * n; ++t)
            {
                const int64_t i = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
                const int32_t* nb = neighbours.data() + 4 * i;
                const int de = 2 * s[i] * (s[nb[0]] + s[nb[1]] + s[nb[2]] + s[nb[3]]);
                const float u = rng.uniform();
                if (de <= 0 || u < accept[de])
                {
                    s[i] = static_cast<int8_t>(-s[i]);
                    ++accepted;
                }
            }
        }
        return accepted;
    }
};

} // namespace

int main(int argc, char** argv)
{
    const int64_t l = argc > 1 ? std::atoll(argv[1]) : 64;
    const double beta = argc > 2 ? std::atof(argv[2]) : 0.44;
    const int32_t sweeps = argc > 3 ? std::atoi(argv[3]) : 20;
    openblas_set_num_threads(1);
    ansatz::engine::Registry registry;
    registry.scan({ ANSATZ_BENCH_PLUGIN_DIR });
    ansatz::engine::HostServices host(1, 1);
    char beta_text[32];
    std::snprintf(beta_text, sizeof beta_text, "%.17g", beta);
    auto ising = make(registry, host, "ising",
                      "{dimension: 2, size: " + std::to_string(l) + ", J: 1, h: 0, beta: " + beta_text + "}");
    const ansatz::ModelRef model(ising->model());
    ansatz::Rng init(1);
    const int64_t n = l * l;
    model.setup({ l, l }, init);
    auto mh = make(registry, host, "metropolis_hastings", "{}");
    const ansatz::SamplerRef sampler(mh->sampler());
    sampler.bind(model);
    const HandWritten hand(l, beta);
    const int repeats = 5;

    std::printf(
        "2-D Ising model, %lld x %lld periodic, J = 1, h = 0, beta = %g; %d sweeps (%lld attempts per "
        "chain each) per timing, median of %d, the thread's CPU time, one thread\n",
        static_cast<long long>(l), static_cast<long long>(l), beta, sweeps, static_cast<long long>(n),
        repeats);
    std::printf("%8s  %22s  %22s  %8s  %18s\n", "chains", "generic attempts/s", "hand-written attempts/s",
                "ratio", "acceptance (g / h)");
    for (const int64_t chains : { int64_t(1), int64_t(64) })
    {
        // The same random start and the same streams for both sides.
        ansatz::Rng parent(2);
        ansatz::StreamArray streams_g, streams_h;
        const ansatz::Streams sg = streams_g.split_from(parent, chains);
        std::vector<ansatz::Rng> start(sg.begin(), sg.end());
        std::vector<float> v(static_cast<size_t>(chains * n));
        ansatz_tensor vt = ansatz::make_view(v.data(), { chains, n });
        model.random_state(vt, sg);
        std::vector<int8_t> s(v.size());
        for (size_t k = 0; k < v.size(); ++k)
            s[k] = v[k] > 0 ? 1 : -1;
        std::vector<ansatz::Rng> rh(start.begin(), start.end());

        ansatz::engine::MetricsSink sink;
        sampler.metrics(*sink.c()); // reset the counters
        sink.take();
        const double generic_s = median_seconds([&] { sampler.advance(vt, sweeps, sg); }, repeats,
                                                ansatz::bench::CpuClock::calling_thread);
        sampler.metrics(*sink.c());
        double acceptance_g = 0;
        for (const auto& [name, value] : sink.take())
            if (name == "acceptance")
                acceptance_g = value;
        int64_t accepted = 0;
        const double hand_s = median_seconds([&] { accepted += hand.sweeps(s, chains, sweeps, rh.data()); },
                                             repeats, ansatz::bench::CpuClock::calling_thread);
        const double attempts =
            static_cast<double>(chains) * static_cast<double>(sweeps) * static_cast<double>(n);
        const double acceptance_h = static_cast<double>(accepted) / (attempts * (repeats + 1));
        std::printf("%8lld  %22.3e  %22.3e  %8.2f  %8.3f / %.3f\n", static_cast<long long>(chains),
                    attempts / generic_s, attempts / hand_s, hand_s / generic_s, acceptance_g, acceptance_h);
    }
    std::printf("ratio = generic / hand-written attempts per second (1: as fast as the hand-written loop)\n");
    return 0;
}

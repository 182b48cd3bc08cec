// What the langevin sampler itself costs per negative batch (Foster's shape: 128 chains x 1024 values x
// 60 steps, noise, clipping, clamping; plus the replay buffer's starts and stores), beside the model's
// gradient calls, through the plugins as the engine loads them:
//     cmake --build build --target langevin_overhead && build/bin/langevin_overhead [chains values steps
//     threads adjusted noise]
// defaults 128 1024 60 1 0 0.005 (noise 0: no normals drawn, the rest of the sampler's work). The model
// is a Gaussian RBM with one hidden unit, whose dF/dv is two thin products: nearly free, so the time of
// advance minus the time of the same gradient calls alone is the sampler's own work. Prints CPU milliseconds
// per advance (the median of 5 timed runs after a warm-up). Timings are reported, never asserted.
#include "ansatz/refs.hpp"
#include "loading/instance.hpp"
#include "loading/registry.hpp"
#include "pipeline/config_values.hpp"
#include "pipeline/keys.hpp"
#include "plugin_bench.hpp"
#include "run/host_services.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" void openblas_set_num_threads(int);

int main(int argc, char** argv)
{
    const int64_t n = argc > 1 ? std::atoll(argv[1]) : 128;
    const int64_t d = argc > 2 ? std::atoll(argv[2]) : 1024;
    const int32_t steps = argc > 3 ? std::atoi(argv[3]) : 60;
    const int threads = argc > 4 ? std::atoi(argv[4]) : 1;
    const bool adjusted = argc > 5 && std::atoi(argv[5]) != 0;
    const std::string noise = argc > 6 ? argv[6] : "0.005";
    openblas_set_num_threads(threads);
    ansatz::engine::Registry registry;
    registry.scan({ ANSATZ_BENCH_PLUGIN_DIR });
    ansatz::engine::HostServices host(1, threads);
    auto rbm = ansatz::bench::make(
        registry, host, "rbm", "{visible: " + std::to_string(d) + ", hidden: 1, visible_units: gaussian}");
    const ansatz::ModelRef model(rbm->model());
    ansatz::Rng init(2);
    model.setup({ d }, init);
    const std::string keys = "{steps: " + std::to_string(steps) + ", step_size: 0.01, noise: " + noise +
                             ", clip_gradient: 0.03, buffer: 8192" + (adjusted ? ", adjusted: true}" : "}");
    auto lgv = ansatz::bench::make(registry, host, "langevin", keys);
    const ansatz::SamplerRef sampler(lgv->sampler());
    sampler.bind(model);

    std::vector<float> v(static_cast<size_t>(n * d)), g(v.size()), f(static_cast<size_t>(n));
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d }), gt = ansatz::make_view(g.data(), { n, d }),
                  ft = ansatz::make_view(f.data(), { n });
    ansatz::Rng parent(3);
    ansatz::StreamArray chains;
    const ansatz::Streams streams = chains.split_from(parent, n);
    model.random_state(vt, streams);

    const int repeats = 5;
    const double advance = ansatz::bench::median_seconds([&] { sampler.advance(vt, 0, streams); }, repeats);
    const double model_only = ansatz::bench::median_seconds(
        [&] {
            for (int32_t s = 0; s < steps; ++s)
            {
                model.free_energy_grad_state(vt, gt);
                if (adjusted)
                    model.free_energy(vt, ft);
            }
        },
        repeats);
    std::printf(
        "langevin%s: %lld chains x %lld values x %d steps, %d thread(s): advance %.1f ms, the model's "
        "calls alone %.1f ms, the sampler's own work %.1f ms (%.2f ns per value and step)\n",
        adjusted ? " (adjusted)" : "", static_cast<long long>(n), static_cast<long long>(d), steps, threads,
        1e3 * advance, 1e3 * model_only, 1e3 * (advance - model_only),
        1e9 * (advance - model_only) / static_cast<double>(n * d * steps));
}

// nn_bench -- forward + backward of a VAE's layer stacks with ansatz/nn.hpp, as bench/layers runs it.
//
//     cmake --build build --target nn_bench
//     build/bin/nn_bench WORKLOAD THREADS BATCHES [REPEATS]     WORKLOAD = mlp | conv
//     build/bin/nn_bench WORKLOAD --products                    the whole-batch sgemm shapes of one step
//
// One step on a batch of 128 rows (fixed random inputs in [0, 1), fixed random upstream gradients):
//   encoder forward, decoder forward on the first half of the encoder's output (the latent means),
//   decoder backward with its input gradient, encoder backward without one (the data needs none),
//   into gradient buffers zeroed before the step (as a train loop does).
//   mlp:  encoder 784-512-256-32 (ReLU), decoder 16-256-512-784 (ReLU, logits out)
//   conv: the Keras VAE example: encoder Conv 32 and 64 filters 3x3 stride 2 same (ReLU), flatten,
//         Dense 16 (ReLU), Dense 4 (2 x latent 2); decoder Dense 3136 (ReLU), reshape 64x7x7,
//         ConvTranspose 64 and 32 filters 3x3 stride 2 same (ReLU), ConvTranspose 1 filter 3x3 same.
// A ThreadTeam of THREADS (OpenBLAS set to THREADS too, as the engine sets its budget). After two
// warm-up steps, REPEATS (default 5) timings of BATCHES steps each; prints one JSON line with every
// timing's wall-clock seconds per step, their median, and the median CPU time of the process per step
// (all threads: with one thread, the time the step really ran, whatever else the machine was doing).
// A benchmark reports; nothing is asserted.
#include "ansatz/nn.hpp"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <time.h>
#include <vector>

using namespace ansatz::nn;

namespace
{

constexpr int64_t batch = 128;

struct Stacks
{
    std::vector<LayerSpec> encoder, decoder;
    Shape input, latent;
};

Stacks stacks(const std::string& workload)
{
    const LayerSpec relu = activation(Activation::relu);
    if (workload == "mlp")
        return { { linear(512), relu, linear(256), relu, linear(32) },
                 { linear(256), relu, linear(512), relu, linear(784) },
                 { 784, 1, 1 },
                 { 16, 1, 1 } };
    return { { conv2d_same(32, 3, 2), relu, conv2d_same(64, 3, 2), relu, flatten(), linear(16), relu,
               linear(4) },
             { linear(64 * 7 * 7), relu, reshape({ 64, 7, 7 }), conv_transpose2d_same(64, 3, 2), relu,
               conv_transpose2d_same(32, 3, 2), relu, conv_transpose2d_same(1, 3, 1) },
             { 1, 28, 28 },
             { 2, 1, 1 } };
}

struct Buffers
{
    std::vector<std::vector<float>> grads;
    std::vector<ansatz_tensor> views;
    void bind(Sequential& net)
    {
        std::vector<ansatz_named_tensor> p = net.parameters();
        grads.resize(p.size());
        for (size_t i = 0; i < p.size(); ++i)
        {
            grads[i].assign(static_cast<size_t>(ansatz::element_count(p[i].tensor)), 0.0f);
            ansatz_tensor t = p[i].tensor;
            t.data = grads[i].data();
            views.push_back(t);
        }
    }
    void zero()
    {
        for (auto& g : grads)
            std::memset(g.data(), 0, g.size() * sizeof(float));
    }
};

std::vector<float> random_values(ansatz::Rng& rng, int64_t n, float lo, float hi)
{
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v)
        x = lo + (hi - lo) * rng.uniform();
    return v;
}

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the whole process (every thread), user + system.
double cpu_now()
{
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3 || (std::string(argv[1]) != "mlp" && std::string(argv[1]) != "conv"))
    {
        std::fprintf(stderr,
                     "usage: nn_bench mlp|conv THREADS BATCHES [REPEATS] | nn_bench mlp|conv --products\n");
        return 2;
    }
    const std::string workload = argv[1];
    const Stacks s = stacks(workload);
    Sequential encoder(s.encoder, s.input, "encoder.");
    Sequential decoder(s.decoder, s.latent, "decoder.");
    if (std::string(argv[2]) == "--products")
    {
        // One line per product: m n k ta tb (the whole batch's shapes of one step).
        for (const Product& p : encoder.products(batch, false))
            std::printf("%lld %lld %lld %d %d\n", static_cast<long long>(p.m), static_cast<long long>(p.n),
                        static_cast<long long>(p.k), p.transpose_a ? 1 : 0, p.transpose_b ? 1 : 0);
        for (const Product& p : decoder.products(batch, true))
            std::printf("%lld %lld %lld %d %d\n", static_cast<long long>(p.m), static_cast<long long>(p.n),
                        static_cast<long long>(p.k), p.transpose_a ? 1 : 0, p.transpose_b ? 1 : 0);
        return 0;
    }
    const int threads = std::atoi(argv[2]);
    const int steps = argc > 3 ? std::atoi(argv[3]) : 0;
    const int repeats = argc > 4 ? std::atoi(argv[4]) : 5;
    if (threads < 1 || steps < 1 || repeats < 1)
    {
        std::fprintf(stderr, "nn_bench: THREADS, BATCHES and REPEATS must be at least 1\n");
        return 2;
    }
    openblas_set_num_threads(threads);
    ansatz::ThreadTeam team(threads);
    ansatz::Rng rng(2024);
    encoder.initialize(rng);
    decoder.initialize(rng);
    Buffers ge, gd;
    ge.bind(encoder);
    gd.bind(decoder);
    const int64_t latent = s.latent.size();
    const std::vector<float> x = random_values(rng, batch * encoder.input_size(), 0.0f, 1.0f);
    const std::vector<float> dy = random_values(rng, batch * decoder.output_size(), -0.01f, 0.01f);
    const std::vector<float> d_log_var = random_values(rng, batch * latent, -0.01f, 0.01f);
    std::vector<float> h(static_cast<size_t>(batch * latent)), dh(static_cast<size_t>(batch * 2 * latent));
    std::vector<float> dz(static_cast<size_t>(batch * latent));

    auto step = [&] {
        ge.zero();
        gd.zero();
        const float* enc = encoder.forward(team, x.data(), batch);
        for (int64_t r = 0; r < batch; ++r) // the latent means: the first half of each row
            std::memcpy(h.data() + r * latent, enc + r * 2 * latent,
                        static_cast<size_t>(latent) * sizeof(float));
        decoder.forward(team, h.data(), batch);
        decoder.backward(team, dy.data(), dz.data(), gd.views);
        for (int64_t r = 0; r < batch; ++r)
        {
            std::memcpy(dh.data() + r * 2 * latent, dz.data() + r * latent,
                        static_cast<size_t>(latent) * sizeof(float));
            std::memcpy(dh.data() + r * 2 * latent + latent, d_log_var.data() + r * latent,
                        static_cast<size_t>(latent) * sizeof(float));
        }
        encoder.backward(team, dh.data(), nullptr, ge.views);
    };
    step();
    step();
    std::vector<double> per_step, cpu_per_step;
    for (int r = 0; r < repeats; ++r)
    {
        const double t0 = now(), c0 = cpu_now();
        for (int i = 0; i < steps; ++i)
            step();
        per_step.push_back((now() - t0) / steps);
        cpu_per_step.push_back((cpu_now() - c0) / steps);
    }
    std::vector<double> sorted = per_step;
    std::sort(sorted.begin(), sorted.end());
    std::printf(
        "{\"workload\": \"%s\", \"threads\": %d, \"batch\": %lld, \"steps\": %d, \"seconds_per_step\": [",
        workload.c_str(), threads, static_cast<long long>(batch), steps);
    for (size_t i = 0; i < per_step.size(); ++i)
        std::printf("%s%.6e", i ? ", " : "", per_step[i]);
    std::sort(cpu_per_step.begin(), cpu_per_step.end());
    std::printf("], \"median_seconds_per_step\": %.6e, \"median_cpu_seconds_per_step\": %.6e, \"check\": %.6e}\n",
                sorted[sorted.size() / 2], cpu_per_step[cpu_per_step.size() / 2],
                static_cast<double>(ge.grads[0][0] + gd.grads[0][0]));
    return 0;
}

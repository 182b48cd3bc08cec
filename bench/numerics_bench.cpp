// numerics_bench -- the SDK's vectorised math (ansatz/math.hpp) against plain loops over std::.
//
//     cmake --build build --target numerics_bench && build/bin/numerics_bench [repeats]
//
// For each kernel and size: `repeats` timings (default 15) of this thread's CPU time, each of enough
// calls to take about 20 ms; prints the median in nanoseconds per element and the speed-up of the
// SDK over the plain loop. One thread.
// Inputs are pre-activation-like values in [-8, 8]. Nothing is asserted: a benchmark reports.
#include <ansatz/math.hpp>
#include <ansatz/xtensor.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xtensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <time.h>
#include <vector>

namespace
{

volatile float sink; // keeps results alive

// This thread's CPU time in seconds: on a shared machine, time spent waiting for a core is not
// counted (wall-clock time is, and varies with the load).
double cpu_seconds()
{
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The number of calls of f that take about 20 ms.
int calls_for(const std::function<void()>& f)
{
    f(); // warm up: caches, page faults
    int calls = 1;
    for (;;)
    {
        const double t0 = cpu_seconds();
        for (int i = 0; i < calls; ++i)
            f();
        if (cpu_seconds() - t0 > 0.02 || calls > (1 << 24))
            return calls;
        calls *= 2;
    }
}

double seconds_per_call(const std::function<void()>& f, int calls)
{
    const double t0 = cpu_seconds();
    for (int i = 0; i < calls; ++i)
        f();
    return (cpu_seconds() - t0) / calls;
}

// Times the plain loop and the SDK alternately (plain, sdk, plain, sdk, ...: a change of load hits
// both), `repeats` times each, and prints the medians per element and their ratio.
void compare(const char* what, const char* size, int64_t n, const std::function<void()>& plain,
             const std::function<void()>& sdk, int repeats)
{
    const int plain_calls = calls_for(plain), sdk_calls = calls_for(sdk);
    std::vector<double> plain_times, sdk_times;
    for (int r = 0; r < repeats; ++r)
    {
        plain_times.push_back(seconds_per_call(plain, plain_calls));
        sdk_times.push_back(seconds_per_call(sdk, sdk_calls));
    }
    std::sort(plain_times.begin(), plain_times.end());
    std::sort(sdk_times.begin(), sdk_times.end());
    const double p = plain_times[plain_times.size() / 2], s = sdk_times[sdk_times.size() / 2];
    std::printf("%-22s %-7s plain %7.3f ns/elt   sdk %7.3f ns/elt   speed-up %5.2fx\n", what, size,
                1e9 * p / static_cast<double>(n), 1e9 * s / static_cast<double>(n), p / s);
    std::fflush(stdout);
}

void run_all(int repeats);

} // namespace

int main(int argc, char** argv)
{
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 15;
    std::printf("xsimd %d.%d.%d, arch %s, batch<float>::size %zu, median of %d runs\n", XSIMD_VERSION_MAJOR,
                XSIMD_VERSION_MINOR, XSIMD_VERSION_PATCH, xsimd::default_arch::name(),
                xsimd::batch<float>::size, repeats);
#ifdef ANSATZ_MATH_AVX2
    // A build for plain x86-64 on a CPU with AVX2 + FMA: the SDK's portable kernels, then the AVX2
    // ones it dispatches to.
    const bool avx2 = ansatz::detail::math::avx2::enabled();
    for (bool use : { false, true })
    {
        if (use && !avx2)
            continue;
        ansatz::detail::math::avx2::enabled() = use;
        std::printf("-- sdk: %s\n", use ? "AVX2 + FMA kernels (chosen at run time)" : "portable kernels");
        run_all(repeats);
    }
#else
    run_all(repeats);
#endif
    return 0;
}

namespace
{

void run_all(int repeats)
{

    struct Size
    {
        const char* name;
        int64_t rows, cols;
    };
    for (Size size : { Size{ "64x256", 64, 256 }, Size{ "1e6", 1000, 1000 } })
    {
        const int64_t n = size.rows * size.cols;
        std::vector<float> x(static_cast<size_t>(n)), y(x.size());
        for (int64_t i = 0; i < n; ++i)
            x[static_cast<size_t>(i)] = 8.0f * std::sin(0.001f * static_cast<float>(i * 7919 % 100003));
        const float* in = x.data();
        float* out = y.data();

        compare(
            "exp", size.name, n,
            [&] {
                for (int64_t i = 0; i < n; ++i)
                    out[i] = std::exp(in[i]);
                sink = out[0];
            },
            [&] {
                ansatz::exp(in, out, n);
                sink = out[0];
            },
            repeats);

        compare(
            "sigmoid", size.name, n,
            [&] {
                for (int64_t i = 0; i < n; ++i)
                    out[i] = 1.0f / (1.0f + std::exp(-in[i]));
                sink = out[0];
            },
            [&] {
                ansatz::sigmoid(in, out, n);
                sink = out[0];
            },
            repeats);

        compare(
            "softplus", size.name, n,
            [&] {
                for (int64_t i = 0; i < n; ++i)
                    out[i] = std::max(in[i], 0.0f) + std::log1p(std::exp(-std::abs(in[i])));
                sink = out[0];
            },
            [&] {
                ansatz::softplus(in, out, n);
                sink = out[0];
            },
            repeats);

        // The row sums of the RBM's free energy: rbm.cpp's xtensor expression against the SDK.
        std::vector<double> sums(static_cast<size_t>(size.rows));
        compare(
            "sum_softplus_rows (xt)", size.name, n,
            [&] {
                auto p = ansatz::adapt<2>(ansatz::make_view(in, { size.rows, size.cols }));
                xt::xtensor<double, 1> s =
                    xt::sum<double>(xt::maximum(p, 0.0f) + xt::log1p(xt::exp(-xt::abs(p))), { 1 });
                sink = static_cast<float>(s(0));
            },
            [&] {
                ansatz::sum_softplus_rows(in, size.rows, size.cols, sums.data());
                sink = static_cast<float>(sums[0]);
            },
            repeats);

        // Bernoulli draws: the scalar loop of rbm.cpp (stream by reference) against bernoulli_rows.
        std::vector<float> p(x.size());
        ansatz::sigmoid(in, p.data(), n);
        ansatz::Rng parent(1);
        ansatz::StreamArray streams;
        ansatz::Streams rngs = streams.split_from(parent, size.rows);
        compare(
            "bernoulli_rows", size.name, n,
            [&] {
                for (int64_t r = 0; r < size.rows; ++r)
                {
                    ansatz::Rng& rng = rngs[static_cast<size_t>(r)];
                    const float* pr = p.data() + r * size.cols;
                    float* o = out + r * size.cols;
                    for (int64_t i = 0; i < size.cols; ++i)
                        o[i] = rng.uniform() < pr[i] ? 1.0f : 0.0f;
                }
                sink = out[0];
            },
            [&] {
                ansatz::bernoulli_rows(p.data(), size.rows, size.cols, out, rngs);
                sink = out[0];
            },
            repeats);
    }
}

} // namespace

// sgemm_rate -- the single-precision product rate for given shapes: OpenBLAS's, and the product the
// network layers run (ansatz/nn.hpp), as they run it.
//
//     cmake --build build --target sgemm_rate
//     build/bin/sgemm_rate THREADS SHAPE...     SHAPE = M,N,K[,ta][,tb]   e.g. 64,256,784  784,256,128,ta
//
// C {M, N} = op(A) op(B) with op(A) {M, K} and op(B) {K, N}, row-major (ta: A is stored {K, M} and
// transposed; tb: B is stored {N, K}), beta = 1 (products add onto a bias or a gradient). Two rates:
//   - openblas: one cblas_sgemm on OpenBLAS's THREADS threads (openblas_set_num_threads, as the engine
//     sets its budget), whatever kernel OpenBLAS runs on this CPU and OPENBLAS_CORETYPE;
//   - layers: the product of ansatz/nn.hpp's layers (detail::nn::sgemm: the SDK's AVX-512 kernel where the
//     CPU has AVX-512, else single-threaded OpenBLAS) split over a ThreadTeam of THREADS as the layers
//     split it (by rows for ta, the weight gradient; else along the longer side).
// For each shape and each: 7 timings (wall clock) of enough calls to take about 50 ms, after a warm-up;
// prints one line per shape: "M,N,K[,ta][,tb] <openblas GFLOP/s> <s per call> <layers GFLOP/s> <s per
// call>" (medians). bench/vae and bench/layers use it to say how far an epoch is from its products. A
// benchmark reports; nothing is asserted.
#include "ansatz/nn.hpp"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace
{

struct Shape
{
    int m = 0, n = 0, k = 0;
    bool ta = false, tb = false;
    std::string text;
};

bool parse(const std::string& text, Shape& s)
{
    s.text = text;
    std::vector<std::string> parts;
    size_t at = 0;
    for (;;)
    {
        const size_t comma = text.find(',', at);
        parts.push_back(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
        if (comma == std::string::npos)
            break;
        at = comma + 1;
    }
    if (parts.size() < 3 || parts.size() > 5)
        return false;
    s.m = std::atoi(parts[0].c_str());
    s.n = std::atoi(parts[1].c_str());
    s.k = std::atoi(parts[2].c_str());
    for (size_t i = 3; i < parts.size(); ++i)
    {
        if (parts[i] == "ta")
            s.ta = true;
        else if (parts[i] == "tb")
            s.tb = true;
        else
            return false;
    }
    return s.m > 0 && s.n > 0 && s.k > 0;
}

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The median of 7 timings of enough calls of f to take ~50 ms, after 20 warm-up calls.
template <class F>
double seconds_per_call(F&& f)
{
    for (int w = 0; w < 20; ++w)
        f();
    int calls = 1;
    for (;;)
    {
        const double t0 = now();
        for (int j = 0; j < calls; ++j)
            f();
        if (now() - t0 > 0.05 || calls > (1 << 20))
            break;
        calls *= 2;
    }
    std::vector<double> per_call;
    for (int r = 0; r < 7; ++r)
    {
        const double t0 = now();
        for (int j = 0; j < calls; ++j)
            f();
        per_call.push_back((now() - t0) / calls);
    }
    std::sort(per_call.begin(), per_call.end());
    return per_call[per_call.size() / 2];
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3)
    {
        std::fprintf(stderr, "usage: sgemm_rate THREADS M,N,K[,ta][,tb]...\n");
        return 2;
    }
    const int threads = std::atoi(argv[1]);
    if (threads < 1)
    {
        std::fprintf(stderr, "sgemm_rate: THREADS must be at least 1\n");
        return 2;
    }
    openblas_set_num_threads(threads);
    ansatz::ThreadTeam team(threads);
    for (int i = 2; i < argc; ++i)
    {
        Shape s;
        if (!parse(argv[i], s))
        {
            std::fprintf(stderr, "sgemm_rate: bad shape '%s' (M,N,K[,ta][,tb])\n", argv[i]);
            return 2;
        }
        // Values like an RBM's: weights ~ 0.01, inputs in {0, 1}; the rate does not depend on them.
        std::vector<float> a(static_cast<size_t>(s.m) * s.k), b(static_cast<size_t>(s.k) * s.n),
            c(static_cast<size_t>(s.m) * s.n, 0.0f);
        for (size_t j = 0; j < a.size(); ++j)
            a[j] = static_cast<float>((j * 2654435761u >> 7) & 1);
        for (size_t j = 0; j < b.size(); ++j)
            b[j] = 0.01f * static_cast<float>(static_cast<int>(j * 40503u % 201) - 100) / 100.0f;
        const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
        const auto openblas = [&] {
            cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                        s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 1.0f, c.data(), s.n);
        };
        namespace dn = ansatz::nn::detail::nn;
        const auto layers = [&] {
            const dn::Split split =
                dn::split(s.m, s.n, s.k, team.size(), s.ta ? dn::Along::rows : dn::Along::any);
            const ansatz::blas::SingleThreaded one(team.size() > 1);
            team.run(split.parts, [&](int part) {
                int64_t r0, r1, c0, c1;
                split.block(part, r0, r1, c0, c1);
                const float* a_block = s.ta ? a.data() + r0 : a.data() + r0 * lda;
                const float* b_block = s.tb ? b.data() + c0 * ldb : b.data() + c0;
                dn::sgemm(s.ta, s.tb, r1 - r0, c1 - c0, s.k, 1.0f, a_block, lda, b_block, ldb, 1.0f,
                          c.data() + r0 * s.n + c0, s.n);
            });
        };
        const double t_openblas = seconds_per_call(openblas);
        const double t_layers = seconds_per_call(layers);
        const double flop = 2.0 * s.m * s.n * s.k;
        std::printf("%s %.2f %.4e %.2f %.4e\n", s.text.c_str(), flop / t_openblas * 1e-9, t_openblas,
                    flop / t_layers * 1e-9, t_layers);
        std::fflush(stdout);
    }
    return 0;
}

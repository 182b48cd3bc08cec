// The SDK's AVX-512 product (ansatz/sgemm_avx512.hpp), which the network layers call where the CPU has
// AVX-512: against a double-precision product on every combination of transposes, with alpha and beta,
// beta = 0 over a C full of NaN (C is not read, as BLAS), leading dimensions larger than the extents, and
// extents that leave partial tiles (rows not a multiple of 8, columns not a multiple of 32 or 8, depths
// not a multiple of 8 and beyond one block of K); and the promise that a value does not depend on where
// its tile falls (a product split by rows or columns, as over a team, gives the same bits).
// And the layers' product (detail::nn::sgemm) takes it for a large product and OpenBLAS for a small one.
// On a CPU without AVX-512 the kernel cannot run: the cases say so (a warning) and check nothing.
#include "ansatz/nn.hpp"
#include "ansatz/random.hpp"
#include "ansatz/sgemm_avx512.hpp"

#include <catch2/catch.hpp>
#include <cblas.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace fast = ansatz::detail::sgemm_avx512;

namespace
{

struct Case
{
    bool ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
};

// C = alpha op(A) op(B) + beta C in double (C not read when beta is 0).
std::vector<double> reference(const Case& c, const std::vector<float>& a, const std::vector<float>& b,
                              const std::vector<float>& c0)
{
    std::vector<double> out(static_cast<size_t>(c.m * c.ldc));
    for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < c.n; ++j)
        {
            double sum = 0;
            for (int64_t p = 0; p < c.k; ++p)
            {
                const double x = c.ta ? a[p * c.lda + i] : a[i * c.lda + p];
                const double y = c.tb ? b[j * c.ldb + p] : b[p * c.ldb + j];
                sum += x * y;
            }
            out[i * c.ldc + j] = c.alpha * sum + (c.beta == 0 ? 0.0 : c.beta * c0[i * c.ldc + j]);
        }
    return out;
}

std::vector<float> normals(size_t count, ansatz::Rng& rng)
{
    std::vector<float> v(count);
    for (float& x : v)
        x = static_cast<float>(rng.normal());
    return v;
}

bool skip_without_avx512()
{
    if (fast::available())
        return false;
    WARN("this CPU has no AVX-512: the SDK's AVX-512 product cannot run here, nothing checked");
    return true;
}

} // namespace

TEST_CASE("sgemm_avx512: every transpose, alpha, beta and partial tile against a double product",
          "[sdk][sgemm]")
{
    if (skip_without_avx512())
        return;
    ansatz::Rng rng(2026);
    // Extents around the tiles' edges (8 rows, 32 and 16 columns, 8-deep transposes) and K beyond one block
    // of 512 (two or three blocks); each with both transposes of each operand.
    const int64_t ms[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 17, 128 }; // every leftover of the 8-row tiles
    const int64_t ns[] = { 1, 15, 16, 17, 32, 33, 47, 100 };
    const int64_t ks[] = { 1, 5, 8, 13, 64, 513, 1100 };
    int checked = 0;
    for (int64_t m : ms)
        for (int64_t n : ns)
            for (int64_t k : ks)
                for (int t = 0; t < 4; ++t)
                {
                    if (m * n * k > 2'000'000)
                        continue;
                    const bool ta = t & 1, tb = t & 2;
                    const int variant = checked % 4; // alpha 1 or not; beta 0 (C full of NaN), 1 or other
                    Case c{ ta,
                            tb,
                            m,
                            n,
                            k,
                            (ta ? m : k) + variant,
                            (tb ? k : n) + 2 * variant,
                            n + variant,
                            variant == 0 ? 1.0f : -0.75f,
                            variant == 1   ? 0.0f
                            : variant == 2 ? 1.0f
                                           : 0.5f };
                    const std::vector<float> a = normals(static_cast<size_t>((ta ? k : m) * c.lda), rng);
                    const std::vector<float> b = normals(static_cast<size_t>((tb ? n : k) * c.ldb), rng);
                    std::vector<float> out = normals(static_cast<size_t>(m * c.ldc), rng);
                    if (c.beta == 0.0f) // BLAS does not read C then: NaN must not leak through
                        for (int64_t i = 0; i < m; ++i)
                            for (int64_t j = 0; j < n; ++j)
                                out[i * c.ldc + j] = std::numeric_limits<float>::quiet_NaN();
                    const std::vector<float> before = out;
                    const std::vector<double> want = reference(c, a, b, before);
                    fast::sgemm(ta, tb, m, n, k, c.alpha, a.data(), c.lda, b.data(), c.ldb, c.beta,
                                out.data(), c.ldc);
                    INFO("m " << m << " n " << n << " k " << k << " ta " << ta << " tb " << tb << " alpha "
                              << c.alpha << " beta " << c.beta << " lda " << c.lda << " ldb " << c.ldb
                              << " ldc " << c.ldc);
                    int wrong = 0, touched_padding = 0;
                    for (int64_t i = 0; i < m; ++i)
                        for (int64_t j = 0; j < c.ldc; ++j)
                        {
                            const float got = out[i * c.ldc + j];
                            if (j >= n) // past the columns: C's padding is not written
                            {
                                touched_padding += std::memcmp(&got, &before[i * c.ldc + j], sizeof got) != 0;
                                continue;
                            }
                            // float rounding of k products of unit normals: well within 1e-5 sqrt(k) (abs)
                            const double tolerance = 1e-5 * (1 + std::sqrt(static_cast<double>(k))) *
                                                     (1 + std::abs(want[i * c.ldc + j]));
                            wrong += !(std::abs(got - want[i * c.ldc + j]) <= tolerance);
                        }
                    CHECK(wrong == 0);
                    CHECK(touched_padding == 0);
                    ++checked;
                }
    CHECK(checked > 1000);
}

TEST_CASE("sgemm_avx512: alpha 0 and K 0 leave beta C without reading A and B, as BLAS", "[sdk][sgemm]")
{
    if (skip_without_avx512())
        return;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> a(64 * 64, nan), b(64 * 64, nan); // read, they would make C NaN
    for (const bool zero_k : { false, true })
        for (const float beta : { 0.0f, 1.0f, -2.0f })
        {
            INFO((zero_k ? "k 0" : "alpha 0") << ", beta " << beta);
            std::vector<float> c(20 * 40);
            for (size_t j = 0; j < c.size(); ++j)
                c[j] = beta == 0.0f ? nan : static_cast<float>(j);
            fast::sgemm(false, true, 20, 40, zero_k ? 0 : 64, zero_k ? 1.0f : 0.0f, a.data(), 64, b.data(),
                        64, beta, c.data(), 40);
            int wrong = 0;
            for (size_t j = 0; j < c.size(); ++j)
                wrong += c[j] != (beta == 0.0f ? 0.0f : beta * static_cast<float>(j));
            CHECK(wrong == 0);
        }
}

TEST_CASE("sgemm_avx512: a value does not depend on where its tile falls (blocks of rows and columns)",
          "[sdk][sgemm]")
{
    if (skip_without_avx512())
        return;
    ansatz::Rng rng(7);
    // The MLP VAE's shapes (a batch of 128; the layers' products y = x W^T, dW += dz^T x, dx = dz W), C
    // computed whole and in blocks of rows or columns at multiples of 16 (as the team splits) and odd ones.
    const Case cases[] = { { false, true, 128, 512, 784, 784, 784, 512, 1.0f, 0.0f },
                           { true, false, 512, 784, 128, 512, 784, 784, 1.0f, 1.0f },
                           { false, false, 128, 784, 512, 512, 784, 784, 1.0f, 0.0f },
                           { false, true, 57, 100, 1100, 1100, 1100, 100, -0.5f, 0.25f } };
    for (const Case& c : cases)
    {
        const std::vector<float> a = normals(static_cast<size_t>((c.ta ? c.k : c.m) * c.lda), rng);
        const std::vector<float> b = normals(static_cast<size_t>((c.tb ? c.n : c.k) * c.ldb), rng);
        const std::vector<float> c0 = normals(static_cast<size_t>(c.m * c.ldc), rng);
        std::vector<float> whole = c0;
        fast::sgemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), c.lda, b.data(), c.ldb, c.beta,
                    whole.data(), c.ldc);
        for (const int64_t cut : { int64_t{ 16 }, int64_t{ 48 }, int64_t{ 21 } })
        {
            INFO("m " << c.m << " n " << c.n << " k " << c.k << " cut " << cut);
            REQUIRE(cut < std::min(c.m, c.n));
            // by columns [0, cut) and [cut, n)
            std::vector<float> by_columns = c0;
            for (const auto [c_begin, c_end] : { std::pair{ int64_t{ 0 }, cut }, std::pair{ cut, c.n } })
            {
                const float* b_block = c.tb ? b.data() + c_begin * c.ldb : b.data() + c_begin;
                fast::sgemm(c.ta, c.tb, c.m, c_end - c_begin, c.k, c.alpha, a.data(), c.lda, b_block, c.ldb,
                            c.beta, by_columns.data() + c_begin, c.ldc);
            }
            CHECK(std::memcmp(by_columns.data(), whole.data(), whole.size() * sizeof(float)) == 0);
            // by rows [0, cut) and [cut, m)
            std::vector<float> by_rows = c0;
            for (const auto [r_begin, r_end] : { std::pair{ int64_t{ 0 }, cut }, std::pair{ cut, c.m } })
            {
                const float* a_block = c.ta ? a.data() + r_begin : a.data() + r_begin * c.lda;
                fast::sgemm(c.ta, c.tb, r_end - r_begin, c.n, c.k, c.alpha, a_block, c.lda, b.data(), c.ldb,
                            c.beta, by_rows.data() + r_begin * c.ldc, c.ldc);
            }
            CHECK(std::memcmp(by_rows.data(), whole.data(), whole.size() * sizeof(float)) == 0);
        }
    }
}

TEST_CASE("sgemm_avx512: the layers' product takes this kernel for large products, OpenBLAS for small ones",
          "[sdk][sgemm]")
{
    if (skip_without_avx512())
        return;
    ansatz::Rng rng(11);
    // {m, n, k}: the MLP VAE's first layer (2^25 multiply-adds) and a product of 4 rows (worth_it wants 8)
    for (const auto [m, n, k] :
         { std::array<int64_t, 3>{ 128, 512, 784 }, std::array<int64_t, 3>{ 4, 16, 8000 } })
    {
        INFO("m " << m << " n " << n << " k " << k);
        const std::vector<float> a = normals(static_cast<size_t>(m * k), rng);
        const std::vector<float> b = normals(static_cast<size_t>(n * k), rng);
        std::vector<float> layers(static_cast<size_t>(m * n)), kernel = layers, openblas = layers;
        ansatz::nn::detail::nn::sgemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f,
                                      layers.data(), n);
        fast::sgemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, kernel.data(), n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
                    static_cast<int>(k), 1.0f, a.data(), static_cast<int>(k), b.data(), static_cast<int>(k),
                    0.0f, openblas.data(), static_cast<int>(n));
        const bool large = fast::worth_it(m, n, k);
        CHECK(large == (m == 128));
        const std::vector<float>& expected = large ? kernel : openblas;
        CHECK(std::memcmp(layers.data(), expected.data(), layers.size() * sizeof(float)) == 0);
        // (and the two differ somewhere in rounding, or the comparison above could not tell them apart)
        CHECK(std::memcmp(kernel.data(), openblas.data(), kernel.size() * sizeof(float)) != 0);
    }
}

// ansatz/sgemm_avx512.hpp -- C = alpha op(A) op(B) + beta C (row-major float32) with AVX-512 FMAs.
//
// Why the SDK has its own product: OpenBLAS runs whatever kernel the environment gives it, and where
// OPENBLAS_CORETYPE must name an older core (OpenBLAS 0.3.21 misdetects recent AMD and Intel CPUs) that is
// an AVX2 kernel on a CPU whose FMAs are twice as wide. The network layers (ansatz/nn.hpp) call this one
// where the CPU has AVX-512 (available()) and the product is large enough to pay for its packing
// (worth_it()); anything else goes to OpenBLAS.
//
// The method is BLIS's, without packing A: C in tiles of kRows x 32 (two 16-float registers a row, the
// accumulators of the tile in 2 kRows registers), op(B) packed once per block of 32 columns and up to
// kDepth terms into a panel of rows of 32 floats (zeros past N), and op(A)'s elements broadcast straight
// from A (kRows rows with a stride, or kRows consecutive floats when A is transposed). Each element of C
// sums its terms in order, in blocks of a depth that depends on K only, so its value does not depend on
// where its tile falls: a product split by rows or columns over threads gives the same bits as the whole
// product through this kernel (a part too small for it goes to OpenBLAS, which rounds otherwise).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ANSATZ_SGEMM_AVX512 1
#endif

namespace ansatz::detail::sgemm_avx512
{

#ifdef ANSATZ_SGEMM_AVX512

#define ANSATZ_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))

constexpr int kRows = 8;        // rows of a tile of C
constexpr int kCols = 32;       // its columns: two registers
constexpr int64_t kDepth = 512; // most terms summed in the registers before C is updated

inline bool available()
{
    static const bool on = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    return on;
}

// Products of 2^18 multiply-adds and more, with at least 8 rows to share each packed panel: measured on a
// Zen 5 (one thread, against OpenBLAS's Haswell kernel), 2^18 to 2^20 multiply-adds took this kernel half
// of OpenBLAS's time (64 x 64 x 64: 2.6 against 5.1 us; 128 x 256 x 16: 5.7 against 10.4), but 4 x 16 x
// 4096 twice (its panels serve 4 rows). Smaller ones are not worth a second code path.
inline bool worth_it(int64_t m, int64_t n, int64_t k)
{
    return m >= 8 && n >= 16 && k >= 8 && m * n * k >= (int64_t{ 1 } << 18);
}

// The blocks of K: as few as fit kDepth, of equal size (to 8): a function of K alone.
inline int64_t depth_of_blocks(int64_t k)
{
    const int64_t blocks = (k + kDepth - 1) / kDepth;
    const int64_t depth = (k + blocks - 1) / blocks;
    return (depth + 7) / 8 * 8;
}

// The panel: rows p < depth of op(B)[k0 + p][j0 .. j0 + cols), zeros past cols (cols <= 32).
ANSATZ_TARGET_AVX512 inline void pack_rows(const float* b, int64_t ldb, int64_t k0, int64_t depth, int64_t j0,
                                           int64_t cols, float* panel)
{
    // op(B) = B: row k0 + p of B, its columns j0 ...
    const __mmask16 m0 = cols >= 16 ? 0xffff : static_cast<__mmask16>((1u << cols) - 1);
    const __mmask16 m1 = cols >= 32   ? 0xffff
                         : cols <= 16 ? 0
                                      : static_cast<__mmask16>((1u << (cols - 16)) - 1);
    for (int64_t p = 0; p < depth; ++p)
    {
        const float* row = b + (k0 + p) * ldb + j0;
        _mm512_store_ps(panel + p * kCols, _mm512_maskz_loadu_ps(m0, row));
        _mm512_store_ps(panel + p * kCols + 16, _mm512_maskz_loadu_ps(m1, row + 16));
    }
}

// The same panel when op(B) = B^T: op(B)[k0 + p][j0 + j] = B[j0 + j][k0 + p], rows of B become columns of
// the panel, transposed 8 x 8 at a time (AVX registers).
ANSATZ_TARGET_AVX512 inline void transpose8(const float* src, int64_t lds, float* dst, int64_t ldd)
{
    __m256 r0 = _mm256_loadu_ps(src + 0 * lds), r1 = _mm256_loadu_ps(src + 1 * lds);
    __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}

ANSATZ_TARGET_AVX512 inline void pack_columns(const float* b, int64_t ldb, int64_t k0, int64_t depth,
                                              int64_t k, int64_t j0, int64_t cols, float* panel)
{
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8)
    {
        const float* src = b + (j0 + j) * ldb + k0; // rows j0 + j .. of B, from column k0
        int64_t p = 0;
        for (; p + 8 <= depth && k0 + p + 8 <= k; p += 8)
            transpose8(src + p, ldb, panel + p * kCols + j, kCols);
        for (; p < depth; ++p)
            for (int64_t q = 0; q < 8; ++q)
                panel[p * kCols + j + q] = k0 + p < k ? src[q * ldb + p] : 0.0f;
    }
    for (; j < kCols; ++j)
        for (int64_t p = 0; p < depth; ++p)
            panel[p * kCols + j] = j < cols && k0 + p < k ? b[(j0 + j) * ldb + k0 + p] : 0.0f;
}

// The tile C[0, Rows) x [0, 32) (columns past the masks untouched) += or = the sum over p < depth of
// op(A)[i][p] panel[p]: A's element (i, p) at a[i * lda + p], or a[p * lda + i] when transposed.
// first: C = alpha sum + beta C (C not read when beta is 0, as BLAS); else C = alpha sum + C.
template <int Rows, bool TransposeA>
ANSATZ_TARGET_AVX512 inline void tile(int64_t depth, const float* a, int64_t lda, const float* panel,
                                      float* c, int64_t ldc, __mmask16 m0, __mmask16 m1, float alpha,
                                      float beta, bool first)
{
    // (the loops over i unrolled, so that the accumulators live in registers)
    __m512 acc0[Rows], acc1[Rows];
#pragma GCC unroll 16
    for (int i = 0; i < Rows; ++i)
        acc0[i] = acc1[i] = _mm512_setzero_ps();
    for (int64_t p = 0; p < depth; ++p)
    {
        const __m512 b0 = _mm512_load_ps(panel + p * kCols), b1 = _mm512_load_ps(panel + p * kCols + 16);
#pragma GCC unroll 16
        for (int i = 0; i < Rows; ++i)
        {
            const __m512 x = _mm512_set1_ps(TransposeA ? a[p * lda + i] : a[i * lda + p]);
            acc0[i] = _mm512_fmadd_ps(x, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(x, b1, acc1[i]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
    const bool read = !first || beta != 0.0f;
    const __m512 vb = _mm512_set1_ps(first ? beta : 1.0f);
#pragma GCC unroll 16
    for (int i = 0; i < Rows; ++i)
    {
        float* row = c + i * ldc;
        __m512 r0 = _mm512_mul_ps(va, acc0[i]), r1 = _mm512_mul_ps(va, acc1[i]);
        if (read)
        {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), r1);
        }
        _mm512_mask_storeu_ps(row, m0, r0);
        _mm512_mask_storeu_ps(row + 16, m1, r1);
    }
}

template <bool TransposeA>
ANSATZ_TARGET_AVX512 inline void tiles(int64_t m, int64_t depth, const float* a, int64_t lda,
                                       const float* panel, float* c, int64_t ldc, __mmask16 m0, __mmask16 m1,
                                       float alpha, float beta, bool first)
{
    // the tile of the rows left after the full ones, by their count (1 .. kRows - 1)
    using Tile = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, __mmask16, __mmask16,
                          float, float, bool);
    static constexpr Tile leftover[kRows] = { nullptr,
                                              tile<1, TransposeA>,
                                              tile<2, TransposeA>,
                                              tile<3, TransposeA>,
                                              tile<4, TransposeA>,
                                              tile<5, TransposeA>,
                                              tile<6, TransposeA>,
                                              tile<7, TransposeA> };
    static_assert(kRows == 8);
    // op(A) rows i..: A's rows (a + i lda) or, transposed, A's columns (a + i)
    auto rows = [&](int64_t r) { return TransposeA ? a + r : a + r * lda; };
    int64_t i = 0;
    for (; i + kRows <= m; i += kRows)
        tile<kRows, TransposeA>(depth, rows(i), lda, panel, c + i * ldc, ldc, m0, m1, alpha, beta, first);
    if (i < m)
        leftover[m - i](depth, rows(i), lda, panel, c + i * ldc, ldc, m0, m1, alpha, beta, first);
}

// C = beta C, as BLAS leaves it when alpha is 0 or K is 0 (C not read when beta is 0).
ANSATZ_TARGET_AVX512 inline void scale_only(int64_t m, int64_t n, float beta, float* c, int64_t ldc)
{
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j)
            c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

// C {m, n} = alpha op(A) op(B) + beta C; op(A) {m, k}, op(B) {k, n}; on this thread. As BLAS: nothing for
// an empty C, and C = beta C when alpha or K is 0 (A and B not read).
ANSATZ_TARGET_AVX512 inline void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                                       const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                                       float* c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || alpha == 0.0f)
        return scale_only(m, n, beta, c, ldc);
    const int64_t depth = depth_of_blocks(k);
    thread_local std::vector<float> storage;
    const size_t need = static_cast<size_t>(depth * kCols + 16);
    if (storage.size() < need)
        storage.resize(need);
    float* panel = storage.data() + (16 - (reinterpret_cast<uintptr_t>(storage.data()) / 4) % 16) % 16;
    for (int64_t j0 = 0; j0 < n; j0 += kCols)
    {
        const int64_t cols = std::min<int64_t>(kCols, n - j0);
        const __mmask16 m0 = cols >= 16 ? 0xffff : static_cast<__mmask16>((1u << cols) - 1);
        const __mmask16 m1 = cols >= 32   ? 0xffff
                             : cols <= 16 ? 0
                                          : static_cast<__mmask16>((1u << (cols - 16)) - 1);
        for (int64_t k0 = 0; k0 < k; k0 += depth)
        {
            const int64_t d = std::min(depth, k - k0);
            if (tb)
                pack_columns(b, ldb, k0, d, k, j0, cols, panel);
            else
                pack_rows(b, ldb, k0, d, j0, cols, panel);
            const float* a_block = ta ? a + k0 * lda : a + k0; // op(A)'s columns k0 ..
            if (ta)
                tiles<true>(m, d, a_block, lda, panel, c + j0, ldc, m0, m1, alpha, beta, k0 == 0);
            else
                tiles<false>(m, d, a_block, lda, panel, c + j0, ldc, m0, m1, alpha, beta, k0 == 0);
        }
    }
}

#undef ANSATZ_TARGET_AVX512

#else

inline bool available()
{
    return false;
}
inline bool worth_it(int64_t, int64_t, int64_t)
{
    return false;
}
inline void sgemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                  float, float*, int64_t)
{
}

#endif

} // namespace ansatz::detail::sgemm_avx512

// ansatz/blas.hpp -- matrix products through BLAS into preallocated outputs.
//
// C = alpha * op(A) * op(B) + beta * C on row-major float32 views, transposes as BLAS flags; no
// allocation, no copy. (xt::linalg::dot allocates an xarray each call: not for hot code.)
//
// gemm(team, ...) splits one product over a ThreadTeam (ansatz/parallel.hpp): C in blocks of columns
// (or of rows, whichever operand is the larger to pack), one single-threaded BLAS call per member, so
// a component whose team also does the element-wise work around its products keeps exactly its thread
// budget busy, instead of OpenBLAS's threads waiting while it works alone. The split depends only on
// the shapes and the team's size, so a product is reproducible bit for bit for a given thread count;
// across thread counts it agrees to rounding (OpenBLAS's kernels round an element differently
// depending on where its block of C falls, as OpenBLAS's own threads do).
#pragma once

#include "ansatz/error.hpp"
#include "ansatz/parallel.hpp"
#include "ansatz/tensor.hpp"

#include <cblas.h>

#include <algorithm>
#include <climits>

namespace ansatz::blas
{

enum class Op
{
    none,
    transpose
};

namespace detail
{

struct GemmShape
{
    int64_t m, n, k;
};

// The product's extents, after checking that the views agree and fit BLAS's int.
inline GemmShape gemm_shape(Op op_a, Op op_b, const ansatz_tensor& a, const ansatz_tensor& b, const ansatz_tensor& c)
{
    if (a.rank != 2 || b.rank != 2 || c.rank != 2)
        throw Error("gemm needs rank-2 views");
    const bool ta = op_a == Op::transpose;
    const bool tb = op_b == Op::transpose;
    const int64_t m = ta ? a.shape[1] : a.shape[0];
    const int64_t k = ta ? a.shape[0] : a.shape[1];
    const int64_t kb = tb ? b.shape[1] : b.shape[0];
    const int64_t n = tb ? b.shape[0] : b.shape[1];
    if (k != kb || c.shape[0] != m || c.shape[1] != n)
        throw Error("gemm shapes do not agree: op(A) " + std::to_string(m) + "x" + std::to_string(k) +
                    ", op(B) " + std::to_string(kb) + "x" + std::to_string(n) + ", C " + shape_string(c));
    // BLAS takes int dimensions; a larger one would be silently truncated.
    for (int64_t extent : { m, n, k, a.shape[1], b.shape[1], c.shape[1] })
        if (extent > INT_MAX)
            throw Error("gemm: a dimension of " + std::to_string(extent) + " exceeds BLAS's int range");
    return { m, n, k };
}

// C[rows r0.., columns c0..] {rows, cols} of the product: the matching block of op(A) and op(B).
inline void gemm_block(bool ta, bool tb, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                       float beta, float* c, int64_t ldc, int64_t r0, int64_t rows, int64_t c0, int64_t cols,
                       int64_t k)
{
    if (rows == 0 || cols == 0)
        return;
    const float* a_block = ta ? a + r0 : a + r0 * lda;  // op(A) rows r0..: columns of A when transposed
    const float* b_block = tb ? b + c0 * ldb : b + c0; // op(B) columns c0..: rows of B when transposed
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                static_cast<int>(rows), static_cast<int>(cols), static_cast<int>(k), alpha, a_block,
                static_cast<int>(lda), b_block, static_cast<int>(ldb), beta, c + r0 * ldc + c0,
                static_cast<int>(ldc));
}

} // namespace detail

// op(A) {M, K}, op(B) {K, N}, C {M, N}; every view is rank 2.
inline void gemm(Op op_a, Op op_b, float alpha, const ansatz_tensor& a, const ansatz_tensor& b, float beta,
                 ansatz_tensor& c)
{
    const detail::GemmShape s = detail::gemm_shape(op_a, op_b, a, b, c);
    if (s.m == 0 || s.n == 0)
        return;
    detail::gemm_block(op_a == Op::transpose, op_b == Op::transpose, alpha, f32(a), a.shape[1], f32(b),
                       b.shape[1], beta, f32(c), c.shape[1], 0, s.m, 0, s.n, s.k);
}

// While alive, OpenBLAS runs every call on the calling thread (openblas_set_num_threads(1)); the count it
// had comes back when it dies. For products that a team splits itself: OpenBLAS's own threads would
// compete with the team for the same cores. The host calls a component from one thread at a time, and
// the count is restored before the component returns, so no other component sees the change.
class SingleThreaded
{
public:
    explicit SingleThreaded(bool active = true) : saved_(active ? openblas_get_num_threads() : 1)
    {
        if (saved_ != 1)
            openblas_set_num_threads(1);
    }
    ~SingleThreaded()
    {
        if (saved_ != 1)
            openblas_set_num_threads(saved_);
    }
    SingleThreaded(const SingleThreaded&) = delete;
    SingleThreaded& operator=(const SingleThreaded&) = delete;

private:
    int saved_;
};

// gemm as above, split over `team` when the product is large enough to pay for it (otherwise one call on
// the caller, with BLAS's own threads): C in blocks of columns when N >= M (each member packs all of
// op(A) and its part of op(B)), else of rows; blocks are multiples of 16 columns or rows. Each member's
// call is single-threaded (SingleThreaded).
inline void gemm(ThreadTeam& team, Op op_a, Op op_b, float alpha, const ansatz_tensor& a, const ansatz_tensor& b,
                 float beta, ansatz_tensor& c)
{
    const detail::GemmShape s = detail::gemm_shape(op_a, op_b, a, b, c);
    if (s.m == 0 || s.n == 0)
        return;
    constexpr int64_t min_work = int64_t{ 1 } << 20; // multiply-adds per member: ~20 us at 50 GFLOP/s
    const bool by_columns = s.n >= s.m;
    const int64_t extent = by_columns ? s.n : s.m;
    const int parts = static_cast<int>(
        std::clamp<int64_t>(std::min(s.m * s.n * s.k / min_work, extent / 16), 1, team.size()));
    const bool ta = op_a == Op::transpose, tb = op_b == Op::transpose;
    const float* pa = f32(a);
    const float* pb = f32(b);
    float* pc = f32(c);
    const int64_t lda = a.shape[1], ldb = b.shape[1], ldc = c.shape[1];
    if (parts == 1)
    {
        detail::gemm_block(ta, tb, alpha, pa, lda, pb, ldb, beta, pc, ldc, 0, s.m, 0, s.n, s.k);
        return;
    }
    SingleThreaded one;
    team.run(parts, [&](int part) {
        const auto [begin, end] = ThreadTeam::range(extent, part, parts, 16);
        if (by_columns)
            detail::gemm_block(ta, tb, alpha, pa, lda, pb, ldb, beta, pc, ldc, 0, s.m, begin, end - begin, s.k);
        else
            detail::gemm_block(ta, tb, alpha, pa, lda, pb, ldb, beta, pc, ldc, begin, end - begin, 0, s.n, s.k);
    });
}

} // namespace ansatz::blas

// ansatz/blas.hpp -- matrix products through BLAS into preallocated outputs.
//
// C = alpha * op(A) * op(B) + beta * C on row-major float32 views, transposes as BLAS flags; no
// allocation, no copy. (xt::linalg::dot allocates an xarray each call: not for hot code.)
#pragma once

#include "ansatz/error.hpp"
#include "ansatz/tensor.hpp"

#include <cblas.h>

#include <climits>

namespace ansatz::blas
{

enum class Op
{
    none,
    transpose
};

// op(A) {M, K}, op(B) {K, N}, C {M, N}; every view is rank 2.
inline void gemm(Op op_a, Op op_b, float alpha, const ansatz_tensor& a, const ansatz_tensor& b, float beta,
                 ansatz_tensor& c)
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
    if (m == 0 || n == 0)
        return;
    // BLAS takes int dimensions; a larger one would be silently truncated.
    for (int64_t extent : { m, n, k, a.shape[1], b.shape[1], c.shape[1] })
        if (extent > INT_MAX)
            throw Error("gemm: a dimension of " + std::to_string(extent) + " exceeds BLAS's int range");
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, f32(a),
                static_cast<int>(a.shape[1]), f32(b), static_cast<int>(b.shape[1]), beta, f32(c),
                static_cast<int>(c.shape[1]));
}

} // namespace ansatz::blas

// ansatz/math.hpp -- the SDK's shared math on plain contiguous memory (pointer + count).
//
// WHAT THIS FILE PROVIDES
//     The elementwise functions, row reductions, per-row random draws and state enumerations that
//     energy-based models need in their hot loops, written once: vectorised with xsimd for the
//     instruction set the including file is compiled for (SSE2 by default on x86-64, AVX2 + FMA with
//     -march=native on a machine that has them), on float32 arrays that are row-major and contiguous,
//     one row per sample (the memory of an ansatz_tensor view: pass view.data and its extents).
//     No xtensor here: any file may include it. The bodies are in ansatz/math_impl.hpp.
//
// CONVENTIONS
//     - Counts are int64_t and may be 0 (nothing is read or written); pointers may then be null.
//     - Out-of-place forms f(x, out, n) allow out == x (in place) but no other overlap; the in-place
//       forms f(x, n) are f(x, x, n).
//     - Nothing allocates, nothing throws except where a contract says so.
//     - Accuracy is stated against the exact value rounded to float (computed in double by std::).
//       Every element goes through the same vector code, also the last n % batch-size ones (they are
//       computed in a padded batch), so a value never depends on its position or on the count; it
//       can differ by an ulp between builds for different instruction sets (fused multiply-add).
//     - In the elementwise functions and reductions, NaN in gives NaN out and infinities give the
//       limits.
#pragma once

#include "ansatz/random.hpp"

#include <cstdint>

namespace ansatz
{

// ---- Elementwise functions ------------------------------------------------------------------------

// exp(x) = e^x.
//   requires: x and out hold n >= 0 floats (out == x allowed).
//   ensures:  out[i] = e^x[i] within 2 ulp; finite wherever e^x[i] is below FLT_MAX (x < 88.72),
//             +inf above; subnormal for x in [-103.97, -87.34) (rounded once), 0 below.
//             Cephes' polynomial, not xsimd::exp (which overflows from x = 88.38 on in xsimd 8.1).
inline void exp(const float* x, float* out, int64_t n);
inline void exp(float* x, int64_t n);

// log1p(x) = log(1 + x), accurate for tiny x.
//   requires: x and out hold n >= 0 floats (out == x allowed).
//   ensures:  out[i] = log(1 + x[i]) within 2 ulp for x[i] > -1; -inf at -1, NaN below -1,
//             out[i] = x[i] (to the ulp) for |x[i]| < 2^-24, +inf at +inf.
inline void log1p(const float* x, float* out, int64_t n);
inline void log1p(float* x, int64_t n);

// sigmoid(x) = 1 / (1 + e^-x), the logistic function, computed without overflow: e^-|x| only.
//   requires: x and out hold n >= 0 floats (out == x allowed).
//   ensures:  out[i] in [0, 1] within 3 ulp of the exact value; never NaN for a non-NaN x:
//             sigmoid(+-0) = 0.5, sigmoid(100) = 1, sigmoid(+inf) = 1, sigmoid(-100) = 3.8e-44
//             (subnormal; 0 below x = -103.97), sigmoid(-inf) = 0.
inline void sigmoid(const float* x, float* out, int64_t n);
inline void sigmoid(float* x, int64_t n);

// softplus(x) = log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|): no overflow.
//   requires: x and out hold n >= 0 floats (out == x allowed).
//   ensures:  out[i] >= 0 within 3 ulp of the exact value; softplus(100) = 100, softplus(-100) =
//             3.8e-44 (subnormal; 0 below x = -103.97), softplus(+inf) = +inf, softplus(-inf) = 0.
inline void softplus(const float* x, float* out, int64_t n);
inline void softplus(float* x, int64_t n);

// tanh(x), the hyperbolic tangent: Cephes' odd polynomial x + x^3 P(x^2) for |x| < 0.625, else
// sign(x) (1 - 2 / (e^{2|x|} + 1)), so it neither overflows nor loses tiny x.
//   requires: x and out hold n >= 0 floats (out == x allowed).
//   ensures:  out[i] in [-1, 1] within 3 ulp of the exact value; tanh(+-0) = +-0, out[i] = x[i] for
//             |x[i]| < 2^-12 (to the ulp), tanh(+-10) = +-1, tanh(+-inf) = +-1.
inline void tanh(const float* x, float* out, int64_t n);
inline void tanh(float* x, int64_t n);

// ---- Row reductions ---------------------------------------------------------------------------------

// Sum of softplus over each row of x {rows, cols}, e.g. the hidden units' term of an RBM's free
// energy F[n] = -a.v[n] - sum_j softplus(pre[n, j]).
//   requires: x holds rows * cols floats; out holds rows values; rows, cols >= 0.
//   ensures:  out[r] = sum_j softplus(x[r * cols + j]) within a relative 4e-7 plus 1.4e-45 absolute
//             per term (the error of e^-|x| in float, subnormal for x below -87.3 and 0 below -104; the
//             rest is in double: sum_j max(x_j, 0) + log prod_j (1 + e^-|x_j|), the products
//             lane-wise, one log1p per 512 terms, in a fixed order, no fused multiply-add, so both paths
//             and every build give the same bits from the same e^-|x|); the float form rounds that double
//             sum once. out[r] = 0 for cols = 0; a -inf term adds 0, a +inf one makes the sum +inf, a
//             NaN one NaN.
inline void sum_softplus_rows(const float* x, int64_t rows, int64_t cols, double* out);
inline void sum_softplus_rows(const float* x, int64_t rows, int64_t cols, float* out);

// log sum_i e^x[i], computed in double: max + log(sum e^(x - max)), so no overflow or underflow
// of the terms' scale (log Z by enumeration, AIS weights, importance sampling).
//   requires: x holds n >= 0 values.
//   ensures:  returns the exact value within a relative 1e-14 (+ 1e-14 absolute near 0);
//             -inf for n = 0 or all x = -inf; +inf if some x = +inf; NaN if some x is NaN.
inline double logsumexp(const double* x, int64_t n);
inline double logsumexp(const float* x, int64_t n);

// logsumexp over each row of x {rows, cols}.
//   requires: x holds rows * cols values; out holds rows doubles; rows, cols >= 0.
//   ensures:  out[r] = logsumexp(x + r * cols, cols).
inline void logsumexp_rows(const double* x, int64_t rows, int64_t cols, double* out);
inline void logsumexp_rows(const float* x, int64_t rows, int64_t cols, double* out);

// ---- Per-row random draws ---------------------------------------------------------------------------

// Bernoulli draws, one row per chain: out[r, i] = 1 with probability p[r, i], else 0.
//   requires: p and out hold rows * cols floats (out == p allowed); rngs.size() >= rows.
//   ensures:  row r draws from rngs[r] only, exactly one rngs[r].uniform() per element in row-major
//             order, and out[r * cols + i] = (u < p[r * cols + i]) ? 1 : 0, so the result equals
//             the scalar loop `out[i] = rng.uniform() < p[i] ? 1.0f : 0.0f` bit for bit and each
//             stream advances by cols draws. p outside [0, 1] acts as clamped (p <= 0 never gives
//             1, p >= 1 always does); NaN gives 0.
//   throws:   ansatz::Error if rngs.size() < rows (nothing drawn).
inline void bernoulli_rows(const float* p, int64_t rows, int64_t cols, float* out, Streams rngs);

// The same draws for spins: out[r, i] = +1 with probability p[r, i] (= P(s = +1)), else -1.
//   requires, ensures, throws: as bernoulli_rows, with values +1 / -1 instead of 1 / 0.
inline void bernoulli_spin_rows(const float* p, int64_t rows, int64_t cols, float* out, Streams rngs);

// ---- Enumeration of states --------------------------------------------------------------------------

// The largest number of units whose states can be enumerated: 2^24 = 16777216 states.
inline constexpr int64_t max_enumerated_units = 24;

// The number of states of `units` two-valued units: 2^units.
//   throws: ansatz::Error if units < 0 or units > max_enumerated_units.
inline int64_t state_count(int64_t units);

// All states of `units` binary units, in a fixed order: row k is state k, whose unit i is bit i of k
// (unit 0 is the least significant bit): k = 0 is all zeros, k = 1 sets unit 0, k = 2 sets unit 1...
//   requires: out holds state_count(units) * units floats, a {2^units, units} array.
//   ensures:  out[k * units + i] = (k >> i) & 1, as 0.0f / 1.0f.
//   throws:   ansatz::Error if units < 0 or units > max_enumerated_units (nothing written).
inline void binary_states(int64_t units, float* out);

// Rows first .. first + count - 1 of binary_states(units), for enumerating in blocks that fit a
// batch (the whole of 24 units is 1.6 GB of floats).
//   requires: out holds count * units floats; 0 <= first, 0 <= count, first + count <= 2^units.
//   ensures:  out[j * units + i] = ((first + j) >> i) & 1.
//   throws:   ansatz::Error if units is out of range or the rows are not all states (nothing written).
inline void binary_states(int64_t units, int64_t first, int64_t count, float* out);

// Spin states in the same order: unit i of state k is +1 if bit i of k is set, else -1.
//   requires, ensures, throws: as binary_states, with -1 / +1 instead of 0 / 1.
inline void spin_states(int64_t units, float* out);
inline void spin_states(int64_t units, int64_t first, int64_t count, float* out);

} // namespace ansatz

#include "ansatz/math_impl.hpp"

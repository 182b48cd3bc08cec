// See session_kernels.hpp.
#include "session_kernels.hpp"

#include <ansatz/math.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>

namespace rbm
{
namespace
{

// Written once and compiled three times: for the baseline instruction set and, on x86-64, for AVX2 and
// for AVX-512 (the products' 32 lanes in two 16-float registers instead of four 8-float ones: the same
// lanes, the same operations in the same order), chosen at run time. None uses fused multiply-adds (the
// plugin is built with -ffp-contract=off) and the reductions have fixed lanes and trees, so all give the
// same bits.

// p += e w over n values.
[[gnu::always_inline]] inline void add_scaled_body(double* p, double e, const float* w, int64_t n)
{
    for (int64_t j = 0; j < n; ++j)
        p[j] += e * w[j];
}

// log prod_j (1 + r_j z_j), each factor and each lane's product in float, and out_j = r_j z_j (the row
// after the change, for its commit). The caller bounds |log| of every lane's partial products below 80,
// so they stay normal floats.
// (The lanes live in four vectors of 8 floats, GCC's vector extension: registers on every instruction
// set, two SSE registers each on the baseline, the same element-wise operations.)
typedef float Floats8 __attribute__((vector_size(32)));

typedef double Doubles4 __attribute__((vector_size(32)));
typedef int32_t Ints8 __attribute__((vector_size(32)));
typedef int64_t Longs4 __attribute__((vector_size(32)));
typedef int32_t Ints4 __attribute__((vector_size(16)));
typedef float Floats4 __attribute__((vector_size(16)));
// AVX-512's (two SSE or AVX2 registers each elsewhere; only the AVX-512 kernels use them)
typedef float Floats16 __attribute__((vector_size(64)));
typedef double Doubles8 __attribute__((vector_size(64)));
typedef int32_t Ints16 __attribute__((vector_size(64)));
typedef int64_t Longs8 __attribute__((vector_size(64)));

// y 2^exponent = the product of 4 positive normal doubles d, y in [1, 16): each split exactly into its
// binary exponent and its mantissa in [1, 2) (from its bits), y the product of the mantissas.
[[gnu::always_inline]] inline double split_product(const Doubles4& d, int64_t* exponent)
{
    Longs4 bits;
    std::memcpy(&bits, &d, sizeof bits);
    const Longs4 exponents = (bits >> 52) - 1023; // (positive doubles)
    bits = (bits & 0x000fffffffffffffll) | 0x3ff0000000000000ll;
    Doubles4 m;
    std::memcpy(&m, &bits, sizeof m);
    *exponent = (exponents[0] + exponents[1]) + (exponents[2] + exponents[3]);
    return (m[0] * m[2]) * (m[1] * m[3]);
}

// prod_k lane[k] of kLanes positive floats within e^+-80 (lanes 8 g .. 8 g + 7 in a_g), however far from 1,
// as y 2^exponent with y in [1, 16): in double, lanes k, k + 4, ..., k + 28 multiplied by a fixed tree
// (each of the 4 products within e^+-640, normal doubles; lanes 4 c .. 4 c + 3 in the vector D_c, element
// by element), each of the 4 split exactly into its binary exponent and its mantissa in [1, 2) (from its
// bits), y the product of the mantissas. Also top: every lane < 2^top. The same bits on every instruction
// set (no fused multiply-adds: the kernels are not compiled with FMA).
[[gnu::always_inline]] inline double mantissa_product(const Floats8& a0, const Floats8& a1, const Floats8& a2,
                                                      const Floats8& a3, int32_t* top, int64_t* exponent)
{
    Ints8 e0, e1, e2, e3;
    std::memcpy(&e0, &a0, sizeof e0);
    std::memcpy(&e1, &a1, sizeof e1);
    std::memcpy(&e2, &a2, sizeof e2);
    std::memcpy(&e3, &a3, sizeof e3);
    e0 >>= 23; // (positive: the biased exponents)
    e1 >>= 23;
    e2 >>= 23;
    e3 >>= 23;
    e0 = e0 > e1 ? e0 : e1;
    e2 = e2 > e3 ? e2 : e3;
    e0 = e0 > e2 ? e0 : e2;
    int32_t largest = 0;
    for (int k = 0; k < 8; ++k)
        largest = std::max(largest, e0[k]);
    *top = largest - 126; // every lane < 2^top
#define ANSATZ_RBM_LOW(f) __builtin_convertvector(__builtin_shufflevector(f, f, 0, 1, 2, 3), Doubles4)
#define ANSATZ_RBM_HIGH(f) __builtin_convertvector(__builtin_shufflevector(f, f, 4, 5, 6, 7), Doubles4)
    // width 16: m[k] *= m[k + 16]; width 8: m[k] *= m[k + 8]; width 4: m[k] *= m[k + 4].
    Doubles4 d0 = ANSATZ_RBM_LOW(a0) * ANSATZ_RBM_LOW(a2), d1 = ANSATZ_RBM_HIGH(a0) * ANSATZ_RBM_HIGH(a2),
             d2 = ANSATZ_RBM_LOW(a1) * ANSATZ_RBM_LOW(a3), d3 = ANSATZ_RBM_HIGH(a1) * ANSATZ_RBM_HIGH(a3);
#undef ANSATZ_RBM_LOW
#undef ANSATZ_RBM_HIGH
    d0 *= d2;
    d1 *= d3;
    d0 *= d1;
    return split_product(d0, exponent);
}

// The 32 lanes' product as mantissa_product computes it, from lanes 0 .. 15 in a and 16 .. 31 in b (the
// AVX-512 layout): the same pairs multiplied in the same tree (p = lanes k x k + 16 for k < 8 is
// mantissa_product's [d0, d1], q = lanes k + 8 x k + 24 its [d2, d3]).
[[gnu::always_inline]] inline double mantissa_product_wide(const Floats16& a, const Floats16& b, int32_t* top,
                                                           int64_t* exponent)
{
    Ints16 ea, eb;
    std::memcpy(&ea, &a, sizeof ea);
    std::memcpy(&eb, &b, sizeof eb);
    ea >>= 23; // (positive: the biased exponents)
    eb >>= 23;
    ea = ea > eb ? ea : eb;
    Ints8 e8 = __builtin_shufflevector(ea, ea, 0, 1, 2, 3, 4, 5, 6, 7),
          f8 = __builtin_shufflevector(ea, ea, 8, 9, 10, 11, 12, 13, 14, 15);
    e8 = e8 > f8 ? e8 : f8;
    Ints4 e4 = __builtin_shufflevector(e8, e8, 0, 1, 2, 3), f4 = __builtin_shufflevector(e8, e8, 4, 5, 6, 7);
    e4 = e4 > f4 ? e4 : f4;
    *top = std::max(std::max(e4[0], e4[1]), std::max(e4[2], e4[3])) - 126; // every lane < 2^top
    Doubles8 p = __builtin_convertvector(__builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7), Doubles8) *
                 __builtin_convertvector(__builtin_shufflevector(b, b, 0, 1, 2, 3, 4, 5, 6, 7), Doubles8);
    const Doubles8 q =
        __builtin_convertvector(__builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15), Doubles8) *
        __builtin_convertvector(__builtin_shufflevector(b, b, 8, 9, 10, 11, 12, 13, 14, 15), Doubles8);
    p *= q; // [d0 d2, d1 d3]
    const Doubles4 d0 = __builtin_shufflevector(p, p, 0, 1, 2, 3),
                   d1 = __builtin_shufflevector(p, p, 4, 5, 6, 7);
    return split_product(d0 * d1, exponent);
}

// log y of 4 positive normal doubles (the products give y in [1, 16) from float lanes, [1, 2^32) from
// double lanes), element by element, within 2 ulp of max(log y, log 16) (against logl on 2e7 points:
// 1.10 ulp in [1, 16), 1.18 in [1, 2^32)): y = 2^k f with f in
// [sqrt(1/2), sqrt(2)] (from the bits, exactly), s = (f - 1) / (f + 1),
// log f = 2 (s + s^3 / 3 + ... + s^21 / 21) (|s| <= 0.172: the rest is below 1e-17), + k log 2. Plain
// multiplies, adds and one division on each element, so the same bits one element at a time or four,
// on every instruction set; cheaper than a call of log per row, and four rows' at once.
[[gnu::always_inline]] inline void log_small(const Doubles4& y, Doubles4& out)
{
    Longs4 bits;
    std::memcpy(&bits, &y, sizeof bits);
    Longs4 k = (bits >> 52) - 1023;
    bits = (bits & 0x000fffffffffffffll) | 0x3ff0000000000000ll;
    Doubles4 f;
    std::memcpy(&f, &bits, sizeof f);
    const Longs4 big = f > std::numbers::sqrt2; // -1 where true
    f = big ? f * 0.5 : f;
    k -= big;
    const Doubles4 s = (f - 1.0) / (f + 1.0), z = s * s;
    // p = 2/3 + 2/5 z + ... + 2/21 z^9 by Estrin's scheme: four levels of dependent multiply-adds where
    // Horner's rule takes nine (this log is on local_step's chain from one round to the next)
    const Doubles4 z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
    const Doubles4 q0 = z * (2.0 / 5) + 2.0 / 3, q1 = z * (2.0 / 9) + 2.0 / 7, q2 = z * (2.0 / 13) + 2.0 / 11,
                   q3 = z * (2.0 / 17) + 2.0 / 15, q4 = z * (2.0 / 21) + 2.0 / 19;
    const Doubles4 p = ((q3 * z2 + q2) * z4 + (q1 * z2 + q0)) + q4 * z8;
    out = (2.0 * s + s * (z * p)) + __builtin_convertvector(k, Doubles4) * std::numbers::ln2;
}

// lane *= 1 + r z over the 8 (Floats8) or 16 (Floats16, AVX-512) units of a register, and (Store) out =
// r z.
template <bool Store, class Floats>
[[gnu::always_inline]] inline void multiply_factors(const float* r, const float* z, float* out, Floats& lane)
{
    Floats rz, zk;
    std::memcpy(&rz, r, sizeof rz);
    std::memcpy(&zk, z, sizeof zk);
    rz *= zk;
    if constexpr (Store)
        std::memcpy(out, &rz, sizeof rz);
    lane *= 1.0f + rz;
}

// The units [j, n) of a partial lane block, one by one into lanes 0, 1, ... (kLanes lanes of type Lane,
// float or double, in Lanes registers, in order), and (Store) out = r z.
template <bool Store, class Lane, class Lanes>
[[gnu::always_inline]] inline void multiply_partial_block(const float* r, const float* z, float* out,
                                                          int64_t j, int64_t n, Lanes* lanes)
{
    Lane lane[kLanes];
    static_assert(sizeof lane % sizeof(Lanes) == 0);
    std::memcpy(lane, lanes, sizeof lane);
    for (int k = 0; j < n; ++j, ++k)
    {
        const float rz = r[j] * z[j];
        if constexpr (Store)
            out[j] = rz;
        lane[k] *= static_cast<Lane>(1.0f + rz);
    }
    std::memcpy(lanes, lane, sizeof lane);
}

// The same in the AVX-512 layout (lanes 0 .. 15 in a, 16 .. 31 in b): the same factors into the same
// lanes in the same order.
template <bool Store>
[[gnu::always_inline]] inline double product_float_wide(const float* r, const float* z, float* out, int64_t n,
                                                        int32_t* top, int64_t* exponent)
{
    static_assert(kLanes == 32);
    Floats16 lanes[2] = { Floats16{} + 1.0f, Floats16{} + 1.0f };
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes)
    {
        multiply_factors<Store>(r + j, z + j, out + j, lanes[0]);
        multiply_factors<Store>(r + j + 16, z + j + 16, out + j + 16, lanes[1]);
    }
    if (j < n) // a partial lane block: its units one by one
        multiply_partial_block<Store, float>(r, z, out, j, n, lanes);
    return mantissa_product_wide(lanes[0], lanes[1], top, exponent);
}

// The same as y 2^exponent, y in [1, 16) (mantissa_product), for callers that take the logs of several
// (Wide: the AVX-512 layout, product_float_wide).
template <bool Store, bool Wide>
[[gnu::always_inline]] inline double product_float_body(const float* r, const float* z, float* out, int64_t n,
                                                        int32_t* top, int64_t* exponent)
{
    static_assert(kLanes == 32);
    if constexpr (Wide)
        return product_float_wide<Store>(r, z, out, n, top, exponent);
    Floats8 lanes[4];
    for (Floats8& lane : lanes)
        lane = Floats8{} + 1.0f;
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes)
        for (int c = 0; c < 4; ++c)
            multiply_factors<Store>(r + j + 8 * c, z + j + 8 * c, out + j + 8 * c, lanes[c]);
    if (j < n) // a partial lane block: its units one by one
        multiply_partial_block<Store, float>(r, z, out, j, n, lanes);
    return mantissa_product(lanes[0], lanes[1], lanes[2], lanes[3], top, exponent);
}

template <bool Store, bool Wide>
[[gnu::always_inline]] inline double log_product_float_body(const float* r, const float* z, float* out,
                                                            int64_t n, int32_t* top)
{
    int64_t exponent = 0;
    const double y = product_float_body<Store, Wide>(r, z, out, n, top, &exponent);
    Doubles4 ys = Doubles4{} + 1.0, logs;
    ys[0] = y;
    log_small(ys, logs);
    return logs[0] + static_cast<double>(exponent) * std::numbers::ln2;
}

// The biased binary exponents of 4 or 8 positive normal doubles (in as many 64-bit integers), and their
// mantissas in [1, 2), exactly, from their bits.
template <class Doubles, class Longs>
[[gnu::always_inline]] inline void split_lanes(const Doubles& x, Longs& biased, Doubles& mantissa)
{
    Longs bits;
    std::memcpy(&bits, &x, sizeof bits);
    biased = bits >> 52; // (positive doubles)
    bits = (bits & 0x000fffffffffffffll) | 0x3ff0000000000000ll;
    std::memcpy(&mantissa, &bits, sizeof mantissa);
}

// prod_k lane[k] of kLanes positive normal doubles (lanes each within e^+-700) as y 2^exponent: each lane
// split exactly into its binary exponent and its mantissa in [1, 2), y the product of the mantissas (in
// [1, 2^32)) by a fixed tree: m[k] *= m[k + width] for width 16, 8, 4, 2, 1. Also top: every lane <
// 2^top. Lanes 4 c .. 4 c + 3 in a[c] (AVX-512: lanes 8 c .. 8 c + 7 in wide[c]); the same products in
// the same order either way.
[[gnu::always_inline]] inline double mantissa_of_lanes(const Doubles4* a, int32_t* top, int64_t* exponent)
{
    static_assert(kLanes == 32);
    Doubles4 m[8];
    Longs4 biased[8], largest = Longs4{}, sum = Longs4{};
    for (int c = 0; c < 8; ++c)
    {
        split_lanes(a[c], biased[c], m[c]);
        largest = largest > biased[c] ? largest : biased[c];
        sum += biased[c];
    }
    for (int c = 0; c < 4; ++c) // width 16
        m[c] *= m[c + 4];
    m[0] *= m[2]; // width 8
    m[1] *= m[3];
    m[0] *= m[1]; // width 4
    largest[0] = std::max(std::max(largest[0], largest[1]), std::max(largest[2], largest[3]));
    *top = static_cast<int32_t>(largest[0] - 1022);
    *exponent = (sum[0] + sum[1]) + (sum[2] + sum[3]) - 1023 * kLanes;
    return (m[0][0] * m[0][2]) * (m[0][1] * m[0][3]); // widths 2 and 1
}

// The same from the AVX-512 layout.
[[gnu::always_inline]] inline double mantissa_of_lanes_wide(const Doubles8* wide, int32_t* top,
                                                            int64_t* exponent)
{
    static_assert(kLanes == 32);
    Doubles8 m[4];
    Longs8 biased[4], largest = Longs8{}, sum = Longs8{};
    for (int c = 0; c < 4; ++c)
    {
        split_lanes(wide[c], biased[c], m[c]);
        largest = largest > biased[c] ? largest : biased[c];
        sum += biased[c];
    }
    m[0] *= m[2]; // width 16
    m[1] *= m[3];
    m[0] *= m[1]; // width 8
    Doubles4 low = __builtin_shufflevector(m[0], m[0], 0, 1, 2, 3),
             high = __builtin_shufflevector(m[0], m[0], 4, 5, 6, 7);
    low *= high; // width 4
    Longs4 most = __builtin_shufflevector(largest, largest, 0, 1, 2, 3),
           rest = __builtin_shufflevector(largest, largest, 4, 5, 6, 7);
    most = most > rest ? most : rest;
    const Longs4 total =
        __builtin_shufflevector(sum, sum, 0, 1, 2, 3) + __builtin_shufflevector(sum, sum, 4, 5, 6, 7);
    *top = static_cast<int32_t>(std::max(std::max(most[0], most[1]), std::max(most[2], most[3])) - 1022);
    *exponent = (total[0] + total[1]) + (total[2] + total[3]) - 1023 * kLanes;
    return (low[0] * low[2]) * (low[1] * low[3]); // widths 2 and 1
}

// low *= the first half of a register of floats in double, high *= the second (AVX2: 8 floats;
// AVX-512: 16).
[[gnu::always_inline]] inline void multiply_halves(const Floats8& f, Doubles4& low, Doubles4& high)
{
    low *= __builtin_convertvector(__builtin_shufflevector(f, f, 0, 1, 2, 3), Doubles4);
    high *= __builtin_convertvector(__builtin_shufflevector(f, f, 4, 5, 6, 7), Doubles4);
}
[[gnu::always_inline]] inline void multiply_halves(const Floats16& f, Doubles8& low, Doubles8& high)
{
    low *= __builtin_convertvector(__builtin_shufflevector(f, f, 0, 1, 2, 3, 4, 5, 6, 7), Doubles8);
    high *= __builtin_convertvector(__builtin_shufflevector(f, f, 8, 9, 10, 11, 12, 13, 14, 15), Doubles8);
}

// low, high *= the factors 1 + r z (in float) of the units of a register of floats, in double (low the
// first half's lanes, high the second's), and out = r z.
template <class Floats, class Doubles>
[[gnu::always_inline]] inline void multiply_factors_double(const float* r, const float* z, float* out,
                                                           Doubles& low, Doubles& high)
{
    Floats rz, zk;
    std::memcpy(&rz, r, sizeof rz);
    std::memcpy(&zk, z, sizeof zk);
    rz *= zk;
    std::memcpy(out, &rz, sizeof rz);
    multiply_halves(1.0f + rz, low, high);
}

// The product of log_product_float with each lane's product in double, as y 2^exponent (y in [1, 2^32):
// mantissa_of_lanes), and out = r z: the caller bounds every factor below e^80 (a float) and a lane's
// product below e^700 (out may then overflow, and is not committed). Unit j goes to lane j mod kLanes, in
// the same order on every instruction set (Wide: AVX-512's registers of 8 doubles).
template <bool Wide>
[[gnu::always_inline]] inline double product_double_body(const float* r, const float* z, float* out,
                                                         int64_t n, int32_t* top, int64_t* exponent)
{
    static_assert(kLanes == 32);
    int64_t j = 0;
    if constexpr (Wide)
    {
        Doubles8 b[4] = { Doubles8{} + 1.0, Doubles8{} + 1.0, Doubles8{} + 1.0, Doubles8{} + 1.0 };
        for (; j + kLanes <= n; j += kLanes)
        {
            multiply_factors_double<Floats16>(r + j, z + j, out + j, b[0], b[1]);
            multiply_factors_double<Floats16>(r + j + 16, z + j + 16, out + j + 16, b[2], b[3]);
        }
        if (j < n) // a partial lane block: its units one by one
            multiply_partial_block<true, double>(r, z, out, j, n, b);
        return mantissa_of_lanes_wide(b, top, exponent);
    }
    else
    {
        Doubles4 a[8];
        for (Doubles4& x : a)
            x = Doubles4{} + 1.0;
        for (; j + kLanes <= n; j += kLanes)
        {
            multiply_factors_double<Floats8>(r + j, z + j, out + j, a[0], a[1]);
            multiply_factors_double<Floats8>(r + j + 8, z + j + 8, out + j + 8, a[2], a[3]);
            multiply_factors_double<Floats8>(r + j + 16, z + j + 16, out + j + 16, a[4], a[5]);
            multiply_factors_double<Floats8>(r + j + 24, z + j + 24, out + j + 24, a[6], a[7]);
        }
        if (j < n)
            multiply_partial_block<true, double>(r, z, out, j, n, a);
        return mantissa_of_lanes(a, top, exponent);
    }
}

// log prod_j (1 + r_j z_j) with the lanes in double (product_double_body), its log as log_product_float's.
template <bool Wide>
[[gnu::always_inline]] inline double log_product_double_body(const float* r, const float* z, float* out,
                                                             int64_t n, int32_t* top)
{
    int64_t exponent = 0;
    Doubles4 ys = Doubles4{} + 1.0, logs;
    ys[0] = product_double_body<Wide>(r, z, out, n, top, &exponent);
    log_small(ys, logs);
    return logs[0] + static_cast<double>(exponent) * std::numbers::ln2;
}

// r *= z over n units: the commit of a change whose proposal did not write r z.
[[gnu::always_inline]] inline void scale_body(float* r, const float* z, int64_t n)
{
    for (int64_t j = 0; j < n; ++j)
        r[j] *= z[j];
}

// Bounds of q_j = log r_j from the binary exponents E_j of the floats r_j (q_j in [E_j, E_j + 1) log 2):
// bound[0] = max_j |q_j| as a multiple of log 2 (an exact integer).

// largest = max(largest, bound of |q| in units of log 2) over 8 units.
[[gnu::always_inline]] inline void add_q_bounds(const float* r, Ints8& largest)
{
    Ints8 bits;
    std::memcpy(&bits, r, sizeof bits);
    const Ints8 e = ((bits >> 23) & 0xff) - 127, up = e + 1;
    const Ints8 size = up > -e ? up : -e;
    largest = size > largest ? size : largest;
}

[[gnu::always_inline]] inline void q_bounds_body(const float* r, int64_t n, int32_t* bound)
{
    static_assert(kLanes == 32);
    Ints8 largest[4] = {};
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes)
        for (int k = 0; k < 4; ++k)
            add_q_bounds(r + j + 8 * k, largest[k]);
    int32_t most[kLanes];
    std::memcpy(most, largest, sizeof most);
    for (int k = 0; j < n; ++j, ++k)
    {
        int32_t bits;
        std::memcpy(&bits, &r[j], sizeof bits);
        const int32_t e = ((bits >> 23) & 0xff) - 127;
        most[k] = std::max(most[k], std::max(e + 1, -e));
    }
    bound[0] = *std::max_element(most, most + kLanes);
}

#ifdef ANSATZ_MATH_AVX2
__attribute__((target("avx2,fma"))) float exp_one_avx2(float x)
{
    return _mm256_cvtss_f32(ansatz::detail::math::avx2::exp(_mm256_set1_ps(x)));
}
#endif

// e^x[k] for k < 8 as ansatz::exp rounds them (its AVX2 + FMA kernel on one vector where ansatz::exp
// uses that kernel, else the call itself).
#ifdef ANSATZ_MATH_AVX2
__attribute__((target("avx2,fma"))) void exp_group_avx2(float* x)
{
    _mm256_storeu_ps(x, ansatz::detail::math::avx2::exp(_mm256_loadu_ps(x)));
}
#endif
inline void exp_group(float* x)
{
#ifdef ANSATZ_MATH_AVX2
    if (ansatz::detail::math::avx2::available())
        return exp_group_avx2(x);
#endif
    ansatz::exp(x, 8);
}

// e^x[k] for k < 4 as ansatz::exp rounds them. (GCC notes that exp_group<true> handles an AVX vector in a
// function compiled without AVX; it is only ever inlined into the AVX-512 kernels.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
template <bool Wide>
[[gnu::always_inline]] inline Floats4 exp_group(const Floats4& x)
{
#ifdef ANSATZ_MATH_AVX2
    if constexpr (Wide) // (the AVX-512 kernels are compiled with AVX2 and FMA too: inlined, in registers)
        if (ansatz::detail::math::avx2::available())
        {
            Floats8 eight = __builtin_shufflevector(x, Floats4{}, 0, 1, 2, 3, 4, 5, 6, 7);
            __m256 v;
            std::memcpy(&v, &eight, sizeof v);
            v = ansatz::detail::math::avx2::exp(v);
            std::memcpy(&eight, &v, sizeof v);
            return __builtin_shufflevector(eight, eight, 0, 1, 2, 3);
        }
#endif
    float eight[8] = {};
    std::memcpy(eight, &x, sizeof x);
    exp_group(eight);
    Floats4 out;
    std::memcpy(&out, eight, sizeof out);
    return out;
}
#pragma GCC diagnostic pop

// Rounds [t, end) of `count` <= kGroup rows in lockstep (round t of every row, then round t + 1, ...).
// This loop runs a row's round when it is a flip (new value 1 - v_i, v_i 0 or 1) whose product stays in the
// float lanes (or in double lanes: log_product_double) and whose commit keeps max |q| below max_q; at the
// first round in which some row's is not, it runs the others' and returns that round with those rows in
// *pending (bit g: row g), for the caller to run their round another way; else it returns end with *pending
// 0. Each row's round: the delta session_delta computes for it (the same expression, the same kernels:
// product_float and log_small are log_product_float's steps), accepted when uniforms[t] < e^min(0, -delta) as
// ansatz::exp rounds it, and when accepted what local_commit does (the proposal wrote r E into the other
// half: the commit flips the half). The rows' chains of dependent work (product, log, delta, exponential,
// decision, the next round's product) overlap; a round's logs are one vector of doubles and its exponentials
// one vector of floats; the decisions are selects, not branches (a coin flip the predictor cannot learn).
// Each row's r halves stay in the core's cache through the call. The number of rows is a constant
// (flip_group_of dispatches), so the loops over them unroll and their arrays stay in registers.
// The state of up to four rows of flip_group, row g in element g. The decisions select with masks, so
// the next round's loads wait on data, not on a branch the predictor gets wrong at every fifth proposal.
// (Written as selects on scalars, GCC branched on the decision; the next round's work then ran
// speculatively and was thrown away at every misprediction.)
struct GroupState
{
    Doubles4 log_sum{}, qmax{}, qlane{};
    Longs4 side{}, committed{};
    Doubles4 beta{}, t{}; // (constant: the rows' beta and |beta|)
};

template <int Count>
[[gnu::always_inline]] inline void load_group(const FlipRun* runs, GroupState& state)
{
    for (int g = 0; g < Count; ++g)
    {
        state.log_sum[g] = runs[g].log_sum;
        state.qmax[g] = runs[g].qmax;
        state.qlane[g] = runs[g].qlane;
        state.side[g] = runs[g].side;
        state.beta[g] = runs[g].beta;
        state.t[g] = runs[g].t;
    }
}

template <int Count>
[[gnu::always_inline]] inline void store_group(const GroupState& state, FlipRun* runs)
{
    for (int g = 0; g < Count; ++g)
    {
        runs[g].log_sum = state.log_sum[g];
        runs[g].qmax = state.qmax[g];
        runs[g].qlane = state.qlane[g];
        runs[g].side = static_cast<int>(state.side[g]);
        runs[g].committed = runs[g].committed || state.committed[g] != 0;
    }
}

// Round t of Count <= 4 rows: runs it for every row whose round is one of flip_group's and returns the
// others (bit g: row g), whose state it leaves as it was.
template <int Count, bool Wide>
[[gnu::always_inline]] inline uint32_t flip_round(FlipRun* runs, GroupState& state, int64_t t, int64_t h)
{
    static_assert(Count >= 1 && Count <= 4);
    // The rows' values at their sites, in vectors: the tests and bounds below run on all rows at once.
    int64_t site[Count];
    Floats4 now = Floats4{} + 0.5f; // (rows past Count: neither 0 nor 1, so never one of these rounds)
    Doubles4 row_max{}, row_lane{}, bias{};
    for (int g = 0; g < Count; ++g)
    {
        const FlipRun& s = runs[g];
        const int64_t i = s.sites[t]; // (in [0, D): local_step checked every site)
        site[g] = i;
        now[g] = s.v[i];
        row_max[g] = s.row_max[i];
        row_lane[g] = s.row_lane[i];
        bias[g] = s.a[i];
    }
    const Ints4 low = now == 0.0f;
    const Doubles4 dq = state.t * row_max;
    // session_delta's float-lane case (lane < 80), or its double-lane case (lane < 700 with the factors
    // floats: qmax + |beta| max_j |W_ij| < 80, which is qmax + dq), with a commit without a refresh (qmax +
    // dq < max_q, so qmax < max_q) and no estimate of the bounds first (it comes only when qmax + dq >= 80)
    const Doubles4 lane = state.qlane + state.t * row_lane;
    const Longs4 in_range = (lane < session_max_lane_double) & (state.qmax + dq < session_max_q);
    const Ints4 flip = low | (now == 1.0f);
    const Longs4 runs_here = in_range & __builtin_convertvector(flip, Longs4);
    const Longs4 in_double = runs_here & ~(lane < session_max_lane_float);
    uint32_t others = 0;  // the rows whose round t is not one of flip_group's
    uint32_t doubles = 0; // the rows whose product goes in double lanes
    for (int g = 0; g < Count; ++g)
    {
        const FlipRun& s = runs[g];
        const bool mismatch = s.values && s.values[t] != 1.0f - now[g]; // (new values given: not a flip)
        const bool other = runs_here[g] == 0 || mismatch;
        others |= (other ? 1u : 0u) << g;
        doubles |= (!other && in_double[g] != 0 ? 1u : 0u) << g; // (a row left to the caller: no product)
    }
    const float* ex[Count];
    const float* from[Count];
    float* to[Count];
    for (int g = 0; g < Count; ++g)
    {
        const FlipRun& s = runs[g];
        ex[g] = (low[g] ? s.up : s.down) + site[g] * h;
        // r is half[side], the proposal writes r E into the other half (by address arithmetic: no branch
        // on side)
        const std::uintptr_t h0 = reinterpret_cast<std::uintptr_t>(s.half[0]),
                             h1 = reinterpret_cast<std::uintptr_t>(s.half[1]);
        const std::uintptr_t one = static_cast<std::uintptr_t>(state.side[g]); // 0 or 1
        from[g] = reinterpret_cast<const float*>(h0 + one * (h1 - h0));
        to[g] = reinterpret_cast<float*>(h1 + one * (h0 - h1));
    }
    Ints4 top{};
    Longs4 exponent{};
    Doubles4 y = Doubles4{} + 1.0, numerator{};
    for (int g = 0; g < Count; ++g)
    {
        int32_t most = 0;
        int64_t power = 0;
        if (doubles >> g & 1) // (lanes in double: their product, its log with the others')
            y[g] = product_double_body<Wide>(from[g], ex[g], to[g], h, &most, &power);
        else if (!(others >> g & 1))
            y[g] = product_float_body<true, Wide>(from[g], ex[g], to[g], h, &most, &power);
        top[g] = most;
        exponent[g] = power;
    }
    Doubles4 logs;
    log_small(y, logs); // log_product_float's logs, four at once
    numerator = logs + __builtin_convertvector(exponent, Doubles4) * std::numbers::ln2;
    // delta as session_delta computes it, element by element: the visible term -beta a_i d (d = u - v_i),
    // minus the hidden part's change
    const Doubles4 change = __builtin_convertvector(low, Longs4) ? Doubles4{} + 1.0 : Doubles4{} - 1.0;
    const Doubles4 visible = -state.beta * bias * change;
    const Floats4 delta = __builtin_convertvector(visible - (numerator - state.log_sum), Floats4);
    const Floats4 minus = -delta;
    const Floats4 exponent_of = minus >= 0.0f ? Floats4{} : minus; // e^0 = 1; NaN stays NaN: rejected
    Floats4 uniform{};
    for (int g = 0; g < Count; ++g)
        uniform[g] = runs[g].uniforms[t];
    const Floats4 bound = exp_group<Wide>(exponent_of);
    Ints4 ran{}; // -1 for the rows whose round ran here
    for (int g = 0; g < Count; ++g)
        ran[g] = others >> g & 1 ? 0 : -1;
    const Ints4 accept = (uniform < bound) & ran; // (-1 or 0)
    const Longs4 take = __builtin_convertvector(accept, Longs4);
    for (int g = 0; g < Count; ++g)
    {
        if (others >> g & 1) // (a branch the predictor gets right: rare)
            continue;
        const FlipRun& s = runs[g];
        s.accepted[t] = static_cast<uint8_t>(accept[g] & 1);
        // v_i = accepted ? (v_i == 0 ? 1 : 0) : v_i, in the bits (a -0 stays -0 when rejected)
        uint32_t bits, flipped;
        const float value = low[g] ? 1.0f : 0.0f;
        std::memcpy(&bits, &now[g], sizeof bits);
        std::memcpy(&flipped, &value, sizeof flipped);
        bits ^= static_cast<uint32_t>(accept[g]) & (bits ^ flipped);
        std::memcpy(&s.v[site[g]], &bits, sizeof bits);
    }
    state.side ^= take & 1;
    state.log_sum = take ? numerator : state.log_sum;
    state.qmax += take ? dq : Doubles4{};
    state.qlane = take ? __builtin_convertvector(top, Doubles4) * std::numbers::ln2 : state.qlane;
    state.committed |= take;
    return others;
}

// Rounds [t, end) of Count rows in lockstep (round t of every row, then round t + 1, ...): each round
// through flip_round; at the first round in which some row's is not flip_group's, that round's bits in
// *pending and its index returned (the other rows' round t done), else end and *pending 0.
template <int Count, bool Wide>
[[gnu::always_inline]] inline int64_t flip_group_body(FlipRun* runs, int64_t t, int64_t end,
                                                      uint32_t* pending)
{
    const int64_t h = runs[0].h;
    GroupState state;
    load_group<Count>(runs, state);
    *pending = 0;
    for (; t < end; ++t)
        if (const uint32_t others = flip_round<Count, Wide>(runs, state, t, h))
        {
            *pending = others;
            break;
        }
    store_group<Count>(state, runs);
    return t;
}

template <bool Wide>
[[gnu::always_inline]] inline int64_t flip_group_of(FlipRun* runs, int count, int64_t t, int64_t end,
                                                    uint32_t* pending)
{
    static_assert(kGroup == 4);
    switch (count)
    {
    case 4:
        return flip_group_body<4, Wide>(runs, t, end, pending);
    case 3:
        return flip_group_body<3, Wide>(runs, t, end, pending);
    case 2:
        return flip_group_body<2, Wide>(runs, t, end, pending);
    default:
        return flip_group_body<1, Wide>(runs, t, end, pending);
    }
}

#define ANSATZ_RBM_KERNELS(suffix, attribute, wide)                                                          \
    attribute void add_scaled_##suffix(double* p, double e, const float* w, int64_t n)                       \
    {                                                                                                        \
        add_scaled_body(p, e, w, n);                                                                         \
    }                                                                                                        \
    attribute double log_product_float_##suffix(const float* r, const float* z, float* out, int64_t n,       \
                                                int32_t* top)                                                \
    {                                                                                                        \
        return log_product_float_body<true, wide>(r, z, out, n, top);                                        \
    }                                                                                                        \
    attribute double log_product_double_##suffix(const float* r, const float* z, float* out, int64_t n,      \
                                                 int32_t* top)                                               \
    {                                                                                                        \
        return log_product_double_body<wide>(r, z, out, n, top);                                             \
    }                                                                                                        \
    attribute void q_bounds_##suffix(const float* r, int64_t n, int32_t* bound)                              \
    {                                                                                                        \
        q_bounds_body(r, n, bound);                                                                          \
    }                                                                                                        \
    attribute double log_product_float_only_##suffix(const float* r, const float* z, float* out, int64_t n,  \
                                                     int32_t* top)                                           \
    {                                                                                                        \
        return log_product_float_body<false, wide>(r, z, out, n, top);                                       \
    }                                                                                                        \
    attribute void scale_##suffix(float* r, const float* z, int64_t n)                                       \
    {                                                                                                        \
        scale_body(r, z, n);                                                                                 \
    }                                                                                                        \
    attribute int64_t flip_group_##suffix(FlipRun* runs, int count, int64_t t, int64_t end,                  \
                                          uint32_t* pending)                                                 \
    {                                                                                                        \
        return flip_group_of<wide>(runs, count, t, end, pending);                                            \
    }

ANSATZ_RBM_KERNELS(base, , false)
#if defined(__x86_64__) && defined(__GNUC__)
ANSATZ_RBM_KERNELS(avx2, __attribute__((target("avx2"))), false)
ANSATZ_RBM_KERNELS(avx512, __attribute__((target("avx2,fma,avx512f"))), true)
#endif
#undef ANSATZ_RBM_KERNELS

} // namespace

float exp_one(float x)
{
#ifdef ANSATZ_MATH_AVX2
    if (ansatz::detail::math::avx2::available())
        return exp_one_avx2(x);
#endif
    ansatz::exp(&x, 1);
    return x;
}

const SessionKernels* session_kernels_for(Isa isa)
{
    static const SessionKernels base{ add_scaled_base, log_product_float_base,  log_product_float_only_base,
                                      scale_base,      log_product_double_base, q_bounds_base,
                                      flip_group_base };
    switch (isa)
    {
    case Isa::base:
        return &base;
#if defined(__x86_64__) && defined(__GNUC__)
    case Isa::avx2:
    {
        static const SessionKernels avx2{
            add_scaled_avx2, log_product_float_avx2,  log_product_float_only_avx2,
            scale_avx2,      log_product_double_avx2, q_bounds_avx2,
            flip_group_avx2
        };
        return __builtin_cpu_supports("avx2") ? &avx2 : nullptr;
    }
    case Isa::avx512:
    {
        static const SessionKernels avx512{
            add_scaled_avx512, log_product_float_avx512,  log_product_float_only_avx512,
            scale_avx512,      log_product_double_avx512, q_bounds_avx512,
            flip_group_avx512
        };
        const bool runs = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
                          __builtin_cpu_supports("fma");
        return runs ? &avx512 : nullptr;
    }
#endif
    default:
        return nullptr;
    }
}

const SessionKernels& session_kernels()
{
    static const SessionKernels& widest = []() -> const SessionKernels& {
        for (const Isa isa : { Isa::avx512, Isa::avx2 })
            if (const SessionKernels* k = session_kernels_for(isa))
                return *k;
        return *session_kernels_for(Isa::base);
    }();
    return widest;
}

} // namespace rbm

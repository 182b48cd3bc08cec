// ansatz/math_impl.hpp -- the bodies of ansatz/math.hpp (include that header, not this one).
//
// Vector kernels are templates on the xsimd architecture A, instantiated for xsimd::default_arch,
// the best instruction set the including file is compiled for. The kernels' symbols therefore differ
// between instruction sets, and a plugin exports only its entry point (ansatz_plugin.map), so
// libraries built with different flags never share a kernel. Within one library, compile every file
// with the same -m flags, as for any inline code: the public functions' names do not carry the arch.
//
// exp is written out here rather than taken from xsimd: xsimd 8.1's float exp returns +inf from
// x = 88.38 on although e^x stays finite up to x = 88.72, and flushes subnormal results to 0. This
// one scales by 2^k in two steps (2^k1 * 2^k2, both normal floats), which covers the whole range.
// NaN tests use xsimd::isnan, never x != x: xsimd 8.1 compiles != with _CMP_NEQ_OQ for AVX and
// AVX-512, which is false for NaN (SSE2's cmpneq is true), so x != x finds no NaN with -march=native.
#pragma once

#include "ansatz/error.hpp"
#include "ansatz/math.hpp"
#include "ansatz/random.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <xsimd/xsimd.hpp>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ansatz
{
namespace detail::math
{

using arch = xsimd::default_arch;
static_assert(arch::supported(), "ansatz/math.hpp needs an instruction set that xsimd supports (x86-64: "
                                 "SSE2 or later; ARM: NEON)");

template <class A>
using floats = xsimd::batch<float, A>;

// e^x, within 2 ulp over the whole float range (Cephes' expf polynomial on r = x - k ln 2).
template <class A>
inline floats<A> exp(const floats<A>& x) noexcept
{
    using B = floats<A>;
    using I = xsimd::batch<int32_t, A>;
    // Below -104, e^x < 2^-150 rounds to 0; above 88.75, e^x > FLT_MAX. Clamping keeps k in
    // [-150, 128], so k1, k2 are in [-75, 64] and 2^k1, 2^k2 are normal floats.
    const B xc = xsimd::min(xsimd::max(x, B(-104.0f)), B(88.75f));
    // k = round(x / ln 2): adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits.
    const B shifter(12582912.0f);
    const B t = xc * B(1.44269504088896341f) + shifter;
    const B k = t - shifter;
    const I ki = xsimd::bitwise_cast<I>(t) - xsimd::bitwise_cast<I>(shifter);
    // r = x - k ln 2 in two parts (0.693359375 has 9 bits: k * it is exact), |r| <= ln 2 / 2.
    B r = xsimd::fnma(k, B(0.693359375f), xc);
    r = xsimd::fnma(k, B(-2.12194440e-4f), r);
    B p(1.9875691500e-4f);
    p = xsimd::fma(p, r, B(1.3981999507e-3f));
    p = xsimd::fma(p, r, B(8.3334519073e-3f));
    p = xsimd::fma(p, r, B(4.1665795894e-2f));
    p = xsimd::fma(p, r, B(1.6666665459e-1f));
    p = xsimd::fma(p, r, B(5.0000001201e-1f));
    p = xsimd::fma(p, r * r, r) + B(1.0f); // e^r
    const I k1 = ki >> 1;
    const I k2 = ki - k1;
    const B scale1 = xsimd::bitwise_cast<B>((k1 + I(127)) << 23);
    const B scale2 = xsimd::bitwise_cast<B>((k2 + I(127)) << 23);
    const B y = (p * scale1) * scale2; // p * scale1 is exact; one rounding, also to a subnormal
    return xsimd::select(xsimd::isnan(x), x, y);
}

template <class A>
inline floats<A> log1p(const floats<A>& x) noexcept
{
    return xsimd::log1p(x);
}

// 1 / (1 + e^-x) as 1 / (1 + z) for x >= 0 and z / (1 + z) for x < 0, z = e^-|x| in [0, 1].
template <class A>
inline floats<A> sigmoid(const floats<A>& x) noexcept
{
    using B = floats<A>;
    const B z = detail::math::exp(-xsimd::abs(x));
    return xsimd::select(x >= B(0.0f), B(1.0f), z) / (B(1.0f) + z);
}

template <class A>
inline floats<A> softplus(const floats<A>& x) noexcept
{
    using B = floats<A>;
    const B z = detail::math::exp(-xsimd::abs(x));
    return xsimd::max(x, B(0.0f)) + xsimd::log1p(z);
}

// tanh on |x| (Cephes' tanhf), then the sign of x put back by its bit (so tanh(-0) = -0 and NaN stays NaN).
template <class A>
inline floats<A> tanh(const floats<A>& x) noexcept
{
    using B = floats<A>;
    const B ax = xsimd::abs(x);
    const B e = detail::math::exp(ax + ax); // +inf from |x| = 44.4 on: 2 / inf = 0
    const B big = B(1.0f) - B(2.0f) / (e + B(1.0f));
    const B z = ax * ax;
    B p(-5.70498872745e-3f);
    p = xsimd::fma(p, z, B(2.06390887954e-2f));
    p = xsimd::fma(p, z, B(-5.37397155531e-2f));
    p = xsimd::fma(p, z, B(1.33314422036e-1f));
    p = xsimd::fma(p, z, B(-3.33332819422e-1f));
    const B small = xsimd::fma(p * z, ax, ax);
    return xsimd::select(ax >= B(0.625f), big, small) | xsimd::bitofsign(x);
}

// out[i] = f(x[i]): whole batches, then the last n % size elements in a batch padded with zeros, so
// that every element goes through the same code.
template <class A, class F>
inline void map(const float* x, float* out, int64_t n, F f) noexcept
{
    using B = floats<A>;
    constexpr int64_t size = static_cast<int64_t>(B::size);
    int64_t i = 0;
    for (; i + size <= n; i += size)
        f(B::load_unaligned(x + i)).store_unaligned(out + i);
    if (i < n)
    {
        float buffer[size] = {};
        std::copy(x + i, x + n, buffer);
        f(B::load_unaligned(buffer)).store_unaligned(buffer);
        std::copy(buffer, buffer + (n - i), out + i);
    }
}

// sum_j softplus(x[j]) in double, as sum_j max(x_j, 0) + log prod_j (1 + z_j) with z_j = e^-|x_j| (a
// float, exp above): element j goes to lane j % 16 whatever the batch size; a lane adds its max(x_j, 0)
// and keeps s = prod (1 + z_j) - 1 (as (s + z) + s z, so that a lane of tiny z keeps their digits);
// every sum_softplus_chunk elements, and at the end, the lanes' products are combined in lane order the
// same way and one log1p of the result is added. The same terms to a few ulp of a double (z's own float
// error dominates), one log1p per 512 terms instead of one per term: 2x faster than a float log1p per
// term (AVX2, rows of 256). A chunk's product stays below 2^512 (factors of at most 2). The lanes' sums
// of max(x_j, 0) are added pairwise.
constexpr int64_t sum_softplus_lanes = 16;
constexpr int64_t sum_softplus_chunk = 512;

inline double sum_softplus_finish(double* pos, const double* logs) noexcept
{
    for (int64_t width = sum_softplus_lanes / 2; width > 0; width /= 2) // pairwise: 8 + 4 + 2 + 1 additions
        for (int64_t l = 0; l < width; ++l)
            pos[l] += pos[l + width];
    return pos[0] + *logs;
}

// (s + z) + s z with every operation rounded on its own: the product goes through an empty asm, so the
// compiler cannot fuse it into the addition (GCC contracts a * b + c into an FMA by default in C++,
// -std=c++20 included, where the instruction set has one): the same bits on every path and in every
// build.
inline double sum_softplus_update(double s, double z) noexcept
{
    double sz = s * z;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    asm("" : "+x"(sz));
#elif defined(__GNUC__) && defined(__aarch64__)
    asm("" : "+w"(sz));
#else
    volatile double barrier = sz;
    sz = barrier;
#endif
    return (s + z) + sz;
}

inline void sum_softplus_flush(double* s, double* logs) noexcept
{
    double t = 0.0; // prod_l (1 + s_l) - 1, lane by lane
    for (int64_t l = 0; l < sum_softplus_lanes; ++l)
    {
        t = sum_softplus_update(t, s[l]);
        s[l] = 0.0;
    }
    *logs += std::log1p(t);
}

template <class A>
inline double sum_softplus(const float* x, int64_t n) noexcept
{
    using B = floats<A>;
    constexpr int64_t size = static_cast<int64_t>(B::size);
    constexpr int64_t lanes = sum_softplus_lanes;
    static_assert(lanes % size == 0 && sum_softplus_chunk % lanes == 0,
                  "the batch size must divide the number of lanes, which divides the chunk");
    double pos[lanes] = {}, s[lanes] = {}, logs = 0.0;
    float values[size], z[size];
    for (int64_t i = 0; i < n; i += size)
    {
        const int64_t count = std::min(size, n - i);
        std::fill(values, values + size, 0.0f);
        std::copy(x + i, x + i + count, values);
        detail::math::exp(-xsimd::abs(B::load_unaligned(values))).store_unaligned(z);
        for (int64_t l = 0; l < count; ++l)
        {
            const int64_t lane = (i + l) % lanes;
            pos[lane] += values[l] > 0.0f ? static_cast<double>(values[l]) : 0.0; // NaN: in z
            s[lane] = sum_softplus_update(s[lane], z[l]);
        }
        if ((i + size) % sum_softplus_chunk == 0 || i + size >= n)
            sum_softplus_flush(s, &logs);
    }
    return sum_softplus_finish(pos, &logs);
}

// log sum_i e^x[i] in double, for float or double x: the maximum, then the sum of e^(x - max).
template <class A, class T>
inline double logsumexp(const T* x, int64_t n) noexcept
{
    using D = xsimd::batch<double, A>;
    constexpr int64_t size = static_cast<int64_t>(D::size);
    constexpr double inf = std::numeric_limits<double>::infinity();
    // A padded copy of the last n % size values: -inf adds nothing to either pass.
    const int64_t whole = n - n % size;
    double tail[size];
    std::fill(tail, tail + size, -inf);
    std::copy(x + whole, x + n, tail);

    D top(-inf);
    bool nan = false;
    for (int64_t i = 0; i < whole; i += size)
    {
        const D v = D::load_unaligned(x + i);
        nan = nan || xsimd::any(xsimd::isnan(v));
        top = xsimd::max(top, v);
    }
    const D last = D::load_unaligned(tail);
    nan = nan || xsimd::any(xsimd::isnan(last));
    top = xsimd::max(top, last);
    if (nan)
        return std::numeric_limits<double>::quiet_NaN();
    double m = -inf;
    for (int64_t l = 0; l < size; ++l)
        m = std::max(m, top.get(static_cast<std::size_t>(l)));
    if (m == -inf || m == inf) // empty, all -inf, or some +inf
        return m;

    const D shift(m);
    D sum(0.0);
    for (int64_t i = 0; i < whole; i += size)
        sum += xsimd::exp(D::load_unaligned(x + i) - shift);
    sum += xsimd::exp(last - shift);
    double total = 0.0;
    for (int64_t l = 0; l < size; ++l)
        total += sum.get(static_cast<std::size_t>(l));
    return m + std::log(total);
}

inline void require_streams(Streams rngs, int64_t rows, const char* what)
{
    if (static_cast<int64_t>(rngs.size()) < rows)
        throw Error(std::string(what) + ": " + std::to_string(rngs.size()) + " random streams for " +
                    std::to_string(rows) + " rows (one stream per row)");
}

// out[i] = u < p[i] ? one : zero, one uniform per element in row order. A stream's next number
// depends on the previous one (a chain of about 4 cycles), so rows are drawn 4 at a time, element i
// of each in turn: 4 independent chains keep the core busy (2.2x faster than one row at a time), and
// each row still draws from its own stream in its own order. The streams are copied into locals so
// that their states stay in registers across the stores to out.
inline void draw_rows(const float* p, int64_t rows, int64_t cols, float* out, Streams rngs, float zero,
                      float one)
{
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
    {
        Rng a = rngs[static_cast<size_t>(r)], b = rngs[static_cast<size_t>(r + 1)];
        Rng c = rngs[static_cast<size_t>(r + 2)], d = rngs[static_cast<size_t>(r + 3)];
        const float* pa = p + r * cols;
        float* oa = out + r * cols;
        for (int64_t i = 0; i < cols; ++i)
        {
            oa[i] = a.uniform() < pa[i] ? one : zero;
            oa[cols + i] = b.uniform() < pa[cols + i] ? one : zero;
            oa[2 * cols + i] = c.uniform() < pa[2 * cols + i] ? one : zero;
            oa[3 * cols + i] = d.uniform() < pa[3 * cols + i] ? one : zero;
        }
        rngs[static_cast<size_t>(r)] = a;
        rngs[static_cast<size_t>(r + 1)] = b;
        rngs[static_cast<size_t>(r + 2)] = c;
        rngs[static_cast<size_t>(r + 3)] = d;
    }
    for (; r < rows; ++r)
    {
        Rng rng = rngs[static_cast<size_t>(r)];
        const float* pr = p + r * cols;
        float* o = out + r * cols;
        for (int64_t i = 0; i < cols; ++i)
            o[i] = rng.uniform() < pr[i] ? one : zero;
        rngs[static_cast<size_t>(r)] = rng;
    }
}

inline void require_state_rows(int64_t units, int64_t first, int64_t count, const char* what)
{
    const int64_t states = state_count(units);
    if (first < 0 || count < 0 || first > states - count)
        throw Error(std::string(what) + ": " + std::to_string(count) + " rows from state " +
                    std::to_string(first) + " are not among the " + std::to_string(states) + " states of " +
                    std::to_string(units) + " units");
}

inline void fill_states(int64_t units, int64_t first, int64_t count, float* out, float off, float on)
{
    for (int64_t j = 0; j < count; ++j)
    {
        const uint64_t k = static_cast<uint64_t>(first + j);
        float* row = out + j * units;
        for (int64_t i = 0; i < units; ++i)
            row[i] = ((k >> i) & 1u) ? on : off;
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__AVX2__)
// ---- The same kernels for AVX2 + FMA, chosen at run time on a CPU that has them, in a file compiled for
// plain x86-64 (SSE2): functions with a target attribute, written with intrinsics (xsimd's AVX2 code is
// only available when the whole file is compiled for AVX2). Each is the xsimd kernel above instruction
// for instruction as xsimd 8.1 computes it for fma3<avx2>, so the results are those of a build with
// -mavx2 -mfma (-march=native on this CPU), 8 floats at a time. Only static-like inline code with the
// target attribute is compiled for AVX2: no inline function without it is, so nothing an SSE2-only CPU
// runs can come from here (the dispatch below never calls these there).
#define ANSATZ_MATH_AVX2 1
#define ANSATZ_TARGET_AVX2 __attribute__((target("avx2,fma")))
namespace avx2
{

ANSATZ_TARGET_AVX2 inline __m256 exp(__m256 x) noexcept
{
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(88.75f));
    const __m256 shifter = _mm256_set1_ps(12582912.0f);
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)), shifter);
    const __m256 k = _mm256_sub_ps(t, shifter);
    const __m256i ki = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(shifter));
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i k1 = _mm256_srai_epi32(ki, 1);
    const __m256i k2 = _mm256_sub_epi32(ki, k1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 scale1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    const __m256 scale2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, scale1), scale2);
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// -|x| and |x| by the sign bit, as xsimd's abs and negation.
ANSATZ_TARGET_AVX2 inline __m256 minus_abs(__m256 x) noexcept
{
    return _mm256_or_ps(x, _mm256_set1_ps(-0.0f));
}

ANSATZ_TARGET_AVX2 inline __m256 sigmoid(__m256 x) noexcept
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 z = avx2::exp(minus_abs(x));
    const __m256 top = _mm256_blendv_ps(z, one, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
    return _mm256_div_ps(top, _mm256_add_ps(one, z));
}

// A float constant given by its bits, as xsimd's horner coefficients are.
ANSATZ_TARGET_AVX2 inline __m256 coef(uint32_t bits) noexcept
{
    return _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(bits)));
}

// xsimd 8.1's log1p for float (origin: boost.simd), with its special cases.
ANSATZ_TARGET_AVX2 inline __m256 log1p(__m256 x) noexcept
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 uf = _mm256_add_ps(x, one);
    const __m256 isnez = _mm256_cmp_ps(uf, _mm256_setzero_ps(), _CMP_NEQ_OQ);
    __m256i iu = _mm256_castps_si256(uf);
    iu = _mm256_add_epi32(iu, _mm256_set1_epi32(0x3f800000 - 0x3f3504f3));
    const __m256i k = _mm256_sub_epi32(_mm256_srai_epi32(iu, 23), _mm256_set1_epi32(0x7f));
    iu = _mm256_add_epi32(_mm256_and_si256(iu, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f3504f3));
    const __m256 f = _mm256_sub_ps(_mm256_castsi256_ps(iu), one);
    const __m256 s = _mm256_div_ps(f, _mm256_add_ps(_mm256_set1_ps(2.0f), f));
    const __m256 z = _mm256_mul_ps(s, s);
    const __m256 w = _mm256_mul_ps(z, z);
    const __m256 t1 = _mm256_mul_ps(w, _mm256_fmadd_ps(w, coef(0x3e789e26), coef(0x3eccce13)));
    const __m256 t2 = _mm256_mul_ps(z, _mm256_fmadd_ps(w, coef(0x3e91e9ee), coef(0x3f2aaaaa)));
    const __m256 big_r = _mm256_add_ps(t2, t1);
    const __m256 hfsq = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), f), f);
    const __m256 dk = _mm256_cvtepi32_ps(k);
    const __m256 k_ge_2 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, _mm256_set1_epi32(1)));
    const __m256 c = _mm256_div_ps(_mm256_blendv_ps(_mm256_sub_ps(x, _mm256_sub_ps(uf, one)),
                                                    _mm256_sub_ps(one, _mm256_sub_ps(uf, x)), k_ge_2),
                                   uf);
    const __m256 inner =
        _mm256_fmadd_ps(s, _mm256_add_ps(hfsq, big_r), _mm256_add_ps(_mm256_mul_ps(dk, coef(0xb95e8083)), c));
    const __m256 r = _mm256_fmadd_ps(dk, coef(0x3f318000), _mm256_add_ps(_mm256_sub_ps(inner, hfsq), f));
    const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
    const __m256 at_inf = _mm256_blendv_ps(r, inf, _mm256_cmp_ps(x, inf, _CMP_EQ_OQ));
    const __m256 zz =
        _mm256_blendv_ps(_mm256_set1_ps(-std::numeric_limits<float>::infinity()), at_inf, isnez);
    return _mm256_blendv_ps(zz, coef(0xffffffff), _mm256_cmp_ps(uf, _mm256_setzero_ps(), _CMP_NGE_UQ));
}

ANSATZ_TARGET_AVX2 inline __m256 softplus(__m256 x) noexcept
{
    const __m256 z = avx2::exp(minus_abs(x));
    return _mm256_add_ps(_mm256_max_ps(x, _mm256_setzero_ps()), avx2::log1p(z));
}

// The tanh kernel above, as xsimd computes it for fma3<avx2>.
ANSATZ_TARGET_AVX2 inline __m256 tanh(__m256 x) noexcept
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 ax = _mm256_andnot_ps(sign, x);
    const __m256 e = avx2::exp(_mm256_add_ps(ax, ax));
    const __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    const __m256 z = _mm256_mul_ps(ax, ax);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), ax, ax);
    const __m256 t = _mm256_blendv_ps(small, big, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_GE_OQ));
    return _mm256_or_ps(t, _mm256_and_ps(x, sign));
}

// out[i] = f(x[i]) as map() above: whole batches of 8, then the tail in a batch padded with zeros. One
// function per kernel (a lambda would need the target attribute too).
#define ANSATZ_AVX2_MAP(name)                                                                                \
    ANSATZ_TARGET_AVX2 inline void name##_n(const float* x, float* out, int64_t n) noexcept                  \
    {                                                                                                        \
        int64_t i = 0;                                                                                       \
        for (; i + 8 <= n; i += 8)                                                                           \
            _mm256_storeu_ps(out + i, avx2::name(_mm256_loadu_ps(x + i)));                                   \
        if (i < n)                                                                                           \
        {                                                                                                    \
            alignas(32) float buffer[8] = {};                                                                \
            for (int64_t j = i; j < n; ++j)                                                                  \
                buffer[j - i] = x[j];                                                                        \
            _mm256_store_ps(buffer, avx2::name(_mm256_load_ps(buffer)));                                     \
            for (int64_t j = i; j < n; ++j)                                                                  \
                out[j] = buffer[j - i];                                                                      \
        }                                                                                                    \
    }
ANSATZ_AVX2_MAP(exp)
ANSATZ_AVX2_MAP(log1p)
ANSATZ_AVX2_MAP(sigmoid)
ANSATZ_AVX2_MAP(softplus)
ANSATZ_AVX2_MAP(tanh)
#undef ANSATZ_AVX2_MAP

// Four lanes of sum_softplus: pos += max(x, 0), s = (s + z) + s z (sum_softplus_update), in double.
ANSATZ_TARGET_AVX2 inline void sum_softplus_add(__m256d& pos, __m256d& s, __m128 xs, __m128 zs) noexcept
{
    pos = _mm256_add_pd(pos, _mm256_cvtps_pd(_mm_max_ps(xs, _mm_setzero_ps())));
    const __m256d z = _mm256_cvtps_pd(zs);
    __m256d sz = _mm256_mul_pd(s, z);
    asm("" : "+x"(sz)); // not fused into the addition: sum_softplus_update's bits
    s = _mm256_add_pd(_mm256_add_pd(s, z), sz);
}

// sum_softplus above, 8 terms at a time: elements i .. i + 7 go to lanes i % 16 .. i % 16 + 7, the
// 16 lanes' sums and products four doubles to a vector; the last n % 8 elements one by one.
ANSATZ_TARGET_AVX2 inline double sum_softplus(const float* x, int64_t n) noexcept
{
    constexpr int64_t lanes = sum_softplus_lanes;
    // Lanes 0-3, 4-7, 8-11, 12-15 in four named vectors each (an array indexed by the block's parity
    // would live in memory and chain every block through a store and a load).
    __m256d p0 = _mm256_setzero_pd(), p1 = p0, p2 = p0, p3 = p0, s0 = p0, s1 = p0, s2 = p0, s3 = p0;
    alignas(32) double pos_lanes[lanes], s_lanes[lanes];
    double logs = 0.0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
    {
        const __m256 v = _mm256_loadu_ps(x + i), w = _mm256_loadu_ps(x + i + 8);
        const __m256 z = avx2::exp(minus_abs(v)), y = avx2::exp(minus_abs(w));
        sum_softplus_add(p0, s0, _mm256_castps256_ps128(v), _mm256_castps256_ps128(z));
        sum_softplus_add(p1, s1, _mm256_extractf128_ps(v, 1), _mm256_extractf128_ps(z, 1));
        sum_softplus_add(p2, s2, _mm256_castps256_ps128(w), _mm256_castps256_ps128(y));
        sum_softplus_add(p3, s3, _mm256_extractf128_ps(w, 1), _mm256_extractf128_ps(y, 1));
        if ((i + 16) % sum_softplus_chunk == 0 && i + 16 < n)
        {
            _mm256_store_pd(s_lanes, s0);
            _mm256_store_pd(s_lanes + 4, s1);
            _mm256_store_pd(s_lanes + 8, s2);
            _mm256_store_pd(s_lanes + 12, s3);
            s0 = s1 = s2 = s3 = _mm256_setzero_pd();
            sum_softplus_flush(s_lanes, &logs);
        }
    }
    if (i + 8 <= n) // lanes 0-7 once more
    {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 z = avx2::exp(minus_abs(v));
        sum_softplus_add(p0, s0, _mm256_castps256_ps128(v), _mm256_castps256_ps128(z));
        sum_softplus_add(p1, s1, _mm256_extractf128_ps(v, 1), _mm256_extractf128_ps(z, 1));
        i += 8;
    }
    const __m256d pv[4] = { p0, p1, p2, p3 }, sv[4] = { s0, s1, s2, s3 };
    for (int k = 0; k < 4; ++k)
    {
        _mm256_store_pd(pos_lanes + 4 * k, pv[k]);
        _mm256_store_pd(s_lanes + 4 * k, sv[k]);
    }
    if (i < n)
    {
        alignas(32) float values[8], z[8];
        for (int64_t l = 0; l < 8; ++l)
            values[l] = i + l < n ? x[i + l] : 0.0f;
        _mm256_store_ps(z, avx2::exp(minus_abs(_mm256_load_ps(values))));
        for (int64_t l = 0; l < n - i; ++l)
        {
            const int64_t lane = (i + l) % lanes;
            pos_lanes[lane] += values[l] > 0.0f ? static_cast<double>(values[l]) : 0.0;
            s_lanes[lane] = sum_softplus_update(s_lanes[lane], z[l]);
        }
    }
    if (n > 0)
        sum_softplus_flush(s_lanes, &logs);
    return sum_softplus_finish(pos_lanes, &logs);
}

// draw_rows above, 4 rows at a time: the 4 rows' streams (xoshiro256**) advance side by side in the
// 64-bit lanes of 4 vectors (one per state word), 8 draws per row per round; the uniforms are moved
// into row order by two 4 x 4 transposes and compared with 8 probabilities of each row. Row r still
// draws only from rngs[r], one uniform per element in order, the same uniform as Rng::uniform() (24
// bits, exact in float), so the result is the scalar loop's bit for bit. The last cols % 8 elements
// and the last rows % 4 rows go through the scalar loop with the same streams.
ANSATZ_TARGET_AVX2 inline __m256i rotl64(__m256i x, int k) noexcept
{
    return _mm256_or_si256(_mm256_slli_epi64(x, k), _mm256_srli_epi64(x, 64 - k));
}

ANSATZ_TARGET_AVX2 inline void draw_rows(const float* p, int64_t rows, int64_t cols, float* out, Streams rngs,
                                         float zero, float one) noexcept
{
    const __m256 zeros = _mm256_set1_ps(zero), ones = _mm256_set1_ps(one);
    const __m128 scale = _mm_set1_ps(0x1.0p-24f);
    const __m256i low_words = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
    {
        ansatz_rng* st[4];
        for (int l = 0; l < 4; ++l)
            st[l] = &rngs[static_cast<size_t>(r + l)].state();
        __m256i w[4];
        for (int k = 0; k < 4; ++k)
            w[k] = _mm256_setr_epi64x(
                static_cast<long long>(st[0]->state[k]), static_cast<long long>(st[1]->state[k]),
                static_cast<long long>(st[2]->state[k]), static_cast<long long>(st[3]->state[k]));
        int64_t i = 0;
        for (; i + 8 <= cols; i += 8)
        {
            __m128 u[8];
            for (int k = 0; k < 8; ++k)
            {
                // result = rotl(s1 * 5, 7) * 9, then the state update of Rng::next().
                const __m256i five = _mm256_add_epi64(w[1], _mm256_slli_epi64(w[1], 2));
                const __m256i rot = rotl64(five, 7);
                const __m256i result = _mm256_add_epi64(rot, _mm256_slli_epi64(rot, 3));
                const __m256i t = _mm256_slli_epi64(w[1], 17);
                w[2] = _mm256_xor_si256(w[2], w[0]);
                w[3] = _mm256_xor_si256(w[3], w[1]);
                w[1] = _mm256_xor_si256(w[1], w[2]);
                w[0] = _mm256_xor_si256(w[0], w[3]);
                w[2] = _mm256_xor_si256(w[2], t);
                w[3] = rotl64(w[3], 45);
                // next() >> 40: 24 bits, in the low 32 bits of each lane; gathered into 4 ints.
                const __m256i bits = _mm256_permutevar8x32_epi32(_mm256_srli_epi64(result, 40), low_words);
                u[k] = _mm_mul_ps(_mm_cvtepi32_ps(_mm256_castsi256_si128(bits)), scale);
            }
            _MM_TRANSPOSE4_PS(u[0], u[1], u[2], u[3]); // u[l]: row l, elements i .. i + 3
            _MM_TRANSPOSE4_PS(u[4], u[5], u[6], u[7]); // u[4 + l]: row l, elements i + 4 .. i + 7
            for (int l = 0; l < 4; ++l)
            {
                const int64_t at = (r + l) * cols + i;
                const __m256 uniform = _mm256_set_m128(u[4 + l], u[l]);
                const __m256 below = _mm256_cmp_ps(uniform, _mm256_loadu_ps(p + at), _CMP_LT_OQ);
                _mm256_storeu_ps(out + at, _mm256_blendv_ps(zeros, ones, below));
            }
        }
        alignas(32) uint64_t words[4][4];
        for (int k = 0; k < 4; ++k)
            _mm256_store_si256(reinterpret_cast<__m256i*>(words[k]), w[k]);
        for (int l = 0; l < 4; ++l)
        {
            for (int k = 0; k < 4; ++k)
                st[l]->state[k] = words[k][l];
            Rng& rng = rngs[static_cast<size_t>(r + l)];
            for (int64_t j = i; j < cols; ++j)
                out[(r + l) * cols + j] = rng.uniform() < p[(r + l) * cols + j] ? one : zero;
        }
    }
    for (; r < rows; ++r)
    {
        Rng& rng = rngs[static_cast<size_t>(r)];
        for (int64_t j = 0; j < cols; ++j)
            out[r * cols + j] = rng.uniform() < p[r * cols + j] ? one : zero;
    }
}

// Whether the kernels are used: when this CPU has AVX2 and FMA (asked once per library). Tests turn them
// off to check the portable path too.
inline bool& enabled() noexcept
{
    static bool on = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return on;
}
inline bool available() noexcept
{
    return enabled();
}

} // namespace avx2
#undef ANSATZ_TARGET_AVX2
#endif

} // namespace detail::math

// ---- Elementwise functions

inline void exp(const float* x, float* out, int64_t n)
{
#ifdef ANSATZ_MATH_AVX2
    if (detail::math::avx2::available())
        return detail::math::avx2::exp_n(x, out, n);
#endif
    detail::math::map<detail::math::arch>(x, out, n, [](const auto& b) { return detail::math::exp(b); });
}
inline void exp(float* x, int64_t n)
{
    ansatz::exp(x, x, n);
}

inline void log1p(const float* x, float* out, int64_t n)
{
#ifdef ANSATZ_MATH_AVX2
    if (detail::math::avx2::available())
        return detail::math::avx2::log1p_n(x, out, n);
#endif
    detail::math::map<detail::math::arch>(x, out, n, [](const auto& b) { return detail::math::log1p(b); });
}
inline void log1p(float* x, int64_t n)
{
    ansatz::log1p(x, x, n);
}

inline void sigmoid(const float* x, float* out, int64_t n)
{
#ifdef ANSATZ_MATH_AVX2
    if (detail::math::avx2::available())
        return detail::math::avx2::sigmoid_n(x, out, n);
#endif
    detail::math::map<detail::math::arch>(x, out, n, [](const auto& b) { return detail::math::sigmoid(b); });
}
inline void sigmoid(float* x, int64_t n)
{
    ansatz::sigmoid(x, x, n);
}

inline void softplus(const float* x, float* out, int64_t n)
{
#ifdef ANSATZ_MATH_AVX2
    if (detail::math::avx2::available())
        return detail::math::avx2::softplus_n(x, out, n);
#endif
    detail::math::map<detail::math::arch>(x, out, n, [](const auto& b) { return detail::math::softplus(b); });
}
inline void softplus(float* x, int64_t n)
{
    ansatz::softplus(x, x, n);
}

inline void tanh(const float* x, float* out, int64_t n)
{
#ifdef ANSATZ_MATH_AVX2
    if (detail::math::avx2::available())
        return detail::math::avx2::tanh_n(x, out, n);
#endif
    detail::math::map<detail::math::arch>(x, out, n, [](const auto& b) { return detail::math::tanh(b); });
}
inline void tanh(float* x, int64_t n)
{
    ansatz::tanh(x, x, n);
}

// ---- Row reductions

inline void sum_softplus_rows(const float* x, int64_t rows, int64_t cols, double* out)
{
#ifdef ANSATZ_MATH_AVX2
    if (detail::math::avx2::available())
    {
        for (int64_t r = 0; r < rows; ++r)
            out[r] = detail::math::avx2::sum_softplus(x + r * cols, cols);
        return;
    }
#endif
    for (int64_t r = 0; r < rows; ++r)
        out[r] = detail::math::sum_softplus<detail::math::arch>(x + r * cols, cols);
}
inline void sum_softplus_rows(const float* x, int64_t rows, int64_t cols, float* out)
{
#ifdef ANSATZ_MATH_AVX2
    if (detail::math::avx2::available())
    {
        for (int64_t r = 0; r < rows; ++r)
            out[r] = static_cast<float>(detail::math::avx2::sum_softplus(x + r * cols, cols));
        return;
    }
#endif
    for (int64_t r = 0; r < rows; ++r)
        out[r] = static_cast<float>(detail::math::sum_softplus<detail::math::arch>(x + r * cols, cols));
}

inline double logsumexp(const double* x, int64_t n)
{
    return detail::math::logsumexp<detail::math::arch>(x, n);
}
inline double logsumexp(const float* x, int64_t n)
{
    return detail::math::logsumexp<detail::math::arch>(x, n);
}

inline void logsumexp_rows(const double* x, int64_t rows, int64_t cols, double* out)
{
    for (int64_t r = 0; r < rows; ++r)
        out[r] = detail::math::logsumexp<detail::math::arch>(x + r * cols, cols);
}
inline void logsumexp_rows(const float* x, int64_t rows, int64_t cols, double* out)
{
    for (int64_t r = 0; r < rows; ++r)
        out[r] = detail::math::logsumexp<detail::math::arch>(x + r * cols, cols);
}

// ---- Per-row random draws

inline void bernoulli_rows(const float* p, int64_t rows, int64_t cols, float* out, Streams rngs)
{
    detail::math::require_streams(rngs, rows, "bernoulli_rows");
#ifdef ANSATZ_MATH_AVX2
    if (detail::math::avx2::available())
        return detail::math::avx2::draw_rows(p, rows, cols, out, rngs, 0.0f, 1.0f);
#endif
    detail::math::draw_rows(p, rows, cols, out, rngs, 0.0f, 1.0f);
}

inline void bernoulli_spin_rows(const float* p, int64_t rows, int64_t cols, float* out, Streams rngs)
{
    detail::math::require_streams(rngs, rows, "bernoulli_spin_rows");
#ifdef ANSATZ_MATH_AVX2
    if (detail::math::avx2::available())
        return detail::math::avx2::draw_rows(p, rows, cols, out, rngs, -1.0f, 1.0f);
#endif
    detail::math::draw_rows(p, rows, cols, out, rngs, -1.0f, 1.0f);
}

// ---- Enumeration of states

inline int64_t state_count(int64_t units)
{
    if (units < 0 || units > max_enumerated_units)
        throw Error("cannot enumerate the states of " + std::to_string(units) +
                    " units: the number of units " + "must be in [0, " +
                    std::to_string(max_enumerated_units) + "] (2^" + std::to_string(max_enumerated_units) +
                    " = " + std::to_string(int64_t{ 1 } << max_enumerated_units) + " states at most)");
    return int64_t{ 1 } << units;
}

inline void binary_states(int64_t units, int64_t first, int64_t count, float* out)
{
    detail::math::require_state_rows(units, first, count, "binary_states");
    detail::math::fill_states(units, first, count, out, 0.0f, 1.0f);
}
inline void binary_states(int64_t units, float* out)
{
    ansatz::binary_states(units, 0, state_count(units), out);
}

inline void spin_states(int64_t units, int64_t first, int64_t count, float* out)
{
    detail::math::require_state_rows(units, first, count, "spin_states");
    detail::math::fill_states(units, first, count, out, -1.0f, 1.0f);
}
inline void spin_states(int64_t units, float* out)
{
    ansatz::spin_states(units, 0, state_count(units), out);
}

} // namespace ansatz

// ansatz/nn_direct_conv_impl.hpp -- a Conv2d whose input has one channel, without im2col (AVX2 + FMA).
//
// WHY
//     A first convolution of grey images (1 input channel, e.g. 5x5 taps, 16 output channels) is a
//     product of K = kh kw = 25 by N = 16: too thin for sgemm, which ran it at ~14 GFLOP/s (against
//     ~90 for the next layers), and im2col writes 25 floats per output pixel for it to read back. Its
//     input gradient is worse: a product of K = 16 into a {pixels, 25} matrix that OpenBLAS first zeroes,
//     then col2im adds into the image. In Foster's deep EBM that one layer took 39 % of a Langevin step.
//     Here both are direct loops: each output pixel's C channels are C/8 vectors accumulated over the
//     taps inside the image (forward), and each grid pixel's tap values are C FMAs of a padded weight
//     row, added into the image where col2im would (input gradient).
//
// WHEN
//     applies(): a Conv2d (not transposed), one input channel, output channels a multiple of 8, a kernel
//     of at most 8 x 8 for the input gradient (input_gradient_applies), and a CPU with AVX2 and FMA (asked at
//     run time: the SDK is compiled for plain x86-64). Otherwise the layer uses im2col + sgemm as before. The
//     results agree with that path to rounding (the sums run in another order); for a given CPU and thread
//     count they are the same bits every run (the order depends only on the shapes).
//
// LAYOUTS (as in nn_impl.hpp)
//     image {G, H, W} (one channel), grid side channels-last {G, gh, gw, C};
//     forward weight wt {taps, C} (wt[t, r] = W[r, 0, t]); input-gradient weight wpad {C, kh, 8}
//     (wpad[r, ty, tx] = W[r, 0, ty, tx] for tx < kw, 0 beyond).
#pragma once

#include "ansatz/nn.hpp"

#include <algorithm>
#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define ANSATZ_DIRECT_CONV 1
#if defined(__AVX2__) && defined(__FMA__)
#define ANSATZ_TARGET_DIRECT
#else
#define ANSATZ_TARGET_DIRECT __attribute__((target("avx2,fma")))
#endif
#endif

namespace ansatz::nn::detail::direct
{

// Whether the kernels are used on this CPU (asked once per library). Tests turn them off to compare
// with the im2col path.
inline bool& enabled() noexcept
{
#ifdef ANSATZ_DIRECT_CONV
    static bool on = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    static bool on = false;
#endif
    return on;
}

inline bool applies(bool transposed, int64_t c_image, int64_t c_grid)
{
    return enabled() && !transposed && c_image == 1 && c_grid % 8 == 0;
}

inline bool input_gradient_applies(bool transposed, int64_t c_image, int64_t c_grid, const ConvAxis& ay,
                                   const ConvAxis& ax)
{
    return applies(transposed, c_image, c_grid) && ay.kernel <= 8 && ax.kernel <= 8;
}

// The taps [t0, t1) of an axis that fall inside the image for grid position g.
inline void inside(const ConvAxis& a, int64_t g, int64_t& t0, int64_t& t1)
{
    const int64_t i0 = g * a.stride - a.before;
    t0 = std::clamp<int64_t>(-i0, 0, a.kernel);
    t1 = std::clamp<int64_t>(a.image - i0, t0, a.kernel);
}

#ifdef ANSATZ_DIRECT_CONV

// P adjacent grid pixels of one row, channels [cb, cb + 8 V): out[p] = sum over taps (ty in [ty0, ty1),
// tx in [tx0, tx1)) of row[ty][x0 + p sx + tx] wt[ty kw + tx, cb..]. `row` is image row iy(ty0) (read only
// when ty0 < ty1); x0 the first pixel's leftmost column (negative at the left edge, where only the taps
// inside are read); the taps are inside the image for all P pixels.
template <int P, int V>
ANSATZ_TARGET_DIRECT inline void forward_tile(const float* row, int64_t x0, int64_t width, int64_t sx,
                                              int64_t ty0, int64_t ty1, int64_t tx0, int64_t tx1, int64_t kw,
                                              const float* wt, const float* bias, int64_t channels,
                                              int64_t cb, float* out)
{
    __m256 acc[P][V];
    for (int p = 0; p < P; ++p)
        for (int v = 0; v < V; ++v)
            acc[p][v] = bias ? _mm256_loadu_ps(bias + cb + 8 * v) : _mm256_setzero_ps();
    for (int64_t ty = ty0; ty < ty1; ++ty, row += width)
        for (int64_t tx = tx0; tx < tx1; ++tx)
        {
            const float* w = wt + (ty * kw + tx) * channels + cb;
            __m256 wv[V];
            for (int v = 0; v < V; ++v)
                wv[v] = _mm256_loadu_ps(w + 8 * v);
            for (int p = 0; p < P; ++p)
            {
                const __m256 x = _mm256_broadcast_ss(row + (x0 + p * sx + tx));
                for (int v = 0; v < V; ++v)
                    acc[p][v] = _mm256_fmadd_ps(x, wv[v], acc[p][v]);
            }
        }
    for (int p = 0; p < P; ++p)
        for (int v = 0; v < V; ++v)
            _mm256_storeu_ps(out + p * channels + cb + 8 * v, acc[p][v]);
}

// out {G, gh, gw, C} channels-last from image {G, H, W}: see the top of this file.
template <int V>
ANSATZ_TARGET_DIRECT inline void forward_channels(const float* image, int64_t images, const ConvAxis& ay,
                                                  const ConvAxis& ax, const float* wt, const float* bias,
                                                  int64_t channels, int64_t cb, float* out)
{
    constexpr int tile = 4;
    const int64_t kw = ax.kernel;
    for (int64_t g = 0; g < images; ++g)
        for (int64_t gy = 0; gy < ay.grid; ++gy)
        {
            int64_t ty0, ty1;
            inside(ay, gy, ty0, ty1);
            // No tap row inside (padding beyond the kernel): the sums are the bias, no row is read.
            const float* image_row =
                ty0 < ty1 ? image + (g * ay.image + gy * ay.stride - ay.before + ty0) * ax.image : image;
            float* out_row = out + (g * ay.grid + gy) * ax.grid * channels;
            int64_t gx = 0;
            while (gx < ax.grid)
            {
                int64_t tx0, tx1, last0, last1;
                inside(ax, gx, tx0, tx1);
                const int64_t ix0 = gx * ax.stride - ax.before;
                if (gx + tile <= ax.grid)
                {
                    inside(ax, gx + tile - 1, last0, last1);
                    if (tx0 == 0 && last1 == kw && last0 == 0 && tx1 == kw)
                    {
                        forward_tile<tile, V>(image_row, ix0, ax.image, ax.stride, ty0, ty1, 0, kw, kw, wt,
                                              bias, channels, cb, out_row + gx * channels);
                        gx += tile;
                        continue;
                    }
                }
                // An edge pixel: only the taps inside.
                forward_tile<1, V>(image_row, ix0, ax.image, ax.stride, ty0, ty1, tx0, tx1, kw, wt, bias,
                                   channels, cb, out_row + gx * channels);
                ++gx;
            }
        }
}

// bias {C} or nullptr: added to every output pixel (the sums start at it).
ANSATZ_TARGET_DIRECT inline void forward(const float* image, int64_t images, const ConvAxis& ay,
                                         const ConvAxis& ax, const float* wt, const float* bias,
                                         int64_t channels, float* out)
{
    int64_t cb = 0;
    for (; cb + 16 <= channels; cb += 16)
        forward_channels<2>(image, images, ay, ax, wt, bias, channels, cb, out);
    if (cb < channels)
        forward_channels<1>(image, images, ay, ax, wt, bias, channels, cb, out);
}

// P grid pixels' tap values d[p][ty, tx] = sum_r dz[p, r] wpad[r, ty 8 + tx] into `values` {P, U = kh
// rows of 8}: one vector per kernel row, its lanes tx (lanes kw.. are 0).
template <int P, int U>
ANSATZ_TARGET_DIRECT inline void tap_values(const float* dz, int64_t channels, const float* wpad,
                                            float* values)
{
    __m256 acc[P][U];
    for (int p = 0; p < P; ++p)
        for (int u = 0; u < U; ++u)
            acc[p][u] = _mm256_setzero_ps();
    for (int64_t r = 0; r < channels; ++r)
    {
        const float* w = wpad + r * 8 * U;
        for (int p = 0; p < P; ++p)
        {
            const __m256 d = _mm256_broadcast_ss(dz + p * channels + r);
            for (int u = 0; u < U; ++u)
                acc[p][u] = _mm256_fmadd_ps(d, _mm256_loadu_ps(w + 8 * u), acc[p][u]);
        }
    }
    for (int p = 0; p < P; ++p)
        for (int u = 0; u < U; ++u)
            _mm256_storeu_ps(values + (p * U + u) * 8, acc[p][u]);
}

// din {G, H, W} += the adjoint of the forward map applied to dz {G, gh, gw, C}: what col2im(dz Wp) adds.
// A pixel whose taps are all inside the image row and which has 8 columns of room adds each kernel row
// as one vector (its lanes beyond kw add 0 to columns that are still in that row); the others add the
// taps inside one by one.
template <int U>
ANSATZ_TARGET_DIRECT inline void input_gradient_rows(const float* dz, int64_t images, const ConvAxis& ay,
                                                     const ConvAxis& ax, const float* wpad, int64_t channels,
                                                     float* din)
{
    constexpr int tile = U <= 5 ? 2 : 1; // accumulators and weight rows within 16 registers
    alignas(32) float values[tile * 8 * U];
    for (int64_t g = 0; g < images; ++g)
        for (int64_t gy = 0; gy < ay.grid; ++gy)
        {
            int64_t ty0, ty1;
            inside(ay, gy, ty0, ty1);
            if (ty0 >= ty1)
                continue; // no tap row inside the image: nothing to add
            float* image_row = din + (g * ay.image + gy * ay.stride - ay.before + ty0) * ax.image;
            const float* dz_row = dz + (g * ay.grid + gy) * ax.grid * channels;
            for (int64_t gx = 0; gx < ax.grid; gx += tile)
            {
                const int count = static_cast<int>(std::min<int64_t>(tile, ax.grid - gx));
                if (count == tile)
                    tap_values<tile, U>(dz_row + gx * channels, channels, wpad, values);
                else
                    tap_values<1, U>(dz_row + gx * channels, channels, wpad, values);
                for (int p = 0; p < count; ++p)
                {
                    int64_t tx0, tx1;
                    inside(ax, gx + p, tx0, tx1);
                    const int64_t ix0 = (gx + p) * ax.stride - ax.before;
                    const float* v = values + p * 8 * U;
                    // From column ix0 + tx0 of row iy(ty0), inside the image; the vector path needs 8
                    // columns of room in the row, so its lanes beyond kw add 0 to this row's own memory.
                    float* dst = image_row + (ix0 + tx0);
                    if (tx0 == 0 && tx1 == ax.kernel && ix0 + 8 <= ax.image)
                        for (int64_t ty = ty0; ty < ty1; ++ty, dst += ax.image)
                            _mm256_storeu_ps(dst,
                                             _mm256_add_ps(_mm256_loadu_ps(dst), _mm256_load_ps(v + ty * 8)));
                    else
                        for (int64_t ty = ty0; ty < ty1; ++ty, dst += ax.image)
                            for (int64_t tx = tx0; tx < tx1; ++tx)
                                dst[tx - tx0] += v[ty * 8 + tx];
                }
            }
        }
}

ANSATZ_TARGET_DIRECT inline void input_gradient(const float* dz, int64_t images, const ConvAxis& ay,
                                                const ConvAxis& ax, const float* wpad, int64_t channels,
                                                float* din)
{
    switch (ay.kernel)
    {
    case 1:
        return input_gradient_rows<1>(dz, images, ay, ax, wpad, channels, din);
    case 2:
        return input_gradient_rows<2>(dz, images, ay, ax, wpad, channels, din);
    case 3:
        return input_gradient_rows<3>(dz, images, ay, ax, wpad, channels, din);
    case 4:
        return input_gradient_rows<4>(dz, images, ay, ax, wpad, channels, din);
    case 5:
        return input_gradient_rows<5>(dz, images, ay, ax, wpad, channels, din);
    case 6:
        return input_gradient_rows<6>(dz, images, ay, ax, wpad, channels, din);
    case 7:
        return input_gradient_rows<7>(dz, images, ay, ax, wpad, channels, din);
    default:
        return input_gradient_rows<8>(dz, images, ay, ax, wpad, channels, din);
    }
}

#else

inline void forward(const float*, int64_t, const ConvAxis&, const ConvAxis&, const float*, const float*,
                    int64_t, float*)
{
}
inline void input_gradient(const float*, int64_t, const ConvAxis&, const ConvAxis&, const float*, int64_t,
                           float*)
{
}

#endif

} // namespace ansatz::nn::detail::direct

#undef ANSATZ_TARGET_DIRECT
#undef ANSATZ_DIRECT_CONV

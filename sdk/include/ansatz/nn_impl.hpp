// ansatz/nn_impl.hpp -- the bodies of ansatz/nn.hpp (include that header, not this one).
#pragma once

#include "ansatz/blas.hpp"
#include "ansatz/math.hpp"
#include "ansatz/nn.hpp"
#include "ansatz/nn_direct_conv_impl.hpp"
#include "ansatz/sgemm_avx512.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <xsimd/xsimd.hpp>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace ansatz::nn
{

// ---- Activations

inline const char* activation_name(Activation a)
{
    switch (a)
    {
    case Activation::none:
        return "none";
    case Activation::relu:
        return "relu";
    case Activation::leaky_relu:
        return "leaky_relu";
    case Activation::tanh:
        return "tanh";
    case Activation::sigmoid:
        return "sigmoid";
    case Activation::softplus:
        return "softplus";
    case Activation::swish:
        return "swish";
    }
    return "unknown";
}

inline Activation parse_activation(std::string_view name)
{
    for (Activation a : { Activation::none, Activation::relu, Activation::leaky_relu, Activation::tanh,
                          Activation::sigmoid, Activation::softplus, Activation::swish })
        if (name == activation_name(a))
            return a;
    throw InputError("unknown activation '" + std::string(name) +
                     "' (known: none, relu, leaky_relu, tanh, sigmoid, softplus, swish)");
}

inline std::vector<int64_t> per_layer(std::vector<int64_t> values, size_t layers, const char* key)
{
    if (values.size() == 1)
        return std::vector<int64_t>(layers, values[0]);
    if (values.size() != layers)
        throw InputError("key " + std::string(key) + " has " + std::to_string(values.size()) +
                         " items, but filters has " + std::to_string(layers) +
                         ": give one per convolution, or one for all");
    return values;
}

inline double parameter_floats(const std::vector<LayerSpec>& layers, Shape at)
{
    double floats = 0;
    for (const LayerSpec& l : layers)
        switch (l.kind)
        {
        case LayerKind::linear:
            floats += static_cast<double>(at.size()) * static_cast<double>(l.features) +
                      static_cast<double>(l.features);
            at = { l.features, 1, 1 };
            break;
        case LayerKind::conv2d:
        case LayerKind::conv_transpose2d:
            floats += static_cast<double>(at.channels) * static_cast<double>(l.features) *
                          static_cast<double>(l.kernel[0] * l.kernel[1]) +
                      static_cast<double>(l.features);
            at.channels = l.features;
            break;
        case LayerKind::flatten:
            at = { at.size(), 1, 1 };
            break;
        case LayerKind::reshape:
            at = l.shape;
            break;
        case LayerKind::activation:
            break;
        }
    return floats;
}

inline std::string shape_string(const Shape& s)
{
    if (s.height == 1 && s.width == 1)
        return std::to_string(s.channels);
    return std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" + std::to_string(s.width);
}

// ---- Descriptions

inline LayerSpec linear(int64_t out_features, bool bias)
{
    LayerSpec s;
    s.kind = LayerKind::linear;
    s.features = out_features;
    s.bias = bias;
    return s;
}

inline LayerSpec conv2d(int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding)
{
    LayerSpec s;
    s.kind = LayerKind::conv2d;
    s.features = out_channels;
    s.kernel[0] = s.kernel[1] = kernel;
    s.stride[0] = s.stride[1] = stride;
    s.padding[0] = s.padding[1] = padding;
    return s;
}

inline LayerSpec conv2d_same(int64_t out_channels, int64_t kernel, int64_t stride)
{
    LayerSpec s = conv2d(out_channels, kernel, stride, 0);
    s.same = true;
    return s;
}

inline LayerSpec conv_transpose2d(int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
                                  int64_t output_padding)
{
    LayerSpec s = conv2d(out_channels, kernel, stride, padding);
    s.kind = LayerKind::conv_transpose2d;
    s.output_padding[0] = s.output_padding[1] = output_padding;
    return s;
}

inline LayerSpec conv_transpose2d_same(int64_t out_channels, int64_t kernel, int64_t stride)
{
    LayerSpec s = conv_transpose2d(out_channels, kernel, stride, 0, 0);
    s.same = true;
    return s;
}

inline LayerSpec activation(Activation a, float negative_slope)
{
    LayerSpec s;
    s.kind = LayerKind::activation;
    s.activation = a;
    s.negative_slope = negative_slope;
    return s;
}

inline LayerSpec flatten()
{
    LayerSpec s;
    s.kind = LayerKind::flatten;
    return s;
}

inline LayerSpec reshape(Shape shape)
{
    LayerSpec s;
    s.kind = LayerKind::reshape;
    s.shape = shape;
    return s;
}

namespace detail::nn
{

// C = alpha op(A) op(B) + beta C, row-major, on this thread: the SDK's AVX-512 product where the CPU has
// it and the product is large enough (ansatz/sgemm_avx512.hpp), else one OpenBLAS call (on OpenBLAS's
// threads, when nobody made it single-threaded).
inline void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0)
    {
        // BLAS leaves C * beta for an empty sum; say it explicitly (some BLAS skip the call).
        for (int64_t r = 0; r < m; ++r)
            for (int64_t j = 0; j < n; ++j)
                c[r * ldc + j] = beta == 0.0f ? 0.0f : beta * c[r * ldc + j];
        return;
    }
    namespace fast = ansatz::detail::sgemm_avx512;
    if (fast::available() && fast::worth_it(m, n, k))
        return fast::sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
                static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// How a product C {m, n} (with k terms each) is split over a team: blocks of columns or of rows, a
// multiple of 16 wide, at least ~2^20 multiply-adds per part (as blas::gemm(team, ...)).
enum class Along
{
    any,
    columns,
    rows
};

struct Split
{
    int parts = 1;
    bool by_columns = true;
    int64_t m = 0, n = 0;
    // The rows [r0, r1) and columns [c0, c1) of part `part`.
    void block(int part, int64_t& r0, int64_t& r1, int64_t& c0, int64_t& c1) const
    {
        const auto [begin, end] = ThreadTeam::range(by_columns ? n : m, part, parts, 16);
        r0 = by_columns ? 0 : begin;
        r1 = by_columns ? m : end;
        c0 = by_columns ? begin : 0;
        c1 = by_columns ? end : n;
    }
};

inline Split split(int64_t m, int64_t n, int64_t k, int team, Along along)
{
    constexpr int64_t min_work = int64_t{ 1 } << 20;
    Split s;
    s.m = m;
    s.n = n;
    s.by_columns = along == Along::columns || (along == Along::any && n >= m);
    const int64_t extent = s.by_columns ? n : m;
    s.parts = static_cast<int>(std::clamp<int64_t>(
        std::min(m * n * std::max<int64_t>(k, 1) / min_work, extent / 16), 1, std::max(team, 1)));
    return s;
}

// ---- Element-wise kernels: xsimd batches of the instruction set the plugin is compiled for, the last
// n % lanes elements in a batch padded with zeros (so a value never depends on its position).

using Floats = xsimd::batch<float, xsimd::default_arch>;
inline constexpr int64_t lanes = static_cast<int64_t>(Floats::size);

// out[i] = f(a[i]); out == a allowed.
template <class F>
inline void map(const float* a, float* out, int64_t n, F f)
{
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes)
        f(Floats::load_unaligned(a + i)).store_unaligned(out + i);
    if (i < n)
    {
        float ta[lanes] = {};
        std::copy(a + i, a + n, ta);
        f(Floats::load_unaligned(ta)).store_unaligned(ta);
        std::copy(ta, ta + (n - i), out + i);
    }
}

// out[i] = f(a[i], b[i]); out may be a or b.
template <class F>
inline void zip(const float* a, const float* b, float* out, int64_t n, F f)
{
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes)
        f(Floats::load_unaligned(a + i), Floats::load_unaligned(b + i)).store_unaligned(out + i);
    if (i < n)
    {
        float ta[lanes] = {}, tb[lanes] = {};
        std::copy(a + i, a + n, ta);
        std::copy(b + i, b + n, tb);
        f(Floats::load_unaligned(ta), Floats::load_unaligned(tb)).store_unaligned(ta);
        std::copy(ta, ta + (n - i), out + i);
    }
}

// The activations that are cheapest applied in the same pass as the bias.
inline Floats relu(Floats v)
{
    return xsimd::max(v, Floats(0.0f));
}
inline Floats leaky(Floats v, float slope)
{
    return xsimd::select(v > Floats(0.0f), v, v * Floats(slope));
}

// The activations that ansatz/math.hpp computes (with its AVX2 kernels where the CPU has them), in place.
inline void apply_math(Activation a, float* y, int64_t n)
{
    switch (a)
    {
    case Activation::tanh:
        ansatz::tanh(y, n);
        return;
    case Activation::sigmoid:
        ansatz::sigmoid(y, n);
        return;
    case Activation::softplus:
        ansatz::softplus(y, n);
        return;
    case Activation::swish: // bias_swish, which keeps the sigmoid
        return;
    default:
        return;
    }
}

// y[i] = swish(x[i] + bias[i]) with s[i] = sigmoid(x[i] + bias[i]) kept (bias nullptr: none); y == x allowed.
inline void bias_swish(const float* x, const float* bias, float* y, float* s, int64_t n)
{
    if (bias)
        zip(x, bias, y, n, [](Floats v, Floats b) { return v + b; });
    else if (y != x)
        std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
    ansatz::sigmoid(y, s, n);
    zip(y, s, y, n, [](Floats v, Floats g) { return v * g; });
}

// y[i] = act(x[i] + bias[i]) (bias nullptr: no bias); y == x allowed. swish keeps sigmoid(x + bias) in s.
inline void bias_act(Activation a, float slope, const float* x, const float* bias, float* y, int64_t n,
                     float* s = nullptr)
{
    if (a == Activation::swish)
        return bias_swish(x, bias, y, s, n);
    if (bias == nullptr)
    {
        if (a == Activation::relu)
            map(x, y, n, [](Floats v) { return relu(v); });
        else if (a == Activation::leaky_relu)
            map(x, y, n, [slope](Floats v) { return leaky(v, slope); });
        else
        {
            if (y != x)
                std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
            apply_math(a, y, n);
        }
        return;
    }
    if (a == Activation::relu)
        zip(x, bias, y, n, [](Floats v, Floats b) { return relu(v + b); });
    else if (a == Activation::leaky_relu)
        zip(x, bias, y, n, [slope](Floats v, Floats b) { return leaky(v + b, slope); });
    else
    {
        zip(x, bias, y, n, [](Floats v, Floats b) { return v + b; });
        apply_math(a, y, n);
    }
}

// y[i] = act(x[i] + b) with one bias value for the run (a channel of an image); y == x allowed. swish keeps
// sigmoid(x + b) in s.
inline void bias_act(Activation a, float slope, const float* x, float b, float* y, int64_t n,
                     float* s = nullptr)
{
    const Floats bias(b);
    if (a == Activation::swish)
    {
        map(x, y, n, [bias](Floats v) { return v + bias; });
        return bias_swish(y, nullptr, y, s, n);
    }
    if (a == Activation::relu)
        map(x, y, n, [bias](Floats v) { return relu(v + bias); });
    else if (a == Activation::leaky_relu)
        map(x, y, n, [bias, slope](Floats v) { return leaky(v + bias, slope); });
    else
    {
        map(x, y, n, [bias](Floats v) { return v + bias; });
        apply_math(a, y, n);
    }
}

// dz[i] = dy[i] swish'(x[i]) = dy[i] (s + y (1 - s)), from the forward pass's s = sigmoid(x) and y = x s;
// dz == dy allowed.
inline void swish_grad(const float* s, const float* y, const float* dy, float* dz, int64_t n)
{
    for (int64_t i = 0; i < n; i += lanes)
    {
        const int64_t m = std::min(lanes, n - i);
        if (m == lanes)
        {
            const Floats sv = Floats::load_unaligned(s + i), yv = Floats::load_unaligned(y + i);
            (Floats::load_unaligned(dy + i) * (sv + yv * (Floats(1.0f) - sv))).store_unaligned(dz + i);
        }
        else
            for (int64_t j = i; j < n; ++j)
                dz[j] = dy[j] * (s[j] + y[j] * (1.0f - s[j]));
    }
}

// dz[i] = dy[i] act'(x) computed from y[i] = act(x); dz == dy allowed. softplus' from its output:
// sigmoid(x) = 1 - e^-softplus(x) = -expm1(-y).
inline void act_grad(Activation a, float slope, const float* y, const float* dy, float* dz, int64_t n,
                     const float* s = nullptr)
{
    switch (a)
    {
    case Activation::none:
        if (dz != dy)
            std::memcpy(dz, dy, static_cast<size_t>(n) * sizeof(float));
        return;
    case Activation::relu:
        zip(y, dy, dz, n,
            [](Floats v, Floats g) { return xsimd::select(v > Floats(0.0f), g, Floats(0.0f)); });
        return;
    case Activation::leaky_relu:
        zip(y, dy, dz, n,
            [slope](Floats v, Floats g) { return xsimd::select(v > Floats(0.0f), g, g * Floats(slope)); });
        return;
    case Activation::tanh:
        zip(y, dy, dz, n, [](Floats v, Floats g) { return g * (Floats(1.0f) - v * v); });
        return;
    case Activation::sigmoid:
        zip(y, dy, dz, n, [](Floats v, Floats g) { return g * (v * (Floats(1.0f) - v)); });
        return;
    case Activation::softplus:
        zip(y, dy, dz, n, [](Floats v, Floats g) { return -xsimd::expm1(-v) * g; });
        return;
    case Activation::swish: // from the sigmoid its forward pass kept
        swish_grad(s, y, dy, dz, n);
        return;
    }
}

// sum += x, element by element.
inline void add_to(float* sum, const float* x, int64_t n)
{
    zip(sum, x, sum, n, [](Floats a, Floats b) { return a + b; });
}

// Runs of im2col and col2im: a loop for the short ones (a kernel row of one channel is 3 floats), a
// library call or vectors for the long ones. The same values either way (element by element).
inline void zero(float* d, int64_t n)
{
    if (n >= 32)
        std::memset(d, 0, static_cast<size_t>(n) * sizeof(float));
    else
        for (int64_t i = 0; i < n; ++i)
            d[i] = 0.0f;
}
inline void copy(float* d, const float* s, int64_t n)
{
    if (n >= 32)
        std::memcpy(d, s, static_cast<size_t>(n) * sizeof(float));
    else
        for (int64_t i = 0; i < n; ++i)
            d[i] = s[i];
}
inline void add(float* d, const float* s, int64_t n)
{
    if (n >= 4 * lanes)
        add_to(d, s, n);
    else
        for (int64_t i = 0; i < n; ++i)
            d[i] += s[i];
}

// The sum of x, in lane-wise partial sums then a fixed order: the same for a given n and instruction set.
inline float sum(const float* x, int64_t n)
{
    Floats acc(0.0f);
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes)
        acc += Floats::load_unaligned(x + i);
    float partial[lanes];
    acc.store_unaligned(partial);
    float total = 0.0f;
    for (int64_t l = 0; l < lanes; ++l)
        total += partial[l];
    for (; i < n; ++i)
        total += x[i];
    return total;
}

// d[j * ldd + i] = s[i * lds + j] for i < rows, j < cols: in 4 x 4 blocks of SSE registers (x86-64's
// baseline), by bands of 64 columns so that the 64 rows written stay in L1.
inline void transpose(const float* s, int64_t lds, float* d, int64_t ldd, int64_t rows, int64_t cols)
{
    for (int64_t j0 = 0; j0 < cols; j0 += 64)
    {
        const int64_t j1 = std::min(cols, j0 + 64);
        int64_t i = 0;
#if defined(__SSE2__)
        for (; i + 4 <= rows; i += 4)
        {
            const float* s0 = s + i * lds;
            int64_t j = j0;
            for (; j + 4 <= j1; j += 4)
            {
                __m128 r0 = _mm_loadu_ps(s0 + j);
                __m128 r1 = _mm_loadu_ps(s0 + lds + j);
                __m128 r2 = _mm_loadu_ps(s0 + 2 * lds + j);
                __m128 r3 = _mm_loadu_ps(s0 + 3 * lds + j);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                _mm_storeu_ps(d + j * ldd + i, r0);
                _mm_storeu_ps(d + (j + 1) * ldd + i, r1);
                _mm_storeu_ps(d + (j + 2) * ldd + i, r2);
                _mm_storeu_ps(d + (j + 3) * ldd + i, r3);
            }
            for (; j < j1; ++j)
                for (int64_t k = 0; k < 4; ++k)
                    d[j * ldd + i + k] = s0[k * lds + j];
        }
#endif
        for (; i < rows; ++i)
            for (int64_t j = j0; j < j1; ++j)
                d[j * ldd + i] = s[i * lds + j];
    }
}

// A float as a user wrote it: the shortest of up to 6 significant digits ("-0.5", "0.01").
inline std::string number(float v)
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%g", static_cast<double>(v));
    return buffer;
}

inline void check_positive(int64_t value, const char* what)
{
    if (value < 1)
        throw InputError(std::string(what) + " must be at least 1, got " + std::to_string(value));
}

// Uniform in (-bound, bound) from Rng::uniform(), as torch.nn.init.uniform_(-bound, bound).
inline void fill_uniform(std::vector<float>& v, double bound, Rng& rng)
{
    for (float& x : v)
        x = static_cast<float>(bound * (2.0 * static_cast<double>(rng.uniform()) - 1.0));
}

inline int64_t ceil_div(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

inline int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// The grid positions g in [0, grid) with 0 <= g stride - before + tap < image: [lo, hi).
inline void valid_range(const ConvAxis& a, int64_t tap, int64_t& lo, int64_t& hi)
{
    lo = std::max<int64_t>(0, ceil_div(a.before - tap, a.stride));
    hi = std::min<int64_t>(a.grid, floor_div(a.image - 1 + a.before - tap, a.stride) + 1);
    if (hi < lo)
        hi = lo;
}

} // namespace detail::nn

// ---- Linear

inline Linear::Linear(int64_t in_features, int64_t out_features, bool bias)
    : n_in_(in_features), n_out_(out_features)
{
    detail::nn::check_positive(in_features, "the input size");
    detail::nn::check_positive(out_features, "the number of output features");
    in_ = { in_features, 1, 1 };
    out_ = { out_features, 1, 1 };
    params_.push_back({ "weight",
                        { out_features, in_features },
                        std::vector<float>(static_cast<size_t>(out_features * in_features)) });
    if (bias)
        params_.push_back(
            { "bias", { out_features }, std::vector<float>(static_cast<size_t>(out_features)) });
    bias_sums_.resize(static_cast<size_t>(out_features));
}

inline void Linear::initialize(Rng& rng)
{
    const double bound = 1.0 / std::sqrt(static_cast<double>(n_in_));
    for (Parameter& p : params_)
        detail::nn::fill_uniform(p.values, bound, rng);
}

inline void Linear::forward(ThreadTeam& team, const float* x, float* y, int64_t batch)
{
    if (batch <= 0)
        return;
    const float* w = params_[0].values.data();
    const float* b = params_.size() > 1 ? params_[1].values.data() : nullptr;
    float* kept = keep_sigmoid(batch * n_out_);
    const detail::nn::Split s = detail::nn::split(batch, n_out_, n_in_, team.size(), detail::nn::Along::any);
    const blas::SingleThreaded one(team.size() > 1);
    team.run(s.parts, [&](int part) {
        int64_t r0, r1, c0, c1;
        s.block(part, r0, r1, c0, c1);
        // y[r0:r1, c0:c1] = x[r0:r1] W[c0:c1]^T, then its bias and activation while it is in cache.
        detail::nn::sgemm(false, true, r1 - r0, c1 - c0, n_in_, 1.0f, x + r0 * n_in_, n_in_, w + c0 * n_in_,
                          n_in_, 0.0f, y + r0 * n_out_ + c0, n_out_);
        if (b == nullptr && act_ == Activation::none)
            return;
        for (int64_t r = r0; r < r1; ++r)
        {
            float* row = y + r * n_out_ + c0;
            detail::nn::bias_act(act_, slope_, row, b ? b + c0 : nullptr, row, c1 - c0,
                                 kept ? kept + r * n_out_ + c0 : nullptr);
        }
    });
}

inline void Linear::backward(ThreadTeam& team, const float* x, const float* y, const float* dy, float* dz,
                             float* dx, float* const* grads, int64_t batch)
{
    if (batch <= 0)
        return;
    const float* w = params_[0].values.data();
    float* gw = grads ? grads[0] : nullptr; // nullptr: dx only (a gradient with respect to the input)
    float* gb = grads && params_.size() > 1 ? grads[1] : nullptr;
    const float* g = act_ == Activation::none ? dy : dz; // dL/d(pre-activation)
    float* sums = bias_sums_.data();
    // 1. By blocks of output features [o0, o1): dz = dy act'(y), the bias gradient, and the weight
    //    gradient's rows dW[o0:o1] += dz[:, o0:o1]^T x, all from the block this part just wrote.
    const detail::nn::Split s1 =
        detail::nn::split(n_out_, n_in_, batch, team.size(), detail::nn::Along::rows);
    const blas::SingleThreaded one(team.size() > 1);
    team.run(s1.parts, [&](int part) {
        int64_t o0, o1, c0, c1;
        s1.block(part, o0, o1, c0, c1);
        const int64_t width = o1 - o0;
        if (act_ != Activation::none)
            for (int64_t r = 0; r < batch; ++r)
                detail::nn::act_grad(act_, slope_, y + r * n_out_ + o0, dy + r * n_out_ + o0,
                                     dz + r * n_out_ + o0, width, kept(r * n_out_ + o0));
        if (gb)
        {
            std::fill(sums + o0, sums + o1, 0.0f);
            for (int64_t r = 0; r < batch; ++r)
                detail::nn::add_to(sums + o0, g + r * n_out_ + o0, width);
            detail::nn::add_to(gb + o0, sums + o0, width);
        }
        if (gw)
            detail::nn::sgemm(true, false, width, n_in_, batch, 1.0f, g + o0, n_out_, x, n_in_, 1.0f,
                              gw + o0 * n_in_, n_in_);
    });
    if (dx == nullptr)
        return;
    // 2. dx = dz W, by blocks of dx.
    const detail::nn::Split s2 = detail::nn::split(batch, n_in_, n_out_, team.size(), detail::nn::Along::any);
    team.run(s2.parts, [&](int part) {
        int64_t r0, r1, c0, c1;
        s2.block(part, r0, r1, c0, c1);
        detail::nn::sgemm(false, false, r1 - r0, c1 - c0, n_out_, 1.0f, g + r0 * n_out_, n_out_, w + c0,
                          n_in_, 0.0f, dx + r0 * n_in_ + c0, n_in_);
    });
}

inline void Linear::products(int64_t batch, bool input_gradient, std::vector<Product>& out) const
{
    out.push_back({ batch, n_out_, n_in_, false, true, 1 }); // y = x W^T
    out.push_back({ n_out_, n_in_, batch, true, false, 1 }); // dW += dz^T x
    if (input_gradient)
        out.push_back({ batch, n_in_, n_out_, false, false, 1 }); // dx = dz W
}

inline std::string Linear::describe() const
{
    std::string s = "linear " + std::to_string(n_in_) + " -> " + std::to_string(n_out_);
    if (params_.size() == 1)
        s += ", no bias";
    if (act_ != Activation::none)
        s += std::string(", ") + activation_name(act_);
    return s;
}

// ---- Conv2d and ConvTranspose2d
//
// Inside a chunk of G images the layers work channels-last (NHWC), so that every piece of im2col and
// col2im is a run of channels in a row of memory (a kernel row: kw C contiguous floats) rather than a
// few strided pixels. The image side (the input of a Conv2d, the output of a ConvTranspose2d) as
// I {G, H, W, c_image}, the grid side as R {G P_grid, c_grid}, and the columns
//     A {G P_grid, kh kw c_image}: row (g, gy, gx), column (ty, tx, c) = I[g, gy sy - by + ty, gx sx - bx +
//     tx, c]
// (0 outside). With the weight permuted to Wp {c_grid, kh kw c_image} (Wp[r, (t, c)] = W[r, c, t] for a
// Conv2d's {C_out, C_in, kh, kw} and W[r, c, t] for a ConvTranspose2d's {C_in, C_out, kh, kw}: the same
// permutation):
//     image -> grid (Conv2d forward, ConvTranspose2d dx):  R = A Wp^T       (A = im2col(I))
//     grid -> image (ConvTranspose2d forward, Conv2d dx):  A = R Wp, then col2im adds A into I
//     weight gradient (both):                              dWp += R^T A     (R the grid side's dL or x)
// The layer's NCHW input and output are transposed to and from channels-last per chunk (nothing to do
// for one channel), with the bias and activation applied in NCHW where a channel is one contiguous run.
// Part buffers: a = A, b = R, c = I, d = an NCHW chunk (dL/d(pre-activation) before its transposition),
// e = a Conv2d's dx columns dA (allocated at its first use, all 0 between calls: see backward).

inline Conv::Conv(Shape input, const LayerSpec& spec) : transposed_(spec.kind == LayerKind::conv_transpose2d)
{
    using detail::nn::check_positive;
    check_positive(spec.features, "the number of output channels");
    check_positive(input.channels, "the number of input channels");
    check_positive(input.height, "the input height");
    check_positive(input.width, "the input width");
    same_ = spec.same;
    ConvAxis* axes[2] = { &ay_, &ax_ };
    const int64_t in_size[2] = { input.height, input.width };
    const char* axis_name[2] = { "height", "width" };
    for (int d = 0; d < 2; ++d)
    {
        const int64_t k = spec.kernel[d], st = spec.stride[d], p = spec.padding[d],
                      op = spec.output_padding[d];
        const int64_t in = in_size[d];
        check_positive(k, d == 0 ? "the kernel height" : "the kernel width");
        check_positive(st, d == 0 ? "the stride along the height" : "the stride along the width");
        if (!same_ && p < 0)
            throw InputError("the padding must be at least 0, got " + std::to_string(p));
        ConvAxis& a = *axes[d];
        a.kernel = k;
        a.stride = st;
        if (!transposed_)
        {
            int64_t out = 0;
            if (same_)
            {
                out = (in + st - 1) / st;
                const int64_t total = std::max<int64_t>((out - 1) * st + k - in, 0);
                a.before = (total + 1) / 2;
            }
            else
            {
                if (in + 2 * p < k)
                    throw InputError(std::string("the kernel ") + axis_name[d] + " " + std::to_string(k) +
                                     " exceeds the padded input " + axis_name[d] + " " + std::to_string(in) +
                                     " (padding " + std::to_string(p) + " on each side)");
                out = (in + 2 * p - k) / st + 1;
                a.before = p;
            }
            a.image = in;
            a.grid = out;
        }
        else
        {
            int64_t out = 0;
            if (same_)
            {
                out = in * st;
                a.before = (std::max<int64_t>(k - st, 0) + 1) / 2;
            }
            else
            {
                if (op < 0 || op >= st)
                    throw InputError("the output padding must be at least 0 and less than the stride (" +
                                     std::to_string(st) + "), got " + std::to_string(op));
                out = (in - 1) * st - 2 * p + k + op;
                if (out < 1)
                    throw InputError("the output " + std::string(axis_name[d]) + " (" + std::to_string(in) +
                                     " - 1) * " + std::to_string(st) + " - 2 * " + std::to_string(p) + " + " +
                                     std::to_string(k) + " + " + std::to_string(op) + " = " +
                                     std::to_string(out) + " is less than 1");
                a.before = p;
            }
            a.image = out;
            a.grid = in;
        }
    }
    taps_ = ay_.kernel * ax_.kernel;
    p_image_ = ay_.image * ax_.image;
    p_grid_ = ay_.grid * ax_.grid;
    const int64_t c_out = spec.features;
    if (!transposed_)
    {
        c_image_ = input.channels;
        c_grid_ = c_out;
        in_ = input;
        out_ = { c_out, ay_.grid, ax_.grid };
        params_.push_back({ "weight",
                            { c_out, input.channels, ay_.kernel, ax_.kernel },
                            std::vector<float>(static_cast<size_t>(c_out * input.channels * taps_)) });
    }
    else
    {
        c_image_ = c_out;
        c_grid_ = input.channels;
        in_ = input;
        out_ = { c_out, ay_.image, ax_.image };
        params_.push_back({ "weight",
                            { input.channels, c_out, ay_.kernel, ax_.kernel },
                            std::vector<float>(static_cast<size_t>(c_out * input.channels * taps_)) });
    }
    if (spec.bias)
        params_.push_back({ "bias", { c_out }, std::vector<float>(static_cast<size_t>(c_out)) });
    // Images per chunk: the columns of a chunk take about 2^18 floats (1 MiB), so that im2col's output
    // is still in cache when sgemm reads it.
    const int64_t per_image = c_image_ * taps_ * p_grid_;
    chunk_ = std::max<int64_t>(1, (int64_t{ 1 } << 18) / std::max<int64_t>(per_image, 1));
}

inline void Conv::set_chunk(int64_t images)
{
    chunk_ = std::max<int64_t>(images, 1);
    parts_.clear(); // the workspaces are sized for the chunk
}

inline void Conv::initialize(Rng& rng)
{
    // torch: fan_in = weight.size(1) * kh * kw, i.e. C_in kh kw for Conv2d and C_out kh kw for
    // ConvTranspose2d (its weight is {C_in, C_out, kh, kw}).
    const int64_t fan_in = params_[0].shape[1] * taps_;
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (Parameter& p : params_)
        detail::nn::fill_uniform(p.values, bound, rng);
}

inline void Conv::prepare(int parts)
{
    wp_.resize(params_[0].values.size());
    if (static_cast<int>(parts_.size()) >= parts)
        return;
    parts_.resize(static_cast<size_t>(parts));
    const int64_t pixels = chunk_ * p_grid_;
    for (Part& p : parts_)
    {
        if (!p.a.empty())
            continue;
        p.a.resize(static_cast<size_t>(pixels * taps_ * c_image_));
        p.b.resize(static_cast<size_t>(pixels * c_grid_));
        p.c.resize(static_cast<size_t>(chunk_ * p_image_ * c_image_));
        p.d.resize(static_cast<size_t>(chunk_ * out_.size()));
        p.dw.resize(params_[0].values.size());
        p.db.resize(static_cast<size_t>(out_.channels));
    }
}

// Wp[r, (t, c)] = W[r, c, t] (see above).
inline void Conv::permute_weight()
{
    const float* w = params_[0].values.data();
    for (int64_t r = 0; r < c_grid_; ++r)
        for (int64_t c = 0; c < c_image_; ++c)
            for (int64_t t = 0; t < taps_; ++t)
                wp_[static_cast<size_t>((r * taps_ + t) * c_image_ + c)] = w[(r * c_image_ + c) * taps_ + t];
}

// dst {G, P, C} = src {G, C, P} transposed per image (channels-last from channels-first).
inline void Conv::to_channels_last(const float* src, int64_t images, int64_t channels, int64_t pixels,
                                   float* dst)
{
    for (int64_t g = 0; g < images; ++g)
        detail::nn::transpose(src + g * channels * pixels, pixels, dst + g * channels * pixels, channels,
                              channels, pixels);
}

// dst {G, C, P} = src {G, P, C} transposed per image.
inline void Conv::to_channels_first(const float* src, int64_t images, int64_t channels, int64_t pixels,
                                    float* dst)
{
    for (int64_t g = 0; g < images; ++g)
        detail::nn::transpose(src + g * channels * pixels, channels, dst + g * channels * pixels, pixels,
                              pixels, channels);
}

// The kernel columns tx in [t0, t1) that fall inside the image for grid column gx.
inline void Conv::taps_inside(int64_t gx, int64_t& t0, int64_t& t1) const
{
    const int64_t ix0 = gx * ax_.stride - ax_.before;
    t0 = std::clamp<int64_t>(-ix0, 0, ax_.kernel);
    t1 = std::clamp<int64_t>(ax_.image - ix0, t0, ax_.kernel);
}

// A {G P_grid, kh kw c_image} from the channels-last image side I {G, H, W, c_image}.
inline void Conv::im2col(const float* image, int64_t images, float* cols) const
{
    const int64_t c = c_image_, kw = ax_.kernel, row_size = taps_ * c, run = kw * c;
    for (int64_t g = 0; g < images; ++g)
        for (int64_t gy = 0; gy < ay_.grid; ++gy)
            for (int64_t gx = 0; gx < ax_.grid; ++gx)
            {
                float* row = cols + ((g * ay_.grid + gy) * ax_.grid + gx) * row_size;
                int64_t t0, t1;
                taps_inside(gx, t0, t1);
                const int64_t ix0 = gx * ax_.stride - ax_.before;
                for (int64_t ty = 0; ty < ay_.kernel; ++ty)
                {
                    float* dst = row + ty * run;
                    const int64_t iy = gy * ay_.stride - ay_.before + ty;
                    if (iy < 0 || iy >= ay_.image || t0 >= t1)
                    {
                        detail::nn::zero(dst, run);
                        continue;
                    }
                    detail::nn::zero(dst, t0 * c);
                    detail::nn::copy(dst + t0 * c, image + ((g * ay_.image + iy) * ax_.image + ix0 + t0) * c,
                                     (t1 - t0) * c);
                    detail::nn::zero(dst + t1 * c, run - t1 * c);
                }
            }
}

// The adjoint of im2col: adds A into the channels-last image side (which the caller zeroed).
inline void Conv::col2im(const float* cols, int64_t images, float* image) const
{
    const int64_t c = c_image_, row_size = taps_ * c, run = ax_.kernel * c;
    for (int64_t g = 0; g < images; ++g)
        for (int64_t gy = 0; gy < ay_.grid; ++gy)
            for (int64_t gx = 0; gx < ax_.grid; ++gx)
            {
                const float* row = cols + ((g * ay_.grid + gy) * ax_.grid + gx) * row_size;
                int64_t t0, t1;
                taps_inside(gx, t0, t1);
                if (t0 >= t1)
                    continue;
                const int64_t ix0 = gx * ax_.stride - ax_.before;
                for (int64_t ty = 0; ty < ay_.kernel; ++ty)
                {
                    const int64_t iy = gy * ay_.stride - ay_.before + ty;
                    if (iy < 0 || iy >= ay_.image)
                        continue;
                    detail::nn::add(image + ((g * ay_.image + iy) * ax_.image + ix0 + t0) * c,
                                    row + ty * run + t0 * c, (t1 - t0) * c);
                }
            }
}

// Bias and activation on a chunk of g images of the output, in place: per channel plane (NCHW, or one
// channel) or per pixel (channels-last).
inline void Conv::output_pass(float* ys, int64_t g, const float* bias, float* kept) const
{
    const int64_t c = out_.channels, p = out_.height * out_.width;
    const auto at = [kept](int64_t offset) { return kept ? kept + offset : nullptr; };
    if (act_ == Activation::swish && bias)
    {
        // The bias first, then one sigmoid over the whole chunk: a call per pixel of a few channels
        // would cost more than the sigmoid itself.
        if (out_last_ && c > 1)
            for (int64_t i = 0; i < g * p; ++i)
                detail::nn::zip(ys + i * c, bias, ys + i * c, c,
                                [](detail::nn::Floats v, detail::nn::Floats b) { return v + b; });
        else
            for (int64_t i = 0; i < g * c; ++i)
                detail::nn::bias_act(Activation::none, slope_, ys + i * p, bias[i % c], ys + i * p, p);
        bias = nullptr;
    }
    if (bias == nullptr)
        detail::nn::bias_act(act_, slope_, ys, nullptr, ys, g * c * p, kept);
    else if (out_last_ && c > 1)
        for (int64_t i = 0; i < g * p; ++i)
            detail::nn::bias_act(act_, slope_, ys + i * c, bias, ys + i * c, c, at(i * c));
    else
        for (int64_t i = 0; i < g * c; ++i)
            detail::nn::bias_act(act_, slope_, ys + i * p, bias[i % c], ys + i * p, p, at(i * p));
}

inline void Conv::forward(ThreadTeam& team, const float* x, float* y, int64_t batch)
{
    if (batch <= 0)
        return;
    const int parts = static_cast<int>(std::min<int64_t>(team.size(), batch));
    prepare(parts);
    permute_weight();
    const float* wp = wp_.data();
    const float* bias = params_.size() > 1 ? params_[1].values.data() : nullptr;
    const int64_t row_size = taps_ * c_image_;
    const int64_t in_size = in_.size(), out_size = out_.size();
    const int64_t c_in = in_.channels, p_in = in_.height * in_.width;
    const int64_t c_out = out_.channels, p_out = out_.height * out_.width;
    float* kept = keep_sigmoid(batch * out_size);
    // One input channel: direct loops instead of im2col + a thin sgemm (nn_direct_conv_impl.hpp), with
    // the weight as wt {taps, C}.
    const bool direct = detail::direct::applies(transposed_, c_image_, c_grid_);
    if (direct)
    {
        wt_.resize(static_cast<size_t>(taps_ * c_grid_));
        for (int64_t r = 0; r < c_grid_; ++r)
            for (int64_t t = 0; t < taps_; ++t)
                wt_[static_cast<size_t>(t * c_grid_ + r)] = wp[r * taps_ + t];
    }
    const blas::SingleThreaded one(team.size() > 1);
    team.run(parts, [&](int part) {
        Part& ws = parts_[static_cast<size_t>(part)];
        float* in_buffer = transposed_ ? ws.b.data() : ws.c.data();
        float* out_buffer = transposed_ ? ws.c.data() : ws.b.data();
        const auto [first, end] = ThreadTeam::range(batch, part, parts);
        for (int64_t n0 = first; n0 < end; n0 += chunk_)
        {
            const int64_t g = std::min(chunk_, end - n0);
            const int64_t rows = g * p_grid_;
            const float* xs = x + n0 * in_size;
            float* ys = y + n0 * out_size;
            // The input and the output channels-last: in place when they are (or have one channel).
            const float* in = xs;
            if (!in_last_ && c_in > 1)
            {
                to_channels_last(xs, g, c_in, p_in, in_buffer);
                in = in_buffer;
            }
            float* out = out_last_ || c_out == 1 ? ys : out_buffer;
            // A Conv2d starts its output rows at the bias (beta 1): no zeroing pass in OpenBLAS and no
            // bias pass after it.
            if (direct)
                detail::direct::forward(in, g, ay_, ax_, wt_.data(), bias, c_grid_, out);
            else if (!transposed_)
            {
                im2col(in, g, ws.a.data()); // R = A Wp^T
                if (bias)
                    for (int64_t r = 0; r < rows; ++r)
                        detail::nn::copy(out + r * c_grid_, bias, c_grid_);
                detail::nn::sgemm(false, true, rows, c_grid_, row_size, 1.0f, ws.a.data(), row_size, wp,
                                  row_size, bias ? 1.0f : 0.0f, out, c_grid_);
            }
            else
            {
                detail::nn::sgemm(false, false, rows, row_size, c_grid_, 1.0f, in, c_grid_, wp, row_size,
                                  0.0f, ws.a.data(), row_size); // A = R Wp, then col2im
                std::fill(out, out + g * out_size, 0.0f);
                col2im(ws.a.data(), g, out);
            }
            if (out != ys)
                to_channels_first(out, g, c_out, p_out, ys);
            const float* bias_left = transposed_ ? bias : nullptr; // a Conv2d's is in already
            if (bias_left || act_ != Activation::none)
                output_pass(ys, g, bias_left, kept ? kept + n0 * out_size : nullptr);
        }
    });
}

inline void Conv::backward(ThreadTeam& team, const float* x, const float* y, const float* dy, float*,
                           float* dx, float* const* grads, int64_t batch)
{
    if (batch <= 0)
        return;
    const int parts = static_cast<int>(std::min<int64_t>(team.size(), batch));
    prepare(parts);
    permute_weight();
    const float* wp = wp_.data();
    const bool weights = grads != nullptr; // nullptr: dx only (a gradient with respect to the input)
    const bool has_bias = weights && params_.size() > 1;
    const int64_t row_size = taps_ * c_image_;
    const int64_t in_size = in_.size(), out_size = out_.size();
    const int64_t c_in = in_.channels, p_in = in_.height * in_.width;
    const int64_t c_out = out_.channels, p_out = out_.height * out_.width;
    // One input channel: dx by direct loops instead of a thin sgemm + col2im (nn_direct_conv_impl.hpp),
    // with the weight as wpad {C, kh, 8}.
    const bool direct =
        dx && detail::direct::input_gradient_applies(transposed_, c_image_, c_grid_, ay_, ax_);
    if (direct)
    {
        wt_.assign(static_cast<size_t>(c_grid_ * ay_.kernel * 8), 0.0f);
        for (int64_t r = 0; r < c_grid_; ++r)
            for (int64_t ty = 0; ty < ay_.kernel; ++ty)
                std::copy_n(wp + r * taps_ + ty * ax_.kernel, ax_.kernel,
                            wt_.begin() + (r * ay_.kernel + ty) * 8);
    }
    const blas::SingleThreaded one(team.size() > 1);
    team.run(parts, [&](int part) {
        Part& ws = parts_[static_cast<size_t>(part)];
        float* in_buffer = transposed_ ? ws.b.data() : ws.c.data();
        float* out_buffer = transposed_ ? ws.c.data() : ws.b.data();
        std::fill(ws.dw.begin(), ws.dw.end(), 0.0f);
        std::fill(ws.db.begin(), ws.db.end(), 0.0f);
        const auto [first, end] = ThreadTeam::range(batch, part, parts);
        for (int64_t n0 = first; n0 < end; n0 += chunk_)
        {
            const int64_t g = std::min(chunk_, end - n0);
            const int64_t rows = g * p_grid_;
            const float* xs = x + n0 * in_size;
            const float* ys = y + n0 * out_size;
            const float* dys = dy + n0 * out_size;
            // dL/d(pre-activation) in the output's layout (dy itself without an activation), and the
            // bias gradient from it.
            const float* dz = dys;
            if (act_ != Activation::none)
            {
                detail::nn::act_grad(act_, slope_, ys, dys, ws.d.data(), g * out_size, kept(n0 * out_size));
                dz = ws.d.data();
            }
            const bool out_last = out_last_ || c_out == 1;
            if (has_bias)
            {
                if (out_last && c_out > 1)
                    for (int64_t i = 0; i < g * p_out; ++i)
                        detail::nn::add_to(ws.db.data(), dz + i * c_out, c_out);
                else
                    for (int64_t i = 0; i < g * c_out; ++i)
                        ws.db[static_cast<size_t>(i % c_out)] += detail::nn::sum(dz + i * p_out, p_out);
            }
            // dz and x channels-last.
            if (!out_last)
            {
                to_channels_last(dz, g, c_out, p_out, out_buffer);
                dz = out_buffer;
            }
            const bool in_last = in_last_ || c_in == 1;
            const float* in = xs;
            if (!in_last && weights)
            {
                to_channels_last(xs, g, c_in, p_in, in_buffer);
                in = in_buffer;
            }
            float* dxs = dx ? dx + n0 * in_size : nullptr;
            float* din = in_last ? dxs : in_buffer; // dL/dx channels-last (in_buffer is free once read)
            if (!transposed_)
            {
                // image side x, grid side dz: A = im2col(x); dWp += dz^T A; dA = dz Wp -> col2im -> dx.
                if (weights)
                {
                    im2col(in, g, ws.a.data());
                    detail::nn::sgemm(true, false, c_grid_, row_size, rows, 1.0f, dz, c_grid_, ws.a.data(),
                                      row_size, 1.0f, ws.dw.data(), row_size);
                }
                if (direct)
                {
                    std::fill(din, din + g * in_size, 0.0f);
                    detail::direct::input_gradient(dz, g, ay_, ax_, wt_.data(), c_grid_, din);
                }
                else if (dx)
                {
                    // Into columns that are all 0 (beta 1), cleared again once col2im has read them: with
                    // beta 0 OpenBLAS would zero them itself first, in a pass of scalar stores that took
                    // more time than the vector stores of the clearing.
                    if (ws.e.empty())
                        ws.e.assign(ws.a.size(), 0.0f);
                    float* cols = ws.e.data();
                    detail::nn::sgemm(false, false, rows, row_size, c_grid_, 1.0f, dz, c_grid_, wp, row_size,
                                      1.0f, cols, row_size);
                    std::fill(din, din + g * in_size, 0.0f);
                    col2im(cols, g, din);
                    detail::nn::zero(cols, rows * row_size);
                }
            }
            else
            {
                // image side dz, grid side x: A = im2col(dz); dWp += x^T A; dx = A Wp^T.
                im2col(dz, g, ws.a.data());
                if (weights)
                    detail::nn::sgemm(true, false, c_grid_, row_size, rows, 1.0f, in, c_grid_, ws.a.data(),
                                      row_size, 1.0f, ws.dw.data(), row_size);
                if (dx)
                    detail::nn::sgemm(false, true, rows, c_grid_, row_size, 1.0f, ws.a.data(), row_size, wp,
                                      row_size, 0.0f, din, c_grid_);
            }
            if (dx && din != dxs)
                to_channels_first(din, g, c_in, p_in, dxs);
        }
    });
    if (!weights)
        return;
    // The parts' sums, in part order (the same order for a given team size: reproducible), the weight's
    // back from Wp's order: dW[r, c, t] += sum_p dWp[p][r, (t, c)].
    for (int p = 1; p < parts; ++p)
    {
        detail::nn::add_to(parts_[0].dw.data(), parts_[static_cast<size_t>(p)].dw.data(),
                           static_cast<int64_t>(parts_[0].dw.size()));
        detail::nn::add_to(parts_[0].db.data(), parts_[static_cast<size_t>(p)].db.data(),
                           static_cast<int64_t>(parts_[0].db.size()));
    }
    const float* dwp = parts_[0].dw.data();
    float* gw = grads[0];
    for (int64_t r = 0; r < c_grid_; ++r)
        for (int64_t c = 0; c < c_image_; ++c)
            for (int64_t t = 0; t < taps_; ++t)
                gw[(r * c_image_ + c) * taps_ + t] += dwp[(r * taps_ + t) * c_image_ + c];
    if (has_bias)
        detail::nn::add_to(grads[1], parts_[0].db.data(), c_out);
}

inline void Conv::products(int64_t batch, bool input_gradient, std::vector<Product>& out) const
{
    // A one-channel Conv2d's forward pass and (kernels up to 8 x 8) input gradient run as direct loops
    // (nn_direct_conv_impl.hpp), not as products.
    const bool direct = detail::direct::applies(transposed_, c_image_, c_grid_);
    const int64_t k = c_image_ * taps_, rows = batch * p_grid_;
    if (!transposed_ && !direct)
        out.push_back({ rows, c_grid_, k, false, true, 1 }); // R = A Wp^T
    else if (transposed_)
        out.push_back({ rows, k, c_grid_, false, false, 1 }); // A = R Wp
    out.push_back({ c_grid_, k, rows, true, false, 1 });      // dWp += R^T A
    if (input_gradient)
    {
        if (!transposed_ && !detail::direct::input_gradient_applies(transposed_, c_image_, c_grid_, ay_, ax_))
            out.push_back({ rows, k, c_grid_, false, false, 1 });
        else if (transposed_)
            out.push_back({ rows, c_grid_, k, false, true, 1 });
    }
}

inline std::string Conv::describe() const
{
    std::string s = transposed_ ? "conv_transpose2d " : "conv2d ";
    s += shape_string(in_) + " -> " + shape_string(out_) + ", " + std::to_string(ay_.kernel) + "x" +
         std::to_string(ax_.kernel) + " stride " + std::to_string(ay_.stride) +
         (ax_.stride != ay_.stride ? "x" + std::to_string(ax_.stride) : std::string());
    if (same_)
        s += " same";
    else
        s += " padding " + std::to_string(ay_.before) +
             (ax_.before != ay_.before ? "x" + std::to_string(ax_.before) : std::string());
    if (params_.size() == 1)
        s += ", no bias";
    if (act_ != Activation::none)
        s += std::string(", ") + activation_name(act_);
    return s;
}

// ---- ActivationLayer

inline ActivationLayer::ActivationLayer(Shape shape, Activation a, float negative_slope)
{
    in_ = out_ = shape;
    act_ = a;
    slope_ = negative_slope;
}

inline void ActivationLayer::forward(ThreadTeam& team, const float* x, float* y, int64_t batch)
{
    const int64_t n = batch * in_.size();
    if (n <= 0)
        return;
    const int parts = team.parts_for(n, int64_t{ 1 } << 14);
    float* kept = keep_sigmoid(n);
    team.run(parts, [&](int part) {
        const auto [begin, end] = ThreadTeam::range(n, part, parts, 64);
        detail::nn::bias_act(act_, slope_, x + begin, nullptr, y + begin, end - begin,
                             kept ? kept + begin : nullptr);
    });
}

inline void ActivationLayer::backward(ThreadTeam& team, const float*, const float* y, const float* dy, float*,
                                      float* dx, float* const*, int64_t batch)
{
    const int64_t n = batch * in_.size();
    if (n <= 0 || dx == nullptr)
        return;
    const int parts = team.parts_for(n, int64_t{ 1 } << 14);
    team.run(parts, [&](int part) {
        const auto [begin, end] = ThreadTeam::range(n, part, parts, 64);
        detail::nn::act_grad(act_, slope_, y + begin, dy + begin, dx + begin, end - begin, kept(begin));
    });
}

inline std::string ActivationLayer::describe() const
{
    return std::string(activation_name(act_)) + " " + shape_string(in_);
}

// ---- Sequential

inline Sequential::Sequential(const std::vector<LayerSpec>& layers, Shape input, std::string prefix)
    : in_(input)
{
    static const char* const kinds[] = { "linear",     "conv2d",  "conv_transpose2d",
                                         "activation", "flatten", "reshape" };
    if (input.channels < 1 || input.height < 1 || input.width < 1)
        throw InputError("the input shape " + shape_string(input) + " has an extent below 1");
    Shape cur = input;
    Layer* fusable = nullptr; // the last layer with parameters, while no activation followed it
    bool reshaped = false;    // a flatten or reshape since the last layer
    for (size_t i = 0; i < layers.size(); ++i)
    {
        const LayerSpec& spec = layers[i];
        const std::string where =
            "layer " + std::to_string(i) + " (" + kinds[static_cast<int>(spec.kind)] + "): ";
        try
        {
            switch (spec.kind)
            {
            case LayerKind::linear:
            case LayerKind::conv2d:
            case LayerKind::conv_transpose2d:
            {
                std::unique_ptr<Layer> layer;
                if (spec.kind == LayerKind::linear)
                    layer = std::make_unique<Linear>(cur.size(), spec.features, spec.bias);
                else
                {
                    auto conv = std::make_unique<Conv>(cur, spec);
                    // Two convolutions in a row (activations fused between them) pass channels-last memory.
                    if (!layers_.empty() && !reshaped)
                        if (auto* before = dynamic_cast<Conv*>(layers_.back().get()))
                        {
                            before->set_channels_last(before->input_channels_last(), true);
                            conv->set_channels_last(true, false);
                        }
                    layer = std::move(conv);
                }
                reshaped = false;
                cur = layer->output_shape();
                first_param_.push_back(static_cast<int32_t>(names_.size()));
                for (const Parameter& p : layer->parameters())
                    names_.push_back(prefix + std::to_string(i) + "." + p.name);
                fusable = layer.get();
                layers_.push_back(std::move(layer));
                items_.push_back(static_cast<int>(i));
                break;
            }
            case LayerKind::activation:
                if (spec.activation == Activation::leaky_relu && !(spec.negative_slope >= 0.0f))
                    throw InputError("the negative slope of leaky_relu must be at least 0, got " +
                                     detail::nn::number(spec.negative_slope));
                if (spec.activation == Activation::none)
                    break;
                if (fusable)
                {
                    fusable->fuse(spec.activation, spec.negative_slope);
                    fusable = nullptr;
                    break;
                }
                first_param_.push_back(static_cast<int32_t>(names_.size()));
                layers_.push_back(
                    std::make_unique<ActivationLayer>(cur, spec.activation, spec.negative_slope));
                items_.push_back(static_cast<int>(i));
                reshaped = false;
                break;
            case LayerKind::flatten:
                cur = { cur.size(), 1, 1 };
                reshaped = true;
                break;
            case LayerKind::reshape:
                if (spec.shape.channels < 1 || spec.shape.height < 1 || spec.shape.width < 1)
                    throw InputError("the shape " + shape_string(spec.shape) + " has an extent below 1");
                if (spec.shape.size() != cur.size())
                    throw InputError("cannot reshape the " + std::to_string(cur.size()) + " values of " +
                                     shape_string(cur) + " to " + shape_string(spec.shape) + " (" +
                                     std::to_string(spec.shape.size()) + " values)");
                cur = spec.shape;
                reshaped = true;
                break;
            }
        }
        catch (const InputError& e)
        {
            throw InputError(where + e.what());
        }
        shapes_.push_back(cur);
    }
    if (layers_.empty())
        throw InputError("the stack has no linear, convolution or activation layer");
    out_ = cur;
    grad_ptrs_.resize(names_.size());
}

inline std::string Sequential::summary() const
{
    std::string s;
    for (size_t l = 0; l < layers_.size(); ++l)
    {
        int64_t count = 0;
        for (const Parameter& p : layers_[l]->parameters())
            count += static_cast<int64_t>(p.values.size());
        s += std::to_string(items_[l]) + ": " + layers_[l]->describe() + " (" + std::to_string(count) +
             " parameters)\n";
    }
    return s;
}

inline void Sequential::initialize(Rng& rng)
{
    for (auto& layer : layers_)
        layer->initialize(rng);
}

inline std::vector<ansatz_named_tensor> Sequential::parameters()
{
    std::vector<ansatz_named_tensor> out;
    out.reserve(names_.size());
    size_t k = 0;
    for (auto& layer : layers_)
        for (Parameter& p : layer->parameters())
        {
            ansatz_named_tensor t{};
            t.name = names_[k++].c_str();
            t.tensor.data = p.values.data();
            t.tensor.dtype = ANSATZ_DTYPE_FLOAT32;
            t.tensor.device = ANSATZ_DEVICE_HOST;
            t.tensor.rank = static_cast<int32_t>(p.shape.size());
            for (size_t d = 0; d < p.shape.size(); ++d)
                t.tensor.shape[d] = p.shape[d];
            out.push_back(t);
        }
    return out;
}

inline int64_t Sequential::parameter_size() const
{
    int64_t n = 0;
    for (const auto& layer : layers_)
        for (const Parameter& p : std::as_const(*layer).parameters())
            n += static_cast<int64_t>(p.values.size());
    return n;
}

inline void Sequential::grow(int64_t batch)
{
    if (batch <= capacity_)
        return;
    int64_t widest = in_.size();
    outputs_.resize(layers_.size());
    for (size_t l = 0; l < layers_.size(); ++l)
    {
        const int64_t size = layers_[l]->output_shape().size();
        widest = std::max(widest, size);
        outputs_[l].resize(static_cast<size_t>(batch * size));
    }
    for (auto& g : grad_)
        g.resize(static_cast<size_t>(batch * widest));
    capacity_ = batch;
}

inline const float* Sequential::forward(ThreadTeam& team, const float* x, int64_t batch)
{
    if (batch < 0)
        throw Error("Sequential::forward: a batch of " + std::to_string(batch) + " rows");
    grow(std::max<int64_t>(batch, 1));
    input_ = x;
    batch_ = batch;
    const blas::SingleThreaded one(team.size() > 1);
    const float* cur = x;
    for (size_t l = 0; l < layers_.size(); ++l)
    {
        float* y = outputs_[l].data();
        layers_[l]->forward(team, cur, y, batch);
        cur = y;
    }
    return cur;
}

inline ansatz_tensor Sequential::output()
{
    return make_view(outputs_.empty() ? nullptr : outputs_.back().data(),
                     { std::max<int64_t>(batch_, 0), out_.size() });
}

inline void Sequential::backward(ThreadTeam& team, const float* dy, float* dx,
                                 std::span<const ansatz_tensor> grads)
{
    if (grads.size() != names_.size())
        throw Error("Sequential::backward: " + std::to_string(grads.size()) + " gradient buffers for " +
                    std::to_string(names_.size()) + " parameters");
    size_t k = 0;
    for (auto& layer : layers_)
        for (const Parameter& p : layer->parameters())
        {
            const ansatz_tensor& g = grads[k];
            if (g.dtype != ANSATZ_DTYPE_FLOAT32 || element_count(g) != static_cast<int64_t>(p.values.size()))
                throw Error("Sequential::backward: the gradient of " + names_[k] + " is " +
                            dtype_name(g.dtype) + " " + ansatz::shape_string(g) + ", expected " +
                            std::to_string(p.values.size()) + " float32 values");
            grad_ptrs_[k] = static_cast<float*>(g.data);
            ++k;
        }
    backward(team, dy, dx, grad_ptrs_.data());
}

inline void Sequential::backward(ThreadTeam& team, const float* dy, float* dx, float* const* grads)
{
    if (batch_ < 0)
        throw Error("Sequential::backward before any forward");
    const blas::SingleThreaded one(team.size() > 1);
    const int depth = static_cast<int>(layers_.size());
    const float* cur = dy;
    for (int d = 0; d < depth; ++d)
    {
        const int l = depth - 1 - d;
        // dy of this layer is the dx of the one above (buffer d % 2), used in place as its dz; the top
        // layer reads the caller's dy and writes dz into buffer 0.
        float* dz = grad_[d == 0 ? 0 : d % 2].data();
        float* dxl = l == 0 ? dx : grad_[(d + 1) % 2].data();
        const float* xl = l == 0 ? input_ : outputs_[static_cast<size_t>(l - 1)].data();
        layers_[static_cast<size_t>(l)]->backward(
            team, xl, outputs_[static_cast<size_t>(l)].data(), cur, dz, dxl,
            grads ? grads + first_param_[static_cast<size_t>(l)] : nullptr, batch_);
        cur = dxl;
    }
}

inline std::vector<Product> Sequential::products(int64_t batch, bool input_gradient) const
{
    std::vector<Product> out;
    for (size_t l = 0; l < layers_.size(); ++l)
        layers_[l]->products(batch, input_gradient || l > 0, out);
    return out;
}

inline void Sequential::release()
{
    outputs_.clear();
    outputs_.shrink_to_fit();
    for (auto& g : grad_)
    {
        g.clear();
        g.shrink_to_fit();
    }
    capacity_ = 0;
    batch_ = -1;
    input_ = nullptr;
}

} // namespace ansatz::nn

// ansatz/nn_impl.hpp -- the bodies of ansatz/nn.hpp (include that header, not this one).
#pragma once

#include "ansatz/blas.hpp"
#include "ansatz/math.hpp"
#include "ansatz/nn.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <xsimd/xsimd.hpp>

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
    }
    return "unknown";
}

inline Activation parse_activation(std::string_view name)
{
    for (Activation a : { Activation::none, Activation::relu, Activation::leaky_relu, Activation::tanh,
                          Activation::sigmoid, Activation::softplus })
        if (name == activation_name(a))
            return a;
    throw InputError("unknown activation '" + std::string(name) +
                     "' (known: none, relu, leaky_relu, tanh, sigmoid, softplus)");
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

// C = alpha op(A) op(B) + beta C, row-major, one OpenBLAS call on this thread (or on OpenBLAS's
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
    default:
        return;
    }
}

// y[i] = act(x[i] + bias[i]) (bias nullptr: no bias); y == x allowed.
inline void bias_act(Activation a, float slope, const float* x, const float* bias, float* y, int64_t n)
{
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

// y[i] = act(x[i] + b) with one bias value for the run (a channel of an image); y == x allowed.
inline void bias_act(Activation a, float slope, const float* x, float b, float* y, int64_t n)
{
    const Floats bias(b);
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

// dz[i] = dy[i] act'(x) computed from y[i] = act(x); dz == dy allowed. softplus' from its output:
// sigmoid(x) = 1 - e^-softplus(x) = -expm1(-y).
inline void act_grad(Activation a, float slope, const float* y, const float* dy, float* dz, int64_t n)
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
    }
}

// sum += x, element by element.
inline void add_to(float* sum, const float* x, int64_t n)
{
    zip(sum, x, sum, n, [](Floats a, Floats b) { return a + b; });
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
            detail::nn::bias_act(act_, slope_, row, b ? b + c0 : nullptr, row, c1 - c0);
        }
    });
}

inline void Linear::backward(ThreadTeam& team, const float* x, const float* y, const float* dy, float* dz,
                             float* dx, float* const* grads, int64_t batch)
{
    if (batch <= 0)
        return;
    const float* w = params_[0].values.data();
    float* gw = grads[0];
    float* gb = params_.size() > 1 ? grads[1] : nullptr;
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
                                     dz + r * n_out_ + o0, width);
        if (gb)
        {
            std::fill(sums + o0, sums + o1, 0.0f);
            for (int64_t r = 0; r < batch; ++r)
                detail::nn::add_to(sums + o0, g + r * n_out_ + o0, width);
            detail::nn::add_to(gb + o0, sums + o0, width);
        }
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
// Both work on a matrix of columns A = cols {c_image kh kw, G P_grid}, for a chunk of G images: row
// (c, ty, tx) and column (g, gy, gx) hold image[g, c, gy sy - by + ty, gx sx - bx + tx] (0 outside).
// With the weight as a matrix Wm {c_grid, c_image kh kw} (Conv2d: {C_out, C_in kh kw}; ConvTranspose2d:
// {C_in, C_out kh kw}, both the weight's own memory) and the grid side in channel-major order
// B {c_grid, G P_grid}:
//     image -> grid (Conv2d forward, ConvTranspose2d dx):  B = Wm A       (A from im2col of the image)
//     grid -> image (ConvTranspose2d forward, Conv2d dx):  A = Wm^T B, then col2im adds A into the image
//     weight gradient (both):                              dWm += B A^T   (B the grid side's dL or x)
// Part buffers: a = A, b = B, c = the image side's dL/d(pre-activation) of a ConvTranspose2d chunk.

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
    if (static_cast<int>(parts_.size()) >= parts)
        return;
    parts_.resize(static_cast<size_t>(parts));
    const int64_t cols = chunk_ * p_grid_;
    for (Part& p : parts_)
    {
        if (!p.a.empty())
            continue;
        p.a.resize(static_cast<size_t>(c_image_ * taps_ * cols));
        p.b.resize(static_cast<size_t>(c_grid_ * cols));
        if (transposed_)
            p.c.resize(static_cast<size_t>(chunk_ * c_image_ * p_image_));
        p.dw.resize(params_[0].values.size());
        p.db.resize(static_cast<size_t>(out_.channels));
    }
}

// image: G images {c_image, H, W} one after the other (G = ld / p_grid); cols {c_image taps, ld}.
inline void Conv::im2col(const float* image, float* cols, int64_t ld) const
{
    const int64_t images = ld / p_grid_;
    const int64_t kh = ay_.kernel, kw = ax_.kernel, sx = ax_.stride;
    for (int64_t g = 0; g < images; ++g)
    {
        const float* img = image + g * c_image_ * p_image_;
        float* base = cols + g * p_grid_;
        for (int64_t c = 0; c < c_image_; ++c)
            for (int64_t ty = 0; ty < kh; ++ty)
                for (int64_t tx = 0; tx < kw; ++tx)
                {
                    float* row = base + ((c * kh + ty) * kw + tx) * ld;
                    int64_t lo, hi;
                    detail::nn::valid_range(ax_, tx, lo, hi);
                    for (int64_t gy = 0; gy < ay_.grid; ++gy)
                    {
                        float* dst = row + gy * ax_.grid;
                        const int64_t iy = gy * ay_.stride - ay_.before + ty;
                        if (iy < 0 || iy >= ay_.image || lo >= hi)
                        {
                            std::fill(dst, dst + ax_.grid, 0.0f);
                            continue;
                        }
                        std::fill(dst, dst + lo, 0.0f);
                        const float* src = img + (c * ay_.image + iy) * ax_.image + tx - ax_.before;
                        if (sx == 1)
                            std::memcpy(dst + lo, src + lo, static_cast<size_t>(hi - lo) * sizeof(float));
                        else if (sx == 2)
                            for (int64_t gx = lo; gx < hi; ++gx)
                                dst[gx] = src[2 * gx];
                        else
                            for (int64_t gx = lo; gx < hi; ++gx)
                                dst[gx] = src[gx * sx];
                        std::fill(dst + hi, dst + ax_.grid, 0.0f);
                    }
                }
    }
}

// The adjoint of im2col: adds cols {c_image taps, ld} into G images (which the caller zeroed).
inline void Conv::col2im(const float* cols, int64_t ld, float* image) const
{
    const int64_t images = ld / p_grid_;
    const int64_t kh = ay_.kernel, kw = ax_.kernel, sx = ax_.stride;
    for (int64_t g = 0; g < images; ++g)
    {
        float* img = image + g * c_image_ * p_image_;
        const float* base = cols + g * p_grid_;
        for (int64_t c = 0; c < c_image_; ++c)
            for (int64_t ty = 0; ty < kh; ++ty)
                for (int64_t tx = 0; tx < kw; ++tx)
                {
                    const float* row = base + ((c * kh + ty) * kw + tx) * ld;
                    int64_t lo, hi;
                    detail::nn::valid_range(ax_, tx, lo, hi);
                    if (lo >= hi)
                        continue;
                    for (int64_t gy = 0; gy < ay_.grid; ++gy)
                    {
                        const int64_t iy = gy * ay_.stride - ay_.before + ty;
                        if (iy < 0 || iy >= ay_.image)
                            continue;
                        const float* src = row + gy * ax_.grid;
                        float* dst = img + (c * ay_.image + iy) * ax_.image + tx - ax_.before;
                        if (sx == 1)
                            for (int64_t gx = lo; gx < hi; ++gx)
                                dst[gx] += src[gx];
                        else if (sx == 2)
                            for (int64_t gx = lo; gx < hi; ++gx)
                                dst[2 * gx] += src[gx];
                        else
                            for (int64_t gx = lo; gx < hi; ++gx)
                                dst[gx * sx] += src[gx];
                    }
                }
    }
}

inline void Conv::forward(ThreadTeam& team, const float* x, float* y, int64_t batch)
{
    if (batch <= 0)
        return;
    const int parts = static_cast<int>(std::min<int64_t>(team.size(), batch));
    prepare(parts);
    const float* wm = params_[0].values.data();
    const float* bias = params_.size() > 1 ? params_[1].values.data() : nullptr;
    const int64_t rows = c_image_ * taps_;
    const int64_t in_size = in_.size(), out_size = out_.size();
    const blas::SingleThreaded one(team.size() > 1);
    team.run(parts, [&](int part) {
        Part& ws = parts_[static_cast<size_t>(part)];
        const auto [first, end] = ThreadTeam::range(batch, part, parts);
        for (int64_t n0 = first; n0 < end; n0 += chunk_)
        {
            const int64_t g = std::min(chunk_, end - n0);
            const int64_t ld = g * p_grid_;
            const float* xs = x + n0 * in_size;
            float* ys = y + n0 * out_size;
            if (!transposed_)
            {
                im2col(xs, ws.a.data(), ld);
                detail::nn::sgemm(false, false, c_grid_, ld, rows, 1.0f, wm, rows, ws.a.data(), ld, 0.0f,
                                  ws.b.data(), ld);
                // B {C_out, G P} -> y {G, C_out, P}, with the bias and activation.
                for (int64_t i = 0; i < g; ++i)
                    for (int64_t c = 0; c < c_grid_; ++c)
                        detail::nn::bias_act(act_, slope_, ws.b.data() + c * ld + i * p_grid_,
                                             bias ? bias[c] : 0.0f, ys + (i * c_grid_ + c) * p_grid_,
                                             p_grid_);
            }
            else
            {
                // x {G, C_in, P} -> B {C_in, G P}.
                for (int64_t i = 0; i < g; ++i)
                    for (int64_t c = 0; c < c_grid_; ++c)
                        std::memcpy(ws.b.data() + c * ld + i * p_grid_, xs + (i * c_grid_ + c) * p_grid_,
                                    static_cast<size_t>(p_grid_) * sizeof(float));
                detail::nn::sgemm(true, false, rows, ld, c_grid_, 1.0f, wm, rows, ws.b.data(), ld, 0.0f,
                                  ws.a.data(), ld);
                std::fill(ys, ys + g * out_size, 0.0f);
                col2im(ws.a.data(), ld, ys);
                if (bias || act_ != Activation::none)
                    for (int64_t i = 0; i < g; ++i)
                        for (int64_t c = 0; c < c_image_; ++c)
                        {
                            float* plane = ys + (i * c_image_ + c) * p_image_;
                            detail::nn::bias_act(act_, slope_, plane, bias ? bias[c] : 0.0f, plane, p_image_);
                        }
            }
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
    const float* wm = params_[0].values.data();
    const bool has_bias = params_.size() > 1;
    const int64_t rows = c_image_ * taps_;
    const int64_t in_size = in_.size(), out_size = out_.size();
    const int64_t c_out = out_.channels, p_out = transposed_ ? p_image_ : p_grid_;
    const blas::SingleThreaded one(team.size() > 1);
    team.run(parts, [&](int part) {
        Part& ws = parts_[static_cast<size_t>(part)];
        // Part 0 adds into the caller's buffers, the others into their own (added below, in order).
        float* gw = part == 0 ? grads[0] : ws.dw.data();
        float* gb = has_bias ? (part == 0 ? grads[1] : ws.db.data()) : nullptr;
        if (part != 0)
        {
            std::fill(ws.dw.begin(), ws.dw.end(), 0.0f);
            std::fill(ws.db.begin(), ws.db.end(), 0.0f);
        }
        const auto [first, end] = ThreadTeam::range(batch, part, parts);
        for (int64_t n0 = first; n0 < end; n0 += chunk_)
        {
            const int64_t g = std::min(chunk_, end - n0);
            const int64_t ld = g * p_grid_;
            const float* xs = x + n0 * in_size;
            const float* ys = y + n0 * out_size;
            const float* dys = dy + n0 * out_size;
            if (!transposed_)
            {
                // B = dL/d(pre-activation) in {C_out, G P} order; the bias gradient from it.
                for (int64_t i = 0; i < g; ++i)
                    for (int64_t c = 0; c < c_grid_; ++c)
                    {
                        float* dst = ws.b.data() + c * ld + i * p_grid_;
                        const int64_t at = (i * c_grid_ + c) * p_grid_;
                        detail::nn::act_grad(act_, slope_, ys + at, dys + at, dst, p_grid_);
                        if (gb)
                            gb[c] += detail::nn::sum(dst, p_grid_);
                    }
                im2col(xs, ws.a.data(), ld);
                detail::nn::sgemm(false, true, c_grid_, rows, ld, 1.0f, ws.b.data(), ld, ws.a.data(), ld,
                                  1.0f, gw, rows);
                if (dx)
                {
                    float* dxs = dx + n0 * in_size;
                    detail::nn::sgemm(true, false, rows, ld, c_grid_, 1.0f, wm, rows, ws.b.data(), ld, 0.0f,
                                      ws.a.data(), ld);
                    std::fill(dxs, dxs + g * in_size, 0.0f);
                    col2im(ws.a.data(), ld, dxs);
                }
            }
            else
            {
                // The image side's dL/d(pre-activation) {G, C_out, P_out}: dy itself without an activation.
                const float* dz = dys;
                if (act_ != Activation::none)
                {
                    detail::nn::act_grad(act_, slope_, ys, dys, ws.c.data(), g * out_size);
                    dz = ws.c.data();
                }
                if (gb)
                    for (int64_t i = 0; i < g; ++i)
                        for (int64_t c = 0; c < c_out; ++c)
                            gb[c] += detail::nn::sum(dz + (i * c_out + c) * p_out, p_out);
                im2col(dz, ws.a.data(), ld);
                for (int64_t i = 0; i < g; ++i)
                    for (int64_t c = 0; c < c_grid_; ++c)
                        std::memcpy(ws.b.data() + c * ld + i * p_grid_, xs + (i * c_grid_ + c) * p_grid_,
                                    static_cast<size_t>(p_grid_) * sizeof(float));
                detail::nn::sgemm(false, true, c_grid_, rows, ld, 1.0f, ws.b.data(), ld, ws.a.data(), ld,
                                  1.0f, gw, rows);
                if (dx)
                {
                    float* dxs = dx + n0 * in_size;
                    detail::nn::sgemm(false, false, c_grid_, ld, rows, 1.0f, wm, rows, ws.a.data(), ld, 0.0f,
                                      ws.b.data(), ld);
                    for (int64_t i = 0; i < g; ++i)
                        for (int64_t c = 0; c < c_grid_; ++c)
                            std::memcpy(dxs + (i * c_grid_ + c) * p_grid_, ws.b.data() + c * ld + i * p_grid_,
                                        static_cast<size_t>(p_grid_) * sizeof(float));
                }
            }
        }
    });
    // The other parts' sums, in part order (the same order for a given team size: reproducible).
    for (int p = 1; p < parts; ++p)
    {
        const Part& ws = parts_[static_cast<size_t>(p)];
        detail::nn::add_to(grads[0], ws.dw.data(), static_cast<int64_t>(ws.dw.size()));
        if (has_bias)
            detail::nn::add_to(grads[1], ws.db.data(), static_cast<int64_t>(ws.db.size()));
    }
}

inline void Conv::products(int64_t batch, bool input_gradient, std::vector<Product>& out) const
{
    const int64_t rows = c_image_ * taps_, n = batch * p_grid_;
    if (!transposed_)
        out.push_back({ c_grid_, n, rows, false, false, 1 }); // B = Wm A
    else
        out.push_back({ rows, n, c_grid_, true, false, 1 }); // A = Wm^T B
    out.push_back({ c_grid_, rows, n, false, true, 1 });     // dWm += B A^T
    if (input_gradient)
    {
        if (!transposed_)
            out.push_back({ rows, n, c_grid_, true, false, 1 });
        else
            out.push_back({ c_grid_, n, rows, false, false, 1 });
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
    team.run(parts, [&](int part) {
        const auto [begin, end] = ThreadTeam::range(n, part, parts, 64);
        detail::nn::bias_act(act_, slope_, x + begin, nullptr, y + begin, end - begin);
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
        detail::nn::act_grad(act_, slope_, y + begin, dy + begin, dx + begin, end - begin);
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
                    layer = std::make_unique<Conv>(cur, spec);
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
                break;
            case LayerKind::flatten:
                cur = { cur.size(), 1, 1 };
                break;
            case LayerKind::reshape:
                if (spec.shape.channels < 1 || spec.shape.height < 1 || spec.shape.width < 1)
                    throw InputError("the shape " + shape_string(spec.shape) + " has an extent below 1");
                if (spec.shape.size() != cur.size())
                    throw InputError("cannot reshape the " + std::to_string(cur.size()) + " values of " +
                                     shape_string(cur) + " to " + shape_string(spec.shape) + " (" +
                                     std::to_string(spec.shape.size()) + " values)");
                cur = spec.shape;
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
        layers_[static_cast<size_t>(l)]->backward(team, xl, outputs_[static_cast<size_t>(l)].data(), cur, dz,
                                                  dxl, grads + first_param_[static_cast<size_t>(l)], batch_);
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

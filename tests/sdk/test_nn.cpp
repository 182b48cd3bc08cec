// The SDK's neural-network layers (ansatz/nn.hpp):
//   - every layer and activation, with every stride and padding the VAE pipelines use (Conv2d 3x3 stride 2
//     'same' on even and odd sizes, ConvTranspose2d 3x3 stride 2 'same' = padding 1 + output padding 1,
//     ConvTranspose2d 3x3 stride 1 'same', Linear, each activation) and a few more (rectangular kernels,
//     strides and explicit padding), forward against a double-precision reference written from the
//     definitions (direct loops, no im2col), backward against central finite differences of that
//     reference in double;
//   - forward, input gradient and parameter gradients against torch.nn on fixed inputs
//     (tests/fixtures/nn/torch_reference.txt, written by make_torch_reference.py);
//   - a small Sequential end to end; teams of 1, 2 and 3 threads (bit-identical repeats for a size,
//     agreement to rounding across sizes), products large enough to be split and convolutions in several
//     chunks; PyTorch's initialisation; the bad descriptions' messages.
#include "ansatz/nn.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace ansatz::nn;
using ansatz::Rng;
using ansatz::ThreadTeam;

namespace
{

// The one-channel direct convolution kernels' switch (nn_direct_conv_impl.hpp), as it was before a test
// case turned it, restored when the case ends (also when a REQUIRE throws).
struct DirectPathSwitch
{
    bool& flag = ansatz::nn::detail::direct::enabled();
    const bool had = flag;
    ~DirectPathSwitch() { flag = had; }
};

// ---- A double-precision reference, from the definitions --------------------------------------------

double act_ref(Activation a, float slope, double x)
{
    switch (a)
    {
    case Activation::none:
        return x;
    case Activation::relu:
        return x > 0 ? x : 0.0;
    case Activation::leaky_relu:
        return x > 0 ? x : static_cast<double>(slope) * x;
    case Activation::tanh:
        return std::tanh(x);
    case Activation::sigmoid:
        return 1.0 / (1.0 + std::exp(-x));
    case Activation::softplus:
        return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
    case Activation::swish:
        return x / (1.0 + std::exp(-x));
    }
    return x;
}

// One axis of a convolution as torch defines it: the zero padding before, and the output size.
struct RefAxis
{
    int64_t before, out;
};

RefAxis conv_axis(const LayerSpec& s, int d, int64_t in)
{
    const int64_t k = s.kernel[d], st = s.stride[d];
    if (s.same)
    {
        const int64_t out = (in + st - 1) / st;
        const int64_t total = std::max<int64_t>((out - 1) * st + k - in, 0);
        return { (total + 1) / 2, out };
    }
    return { s.padding[d], (in + 2 * s.padding[d] - k) / st + 1 };
}

RefAxis convt_axis(const LayerSpec& s, int d, int64_t in)
{
    const int64_t k = s.kernel[d], st = s.stride[d];
    if (s.same)
        return { (std::max<int64_t>(k - st, 0) + 1) / 2, in * st };
    return { s.padding[d], (in - 1) * st - 2 * s.padding[d] + k + s.output_padding[d] };
}

using Params = std::vector<std::vector<double>>; // in Sequential::parameters() order

// The stack's output for x {batch, input.size()}, in double.
std::vector<double> reference_forward(const std::vector<LayerSpec>& specs, Shape in,
                                      const std::vector<double>& x, int64_t batch, const Params& params)
{
    std::vector<double> cur = x;
    Shape shape = in;
    size_t p = 0;
    for (const LayerSpec& s : specs)
    {
        std::vector<double> next;
        switch (s.kind)
        {
        case LayerKind::linear:
        {
            const int64_t n_in = shape.size(), n_out = s.features;
            const std::vector<double>& w = params[p++];
            const std::vector<double>* b = s.bias ? &params[p++] : nullptr;
            next.assign(static_cast<size_t>(batch * n_out), 0.0);
            for (int64_t n = 0; n < batch; ++n)
                for (int64_t o = 0; o < n_out; ++o)
                {
                    double acc = b ? (*b)[o] : 0.0;
                    for (int64_t i = 0; i < n_in; ++i)
                        acc += w[o * n_in + i] * cur[n * n_in + i];
                    next[n * n_out + o] = acc;
                }
            shape = { n_out, 1, 1 };
            break;
        }
        case LayerKind::conv2d:
        {
            const RefAxis ay = conv_axis(s, 0, shape.height), ax = conv_axis(s, 1, shape.width);
            const int64_t ci = shape.channels, co = s.features, kh = s.kernel[0], kw = s.kernel[1];
            const std::vector<double>& w = params[p++];
            const std::vector<double>* b = s.bias ? &params[p++] : nullptr;
            const Shape out{ co, ay.out, ax.out };
            next.assign(static_cast<size_t>(batch * out.size()), 0.0);
            for (int64_t n = 0; n < batch; ++n)
                for (int64_t o = 0; o < co; ++o)
                    for (int64_t oy = 0; oy < ay.out; ++oy)
                        for (int64_t ox = 0; ox < ax.out; ++ox)
                        {
                            double acc = b ? (*b)[o] : 0.0;
                            for (int64_t c = 0; c < ci; ++c)
                                for (int64_t ty = 0; ty < kh; ++ty)
                                    for (int64_t tx = 0; tx < kw; ++tx)
                                    {
                                        const int64_t iy = oy * s.stride[0] + ty - ay.before;
                                        const int64_t ix = ox * s.stride[1] + tx - ax.before;
                                        if (iy < 0 || iy >= shape.height || ix < 0 || ix >= shape.width)
                                            continue;
                                        acc += w[((o * ci + c) * kh + ty) * kw + tx] *
                                               cur[((n * ci + c) * shape.height + iy) * shape.width + ix];
                                    }
                            next[((n * co + o) * ay.out + oy) * ax.out + ox] = acc;
                        }
            shape = out;
            break;
        }
        case LayerKind::conv_transpose2d:
        {
            const RefAxis ay = convt_axis(s, 0, shape.height), ax = convt_axis(s, 1, shape.width);
            const int64_t ci = shape.channels, co = s.features, kh = s.kernel[0], kw = s.kernel[1];
            const std::vector<double>& w = params[p++];
            const std::vector<double>* b = s.bias ? &params[p++] : nullptr;
            const Shape out{ co, ay.out, ax.out };
            next.assign(static_cast<size_t>(batch * out.size()), 0.0);
            for (int64_t n = 0; n < batch; ++n)
            {
                for (int64_t o = 0; o < co; ++o)
                    for (int64_t r = 0; r < ay.out * ax.out; ++r)
                        next[(n * co + o) * ay.out * ax.out + r] = b ? (*b)[o] : 0.0;
                // Every input pixel spreads its kernel over the output (the full output cropped by
                // `before` at the top and left).
                for (int64_t c = 0; c < ci; ++c)
                    for (int64_t iy = 0; iy < shape.height; ++iy)
                        for (int64_t ix = 0; ix < shape.width; ++ix)
                        {
                            const double v = cur[((n * ci + c) * shape.height + iy) * shape.width + ix];
                            for (int64_t o = 0; o < co; ++o)
                                for (int64_t ty = 0; ty < kh; ++ty)
                                    for (int64_t tx = 0; tx < kw; ++tx)
                                    {
                                        const int64_t oy = iy * s.stride[0] + ty - ay.before;
                                        const int64_t ox = ix * s.stride[1] + tx - ax.before;
                                        if (oy < 0 || oy >= ay.out || ox < 0 || ox >= ax.out)
                                            continue;
                                        next[((n * co + o) * ay.out + oy) * ax.out + ox] +=
                                            w[((c * co + o) * kh + ty) * kw + tx] * v;
                                    }
                        }
            }
            shape = out;
            break;
        }
        case LayerKind::activation:
            next = cur;
            for (double& v : next)
                v = act_ref(s.activation, s.negative_slope, v);
            break;
        case LayerKind::flatten:
            next = cur;
            shape = { shape.size(), 1, 1 };
            break;
        case LayerKind::reshape:
            next = cur;
            shape = s.shape;
            break;
        }
        cur = std::move(next);
    }
    return cur;
}

std::vector<float> uniform(Rng& rng, int64_t n, float lo, float hi)
{
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v)
        x = lo + (hi - lo) * rng.uniform();
    return v;
}

std::vector<double> to_double(const std::vector<float>& v)
{
    return std::vector<double>(v.begin(), v.end());
}

// The float results of one forward and backward of a Sequential.
struct Run
{
    std::vector<float> y, dx;
    std::vector<std::vector<float>> grads;
};

Run run(Sequential& net, ThreadTeam& team, const std::vector<float>& x, const std::vector<float>& dy,
        int64_t batch, bool with_dx = true)
{
    Run r;
    const float* y = net.forward(team, x.data(), batch);
    r.y.assign(y, y + batch * net.output_size());
    std::vector<ansatz_named_tensor> params = net.parameters();
    std::vector<ansatz_tensor> views;
    r.grads.resize(params.size());
    for (size_t i = 0; i < params.size(); ++i)
    {
        r.grads[i].assign(static_cast<size_t>(ansatz::element_count(params[i].tensor)), 0.0f);
        ansatz_tensor t = params[i].tensor;
        t.data = r.grads[i].data();
        views.push_back(t);
    }
    if (with_dx)
        r.dx.assign(static_cast<size_t>(batch * net.input_size()), 0.0f);
    net.backward(team, dy.data(), with_dx ? r.dx.data() : nullptr, views);
    return r;
}

Params params_of(Sequential& net)
{
    Params p;
    for (const ansatz_named_tensor& t : net.parameters())
    {
        const float* v = static_cast<const float*>(t.tensor.data);
        p.emplace_back(v, v + ansatz::element_count(t.tensor));
    }
    return p;
}

// |a - r| <= atol + rtol |r|, reporting the worst offender.
struct Closeness
{
    double worst = 0.0; // the largest |a - r| / (atol + rtol |r|)
    std::string where;
};

void compare(Closeness& c, const std::string& what, const std::vector<float>& a, const std::vector<double>& r,
             double atol, double rtol)
{
    REQUIRE(a.size() == r.size());
    for (size_t i = 0; i < a.size(); ++i)
    {
        const double ratio = std::abs(static_cast<double>(a[i]) - r[i]) / (atol + rtol * std::abs(r[i]));
        if (!(ratio <= c.worst))
        {
            c.worst = std::isnan(ratio) ? 1e300 : ratio;
            std::ostringstream s;
            s << what;
            if (a.size() > 1)
                s << "[" << i << "]";
            s << " = " << a[i] << ", reference " << r[i];
            c.where = s.str();
        }
    }
}

// Forward against the double reference; backward against its central differences (h = 1e-6, in
// double: truncation error ~h^2, rounding ~1e-10) for every element of x and of every parameter, or a
// seeded sample of `sample` elements of each when that is smaller. Tolerance: |float - reference| <=
// 2e-5 + 2e-4 |reference| (float32 sums of up to 300 terms of size ~1; measured: up to 0.27 of it forward,
// in the 300-200-150 stack whose outputs cancel sums of terms of size ~10, and 0.07 backward).
void check_stack(const std::vector<LayerSpec>& specs, Shape in, int64_t batch, uint64_t seed, int threads,
                 int64_t sample = 1 << 30, int64_t chunk = 0)
{
    INFO("seed " << seed << ", batch " << batch << ", " << threads << " thread(s)");
    Sequential net(specs, in);
    if (chunk > 0)
        for (const auto& layer : net.layers())
            if (auto* conv = dynamic_cast<Conv*>(layer.get()))
                conv->set_chunk(chunk);
    Rng rng(seed);
    net.initialize(rng);
    // Wider than torch's default scale, so that activations leave their linear range.
    for (ansatz_named_tensor& t : net.parameters())
    {
        float* v = static_cast<float*>(t.tensor.data);
        for (int64_t i = 0; i < ansatz::element_count(t.tensor); ++i)
            v[i] = -0.6f + 1.2f * rng.uniform();
    }
    const std::vector<float> x = uniform(rng, batch * net.input_size(), -1.0f, 1.0f);
    const std::vector<float> dy = uniform(rng, batch * net.output_size(), -1.0f, 1.0f);
    ThreadTeam team(threads);
    const Run r = run(net, team, x, dy, batch);
    Params p = params_of(net);
    std::vector<double> xd = to_double(x);
    const std::vector<double> dyd = to_double(dy);

    Closeness forward;
    compare(forward, "y", r.y, reference_forward(specs, in, xd, batch, p), 2e-5, 2e-4);
    INFO("forward, worst " << forward.worst << " of the tolerance at " << forward.where);
    CHECK(forward.worst <= 1.0);

    const double h = 1e-6;
    auto loss = [&] {
        const std::vector<double> y = reference_forward(specs, in, xd, batch, p);
        double s = 0.0;
        for (size_t i = 0; i < y.size(); ++i)
            s += y[i] * dyd[i];
        return s;
    };
    // The elements to check of a vector of n: all, or `sample` of them drawn from a fixed stream.
    auto chosen = [&](size_t n) {
        std::vector<size_t> idx;
        if (static_cast<int64_t>(n) <= sample)
            for (size_t i = 0; i < n; ++i)
                idx.push_back(i);
        else
        {
            Rng pick(seed + 7);
            for (int64_t j = 0; j < sample; ++j)
                idx.push_back(static_cast<size_t>(pick.below(n)));
        }
        return idx;
    };
    auto difference = [&](double& v) {
        const double saved = v;
        v = saved + h;
        const double up = loss();
        v = saved - h;
        const double down = loss();
        v = saved;
        return (up - down) / (2 * h);
    };
    Closeness backward;
    for (size_t i : chosen(xd.size()))
    {
        const double fd = difference(xd[i]);
        compare(backward, "dx[" + std::to_string(i) + "]", { r.dx[i] }, { fd }, 2e-5, 2e-4);
    }
    const std::vector<ansatz_named_tensor> named = net.parameters();
    for (size_t k = 0; k < p.size(); ++k)
        for (size_t i : chosen(p[k].size()))
        {
            const double fd = difference(p[k][i]);
            compare(backward, std::string("grad ") + named[k].name + "[" + std::to_string(i) + "]",
                    { r.grads[k][i] }, { fd }, 2e-5, 2e-4);
        }
    INFO("backward, worst " << backward.worst << " of the tolerance at " << backward.where);
    CHECK(backward.worst <= 1.0);
}

std::vector<LayerSpec> with_activation(LayerSpec layer, Activation a, float slope = 0.01f)
{
    return { layer, activation(a, slope) };
}

// ---- torch fixtures ------------------------------------------------------------------------------------

struct Tensor
{
    std::vector<int64_t> shape;
    std::vector<float> values;
};

std::map<std::string, std::map<std::string, Tensor>> read_torch_reference()
{
    const std::string path = std::string(ANSATZ_TEST_SOURCE_DIR) + "/tests/fixtures/nn/torch_reference.txt";
    std::ifstream in(path);
    REQUIRE(in.good());
    std::map<std::string, std::map<std::string, Tensor>> cases;
    std::string line, current;
    while (std::getline(in, line))
    {
        if (line.empty() || line[0] == '#' || line == "end")
            continue;
        std::istringstream s(line);
        std::string name;
        s >> name;
        if (name == "case")
        {
            s >> current;
            continue;
        }
        Tensor t;
        int rank = 0;
        s >> rank;
        t.shape.resize(static_cast<size_t>(rank));
        for (int64_t& d : t.shape)
            s >> d;
        std::string colon;
        s >> colon;
        float v;
        while (s >> v)
            t.values.push_back(v);
        cases[current][name] = std::move(t);
    }
    return cases;
}

// The ansatz description of each torch case (make_torch_reference.py), and the input's sample shape.
std::vector<LayerSpec> torch_case(const std::string& name, Shape& in)
{
    if (name == "linear_relu")
    {
        in = { 5, 1, 1 };
        return with_activation(linear(4), Activation::relu);
    }
    if (name == "linear_leaky_relu")
    {
        in = { 6, 1, 1 };
        return with_activation(linear(3), Activation::leaky_relu, 0.2f);
    }
    if (name == "linear_tanh")
    {
        in = { 7, 1, 1 };
        return with_activation(linear(5), Activation::tanh);
    }
    if (name == "linear_sigmoid")
    {
        in = { 3, 1, 1 };
        return with_activation(linear(6), Activation::sigmoid);
    }
    if (name == "linear_softplus")
    {
        in = { 4, 1, 1 };
        return with_activation(linear(4), Activation::softplus);
    }
    if (name == "linear_no_bias")
    {
        in = { 5, 1, 1 };
        return std::vector<LayerSpec>{ linear(3, false) };
    }
    if (name == "conv_same_s2_even")
    {
        in = { 2, 8, 8 };
        return with_activation(conv2d_same(3, 3, 2), Activation::relu);
    }
    if (name == "conv_same_s2_odd")
    {
        in = { 2, 7, 7 };
        return with_activation(conv2d_same(3, 3, 2), Activation::relu);
    }
    if (name == "conv_explicit")
    {
        LayerSpec c = conv2d(4, 3, 2, 1);
        c.kernel[1] = 2;
        c.stride[1] = 1;
        c.padding[1] = 0;
        in = { 2, 7, 5 };
        return with_activation(c, Activation::tanh);
    }
    if (name == "convt_same_s2")
    {
        in = { 3, 4, 4 };
        return with_activation(conv_transpose2d_same(2, 3, 2), Activation::relu);
    }
    if (name == "convt_same_s1")
    {
        in = { 3, 5, 5 };
        return with_activation(conv_transpose2d_same(1, 3, 1), Activation::sigmoid);
    }
    if (name == "convt_explicit")
    {
        LayerSpec c = conv_transpose2d(3, 3, 2, 0, 1);
        c.kernel[1] = 2;
        c.stride[1] = 3;
        c.padding[1] = 1;
        c.output_padding[1] = 2;
        in = { 2, 3, 4 };
        return with_activation(c, Activation::leaky_relu, 0.1f);
    }
    if (name == "sequential")
    {
        in = { 1, 8, 8 };
        return std::vector<LayerSpec>{ conv2d_same(4, 3, 2),
                                       activation(Activation::relu),
                                       flatten(),
                                       linear(6),
                                       activation(Activation::softplus),
                                       linear(32),
                                       activation(Activation::tanh),
                                       reshape({ 2, 4, 4 }),
                                       conv_transpose2d_same(3, 3, 2),
                                       activation(Activation::leaky_relu, 0.05f),
                                       conv_transpose2d_same(1, 3, 1),
                                       activation(Activation::sigmoid) };
    }
    FAIL("no ansatz description for the torch case " << name);
    return {};
}

} // namespace

// ---- Gradient checks
// ---------------------------------------------------------------------------------------

TEST_CASE("nn: Linear with each activation against finite differences of a double reference", "[sdk][nn]")
{
    for (Activation a : { Activation::none, Activation::relu, Activation::leaky_relu, Activation::tanh,
                          Activation::sigmoid, Activation::softplus, Activation::swish })
    {
        INFO(activation_name(a));
        check_stack(with_activation(linear(7), a, 0.1f), { 9, 1, 1 }, 4, 11, 1);
        check_stack({ linear(5, false), activation(a, 0.2f) }, { 6, 1, 1 }, 3, 12, 2);
    }
}

TEST_CASE("nn: standalone activations against finite differences", "[sdk][nn]")
{
    for (Activation a : { Activation::relu, Activation::leaky_relu, Activation::tanh, Activation::sigmoid,
                          Activation::softplus, Activation::swish })
    {
        INFO(activation_name(a));
        // An activation first (nothing to fuse into), and one after another activation.
        check_stack({ activation(a, 0.3f), linear(4) }, { 5, 1, 1 }, 3, 21, 1);
        check_stack({ linear(4), activation(Activation::tanh), activation(a, 0.3f) }, { 5, 1, 1 }, 3, 22, 2);
    }
}

TEST_CASE("nn: Conv2d 3x3 stride 2 same and other geometries against finite differences", "[sdk][nn]")
{
    const int threads = GENERATE(1, 2);
    SECTION("3x3 stride 2 same on even and odd sizes, relu (the conv VAE's encoder)")
    {
        check_stack(with_activation(conv2d_same(3, 3, 2), Activation::relu), { 2, 8, 8 }, 3, 31, threads);
        check_stack(with_activation(conv2d_same(4, 3, 2), Activation::relu), { 3, 7, 7 }, 2, 32, threads);
        check_stack(with_activation(conv2d_same(2, 3, 2), Activation::relu), { 1, 6, 9 }, 3, 33, threads);
    }
    SECTION("3x3 stride 1 same, no bias, softplus")
    {
        LayerSpec c = conv2d_same(3, 3, 1);
        c.bias = false;
        check_stack(with_activation(c, Activation::softplus), { 2, 5, 6 }, 2, 34, threads);
    }
    SECTION("explicit padding, rectangular kernels and strides, tanh and sigmoid")
    {
        check_stack(with_activation(conv2d(3, 3, 1, 0), Activation::tanh), { 2, 5, 5 }, 2, 35, threads);
        LayerSpec c = conv2d(2, 2, 3, 2);
        c.kernel[1] = 4;
        c.stride[1] = 1;
        c.padding[1] = 1;
        check_stack(with_activation(c, Activation::sigmoid), { 3, 7, 6 }, 3, 36, threads);
        check_stack({ conv2d_same(2, 4, 2) }, { 2, 7, 8 }, 2, 37, threads); // even kernel: 'same' pads 1 + 1
    }
}

TEST_CASE("nn: ConvTranspose2d 3x3 stride 2 same (output padding) and other geometries against finite "
          "differences",
          "[sdk][nn]")
{
    const int threads = GENERATE(1, 2);
    SECTION("3x3 stride 2 same, relu, and 3x3 stride 1 same, sigmoid (the conv VAE's decoder)")
    {
        check_stack(with_activation(conv_transpose2d_same(3, 3, 2), Activation::relu), { 2, 4, 4 }, 3, 41,
                    threads);
        check_stack(with_activation(conv_transpose2d_same(2, 3, 2), Activation::relu), { 3, 3, 5 }, 2, 42,
                    threads);
        check_stack(with_activation(conv_transpose2d_same(1, 3, 1), Activation::sigmoid), { 3, 5, 5 }, 3, 43,
                    threads);
    }
    SECTION("padding 1 output padding 1 as torch writes the same layer, no activation")
    {
        check_stack({ conv_transpose2d(2, 3, 2, 1, 1) }, { 2, 4, 3 }, 2, 44, threads);
    }
    SECTION("explicit padding and output padding, rectangular kernels and strides, leaky_relu and tanh")
    {
        LayerSpec c = conv_transpose2d(3, 3, 2, 0, 1);
        c.kernel[1] = 2;
        c.stride[1] = 3;
        c.padding[1] = 1;
        c.output_padding[1] = 2;
        check_stack(with_activation(c, Activation::leaky_relu, 0.1f), { 2, 3, 4 }, 2, 45, threads);
        LayerSpec d = conv_transpose2d(2, 4, 3, 2, 0);
        d.bias = false;
        check_stack(with_activation(d, Activation::tanh), { 2, 3, 3 }, 2, 46, threads);
    }
}

TEST_CASE("nn: convolutions in a row pass channels-last memory, checked against finite differences",
          "[sdk][nn]")
{
    // Conv -> Conv (the encoder) and ConvTranspose -> ConvTranspose -> ConvTranspose (the decoder): the
    // activations between them are channels-last, the stack's input, output and dx NCHW.
    const std::vector<LayerSpec> encoder = { conv2d_same(4, 3, 2),
                                             activation(Activation::relu),
                                             conv2d_same(3, 3, 2),
                                             activation(Activation::softplus),
                                             conv2d(2, 2, 1, 1),
                                             flatten(),
                                             linear(3) };
    Sequential e(encoder, { 2, 9, 8 });
    auto conv = [](const Sequential& s, size_t l) { return dynamic_cast<const Conv*>(s.layers()[l].get()); };
    CHECK((!conv(e, 0)->input_channels_last() && conv(e, 0)->output_channels_last()));
    CHECK((conv(e, 1)->input_channels_last() && conv(e, 1)->output_channels_last()));
    CHECK((conv(e, 2)->input_channels_last() && !conv(e, 2)->output_channels_last()));
    const std::vector<LayerSpec> decoder = { linear(18),
                                             reshape({ 2, 3, 3 }),
                                             conv_transpose2d_same(3, 3, 2),
                                             activation(Activation::relu),
                                             conv_transpose2d(4, 2, 1, 0),
                                             conv_transpose2d_same(2, 3, 1),
                                             activation(Activation::sigmoid) };
    Sequential d(decoder, { 3, 1, 1 });
    CHECK((!conv(d, 1)->input_channels_last() && conv(d, 1)->output_channels_last()));
    CHECK((conv(d, 3)->input_channels_last() && !conv(d, 3)->output_channels_last()));
    for (int threads : { 1, 2 })
    {
        check_stack(encoder, { 2, 9, 8 }, 5, 52, threads);
        check_stack(decoder, { 3, 1, 1 }, 5, 53, threads);
    }
}

TEST_CASE("nn: a small Sequential end to end against finite differences", "[sdk][nn]")
{
    // conv (same, stride 2) -> relu -> flatten -> linear -> softplus -> linear -> tanh -> reshape ->
    // conv_transpose (same, stride 2) -> leaky_relu -> conv_transpose (same, stride 1) -> sigmoid.
    Shape in;
    const std::vector<LayerSpec> specs = torch_case("sequential", in);
    for (int threads : { 1, 2, 3 })
        check_stack(specs, in, 5, 51, threads);
}

TEST_CASE("nn: the deep energy's stack (convolutions with swish between them) against finite differences",
          "[sdk][nn]")
{
    // Foster's energy network in small: conv 5x5 stride 2 same -> swish -> conv 3x3 stride 2 same ->
    // swish -> flatten -> linear -> swish -> linear 1. Swish is fused into the layer before it (which keeps
    // its sigmoid for the backward pass), so the two convolutions pass channels-last memory.
    const std::vector<LayerSpec> specs{ conv2d_same(3, 5, 2),
                                        activation(Activation::swish),
                                        conv2d_same(4, 3, 2),
                                        activation(Activation::swish),
                                        flatten(),
                                        linear(5),
                                        activation(Activation::swish),
                                        linear(1) };
    for (int threads : { 1, 2 })
        check_stack(specs, { 1, 8, 8 }, 3, 52, threads);
    Sequential net(specs, { 1, 8, 8 });
    CHECK(net.layers().size() == 4); // the swish items fused
    // And standalone: swish first (nothing to fuse into) and after another activation.
    for (int threads : { 1, 2 })
        check_stack({ activation(Activation::swish), conv2d_same(2, 3, 2), activation(Activation::tanh),
                      activation(Activation::swish), flatten(), linear(1) },
                    { 1, 6, 6 }, 3, 53, threads);
}

TEST_CASE("nn: a one-channel Conv2d's direct kernels against finite differences and the im2col path",
          "[sdk][nn]")
{
    // One input channel and 8k output channels: the direct loops (nn_direct_conv_impl.hpp) on a CPU with
    // AVX2 + FMA, else im2col + sgemm. Geometries: Foster's first layer (5x5 stride 2 same, 16 channels,
    // edge pixels on every side), stride 1 valid (the 4-pixel tiles and their remainder), 24 channels
    // (a 16-channel block and an 8-channel one) with a rectangular-size input and explicit padding, 1x1,
    // 7x7 (7 of the input gradient's 8 lanes a kernel row), 9x9 (direct forward,
    // im2col + sgemm + col2im input gradient), and a one-channel conv feeding another conv (channels-last
    // output). Then the same layers with the direct path off must agree to rounding, and on a CPU with
    // AVX2 + FMA the path must be taken (its sums run in another order, so some output differs in its
    // last bits from im2col's; 1728 outputs of 25-term sums).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    REQUIRE(ansatz::nn::detail::direct::enabled() ==
            (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")));
#endif
    INFO("direct kernels on this CPU: " << ansatz::nn::detail::direct::enabled());
    const std::vector<std::pair<std::vector<LayerSpec>, Shape>> cases{
        { with_activation(conv2d_same(16, 5, 2), Activation::swish), { 1, 12, 11 } },
        { with_activation(conv2d(8, 3, 1, 0), Activation::relu), { 1, 7, 9 } },
        { with_activation(conv2d(24, 4, 3, 1), Activation::tanh), { 1, 11, 10 } },
        { { conv2d(16, 1, 1, 0) }, { 1, 5, 3 } },
        { { conv2d_same(8, 7, 2) }, { 1, 9, 8 } },
        { { conv2d_same(8, 9, 2) }, { 1, 10, 11 } },
        { { conv2d_same(16, 5, 2), activation(Activation::swish), conv2d_same(4, 3, 2), flatten(),
            linear(1) },
          { 1, 10, 10 } },
    };
    const int threads = GENERATE(1, 2);
    uint64_t seed = 70;
    for (const auto& [specs, in] : cases)
        check_stack(specs, in, 3, ++seed, threads, 400);

    const DirectPathSwitch restore;
    bool& direct = restore.flag;
    for (const auto& [specs, in] : cases)
    {
        Sequential net(specs, in);
        Rng rng(++seed);
        net.initialize(rng);
        const int64_t batch = 5;
        const std::vector<float> x = uniform(rng, batch * net.input_size(), -1.0f, 1.0f);
        const std::vector<float> dy = uniform(rng, batch * net.output_size(), -1.0f, 1.0f);
        ThreadTeam team(threads);
        direct = false;
        const Run im2col = run(net, team, x, dy, batch);
        direct = restore.had;
        const Run now = run(net, team, x, dy, batch);
        for (size_t i = 0; i < now.y.size(); ++i)
            REQUIRE(std::abs(now.y[i] - im2col.y[i]) <= 1e-5f * (1.0f + std::abs(im2col.y[i])));
        for (size_t i = 0; i < now.dx.size(); ++i)
            REQUIRE(std::abs(now.dx[i] - im2col.dx[i]) <= 1e-5f * (1.0f + std::abs(im2col.dx[i])));
    }
    if (direct)
    {
        // Foster's first layer on 3 images of 12 x 12: the direct forward pass's bits are not im2col's.
        Sequential net({ conv2d_same(16, 5, 2) }, { 1, 12, 12 });
        Rng rng(99);
        net.initialize(rng);
        const std::vector<float> x = uniform(rng, 3 * net.input_size(), -1.0f, 1.0f);
        ThreadTeam team(1);
        const float* y = net.forward(team, x.data(), 3);
        const std::vector<float> fast(y, y + 3 * net.output_size());
        direct = false;
        y = net.forward(team, x.data(), 3);
        direct = restore.had;
        CHECK_FALSE(std::equal(fast.begin(), fast.end(), y));
    }
}

TEST_CASE("nn: products split over the team and convolutions in several chunks, against the reference",
          "[sdk][nn]")
{
    // A Linear layer large enough to split its products into parts (>= 2^20 multiply-adds each: 40 x 300
    // x 200), checked by finite differences on a seeded sample of 20 elements per tensor; convolutions
    // whose images go in chunks of 2 or 3 (7 images: parts of 4 and 3 on two threads, so chunks of 2, 2
    // and 2, 1), checked in full.
    const int threads = GENERATE(1, 2);
    check_stack({ linear(200), activation(Activation::relu), linear(150) }, { 300, 1, 1 }, 40, 61, threads,
                20);
    check_stack(with_activation(conv2d_same(4, 3, 2), Activation::relu), { 3, 8, 8 }, 7, 62, threads, 1 << 30,
                2);
    check_stack(with_activation(conv_transpose2d_same(3, 3, 2), Activation::tanh), { 2, 4, 5 }, 7, 63,
                threads, 1 << 30, 2);
    check_stack({ conv_transpose2d_same(2, 3, 1) }, { 3, 5, 4 }, 7, 64, threads, 1 << 30, 3);
}

// ---- torch
// ---------------------------------------------------------------------------------------------------

TEST_CASE("nn: forward and backward equal torch.nn's on fixed inputs", "[sdk][nn]")
{
    // Tolerance |ansatz - torch| <= 1e-6 + 1e-5 |torch| (both float32; they sum in different orders;
    // measured: up to 0.17 of it).
    const auto cases = read_torch_reference();
    REQUIRE(cases.size() == 13);
    for (const auto& [name, t] : cases)
    {
        INFO("torch case " << name);
        Shape in;
        const std::vector<LayerSpec> specs = torch_case(name, in);
        Sequential net(specs, in);
        for (ansatz_named_tensor& p : net.parameters())
        {
            REQUIRE(t.count(p.name) == 1);
            const Tensor& v = t.at(p.name);
            REQUIRE(static_cast<int64_t>(v.shape.size()) == p.tensor.rank);
            for (int32_t d = 0; d < p.tensor.rank; ++d)
                REQUIRE(v.shape[static_cast<size_t>(d)] == p.tensor.shape[d]);
            std::memcpy(p.tensor.data, v.values.data(), v.values.size() * sizeof(float));
        }
        const Tensor& x = t.at("x");
        const int64_t batch = x.shape[0];
        REQUIRE(x.values.size() == static_cast<size_t>(batch * net.input_size()));
        REQUIRE(t.at("y").values.size() == static_cast<size_t>(batch * net.output_size()));
        for (int threads : { 1, 2 })
        {
            INFO(threads << " thread(s)");
            ThreadTeam team(threads);
            const Run r = run(net, team, x.values, t.at("dy").values, batch);
            Closeness c;
            compare(c, "y", r.y, to_double(t.at("y").values), 1e-6, 1e-5);
            compare(c, "dx", r.dx, to_double(t.at("dx").values), 1e-6, 1e-5);
            const std::vector<ansatz_named_tensor> named = net.parameters();
            for (size_t k = 0; k < named.size(); ++k)
                compare(c, std::string("grad ") + named[k].name, r.grads[k],
                        to_double(t.at(std::string("grad.") + named[k].name).values), 1e-6, 1e-5);
            INFO("worst " << c.worst << " of the tolerance at " << c.where);
            CHECK(c.worst <= 1.0);
        }
    }
}

// ---- Threads, buffers, calls
// -------------------------------------------------------------------------------

TEST_CASE("nn: results repeat bit for bit for a team size and agree to rounding across sizes", "[sdk][nn]")
{
    const std::vector<LayerSpec> specs = {
        conv2d_same(8, 3, 2), activation(Activation::relu),  flatten(),
        linear(300),          activation(Activation::relu),  linear(8 * 7 * 7),
        reshape({ 8, 7, 7 }), conv_transpose2d_same(2, 3, 2)
    };
    Sequential net(specs, { 3, 14, 14 });
    Rng rng(71);
    net.initialize(rng);
    const int64_t batch = 64;
    const std::vector<float> x = uniform(rng, batch * net.input_size(), -1.0f, 1.0f);
    const std::vector<float> dy = uniform(rng, batch * net.output_size(), -1.0f, 1.0f);
    std::vector<Run> runs;
    for (int threads : { 1, 2, 3 })
    {
        ThreadTeam team(threads);
        const Run a = run(net, team, x, dy, batch);
        const Run b = run(net, team, x, dy, batch);
        CHECK(a.y == b.y);
        CHECK(a.dx == b.dx);
        CHECK(a.grads == b.grads);
        runs.push_back(a);
    }
    // Across team sizes: to rounding, |a - b| <= 1e-5 (1 + |b|) (values of order 1, sums of <= 2352 terms;
    // measured: up to 0.17 of it).
    for (size_t k = 1; k < runs.size(); ++k)
    {
        Closeness c;
        compare(c, "y", runs[k].y, to_double(runs[0].y), 1e-5, 1e-5);
        compare(c, "dx", runs[k].dx, to_double(runs[0].dx), 1e-5, 1e-5);
        for (size_t p = 0; p < runs[0].grads.size(); ++p)
            compare(c, "grad " + std::to_string(p), runs[k].grads[p], to_double(runs[0].grads[p]), 1e-5,
                    1e-5);
        INFO("team of " << k + 1 << " against 1: worst " << c.worst << " of the tolerance at " << c.where);
        CHECK(c.worst <= 1.0);
    }
}

TEST_CASE("nn: buffers are reused for smaller batches, gradients accumulate, dx is optional", "[sdk][nn]")
{
    const std::vector<LayerSpec> specs = { linear(6), activation(Activation::tanh), linear(3) };
    Sequential net(specs, { 4, 1, 1 }, "enc.");
    Rng rng(81);
    net.initialize(rng);
    ThreadTeam team(2);
    const std::vector<float> x = uniform(rng, 5 * 4, -1.0f, 1.0f);
    const std::vector<float> dy = uniform(rng, 5 * 3, -1.0f, 1.0f);

    const float* y5 = net.forward(team, x.data(), 5);
    const std::vector<float> first(y5, y5 + 15);
    const float* y3 = net.forward(team, x.data(), 3);
    CHECK(y3 == y5); // the same storage: no allocation for a batch that fits
    CHECK(std::vector<float>(y3, y3 + 9) == std::vector<float>(first.begin(), first.begin() + 9));
    CHECK(net.output().shape[0] == 3);
    CHECK(net.output().shape[1] == 3);

    // Two backward calls after one forward add twice; without dx the parameter gradients are the same.
    const Run once = run(net, team, x, dy, 5);
    const Run no_dx = run(net, team, x, dy, 5, false);
    CHECK(no_dx.grads == once.grads);
    std::vector<ansatz_named_tensor> params = net.parameters();
    std::vector<std::vector<float>> acc(params.size());
    std::vector<ansatz_tensor> views;
    for (size_t i = 0; i < params.size(); ++i)
    {
        acc[i].assign(static_cast<size_t>(ansatz::element_count(params[i].tensor)), 0.0f);
        ansatz_tensor t = params[i].tensor;
        t.data = acc[i].data();
        views.push_back(t);
    }
    net.forward(team, x.data(), 5);
    net.backward(team, dy.data(), nullptr, views);
    net.backward(team, dy.data(), nullptr, views);
    for (size_t i = 0; i < acc.size(); ++i)
        for (size_t j = 0; j < acc[i].size(); ++j)
            CHECK(acc[i][j] == Approx(2.0f * once.grads[i][j]).margin(1e-6));

    // Names and shapes in torch's layouts.
    REQUIRE(params.size() == 4);
    CHECK(std::string(params[0].name) == "enc.0.weight");
    CHECK(params[0].tensor.shape[0] == 6);
    CHECK(params[0].tensor.shape[1] == 4);
    CHECK(std::string(params[1].name) == "enc.0.bias");
    CHECK(std::string(params[2].name) == "enc.2.weight");
    CHECK(std::string(params[3].name) == "enc.2.bias");
    CHECK(net.parameter_size() == 6 * 4 + 6 + 3 * 6 + 3);

    // Wrong gradient buffers and a backward before any forward are errors, not crashes.
    views.pop_back();
    CHECK_THROWS_WITH(net.backward(team, dy.data(), nullptr, views),
                      "Sequential::backward: 3 gradient buffers for 4 parameters");
    Sequential fresh(specs, { 4, 1, 1 });
    std::vector<float*> none(4, nullptr);
    CHECK_THROWS_WITH(fresh.backward(team, dy.data(), nullptr, none.data()),
                      "Sequential::backward before any forward");
}

TEST_CASE("nn: a backward without parameter gradients gives the same dx and leaves no gradient", "[sdk][nn]")
{
    // A conv stack (plain and transposed convolutions, fused and separate activations) and an MLP: the dx
    // of backward(dy, dx, nullptr) equals, bit for bit, the dx of a backward with gradient buffers.
    const std::vector<std::pair<std::vector<LayerSpec>, Shape>> stacks{
        { { conv2d_same(3, 5, 2), activation(Activation::swish), conv2d_same(4, 3, 2),
            activation(Activation::relu), conv_transpose2d_same(2, 3, 2), flatten(), linear(1) },
          { 2, 8, 8 } },
        { { linear(6), activation(Activation::tanh), linear(3) }, { 4, 1, 1 } }
    };
    for (const auto& [specs, in] : stacks)
    {
        Sequential net(specs, in);
        Rng rng(83);
        net.initialize(rng);
        ThreadTeam team(2);
        const std::vector<float> x = uniform(rng, 5 * in.size(), -1.0f, 1.0f);
        const std::vector<float> dy = uniform(rng, 5 * net.output_size(), -1.0f, 1.0f);
        const Run full = run(net, team, x, dy, 5);
        std::vector<float> dx(full.dx.size(), -7.0f);
        net.forward(team, x.data(), 5);
        net.backward(team, dy.data(), dx.data(), static_cast<float* const*>(nullptr));
        CHECK(dx == full.dx);
        CHECK(std::any_of(full.dx.begin(), full.dx.end(), [](float v) { return v != 0.0f; }));
    }
}

TEST_CASE("nn: the products of the MLP and convolutional VAE stacks", "[sdk][nn]")
{
    // 784-512-256-32 (2 x 16 latent): forward 2 * 128 * (784*512 + 512*256 + 256*32) flops, and twice that
    // backward except the first layer's dx.
    const std::vector<LayerSpec> mlp = { linear(512), activation(Activation::relu), linear(256),
                                         activation(Activation::relu), linear(32) };
    Sequential encoder(mlp, { 784, 1, 1 });
    double flops = 0;
    for (const Product& p : encoder.products(128, false))
        flops += 2.0 * p.m * p.n * p.k * p.count;
    const double forward = 2.0 * 128 * (784 * 512 + 512 * 256 + 256 * 32);
    CHECK(flops == forward * 3 - 2.0 * 128 * 784 * 512);
    // Conv2d 1x28x28 -> 32x14x14 (3x3): forward 2 * 196 * 32 * 9 flops per image. Through im2col + sgemm
    // three products; with the one-channel direct loops only the weight gradient's.
    Sequential conv({ conv2d_same(32, 3, 2) }, { 1, 28, 28 });
    const DirectPathSwitch restore;
    bool& direct = restore.flag;
    direct = false;
    const std::vector<Product> p = conv.products(10, true);
    REQUIRE(p.size() == 3);
    CHECK(p[0].m == 10 * 196); // one row per output pixel, channels last
    CHECK(p[0].n == 32);
    CHECK(p[0].k == 9);
    direct = restore.had;
    const std::vector<Product> q = conv.products(10, true);
    if (direct)
    {
        REQUIRE(q.size() == 1); // dWp += R^T A
        CHECK((q[0].m == 32 && q[0].n == 9 && q[0].k == 10 * 196));
    }
    else
        CHECK(q.size() == 3);
}

// ---- Initialisation
// ------------------------------------------------------------------------------------------

TEST_CASE("nn: parameters start as torch.nn's kaiming-uniform", "[sdk][nn]")
{
    // U(-b, b) with b = 1/sqrt(fan_in). Linear 400 -> 300: 120000 weights; the mean's standard error is
    // b / sqrt(3 * 120000) = b / 600, the variance's relative one sqrt(0.8 / 120000) = 0.0026. Asserted:
    // |mean| < 5 b / 600, variance within 2% of b^2 / 3, every value inside (-b, b), the largest within
    // 0.1% of b. Seed 91.
    Sequential net({ linear(300), conv_transpose2d(4, 3, 1, 0) }, { 400, 1, 1 });
    Rng rng(91);
    net.initialize(rng);
    const std::vector<ansatz_named_tensor> p = net.parameters();
    auto stats = [](const ansatz_named_tensor& t, double& mean, double& var, double& largest) {
        const float* v = static_cast<const float*>(t.tensor.data);
        const int64_t n = ansatz::element_count(t.tensor);
        mean = var = largest = 0;
        for (int64_t i = 0; i < n; ++i)
        {
            mean += v[i];
            largest = std::max(largest, std::abs(static_cast<double>(v[i])));
        }
        mean /= static_cast<double>(n);
        for (int64_t i = 0; i < n; ++i)
            var += (v[i] - mean) * (v[i] - mean);
        var /= static_cast<double>(n - 1);
    };
    double mean, var, largest;
    const double b = 1.0 / 20.0;
    stats(p[0], mean, var, largest);
    CHECK(std::abs(mean) < 5 * b / 600);
    CHECK(var == Approx(b * b / 3).epsilon(0.02));
    CHECK(largest < b);
    CHECK(largest > 0.999 * b);
    stats(p[1], mean, var, largest); // the bias: 300 values inside the same bound
    CHECK(largest < b);
    // ConvTranspose2d: weight {C_in 300, C_out 4, 3, 3}, fan_in = C_out * 9 = 36 as torch computes it.
    stats(p[2], mean, var, largest);
    CHECK(largest < 1.0 / 6.0);
    CHECK(largest > 0.999 / 6.0);
    CHECK(p[2].tensor.shape[0] == 300);
    CHECK(p[2].tensor.shape[1] == 4);
}

// ---- Bad descriptions ------------------------------------------------------------------------------------

TEST_CASE("nn: a description that does not fit is refused with one sentence naming the layer", "[sdk][nn]")
{
    auto message = [](std::vector<LayerSpec> specs, Shape in) {
        try
        {
            Sequential net(specs, in);
        }
        catch (const ansatz::InputError& e)
        {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(message({ linear(0) }, { 4, 1, 1 }) ==
          "layer 0 (linear): the number of output features must be at least 1, got 0");
    CHECK(message({ linear(8), activation(Activation::relu), conv2d(4, 5) }, { 3, 1, 1 }) ==
          "layer 2 (conv2d): the kernel height 5 exceeds the padded input height 1 (padding 0 on each side)");
    CHECK(message({ conv2d(4, 3, 0) }, { 1, 8, 8 }) ==
          "layer 0 (conv2d): the stride along the height must be at least 1, got 0");
    CHECK(message({ conv2d(4, 3, 1, -1) }, { 1, 8, 8 }) ==
          "layer 0 (conv2d): the padding must be at least 0, got -1");
    CHECK(message({ conv_transpose2d(4, 3, 2, 1, 2) }, { 1, 8, 8 }) ==
          "layer 0 (conv_transpose2d): the output padding must be at least 0 and less than the stride (2), "
          "got 2");
    CHECK(message({ conv_transpose2d(4, 1, 1, 1) }, { 1, 1, 1 }) ==
          "layer 0 (conv_transpose2d): the output height (1 - 1) * 1 - 2 * 1 + 1 + 0 = -1 is less than 1");
    CHECK(message({ conv2d_same(0, 3) }, { 1, 8, 8 }) ==
          "layer 0 (conv2d): the number of output channels must be at least 1, got 0");
    CHECK(message({ linear(64), reshape({ 2, 4, 3 }) }, { 3, 1, 1 }) ==
          "layer 1 (reshape): cannot reshape the 64 values of 64 to 2x4x3 (24 values)");
    CHECK(message({ linear(64), reshape({ 0, 4, 3 }) }, { 3, 1, 1 }) ==
          "layer 1 (reshape): the shape 0x4x3 has an extent below 1");
    CHECK(message({ linear(4), activation(Activation::leaky_relu, -0.5f) }, { 3, 1, 1 }) ==
          "layer 1 (activation): the negative slope of leaky_relu must be at least 0, got -0.5");
    CHECK(message({ flatten(), activation(Activation::none) }, { 3, 1, 1 }) ==
          "the stack has no linear, convolution or activation layer");
    CHECK(message({ linear(4) }, { 0, 1, 1 }) == "the input shape 0 has an extent below 1");
    CHECK_THROWS_WITH(parse_activation("gelu"),
                      "unknown activation 'gelu' (known: none, relu, leaky_relu, tanh, "
                      "sigmoid, softplus, swish)");
    CHECK(parse_activation("leaky_relu") == Activation::leaky_relu);
}

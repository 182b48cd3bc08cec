// The vae model (plugins/models/vae) through its C table, against a double-precision VAE written here
// from its README (direct loops: Linear, Conv2d and ConvTranspose2d with 'same' padding, tanh, the
// Bernoulli and Gaussian decoders): the values of encode, decode_log_likelihood and decode_mean, both
// backward passes and the whole reparameterised ELBO (with fixed eps) against central finite differences
// of the reference, for an MLP and a convolutional architecture with both decoders; the parameters'
// names and layouts; the conformance kit; the keys' refusals in the model itself.
#include "ansatz/testing/conformance.hpp"
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;
using Params = std::vector<std::vector<double>>; // parameters() order

// ---- the reference, in double -------------------------------------------------------------------------

struct Image
{
    int64_t c = 0, h = 1, w = 1;
    std::vector<double> v; // CHW
};

struct Ref
{
    enum Kind
    {
        linear,
        conv,
        conv_t,
        tanh_act,
        flatten,
        reshape
    } kind;
    int64_t out = 0, k = 1, s = 1;
    Image shape{};
};

Image apply(const Ref& l, const Params& p, size_t& at, Image x)
{
    Image y;
    switch (l.kind)
    {
    case Ref::linear:
    {
        const std::vector<double>&w = p[at], &b = p[at + 1];
        at += 2;
        const int64_t in = x.c * x.h * x.w;
        y = { l.out, 1, 1, std::vector<double>(static_cast<size_t>(l.out)) };
        for (int64_t o = 0; o < l.out; ++o)
        {
            double s = b[o];
            for (int64_t i = 0; i < in; ++i)
                s += w[o * in + i] * x.v[i];
            y.v[o] = s;
        }
        return y;
    }
    case Ref::conv: // 'same': out = ceil(in / s), total padding max((out - 1) s + k - in, 0), odd row first
    {
        const std::vector<double>&w = p[at], &b = p[at + 1];
        at += 2;
        const int64_t ho = (x.h + l.s - 1) / l.s, wo = (x.w + l.s - 1) / l.s;
        const int64_t ph = (std::max<int64_t>((ho - 1) * l.s + l.k - x.h, 0) + 1) / 2;
        const int64_t pw = (std::max<int64_t>((wo - 1) * l.s + l.k - x.w, 0) + 1) / 2;
        y = { l.out, ho, wo, std::vector<double>(static_cast<size_t>(l.out * ho * wo)) };
        for (int64_t o = 0; o < l.out; ++o)
            for (int64_t i = 0; i < ho; ++i)
                for (int64_t j = 0; j < wo; ++j)
                {
                    double s = b[o];
                    for (int64_t c = 0; c < x.c; ++c)
                        for (int64_t u = 0; u < l.k; ++u)
                            for (int64_t v = 0; v < l.k; ++v)
                            {
                                const int64_t r = i * l.s + u - ph, q = j * l.s + v - pw;
                                if (r >= 0 && r < x.h && q >= 0 && q < x.w)
                                    s +=
                                        w[((o * x.c + c) * l.k + u) * l.k + v] * x.v[(c * x.h + r) * x.w + q];
                            }
                    y.v[(o * ho + i) * wo + j] = s;
                }
        return y;
    }
    case Ref::conv_t: // 'same': out = in s, the adjoint of a 'same' Conv2d from out to in
    {
        const std::vector<double>&w = p[at], &b = p[at + 1];
        at += 2;
        const int64_t ho = x.h * l.s, wo = x.w * l.s;
        const int64_t before = (std::max<int64_t>(l.k - l.s, 0) + 1) / 2;
        y = { l.out, ho, wo, std::vector<double>(static_cast<size_t>(l.out * ho * wo)) };
        for (int64_t o = 0; o < l.out; ++o)
            for (int64_t i = 0; i < ho * wo; ++i)
                y.v[o * ho * wo + i] = b[o];
        for (int64_t c = 0; c < x.c; ++c)
            for (int64_t i = 0; i < x.h; ++i)
                for (int64_t j = 0; j < x.w; ++j)
                    for (int64_t o = 0; o < l.out; ++o)
                        for (int64_t u = 0; u < l.k; ++u)
                            for (int64_t v = 0; v < l.k; ++v)
                            {
                                const int64_t r = i * l.s + u - before, q = j * l.s + v - before;
                                if (r >= 0 && r < ho && q >= 0 && q < wo)
                                    y.v[(o * ho + r) * wo + q] += w[((c * l.out + o) * l.k + u) * l.k + v] *
                                                                  x.v[(c * x.h + i) * x.w + j];
                            }
        return y;
    }
    case Ref::tanh_act:
        for (double& v : x.v)
            v = std::tanh(v);
        return x;
    case Ref::flatten:
        return { x.c * x.h * x.w, 1, 1, x.v };
    case Ref::reshape:
        return { l.shape.c, l.shape.h, l.shape.w, x.v };
    }
    return y;
}

struct Case
{
    std::string name, config;
    std::vector<int64_t> shape; // the data's sample shape
    Image input;                // as the encoder reads it
    int64_t latent = 0;
    std::vector<Ref> encoder, decoder;
    bool bernoulli = true, learned_sigma = false;
    double sigma = 1.0;
};

// hidden: [7, 5], tanh, 6 values: encoder 6-7-5-2L, decoder L-5-7-6 (as README.md: the decoder mirrors).
Case mlp_case(bool bernoulli)
{
    Case c;
    c.name = bernoulli ? "mlp bernoulli" : "mlp gaussian learned sigma";
    c.config = std::string("latent: 3, hidden: [7, 5], activation: tanh") +
               (bernoulli ? "" : ", decoder: gaussian, sigma: 0.8, learn_sigma: true");
    c.shape = { 2, 3 };
    c.input = { 6, 1, 1, {} };
    c.latent = 3;
    c.encoder = {
        { Ref::linear, 7 }, { Ref::tanh_act }, { Ref::linear, 5 }, { Ref::tanh_act }, { Ref::linear, 6 }
    };
    c.decoder = {
        { Ref::linear, 5 }, { Ref::tanh_act }, { Ref::linear, 7 }, { Ref::tanh_act }, { Ref::linear, 6 }
    };
    c.bernoulli = bernoulli, c.learned_sigma = !bernoulli, c.sigma = 0.8;
    return c;
}

// 2 channels of 4 x 4: conv 3 (3x3, stride 2) 4 -> 2, conv 2 (3x3, stride 2) 2 -> 1, flatten, dense 4,
// 2L; decoder Linear L -> 2x1x1, transposed 2 (stride 2) 1 -> 2, transposed 3 (stride 2) 2 -> 4,
// transposed to the data's 2 channels (stride 1), as the Keras example.
Case conv_case(bool bernoulli)
{
    Case c;
    c.name = bernoulli ? "conv bernoulli" : "conv gaussian fixed sigma";
    c.config =
        std::string("architecture: conv, latent: 2, filters: [3, 2], kernel: [3], stride: [2], dense: [4], "
                    "activation: tanh") +
        (bernoulli ? "" : ", decoder: gaussian, sigma: 0.6");
    c.shape = { 2, 4, 4 };
    c.input = { 2, 4, 4, {} };
    c.latent = 2;
    c.encoder = { { Ref::conv, 3, 3, 2 }, { Ref::tanh_act },  { Ref::conv, 2, 3, 2 }, { Ref::tanh_act },
                  { Ref::flatten },       { Ref::linear, 4 }, { Ref::tanh_act },      { Ref::linear, 4 } };
    c.decoder = {
        { Ref::linear, 2 },       { Ref::tanh_act },       { Ref::reshape, 0, 1, 1, { 2, 1, 1, {} } },
        { Ref::conv_t, 2, 3, 2 }, { Ref::tanh_act },       { Ref::conv_t, 3, 3, 2 },
        { Ref::tanh_act },        { Ref::conv_t, 2, 3, 1 }
    };
    c.bernoulli = bernoulli, c.sigma = 0.6;
    return c;
}

// Weights and biases of a stack.
int64_t parameter_tensors(const std::vector<Ref>& stack)
{
    return 2 * static_cast<int64_t>(std::count_if(stack.begin(), stack.end(), [](const Ref& l) {
               return l.kind == Ref::linear || l.kind == Ref::conv || l.kind == Ref::conv_t;
           }));
}
int64_t encoder_params(const Case& c)
{
    return parameter_tensors(c.encoder);
}

// The encoder's 2L outputs, the decoder's outputs z, log p(x | h).
std::vector<double> encode_ref(const Case& c, const Params& p, const double* x)
{
    Image in = c.input;
    in.v.assign(x, x + c.input.c * c.input.h * c.input.w);
    size_t at = 0;
    for (const Ref& l : c.encoder)
        in = apply(l, p, at, in);
    return in.v;
}
std::vector<double> decode_ref(const Case& c, const Params& p, const double* h)
{
    Image in{ c.latent, 1, 1, std::vector<double>(h, h + c.latent) };
    size_t at = static_cast<size_t>(encoder_params(c));
    for (const Ref& l : c.decoder)
        in = apply(l, p, at, in);
    return in.v;
}
double log_p_ref(const Case& c, const Params& p, const double* h, const double* x)
{
    const std::vector<double> z = decode_ref(c, p, h);
    double s = 0;
    for (size_t i = 0; i < z.size(); ++i)
        if (c.bernoulli)
            s += x[i] * z[i] - (std::max(z[i], 0.0) + std::log1p(std::exp(-std::abs(z[i]))));
        else
        {
            const double ls = c.learned_sigma ? p.back()[i] : std::log(c.sigma);
            const double e = x[i] - z[i];
            s += -0.5 * std::log(2 * std::numbers::pi) - ls - 0.5 * e * e * std::exp(-2 * ls);
        }
    return s;
}

// ---- the plugin -------------------------------------------------------------------------------------------

Params read(const ModelRef& m)
{
    Params p;
    for (const ansatz_named_tensor& t : m.parameters())
    {
        const float* v = ansatz::f32(t.tensor);
        p.emplace_back(v, v + ansatz::element_count(t.tensor));
    }
    return p;
}

struct Grads
{
    std::vector<std::vector<float>> values;
    std::vector<ansatz_tensor> views;
    explicit Grads(const ModelRef& m)
    {
        for (const ansatz_named_tensor& t : m.parameters())
        {
            values.emplace_back(static_cast<size_t>(ansatz::element_count(t.tensor)), 0.0f);
            ansatz_tensor g = t.tensor;
            g.data = values.back().data();
            views.push_back(g);
        }
    }
    int32_t count() const { return static_cast<int32_t>(views.size()); }
};

std::vector<float> uniform(Rng& rng, int64_t n, float lo, float hi)
{
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v)
        x = lo + (hi - lo) * rng.uniform();
    return v;
}

// Set up on the case's shape, every parameter drawn from U(-0.6, 0.6) (log sigma from U(-0.3, 0.3)), so
// that tanh leaves its linear range.
ModelRef set_up(const Case& c, const ansatz::engine::Instance& instance, uint64_t seed)
{
    ModelRef m = ansatz::test::model_ref(instance);
    Rng rng(seed);
    m.setup(c.shape, rng);
    for (const ansatz_named_tensor& t : m.parameters())
    {
        const bool sigma = std::string(t.name) == "decoder.log_sigma";
        float* v = ansatz::f32(t.tensor);
        for (int64_t i = 0; i < ansatz::element_count(t.tensor); ++i)
            v[i] = (sigma ? 0.3f : 0.6f) * (2 * rng.uniform() - 1);
    }
    m.parameters_changed();
    return m;
}

double central_difference(double& v, const auto& objective)
{
    const double saved = v, step = 1e-6;
    v = saved + step;
    const double up = objective();
    v = saved - step;
    const double down = objective();
    v = saved;
    return (up - down) / (2 * step);
}

// float32 against the double reference: |got - want| <= 5e-5 + 5e-4 |want|.
bool close(double got, double want)
{
    return std::abs(got - want) <= 5e-5 + 5e-4 * std::abs(want);
}

void check_case(const Case& c)
{
    INFO(c.name);
    const auto instance = ansatz::test::make("vae", "{" + c.config + "}");
    const ModelRef m = set_up(c, *instance, 11);
    const int64_t n = 3, l = c.latent, d = c.input.c * c.input.h * c.input.w;
    REQUIRE(m.latent_size() == l);
    Rng rng(12);
    const std::vector<float> x =
        c.bernoulli ? uniform(rng, n * d, 0.0f, 1.0f) : uniform(rng, n * d, -1.5f, 1.5f);
    const std::vector<float> h = uniform(rng, n * l, -1.5f, 1.5f), eps = uniform(rng, n * l, -1.5f, 1.5f);
    const std::vector<float> d_mu = uniform(rng, n * l, -1, 1), d_lv = uniform(rng, n * l, -1, 1);
    const std::vector<float> weights = { 0.7f, -0.4f, 1.3f };
    const std::vector<double> xd(x.begin(), x.end());
    std::vector<double> hd(h.begin(), h.end());
    const ansatz_tensor xv = ansatz::make_view(x.data(), { n, d }),
                        hv = ansatz::make_view(h.data(), { n, l });
    Params p = read(m);
    const int64_t enc = encoder_params(c);
    REQUIRE(static_cast<int64_t>(p.size()) == enc + parameter_tensors(c.decoder) + (c.learned_sigma ? 1 : 0));

    // ---- values
    std::vector<float> mu(n * l), lv(n * l), ll(n), mean(n * d);
    ansatz_tensor muv = ansatz::make_view(mu.data(), { n, l }), lvv = ansatz::make_view(lv.data(), { n, l });
    ansatz_tensor llv = ansatz::make_view(ll.data(), { n }), meanv = ansatz::make_view(mean.data(), { n, d });
    m.encode(xv, muv, lvv);
    m.decode_log_likelihood(hv, xv, llv);
    m.decode_mean(hv, meanv);
    for (int64_t r = 0; r < n; ++r)
    {
        const std::vector<double> e = encode_ref(c, p, xd.data() + r * d);
        for (int64_t j = 0; j < l; ++j)
        {
            CHECK(close(mu[r * l + j], e[j]));
            CHECK(close(lv[r * l + j], e[l + j]));
        }
        CHECK(close(ll[r], log_p_ref(c, p, hd.data() + r * l, xd.data() + r * d)));
        const std::vector<double> z = decode_ref(c, p, hd.data() + r * l);
        for (int64_t i = 0; i < d; ++i)
            CHECK(close(mean[r * d + i], c.bernoulli ? 1 / (1 + std::exp(-z[i])) : z[i]));
    }

    // ---- the two halves: scale 0.5 on the encoder's, per-row weights on the decoder's
    Grads ge(m), gd(m);
    m.encode_backward(xv, ansatz::make_view(d_mu.data(), { n, l }), ansatz::make_view(d_lv.data(), { n, l }),
                      0.5f, ge.views.data(), ge.count());
    std::vector<float> d_h(n * l), out(n);
    ansatz_tensor dhv = ansatz::make_view(d_h.data(), { n, l }), outv = ansatz::make_view(out.data(), { n });
    m.decode_backward_weighted(hv, xv, weights.data(), &dhv, gd.views.data(), gd.count(), &outv);
    const auto encoder_objective = [&] {
        double s = 0;
        for (int64_t r = 0; r < n; ++r)
        {
            const std::vector<double> e = encode_ref(c, p, xd.data() + r * d);
            for (int64_t j = 0; j < l; ++j)
                s += d_mu[r * l + j] * e[j] + d_lv[r * l + j] * e[l + j];
        }
        return 0.5 * s;
    };
    const auto decoder_objective = [&] {
        double s = 0;
        for (int64_t r = 0; r < n; ++r)
            s += weights[r] * log_p_ref(c, p, hd.data() + r * l, xd.data() + r * d);
        return s;
    };
    // ---- the whole ELBO with fixed eps, through the calls the elbo loss makes (encode, the decoder's
    // weighted pass, encode_backward with the reparameterisation's chain rule and the KL's gradient):
    //   E = sum_n log p(x_n | mu_n + sigma_n eps_n) - KL_n
    const auto elbo_objective = [&] {
        double s = 0;
        for (int64_t r = 0; r < n; ++r)
        {
            const std::vector<double> e = encode_ref(c, p, xd.data() + r * d);
            std::vector<double> hr(static_cast<size_t>(l));
            for (int64_t j = 0; j < l; ++j)
            {
                hr[j] = e[j] + std::exp(0.5 * e[l + j]) * eps[r * l + j];
                s -= 0.5 * (std::exp(e[l + j]) + e[j] * e[j] - 1 - e[l + j]);
            }
            s += log_p_ref(c, p, hr.data(), xd.data() + r * d);
        }
        return s;
    };
    Grads ga(m);
    {
        m.encode(xv, muv, lvv);
        std::vector<float> hs(n * l), ones(n, 1.0f), g_h(n * l), gm(n * l), gv(n * l);
        for (int64_t k = 0; k < n * l; ++k)
            hs[k] = mu[k] + std::exp(0.5f * lv[k]) * eps[k];
        ansatz_tensor gh = ansatz::make_view(g_h.data(), { n, l });
        m.decode_backward_weighted(ansatz::make_view(hs.data(), { n, l }), xv, ones.data(), &gh,
                                   ga.views.data(), ga.count());
        for (int64_t k = 0; k < n * l; ++k)
        {
            const float sigma = std::exp(0.5f * lv[k]);
            gm[k] = g_h[k] - mu[k];
            gv[k] = g_h[k] * eps[k] * sigma * 0.5f - 0.5f * (sigma * sigma - 1);
        }
        m.encode_backward(xv, ansatz::make_view(gm.data(), { n, l }), ansatz::make_view(gv.data(), { n, l }),
                          1.0f, ga.views.data(), ga.count());
    }

    const std::vector<ansatz_named_tensor> names = m.parameters();
    int64_t checked = 0;
    for (size_t k = 0; k < p.size(); ++k)
        for (size_t i = 0; i < p[k].size(); ++i)
        {
            INFO(names[k].name << "[" << i << "]");
            const bool encoder = static_cast<int64_t>(k) < enc;
            const double want = encoder ? central_difference(p[k][i], encoder_objective)
                                        : central_difference(p[k][i], decoder_objective);
            CHECK(close(encoder ? ge.values[k][i] : gd.values[k][i], want));
            CHECK((encoder ? gd.values[k][i] : ge.values[k][i]) == 0.0f); // each pass adds to its half only
            CHECK(close(ga.values[k][i], central_difference(p[k][i], elbo_objective)));
            ++checked;
        }
    int64_t total = 0;
    for (const auto& v : p)
        total += static_cast<int64_t>(v.size());
    CHECK(checked == total);
    for (int64_t r = 0; r < n; ++r)
    {
        CHECK(close(out[r], log_p_ref(c, p, hd.data() + r * l, xd.data() + r * d)));
        for (int64_t j = 0; j < l; ++j)
        {
            INFO("d_h[" << r << "][" << j << "]");
            CHECK(close(d_h[r * l + j], central_difference(hd[r * l + j], decoder_objective)));
        }
    }
}

} // namespace

TEST_CASE(
    "vae: values and gradients of both halves and of the whole ELBO equal finite differences of a double "
    "reference",
    "[vae]")
{
    check_case(mlp_case(true));
    check_case(mlp_case(false));
    check_case(conv_case(true));
    check_case(conv_case(false));
}

TEST_CASE("vae: parameters are torch.nn.Sequential's state_dict names and layouts, then decoder.log_sigma",
          "[vae]")
{
    const auto instance = ansatz::test::make("vae", "{architecture: conv, latent: 2, filters: [32, 64], "
                                                    "dense: [16], decoder: gaussian, learn_sigma: true}");
    const ModelRef m = ansatz::test::model_ref(*instance);
    Rng rng(1);
    m.setup({ 28, 28 }, rng);
    const std::vector<std::pair<std::string, std::vector<int64_t>>> want = {
        { "encoder.0.weight", { 32, 1, 3, 3 } },  { "encoder.0.bias", { 32 } },
        { "encoder.2.weight", { 64, 32, 3, 3 } }, { "encoder.2.bias", { 64 } },
        { "encoder.5.weight", { 16, 3136 } },     { "encoder.5.bias", { 16 } },
        { "encoder.7.weight", { 4, 16 } },        { "encoder.7.bias", { 4 } },
        { "decoder.0.weight", { 3136, 2 } },      { "decoder.0.bias", { 3136 } },
        { "decoder.3.weight", { 64, 64, 3, 3 } }, { "decoder.3.bias", { 64 } },
        { "decoder.5.weight", { 64, 32, 3, 3 } }, { "decoder.5.bias", { 32 } },
        { "decoder.7.weight", { 32, 1, 3, 3 } },  { "decoder.7.bias", { 1 } },
        { "decoder.log_sigma", { 784 } }
    };
    const std::vector<ansatz_named_tensor> p = m.parameters();
    REQUIRE(p.size() == want.size());
    for (size_t k = 0; k < p.size(); ++k)
    {
        INFO(want[k].first);
        CHECK(std::string(p[k].name) == want[k].first);
        CHECK(std::vector<int64_t>(p[k].tensor.shape, p[k].tensor.shape + p[k].tensor.rank) ==
              want[k].second);
    }
    // The initialisation is torch's (U(-1/sqrt(fan_in), 1/sqrt(fan_in))) and log sigma starts at log(sigma).
    const float* w = ansatz::f32(p[4].tensor);
    float largest = 0;
    for (int64_t i = 0; i < 16 * 3136; ++i)
        largest = std::max(largest, std::abs(w[i]));
    CHECK(largest <= 1 / std::sqrt(3136.0f));
    CHECK(largest > 0.9f / std::sqrt(3136.0f));
    CHECK(ansatz::f32(p[16].tensor)[0] == 0.0f);
    CHECK(m.sample_info().domain == ANSATZ_DOMAIN_REAL);
}

TEST_CASE("vae: the conformance kit passes for the mlp and the conv architecture", "[vae][conformance]")
{
    for (const char* config :
         { "{latent: 3, hidden: [8, 5], activation: tanh}",
           "{architecture: conv, latent: 2, filters: [3, 4], dense: [5], activation: softplus, "
           "decoder: gaussian, learn_sigma: true}" })
    {
        INFO(config);
        const auto instance = ansatz::test::make("vae", config);
        const ModelRef m = ansatz::test::model_ref(*instance);
        Rng rng(3);
        const std::vector<int64_t> shape = std::string(config).find("conv") != std::string::npos
                                               ? std::vector<int64_t>{ 4, 4 }
                                               : std::vector<int64_t>{ 6 };
        m.setup(shape, rng);
        ansatz::testing::ConformanceOptions options;
        options.sample_shape = shape;
        const ansatz::testing::ConformanceReport report = ansatz::testing::check_model(m, options);
        INFO(report.summary());
        CHECK(report.passed());
        for (const char* check : { "latent_rows", "latent_encode_backward", "latent_decode_backward",
                                   "latent_decode_weighted", "parameters", "random_state" })
            CHECK(report.outcome(check) == ansatz::testing::Outcome::passed);
    }
}

TEST_CASE("vae: encode_backward after encode on other rows or other parameters runs the encoder again",
          "[vae]")
{
    // The kept forward pass is used only for the same x and parameters (abi.h): a gradient after a
    // changed x or a changed parameter equals the one of a fresh model.
    const auto a = ansatz::test::make("vae", "{latent: 2, hidden: [5], activation: tanh}");
    const auto b = ansatz::test::make("vae", "{latent: 2, hidden: [5], activation: tanh}");
    const ModelRef ma = ansatz::test::model_ref(*a), mb = ansatz::test::model_ref(*b);
    Rng ra(4), rb(4);
    ma.setup({ 4 }, ra);
    mb.setup({ 4 }, rb);
    std::vector<float> x1 = { 0.1f, 0.9f, 0.3f, 0.5f }, x2 = { 0.7f, 0.2f, 0.0f, 1.0f }, mu(2), lv(2),
                       dm = { 1, -1 }, dv = { 0.5f, 0.25f };
    ansatz_tensor muv = ansatz::make_view(mu.data(), { 1, 2 }), lvv = ansatz::make_view(lv.data(), { 1, 2 });
    const auto grads_after = [&](const ModelRef& m, const std::vector<float>& encoded, bool bump) {
        m.encode(ansatz::make_view(encoded.data(), { 1, 4 }), muv, lvv);
        if (bump)
        {
            ansatz::f32(m.parameters()[0].tensor)[0] += 0.25f;
            m.parameters_changed(); // as the host does after every write (abi.h 2.3)
        }
        Grads g(m);
        m.encode_backward(ansatz::make_view(x2.data(), { 1, 4 }), ansatz::make_view(dm.data(), { 1, 2 }),
                          ansatz::make_view(dv.data(), { 1, 2 }), 1.0f, g.views.data(), g.count());
        if (bump)
        {
            ansatz::f32(m.parameters()[0].tensor)[0] -= 0.25f;
            m.parameters_changed();
        }
        return g.values;
    };
    CHECK(grads_after(ma, x1, false) == grads_after(mb, x2, false)); // other rows: forward again
    const auto bumped = grads_after(ma, x2, true);
    ansatz::f32(mb.parameters()[0].tensor)[0] += 0.25f;
    mb.parameters_changed();
    const auto fresh = grads_after(mb, x1, false);
    ansatz::f32(mb.parameters()[0].tensor)[0] -= 0.25f;
    mb.parameters_changed();
    CHECK(bumped == fresh); // other parameters: forward again
}

TEST_CASE("vae: keys that contradict each other and data that does not fit are refused with one sentence",
          "[vae][bad-input]")
{
    const auto created = [](const std::string& yaml) -> std::string {
        try
        {
            ansatz::test::make("vae", yaml);
        }
        catch (const std::exception& e)
        {
            return e.what();
        }
        return "no error";
    };
    CHECK_THAT(
        created("{architecture: conv, hidden: [64]}"),
        Catch::EndsWith("key hidden belongs to architecture: mlp, but this vae is architecture: conv (its "
                        "layers are filters, kernel, stride and dense)"));
    CHECK_THAT(
        created("{filters: [8]}"),
        Catch::EndsWith("key filters belongs to architecture: conv, but this vae is architecture: mlp (its "
                        "layers are hidden)"));
    CHECK_THAT(
        created("{architecture: conv, filters: [8, 16, 32], stride: [2, 2]}"),
        Catch::EndsWith("key stride has 2 items, but filters has 3: give one per convolution, or one for "
                        "all"));
    CHECK_THAT(created("{sigma: 0.5}"),
               Catch::EndsWith("key sigma belongs to decoder: gaussian (a bernoulli decoder has no sigma)"));
    CHECK_THAT(
        created("{learn_sigma: true}"),
        Catch::EndsWith("key learn_sigma belongs to decoder: gaussian (a bernoulli decoder has no sigma)"));

    const auto set_up = [](const std::string& yaml, const std::vector<int64_t>& shape) -> std::string {
        const auto instance = ansatz::test::make("vae", yaml);
        const ansatz_model_handle h = instance->model();
        Rng rng(1);
        ansatz_status st{};
        if (h.table->setup(h.self, shape.data(), static_cast<int32_t>(shape.size()), &rng.state(), &st) ==
            ANSATZ_STATUS_OK)
            return "no error";
        CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
        return st.message;
    };
    CHECK(set_up("{architecture: conv}", { 784 }) == "architecture: conv needs images, samples of shape {H, "
                                                     "W} or {C, H, W}, but the data's samples have shape "
                                                     "{784}");
    CHECK(set_up("{architecture: conv, stride: [3]}", { 28, 28 }) ==
          "architecture: conv: the decoder's transposed convolutions give images of 1x36x36, but the data's "
          "are "
          "1x28x28: with 'same' padding the product of the strides (9) must divide the images' height and "
          "width");
    CHECK(set_up("{hidden: [16777216]}", { 28, 28 }).find("needs") != std::string::npos);

    // A bernoulli decoder's data must lie in [0, 1]: refused at the first call that reads it.
    const auto instance = ansatz::test::make("vae", "{latent: 2, hidden: [3]}");
    const ModelRef m = ansatz::test::model_ref(*instance);
    Rng rng(2);
    m.setup({ 4 }, rng);
    std::vector<float> x = { 0.5f, 1.0f, 255.0f, 0.0f }, mu(2), lv(2);
    ansatz_tensor muv = ansatz::make_view(mu.data(), { 1, 2 }), lvv = ansatz::make_view(lv.data(), { 1, 2 });
    REQUIRE_THROWS_WITH(
        m.encode(ansatz::make_view(x.data(), { 1, 4 }), muv, lvv),
        Catch::EndsWith("decoder: bernoulli models values in [0, 1] (binary or grey levels), but the "
                        "data has a value 255; use decoder: gaussian for real-valued data"));
}

TEST_CASE("vae: the Keras architecture on 2 threads agrees with one thread on values and gradients",
          "[vae][threads]")
{
    // 28 x 28 images, batches of 40 (the convolutions cut them in chunks and parts): every value and
    // gradient of the two-thread model within 1e-4 (1 + |one thread's|) of the one-thread model's, both
    // set up from the same stream (sums split in another order round differently, nothing more).
    const std::string config = "{architecture: conv, latent: 2, filters: [32, 64], dense: [16]}";
    const int64_t n = 40, d = 784, l = 2;
    Rng rng(21);
    const std::vector<float> x = uniform(rng, n * d, 0, 1), h = uniform(rng, n * l, -2, 2);
    const std::vector<float> dm = uniform(rng, n * l, -1, 1), dv = uniform(rng, n * l, -1, 1),
                             w = uniform(rng, n, -1, 1);
    struct Out
    {
        std::vector<float> mu, lv, ll, mean, d_h;
        std::vector<std::vector<float>> grads;
    };
    const auto run = [&](int threads) {
        ansatz::engine::HostServices host(1234, threads);
        const auto instance = ansatz::test::make("vae", config, &host);
        const ModelRef m = ansatz::test::model_ref(*instance);
        Rng init(5);
        m.setup({ 28, 28 }, init);
        Out o{ std::vector<float>(n * l), std::vector<float>(n * l), std::vector<float>(n),
               std::vector<float>(n * d), std::vector<float>(n * l), {} };
        const ansatz_tensor xv = ansatz::make_view(x.data(), { n, d }),
                            hv = ansatz::make_view(h.data(), { n, l });
        ansatz_tensor muv = ansatz::make_view(o.mu.data(), { n, l }),
                      lvv = ansatz::make_view(o.lv.data(), { n, l });
        ansatz_tensor llv = ansatz::make_view(o.ll.data(), { n }),
                      meanv = ansatz::make_view(o.mean.data(), { n, d });
        ansatz_tensor dhv = ansatz::make_view(o.d_h.data(), { n, l });
        m.encode(xv, muv, lvv);
        Grads g(m);
        m.decode_backward_weighted(hv, xv, w.data(), &dhv, g.views.data(), g.count(), &llv);
        m.encode_backward(xv, ansatz::make_view(dm.data(), { n, l }), ansatz::make_view(dv.data(), { n, l }),
                          1.0f, g.views.data(), g.count());
        m.decode_mean(hv, meanv);
        o.grads = g.values;
        return o;
    };
    const Out one = run(1), two = run(2);
    const auto agree = [](const std::vector<float>& a, const std::vector<float>& b, const char* what) {
        REQUIRE(a.size() == b.size());
        double worst = 0;
        for (size_t i = 0; i < a.size(); ++i)
            worst = std::max(worst, std::abs(double(a[i]) - b[i]) / (1 + std::abs(double(a[i]))));
        INFO(what << ": worst relative difference " << worst);
        CHECK(worst <= 1e-4);
    };
    agree(one.mu, two.mu, "mu");
    agree(one.lv, two.lv, "log_var");
    agree(one.ll, two.ll, "log p(x|h)");
    agree(one.mean, two.mean, "E[x|h]");
    agree(one.d_h, two.d_h, "d_h");
    REQUIRE(one.grads.size() == two.grads.size());
    for (size_t k = 0; k < one.grads.size(); ++k)
        agree(one.grads[k], two.grads[k], ("gradient " + std::to_string(k)).c_str());
}

TEST_CASE("vae: the Keras architecture's gradients of a batch of 40 equal the sums of its rows' gradients",
          "[vae]")
{
    // The convolutions work on chunks of images: the gradient of a batch (several chunks) must be the
    // sum of the gradients of its rows, each alone, within 1e-4 of the largest gradient of the parameter.
    const std::string config = "{architecture: conv, latent: 2, filters: [32, 64], dense: [16]}";
    const int64_t n = 40, d = 784, l = 2;
    Rng rng(31);
    const std::vector<float> x = uniform(rng, n * d, 0, 1), h = uniform(rng, n * l, -2, 2);
    const std::vector<float> dm = uniform(rng, n * l, -1, 1), dv = uniform(rng, n * l, -1, 1),
                             w = uniform(rng, n, -1, 1);
    const auto instance = ansatz::test::make("vae", config);
    const ModelRef m = ansatz::test::model_ref(*instance);
    Rng init(5);
    m.setup({ 28, 28 }, init);
    const auto grads = [&](int64_t first, int64_t rows) {
        Grads g(m);
        const ansatz_tensor xv = ansatz::make_view(x.data() + first * d, { rows, d });
        const ansatz_tensor hv = ansatz::make_view(h.data() + first * l, { rows, l });
        m.decode_backward_weighted(hv, xv, w.data() + first, nullptr, g.views.data(), g.count());
        m.encode_backward(xv, ansatz::make_view(dm.data() + first * l, { rows, l }),
                          ansatz::make_view(dv.data() + first * l, { rows, l }), 1.0f, g.views.data(),
                          g.count());
        return g.values;
    };
    const auto all = grads(0, n);
    auto sum = grads(0, 1);
    for (int64_t r = 1; r < n; ++r)
    {
        const auto one = grads(r, 1);
        for (size_t k = 0; k < sum.size(); ++k)
            for (size_t i = 0; i < sum[k].size(); ++i)
                sum[k][i] += one[k][i];
    }
    const std::vector<ansatz_named_tensor> names = m.parameters();
    for (size_t k = 0; k < all.size(); ++k)
    {
        double largest = 0, worst = 0;
        for (size_t i = 0; i < all[k].size(); ++i)
        {
            largest = std::max(largest, std::abs(double(sum[k][i])));
            worst = std::max(worst, std::abs(double(all[k][i]) - sum[k][i]));
        }
        INFO(names[k].name << ": worst " << worst << " of largest " << largest);
        CHECK(worst <= 1e-4 * largest + 1e-6);
    }
}

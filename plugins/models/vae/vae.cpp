// vae -- a variational autoencoder (Kingma & Welling 2014) on the SDK's layers (ansatz/nn.hpp): an
// encoder Q(h|x) = N(mu(x), diag exp(log_var(x))) and a decoder p(x|h), MLP or convolutional
// (architecture.hpp), with a Bernoulli or Gaussian decoder distribution (likelihood.hpp); the prior is
// N(0, I) (abi.h). This file is the latent table of abi.h on top of those: see README.md for the
// equations and the keys.
//
// The encoder's last layer has 2 L outputs: mu, then log_var. The decoder's outputs z are the logits
// (bernoulli) or the means (gaussian) of every value. Every call checks its rows against the data's size
// and a bernoulli decoder's data against [0, 1].
//
// encode keeps what its forward pass computed, with a copy of its input; encode_backward reuses it only
// when its x equals that copy and the host has not written the parameters since (it calls
// parameters_changed after every write: abi.h 2.3), so a result never depends on what was kept; else it
// runs the forward pass again. The ELBO loss
// calls encode and encode_backward on the same batch with the same parameters, so a training step costs
// one encoder forward pass, not two.
#include "architecture.hpp"
#include "likelihood.hpp"

#include <ansatz/nn.hpp>
#include <ansatz/parallel.hpp>
#include <ansatz/plugin.hpp>

#include <algorithm>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace
{

using namespace vae;

template <class T>
T* grow(std::vector<T>& v, int64_t size)
{
    if (v.size() < static_cast<size_t>(size))
        v.resize(static_cast<size_t>(size));
    return v.data();
}

class Vae final : public ansatz::Model
{
public:
    static void describe(ansatz::Schema& s)
    {
        describe_architecture(s);
        describe_likelihood(s);
    }

    Vae(const ansatz::Config& c, const ansatz::Host& host)
        : arch_(Architecture::read(c)), likelihood_(c), host_(host), team_(std::max(1, host.threads()))
    {
    }

    // The shape comes from the data; a bernoulli decoder's values are {0, 1} (or their probabilities,
    // grey levels), a gaussian decoder's real.
    ansatz_sample_info sample_info() const override
    {
        ansatz_sample_info info = Model::sample_info();
        info.domain = likelihood_.bernoulli() ? ANSATZ_DOMAIN_BINARY : ANSATZ_DOMAIN_REAL;
        return info;
    }

    void setup(const std::vector<int64_t>& sample_shape, ansatz::Rng& rng) override
    {
        ready_ = false;
        int64_t d = 1;
        for (int64_t extent : sample_shape)
        {
            if (extent <= 0)
                throw ansatz::InputError("the data's sample shape has an empty axis");
            d *= extent;
        }
        const Stacks stacks = build(arch_, sample_shape);
        // Parameters, their gradients and an optimizer's two moments: refuse what the machine cannot hold
        // before anything is allocated.
        const double floats = nn::parameter_floats(stacks.encoder, stacks.data) +
                              nn::parameter_floats(stacks.decoder, { arch_.latent, 1, 1 });
        host_.require_memory(4.0 * 4.0 * floats,
                             "the layers of this vae for samples of shape " + shape_text(sample_shape) +
                                 " (" + std::to_string(static_cast<int64_t>(floats)) + " parameters)");
        encoder_ = stack(stacks.encoder, stacks.data, "encoder");
        decoder_ = stack(stacks.decoder, { arch_.latent, 1, 1 }, "decoder");
        encoder_.initialize(rng);
        decoder_.initialize(rng);
        likelihood_.setup(d);
        d_ = d;
        encoder_count_ = encoder_.parameter_count();
        decoder_count_ = decoder_.parameter_count();
        cached_rows_ = -1;
        ready_ = true;
    }

    std::vector<ansatz_named_tensor> parameters() override
    {
        require_setup();
        std::vector<ansatz_named_tensor> p = encoder_.parameters();
        for (const ansatz_named_tensor& t : decoder_.parameters())
            p.push_back(t);
        for (const ansatz_named_tensor& t : likelihood_.parameters())
            p.push_back(t);
        return p;
    }

    // The host wrote the parameters (abi.h 2.3): the kept forward pass of the encoder is the old ones'.
    void parameters_changed() { cached_rows_ = -1; }

    // bernoulli: each value 0 or 1 with probability 1/2; gaussian: N(0, 1). Row n from rngs[n].
    void random_state(ansatz_tensor& out, ansatz::Streams rngs) override
    {
        require_setup();
        ansatz::require_matrix(out, -1, d_, "random_state: out");
        float* o = ansatz::f32(out);
        for (int64_t r = 0; r < out.shape[0]; ++r)
            for (int64_t i = 0; i < d_; ++i)
            {
                ansatz::Rng& rng = rngs[static_cast<size_t>(r)];
                o[r * d_ + i] = likelihood_.bernoulli() ? (rng.uniform() < 0.5f ? 1.0f : 0.0f)
                                                        : static_cast<float>(rng.normal());
            }
    }

    // ---- latent

    int64_t latent_size() const { return arch_.latent; }

    void encode(const ansatz_tensor& x, ansatz_tensor& mu, ansatz_tensor& log_var)
    {
        const int64_t n = data_rows(x, "encode: x");
        forward_encoder(ansatz::f32(x), n);
        const int64_t l = arch_.latent;
        const float* out = encoder_output_;
        float* m = ansatz::f32(mu);
        float* v = ansatz::f32(log_var);
        for (int64_t r = 0; r < n; ++r)
        {
            std::memcpy(m + r * l, out + r * 2 * l, sizeof(float) * static_cast<size_t>(l));
            std::memcpy(v + r * l, out + r * 2 * l + l, sizeof(float) * static_cast<size_t>(l));
        }
    }

    void encode_backward(const ansatz_tensor& x, const ansatz_tensor& d_mu, const ansatz_tensor& d_log_var,
                         float scale, ansatz_tensor* grads, int32_t n_grads)
    {
        require_setup();
        ansatz::require_matrix(x, -1, d_, "encode_backward: x");
        const int64_t n = x.shape[0];
        require_grads(n_grads);
        if (!cache_holds(ansatz::f32(x), n)) // else x equals the rows encode checked
        {
            likelihood_.check_data(ansatz::f32(x), n * d_);
            forward_encoder(ansatz::f32(x), n);
        }
        const int64_t l = arch_.latent;
        float* dy = grow(d_encoder_, n * 2 * l);
        const float* dm = ansatz::f32(d_mu);
        const float* dv = ansatz::f32(d_log_var);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < l; ++j)
            {
                dy[r * 2 * l + j] = scale * dm[r * l + j];
                dy[r * 2 * l + l + j] = scale * dv[r * l + j];
            }
        encoder_.backward(team_, dy, nullptr,
                          std::span<const ansatz_tensor>(grads, static_cast<size_t>(encoder_count_)));
    }

    void decode_log_likelihood(const ansatz_tensor& h, const ansatz_tensor& x, ansatz_tensor& out)
    {
        const int64_t n = h.shape[0];
        const float* xs = data(x, n, "decode_log_likelihood: x");
        const float* z = decoder_.forward(team_, ansatz::f32(h), n);
        float* o = ansatz::f32(out);
        split_rows(n, [&](int part, int64_t r0, int64_t r1) {
            likelihood_.log_likelihood(z, xs, r0, r1, o, scratch(part));
        });
    }

    void decode_backward_weighted(const ansatz_tensor& h, const ansatz_tensor& x, const float* weights,
                                  ansatz_tensor* d_h, ansatz_tensor* grads, int32_t n_grads,
                                  ansatz_tensor* out)
    {
        const int64_t n = h.shape[0];
        const float* xs = data(x, n, "decode_backward_weighted: x");
        require_grads(n_grads);
        const float* z = decoder_.forward(team_, ansatz::f32(h), n);
        float* dz = grow(d_decoder_, n * d_);
        float* o = out ? ansatz::f32(*out) : nullptr;
        const bool sigma = likelihood_.learns_sigma();
        const int parts = split_rows(n, [&](int part, int64_t r0, int64_t r1) {
            double* ds = sigma ? sigma_sums(part) : nullptr;
            likelihood_.backward(z, xs, weights, r0, r1, dz, o, ds, scratch(part));
        });
        if (sigma)
        {
            float* g = ansatz::f32(grads[encoder_count_ + decoder_count_]);
            for (int part = 0; part < parts; ++part)
                for (int64_t i = 0; i < d_; ++i)
                    g[i] += static_cast<float>(sigma_sums_[static_cast<size_t>(part * d_ + i)]);
        }
        decoder_.backward(
            team_, dz, d_h ? ansatz::f32(*d_h) : nullptr,
            std::span<const ansatz_tensor>(grads + encoder_count_, static_cast<size_t>(decoder_count_)));
    }

    void decode_mean(const ansatz_tensor& h, ansatz_tensor& x_mean)
    {
        require_setup();
        const int64_t n = h.shape[0];
        ansatz::require_matrix(x_mean, n, d_, "decode_mean: x_mean");
        const float* z = decoder_.forward(team_, ansatz::f32(h), n);
        likelihood_.mean(z, ansatz::f32(x_mean), n * d_);
    }

private:
    nn::Sequential stack(const std::vector<nn::LayerSpec>& layers, nn::Shape in, const std::string& name)
    {
        try
        {
            return nn::Sequential(layers, in, name + ".");
        }
        catch (const ansatz::InputError& e)
        {
            throw ansatz::InputError("the " + name + "'s " + e.what());
        }
    }

    void require_setup() const
    {
        if (!ready_)
            throw ansatz::Error("the vae is used before setup()");
    }

    // x {n, D}, checked, and a bernoulli decoder's values in [0, 1].
    int64_t data_rows(const ansatz_tensor& x, const char* what)
    {
        require_setup();
        ansatz::require_matrix(x, -1, d_, what);
        likelihood_.check_data(ansatz::f32(x), x.shape[0] * d_);
        return x.shape[0];
    }
    const float* data(const ansatz_tensor& x, int64_t n, const char* what)
    {
        require_setup();
        ansatz::require_matrix(x, n, d_, what);
        likelihood_.check_data(ansatz::f32(x), n * d_);
        return ansatz::f32(x);
    }

    void require_grads(int32_t n_grads) const
    {
        const int32_t want = encoder_count_ + decoder_count_ + (likelihood_.learns_sigma() ? 1 : 0);
        if (n_grads != want)
            throw ansatz::Error("the vae got " + std::to_string(n_grads) + " gradient buffers for its " +
                                std::to_string(want) + " parameters");
    }

    // The encoder's forward pass on a copy of x (kept until the parameters change).
    void forward_encoder(const float* x, int64_t n)
    {
        float* copy = grow(x_cache_, n * d_);
        std::memcpy(copy, x, sizeof(float) * static_cast<size_t>(n * d_));
        encoder_output_ = encoder_.forward(team_, copy, n);
        cached_rows_ = n;
    }
    // Whether the kept forward pass is the one of x with the parameters as they are now.
    bool cache_holds(const float* x, int64_t n) const
    {
        return cached_rows_ == n &&
               std::memcmp(x, x_cache_.data(), sizeof(float) * static_cast<size_t>(n * d_)) == 0;
    }

    // f(part, first row, end row) over the team, a block of rows each; returns the number of parts.
    template <class F>
    int split_rows(int64_t n, F&& f)
    {
        const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(team_.size(), n)));
        grow(scratch_, parts * d_);
        if (likelihood_.learns_sigma())
            std::fill_n(grow(sigma_sums_, parts * d_), parts * d_, 0.0);
        team_.run(parts, [&](int part) {
            const auto [r0, r1] = ansatz::ThreadTeam::range(n, part, parts);
            f(part, r0, r1);
        });
        return parts;
    }
    float* scratch(int part) { return scratch_.data() + part * d_; }
    double* sigma_sums(int part) { return sigma_sums_.data() + part * d_; }

    Architecture arch_;
    Likelihood likelihood_;
    ansatz::Host host_;
    ansatz::ThreadTeam team_;
    bool ready_ = false;
    int64_t d_ = 0;
    nn::Sequential encoder_, decoder_;
    int32_t encoder_count_ = 0, decoder_count_ = 0;
    // encode's kept forward pass: its input, its output, its rows (-1: none, or parameters written since).
    std::vector<float> x_cache_;
    const float* encoder_output_ = nullptr;
    int64_t cached_rows_ = -1;
    std::vector<float> d_encoder_, d_decoder_, scratch_;
    std::vector<double> sigma_sums_;
};

} // namespace

ANSATZ_PLUGIN("vae", "0.1.0", "MIT",
              ansatz::model<Vae>("vae", "variational autoencoder: MLP or convolutional encoder and decoder "
                                        "(ansatz/nn.hpp), Bernoulli or Gaussian decoder, prior N(0, I)"))

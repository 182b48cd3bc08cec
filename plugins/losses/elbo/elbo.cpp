// The reparameterised evidence lower bound of a latent-variable model (Kingma & Welling 2014), and
// the importance-weighted bound (Burda, Grosse & Salakhutdinov 2016), as a loss to minimise.
//
// For a batch x_1..x_N, with Q(h|x) = N(mu(x), diag sigma^2(x)) from the model's encode, the prior
// N(0, I) (abi.h) and K samples per row, h_nk = mu_n + sigma_n * eps_nk, eps_nk ~ N(0, I):
//
//   bound: elbo   ELBO_n = (1/K) sum_k log p(x_n | h_nk) - KL_n,
//                 KL_n   = 1/2 sum_j (sigma_nj^2 + mu_nj^2 - 1 - log sigma_nj^2)   (closed form)
//                 loss   = -(1/N) sum_n [ (1/K) sum_k log p(x_n | h_nk) - beta_t KL_n ]
//   bound: iwae   log w_nk = log p(x_n | h_nk) + log N(h_nk; 0, I) - log N(h_nk; mu_n, sigma_n^2)
//                 L_n      = log (1/K) sum_k exp(log w_nk)                          (log-sum-exp, double)
//                 loss     = -(1/N) sum_n L_n
//
// Gradients (eps fixed: the reparameterisation). With g_nk = dlog p(x_n | h_nk)/dh_nk,
//   elbo: decoder: -(1/(N K)) sum dlog p/dtheta (decode_backward_weighted, weight -1/(NK) per row);
//         dloss/dmu_n      = -(1/(NK)) sum_k g_nk + (beta_t / N) mu_n
//         dloss/dlogvar_n  = -(1/(NK)) sum_k g_nk * eps_nk * sigma_n / 2 + (beta_t / N) (sigma_n^2 - 1) / 2
//   iwae: with normalised weights wt_nk = softmax_k(log w_nk),
//         decoder: -(1/N) sum_nk wt_nk dlog p/dtheta (one weight per row: the 2.2 slot);
//         dloss/dh_nk      = -(wt_nk / N) (g_nk - h_nk);
//         dloss/dmu_n      = sum_k dloss/dh_nk
//         dloss/dlogvar_n  = sum_k dloss/dh_nk * eps_nk * sigma_n / 2 - 1 / (2N)
// then the encoder's backward pass with d_mu and d_log_var. The calls per batch are the order abi.h
// names: encode, the decoder's weighted backward pass (once per sample k, all N rows), encode_backward;
// the iwae bound first runs decode_log_likelihood for every k (the weights need every sample).
//
// beta_t: beta, or with warmup_epochs W > 0, beta_start + (beta - beta_start) min(1, t / W) where t
// is the train stage's time in epochs (batches done / batches per epoch, from the host's progress, so
// a resumed run gets the same beta); beta outside a train stage.
//
// Random streams: the stream passed to compute() is split into one stream per row of the batch
// (ansatz::split), and row n draws its K x L values of eps from its own, sample by sample; so a row's
// eps do not depend on the rows beside it or on how the work is split.
#include <ansatz/latent.hpp>
#include <ansatz/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

namespace
{

class Elbo final : public ansatz::Loss
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_LATENT;

    static void describe(ansatz::Schema& s)
    {
        s.integer("samples",
                  "K: samples of h per input (the ELBO's reconstruction term is averaged over them)")
            .default_value(1)
            .min(1)
            .max(100000);
        s.choice("bound", "elbo|iwae",
                 "elbo: reparameterised ELBO with the closed-form KL; iwae: the importance-weighted bound of "
                 "K samples (Burda et al. 2016)")
            .default_value("elbo");
        s.real("beta", "weight of the KL term (beta-VAE; 1 = the ELBO)").default_value(1.0).min(0);
        s.real("warmup_epochs", "epochs over which beta rises linearly from beta_start (0 = no warm-up)")
            .default_value(0.0)
            .min(0);
        s.real("beta_start", "beta at the start of the warm-up (needs warmup_epochs)").optional().min(0);
        s.real("active_threshold",
               "a latent unit is active when the variance of its posterior mean over the batch exceeds this "
               "(Burda et al. 2016: 0.01)")
            .default_value(0.01)
            .min(0, true);
    }

    Elbo(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), k_(c.integer("samples")), iwae_(c.string("bound") == "iwae"),
          beta_(c.real("beta")), warmup_(c.real("warmup_epochs")),
          beta_start_(c.has("beta_start") ? c.real("beta_start") : 0.0),
          threshold_(c.real("active_threshold")), host_(host)
    {
        if (c.has("beta_start") && warmup_ == 0)
            throw ansatz::InputError("key beta_start needs warmup_epochs > 0: without a warm-up beta is " +
                                     format(beta_) + " from the first batch");
        if (iwae_ && (beta_ != 1.0 || warmup_ > 0))
            throw ansatz::InputError(
                "bound: iwae has no KL term to weigh; keys beta and warmup_epochs belong to "
                "bound: elbo (leave beta at 1 and warmup_epochs at 0)");
    }

    void bind(const ansatz::ModelRef& model, const ansatz::SamplerRef&) override
    {
        if (!model.has_latent())
            throw ansatz::InputError(
                "it needs a latent-variable model (functions encode, decode_log_likelihood, "
                "decode_backward, ...)");
        model_ = model;
        l_ = model.latent_size();
    }

    void compute(const ansatz_tensor& batch, ansatz_tensor* grads, int32_t n_grads, ansatz::Rng& rng,
                 ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("loss '" + name_ + "' is used before bind()");
        ansatz::require_matrix(batch, -1, -1, "elbo: batch");
        const int64_t n = batch.shape[0];
        if (n == 0)
            throw ansatz::Error("loss '" + name_ + "' got an empty batch");
        const int64_t l = l_;
        const int64_t nl = n * l;

        // ---- Q(h | x) and the samples, eps from one stream per row
        grow(mu_, nl), grow(log_var_, nl), grow(sigma_, nl);
        ansatz_tensor mu = ansatz::make_view(mu_.data(), { n, l }),
                      lv = ansatz::make_view(log_var_.data(), { n, l });
        model_.encode(batch, mu, lv);
        for (int64_t k = 0; k < nl; ++k)
            sigma_[k] = std::exp(0.5f * log_var_[k]);
        grow(eps_, k_ * nl), grow(h_, k_ * nl), grow(ll_, k_ * n);
        const ansatz::Streams streams = row_streams_.split_from(rng, n);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t s = 0; s < k_; ++s)
                for (int64_t j = 0; j < l; ++j)
                    eps_[(s * n + r) * l + j] = static_cast<float>(streams[static_cast<size_t>(r)].normal());
        for (int64_t s = 0; s < k_; ++s)
            for (int64_t k = 0; k < nl; ++k)
                h_[s * nl + k] = mu_[k] + sigma_[k] * eps_[s * nl + k];

        // ---- KL and active units, per row / unit
        double kl = 0;
        for (int64_t r = 0; r < n; ++r)
            kl += ansatz::latent::gaussian_kl(mu_.data() + r * l, log_var_.data() + r * l, l);
        kl /= static_cast<double>(n);
        const double beta = iwae_ ? 1.0 : current_beta();

        const float inv_n = 1.0f / static_cast<float>(n);
        const bool train = grads != nullptr;
        if (train)
        {
            grow(d_mu_, nl), grow(d_lv_, nl), grow(d_h_, nl);
            std::fill_n(d_mu_.begin(), nl, 0.0f);
            std::fill_n(d_lv_.begin(), nl, 0.0f);
        }
        double reconstruction = 0, bound = 0;
        if (!iwae_)
        {
            weights_.assign(static_cast<size_t>(n), -1.0f / static_cast<float>(n * k_));
            for (int64_t s = 0; s < k_; ++s)
            {
                const ansatz_tensor h = ansatz::make_view(h_.data() + s * nl, { n, l });
                ansatz_tensor ll = ansatz::make_view(ll_.data() + s * n, { n });
                if (train)
                {
                    ansatz_tensor dh = ansatz::make_view(d_h_.data(), { n, l });
                    model_.decode_backward_weighted(h, batch, weights_.data(), &dh, grads, n_grads, &ll);
                    for (int64_t k = 0; k < nl; ++k)
                    {
                        d_mu_[k] += d_h_[k];
                        d_lv_[k] += d_h_[k] * eps_[s * nl + k] * sigma_[k] * 0.5f;
                    }
                }
                else
                    model_.decode_log_likelihood(h, batch, ll);
            }
            for (int64_t k = 0; k < k_ * n; ++k)
                reconstruction += ll_[k];
            reconstruction /= static_cast<double>(k_ * n);
            bound = reconstruction - kl;
            if (train)
            {
                const float b = static_cast<float>(beta) * inv_n;
                for (int64_t k = 0; k < nl; ++k)
                {
                    d_mu_[k] += b * mu_[k];
                    d_lv_[k] += b * 0.5f * (sigma_[k] * sigma_[k] - 1.0f);
                }
            }
        }
        else
        {
            // log w for every sample first: the weights need all K of a row.
            for (int64_t s = 0; s < k_; ++s)
            {
                const ansatz_tensor h = ansatz::make_view(h_.data() + s * nl, { n, l });
                ansatz_tensor ll = ansatz::make_view(ll_.data() + s * n, { n });
                model_.decode_log_likelihood(h, batch, ll);
            }
            grow_d(log_w_, k_ * n);
            for (int64_t s = 0; s < k_; ++s)
                for (int64_t r = 0; r < n; ++r)
                {
                    const int64_t at = (s * n + r) * l;
                    log_w_[s * n + r] = ansatz::latent::log_importance_weight(
                        ll_[s * n + r], h_.data() + at, eps_.data() + at, log_var_.data() + r * l, l);
                    reconstruction += ll_[s * n + r];
                }
            reconstruction /= static_cast<double>(k_ * n);
            grow_d(row_max_, n), grow_d(row_sum_, n);
            for (int64_t r = 0; r < n; ++r)
            {
                double m = -std::numeric_limits<double>::infinity();
                for (int64_t s = 0; s < k_; ++s)
                    m = std::max(m, log_w_[s * n + r]);
                double sum = 0;
                for (int64_t s = 0; s < k_; ++s)
                    sum += std::exp(log_w_[s * n + r] - m);
                row_max_[r] = m, row_sum_[r] = sum;
                bound += m + std::log(sum) - std::log(static_cast<double>(k_));
            }
            bound /= static_cast<double>(n);
            if (train)
            {
                for (int64_t s = 0; s < k_; ++s)
                {
                    weights_.resize(static_cast<size_t>(n));
                    for (int64_t r = 0; r < n; ++r)
                        weights_[r] =
                            static_cast<float>(-std::exp(log_w_[s * n + r] - row_max_[r]) / row_sum_[r] / n);
                    const ansatz_tensor h = ansatz::make_view(h_.data() + s * nl, { n, l });
                    ansatz_tensor dh = ansatz::make_view(d_h_.data(), { n, l });
                    model_.decode_backward_weighted(h, batch, weights_.data(), &dh, grads, n_grads);
                    for (int64_t r = 0; r < n; ++r)
                        for (int64_t j = 0; j < l; ++j)
                        {
                            const int64_t k = r * l + j;
                            // dloss/dh = -(wt/N)(g - h) = d_h + (wt/N) h, with -wt/N the row's weight.
                            const float g = d_h_[k] - weights_[r] * h_[s * nl + k];
                            d_mu_[k] += g;
                            d_lv_[k] += g * eps_[s * nl + k] * sigma_[k] * 0.5f;
                        }
                }
                for (int64_t k = 0; k < nl; ++k)
                    d_lv_[k] -= 0.5f * inv_n;
            }
        }
        if (train)
        {
            const ansatz_tensor dm = ansatz::make_view(d_mu_.data(), { n, l });
            const ansatz_tensor dv = ansatz::make_view(d_lv_.data(), { n, l });
            model_.encode_backward(batch, dm, dv, 1.0f, grads, n_grads);
        }

        out.add("loss", iwae_ ? -bound : -(reconstruction - beta * kl));
        out.add(iwae_ ? "iwae_bound" : "elbo", bound);
        out.add("reconstruction", reconstruction);
        out.add("kl", kl);
        if (!iwae_)
            out.add("beta", beta);
        out.add("active_units",
                static_cast<double>(ansatz::latent::active_units(mu_.data(), n, l, threshold_)));
    }

private:
    static std::string format(double x)
    {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%g", x);
        return buffer;
    }

    double current_beta() const
    {
        if (warmup_ <= 0)
            return beta_;
        const ansatz_progress p = host_.progress();
        if (p.steps_per_epoch <= 0)
            return beta_; // outside a train stage
        const double t = static_cast<double>(p.step) / static_cast<double>(p.steps_per_epoch);
        return beta_start_ + (beta_ - beta_start_) * std::min(1.0, t / warmup_);
    }

    static void grow(std::vector<float>& v, int64_t size)
    {
        if (v.size() < static_cast<size_t>(size))
            v.resize(static_cast<size_t>(size));
    }
    static void grow_d(std::vector<double>& v, int64_t size)
    {
        if (v.size() < static_cast<size_t>(size))
            v.resize(static_cast<size_t>(size));
    }

    std::string name_;
    int64_t k_;
    bool iwae_;
    double beta_, warmup_, beta_start_, threshold_;
    ansatz::Host host_;
    int64_t l_ = 0;
    ansatz::StreamArray row_streams_;
    std::vector<float> mu_, log_var_, sigma_, eps_, h_, ll_, d_mu_, d_lv_, d_h_, weights_;
    std::vector<double> log_w_, row_max_, row_sum_;
};

} // namespace

ANSATZ_PLUGIN("elbo", "0.1.0", "MIT",
              ansatz::loss<Elbo>("elbo", "reparameterised ELBO of a latent-variable model (VAE), K samples, "
                                         "beta with warm-up, or the importance-weighted bound"))

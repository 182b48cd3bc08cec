// The importance-weighted estimate of a latent-variable model's log-likelihood (Burda, Grosse &
// Salakhutdinov 2016), the encoder as the proposal:
//
//     log p(x_n) ~ L_K(x_n) = log (1/K) sum_k w_nk,   w_nk = p(x_n | h_nk) N(h_nk; 0, I) / Q(h_nk | x_n),
//     h_nk = mu_n + sigma_n * eps_nk,  eps_nk ~ N(0, I)
//
// E[L_K] <= log p(x), grows with K, and tends to log p(x) as K -> infinity; L_1 is an unbiased ELBO
// estimate (with a Monte Carlo KL). log_likelihood is the mean of L_K over the rows, its stderr the
// spread over the rows / sqrt(N); effective_sample_size the mean over rows of (sum_k w)^2 / sum_k w^2.
//
// Memory stays bounded whatever K is: the decoder is called on at most `batch` (row, sample) pairs at a
// time, the rows' x repeated beside their samples, and each row's sum is kept as a streaming
// log-sum-exp in double (ansatz::latent::LogMeanExp). Row n draws its samples from stream n of the
// stream the host passes, in order, so the result does not depend on `batch`.
#include <ansatz/latent.hpp>
#include <ansatz/plugin.hpp>
#include <ansatz/statistics.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace
{

class Iwae final : public ansatz::Evaluator
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_LATENT;

    static void describe(ansatz::Schema& s)
    {
        s.integer("samples", "K: importance samples per row").default_value(1000).min(1).max(1000000);
        s.integer("batch", "(row, sample) pairs per call of the decoder (memory, not the result)")
            .default_value(4096)
            .min(1)
            .max(1 << 24);
    }

    Iwae(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), k_(c.integer("samples")), batch_(c.integer("batch")), host_(host)
    {
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has_latent())
            throw ansatz::InputError(
                "it needs a latent-variable model (functions encode, decode_log_likelihood, "
                "...)");
        model_ = model;
    }

    void evaluate(const ansatz_tensor& data, ansatz::Rng& rng, ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("evaluator '" + name_ + "' is used before bind()");
        ansatz::require_matrix(data, -1, -1, "iwae evaluate: data");
        const int64_t n = data.shape[0], d = data.shape[1];
        if (n == 0)
            throw ansatz::InputError("the evaluated data has no rows");
        const int64_t l = model_.latent_size();
        const float* rows = ansatz::f32(data);
        // Samples per call S and rows per call R, with R * S <= batch.
        const int64_t samples_per_call = std::min(k_, batch_);
        const int64_t rows_per_call = std::max<int64_t>(1, std::min(n, batch_ / samples_per_call));
        const int64_t pairs = rows_per_call * samples_per_call;
        host_.require_memory(4.0 * static_cast<double>(pairs) * static_cast<double>(d + 2 * l + 1),
                             "batch: " + std::to_string(batch_) + " (row, sample) pairs of " +
                                 std::to_string(d) + " values");
        const ansatz::Streams streams = streams_.split_from(rng, n);
        std::vector<float> mu(static_cast<size_t>(rows_per_call * l)), lv(mu.size());
        std::vector<float> x_rep(static_cast<size_t>(pairs * d)), h(static_cast<size_t>(pairs * l)),
            eps(h.size()), ll(static_cast<size_t>(pairs));
        ansatz::MeanAndError estimate;
        double ess = 0;
        std::vector<ansatz::latent::LogMeanExp> sums;
        for (int64_t first = 0; first < n; first += rows_per_call)
        {
            const int64_t count = std::min(rows_per_call, n - first);
            const ansatz_tensor x = ansatz::make_view(rows + first * d, { count, d });
            ansatz_tensor mt = ansatz::make_view(mu.data(), { count, l }),
                          vt = ansatz::make_view(lv.data(), { count, l });
            model_.encode(x, mt, vt);
            sums.assign(static_cast<size_t>(count), {});
            int64_t x_layout = 0; // the samples per row x_rep was laid out for (0: not yet, for these rows)
            for (int64_t s0 = 0; s0 < k_; s0 += samples_per_call)
            {
                if (host_.cancelled())
                    throw ansatz::Error("evaluator '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
                const int64_t now = std::min(samples_per_call, k_ - s0);
                const int64_t m = count * now; // pairs in this call: row r's samples at r * now ...
                for (int64_t r = 0; r < count; ++r)
                    for (int64_t s = 0; s < now; ++s)
                    {
                        const int64_t p = r * now + s;
                        ansatz::latent::reparameterise(mu.data() + r * l, lv.data() + r * l, l,
                                                       streams[static_cast<size_t>(first + r)],
                                                       eps.data() + p * l, h.data() + p * l);
                        if (now != x_layout) // x_rep holds row r's x at every pair of row r
                            std::copy_n(rows + (first + r) * d, d, x_rep.data() + p * d);
                    }
                x_layout = now;
                const ansatz_tensor ht = ansatz::make_view(h.data(), { m, l });
                const ansatz_tensor xt = ansatz::make_view(x_rep.data(), { m, d });
                ansatz_tensor lt = ansatz::make_view(ll.data(), { m });
                model_.decode_log_likelihood(ht, xt, lt);
                for (int64_t r = 0; r < count; ++r)
                    for (int64_t s = 0; s < now; ++s)
                    {
                        const int64_t p = r * now + s;
                        sums[static_cast<size_t>(r)].add(ansatz::latent::log_importance_weight(
                            ll[static_cast<size_t>(p)], h.data() + p * l, eps.data() + p * l,
                            lv.data() + r * l, l));
                    }
            }
            for (const ansatz::latent::LogMeanExp& row : sums)
            {
                estimate.add(row.value());
                ess += row.effective_sample_size();
            }
        }
        out.add("log_likelihood", estimate.mean());
        out.add("log_likelihood_stderr", estimate.standard_error());
        out.add("effective_sample_size", ess / static_cast<double>(n));
    }

private:
    std::string name_;
    int64_t k_, batch_;
    ansatz::Host host_;
    ansatz::StreamArray streams_;
};

} // namespace

ANSATZ_PLUGIN("iwae", "0.1.0", "MIT",
              ansatz::evaluator<Iwae>("iwae",
                                      "importance-weighted log-likelihood estimate of a latent-variable "
                                      "model (K samples, encoder as proposal)"))

// The evidence lower bound of a latent-variable model on a dataset, per row, with standard errors:
//
//     ELBO_n           = reconstruction_n - KL_n   (nats; a lower bound on log p(x_n): higher is better)
//     reconstruction_n = (1/K) sum_k log p(x_n | h_nk),  h_nk = mu_n + sigma_n * eps_nk,  eps ~ N(0, I)
//     KL_n             = 1/2 sum_j (sigma_nj^2 + mu_nj^2 - 1 - log sigma_nj^2)   (closed form, prior N(0, I))
//
// Each metric is the mean over the N rows, its _stderr the sample standard deviation over sqrt(N)
// (the spread of the rows and of the K samples together). Plus active_units (Burda et al. 2016): the
// latent units whose posterior mean varies over the whole data by more than active_threshold.
//
// Row n draws its K x L values of eps from stream n of the stream the host passes (ansatz::split), so
// the result does not depend on `batch`.
#include <ansatz/latent.hpp>
#include <ansatz/plugin.hpp>
#include <ansatz/statistics.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace
{

class ElboEstimate final : public ansatz::Evaluator
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_LATENT;

    static void describe(ansatz::Schema& s)
    {
        s.integer("samples", "K: samples of h per row for the reconstruction term")
            .default_value(1)
            .min(1)
            .max(100000);
        s.integer("batch", "rows per call of the model (memory, not the result)").default_value(1024).min(1);
        s.real("active_threshold", "a unit is active when the variance of its posterior mean over the data "
                                   "exceeds this")
            .default_value(0.01)
            .min(0, true);
    }

    ElboEstimate(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), k_(c.integer("samples")), batch_(c.integer("batch")),
          threshold_(c.real("active_threshold")), host_(host)
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
        ansatz::require_matrix(data, -1, -1, "elbo_estimate evaluate: data");
        const int64_t n = data.shape[0], d = data.shape[1];
        if (n == 0)
            throw ansatz::InputError("the evaluated data has no rows");
        const int64_t l = model_.latent_size();
        const float* rows = ansatz::f32(data);
        const ansatz::Streams streams = streams_.split_from(rng, n);
        std::vector<float> all_mu(static_cast<size_t>(n * l));
        ansatz::MeanAndError elbo, reconstruction, kl;
        const int64_t step = std::max<int64_t>(1, std::min(batch_, n));
        std::vector<float> lv(static_cast<size_t>(step * l)), eps(static_cast<size_t>(l)),
            h(static_cast<size_t>(step * l)), ll(static_cast<size_t>(step));
        for (int64_t first = 0; first < n; first += step)
        {
            if (host_.cancelled())
                throw ansatz::Error("evaluator '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
            const int64_t count = std::min(step, n - first);
            const ansatz_tensor x = ansatz::make_view(rows + first * d, { count, d });
            float* mu = all_mu.data() + first * l;
            ansatz_tensor mt = ansatz::make_view(mu, { count, l }),
                          vt = ansatz::make_view(lv.data(), { count, l });
            model_.encode(x, mt, vt);
            std::vector<double> sums(static_cast<size_t>(count), 0.0);
            for (int64_t s = 0; s < k_; ++s)
            {
                for (int64_t r = 0; r < count; ++r)
                    ansatz::latent::reparameterise(mu + r * l, lv.data() + r * l, l,
                                                   streams[static_cast<size_t>(first + r)], eps.data(),
                                                   h.data() + r * l);
                const ansatz_tensor ht = ansatz::make_view(h.data(), { count, l });
                ansatz_tensor lt = ansatz::make_view(ll.data(), { count });
                model_.decode_log_likelihood(ht, x, lt);
                for (int64_t r = 0; r < count; ++r)
                    sums[static_cast<size_t>(r)] += ll[static_cast<size_t>(r)];
            }
            for (int64_t r = 0; r < count; ++r)
            {
                const double rec = sums[static_cast<size_t>(r)] / static_cast<double>(k_);
                const double kl_r = ansatz::latent::gaussian_kl(mu + r * l, lv.data() + r * l, l);
                reconstruction.add(rec);
                kl.add(kl_r);
                elbo.add(rec - kl_r);
            }
        }
        out.add("elbo", elbo.mean());
        out.add("elbo_stderr", elbo.standard_error());
        out.add("reconstruction", reconstruction.mean());
        out.add("reconstruction_stderr", reconstruction.standard_error());
        out.add("kl", kl.mean());
        out.add("kl_stderr", kl.standard_error());
        out.add("active_units",
                static_cast<double>(ansatz::latent::active_units(all_mu.data(), n, l, threshold_)));
    }

private:
    std::string name_;
    int64_t k_, batch_;
    double threshold_;
    ansatz::Host host_;
    ansatz::StreamArray streams_;
};

} // namespace

ANSATZ_PLUGIN("elbo_estimate", "0.1.0", "MIT",
              ansatz::evaluator<ElboEstimate>(
                  "elbo_estimate", "mean ELBO per row (nats) of a latent-variable model, with its "
                                   "reconstruction and KL terms, standard errors and active units"))

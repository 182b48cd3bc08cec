// The stochastic pseudo-likelihood of scikit-learn's BernoulliRBM.score_samples:
//
//     i_n ~ uniform {0, ..., D-1}                 (one unit per row)
//     v'_n = v_n with unit i_n flipped           (1 - v for binary units, -v for spins)
//     PL_n = D * log sigmoid(F(v'_n) - F(v_n))   = D * log p(v_ni | v_n,-i) for a two-valued unit
//     pseudo_likelihood        = (1/N) sum_n PL_n
//     pseudo_likelihood_stderr = s / sqrt(N),  s the sample standard deviation of the PL_n
//
// F(v') - F(v) comes from the model's energy_delta, which computes the change of one unit exactly from
// the pre-activations (no difference of two large free energies). The units i_n are drawn in row
// order from the evaluate stream: i_n = rng.below(D).
#include <ansatz/plugin.hpp>
#include <ansatz/statistics.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace
{

using ansatz::MeanAndError;

// log sigmoid(x) = -log(1 + e^-x), without overflow (scikit-learn's log_logistic).
double log_sigmoid(double x)
{
    return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}

class PseudoLikelihood final : public ansatz::Evaluator
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_ENERGY_DELTA;

    static void describe(ansatz::Schema& s)
    {
        s.integer("batch", "rows per call of the model's energy_delta (memory, not the result)")
            .default_value(1024)
            .min(1);
    }

    PseudoLikelihood(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), batch_(c.integer("batch")), host_(host)
    {
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has(ANSATZ_FN_ENERGY_DELTA))
            throw ansatz::InputError("it needs a model with the function 'energy_delta'");
        domain_ = model.sample_info().domain;
        if (domain_ != ANSATZ_DOMAIN_BINARY && domain_ != ANSATZ_DOMAIN_SPIN)
            throw ansatz::InputError(
                "the pseudo-likelihood flips one unit per row, so it needs binary or spin visible units; "
                "the model's are " +
                std::string(domain_ == ANSATZ_DOMAIN_REAL ? "real-valued" : "categorical"));
        model_ = model;
    }

    void evaluate(const ansatz_tensor& data, ansatz::Rng& rng, ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("evaluator '" + name_ + "' is used before bind()");
        ansatz::require_matrix(data, -1, -1, "pseudo_likelihood evaluate: data");
        const int64_t n = data.shape[0];
        const int64_t d = data.shape[1];
        if (n == 0)
            throw ansatz::InputError("the evaluated data has no rows");
        if (d == 0)
            throw ansatz::InputError("the evaluated data has no values per row");
        const float* rows = ansatz::f32(data);
        // Every row's unit first, in row order, so the draws do not depend on `batch`.
        sites_.resize(static_cast<size_t>(n));
        for (int64_t& site : sites_)
            site = static_cast<int64_t>(rng.below(static_cast<uint64_t>(d)));
        MeanAndError pl;
        for (int64_t first = 0; first < n; first += batch_)
        {
            if (host_.cancelled())
                throw ansatz::Error("evaluator '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
            const int64_t count = std::min(batch_, n - first);
            const ansatz_tensor v = ansatz::make_view(rows + first * d, { count, d });
            values_.resize(static_cast<size_t>(count));
            for (int64_t r = 0; r < count; ++r)
            {
                const float x = rows[(first + r) * d + sites_[static_cast<size_t>(first + r)]];
                values_[static_cast<size_t>(r)] = domain_ == ANSATZ_DOMAIN_SPIN ? -x : 1.0f - x;
            }
            ansatz_tensor delta = delta_.vector(count);
            model_.energy_delta(v, sites_.data() + first, values_.data(), delta);
            for (int64_t r = 0; r < count; ++r)
                pl.add(static_cast<double>(d) * log_sigmoid(ansatz::f32(delta)[r]));
        }
        out.add("pseudo_likelihood", pl.mean());
        out.add("pseudo_likelihood_stderr", pl.standard_error());
    }

private:
    std::string name_;
    int64_t batch_;
    ansatz::Host host_;
    int32_t domain_ = ANSATZ_DOMAIN_BINARY;
    std::vector<int64_t> sites_;
    std::vector<float> values_;
    ansatz::Workspace delta_;
};

} // namespace

ANSATZ_PLUGIN(
    "pseudo_likelihood", "0.1.0", "MIT",
    ansatz::evaluator<PseudoLikelihood>(
        "pseudo_likelihood",
        "scikit-learn's stochastic pseudo-likelihood: D log sigmoid(F(v with one unit flipped) - F(v))"))

// ansatz/latent.hpp -- the formulas that the users of a latent-variable model share (the ELBO loss,
// the elbo_estimate and iwae evaluators, the engine's pictures), with the prior N(0, I) of abi.h.
//
// Plain loops on float rows, sums in double; no xtensor, so any file may include it.
#pragma once

#include "ansatz/random.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace ansatz::latent
{

// KL(N(mu, diag exp(log_var)) || N(0, I)) = 1/2 sum_j (exp(log_var_j) + mu_j^2 - 1 - log_var_j), the
// closed form for one row of L units.
inline double gaussian_kl(const float* mu, const float* log_var, int64_t l)
{
    double kl = 0;
    for (int64_t j = 0; j < l; ++j)
    {
        const double m = mu[j], v = log_var[j];
        kl += 0.5 * (std::exp(v) + m * m - 1.0 - v);
    }
    return kl;
}

// log w = log p(x|h) + log N(h; 0, I) - log N(h; mu, diag sigma^2) for h = mu + sigma * eps, one row
// of L units: the 2 pi terms cancel, and log N(h; mu, sigma^2) = sum_j -(eps_j^2 + log_var_j)/2 - L/2
// log 2 pi.
inline double log_importance_weight(double log_likelihood, const float* h, const float* eps,
                                    const float* log_var, int64_t l)
{
    double w = log_likelihood;
    for (int64_t j = 0; j < l; ++j)
        w += -0.5 * double(h[j]) * h[j] + 0.5 * (double(eps[j]) * eps[j] + log_var[j]);
    return w;
}

// h = mu + exp(log_var / 2) * eps for one row, eps drawn from `rng` (L standard normals, in order).
inline void reparameterise(const float* mu, const float* log_var, int64_t l, Rng& rng, float* eps, float* h)
{
    for (int64_t j = 0; j < l; ++j)
    {
        eps[j] = static_cast<float>(rng.normal());
        h[j] = mu[j] + std::exp(0.5f * log_var[j]) * eps[j];
    }
}

// log (1/K) sum_k exp(x_k) over values added one at a time, in double, never overflowing (the running
// maximum is factored out, as a streaming log-sum-exp), with the effective sample size of the weights
// exp(x_k): (sum w)^2 / sum w^2 (Kong 1992), between 1 and K.
class LogMeanExp
{
public:
    void add(double x)
    {
        ++count_;
        if (std::isnan(x))
        {
            max_ = x;
            return;
        }
        if (x == -std::numeric_limits<double>::infinity())
            return;
        if (x > max_)
        {
            const double shift = std::exp(max_ - x); // 0 when max_ is -inf
            sum_ *= shift;
            sum2_ *= shift * shift;
            max_ = x;
        }
        const double w = std::exp(x - max_);
        sum_ += w;
        sum2_ += w * w;
    }
    int64_t count() const { return count_; }
    // log of the mean of exp(x): -inf when every x is -inf (or nothing was added), NaN if some x was.
    double value() const
    {
        if (std::isnan(max_))
            return max_;
        if (count_ == 0 || sum_ == 0)
            return -std::numeric_limits<double>::infinity();
        return max_ + std::log(sum_) - std::log(static_cast<double>(count_));
    }
    double effective_sample_size() const { return sum2_ > 0 ? sum_ * sum_ / sum2_ : 0.0; }

private:
    int64_t count_ = 0;
    double max_ = -std::numeric_limits<double>::infinity();
    double sum_ = 0, sum2_ = 0;
};

// The active units of Burda et al. (2016): unit j is active when Cov_x(E_Q[h_j | x]) = the variance of
// mu_j over the rows exceeds `threshold` (0.01 in the paper). mu {rows, l}; the unbiased variance
// (rows - 1 in the denominator), so fewer than 2 rows have no active unit.
inline int64_t active_units(const float* mu, int64_t rows, int64_t l, double threshold)
{
    if (rows < 2)
        return 0;
    int64_t active = 0;
    for (int64_t j = 0; j < l; ++j)
    {
        double mean = 0, m2 = 0;
        for (int64_t r = 0; r < rows; ++r)
        {
            const double x = mu[r * l + j], d = x - mean;
            mean += d / static_cast<double>(r + 1);
            m2 += d * (x - mean);
        }
        active += m2 / static_cast<double>(rows - 1) > threshold ? 1 : 0;
    }
    return active;
}

} // namespace ansatz::latent

#include "likelihood.hpp"

#include <ansatz/math.hpp>

#include <cmath>
#include <cstdio>
#include <numbers>

namespace vae
{

void describe_likelihood(ansatz::Schema& s)
{
    s.choice(
         "decoder", "bernoulli|gaussian",
         "p(x|h): bernoulli = independent Bernoulli values with probabilities sigmoid(logits), for binary or "
         "grey-level data in [0, 1]; gaussian = independent normal values around the decoder's outputs")
        .default_value("bernoulli");
    s.real("sigma", "gaussian: the standard deviation of every value (absent: 1), or its start when learned")
        .optional()
        .min(0, true);
    s.boolean("learn_sigma", "gaussian: learn one log sigma per value of the data").default_value(false);
}

Likelihood::Likelihood(const ansatz::Config& c)
    : bernoulli_(c.string("decoder") == "bernoulli"), learn_sigma_(c.boolean("learn_sigma")),
      sigma_(c.has("sigma") ? c.real("sigma") : 1.0)
{
    if (bernoulli_ && (c.has("sigma") || learn_sigma_))
        throw ansatz::InputError(std::string("key ") + (c.has("sigma") ? "sigma" : "learn_sigma") +
                                 " belongs to decoder: gaussian (a bernoulli decoder has no sigma)");
}

void Likelihood::setup(int64_t d)
{
    d_ = d;
    log_sigma_.assign(static_cast<size_t>(d), static_cast<float>(std::log(sigma_)));
}

std::vector<ansatz_named_tensor> Likelihood::parameters()
{
    if (!learn_sigma_)
        return {};
    return { { "decoder.log_sigma", ansatz::make_view(log_sigma_.data(), { d_ }) } };
}

void Likelihood::check_data(const float* x, int64_t count) const
{
    if (!bernoulli_)
        return;
    // Branch-free, so it vectorises: a value outside [0, 1], or NaN, fails one of the comparisons.
    int outside = 0;
    for (int64_t i = 0; i < count; ++i)
        outside |= static_cast<int>(!(x[i] >= 0.0f)) | static_cast<int>(!(x[i] <= 1.0f));
    if (!outside)
        return;
    for (int64_t i = 0; i < count; ++i)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
        {
            char value[32];
            std::snprintf(value, sizeof value, "%g", static_cast<double>(x[i]));
            throw ansatz::InputError(
                std::string("decoder: bernoulli models values in [0, 1] (binary or grey levels), "
                            "but the data has a value ") +
                value + "; use decoder: gaussian for real-valued data");
        }
}

void Likelihood::log_likelihood(const float* z, const float* x, int64_t r0, int64_t r1, float* out,
                                float* scratch) const
{
    const int64_t d = d_;
    for (int64_t r = r0; r < r1; ++r)
    {
        const float* zr = z + r * d;
        const float* xr = x + r * d;
        double sum = 0;
        if (bernoulli_)
        {
            ansatz::softplus(zr, scratch, d);
            for (int64_t i = 0; i < d; ++i)
                sum += static_cast<double>(xr[i] * zr[i] - scratch[i]);
        }
        else
        {
            const double half_log_2pi = 0.5 * std::log(2 * std::numbers::pi);
            for (int64_t i = 0; i < d; ++i)
            {
                const double e = static_cast<double>(xr[i]) - zr[i], s = log_sigma_[i];
                sum += -half_log_2pi - s - 0.5 * e * e * std::exp(-2 * s);
            }
        }
        out[r] = static_cast<float>(sum);
    }
}

void Likelihood::backward(const float* z, const float* x, const float* weights, int64_t r0, int64_t r1,
                          float* dz, float* out, double* d_log_sigma, float* scratch) const
{
    const int64_t d = d_;
    for (int64_t r = r0; r < r1; ++r)
    {
        const float* zr = z + r * d;
        const float* xr = x + r * d;
        float* g = dz + r * d;
        const float w = weights[r];
        if (bernoulli_)
        {
            if (out)
            {
                ansatz::softplus(zr, scratch, d);
                double sum = 0;
                for (int64_t i = 0; i < d; ++i)
                    sum += static_cast<double>(xr[i] * zr[i] - scratch[i]);
                out[r] = static_cast<float>(sum);
            }
            ansatz::sigmoid(zr, g, d);
            for (int64_t i = 0; i < d; ++i)
                g[i] = w * (xr[i] - g[i]);
        }
        else
        {
            const double half_log_2pi = 0.5 * std::log(2 * std::numbers::pi);
            double sum = 0;
            for (int64_t i = 0; i < d; ++i)
            {
                const double e = static_cast<double>(xr[i]) - zr[i], s = log_sigma_[i];
                const double inv_var = std::exp(-2 * s);
                sum += -half_log_2pi - s - 0.5 * e * e * inv_var;
                g[i] = static_cast<float>(w * e * inv_var);
                if (d_log_sigma)
                    d_log_sigma[i] += w * (e * e * inv_var - 1.0);
            }
            if (out)
                out[r] = static_cast<float>(sum);
        }
    }
}

void Likelihood::mean(const float* z, float* x_mean, int64_t count) const
{
    if (bernoulli_)
        ansatz::sigmoid(z, x_mean, count);
    else
        std::copy(z, z + count, x_mean);
}

} // namespace vae

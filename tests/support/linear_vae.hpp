// support/linear_vae.hpp -- the linear-Gaussian VAE fixture (tests/fixtures/plugins/linear_vae.cpp) in
// double precision: its parameters, its ELBO and importance weights for given eps, and its exact
// log p(x) = log N(x; b, W W^T + s^2 I), for the tests of the ELBO loss, the evaluators and the
// pictures (header only).
#pragma once

#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

namespace ansatz::test
{

struct LinearVaeParams
{
    int64_t d = 0, l = 0;
    std::vector<double> a, c, lv, w, b; // A {L, D}, c {L}, log_var {L}, W {D, L}, b {D}
    double ls = 0;                      // log s

    static LinearVaeParams read(const ModelRef& m)
    {
        const std::vector<ansatz_named_tensor> p = m.parameters();
        REQUIRE(p.size() == 6);
        LinearVaeParams out;
        out.l = p[0].tensor.shape[0];
        out.d = p[0].tensor.shape[1];
        const auto copy = [](const ansatz_named_tensor& t) {
            const float* x = ansatz::f32(t.tensor);
            return std::vector<double>(x, x + ansatz::element_count(t.tensor));
        };
        out.a = copy(p[0]), out.c = copy(p[1]), out.lv = copy(p[2]), out.w = copy(p[3]), out.b = copy(p[4]);
        out.ls = ansatz::f32(p[5].tensor)[0];
        return out;
    }
    // Writes every value into the model (rounded to float).
    void write(const ModelRef& m) const
    {
        const std::vector<ansatz_named_tensor> p = m.parameters();
        REQUIRE(p.size() == 6);
        const std::vector<double>* parts[] = { &a, &c, &lv, &w, &b };
        for (size_t k = 0; k < 5; ++k)
        {
            REQUIRE(static_cast<int64_t>(parts[k]->size()) == ansatz::element_count(p[k].tensor));
            for (size_t i = 0; i < parts[k]->size(); ++i)
                ansatz::f32(p[k].tensor)[i] = static_cast<float>((*parts[k])[i]);
        }
        ansatz::f32(p[5].tensor)[0] = static_cast<float>(ls);
    }
    // Every value as one vector (A, c, log_var, W, b, log s), and back: for finite differences.
    std::vector<double*> all()
    {
        std::vector<double*> out;
        for (std::vector<double>* part : { &a, &c, &lv, &w, &b })
            for (double& x : *part)
                out.push_back(&x);
        out.push_back(&ls);
        return out;
    }

    std::vector<double> mu(const float* x) const
    {
        std::vector<double> m(static_cast<size_t>(l));
        for (int64_t j = 0; j < l; ++j)
        {
            m[j] = c[j];
            for (int64_t i = 0; i < d; ++i)
                m[j] += a[j * d + i] * x[i];
        }
        return m;
    }
    // log N(x; W h + b, s^2 I)
    double log_likelihood(const float* x, const std::vector<double>& h) const
    {
        double sq = 0;
        for (int64_t i = 0; i < d; ++i)
        {
            double m = b[i];
            for (int64_t j = 0; j < l; ++j)
                m += w[i * l + j] * h[j];
            sq += (x[i] - m) * (x[i] - m);
        }
        return -0.5 * d * std::log(2 * std::numbers::pi) - d * ls - 0.5 * sq * std::exp(-2 * ls);
    }
    double kl(const std::vector<double>& m) const
    {
        double k = 0;
        for (int64_t j = 0; j < l; ++j)
            k += 0.5 * (std::exp(lv[j]) + m[j] * m[j] - 1 - lv[j]);
        return k;
    }
    // h_k = mu + sigma eps_k for eps {K, L} (row-major).
    std::vector<double> sample(const std::vector<double>& m, const double* eps) const
    {
        std::vector<double> h(static_cast<size_t>(l));
        for (int64_t j = 0; j < l; ++j)
            h[j] = m[j] + std::exp(0.5 * lv[j]) * eps[j];
        return h;
    }
    // The loss's per-row terms for K samples eps {K, L}: reconstruction (mean over k) and KL.
    void elbo_terms(const float* x, const std::vector<double>& eps, int64_t k, double& rec,
                    double& kl_out) const
    {
        const std::vector<double> m = mu(x);
        rec = 0;
        for (int64_t s = 0; s < k; ++s)
            rec += log_likelihood(x, sample(m, eps.data() + s * l));
        rec /= static_cast<double>(k);
        kl_out = kl(m);
    }
    // log (1/K) sum_k w_k with w_k = p(x|h_k) N(h_k; 0, I) / N(h_k; mu, sigma^2).
    double iwae(const float* x, const std::vector<double>& eps, int64_t k) const
    {
        const std::vector<double> m = mu(x);
        std::vector<double> lw(static_cast<size_t>(k));
        double top = -INFINITY;
        for (int64_t s = 0; s < k; ++s)
        {
            const double* e = eps.data() + s * l;
            const std::vector<double> h = sample(m, e);
            double v = log_likelihood(x, h);
            for (int64_t j = 0; j < l; ++j)
                v += -0.5 * h[j] * h[j] + 0.5 * (e[j] * e[j] + lv[j]);
            lw[s] = v;
            top = std::max(top, v);
        }
        double sum = 0;
        for (double v : lw)
            sum += std::exp(v - top);
        return top + std::log(sum / static_cast<double>(k));
    }
    // E_Q[log p(x|h)] - KL exactly: log N(x; W mu + b, s^2) - sum_j sigma_j^2 |W_:j|^2 / (2 s^2) - KL.
    double exact_elbo(const float* x) const
    {
        const std::vector<double> m = mu(x);
        double trace = 0;
        for (int64_t j = 0; j < l; ++j)
            for (int64_t i = 0; i < d; ++i)
                trace += std::exp(lv[j]) * w[i * l + j] * w[i * l + j];
        return log_likelihood(x, m) - 0.5 * trace * std::exp(-2 * ls) - kl(m);
    }
    // log N(x; b, C), C = W W^T + s^2 I, by Cholesky.
    double exact_log_p(const float* x) const
    {
        std::vector<double> cm(static_cast<size_t>(d * d));
        for (int64_t i = 0; i < d; ++i)
            for (int64_t k = 0; k < d; ++k)
            {
                double v = i == k ? std::exp(2 * ls) : 0.0;
                for (int64_t j = 0; j < l; ++j)
                    v += w[i * l + j] * w[k * l + j];
                cm[i * d + k] = v;
            }
        // C = L L^T in place (lower triangle).
        for (int64_t j = 0; j < d; ++j)
        {
            double s = cm[j * d + j];
            for (int64_t k = 0; k < j; ++k)
                s -= cm[j * d + k] * cm[j * d + k];
            cm[j * d + j] = std::sqrt(s);
            for (int64_t i = j + 1; i < d; ++i)
            {
                double t = cm[i * d + j];
                for (int64_t k = 0; k < j; ++k)
                    t -= cm[i * d + k] * cm[j * d + k];
                cm[i * d + j] = t / cm[j * d + j];
            }
        }
        std::vector<double> z(static_cast<size_t>(d));
        double log_det = 0, quad = 0;
        for (int64_t i = 0; i < d; ++i)
        {
            double t = x[i] - b[i];
            for (int64_t k = 0; k < i; ++k)
                t -= cm[i * d + k] * z[k];
            z[i] = t / cm[i * d + i];
            quad += z[i] * z[i];
            log_det += 2 * std::log(cm[i * d + i]);
        }
        return -0.5 * (d * std::log(2 * std::numbers::pi) + log_det + quad);
    }
    // The exact posterior p(h | x) = N(Sigma W^T (x - b) / s^2, Sigma), Sigma = (I + W^T W / s^2)^-1,
    // set as the encoder when W^T W is diagonal (orthogonal columns), with log_var + inflate.
    void set_exact_encoder(double inflate)
    {
        const double inv_var = std::exp(-2 * ls);
        for (int64_t j = 0; j < l; ++j)
        {
            double norm = 0;
            for (int64_t i = 0; i < d; ++i)
                norm += w[i * l + j] * w[i * l + j];
            const double sigma2 = 1.0 / (1.0 + norm * inv_var);
            lv[j] = std::log(sigma2) + inflate;
            c[j] = 0;
            for (int64_t i = 0; i < d; ++i)
            {
                a[j * d + i] = sigma2 * w[i * l + j] * inv_var;
                c[j] -= a[j * d + i] * b[i];
            }
        }
    }
};

// The eps a loss or evaluator draws from `rng` for `rows` rows, K samples of L each: row r from
// rng.derive(r) (ansatz::split), sample by sample. Returns eps[r] = {K, L}.
inline std::vector<std::vector<double>> row_eps(const Rng& rng, int64_t rows, int64_t k, int64_t l)
{
    std::vector<std::vector<double>> out(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
    {
        Rng row = rng.derive(static_cast<uint64_t>(r));
        for (int64_t i = 0; i < k * l; ++i)
            out[r].push_back(static_cast<double>(static_cast<float>(row.normal())));
    }
    return out;
}

struct TestLinearVae
{
    std::unique_ptr<engine::Instance> instance;
    ModelRef model;
};

// A linear_vae fixture (or `component`) set up for D values from stream `seed`.
inline TestLinearVae make_linear_vae(int64_t d, int64_t l, const std::string& extra = "", uint64_t seed = 11,
                                     const std::string& component = "linear_vae")
{
    TestLinearVae v;
    v.instance =
        make_fixture(component, "{latent: " + std::to_string(l) + (extra.empty() ? "" : ", " + extra) + "}");
    v.model = model_ref(*v.instance);
    Rng init(seed);
    v.model.setup({ d }, init);
    return v;
}

} // namespace ansatz::test

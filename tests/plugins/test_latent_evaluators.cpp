// The evaluators elbo_estimate and iwae on the linear-Gaussian VAE fixture, whose ELBO and log p(x) are
// known in closed form (support/linear_vae.hpp).
#include "support/evaluators.hpp"
#include "support/linear_vae.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace
{

using namespace ansatz::test;

// n rows drawn from the fixture's own model: x = W h + b + s z.
std::vector<float> model_rows(const LinearVaeParams& p, int64_t n, uint64_t seed)
{
    ansatz::Rng rng(seed);
    std::vector<float> x(static_cast<size_t>(n * p.d));
    for (int64_t r = 0; r < n; ++r)
    {
        std::vector<double> h(static_cast<size_t>(p.l));
        for (double& v : h)
            v = rng.normal();
        for (int64_t i = 0; i < p.d; ++i)
        {
            double m = p.b[i];
            for (int64_t j = 0; j < p.l; ++j)
                m += p.w[i * p.l + j] * h[j];
            x[r * p.d + i] = static_cast<float>(m + std::exp(p.ls) * rng.normal());
        }
    }
    return x;
}

// A 5 x 2 model with orthogonal decoder columns (so the exact posterior is diagonal) and s = 0.5.
LinearVaeParams orthogonal_model(const ansatz::ModelRef& m)
{
    LinearVaeParams p = LinearVaeParams::read(m);
    p.w = {
        1.2, 0.0, 0.0, 0.9, -1.2, 0.0, 0.0, 0.9, 0.6, 0.0
    }; // columns (1.2, 0, -1.2, 0, 0.6), (0, .9, 0, .9, 0)
    p.b = { 0.1, -0.2, 0.3, 0.0, 0.5 };
    p.ls = std::log(0.5);
    return p;
}

double mean_exact_log_p(const LinearVaeParams& p, const std::vector<float>& x)
{
    const int64_t n = static_cast<int64_t>(x.size()) / p.d;
    double sum = 0;
    for (int64_t r = 0; r < n; ++r)
        sum += p.exact_log_p(x.data() + r * p.d);
    return sum / static_cast<double>(n);
}

} // namespace

TEST_CASE("elbo_estimate and iwae: results do not depend on the batch (one stream per row)",
          "[latent-evaluators]")
{
    TestLinearVae v = make_linear_vae(4, 2, "init_std: 0.5");
    std::vector<float> x = model_rows(LinearVaeParams::read(v.model), 23, 3);
    const ansatz_tensor data = ansatz::make_view(x.data(), { 23, 4 });
    const Metrics e1 =
        evaluate(*make("elbo_estimate", "{samples: 3, batch: 2}"), v.model, data, ansatz::Rng(5));
    const Metrics e2 =
        evaluate(*make("elbo_estimate", "{samples: 3, batch: 1024}"), v.model, data, ansatz::Rng(5));
    CHECK(e1 == e2);
    const Metrics i1 = evaluate(*make("iwae", "{samples: 50, batch: 7}"), v.model, data, ansatz::Rng(5));
    const Metrics i2 = evaluate(*make("iwae", "{samples: 50, batch: 4096}"), v.model, data, ansatz::Rng(5));
    const Metrics i3 = evaluate(*make("iwae", "{samples: 50, batch: 120}"), v.model, data, ansatz::Rng(5));
    CHECK(i1 == i2);
    CHECK(i1 == i3);
    for (const char* name : { "elbo", "elbo_stderr", "reconstruction", "reconstruction_stderr", "kl",
                              "kl_stderr", "active_units" })
        CHECK(e1.count(name) == 1);
    CHECK(e1.size() == 7);
    for (const char* name : { "log_likelihood", "log_likelihood_stderr", "effective_sample_size" })
        CHECK(i1.count(name) == 1);
    CHECK(i1.size() == 3);
    CHECK(e1.at("elbo") == Approx(e1.at("reconstruction") - e1.at("kl")).epsilon(1e-9));
}

TEST_CASE(
    "elbo_estimate and iwae with K = 1 both equal the exact ELBO in expectation (seeds 5 and 6, one row "
    "repeated 40000 times, 4 standard errors)",
    "[latent-evaluators][statistical]")
{
    // With every row the same x, the rows' spread is the Monte Carlo spread alone, and the exact ELBO of the
    // linear model is E_Q[log p(x|h)] - KL in closed form.
    TestLinearVae v = make_linear_vae(5, 2, "init_std: 0.5, init_sigma: 0.7");
    LinearVaeParams p = LinearVaeParams::read(v.model);
    p.lv = { -0.3, 0.4 };
    p.write(v.model);
    p = LinearVaeParams::read(v.model);
    const std::vector<float> one = model_rows(p, 1, 7);
    const int64_t n = 40000;
    std::vector<float> x;
    for (int64_t r = 0; r < n; ++r)
        x.insert(x.end(), one.begin(), one.end());
    const ansatz_tensor data = ansatz::make_view(x.data(), { n, 5 });
    const double exact = p.exact_elbo(one.data());

    const Metrics e = evaluate(*make("elbo_estimate", "{samples: 1}"), v.model, data, ansatz::Rng(5));
    INFO("exact ELBO " << exact << ", elbo_estimate " << e.at("elbo") << " +- " << e.at("elbo_stderr"));
    CHECK(e.at("elbo_stderr") < 0.05);
    CHECK(std::abs(e.at("elbo") - exact) < 4 * e.at("elbo_stderr"));
    // The KL is exact for every row (closed form): no spread.
    double kl = 0;
    p.elbo_terms(one.data(), std::vector<double>(2, 0.0), 1, kl, kl);
    CHECK(e.at("kl") == Approx(kl).epsilon(1e-6));
    CHECK(e.at("kl_stderr") == Approx(0).margin(1e-6));
    CHECK(e.at("active_units") == 0);

    const Metrics i = evaluate(*make("iwae", "{samples: 1}"), v.model, data, ansatz::Rng(6));
    INFO("iwae K = 1: " << i.at("log_likelihood") << " +- " << i.at("log_likelihood_stderr"));
    CHECK(i.at("log_likelihood_stderr") < 0.05);
    CHECK(std::abs(i.at("log_likelihood") - exact) < 4 * i.at("log_likelihood_stderr"));
    CHECK(i.at("effective_sample_size") == 1.0);
}

TEST_CASE(
    "iwae: with the exact posterior as the encoder every weight is p(x), so K = 1 gives log p(x) exactly",
    "[latent-evaluators]")
{
    TestLinearVae v = make_linear_vae(5, 2);
    LinearVaeParams p = orthogonal_model(v.model);
    p.set_exact_encoder(0.0);
    p.write(v.model);
    p = LinearVaeParams::read(v.model);
    const std::vector<float> x = model_rows(p, 50, 4);
    const Metrics i = evaluate(*make("iwae", "{samples: 1}"), v.model, ansatz::make_view(x.data(), { 50, 5 }),
                               ansatz::Rng(1));
    // float32 parameters and encoder: the weights agree with p(x) to about 1e-5 nats.
    CHECK(i.at("log_likelihood") == Approx(mean_exact_log_p(p, x)).margin(2e-4));
}

TEST_CASE("iwae: the estimate grows with K and approaches the exact log p(x) (seed 8, 40 rows, K up to 5000)",
          "[latent-evaluators][statistical]")
{
    // The exact posterior's mean with its log-variance inflated by 1.5: a proposal wider than the
    // posterior, so L_1 is well below log p(x) and the importance weights have finite variance.
    TestLinearVae v = make_linear_vae(5, 2);
    LinearVaeParams p = orthogonal_model(v.model);
    p.set_exact_encoder(1.5);
    p.write(v.model);
    p = LinearVaeParams::read(v.model);
    const std::vector<float> x = model_rows(p, 40, 12);
    const ansatz_tensor data = ansatz::make_view(x.data(), { 40, 5 });
    const double exact = mean_exact_log_p(p, x);
    std::vector<double> estimates;
    for (int64_t k : { 1, 10, 100, 5000 })
    {
        const Metrics i = evaluate(*make("iwae", "{samples: " + std::to_string(k) + ", batch: 2000}"),
                                   v.model, data, ansatz::Rng(8));
        INFO("K = " << k << ": " << i.at("log_likelihood") << ", exact " << exact);
        estimates.push_back(i.at("log_likelihood"));
    }
    INFO("L_1 " << estimates[0] << ", L_10 " << estimates[1] << ", L_100 " << estimates[2] << ", L_5000 "
                << estimates[3] << ", exact mean log p(x) " << exact);
    // The gap log p(x) - L_K shrinks at every step by more than the noise of these 40-row means (each
    // row's L_K has a Monte Carlo spread below 0.1 nats here at K >= 10).
    CHECK(exact - estimates[0] > 0.3);
    CHECK(estimates[1] > estimates[0] + 0.1);
    CHECK(estimates[2] > estimates[1]);
    CHECK(estimates[3] > estimates[2]);
    CHECK(std::abs(estimates[3] - exact) < 0.01);
}

TEST_CASE("elbo_estimate and iwae: a model without the latent functions is refused at bind",
          "[latent-evaluators]")
{
    auto rbm = make("rbm", "{hidden: 2, visible: 3}");
    const ansatz::ModelRef m = model_ref(*rbm);
    for (const char* name : { "elbo_estimate", "iwae" })
    {
        auto e = make(name, "{}");
        ansatz_status st{};
        CHECK(e->evaluator().bind(e->self(), &m.handle(), &st) == ANSATZ_STATUS_INVALID_INPUT);
        CHECK(std::string(st.message) ==
              "it needs a latent-variable model (functions encode, decode_log_likelihood, ...)");
    }
}

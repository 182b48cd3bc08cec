// The ELBO loss (plugins/losses/elbo) on the linear-Gaussian VAE fixture, against a double-precision
// reference of the same bound with the same eps (support/linear_vae.hpp): values, gradients by central
// differences, the closed-form KL against Monte Carlo, the beta warm-up, per-row streams, and the
// importance-weighted bound through the 2.2 weighted decoder pass and through ModelRef's fallback.
#include "ansatz/latent.hpp"
#include "run/host_services.hpp"
#include "support/linear_vae.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace
{

using namespace ansatz::test;
using Metrics = std::map<std::string, double>;

struct Grads
{
    std::vector<std::vector<float>> storage;
    std::vector<ansatz_tensor> views;
    explicit Grads(const ansatz::ModelRef& m)
    {
        for (const ansatz_named_tensor& p : m.parameters())
            storage.emplace_back(static_cast<size_t>(ansatz::element_count(p.tensor)), 0.0f);
        for (size_t k = 0; k < storage.size(); ++k)
        {
            ansatz_tensor t = m.parameters()[k].tensor;
            t.data = storage[k].data();
            views.push_back(t);
        }
    }
    // Every gradient value, in parameters() order (as LinearVaeParams::all()).
    std::vector<double> flat() const
    {
        std::vector<double> out;
        for (const auto& s : storage)
            out.insert(out.end(), s.begin(), s.end());
        return out;
    }
};

// bind + compute through the C table; the metrics by name.
Metrics compute(const ansatz::engine::Instance& loss, const ansatz::ModelRef& model,
                const ansatz_tensor& batch, ansatz::Rng rng, Grads* grads)
{
    ansatz_status st{};
    loss.check(loss.loss().bind(loss.self(), &model.handle(), nullptr, &st), st);
    ansatz::engine::MetricsSink sink;
    loss.check(loss.loss().compute(loss.self(), &batch, grads ? grads->views.data() : nullptr,
                                   grads ? static_cast<int32_t>(grads->views.size()) : 0, &rng.state(),
                                   sink.c(), &st),
               st);
    Metrics out;
    for (const auto& [name, value] : sink.take())
        out[name] = value;
    return out;
}

std::vector<float> normal_data(int64_t n, int64_t d, uint64_t seed)
{
    ansatz::Rng rng(seed);
    std::vector<float> x(static_cast<size_t>(n * d));
    for (float& v : x)
        v = static_cast<float>(rng.normal());
    return x;
}

// The loss of the reference: -(1/N) sum_n [rec_n - beta KL_n] (elbo) or -(1/N) sum_n L_K(x_n) (iwae).
double reference_loss(const LinearVaeParams& p, const std::vector<float>& x, int64_t n,
                      const std::vector<std::vector<double>>& eps, int64_t k, double beta, bool iwae)
{
    double sum = 0;
    for (int64_t r = 0; r < n; ++r)
    {
        const float* row = x.data() + r * p.d;
        if (iwae)
            sum += p.iwae(row, eps[r], k);
        else
        {
            double rec = 0, kl = 0;
            p.elbo_terms(row, eps[r], k, rec, kl);
            sum += rec - beta * kl;
        }
    }
    return -sum / static_cast<double>(n);
}

// Every gradient of the loss against central differences of the double reference (step 1e-6, in
// double): within 1e-4 + 1e-3 |fd| (the plugin and the fixture compute in float32).
void check_gradients(const std::string& keys, double beta, bool iwae)
{
    const int64_t n = 6, d = 5, l = 3, k = 4;
    TestLinearVae v = make_linear_vae(d, l, "init_std: 0.5, init_sigma: 0.9");
    // Encoder log-variances away from 0, so the sigma terms matter.
    LinearVaeParams p = LinearVaeParams::read(v.model);
    p.lv = { -0.4, 0.3, -1.1 };
    p.c = { 0.2, -0.5, 0.1 };
    p.write(v.model);
    p = LinearVaeParams::read(v.model); // the float values the model holds
    auto loss = make("elbo", "{samples: " + std::to_string(k) + (keys.empty() ? "" : ", " + keys) + "}");
    std::vector<float> x = normal_data(n, d, 5);
    const ansatz_tensor batch = ansatz::make_view(x.data(), { n, d });
    const ansatz::Rng rng(2024);
    Grads g(v.model);
    const Metrics m = compute(*loss, v.model, batch, rng, &g);
    const auto eps = row_eps(rng, n, k, l);

    const double want = reference_loss(p, x, n, eps, k, beta, iwae);
    INFO("loss " << m.at("loss") << ", reference " << want);
    CHECK(std::abs(m.at("loss") - want) <= 1e-5 * std::max(1.0, std::abs(want)));

    const std::vector<double> got = g.flat();
    std::vector<double*> values = p.all();
    REQUIRE(got.size() == values.size());
    const double step = 1e-6;
    int64_t checked = 0;
    for (size_t i = 0; i < values.size(); ++i)
    {
        const double original = *values[i];
        *values[i] = original + step;
        const double plus = reference_loss(p, x, n, eps, k, beta, iwae);
        *values[i] = original - step;
        const double minus = reference_loss(p, x, n, eps, k, beta, iwae);
        *values[i] = original;
        const double fd = (plus - minus) / (2 * step);
        INFO("parameter value #" << i << ": loss gradient " << got[i] << ", central difference " << fd);
        CHECK(std::abs(got[i] - fd) <= 1e-4 + 1e-3 * std::abs(fd));
        ++checked;
    }
    CHECK(checked == l * d + 2 * l + d * l + d + 1); // A, c, log_var, W, b, log s
}

} // namespace

TEST_CASE("elbo loss: value and every gradient (the mu and log sigma^2 terms through the encoder) match a "
          "double reference by central differences",
          "[elbo][gradient]")
{
    SECTION("bound elbo, beta 0.7")
    {
        check_gradients("beta: 0.7", 0.7, false);
    }
    SECTION("bound elbo, beta 1")
    {
        check_gradients("", 1.0, false);
    }
    SECTION("bound iwae (per-row weights in the decoder's backward pass)")
    {
        check_gradients("bound: iwae", 1.0, true);
    }
}

TEST_CASE(
    "elbo loss: metrics are the reference's reconstruction, KL and ELBO; value-only calls report the same",
    "[elbo]")
{
    const int64_t n = 7, d = 4, l = 2, k = 3;
    TestLinearVae v = make_linear_vae(d, l, "init_std: 0.6");
    const LinearVaeParams p = LinearVaeParams::read(v.model);
    auto loss = make("elbo", "{samples: 3, beta: 2.5}");
    std::vector<float> x = normal_data(n, d, 9);
    const ansatz_tensor batch = ansatz::make_view(x.data(), { n, d });
    const ansatz::Rng rng(77);
    Grads g(v.model);
    const Metrics with = compute(*loss, v.model, batch, rng, &g);
    const Metrics without = compute(*loss, v.model, batch, rng, nullptr);
    const auto eps = row_eps(rng, n, k, l);
    double rec = 0, kl = 0;
    for (int64_t r = 0; r < n; ++r)
    {
        double a = 0, b = 0;
        p.elbo_terms(x.data() + r * d, eps[r], k, a, b);
        rec += a / n, kl += b / n;
    }
    for (const Metrics* m : { &with, &without })
    {
        CHECK(m->at("reconstruction") == Approx(rec).epsilon(1e-5));
        CHECK(m->at("kl") == Approx(kl).epsilon(1e-5));
        CHECK(m->at("elbo") == Approx(rec - kl).epsilon(1e-5));
        CHECK(m->at("loss") == Approx(-(rec - 2.5 * kl)).epsilon(1e-5));
        CHECK(m->at("beta") == 2.5);
        CHECK(m->count("active_units") == 1);
    }
    CHECK(with == without);
}

TEST_CASE("elbo loss: one stream per row, so a row's samples do not depend on the rows beside it", "[elbo]")
{
    // Rows 0-2 of a 3-row batch draw the same eps as rows 0-2 of a 6-row batch: with rows 3-5 equal to
    // rows 0-2, the 6-row reconstruction is the mean of the 3-row one and of rows 3-5's own draws, which
    // differ (other streams): checked through the reference.
    const int64_t d = 3, l = 2, k = 2;
    TestLinearVae v = make_linear_vae(d, l);
    const LinearVaeParams p = LinearVaeParams::read(v.model);
    auto loss = make("elbo", "{samples: 2}");
    std::vector<float> x = normal_data(3, d, 4);
    std::vector<float> x6 = x;
    x6.insert(x6.end(), x.begin(), x.end());
    const ansatz::Rng rng(31);
    const Metrics m3 = compute(*loss, v.model, ansatz::make_view(x.data(), { 3, d }), rng, nullptr);
    const Metrics m6 = compute(*loss, v.model, ansatz::make_view(x6.data(), { 6, d }), rng, nullptr);
    const auto eps = row_eps(rng, 6, k, l);
    double rec3 = 0, rec6 = 0, kl = 0;
    for (int64_t r = 0; r < 6; ++r)
    {
        double a = 0;
        p.elbo_terms(x6.data() + r * d, eps[r], k, a, kl);
        rec6 += a / 6;
        if (r < 3)
            rec3 += a / 3;
    }
    CHECK(m3.at("reconstruction") == Approx(rec3).epsilon(1e-6));
    CHECK(m6.at("reconstruction") == Approx(rec6).epsilon(1e-6));
    CHECK(m6.at("reconstruction") != Approx(m3.at("reconstruction")).epsilon(1e-6));
}

TEST_CASE("elbo loss: the closed-form KL equals a Monte Carlo estimate (seed 99, 400000 samples, 4 standard "
          "errors)",
          "[elbo][statistical]")
{
    // KL(Q || N(0, I)) = E_Q[log Q(h) - log N(h; 0, I)], estimated from 400000 draws h ~ Q.
    const std::vector<float> mu = { 0.7f, -1.3f, 0.0f, 2.1f }, log_var = { -0.5f, 0.8f, 0.0f, -2.0f };
    const int64_t l = 4, samples = 400000;
    const double closed = ansatz::latent::gaussian_kl(mu.data(), log_var.data(), l);
    ansatz::Rng rng(99);
    double mean = 0, m2 = 0;
    for (int64_t s = 0; s < samples; ++s)
    {
        double log_ratio = 0;
        for (int64_t j = 0; j < l; ++j)
        {
            const double e = rng.normal(), h = mu[j] + std::exp(0.5 * log_var[j]) * e;
            log_ratio += -0.5 * (e * e + log_var[j]) + 0.5 * h * h; // log Q(h) - log N(h; 0, I)
        }
        const double delta = log_ratio - mean;
        mean += delta / static_cast<double>(s + 1);
        m2 += delta * (log_ratio - mean);
    }
    const double stderr_ = std::sqrt(m2 / (samples - 1) / samples);
    INFO("closed form " << closed << ", Monte Carlo " << mean << " +- " << stderr_);
    CHECK(stderr_ < 0.01);
    CHECK(std::abs(closed - mean) < 4 * stderr_);

    // The loss reports that KL for an encoder that gives every row these mu and log_var.
    TestLinearVae v = make_linear_vae(3, l);
    LinearVaeParams p = LinearVaeParams::read(v.model);
    std::fill(p.a.begin(), p.a.end(), 0.0);
    p.c.assign(mu.begin(), mu.end());
    p.lv.assign(log_var.begin(), log_var.end());
    p.write(v.model);
    auto loss = make("elbo", "{}");
    std::vector<float> x = normal_data(5, 3, 1);
    const Metrics m = compute(*loss, v.model, ansatz::make_view(x.data(), { 5, 3 }), ansatz::Rng(1), nullptr);
    CHECK(m.at("kl") == Approx(closed).epsilon(1e-6));
    CHECK(m.at("active_units") == 0); // every row has the same mu
}

TEST_CASE("elbo loss: beta rises linearly over warmup_epochs from beta_start, from the host's progress",
          "[elbo]")
{
    TestLinearVae v = make_linear_vae(3, 2);
    auto loss = make("elbo", "{beta: 2, warmup_epochs: 2, beta_start: 0.5}");
    std::vector<float> x = normal_data(4, 3, 2);
    const ansatz_tensor batch = ansatz::make_view(x.data(), { 4, 3 });
    ansatz_progress& progress = test_host().progress();
    const ansatz_progress saved = progress;
    const auto beta_at = [&](int64_t step) {
        progress.steps_per_epoch = 10;
        progress.step = step;
        const Metrics m = compute(*loss, v.model, batch, ansatz::Rng(3), nullptr);
        CHECK(m.at("loss") == Approx(-(m.at("reconstruction") - m.at("beta") * m.at("kl"))).epsilon(1e-9));
        return m.at("beta");
    };
    CHECK(beta_at(0) == 0.5);
    CHECK(beta_at(5) == Approx(0.5 + 1.5 * 0.25));
    CHECK(beta_at(10) == Approx(1.25));
    CHECK(beta_at(20) == 2.0);
    CHECK(beta_at(35) == 2.0);
    progress = saved;
    // Outside a train stage (no batches per epoch): beta itself.
    CHECK(compute(*loss, v.model, batch, ansatz::Rng(3), nullptr).at("beta") == 2.0);
}

TEST_CASE(
    "elbo loss: a model without the 2.2 weighted pass (ModelRef's fallback, one call per weight) and one "
    "with only the weighted pass give the same gradients",
    "[elbo]")
{
    const int64_t n = 5, d = 4, l = 2;
    std::vector<float> x = normal_data(n, d, 8);
    const ansatz_tensor batch = ansatz::make_view(x.data(), { n, d });
    std::vector<std::vector<double>> results;
    for (const char* component : { "linear_vae", "linear_vae_plain", "linear_vae_weighted" })
        for (const char* bound : { "elbo", "iwae" })
        {
            INFO(component << ", bound " << bound);
            TestLinearVae v = make_linear_vae(d, l, "init_std: 0.4", 11, component);
            auto loss = make("elbo", std::string("{samples: 3, bound: ") + bound + "}");
            Grads g(v.model);
            const Metrics m = compute(*loss, v.model, batch, ansatz::Rng(5), &g);
            std::vector<double> r = g.flat();
            r.push_back(m.at("loss"));
            results.push_back(r);
        }
    for (size_t c = 1; c < 3; ++c)
        for (size_t b = 0; b < 2; ++b)
        {
            const std::vector<double>& want = results[b];
            const std::vector<double>& got = results[c * 2 + b];
            REQUIRE(got.size() == want.size());
            for (size_t i = 0; i < got.size(); ++i)
                CHECK(got[i] == Approx(want[i]).epsilon(1e-5).margin(1e-6));
        }
}

TEST_CASE("elbo loss: bad keys are refused with one sentence", "[elbo][bad-input]")
{
    CHECK_THROWS_WITH(
        make("elbo", "{beta_start: 0.1}"),
        Catch::Contains("key beta_start needs warmup_epochs > 0: without a warm-up beta is 1 from "
                        "the first batch"));
    CHECK_THROWS_WITH(
        make("elbo", "{bound: iwae, beta: 0.5}"),
        Catch::Contains("bound: iwae has no KL term to weigh; keys beta and warmup_epochs belong to "
                        "bound: elbo (leave beta at 1 and warmup_epochs at 0)"));
    // A model without the latent functions, bound directly (the engine refuses it at validation).
    auto rbm = make("rbm", "{hidden: 2, visible: 3}");
    auto loss = make("elbo", "{}");
    ansatz_status st{};
    const ansatz::ModelRef m = model_ref(*rbm);
    CHECK(loss->loss().bind(loss->self(), &m.handle(), nullptr, &st) == ANSATZ_STATUS_INVALID_INPUT);
    CHECK(std::string(st.message) ==
          "it needs a latent-variable model (functions encode, decode_log_likelihood, decode_backward, ...)");
}

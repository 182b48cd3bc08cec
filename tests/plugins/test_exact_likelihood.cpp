// The exact_likelihood evaluator against brute-force enumeration in double, and its refusals.
#include "support/evaluators.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

namespace
{

using ansatz::Rng;
using ansatz::test::evaluate;
using ansatz::test::metric;

double log_sum_exp(const std::vector<double>& x)
{
    const double top = *std::max_element(x.begin(), x.end());
    double s = 0;
    for (double v : x)
        s += std::exp(v - top);
    return top + std::log(s);
}

// log Z = log sum over every joint state (v, h) of exp(a.v + b.h + v W h), in double.
double brute_force_log_z(const ansatz::test::RbmParams& p)
{
    REQUIRE(p.d + p.h <= 16);
    std::vector<double> terms;
    for (int64_t s = 0; s < (int64_t{ 1 } << (p.d + p.h)); ++s)
    {
        double x = 0;
        for (int64_t i = 0; i < p.d; ++i)
            x += p.a[i] * ((s >> i) & 1);
        for (int64_t j = 0; j < p.h; ++j)
            x += p.b[j] * ((s >> (p.d + j)) & 1);
        for (int64_t i = 0; i < p.d; ++i)
            for (int64_t j = 0; j < p.h; ++j)
                x += p.w[i * p.h + j] * ((s >> i) & 1) * ((s >> (p.d + j)) & 1);
        terms.push_back(x);
    }
    return log_sum_exp(terms);
}

// log Z = log sum_h exp(b.h + sum_i softplus(a_i + (W h)_i)) over the 2^H hidden states, in double.
double hidden_sum_log_z(const ansatz::test::RbmParams& p)
{
    std::vector<double> terms;
    std::vector<float> h(static_cast<size_t>(p.h));
    for (int64_t s = 0; s < (int64_t{ 1 } << p.h); ++s)
    {
        double x = 0;
        for (int64_t j = 0; j < p.h; ++j)
        {
            h[j] = static_cast<float>((s >> j) & 1);
            x += p.b[j] * h[j];
        }
        for (int64_t i = 0; i < p.d; ++i)
        {
            const double y = p.pre_visible(h.data(), i);
            x += std::max(y, 0.0) + std::log1p(std::exp(-std::abs(y)));
        }
        terms.push_back(x);
    }
    return log_sum_exp(terms);
}

// A D x H RBM with W ~ N(0, 1) and biases ~ N(0, 1) (seeded), strong enough that the layers interact.
ansatz::test::TestRbm random_rbm(int64_t d, int64_t h, uint64_t seed, double weight_std = 1.0)
{
    ansatz::test::TestRbm r = ansatz::test::make_rbm(d, h, "init_std: " + std::to_string(weight_std), seed);
    std::vector<ansatz_named_tensor> params = r.model.parameters();
    Rng biases(seed + 1);
    for (int64_t i = 0; i < d; ++i)
        ansatz::f32(params[1].tensor)[i] = static_cast<float>(biases.normal());
    for (int64_t j = 0; j < h; ++j)
        ansatz::f32(params[2].tensor)[j] = static_cast<float>(biases.normal());
    return r;
}

// Binds the evaluator to the model through the C table; the status.
ansatz_status bind_status(const ansatz::engine::Instance& ev, const ansatz::ModelRef& model)
{
    ansatz_status st{};
    ev.evaluator().bind(ev.self(), &model.handle(), &st);
    return st;
}

} // namespace

TEST_CASE("exact_likelihood: enumerating either layer of a 6x4 and a 4x6 RBM agrees with brute force over "
          "all joint states (W and biases N(0,1), seeds 51 and 53, absolute 1e-5)",
          "[evaluators][exact_likelihood]")
{
    for (const auto& [d, h, seed] : { std::tuple<int64_t, int64_t, uint64_t>{ 6, 4, 51 }, { 4, 6, 53 } })
    {
        INFO(d << " visible, " << h << " hidden units");
        const ansatz::test::TestRbm r = random_rbm(d, h, seed);
        const ansatz::test::RbmParams p = ansatz::test::read_params(r.model);
        const double log_z = brute_force_log_z(p);
        const int64_t n = 40;
        const std::vector<float> data = ansatz::test::random_bits(n, d, 0.5, seed + 2);
        std::vector<double> log_p;
        for (int64_t k = 0; k < n; ++k)
            log_p.push_back(-p.free_energy(data.data() + k * d) - log_z);
        const double mean = std::accumulate(log_p.begin(), log_p.end(), 0.0) / n;
        double ss = 0;
        for (double x : log_p)
            ss += (x - mean) * (x - mean);
        const double stderr_expected = std::sqrt(ss / (n - 1) / n);

        const ansatz_tensor view = ansatz::make_view(data.data(), { n, d });
        for (const char* layer : { "smaller", "hidden", "visible" })
        {
            INFO("layer: " << layer);
            auto ev = ansatz::test::make("exact_likelihood", std::string("{layer: ") + layer + ", batch: 7}");
            const auto m = evaluate(*ev, r.model, view, Rng(1));
            REQUIRE(m.size() == 3);
            CHECK(metric(m, "log_z") == Approx(log_z).margin(1e-5));
            CHECK(metric(m, "log_likelihood") == Approx(mean).margin(1e-5));
            CHECK(metric(m, "log_likelihood_stderr") == Approx(stderr_expected).epsilon(1e-4));
        }
    }
}

TEST_CASE("exact_likelihood: 2^16 hidden states of a 300x16 RBM in several batches agree with a double sum "
          "over h (W ~ N(0, 0.3^2), seed 55, relative 1e-6)",
          "[evaluators][exact_likelihood]")
{
    // 2^22 / 300 = 13981 states per call: five calls, the last one partial.
    const ansatz::test::TestRbm r = random_rbm(300, 16, 55, 0.3);
    const double expected = hidden_sum_log_z(ansatz::test::read_params(r.model));
    const std::vector<float> data = ansatz::test::random_bits(3, 300, 0.5, 56);
    auto ev = ansatz::test::make("exact_likelihood", "{max_units: 16}");
    const auto m = evaluate(*ev, r.model, ansatz::make_view(data.data(), { 3, 300 }), Rng(1));
    CHECK(metric(m, "log_z") == Approx(expected).epsilon(1e-6));
}

TEST_CASE(
    "exact_likelihood: a model too large to enumerate is refused in bind with a sentence naming the sizes",
    "[evaluators][exact_likelihood]")
{
    {
        const ansatz::test::TestRbm big = ansatz::test::make_rbm(784, 256);
        auto ev = ansatz::test::make("exact_likelihood");
        const ansatz_status st = bind_status(*ev, big.model);
        CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
        CHECK(std::string(st.message) ==
              "exact_likelihood: the model has 784 visible and 256 hidden units; "
              "enumerating the smaller layer (256 units) needs at most max_units = 24");
    }
    {
        const ansatz::test::TestRbm r = ansatz::test::make_rbm(784, 20);
        auto ev = ansatz::test::make("exact_likelihood", "{layer: visible, max_units: 30}");
        const ansatz_status st = bind_status(*ev, r.model);
        CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
        CHECK(std::string(st.message) ==
              "exact_likelihood: the model has 784 visible and 20 hidden units; "
              "enumerating the visible layer (784 units) needs at most max_units = 30");
        // The default layer enumerates the 20 hidden units.
        auto ok = ansatz::test::make("exact_likelihood");
        CHECK(bind_status(*ok, r.model).code == ANSATZ_STATUS_OK);
    }
    {
        const ansatz::test::TestRbm r = ansatz::test::make_rbm(6, 4);
        auto ev = ansatz::test::make("exact_likelihood", "{max_units: 3}");
        const ansatz_status st = bind_status(*ev, r.model);
        CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
        CHECK(std::string(st.message) ==
              "exact_likelihood: the model has 6 visible and 4 hidden units; "
              "enumerating the smaller layer (4 units) needs at most max_units = 3");
    }
    // max_units above 30 is refused by the key's range.
    CHECK_THROWS_AS(ansatz::test::make("exact_likelihood", "{max_units: 31}"), ansatz::InputError);
}

TEST_CASE("exact_likelihood: a cancelled run stops with ANSATZ_STATUS_CANCELLED",
          "[evaluators][exact_likelihood]")
{
    const ansatz::test::TestRbm r = random_rbm(6, 4, 57);
    std::vector<float> rows = ansatz::test::random_bits(5, 6, 0.5, 58);
    ansatz::engine::HostServices host(1, 1);
    host.request_cancel();
    auto ev = ansatz::test::make("exact_likelihood", "{}", &host);
    ansatz_status st{};
    REQUIRE(ev->evaluator().bind(ev->self(), &r.model.handle(), &st) == ANSATZ_STATUS_OK);
    ansatz::engine::MetricsSink sink;
    const ansatz_tensor view = ansatz::make_view(rows.data(), { 5, 6 });
    Rng rng(59);
    CHECK(ev->evaluator().evaluate(ev->self(), &view, &rng.state(), sink.c(), &st) ==
          ANSATZ_STATUS_CANCELLED);
    CHECK(std::string(st.message) == "evaluator 'exact_likelihood' was cancelled");
}

namespace
{

// A Gaussian-Bernoulli RBM (visible_units: gaussian, sigma) with W ~ N(0, weight_std^2), a and b ~ N(0, 1).
ansatz::test::TestRbm gaussian_rbm(int64_t d, int64_t h, double sigma, uint64_t seed, double weight_std)
{
    ansatz::test::TestRbm r =
        ansatz::test::make_rbm(d, h,
                               "visible_units: gaussian, sigma: " + std::to_string(sigma) +
                                   ", init_std: " + std::to_string(weight_std),
                               seed);
    std::vector<ansatz_named_tensor> params = r.model.parameters();
    Rng biases(seed + 1);
    for (int64_t i = 0; i < d; ++i)
        ansatz::f32(params[1].tensor)[i] = static_cast<float>(biases.normal());
    for (int64_t j = 0; j < h; ++j)
        ansatz::f32(params[2].tensor)[j] = static_cast<float>(biases.normal());
    return r;
}

} // namespace

TEST_CASE("exact_likelihood: Gaussian visible units enumerate the hidden layer, and log Z agrees with the "
          "Gaussian integral over v summed over h in double (3x5 and 40x10, sigma 0.7, seeds 91 and 93, "
          "relative 1e-6)",
          "[evaluators][exact_likelihood]")
{
    const double sigma = 0.7;
    for (const auto& [d, h, seed] : { std::tuple<int64_t, int64_t, uint64_t>{ 3, 5, 91 }, { 40, 10, 93 } })
    {
        INFO(d << " visible, " << h << " hidden units");
        const ansatz::test::TestRbm r = gaussian_rbm(d, h, sigma, seed, 0.5);
        const ansatz::test::RbmParams p = ansatz::test::read_params(r.model);
        // E = sum_i (v_i - a_i)^2 / 2 sigma^2 - b.h - sum_i v_i c_i / sigma^2 with c = W h: the integral over
        // v_i is sqrt(2 pi) sigma exp((a_i c_i + c_i^2 / 2) / sigma^2).
        std::vector<double> terms;
        for (int64_t s = 0; s < (int64_t{ 1 } << h); ++s)
        {
            double x = 0;
            for (int64_t j = 0; j < h; ++j)
                x += p.b[j] * ((s >> j) & 1);
            for (int64_t i = 0; i < d; ++i)
            {
                double c = 0;
                for (int64_t j = 0; j < h; ++j)
                    c += p.w[i * h + j] * ((s >> j) & 1);
                x += (p.a[i] * c + c * c / 2) / (sigma * sigma) + std::log(std::sqrt(2 * M_PI) * sigma);
            }
            terms.push_back(x);
        }
        const double log_z = log_sum_exp(terms);
        // -F(v) - log Z on a few rows near the biases, F in double.
        Rng rows_rng(seed + 2);
        const int64_t n = 20;
        std::vector<float> data(static_cast<size_t>(n * d));
        for (int64_t k = 0; k < n; ++k)
            for (int64_t i = 0; i < d; ++i)
                data[k * d + i] = static_cast<float>(p.a[i] + sigma * rows_rng.normal());
        double mean = 0;
        for (int64_t k = 0; k < n; ++k)
        {
            const float* v = data.data() + k * d;
            double f = 0;
            for (int64_t i = 0; i < d; ++i)
                f += (v[i] - p.a[i]) * (v[i] - p.a[i]) / (2 * sigma * sigma);
            for (int64_t j = 0; j < h; ++j)
            {
                double pre = p.b[j];
                for (int64_t i = 0; i < d; ++i)
                    pre += v[i] / (sigma * sigma) * p.w[i * h + j];
                f -= std::max(pre, 0.0) + std::log1p(std::exp(-std::abs(pre)));
            }
            mean += (-f - log_z) / n;
        }
        auto ev = ansatz::test::make("exact_likelihood");
        const auto m = evaluate(*ev, r.model, ansatz::make_view(data.data(), { n, d }), Rng(1));
        CHECK(metric(m, "log_z") == Approx(log_z).epsilon(1e-6));
        CHECK(metric(m, "log_likelihood") == Approx(mean).epsilon(1e-6));
    }
}

TEST_CASE("exact_likelihood: Gaussian visible units cannot be enumerated: refusals name them",
          "[evaluators][exact_likelihood]")
{
    {
        const ansatz::test::TestRbm r = gaussian_rbm(784, 64, 1.0, 95, 0.01);
        auto ev = ansatz::test::make("exact_likelihood");
        const ansatz_status st = bind_status(*ev, r.model);
        CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
        CHECK(std::string(st.message) ==
              "exact_likelihood: the model has 784 real-valued visible and 64 hidden "
              "units; enumerating the hidden layer (64 units) needs at most "
              "max_units = 24");
    }
    {
        // 3 visible units would be the smaller layer, but they are real-valued.
        const ansatz::test::TestRbm r = gaussian_rbm(3, 5, 1.0, 96, 0.1);
        auto ev = ansatz::test::make("exact_likelihood", "{layer: visible}");
        const ansatz_status st = bind_status(*ev, r.model);
        CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
        CHECK(std::string(st.message) ==
              "exact_likelihood: the model has 3 real-valued visible and 5 hidden "
              "units; layer: visible, but only binary or spin visible units can be "
              "enumerated");
    }
}

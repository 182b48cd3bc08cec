// The energy_auroc evaluator against a brute-force Mann-Whitney count over every (data, noise) pair, on a
// 4-unit RBM whose 16 states make ties common, and its standard error against Hanley & McNeil's formula.
#include "support/evaluators.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace
{

using ansatz::Rng;
using ansatz::test::evaluate;
using ansatz::test::metric;

} // namespace

TEST_CASE("energy_auroc: equals the brute-force pair count with ties as one half, for any batch (seed 21, 50 "
          "data rows, 200 noise rows)",
          "[evaluators][energy_auroc]")
{
    const int64_t d = 4, h = 3, n = 50, m = 200;
    ansatz::test::TestRbm r = ansatz::test::make_rbm(d, h);
    ansatz::test::write_params(r.model,
                               { 0.9f, -1.1f, 0.4f, 0.7f, -0.5f, 1.2f, 0.3f, 0.8f, -0.6f, 1.0f, 0.2f, -0.9f },
                               { 0.6f, -0.4f, 0.9f, -0.2f }, { 0.3f, -0.5f, 0.1f });
    const std::vector<float> data = ansatz::test::random_bits(n, d, 0.7, 21);
    const ansatz_tensor view = ansatz::make_view(const_cast<float*>(data.data()), { n, d });

    // The noise as the evaluator draws it: one stream per noise row, split from the call's stream.
    Rng call(22);
    Rng replay = call;
    ansatz::StreamArray streams;
    std::vector<float> noise(static_cast<size_t>(m * d));
    ansatz_tensor nv = ansatz::make_view(noise.data(), { m, d });
    r.model.random_state(nv, streams.split_from(replay, m));
    std::vector<float> fd(n), fn(m);
    ansatz_tensor fdv = ansatz::make_view(fd.data(), { n }), fnv = ansatz::make_view(fn.data(), { m });
    r.model.free_energy(view, fdv);
    r.model.free_energy(nv, fnv);
    double pairs = 0;
    int64_t ties = 0;
    for (float x : fd)
        for (float y : fn)
        {
            pairs += y > x ? 1.0 : y == x ? 0.5 : 0.0;
            ties += y == x;
        }
    REQUIRE(ties > 100); // the check covers ties
    const double a = pairs / (static_cast<double>(n) * m);
    REQUIRE(a > 0.55);
    REQUIRE(a < 0.99);
    const double q1 = a / (2 - a), q2 = 2 * a * a / (1 + a);
    const double se = std::sqrt((a * (1 - a) + (m - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (n * m));

    for (const char* yaml : { "{noise: 200}", "{noise: 200, batch: 7}" })
    {
        INFO(yaml);
        auto ev = ansatz::test::make("energy_auroc", yaml);
        const auto got = evaluate(*ev, r.model, view, call);
        CHECK(metric(got, "auroc") == Approx(a).epsilon(1e-12));
        CHECK(metric(got, "auroc_stderr") == Approx(se).epsilon(1e-9));
        double mean_data = 0, mean_noise = 0;
        for (float x : fd)
            mean_data += x / static_cast<double>(n);
        for (float y : fn)
            mean_noise += y / static_cast<double>(m);
        CHECK(metric(got, "free_energy_data") == Approx(mean_data).epsilon(1e-6));
        CHECK(metric(got, "free_energy_noise") == Approx(mean_noise).epsilon(1e-6));
    }
    // noise: 0 draws as many noise rows as the data has: the first 50 of the same streams.
    auto ev = ansatz::test::make("energy_auroc", "{}");
    double pairs50 = 0;
    for (float x : fd)
        for (int64_t j = 0; j < n; ++j)
            pairs50 += fn[j] > x ? 1.0 : fn[j] == x ? 0.5 : 0.0;
    CHECK(metric(evaluate(*ev, r.model, view, call), "auroc") == Approx(pairs50 / (n * n)).epsilon(1e-12));
}

// ansatz/mcmc_diagnostics.hpp: the autocorrelation time, ESS, R-hat and binning error against processes
// whose answers are known (AR(1): tau = (1 + rho) / (1 - rho), the error of the mean sd sqrt(tau / N)),
// against chains that have not mixed, and against the peers' recipes on a fixed data set.
#include "ansatz/mcmc_diagnostics.hpp"
#include "ansatz/random.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

namespace
{

using namespace ansatz::mcmc;

// `chains` AR(1) series x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t + (1 - rho) mu_c, started from the
// stationary distribution: mean mu_c (`means`, one per chain; 0 when empty), variance 1, and
// tau = (1 + rho) / (1 - rho). Chain c draws from stream c of the seed.
std::vector<double> ar1(uint64_t seed, int64_t chains, int64_t draws, double rho,
                        const std::vector<double>& means = {})
{
    std::vector<double> x(static_cast<size_t>(chains * draws));
    const double scale = std::sqrt(1 - rho * rho);
    for (int64_t c = 0; c < chains; ++c)
    {
        ansatz::Rng rng = ansatz::Rng(seed).derive(static_cast<uint64_t>(c));
        const double mu = means.empty() ? 0.0 : means[static_cast<size_t>(c)];
        double y = mu + rng.normal();
        for (int64_t t = 0; t < draws; ++t)
        {
            y = rho * y + scale * rng.normal() + (1 - rho) * mu;
            x[static_cast<size_t>(c * draws + t)] = y;
        }
    }
    return x;
}

// The deterministic traces of the peer script below: y_t = 0.8 y_{t-1} + (u_t - 0.5) + 0.05 c with u_t
// from a 31-bit linear congruential generator, chain c's offset 0.05 c making the chains disagree.
std::vector<double> peer_traces(int64_t chains, int64_t draws)
{
    std::vector<double> x(static_cast<size_t>(chains * draws));
    for (int64_t c = 0; c < chains; ++c)
    {
        double y = 0;
        uint64_t state = 12345 + 977 * static_cast<uint64_t>(c);
        for (int64_t t = 0; t < draws; ++t)
        {
            state = (state * 1103515245 + 12345) % 2147483648;
            y = 0.8 * y + (static_cast<double>(state) / 2147483648.0 - 0.5) + 0.05 * static_cast<double>(c);
            x[static_cast<size_t>(c * draws + t)] = y;
        }
    }
    return x;
}

} // namespace

TEST_CASE("normal_quantile agrees with scipy.stats.norm.ppf", "[sdk][mcmc]")
{
    // scipy 1.10.1: norm.ppf(p) for these p.
    const std::vector<std::pair<double, double>> table = {
        { 1e-300, -37.0470962993612 },
        { 1e-10, -6.361340902404056 },
        { 0.001, -3.090232306167813 },
        { 0.02425, -1.972961051311885 },
        { 0.1, -1.2815515655446004 },
        { 0.3, -0.5244005127080409 },
        { 0.5, 0.0 },
        { 0.75, 0.6744897501960817 },
        { 0.975, 1.959963984540054 },
        { 0.999999, 4.753424308817087 },
    };
    for (const auto& [p, expected] : table)
    {
        INFO("p = " << p);
        CHECK(normal_quantile(p) == Approx(expected).epsilon(1e-13).margin(1e-15));
    }
    CHECK(normal_quantile(0) == -std::numeric_limits<double>::infinity());
    CHECK(normal_quantile(1) == std::numeric_limits<double>::infinity());
    CHECK(std::isnan(normal_quantile(1.5)));
    CHECK(std::isnan(normal_quantile(std::numeric_limits<double>::quiet_NaN())));
}

TEST_CASE("the autocorrelation time of an AR(1) process is recovered within 10 percent", "[sdk][mcmc]")
{
    // Seed 2024, 4 chains of 2^18 draws: the estimator's relative standard deviation is about
    // sqrt(2 (2M + 1) / N) (Sokal), 1.2% at rho = 0.5 (M ~ 15) and 2% at rho = 0.9 (M ~ 95), so the
    // 10% threshold is five of them or more.
    for (const double rho : { 0.5, 0.9 })
    {
        const int64_t chains = 4, draws = int64_t{ 1 } << 18;
        const std::vector<double> x = ar1(2024, chains, draws, rho);
        const Traces t{ x.data(), chains, draws };
        const double exact = (1 + rho) / (1 - rho);
        const AutocorrelationTime a = integrated_autocorrelation_time(t);
        INFO("rho = " << rho << ": tau = " << a.tau << ", exact " << exact << ", window " << a.window);
        CHECK(std::abs(a.tau - exact) < 0.10 * exact);
        CHECK(a.reliable);
        // Sokal's window: the smallest M >= 5 tau(M).
        CHECK(static_cast<double>(a.window) >= 5 * a.tau);
        CHECK(static_cast<double>(a.window) < 5 * a.tau + 5);
        // The ESS is N / tau.
        CHECK(effective_sample_size(t) == Approx(static_cast<double>(chains * draws) / a.tau));
        // Vehtari's bulk ESS estimates the same N / tau for a Gaussian chain (the rank transform is
        // monotone); within 10% as well.
        const double bulk = ess_bulk(t);
        INFO("ess_bulk = " << bulk << ", N / tau = " << static_cast<double>(chains * draws) / exact);
        CHECK(std::abs(bulk - static_cast<double>(chains * draws) / exact) <
              0.10 * static_cast<double>(chains * draws) / exact);
    }
}

TEST_CASE("independent draws have tau near 1 and an ESS near their count", "[sdk][mcmc]")
{
    // Seed 7, 8 chains of 4096 iid normal draws (rho = 0): tau within 10% of 1.
    const std::vector<double> x = ar1(7, 8, 4096, 0.0);
    const Traces t{ x.data(), 8, 4096 };
    const AutocorrelationTime a = integrated_autocorrelation_time(t);
    CHECK(std::abs(a.tau - 1) < 0.10);
    CHECK(std::abs(effective_sample_size(t) / 32768.0 - 1) < 0.10);
    CHECK(std::abs(ess_bulk(t) / 32768.0 - 1) < 0.10);
}

TEST_CASE("split R-hat is near 1 for mixed chains and flags chains stuck in different modes", "[sdk][mcmc]")
{
    // Seed 11, 8 chains of 1000 draws. Mixed: iid normal and AR(1) rho = 0.5, all around 0: R-hat below
    // 1.01 (its spread for 16 half-chains of 500 draws is about 0.003). Stuck: AR(1) rho = 0.9, four
    // chains around -1 and four around +1 (two modes two standard deviations apart): R-hat above 1.1
    // (1.36 to 1.47 over seeds 1 to 5).
    for (const double rho : { 0.0, 0.5 })
    {
        const std::vector<double> x = ar1(11, 8, 1000, rho);
        const Traces t{ x.data(), 8, 1000 };
        INFO("rho = " << rho);
        CHECK(rank_normalized_rhat(t) < 1.01);
        CHECK(split_rhat(t) < 1.01);
        CHECK(rank_normalized_rhat(t) > 0.99);
    }
    const std::vector<double> stuck = ar1(11, 8, 1000, 0.9, { -1, -1, -1, -1, 1, 1, 1, 1 });
    const Traces t{ stuck.data(), 8, 1000 };
    INFO("rank R-hat " << rank_normalized_rhat(t) << ", split R-hat " << split_rhat(t));
    CHECK(rank_normalized_rhat(t) > 1.1);
    CHECK(split_rhat(t) > 1.1);
    // The same chains, all in one mode, pass the 1.1 threshold (1.01 to 1.05 over seeds 1 to 5: with
    // tau = 19, each half-chain holds about 26 independent draws).
    const std::vector<double> one_mode = ar1(11, 8, 1000, 0.9, { 1, 1, 1, 1, 1, 1, 1, 1 });
    CHECK(rank_normalized_rhat({ one_mode.data(), 8, 1000 }) < 1.1);
}

TEST_CASE("split R-hat of one chain sees a drift between its halves", "[sdk][mcmc]")
{
    // Seed 3, one chain of 2000 iid normal draws, plus a ramp from 0 to 3 in the second copy: the
    // halves differ by about 1.5 standard deviations, so R-hat > 1.1; without the ramp it is below
    // 1.01.
    std::vector<double> x = ar1(3, 1, 2000, 0.0);
    CHECK(rank_normalized_rhat({ x.data(), 1, 2000 }) < 1.01);
    for (size_t i = 0; i < x.size(); ++i)
        x[i] += 3.0 * static_cast<double>(i) / 2000.0;
    CHECK(rank_normalized_rhat({ x.data(), 1, 2000 }) > 1.1);
}

TEST_CASE("the binned error of an AR(1) mean is sd sqrt(tau / N) within 10 percent", "[sdk][mcmc]")
{
    // Seed 99. One chain of 2^20 draws and 16 chains of 2^16 draws, rho = 0.5 and 0.9 (sd 1): the
    // plateau's relative error is about 1 / sqrt(2 blocks) (2-3% with 512-4096 blocks) plus a bias of
    // about 2 rho / ((1 - rho)^2 B tau) (below 2% at the chosen B), so 10% is over three of them.
    for (const double rho : { 0.5, 0.9 })
        for (const auto& [chains, draws] : { std::pair<int64_t, int64_t>{ 1, 1 << 20 }, { 16, 1 << 16 } })
        {
            const std::vector<double> x = ar1(99, chains, draws, rho);
            const Binning b = binning({ x.data(), chains, draws });
            const double tau = (1 + rho) / (1 - rho);
            const double expected = std::sqrt(tau / static_cast<double>(chains * draws));
            INFO("rho = " << rho << ", " << chains << " chains: error " << b.standard_error << ", expected "
                          << expected << ", block size " << b.block_size);
            CHECK(b.converged);
            CHECK(std::abs(b.standard_error - expected) < 0.10 * expected);
            // The naive error (block size 1) is sqrt(tau) times too small.
            CHECK(b.levels.front().standard_error ==
                  Approx(1 / std::sqrt(double(chains * draws))).epsilon(0.05));
            CHECK(std::abs(b.mean) < 4 * expected);
        }
}

TEST_CASE("the diagnostics agree with emcee ArviZ and pyblock on a fixed data set", "[sdk][mcmc]")
{
    // Made with /usr/bin/python3 (numpy 1.24.2, scipy 1.10.1) by a script that redoes the peers'
    // recipes: emcee 3's integrated_time (chains' autocorrelation averaged, taus = 2 cumsum(f) - 1,
    // auto_window c = 5), ArviZ's _rhat on _split_chains and on _z_scale(split) / folded (rank R-hat),
    // ArviZ's _ess(_z_scale(_split_chains(x))) (bulk ESS), pyblock's reblock + find_optimal_block on
    // the chains' block means, on peer_traces(3, 200) and peer_traces(2, 4096).
    {
        const std::vector<double> x = peer_traces(3, 200);
        const Traces t{ x.data(), 3, 200 };
        const AutocorrelationTime a = integrated_autocorrelation_time(t);
        CHECK(a.tau == Approx(5.037849680922044).epsilon(1e-12));
        CHECK(a.window == 26);
        CHECK(split_rhat(t) == Approx(1.1241839788723482).epsilon(1e-12));
        CHECK(rank_normalized_rhat(t) == Approx(1.123710222939193).epsilon(1e-12));
        CHECK(ess_bulk(t) == Approx(24.391029415552474).epsilon(1e-12));
        const Binning b = binning(t);
        CHECK(b.mean == Approx(0.2667820813718139).epsilon(1e-12));
        CHECK_FALSE(b.converged); // 600 draws are too few for pyblock's criterion
    }
    {
        const std::vector<double> x = peer_traces(2, 4096);
        const Traces t{ x.data(), 2, 4096 };
        const AutocorrelationTime a = integrated_autocorrelation_time(t);
        CHECK(a.tau == Approx(6.544676405421425).epsilon(1e-12));
        CHECK(a.window == 33);
        CHECK(split_rhat(t) == Approx(1.0381967933577476).epsilon(1e-12));
        CHECK(rank_normalized_rhat(t) == Approx(1.0379654737663582).epsilon(1e-12));
        CHECK(ess_bulk(t) == Approx(73.24538502064748).epsilon(1e-12));
        const Binning b = binning(t);
        CHECK(b.converged);
        CHECK(b.block_size == 256);
        CHECK(b.standard_error == Approx(0.022515912581099782).epsilon(1e-12));
        CHECK(b.mean == Approx(0.12595215964883338).epsilon(1e-12));
    }
}

TEST_CASE("the diagnostics of constant short and non-finite traces", "[sdk][mcmc]")
{
    const std::vector<double> same(40, 2.5);
    const Traces t{ same.data(), 4, 10 };
    CHECK(integrated_autocorrelation_time(t).tau == 1);
    CHECK(effective_sample_size(t) == 40);
    CHECK(rank_normalized_rhat(t) == 1);
    CHECK(split_rhat(t) == 1);
    CHECK(binning(t).standard_error == 0);
    CHECK(binning(t).mean == 2.5);

    // Two chains frozen at different values cannot mix.
    std::vector<double> apart(same);
    for (size_t i = 20; i < 40; ++i)
        apart[i] = -1;
    CHECK(std::isinf(split_rhat({ apart.data(), 4, 10 })));
    CHECK(std::isinf(rank_normalized_rhat({ apart.data(), 4, 10 })));

    // Too short: NaN, not a number that looks like an answer.
    CHECK(std::isnan(integrated_autocorrelation_time({ same.data(), 1, 1 }).tau));
    CHECK(std::isnan(rank_normalized_rhat({ same.data(), 2, 3 })));
    CHECK(std::isnan(binning({ same.data(), 1, 1 }).standard_error));
    CHECK(std::isnan(summarize({ same.data(), 0, 0 }).mean));

    std::vector<double> bad = ar1(5, 2, 50, 0.5);
    bad[17] = std::numeric_limits<double>::quiet_NaN();
    const Summary s = summarize({ bad.data(), 2, 50 });
    CHECK(std::isnan(s.mean));
    CHECK(std::isnan(s.standard_error));
    CHECK(std::isnan(s.tau));
    CHECK(std::isnan(s.rhat));
    CHECK(std::isnan(ess_bulk({ bad.data(), 2, 50 })));
    CHECK(std::isnan(autocorrelation(bad.data(), 50)[0]));
}

TEST_CASE("the autocorrelation function of an AR(1) chain decays as rho^t", "[sdk][mcmc]")
{
    // Seed 21, one chain of 2^18 draws, rho = 0.8: rho(t) within 0.02 of 0.8^t for t <= 10 (its
    // standard deviation is about sqrt(tau / N) = 0.006).
    const int64_t n = int64_t{ 1 } << 18;
    const std::vector<double> x = ar1(21, 1, n, 0.8);
    const std::vector<double> r = autocorrelation(x.data(), n);
    REQUIRE(r.size() == static_cast<size_t>(n));
    CHECK(r[0] == 1);
    for (int t = 1; t <= 10; ++t)
        CHECK(std::abs(r[static_cast<size_t>(t)] - std::pow(0.8, t)) < 0.02);
    CHECK(autocorrelation(x.data(), 0).empty());
}

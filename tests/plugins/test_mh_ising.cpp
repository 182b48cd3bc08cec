// metropolis_hastings on the 4 x 4 periodic Ising model (J = 1, h = 0) against the exact thermodynamics by
// enumeration of its 2^16 states (plugins/models/ising/exact.hpp): the mean energy and mean |m| per site
// within 3 standard errors, and the energy histogram by a chi-square test, at T = 1.5, 2.269 and 3.0;
// also through advance_tempered (the model at T = 1, the chains at beta' = 1 / T) and the checkerboard order.
#include "models/ising/exact.hpp"
#include "support/plugins.hpp"
#include "support/statistics.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;
using ansatz::test::ChiSquare;

constexpr int64_t kSize = 4;
constexpr int64_t kSites = kSize * kSize;

const ansatz::ising::DensityOfStates& density()
{
    static const ansatz::ising::DensityOfStates dos(ansatz::ising::Lattice{ 2, kSize, true });
    return dos;
}

struct Result
{
    std::vector<double> energies; // E / N per chain
    std::vector<double> abs_m;    // |m| per chain
};

// `chains` chains of the 4 x 4 torus at model beta `model_beta`, from the model's random states, after
// `sweeps` sweeps of metropolis_hastings (advance_tempered at `tempered` when it is not 0); one sample per
// chain (its final state).
Result run(double model_beta, double tempered, const std::string& keys, int64_t chains, int32_t sweeps,
           uint64_t seed)
{
    char beta_text[40];
    std::snprintf(beta_text, sizeof beta_text, "%.17g", model_beta);
    auto ising = ansatz::test::make("ising", std::string("{dimension: 2, size: 4, beta: ") + beta_text + "}");
    const ModelRef model = ansatz::test::model_ref(*ising);
    Rng init(1);
    model.setup({ kSize, kSize }, init);
    auto mh = ansatz::test::make("metropolis_hastings", keys);
    const ansatz::SamplerRef sampler = ansatz::test::sampler_ref(*mh);
    sampler.bind(model);
    std::vector<float> s(static_cast<size_t>(chains * kSites));
    ansatz_tensor st = ansatz::make_view(s.data(), { chains, kSites });
    Rng parent(seed);
    ansatz::StreamArray streams;
    const ansatz::Streams rngs = streams.split_from(parent, chains);
    model.random_state(st, rngs);
    if (tempered != 0)
    {
        const std::vector<double> betas(static_cast<size_t>(chains), tempered);
        sampler.advance_tempered(st, sweeps, betas.data(), rngs);
    }
    else
        sampler.advance(st, sweeps, rngs);
    const auto bonds = ansatz::ising::Lattice{ 2, kSize, true }.bonds();
    Result out;
    for (int64_t c = 0; c < chains; ++c)
    {
        const float* row = s.data() + c * kSites;
        double b = 0, m = 0;
        for (const auto& [i, j] : bonds)
            b += static_cast<double>(row[i]) * row[j];
        for (int64_t i = 0; i < kSites; ++i)
        {
            REQUIRE((row[i] == 1.0f || row[i] == -1.0f));
            m += row[i];
        }
        out.energies.push_back(-b / kSites);
        out.abs_m.push_back(std::abs(m) / kSites);
    }
    return out;
}

double mean(const std::vector<double>& x)
{
    double s = 0;
    for (double v : x)
        s += v;
    return s / static_cast<double>(x.size());
}

// The checks at temperature t: <E>/N and <|m|> within 3 exact standard errors (the samples are independent:
// one per chain, so the standard error is the exact standard deviation over sqrt(chains)), and the
// histogram of E against the exact energy distribution (chi-square, cells pooled to expect >= 5, reject
// above the 1 - 1e-4 quantile); and, for power, the histogram is rejected against the distribution at
// 1.15 t.
void check_against_exact(const Result& r, double t, const std::string& what)
{
    const double beta = 1 / t;
    const ansatz::ising::Observables exact = density().at(1.0, 0.0, beta);
    const double n = static_cast<double>(r.energies.size());
    const double energy_se = std::sqrt(exact.specific_heat / (beta * beta * kSites) / n);
    const double m_se = std::sqrt((exact.m2 - exact.abs_magnetisation * exact.abs_magnetisation) / n);
    const double e = mean(r.energies), m = mean(r.abs_m);
    WARN(what << " at T = " << t << ": <E>/N " << e << " (exact " << exact.energy << ", SE " << energy_se
              << "), <|m|> " << m << " (exact " << exact.abs_magnetisation << ", SE " << m_se << ")");
    CHECK(std::abs(e - exact.energy) < 3 * energy_se);
    CHECK(std::abs(m - exact.abs_magnetisation) < 3 * m_se);

    const auto histogram = [&](double at_t) {
        const auto dist = density().energy_distribution(1.0, 0.0, 1 / at_t);
        std::vector<double> p;
        std::map<long, size_t> cell;
        for (const auto& [energy, prob] : dist)
        {
            cell[std::lround(energy)] = p.size();
            p.push_back(prob);
        }
        std::vector<int64_t> counts(p.size(), 0);
        for (double en : r.energies)
        {
            const auto found = cell.find(std::lround(en * kSites));
            REQUIRE(found != cell.end());
            ++counts[found->second];
        }
        return ansatz::test::chi_square(p, counts, static_cast<int64_t>(r.energies.size()));
    };
    const ChiSquare good = histogram(t);
    WARN(what << " at T = " << t << ": energy histogram chi-square " << good.statistic << " over "
              << good.cells << " cells, threshold " << good.threshold);
    CHECK(good.statistic < good.threshold);
    const ChiSquare other = histogram(1.15 * t);
    CHECK(other.statistic > other.threshold);
}

} // namespace

TEST_CASE(
    "metropolis_hastings on the 4x4 periodic Ising model: mean energy and |m| per site within 3 SE and the "
    "energy histogram (chi-square) at T = 1.5 and 2.269 and 3.0 (seeds 801-803 - 20000 chains x 500 "
    "sweeps - one sample per chain)",
    "[metropolis_hastings][ising][statistical]")
{
    uint64_t seed = 801;
    for (const double t : { 1.5, 2.269, 3.0 })
        check_against_exact(run(1 / t, 0, "{}", 20000, 500, seed++), t, "metropolis_hastings");
}

TEST_CASE(
    "metropolis_hastings on the 4x4 Ising model through advance_tempered (model at T = 1 - chains at beta' "
    "= 1/2.269) and with the checkerboard order at T = 2.269 (seeds 811-812 - 20000 chains x 500 sweeps)",
    "[metropolis_hastings][ising][tempered][statistical]")
{
    check_against_exact(run(1.0, 1 / 2.269, "{}", 20000, 500, 811), 2.269, "tempered metropolis_hastings");
    check_against_exact(run(1 / 2.269, 0, "{order: checkerboard}", 20000, 500, 812), 2.269,
                        "checkerboard metropolis_hastings");
}

// models/ising/exact.hpp -- exact thermodynamics of a small Ising lattice by enumeration, and exact
// samples of it. Header only, no dependency beyond the SDK's random streams; used by the tests and by
// the tool that prints the README's table (ising_exact), never by the plugin itself.
//
//     H(s) = -J sum_<ij> s_i s_j - h sum_i s_i = -J B(s) - h M(s),   p(s) = exp(-beta H(s)) / Z
//
// with the bonds <ij> of the plugin: every site's neighbour one step up each axis (wrapping around with
// periodic boundaries, none past the edge with open ones). B and M are integers, so the 2^N states
// collapse into a density of states g(B, M), counted once; any temperature and field then costs a sum
// over its few hundred levels.
#pragma once

#include <ansatz/random.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ansatz::ising
{

// A chain (dimension 1) or square lattice (dimension 2) of size^dimension spins, row-major.
struct Lattice
{
    int dimension = 2;
    int64_t size = 4;
    bool periodic = true;

    int64_t sites() const { return dimension == 1 ? size : size * size; }

    // The bonds (i, j), j one step up an axis from i; with periodic boundaries and size 2 a pair is
    // bonded twice (both neighbours of a site are the same site), as the plugin counts it.
    std::vector<std::pair<int64_t, int64_t>> bonds() const
    {
        std::vector<std::pair<int64_t, int64_t>> out;
        const int64_t n = sites();
        for (int64_t i = 0; i < n; ++i)
        {
            const int64_t x = i % size, y = i / size;
            if (x + 1 < size || periodic)
                out.emplace_back(i, y * size + (x + 1) % size);
            if (dimension == 2 && (y + 1 < size || periodic))
                out.emplace_back(i, ((y + 1) % size) * size + x);
        }
        return out;
    }
};

// Thermal averages at one (J, h, beta), per site where the name says so. m = M / N.
struct Observables
{
    double log_z = 0;
    double energy = 0;                // <E> / N
    double specific_heat = 0;         // beta^2 (<E^2> - <E>^2) / N
    double magnetisation = 0;         // <m> (signed)
    double abs_magnetisation = 0;     // <|m|>
    double m2 = 0, m4 = 0;            // <m^2>, <m^4>
    double susceptibility = 0;        // beta N (<m^2> - <|m|>^2), the finite-lattice estimator
    double signed_susceptibility = 0; // beta N (<m^2> - <m>^2) = (1 / beta) d^2 log Z / dh^2 / N
    double binder = 0;                // 1 - <m^4> / (3 <m^2>^2)
};

// The (B, M) of a state given as bits (bit i set: s_i = +1).
inline std::pair<int64_t, int64_t> bonds_and_magnetisation(
    const std::vector<std::pair<int64_t, int64_t>>& bonds, int64_t sites, uint64_t state)
{
    int64_t b = 0;
    for (const auto& [i, j] : bonds)
        b += (((state >> i) ^ (state >> j)) & 1u) ? -1 : 1;
    const int64_t up = __builtin_popcountll(state);
    return { b, 2 * up - sites };
}

// g(B, M): how many of the 2^N states have B and M. N <= max_sites.
class DensityOfStates
{
public:
    static constexpr int64_t max_sites = 24;

    explicit DensityOfStates(const Lattice& lattice) : lattice_(lattice)
    {
        const int64_t n = lattice.sites();
        if (n < 1 || n > max_sites)
            throw std::invalid_argument("ising exact: " + std::to_string(n) +
                                        " spins; enumeration takes 1 to " + std::to_string(max_sites));
        const auto bonds = lattice.bonds();
        std::map<std::pair<int64_t, int64_t>, double> counts;
        for (uint64_t k = 0; k < (uint64_t{ 1 } << n); ++k)
            counts[bonds_and_magnetisation(bonds, n, k)] += 1;
        levels_.assign(counts.begin(), counts.end());
    }

    const Lattice& lattice() const { return lattice_; }
    // ((B, M), g) in increasing (B, M).
    const std::vector<std::pair<std::pair<int64_t, int64_t>, double>>& levels() const { return levels_; }

    // -beta H of each level, and its largest value (the log-sum-exp shift).
    Observables at(double J, double h, double beta) const
    {
        const double n = static_cast<double>(lattice_.sites());
        std::vector<double> minus_beta_h;
        double top = -INFINITY;
        for (const auto& [bm, g] : levels_)
        {
            minus_beta_h.push_back(beta * (J * bm.first + h * bm.second));
            top = std::max(top, minus_beta_h.back());
        }
        double z = 0, e = 0, e2 = 0, m = 0, am = 0, m2 = 0, m4 = 0;
        for (size_t k = 0; k < levels_.size(); ++k)
        {
            const auto& [bm, g] = levels_[k];
            const double w = g * std::exp(minus_beta_h[k] - top);
            const double energy = -J * bm.first - h * bm.second;
            const double mag = bm.second / n;
            z += w;
            e += w * energy;
            e2 += w * energy * energy;
            m += w * mag;
            am += w * std::abs(mag);
            m2 += w * mag * mag;
            m4 += w * mag * mag * mag * mag;
        }
        Observables o;
        o.log_z = top + std::log(z);
        e /= z, e2 /= z, m /= z, am /= z, m2 /= z, m4 /= z;
        o.energy = e / n;
        o.specific_heat = beta * beta * (e2 - e * e) / n;
        o.magnetisation = m;
        o.abs_magnetisation = am;
        o.m2 = m2;
        o.m4 = m4;
        o.susceptibility = beta * n * (m2 - am * am);
        o.signed_susceptibility = beta * n * (m2 - m * m);
        o.binder = 1 - m4 / (3 * m2 * m2);
        return o;
    }

    // The distribution of the energy E = -J B - h M at (J, h, beta): (E, probability) in increasing E,
    // levels of equal energy merged (with h = 0, every M of a B).
    std::vector<std::pair<double, double>> energy_distribution(double J, double h, double beta) const
    {
        std::map<double, double> p;
        double top = -INFINITY;
        for (const auto& [bm, g] : levels_)
            top = std::max(top, beta * (J * bm.first + h * bm.second));
        double z = 0;
        for (const auto& [bm, g] : levels_)
        {
            const double w = g * std::exp(beta * (J * bm.first + h * bm.second) - top);
            p[-J * bm.first - h * bm.second] += w;
            z += w;
        }
        std::vector<std::pair<double, double>> out;
        for (const auto& [energy, w] : p)
            out.emplace_back(energy, w / z);
        return out;
    }

private:
    Lattice lattice_;
    std::vector<std::pair<std::pair<int64_t, int64_t>, double>> levels_;
};

// Independent exact samples of p(s) = exp(-beta H(s)) / Z: the cumulative distribution over all 2^N
// states, searched with one uniform number per sample. N <= max_sites (2^20 doubles, 8 MiB).
class ExactSampler
{
public:
    static constexpr int64_t max_sites = 20;

    ExactSampler(const Lattice& lattice, double J, double h, double beta) : sites_(lattice.sites())
    {
        if (sites_ < 1 || sites_ > max_sites)
            throw std::invalid_argument("ising exact sampler: " + std::to_string(sites_) +
                                        " spins; it takes 1 to " + std::to_string(max_sites));
        const auto bonds = lattice.bonds();
        const uint64_t states = uint64_t{ 1 } << sites_;
        cumulative_.resize(states);
        double top = -INFINITY;
        for (uint64_t k = 0; k < states; ++k)
        {
            const auto [b, m] = bonds_and_magnetisation(bonds, sites_, k);
            cumulative_[k] = beta * (J * b + h * m);
            top = std::max(top, cumulative_[k]);
        }
        double sum = 0;
        for (double& c : cumulative_)
            c = (sum += std::exp(c - top));
        for (double& c : cumulative_)
            c /= sum;
    }

    int64_t sites() const { return sites_; }

    // One state from rng, as bits (bit i set: s_i = +1).
    uint64_t draw_state(Rng& rng) const
    {
        const double u = rng.uniform_double();
        const auto found = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
        return static_cast<uint64_t>(
            std::min<ptrdiff_t>(found - cumulative_.begin(), static_cast<ptrdiff_t>(cumulative_.size()) - 1));
    }
    // One state from rng into out[0 .. N): spins -1 / +1, or 0 / 1 with binary.
    void draw(Rng& rng, float* out, bool binary = false) const
    {
        const uint64_t k = draw_state(rng);
        for (int64_t i = 0; i < sites_; ++i)
            out[i] = ((k >> i) & 1u) ? 1.0f : (binary ? 0.0f : -1.0f);
    }

private:
    int64_t sites_;
    std::vector<double> cumulative_;
};

} // namespace ansatz::ising

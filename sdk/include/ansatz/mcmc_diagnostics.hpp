// ansatz/mcmc_diagnostics.hpp -- how far to trust the numbers of a Markov chain: the integrated
// autocorrelation time, the effective sample size, split-R-hat across chains, and the error bar of a
// mean by binning.
//
// WHAT THIS FILE PROVIDES
//     Functions on traces: `chains` series of `draws` values each, a scalar recorded along every
//     chain (the free energy of its state after each recorded sweep, a magnetisation, ...). The host's
//     sampling stages report them for every trace they record; a sampler or an evaluator may call
//     them as well. Plain C++ on doubles: no xtensor, no BLAS, so any file may include it. The bodies
//     are in ansatz/mcmc_diagnostics_impl.hpp.
//
// WHICH RECIPE EACH ONE FOLLOWS
//     - integrated_autocorrelation_time: Sokal's automatic windowing (A. D. Sokal, "Monte Carlo
//       methods in statistical mechanics", 1996 lecture notes, section 3; Madras & Sokal 1988) on the
//       autocorrelation function averaged over the chains, as emcee's `integrated_time` does
//       (Foreman-Mackey's "Autocorrelation analysis & convergence" note, emcee 3): each chain is
//       centred on its own mean, its normalised autocorrelation rho(t) is computed by FFT, the chains'
//       rho are averaged, tau(M) = 1 + 2 sum_{t=1..M} rho(t), and the window is the smallest M with
//       M >= c tau(M) (c = 5). NetKet's FFT estimator (`netket.stats`, NETKET_EXPERIMENTAL_FFT_
//       AUTOCORRELATION) averages per-chain taus instead; with chains of equal length the two agree
//       to within their noise. For an AR(1) process x_t = rho x_{t-1} + noise, tau = (1 + rho)/(1 - rho).
//     - effective_sample_size: chains * draws / tau, with the tau above (emcee, NetKet, Sokal).
//     - ess_bulk: the bulk effective sample size of Vehtari, Gelman, Simpson, Carpenter & Bürkner
//       (2021, "Rank-normalization, folding, and localization: an improved R-hat", Bayesian Analysis
//       16, 667), as ArviZ's `ess(method="bulk")` and Stan compute it: split chains, rank-normalised
//       draws, Geyer's initial monotone sequence, and the between-chain variance in the denominator,
//       so chains that disagree lower it.
//     - split_rhat: the Gelman-Rubin potential scale reduction on split chains (each chain cut in two
//       halves, the middle draw dropped when the count is odd), as ArviZ's `rhat(method="split")`:
//       sqrt(((n - 1)/n W + B/n) / W) with W the mean within-half variance, B/n the variance of the
//       half means. NetKet's `R_hat` is the same quantity with biased variances.
//     - rank_normalized_rhat: Vehtari et al. (2021), ArviZ's default `rhat(method="rank")`: the
//       larger of split_rhat on the rank-normalised draws (bulk) and on the rank-normalised
//       |draw - median| (tails). Ranks are pooled over all chains (ties get their average rank) and
//       mapped to normal scores z = Phi^-1((r - 3/8) / (S + 1/4)) (Blom 1958). Unlike ArviZ, one
//       chain is accepted: its two halves are then compared (a drift within the chain still shows).
//       Values above 1.01 (Vehtari et al.), or the older 1.1, say the chains have not mixed.
//     - binning: the blocking analysis of Flyvbjerg & Petersen (J. Chem. Phys. 91, 461, 1989), as
//       pyblock's `reblock`: neighbouring draws of each chain are averaged pairwise, level after level
//       (a block never spans two chains; an odd last draw is dropped), and the standard error of the
//       mean is computed from the block means of every chain at each level. The plateau is the
//       smallest block size B with B^3 > 2 N (SE(B) / SE(1))^4, N = chains * draws (Wolff 2004 eq. 47,
//       Lee, Conduit, Nemec, Lopez Rios & Drummond, Phys. Rev. E 83, 066706 (2011) eq. 14; pyblock's
//       `find_optimal_block`). When no level meets it the data are too short for their correlation:
//       `converged` is false and the error is the largest SE among the levels with at least 8 blocks
//       (never smaller than the truth's lower levels suggest). For an AR(1) chain, the plateau is
//       sd * sqrt(tau / N).
//
// CONVENTIONS
//     - A trace set is row-major: draw t of chain c is data[c * draws + t]. Chains have equal length.
//     - Sums are in double. A NaN or infinity in a trace makes every result NaN.
//     - Too few draws gives NaN where the quantity is undefined: tau and the ESS need draws >= 2,
//       R-hat needs draws >= 4, binning needs chains * draws >= 2.
//     - A constant trace has nothing to correlate: tau = 1, the ESS is chains * draws, the binned error
//       is 0, and R-hat is 1 when every chain is the same constant and +inf when chains are constant at
//       different values (they cannot mix).
//     - Costs: the autocorrelation is O(draws log draws) per chain (a radix-2 FFT padded to at least
//       2 draws), the ranks O(S log S) for S = chains * draws, binning O(S).
#pragma once

#include <cstdint>
#include <vector>

namespace ansatz::mcmc
{

// `chains` series of `draws` values, row-major; the memory belongs to the caller.
struct Traces
{
    const double* data = nullptr;
    int64_t chains = 0;
    int64_t draws = 0;

    double at(int64_t chain, int64_t draw) const { return data[chain * draws + draw]; }
    int64_t size() const { return chains * draws; }
};

// The normalised autocorrelation function of one series, by FFT.
//   requires: x holds n >= 0 values.
//   ensures:  returns rho[0..n), rho[t] = C(t) / C(0) with C(t) = (1/n) sum_{s<n-t} (x_s - m)(x_{s+t} - m)
//             (the biased estimator, as emcee and ArviZ use); rho[0] = 1. A constant series gives
//             rho = {1, 0, 0, ...}; an empty one an empty vector.
inline std::vector<double> autocorrelation(const double* x, int64_t n);

// What integrated_autocorrelation_time found.
struct AutocorrelationTime
{
    double tau = 0;     // 1 + 2 sum_{t=1..window} rho(t), in draws (below 1 for anticorrelated draws)
    int64_t window = 0; // M: the smallest M with M >= c * tau(M) (draws - 1 when none is)
    // False when the window never closed (M = draws - 1) or the chains are shorter than 50 tau, the
    // length emcee asks for a trustworthy estimate.
    bool reliable = false;
};

// Sokal's automatic windowing on the chains' averaged autocorrelation function (emcee's recipe).
//   requires: t.chains >= 1, t.draws >= 2 (else tau is NaN), c > 0.
inline AutocorrelationTime integrated_autocorrelation_time(const Traces& t, double c = 5.0);

// chains * draws / tau.
inline double effective_sample_size(const Traces& t, double c = 5.0);

// Vehtari et al. (2021) bulk ESS: rank-normalised split chains, Geyer's initial monotone sequence.
//   requires: t.draws >= 4 (else NaN).
inline double ess_bulk(const Traces& t);

// Split-R-hat (Gelman-Rubin on the chains' halves), on the values as they are.
//   requires: t.chains >= 1, t.draws >= 4 (else NaN).
inline double split_rhat(const Traces& t);

// Rank-normalised split-R-hat, max(bulk, tail) (Vehtari et al. 2021).
//   requires: t.chains >= 1, t.draws >= 4 (else NaN).
inline double rank_normalized_rhat(const Traces& t);

// One level of a blocking analysis.
struct BinningLevel
{
    int64_t block_size = 0;    // draws averaged into one block
    int64_t blocks = 0;        // blocks over all chains
    double standard_error = 0; // sd(block means) / sqrt(blocks)
    double error_of_error = 0; // standard_error / sqrt(2 (blocks - 1)), for Gaussian block means
};

struct Binning
{
    double mean = 0;           // of every draw
    double standard_error = 0; // at the plateau
    int64_t block_size = 0;    // of the plateau's level
    bool converged = false;    // a level met the plateau criterion
    std::vector<BinningLevel> levels;
};

// The error of the mean of all draws by binning (Flyvbjerg & Petersen; plateau by Lee et al.).
//   requires: t.chains * t.draws >= 2 (else the mean and error are NaN).
inline Binning binning(const Traces& t);

// Everything a sampling stage reports about one trace set.
struct Summary
{
    double mean = 0;
    double standard_error = 0; // binning's
    bool error_converged = false;
    int64_t block_size = 0;
    double tau = 0;
    bool tau_reliable = false;
    double ess = 0;  // chains * draws / tau
    double rhat = 0; // rank-normalised split-R-hat
};

inline Summary summarize(const Traces& t, double c = 5.0);

// Phi^-1(p), the standard normal quantile, to about 1e-15 relative (Acklam's rational approximation
// refined by one Halley step on erfc). p outside (0, 1) gives -inf at 0, +inf at 1, NaN otherwise.
inline double normal_quantile(double p);

// The normal scores of the pooled values: z_i = Phi^-1((r_i - 3/8) / (S + 1/4)), r_i the rank of x_i
// among all S values (1-based, ties averaged): what ArviZ's `_z_scale` returns.
inline std::vector<double> rank_normalize(const double* x, int64_t n);

} // namespace ansatz::mcmc

#include "ansatz/mcmc_diagnostics_impl.hpp"

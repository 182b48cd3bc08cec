// traces.hpp -- what a sampling stage records along its chains, and the diagnostics it reports on them.
//
// After each recorded sweep, one value per chain of every trace: the model's free energy F(v) of the
// chain's state (when the model has free_energy; at beta = 1 whatever the chain's temperature: an
// observable of the state) and the mean of the state's variables ("state_mean": the magnetisation per
// site of spins, the density of ones of binary units). The diagnostics of each trace
// (ansatz/mcmc_diagnostics.hpp) become metrics.csv columns:
//     <trace>_mean, <trace>_mean_stderr   the mean over every recorded draw of every chain, and its
//                                         error by binning (Flyvbjerg-Petersen plateau)
//     <trace>_tau                         integrated autocorrelation time, in recorded draws (Sokal)
//     <trace>_ess                         effective sample size: draws * chains / tau
//     <trace>_rhat                        rank-normalised split-R-hat across the chains (Vehtari 2021)
#pragma once

#include "ansatz/mcmc_diagnostics.hpp"
#include "ansatz/refs.hpp"

#include <string>
#include <utility>
#include <vector>

namespace ansatz::engine
{

class ChainTraces
{
public:
    // Traces of `chains` chains of a model (the free energy only if it has free_energy).
    ChainTraces(const ModelRef& model, int64_t chains, int64_t dim);

    // Appends one draw per chain: the traces of the rows of `states` {chains, dim}.
    void record(const ansatz_tensor& states);
    int64_t draws() const { return draws_; }

    // Every trace's diagnostics as metrics.csv columns (see above); empty with fewer than 4 draws.
    // Computed once, after the last record().
    std::vector<std::pair<std::string, double>> metrics() const;
    // One line for the console: "free_energy = -61.2 +- 0.3 (tau 4.1, ESS 980, R-hat 1.004); ...".
    std::string summary() const;

private:
    struct Trace
    {
        std::string name;
        std::vector<double> values; // draw-major while recording: values[draw * chains + chain]
    };
    // The trace chain-major, as the diagnostics take it.
    std::vector<double> by_chain(const Trace& t) const;
    // The diagnostics of every trace (computed at the first call).
    const std::vector<mcmc::Summary>& summaries() const;

    ModelRef model_;
    int64_t chains_, dim_;
    int64_t draws_ = 0;
    bool free_energy_;
    std::vector<Trace> traces_;
    std::vector<float> energies_;
    mutable std::vector<mcmc::Summary> summaries_;
};

} // namespace ansatz::engine

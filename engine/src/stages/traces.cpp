#include "stages/traces.hpp"

#include "ansatz/tensor.hpp"

#include <cstdio>

namespace ansatz::engine
{

ChainTraces::ChainTraces(const ModelRef& model, int64_t chains, int64_t dim)
    : model_(model), chains_(chains), dim_(dim), free_energy_(model.has(ANSATZ_FN_FREE_ENERGY))
{
    if (free_energy_)
    {
        traces_.push_back({ "free_energy", {} });
        energies_.resize(static_cast<size_t>(chains));
    }
    traces_.push_back({ "state_mean", {} });
}

void ChainTraces::record(const ansatz_tensor& states)
{
    summaries_.clear();
    size_t k = 0;
    if (free_energy_)
    {
        ansatz_tensor out = make_view(energies_.data(), { chains_ });
        model_.free_energy(states, out);
        for (float e : energies_)
            traces_[k].values.push_back(e);
        ++k;
    }
    const float* v = static_cast<const float*>(states.data);
    for (int64_t c = 0; c < chains_; ++c)
    {
        double sum = 0;
        for (int64_t j = 0; j < dim_; ++j)
            sum += v[c * dim_ + j];
        traces_[k].values.push_back(sum / static_cast<double>(dim_));
    }
    ++draws_;
}

std::vector<double> ChainTraces::by_chain(const Trace& t) const
{
    std::vector<double> out(t.values.size());
    for (int64_t d = 0; d < draws_; ++d)
        for (int64_t c = 0; c < chains_; ++c)
            out[static_cast<size_t>(c * draws_ + d)] = t.values[static_cast<size_t>(d * chains_ + c)];
    return out;
}

const std::vector<mcmc::Summary>& ChainTraces::summaries() const
{
    if (summaries_.empty())
        for (const Trace& t : traces_)
        {
            const std::vector<double> x = by_chain(t);
            summaries_.push_back(mcmc::summarize({ x.data(), chains_, draws_ }));
        }
    return summaries_;
}

std::vector<std::pair<std::string, double>> ChainTraces::metrics() const
{
    std::vector<std::pair<std::string, double>> out;
    if (draws_ < 4)
        return out;
    for (size_t k = 0; k < traces_.size(); ++k)
    {
        const Trace& t = traces_[k];
        const mcmc::Summary& s = summaries()[k];
        out.emplace_back(t.name + "_mean", s.mean);
        out.emplace_back(t.name + "_mean_stderr", s.standard_error);
        out.emplace_back(t.name + "_tau", s.tau);
        out.emplace_back(t.name + "_ess", s.ess);
        out.emplace_back(t.name + "_rhat", s.rhat);
    }
    return out;
}

std::string ChainTraces::summary() const
{
    if (draws_ < 4)
        return "too few recorded draws for diagnostics (" + std::to_string(draws_) + ", at least 4)";
    std::string out;
    for (size_t k = 0; k < traces_.size(); ++k)
    {
        const Trace& t = traces_[k];
        const mcmc::Summary& s = summaries()[k];
        char line[256];
        std::snprintf(line, sizeof line, "%s = %.6g +- %.2g%s (tau %.3g%s, ESS %.0f, R-hat %.3f%s)",
                      t.name.c_str(), s.mean, s.standard_error, s.error_converged ? "" : " (no plateau)",
                      s.tau, s.tau_reliable ? "" : " (chains < 50 tau)", s.ess, s.rhat,
                      s.rhat > 1.01 ? ": not mixed" : "");
        out += (out.empty() ? "" : "; ") + std::string(line);
    }
    return out;
}

} // namespace ansatz::engine

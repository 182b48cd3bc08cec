// How well the model's energy tells the data from noise: the area under the ROC curve of the score
// "energy" for the two classes "noise" (positive) and "data", by the Mann-Whitney statistic
//
//     auroc = P(F(noise) > F(data)) + P(F(noise) = F(data)) / 2
//           = (1 / (N M)) sum_{n, m} ([F(u_m) > F(v_n)] + [F(u_m) = F(v_n)] / 2),
//
// v_1..v_N the evaluated data, u_1..u_M noise drawn from the model's random_state (for a neural energy with
// bounds: uniform in its box, the "uniform-noise images" of Du & Mordatch 2019's out-of-distribution tests).
// 1 means every noise sample has a higher energy than every data sample; 0.5 is chance. Its standard
// error is Hanley & McNeil's (1982):
//
//     se^2 = (A (1 - A) + (M - 1) (Q1 - A^2) + (N - 1) (Q2 - A^2)) / (N M),  Q1 = A / (2 - A),
//     Q2 = 2 A^2 / (1 + A).
//
// The ranks come from one sort of all N + M energies (ties get their mean rank): O((N + M) log(N + M)).
#include <ansatz/plugin.hpp>
#include <ansatz/statistics.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace
{

class EnergyAuroc final : public ansatz::Evaluator
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_FREE_ENERGY;

    static void describe(ansatz::Schema& s)
    {
        s.integer("noise",
                  "M: noise samples drawn from the model's random_state; 0 = as many as the data's rows")
            .default_value(0)
            .min(0)
            .max(int64_t{ 1 } << 24);
        s.integer("batch", "rows per call of the model's free_energy (memory, not the result)")
            .default_value(1024)
            .min(1);
    }

    EnergyAuroc(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), noise_(c.integer("noise")), batch_(c.integer("batch")), host_(host)
    {
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has_energy())
            throw ansatz::InputError("it needs a model with a free energy (function 'free_energy')");
        model_ = model;
    }

    void evaluate(const ansatz_tensor& data, ansatz::Rng& rng, ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("evaluator '" + name_ + "' is used before bind()");
        ansatz::require_matrix(data, -1, -1, "energy_auroc evaluate: data");
        const int64_t n = data.shape[0];
        const int64_t d = data.shape[1];
        if (n == 0)
            throw ansatz::InputError("the evaluated data has no rows");
        const int64_t m = noise_ > 0 ? noise_ : n;
        host_.require_memory(4.0 * static_cast<double>(std::min(m, batch_)) * static_cast<double>(d) +
                                 16.0 * static_cast<double>(n + m),
                             "noise: " + std::to_string(m) + " noise samples of " + std::to_string(d) +
                                 " values");

        std::vector<float> energies(static_cast<size_t>(n + m));
        energies_of(ansatz::f32(data), n, d, energies.data());
        // The noise in batches, sample j from stream j (split from the call's stream): the same samples
        // whatever `batch` is.
        ansatz::Streams streams = streams_.split_from(rng, m);
        std::vector<float> noise;
        for (int64_t first = 0; first < m; first += batch_)
        {
            const int64_t count = std::min(batch_, m - first);
            noise.resize(static_cast<size_t>(count * d));
            ansatz_tensor rows = ansatz::make_view(noise.data(), { count, d });
            model_.random_state(rows,
                                streams.subspan(static_cast<size_t>(first), static_cast<size_t>(count)));
            energies_of(noise.data(), count, d, energies.data() + n + first);
        }

        const double a = auroc(energies, n);
        const double nm = static_cast<double>(n) * static_cast<double>(m);
        const double q1 = a / (2 - a), q2 = 2 * a * a / (1 + a);
        const double var = (a * (1 - a) + (static_cast<double>(m) - 1) * (q1 - a * a) +
                            (static_cast<double>(n) - 1) * (q2 - a * a)) /
                           nm;
        ansatz::MeanAndError data_mean, noise_mean;
        for (int64_t i = 0; i < n + m; ++i)
            (i < n ? data_mean : noise_mean).add(energies[static_cast<size_t>(i)]);
        out.add("auroc", a);
        out.add("auroc_stderr", std::sqrt(std::max(var, 0.0)));
        out.add("free_energy_data", data_mean.mean());
        out.add("free_energy_noise", noise_mean.mean());
    }

    // The Mann-Whitney AUROC of energies[n..) (noise, positive: higher energy) against energies[0..n) (data),
    // ties counted one half.
    static double auroc(const std::vector<float>& energies, int64_t n)
    {
        const int64_t total = static_cast<int64_t>(energies.size());
        const int64_t m = total - n;
        std::vector<int64_t> order(static_cast<size_t>(total));
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
            return energies[static_cast<size_t>(x)] < energies[static_cast<size_t>(y)];
        });
        // Sum of the noise samples' ranks (1-based, ties at their mean rank).
        double noise_ranks = 0;
        for (int64_t i = 0; i < total;)
        {
            int64_t j = i;
            while (j < total && energies[static_cast<size_t>(order[static_cast<size_t>(j)])] ==
                                    energies[static_cast<size_t>(order[static_cast<size_t>(i)])])
                ++j;
            const double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
            for (int64_t k = i; k < j; ++k)
                if (order[static_cast<size_t>(k)] >= n)
                    noise_ranks += mean_rank;
            i = j;
        }
        const double u = noise_ranks - static_cast<double>(m) * (static_cast<double>(m) + 1) / 2;
        return u / (static_cast<double>(n) * static_cast<double>(m));
    }

private:
    void energies_of(const float* rows, int64_t count, int64_t d, float* out)
    {
        for (int64_t first = 0; first < count; first += batch_)
        {
            if (host_.cancelled())
                throw ansatz::Error("evaluator '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
            const int64_t c = std::min(batch_, count - first);
            const ansatz_tensor v = ansatz::make_view(const_cast<float*>(rows) + first * d, { c, d });
            ansatz_tensor values = ansatz::make_view(out + first, { c });
            model_.free_energy(v, values);
            for (int64_t r = 0; r < c; ++r)
                if (!std::isfinite(out[first + r]))
                    throw ansatz::Error("evaluator '" + name_ + "': the model's energy of a sample is " +
                                        std::to_string(out[first + r]) + ", not a finite number");
        }
    }

    std::string name_;
    int64_t noise_;
    int64_t batch_;
    ansatz::Host host_;
    ansatz::StreamArray streams_;
};

} // namespace

ANSATZ_PLUGIN("energy_auroc", "0.1.0", "MIT",
              ansatz::evaluator<EnergyAuroc>(
                  "energy_auroc", "area under the ROC curve of the energy, data against noise from "
                                  "the model's random_state (Mann-Whitney), with its standard error"))

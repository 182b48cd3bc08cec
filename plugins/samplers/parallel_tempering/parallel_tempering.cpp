// Parallel tempering (replica exchange; Swendsen & Wang 1986, Geyer 1991, Hukushima & Nemoto 1996).
//
// Each chain n has K replicas on a ladder of inverse temperatures 1 = beta_0 > beta_1 > ... > beta_{K-1}
// of the model's tempered family (abi.h): replica k samples p_k(x) ~ exp(-F_beta_k(x)). One sweep:
//   1. the inner sampler advances every replica of every chain one sweep at its own beta, in one call of
//      its advance_tempered (rows n K + k, beta per row);
//   2. neighbouring replicas (k, k + 1), k even on even sweeps and odd on odd ones, exchange their states
//      with probability min(1, exp(Delta)),
//          Delta = F_k(x_k) + F_{k+1}(x_{k+1}) - F_k(x_{k+1}) - F_{k+1}(x_k),   F_k = F_beta_k,
//      computed by the model's tempered_free_energy (two calls of N K rows per sweep).
// The chains passed to advance are the beta = 1 replicas, updated in place: the output. The other replicas
// and their random streams live in this sampler's state (checkpointed, so a resume is bit-exact).
#include <ansatz/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace
{

constexpr int64_t kMostReplicas = 32; // (K - 1) swap metrics + the inner sampler's within ANSATZ_MAX_METRICS

std::string number(double x)
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%g", x);
    return buffer;
}

class ParallelTempering final : public ansatz::Sampler
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_TEMPERED;

    static void describe(ansatz::Schema& s)
    {
        s.component("inner", ANSATZ_KIND_SAMPLER,
                    "the sampler that advances every replica at its own temperature (its advance_tempered)");
        s.choice("ladder", "geometric|linear|list",
                 "the inverse temperatures: geometric or linear from 1 down to beta_min in `replicas` steps, "
                 "or the list `betas`")
            .default_value("geometric");
        s.integer("replicas", "geometric, linear: the number of inverse temperatures, beta = 1 included")
            .default_value(8)
            .min(2)
            .max(static_cast<double>(kMostReplicas));
        s.real("beta_min", "geometric, linear: the smallest inverse temperature")
            .default_value(0.1)
            .min(0, true)
            .max(1, true)
            .double_precision();
        s.reals("betas", "list: the inverse temperatures, increasing, in (0, 1]; 1 is added when absent")
            .min(0, true)
            .max(1)
            .length(1, kMostReplicas)
            .optional();
        s.integer("steps",
                  "sweeps (inner sweep of every replica, then swaps) per advance when the caller asks "
                  "for the default")
            .default_value(1)
            .min(1);
    }

    ParallelTempering(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), inner_(ansatz::as_sampler(c.component("inner"))),
          steps_(c.integer("steps")), host_(host)
    {
        const std::string ladder = c.string("ladder");
        if (ladder == "list")
        {
            if (!c.has("betas"))
                throw ansatz::InputError("ladder: list needs the key betas, the inverse temperatures");
            std::vector<double> given = c.reals("betas");
            for (size_t k = 1; k < given.size(); ++k)
                if (!(given[k] > given[k - 1]))
                    throw ansatz::InputError("betas must increase: item " + std::to_string(k + 1) + " (" +
                                             number(given[k]) + ") is not above item " + std::to_string(k) +
                                             " (" + number(given[k - 1]) + ")");
            if (given.back() != 1.0)
            {
                if (given.size() == static_cast<size_t>(kMostReplicas))
                    throw ansatz::InputError(
                        "betas has " + std::to_string(kMostReplicas) +
                        " items without 1; with beta = 1 added the ladder would have more "
                        "than " +
                        std::to_string(kMostReplicas));
                given.push_back(1.0);
            }
            if (given.size() < 2)
                throw ansatz::InputError("betas: [1] is a ladder of one replica; parallel tempering needs at "
                                         "least one inverse temperature below 1");
            betas_.assign(given.rbegin(), given.rend());
        }
        else
        {
            if (c.has("betas"))
                throw ansatz::InputError("betas is given, but ladder is " + ladder +
                                         "; give ladder: list to use it");
            const int64_t k = c.integer("replicas");
            const double low = c.real("beta_min");
            for (int64_t i = 0; i < k; ++i)
            {
                const double t = static_cast<double>(i) / static_cast<double>(k - 1);
                betas_.push_back(ladder == "linear" ? 1 - t * (1 - low) : std::pow(low, t));
            }
            betas_.back() = low; // exact, not pow's rounding
        }
        std::string list;
        for (double b : betas_)
            list += (list.empty() ? "" : ", ") + number(b);
        host_.info("sampler '" + name_ + "': inverse temperatures " + list);
        swaps_.assign(2 * (betas_.size() - 1), 0);
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has(ANSATZ_FN_TEMPERED))
            throw ansatz::InputError("it needs a model with the tempered functions (tempered_free_energy, "
                                     "base_log_partition)");
        if (!inner_.can_temper())
            throw ansatz::InputError("its inner sampler has no advance_tempered (ABI 2.2), so it cannot run "
                                     "replicas at other temperatures");
        model_ = model;
        inner_.bind(model);
        // The inner sampler says now whether it can temper this model (a call on no rows), when the
        // model knows its sample size; otherwise its first advance_tempered will.
        const ansatz_sample_info info = model.sample_info();
        if (info.rank >= 0)
        {
            int64_t d = 1;
            for (int32_t k = 0; k < info.rank; ++k)
                d *= info.shape[k];
            inner_.require_tempering(d);
        }
    }

    void advance(ansatz_tensor& chains, int32_t steps, ansatz::Streams rngs) override
    {
        if (!model_.valid())
            throw ansatz::Error("sampler '" + name_ + "' is advanced before bind()");
        if (steps < 0)
            throw ansatz::Error("sampler '" + name_ + "': advance() got a negative step count");
        ansatz::require_matrix(chains, -1, -1, "parallel_tempering advance: chains");
        const int64_t n = chains.shape[0], d = chains.shape[1];
        const int64_t k = replicas();
        prepare(n, d, rngs);

        // The ensemble: row n K + j is replica j of chain n; replica 0 the caller's chain.
        const int64_t rows = n * k;
        ensemble_.resize(static_cast<size_t>(rows * d));
        streams_.resize(static_cast<size_t>(rows));
        beta_.resize(static_cast<size_t>(rows));
        cross_.resize(static_cast<size_t>(rows));
        own_f_.resize(static_cast<size_t>(rows));
        cross_f_.resize(static_cast<size_t>(rows));
        const float* c = ansatz::f32(chains);
        for (int64_t r = 0; r < n; ++r)
        {
            std::copy_n(c + r * d, d, row(r * k));
            std::copy_n(hot_.data() + r * (k - 1) * d, (k - 1) * d, row(r * k + 1));
            streams_[static_cast<size_t>(r * k)] = rngs[static_cast<size_t>(r)];
            for (int64_t j = 1; j < k; ++j)
            {
                streams_[static_cast<size_t>(r * k + j)] =
                    hot_rngs_[static_cast<size_t>(r * (k - 1) + j - 1)];
                beta_[static_cast<size_t>(r * k + j)] = betas_[static_cast<size_t>(j)];
            }
            beta_[static_cast<size_t>(r * k)] = betas_[0];
        }
        ansatz_tensor all = ansatz::make_view(ensemble_.data(), { rows, d });
        const ansatz::Streams all_streams(streams_);
        ansatz_tensor own = ansatz::make_view(own_f_.data(), { rows });
        ansatz_tensor cross = ansatz::make_view(cross_f_.data(), { rows });

        const int64_t sweeps = steps == 0 ? steps_ : steps;
        for (int64_t s = 0; s < sweeps; ++s)
        {
            if (host_.cancelled())
                throw ansatz::Error("sampler '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
            inner_.advance_tempered(all, 1, beta_.data(), all_streams);
            // Pairs (j, j + 1) with j of this sweep's parity; cross_[row] is the partner's beta.
            const int64_t parity = sweeps_ % 2;
            cross_ = beta_;
            for (int64_t r = 0; r < n; ++r)
                for (int64_t j = parity; j + 1 < k; j += 2)
                    std::swap(cross_[static_cast<size_t>(r * k + j)],
                              cross_[static_cast<size_t>(r * k + j + 1)]);
            model_.tempered_free_energy(all, beta_.data(), nullptr, own);
            model_.tempered_free_energy(all, cross_.data(), nullptr, cross);
            for (int64_t r = 0; r < n; ++r)
            {
                ansatz::Rng& rng = all_streams[static_cast<size_t>(r * k)]; // chain r's own stream
                for (int64_t j = parity; j + 1 < k; j += 2)
                {
                    const size_t a = static_cast<size_t>(r * k + j), b = a + 1;
                    const double delta = own_f_[a] + own_f_[b] - cross_f_[a] - cross_f_[b];
                    const double u = rng.uniform_double();
                    ++swaps_[static_cast<size_t>(2 * j)];
                    if (delta >= 0 || u < std::exp(delta))
                    {
                        std::swap_ranges(row(r * k + j), row(r * k + j) + d, row(r * k + j + 1));
                        ++swaps_[static_cast<size_t>(2 * j + 1)];
                    }
                }
            }
            ++sweeps_;
        }

        float* out = ansatz::f32(chains);
        for (int64_t r = 0; r < n; ++r)
        {
            std::copy_n(row(r * k), d, out + r * d);
            std::copy_n(row(r * k + 1), (k - 1) * d, hot_.data() + r * (k - 1) * d);
            rngs[static_cast<size_t>(r)] = streams_[static_cast<size_t>(r * k)];
            for (int64_t j = 1; j < k; ++j)
                hot_rngs_[static_cast<size_t>(r * (k - 1) + j - 1)] =
                    streams_[static_cast<size_t>(r * k + j)];
        }
    }

    // swap_acceptance_<j>_<j+1>: accepted / attempted exchanges between replicas j and j + 1 (beta_j >
    // beta_{j+1}) since the last call (0 when none was attempted), their mean swap_acceptance, and the
    // inner sampler's metrics as inner.<name>.
    void metrics(ansatz::Metrics& out)
    {
        double sum = 0;
        for (int64_t j = 0; j + 1 < replicas(); ++j)
        {
            const int64_t tried = swaps_[static_cast<size_t>(2 * j)],
                          taken = swaps_[static_cast<size_t>(2 * j + 1)];
            const double rate = tried ? static_cast<double>(taken) / static_cast<double>(tried) : 0.0;
            out.add("swap_acceptance_" + std::to_string(j) + "_" + std::to_string(j + 1), rate);
            sum += rate;
        }
        out.add("swap_acceptance", sum / static_cast<double>(replicas() - 1));
        std::fill(swaps_.begin(), swaps_.end(), 0);
        // The inner sampler reports into a sink that forwards under "inner.": no exception may cross its
        // C frames, so a refused name comes back as the sink's -1.
        ansatz_metrics sink{};
        sink.context = &out;
        sink.add = [](void* context, const char* name, double value) -> int32_t {
            try
            {
                static_cast<ansatz::Metrics*>(context)->add("inner." + std::string(name), value);
                return 0;
            }
            catch (...)
            {
                return -1;
            }
        };
        inner_.metrics(sink);
    }

    // replicas {N, K-1, D} and their streams {N, K-1, 4} (once the chains are known), the swap counters
    // {K-1, 2} and the sweep count (the parity of the next sweep's pairs).
    std::vector<ansatz_named_tensor> state()
    {
        const int64_t k = replicas();
        std::vector<ansatz_named_tensor> out = {
            { "swaps", ansatz::make_view(swaps_.data(), { k - 1, 2 }) },
            { "sweeps", ansatz::make_view(&sweeps_, { 1 }) },
        };
        if (chains_ > 0)
        {
            out.push_back({ "replicas", ansatz::make_view(hot_.data(), { chains_, k - 1, dim_ }) });
            out.push_back({ "replica_rngs", ansatz::make_view(reinterpret_cast<uint64_t*>(hot_rngs_.data()),
                                                              { chains_, k - 1, 4 }) });
        }
        return out;
    }
    void set_state(const ansatz::StateIn& in)
    {
        in.require_only({ "swaps", "sweeps", "replicas", "replica_rngs" });
        const int64_t k = replicas();
        const int64_t* swaps = in.get<int64_t>("swaps", { k - 1, 2 });
        swaps_.assign(swaps, swaps + 2 * (k - 1));
        sweeps_ = *in.get<int64_t>("sweeps", { 1 });
        const ansatz_tensor* hot = in.find("replicas");
        if (!hot)
        {
            chains_ = 0;
            return;
        }
        if (hot->rank != 3 || hot->shape[1] != k - 1)
            throw ansatz::InputError("the saved state's piece 'replicas' has shape " +
                                     ansatz::shape_string(*hot) + ", expected {N, " + std::to_string(k - 1) +
                                     ", D}");
        chains_ = hot->shape[0];
        dim_ = hot->shape[2];
        const float* values = in.get<float>("replicas", { chains_, k - 1, dim_ });
        hot_.assign(values, values + chains_ * (k - 1) * dim_);
        const uint64_t* words = in.get<uint64_t>("replica_rngs", { chains_, k - 1, 4 });
        hot_rngs_.resize(static_cast<size_t>(chains_ * (k - 1)));
        std::memcpy(hot_rngs_.data(), words, hot_rngs_.size() * sizeof(ansatz::Rng));
    }

private:
    int64_t replicas() const { return static_cast<int64_t>(betas_.size()); }
    float* row(int64_t r) { return ensemble_.data() + r * dim_; }

    // The hot replicas of n chains of d values: kept for the chains that had them, new chains' replicas
    // drawn from the model's random_state with streams derived from the chain's own (derive does not
    // move it): a chain's replicas never depend on the chains beside it.
    void prepare(int64_t n, int64_t d, ansatz::Streams rngs)
    {
        const int64_t k = replicas();
        if (chains_ > 0 && d != dim_)
            throw ansatz::Error("sampler '" + name_ + "': the chains have " + std::to_string(d) +
                                " values, its replicas " + std::to_string(dim_));
        dim_ = d;
        if (n == chains_)
            return;
        const int64_t kept = std::min(n, chains_);
        hot_.resize(static_cast<size_t>(n * (k - 1) * d));
        hot_rngs_.resize(static_cast<size_t>(n * (k - 1)));
        if (n > kept)
        {
            for (int64_t r = kept; r < n; ++r)
                for (int64_t j = 1; j < k; ++j)
                    hot_rngs_[static_cast<size_t>(r * (k - 1) + j - 1)] =
                        rngs[static_cast<size_t>(r)].derive(static_cast<uint64_t>(j));
            ansatz_tensor fresh =
                ansatz::make_view(hot_.data() + kept * (k - 1) * d, { (n - kept) * (k - 1), d });
            model_.random_state(fresh,
                                ansatz::Streams(hot_rngs_).subspan(static_cast<size_t>(kept * (k - 1))));
        }
        chains_ = n;
    }

    std::string name_;
    ansatz::SamplerRef inner_;
    int64_t steps_;
    ansatz::Host host_;
    std::vector<double> betas_; // beta_0 = 1 > beta_1 > ... (replica j's)

    // State: the replicas 1..K-1 of every chain and their streams, swap counters, sweeps done.
    int64_t chains_ = 0, dim_ = 0;
    std::vector<float> hot_;
    std::vector<ansatz::Rng> hot_rngs_;
    std::vector<int64_t> swaps_; // per pair j: attempted, accepted
    int64_t sweeps_ = 0;

    // Work buffers.
    std::vector<float> ensemble_;
    std::vector<ansatz::Rng> streams_;
    std::vector<double> beta_, cross_, own_f_, cross_f_;
};

} // namespace

ANSATZ_PLUGIN(
    "parallel_tempering", "0.1.0", "MIT",
    ansatz::sampler<ParallelTempering>(
        "parallel_tempering",
        "replicas on a ladder of temperatures, advanced by an inner sampler, exchanging neighbours"))

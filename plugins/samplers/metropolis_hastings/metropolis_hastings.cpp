// Metropolis-Hastings for any model with local energy differences (energy_delta), batch-shaped: every
// proposal step proposes one change in every chain, asks the model for all the energy changes in one
// call, and accepts each with probability
//     min(1, p(x') T(x | x') / (p(x) T(x' | x))),   p(x) = exp(-F(x)) / Z.
// Single-site proposals (flip, another category, a Gaussian step) are symmetric, so the ratio is
// exp(-(F(x') - F(x))). MALA moves the whole state along the gradient of F and corrects with the
// proposal densities. See README.md for every key and the equations.
#include <ansatz/math.hpp>
#include <ansatz/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace
{

enum class Proposal
{
    flip,     // binary 0 <-> 1, spin -1 <-> +1
    category, // a uniformly chosen other category
    gaussian, // x_i + step_size z, one site
    mala,     // x - (h^2 / 2) dF/dx + h z, the whole state
};

enum class Order
{
    random,       // a uniformly random site per proposal (random scan)
    checkerboard, // sites of even coordinate sum, then odd, in index order
    sequential,   // sites 0, 1, ..., D - 1
};

const char* proposal_name(Proposal p)
{
    switch (p)
    {
    case Proposal::flip:
        return "flip";
    case Proposal::category:
        return "category";
    case Proposal::gaussian:
        return "gaussian";
    case Proposal::mala:
        return "mala";
    }
    return "?";
}

class MetropolisHastings final : public ansatz::Sampler
{
public:
    // The single-site proposals need energy_delta; MALA's free_energy and free_energy_grad_state are
    // checked at bind, when the proposal is known.
    static constexpr uint64_t needs = ANSATZ_FN_ENERGY_DELTA;

    static void describe(ansatz::Schema& s)
    {
        s.integer("steps",
                  "sweeps per advance when the caller asks for the default; a sweep is D single-site "
                  "proposals per chain (one whole-state proposal for mala)")
            .default_value(1)
            .min(1);
        s.choice("proposal", "auto|flip|category|gaussian|mala",
                 "auto: from the model's domain (flip for binary and spin, category for categorical, "
                 "gaussian for real); mala: Langevin moves of the whole state (real, with "
                 "free_energy_grad_state)")
            .default_value("auto");
        s.real("step_size", "gaussian: the standard deviation of a step (default 1); mala: h in x' = x - "
                            "h^2/2 dF/dx + h z (default 0.5); the start of adaptation")
            .optional()
            .min(0, true)
            .double_precision();
        s.integer("adapt_sweeps", "the first this many sweeps of the chains adapt each chain's step size "
                                  "toward target_acceptance, then it is frozen (0: no adaptation)")
            .default_value(0)
            .min(0);
        s.real("target_acceptance", "the acceptance rate adaptation aims at (default 0.44 for gaussian "
                                    "single-site steps, 0.574 for mala)")
            .optional()
            .min(0, true)
            .max(1, true)
            .double_precision();
        s.choice("order", "random|checkerboard|sequential",
                 "the sites of a sweep: random (uniform random site per proposal), checkerboard (even "
                 "coordinate sum, then odd, on the model's 1-D or 2-D sample shape), sequential (0 .. D-1)")
            .default_value("random");
    }

    MetropolisHastings(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), steps_(c.integer("steps")), proposal_key_(c.string("proposal")),
          adapt_sweeps_(c.integer("adapt_sweeps")), host_(host)
    {
        const std::string order = c.string("order");
        order_ = order == "checkerboard" ? Order::checkerboard
                 : order == "sequential" ? Order::sequential
                                         : Order::random;
        if (c.has("step_size"))
            step_size_key_ = c.real("step_size");
        if (c.has("target_acceptance"))
        {
            target_key_ = c.real("target_acceptance");
            if (adapt_sweeps_ == 0)
                throw ansatz::InputError("target_acceptance is " + format(*target_key_) +
                                         ", but adapt_sweeps is 0: without adaptation nothing aims at it "
                                         "(set adapt_sweeps, or drop target_acceptance)");
        }
        if (proposal_key_ == "flip" || proposal_key_ == "category")
            refuse_step_keys(proposal_key_);
        if (proposal_key_ == "mala" && order_ != Order::random)
            throw ansatz::InputError("order: " + order +
                                     " has no meaning for proposal: mala, which moves every "
                                     "variable at once; drop the order key");
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has(ANSATZ_FN_ENERGY_DELTA))
            throw ansatz::InputError(
                "it needs a model with energy_delta (local energy differences); the model "
                "has " +
                ansatz::model_function_names(model.functions()));
        info_ = model.sample_info();
        const int32_t domain = info_.domain;
        if (proposal_key_ == "auto")
            proposal_ = domain == ANSATZ_DOMAIN_REAL          ? Proposal::gaussian
                        : domain == ANSATZ_DOMAIN_CATEGORICAL ? Proposal::category
                                                              : Proposal::flip;
        else
            proposal_ = proposal_key_ == "flip"       ? Proposal::flip
                        : proposal_key_ == "category" ? Proposal::category
                        : proposal_key_ == "gaussian" ? Proposal::gaussian
                                                      : Proposal::mala;
        const std::string has = "the model's variables are " + ansatz::domain_name(info_);
        switch (proposal_)
        {
        case Proposal::flip:
            if (domain != ANSATZ_DOMAIN_BINARY && domain != ANSATZ_DOMAIN_SPIN)
                throw ansatz::InputError("proposal: flip needs binary or spin variables, but " + has);
            refuse_step_keys("flip");
            break;
        case Proposal::category:
            if (domain != ANSATZ_DOMAIN_CATEGORICAL || info_.categories < 2)
                throw ansatz::InputError("proposal: category needs categorical variables with at least 2 "
                                         "categories, but " +
                                         has);
            refuse_step_keys("category");
            break;
        case Proposal::gaussian:
            if (domain != ANSATZ_DOMAIN_REAL)
                throw ansatz::InputError("proposal: gaussian needs real variables, but " + has);
            break;
        case Proposal::mala:
            if (domain != ANSATZ_DOMAIN_REAL)
                throw ansatz::InputError("proposal: mala needs real variables, but " + has);
            if (!model.has(ANSATZ_FN_STATE_GRAD) || !model.has(ANSATZ_FN_FREE_ENERGY))
                throw ansatz::InputError(
                    "proposal: mala needs the model's free_energy and free_energy_grad_state "
                    "(dF/dx), and the model has " +
                    ansatz::model_function_names(model.functions()));
            break;
        }
        if (proposal_ == Proposal::gaussian || proposal_ == Proposal::mala)
        {
            initial_step_ = step_size_key_ ? *step_size_key_ : proposal_ == Proposal::mala ? 0.5 : 1.0;
            target_ = target_key_ ? *target_key_ : proposal_ == Proposal::mala ? 0.574 : 0.44;
        }
        scan_.clear();
        if (order_ == Order::checkerboard)
        {
            if (info_.rank != 1 && info_.rank != 2)
                throw ansatz::InputError("order: checkerboard needs a lattice, a model that declares a "
                                         "sample shape of rank 1 or 2 "
                                         "(sample_info), but the model's shape " +
                                         std::string(info_.rank < 0
                                                         ? "comes from the data"
                                                         : "has rank " + std::to_string(info_.rank)));
            const int64_t rows = info_.rank == 2 ? info_.shape[0] : 1;
            const int64_t cols = info_.rank == 2 ? info_.shape[1] : info_.shape[0];
            for (int parity = 0; parity < 2; ++parity)
                for (int64_t a = 0; a < rows; ++a)
                    for (int64_t b = 0; b < cols; ++b)
                        if ((a + b) % 2 == parity)
                            scan_.push_back(a * cols + b);
        }
        local_ = model.has(ANSATZ_FN_LOCAL_MOVES);
        fused_ = local_ && model.has(ANSATZ_FN_LOCAL_STEP);
        model_ = model;
    }

    void advance(ansatz_tensor& chains, int32_t steps, ansatz::Streams rngs) override
    {
        run(chains, steps, nullptr, rngs);
    }

    // Row n targets exp(-F_beta[n]): the single-site deltas come from the model's local session at beta.
    void advance_tempered(ansatz_tensor& chains, int32_t steps, const double* beta, ansatz::Streams rngs)
    {
        require_bound();
        if (proposal_ == Proposal::mala)
            throw ansatz::InputError(
                "sampler '" + name_ +
                "' cannot temper with proposal: mala: the model's "
                "free_energy_grad_state is the gradient of F, not of the tempered F_beta; "
                "use proposal: gaussian");
        if (!local_)
            throw ansatz::InputError("sampler '" + name_ +
                                     "' cannot temper this model: a tempered "
                                     "Metropolis-Hastings sweep takes the energy changes at an inverse "
                                     "temperature from the model's local-move session (local_begin + "
                                     "local_commit + local_end), and the model has " +
                                     ansatz::model_function_names(model_.functions()));
        if (chains.rank >= 1 && chains.shape[0] == 0)
            return;
        run(chains, steps, beta, rngs);
    }

    // "acceptance": accepted / proposed since the last call; "step_size": the chains' mean step size
    // (gaussian, mala); "mh_sweeps": sweeps since the last call.
    void metrics(ansatz::Metrics& out)
    {
        if (proposed_ > 0)
            out.add("acceptance", static_cast<double>(accepted_) / static_cast<double>(proposed_));
        if (!step_.empty())
        {
            double sum = 0;
            for (double h : step_)
                sum += h;
            out.add("step_size", sum / static_cast<double>(step_.size()));
        }
        out.add("mh_sweeps", static_cast<double>(metric_sweeps_));
        proposed_ = accepted_ = metric_sweeps_ = 0;
    }

    // Everything that changes: the adaptation clock, each chain's step size, the metrics' counters.
    std::vector<ansatz_named_tensor> state()
    {
        counts_[0] = clock_;
        counts_[1] = proposed_;
        counts_[2] = accepted_;
        counts_[3] = metric_sweeps_;
        std::vector<ansatz_named_tensor> out = { { "counts", ansatz::make_view(counts_, { 4 }) } };
        if (!step_.empty())
            out.push_back(
                { "step_sizes", ansatz::make_view(step_.data(), { static_cast<int64_t>(step_.size()) }) });
        return out;
    }
    void set_state(const ansatz::StateIn& in)
    {
        in.require_only({ "counts", "step_sizes" });
        const int64_t* c = in.get<int64_t>("counts", { 4 });
        clock_ = c[0];
        proposed_ = c[1];
        accepted_ = c[2];
        metric_sweeps_ = c[3];
        step_.clear();
        if (const ansatz_tensor* t = in.find("step_sizes"))
        {
            const double* h = in.get<double>("step_sizes", { t->rank >= 1 ? t->shape[0] : 0 });
            step_.assign(h, h + t->shape[0]);
        }
    }

private:
    static std::string format(double x)
    {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%g", x);
        return buffer;
    }

    void refuse_step_keys(const std::string& proposal) const
    {
        if (step_size_key_)
            throw ansatz::InputError("step_size is " + format(*step_size_key_) + ", but proposal: " +
                                     proposal + " has no step size (it is for gaussian and mala)");
        if (adapt_sweeps_ > 0)
            throw ansatz::InputError("adapt_sweeps is " + std::to_string(adapt_sweeps_) + ", but proposal: " +
                                     proposal + " has no step size to adapt (it is for gaussian and mala)");
    }

    void require_bound() const
    {
        if (!model_.valid())
            throw ansatz::Error("sampler '" + name_ + "' is advanced before bind()");
    }

    void run(ansatz_tensor& chains, int32_t steps, const double* beta, ansatz::Streams rngs)
    {
        require_bound();
        if (steps < 0)
            throw ansatz::Error("sampler '" + name_ + "': advance() got a negative step count");
        ansatz::require_matrix(chains, -1, -1, "metropolis_hastings advance: chains");
        const int64_t n = chains.shape[0], d = chains.shape[1];
        if (!scan_.empty() && static_cast<int64_t>(scan_.size()) != d)
            throw ansatz::Error("sampler '" + name_ + "': the chains have " + std::to_string(d) +
                                " values, but the model's sample shape has " + std::to_string(scan_.size()));
        if (n == 0 || d == 0)
            return;
        const int64_t sweeps = steps == 0 ? steps_ : steps;
        if (proposal_ == Proposal::gaussian || proposal_ == Proposal::mala)
            if (static_cast<int64_t>(step_.size()) != n)
            {
                // A new batch of chains: each starts at the configured step size, and adapts anew.
                step_.assign(static_cast<size_t>(n), initial_step_);
                clock_ = 0;
            }
        if (proposal_ == Proposal::mala)
            mala(chains, sweeps, rngs);
        else
            single_site(chains, sweeps, beta, rngs);
    }

    void cancel_point() const
    {
        if (host_.cancelled())
            throw ansatz::Error("sampler '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
    }

    // After sweep t (t = clock + 1: the chains' life so far) in which chain r accepted accepted[r] of its
    // d proposals, for rows first ... first + n - 1: while t <= adapt_sweeps,
    // log h_r += t^-0.6 (rate_r - target) (Robbins-Monro).
    void adapt(int64_t first, int64_t n, const int64_t* accepted, int64_t d, int64_t clock)
    {
        if (step_.empty() || clock >= adapt_sweeps_)
            return;
        const double gain = std::pow(static_cast<double>(clock + 1), -0.6);
        for (int64_t r = 0; r < n; ++r)
        {
            double& h = step_[static_cast<size_t>(first + r)];
            const double rate = static_cast<double>(accepted[r]) / static_cast<double>(d);
            h = std::clamp(h * std::exp(gain * (rate - target_)), 1e-12, 1e12);
        }
    }

    // D single-site proposals per chain and sweep, through the model's local session when it has one.
    // The chains go in blocks of about kBlockBytes of state each (all of them when they fit): a block
    // runs all its sweeps, in a session of its own, before the next block starts, so the spins that the
    // proposals read stay in the core's cache instead of streaming all the chains' states through it at
    // every proposal step. Chain r draws only from rngs[r] and its moves depend only on its own row, so
    // the blocks change no chain's trajectory, only the order in which the chains are moved.
    void single_site(ansatz_tensor& chains, int64_t sweeps, const double* beta, ansatz::Streams rngs)
    {
        const int64_t n = chains.shape[0], d = chains.shape[1];
        const int64_t per_block =
            std::clamp<int64_t>(kBlockBytes / (d * static_cast<int64_t>(sizeof(float))), 1, n);
        row_accepted_.assign(static_cast<size_t>(n), 0);
        for (int64_t first = 0; first < n; first += per_block)
        {
            const int64_t rows = std::min(per_block, n - first);
            ansatz_tensor block = ansatz::make_view(ansatz::f32(chains) + first * d, { rows, d });
            block_sweeps(block, first, sweeps, beta ? beta + first : nullptr,
                         rngs.subspan(static_cast<size_t>(first), static_cast<size_t>(rows)));
        }
        proposed_ += n * d * sweeps;
        metric_sweeps_ += sweeps;
        clock_ += sweeps;
    }

    // All `sweeps` sweeps of the chains of one block (rows first ... first + n - 1 of the caller's).
    void block_sweeps(ansatz_tensor& chains, int64_t first, int64_t sweeps, const double* beta,
                      ansatz::Streams rngs)
    {
        const int64_t n = chains.shape[0], d = chains.shape[1];
        const size_t rows = static_cast<size_t>(n);
        float* x = ansatz::f32(chains);
        sites_.resize(rows);
        values_.resize(rows);
        previous_.resize(rows);
        delta_.resize(rows);
        threshold_.resize(rows);
        accepted_flag_.resize(rows);
        uniforms_.resize(rows);
        miss_at_.resize(rows);
        miss_value_.resize(rows);
        ansatz_tensor delta_view = ansatz::make_view(delta_.data(), { n });
        const int64_t categories = info_.categories;
        const float low = info_.domain == ANSATZ_DOMAIN_SPIN ? -1.0f : 0.0f;
        std::optional<ansatz::LocalSession> session;
        if (local_)
            session.emplace(model_, chains, beta);
        int64_t* row_accepted = row_accepted_.data() + first;
        for (int64_t sweep = 0; sweep < sweeps; ++sweep)
        {
            cancel_point();
            std::fill(row_accepted, row_accepted + n, 0);
            if (fused_ && proposal_ == Proposal::flip)
            {
                fused_flips(chains, rngs, row_accepted);
                adapt(first, n, row_accepted, d, clock_ + sweep);
                continue;
            }
            for (int64_t k = 0; k < d; ++k)
            {
                // The site and the new value of every chain, from its own stream.
                int64_t* const sites = sites_.data();
                float* const values = values_.data();
                float* const previous = previous_.data();
                // With the fused step, each chain's uniform is drawn after its proposal: the same draws
                // from each chain's stream, in the same order, as the accept loop below makes. (Flips
                // with the fused step go through fused_flips.)
                float* const uniforms = fused_ ? uniforms_.data() : nullptr;
                if (proposal_ == Proposal::flip) // the common case, without the switch
                {
                    // The sites first (the chains' values there are fetched meanwhile), then the other
                    // value of each, without a branch on it: 1 -> low, anything else -> 1.
                    if (order_ == Order::random)
                        for (size_t r = 0; r < rows; ++r)
                        {
                            const int64_t site =
                                static_cast<int64_t>(rngs[r].below(static_cast<uint64_t>(d)));
                            sites[r] = site;
                            __builtin_prefetch(x + static_cast<int64_t>(r) * d + site);
                        }
                    else
                        std::fill(sites, sites + n,
                                  order_ == Order::sequential ? k : scan_[static_cast<size_t>(k)]);
                    for (size_t r = 0; r < rows; ++r)
                    {
                        const float now = x[static_cast<int64_t>(r) * d + sites[r]];
                        values[r] = 1.0f + static_cast<float>(now == 1.0f) * (low - 1.0f);
                        previous[r] = now;
                    }
                }
                else
                {
                    if (order_ == Order::random)
                        for (size_t r = 0; r < rows; ++r)
                            sites[r] = static_cast<int64_t>(rngs[r].below(static_cast<uint64_t>(d)));
                    else
                        std::fill(sites, sites + n,
                                  order_ == Order::sequential ? k : scan_[static_cast<size_t>(k)]);
                    for (size_t r = 0; r < rows; ++r)
                    {
                        ansatz::Rng& rng = rngs[r];
                        const float now = x[static_cast<int64_t>(r) * d + sites[r]];
                        float next = 0;
                        if (proposal_ == Proposal::category)
                        {
                            // One of the K - 1 other categories, uniformly.
                            const int64_t other =
                                static_cast<int64_t>(rng.below(static_cast<uint64_t>(categories - 1)));
                            const int64_t c = static_cast<int64_t>(now);
                            next = static_cast<float>(other >= c ? other + 1 : other);
                        }
                        else
                            next = static_cast<float>(now +
                                                      step_[static_cast<size_t>(first) + r] * rng.normal());
                        values[r] = next;
                        previous[r] = now;
                        if (uniforms)
                            uniforms[r] = rng.uniform();
                    }
                }
                if (uniforms)
                {
                    uint8_t* const flags = accepted_flag_.data();
                    session->step(chains, 1, sites, values, uniforms, flags);
                    int64_t any = 0;
                    for (size_t r = 0; r < rows; ++r)
                    {
                        row_accepted[r] += flags[r];
                        any += flags[r];
                    }
                    accepted_ += any;
                    continue;
                }
                model_.energy_delta(chains, sites_.data(), values_.data(), delta_view);
                // Accept with probability min(1, e^-delta): u < e^min(0, -delta); NaN is rejected.
                float* const threshold = threshold_.data();
                uint8_t* const flags = accepted_flag_.data();
                acceptance_thresholds(delta_.data(), threshold, n);
                int64_t any = 0;
                for (size_t r = 0; r < rows; ++r)
                {
                    // Without a branch on the outcome (a coin flip the predictor cannot learn).
                    const bool accept = rngs[r].uniform() < threshold[r];
                    float& at = x[static_cast<int64_t>(r) * d + sites[r]];
                    at = accept ? values[r] : at;
                    flags[r] = accept ? 1 : 0;
                    row_accepted[r] += accept ? 1 : 0;
                    any += accept ? 1 : 0;
                }
                accepted_ += any;
                if (session && any)
                    session->commit(chains, sites_.data(), previous_.data(), accepted_flag_.data());
            }
            adapt(first, n, row_accepted, d, clock_ + sweep);
        }
        if (session)
            session->end();
    }

    // One sweep of flips through the model's fused local_step (2.4), in chunks of up to kFusedRounds
    // rounds: each chain's sites and uniforms for the chunk drawn in its stream's order (site, u; site,
    // u; ...: the draws of the round-by-round path), then one call in which the model runs each chain's
    // rounds in turn, with that chain's lattice in the core's cache.
    void fused_flips(const ansatz_tensor& chains, ansatz::Streams rngs, int64_t* row_accepted)
    {
        const int64_t n = chains.shape[0], d = chains.shape[1];
        const int64_t most = std::min<int64_t>(d, kFusedRounds);
        const size_t cells = static_cast<size_t>(most * n);
        fused_sites_.resize(cells);
        fused_uniforms_.resize(cells);
        fused_flags_.resize(cells);
        int64_t* const sites = fused_sites_.data();
        float* const uniforms = fused_uniforms_.data();
        uint8_t* const flags = fused_flags_.data();
        int64_t any = 0;
        for (int64_t k0 = 0; k0 < d; k0 += most)
        {
            const int64_t rounds = std::min(most, d - k0);
            for (int64_t r = 0; r < n; ++r)
            {
                // A copy in registers for the chunk (the same draws), written back after it.
                ansatz::Rng rng = rngs[static_cast<size_t>(r)];
                int64_t* const row_sites = sites + r * rounds;
                float* const row_uniforms = uniforms + r * rounds;
                if (order_ == Order::random)
                    for (int64_t t = 0; t < rounds; ++t)
                    {
                        row_sites[t] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(d)));
                        row_uniforms[t] = rng.uniform();
                    }
                else
                    for (int64_t t = 0; t < rounds; ++t)
                    {
                        row_sites[t] =
                            order_ == Order::sequential ? k0 + t : scan_[static_cast<size_t>(k0 + t)];
                        row_uniforms[t] = rng.uniform();
                    }
                rngs[static_cast<size_t>(r)] = rng;
            }
            model_.local_step(chains, rounds, sites, nullptr, uniforms, flags);
            for (int64_t r = 0; r < n; ++r)
                for (int64_t t = 0; t < rounds; ++t)
                {
                    const uint8_t f = flags[r * rounds + t];
                    row_accepted[r] += f;
                    any += f;
                }
        }
        accepted_ += any;
    }

    // threshold[r] = e^min(0, -delta[r]) for r < n (NaN for a NaN delta). The exponentials come from a
    // small memo of recent arguments when most of them repeat (a lattice model's few energy changes),
    // else from the vectorised exp over all of them; either way each value is ansatz::exp's, bit for bit.
    void acceptance_thresholds(const float* delta, float* threshold, int64_t n)
    {
        for (int64_t r = 0; r < n; ++r)
        {
            const float minus = -delta[r];
            threshold[r] = minus >= 0.0f ? 0.0f : minus;
        }
        if (memo_skip_ > 0)
        {
            --memo_skip_;
            ansatz::exp(threshold, n);
            return;
        }
        int64_t misses = 0;
        for (int64_t r = 0; r < n; ++r)
        {
            uint32_t bits;
            std::memcpy(&bits, &threshold[r], sizeof bits);
            const MemoEntry& m = memo_[(bits * 0x9e3779b1u) >> (32 - kMemoBits)];
            if (m.key == bits && m.filled)
                threshold[r] = m.value;
            else
            {
                miss_at_[static_cast<size_t>(misses)] = r;
                miss_value_[static_cast<size_t>(misses)] = threshold[r];
                ++misses;
            }
        }
        if (misses == 0)
            return;
        ansatz::exp(miss_value_.data(), misses);
        for (int64_t m = 0; m < misses; ++m)
        {
            const int64_t r = miss_at_[static_cast<size_t>(m)];
            uint32_t bits;
            std::memcpy(&bits, &threshold[r], sizeof bits);
            memo_[(bits * 0x9e3779b1u) >> (32 - kMemoBits)] = { bits, true,
                                                                miss_value_[static_cast<size_t>(m)] };
            threshold[r] = miss_value_[static_cast<size_t>(m)];
        }
        // Mostly new arguments (a model with continuous energy changes): the plain exp for a while.
        if (2 * misses > n)
            memo_skip_ = kMemoSkip;
    }

    // One whole-state Langevin proposal per chain and sweep:
    //   x' = x - (h^2 / 2) g(x) + h z,  g = dF/dx,  z ~ N(0, I),
    //   log alpha = F(x) - F(x') + log q(x | x') - log q(x' | x),
    //   log q(y | x) = -|y - x + (h^2 / 2) g(x)|^2 / (2 h^2)  (+ a constant that cancels).
    void mala(ansatz_tensor& chains, int64_t sweeps, ansatz::Streams rngs)
    {
        const int64_t n = chains.shape[0], d = chains.shape[1];
        const size_t rows = static_cast<size_t>(n), size = static_cast<size_t>(n * d);
        float* x = ansatz::f32(chains);
        grad_.resize(size);
        proposal_state_.resize(size);
        proposal_grad_.resize(size);
        f_.resize(rows);
        proposal_f_.resize(rows);
        row_accepted_.assign(rows, 0);
        ansatz_tensor g = ansatz::make_view(grad_.data(), { n, d });
        ansatz_tensor y = ansatz::make_view(proposal_state_.data(), { n, d });
        ansatz_tensor gy = ansatz::make_view(proposal_grad_.data(), { n, d });
        ansatz_tensor fx = ansatz::make_view(f_.data(), { n });
        ansatz_tensor fy = ansatz::make_view(proposal_f_.data(), { n });
        model_.free_energy(chains, fx);
        model_.free_energy_grad_state(chains, g);
        for (int64_t sweep = 0; sweep < sweeps; ++sweep)
        {
            cancel_point();
            for (size_t r = 0; r < rows; ++r)
            {
                const double h = step_[r];
                for (int64_t i = 0; i < d; ++i)
                {
                    const size_t k = r * static_cast<size_t>(d) + static_cast<size_t>(i);
                    proposal_state_[k] =
                        static_cast<float>(x[k] - 0.5 * h * h * grad_[k] + h * rngs[r].normal());
                }
            }
            model_.free_energy(y, fy);
            model_.free_energy_grad_state(y, gy);
            int64_t accepted = 0;
            for (size_t r = 0; r < rows; ++r)
            {
                const double h = step_[r];
                // |x - x' + (h^2 / 2) g(x')|^2 and |x' - x + (h^2 / 2) g(x)|^2, from the float states as
                // they are (so the ratio is exact for the proposal actually made).
                double back = 0;
                double forward = 0;
                for (int64_t i = 0; i < d; ++i)
                {
                    const size_t k = r * static_cast<size_t>(d) + static_cast<size_t>(i);
                    const double b =
                        static_cast<double>(x[k]) - proposal_state_[k] + 0.5 * h * h * proposal_grad_[k];
                    const double f = static_cast<double>(proposal_state_[k]) - x[k] + 0.5 * h * h * grad_[k];
                    back += b * b;
                    forward += f * f;
                }
                const double log_alpha =
                    static_cast<double>(f_[r]) - proposal_f_[r] - (back - forward) / (2 * h * h);
                const double u = rngs[r].uniform_double();
                // min(log_alpha, 0) keeps a NaN (std::min returns its first argument when the comparison is
                // false), so exp(NaN) fails the comparison: rejected.
                const bool accept = u < std::exp(std::min(log_alpha, 0.0));
                row_accepted_[r] = accept ? 1 : 0;
                if (!accept)
                    continue;
                ++accepted;
                std::copy_n(proposal_state_.data() + r * static_cast<size_t>(d), d,
                            x + r * static_cast<size_t>(d));
                std::copy_n(proposal_grad_.data() + r * static_cast<size_t>(d), d,
                            grad_.data() + r * static_cast<size_t>(d));
                f_[r] = proposal_f_[r];
            }
            accepted_ += accepted;
            proposed_ += n;
            ++metric_sweeps_;
            adapt(0, n, row_accepted_.data(), 1, clock_);
            ++clock_;
        }
    }

    std::string name_;
    int64_t steps_;
    std::string proposal_key_;
    int64_t adapt_sweeps_;
    std::optional<double> step_size_key_, target_key_;
    Order order_ = Order::random;
    ansatz::Host host_;

    // from bind
    ansatz_sample_info info_{};
    Proposal proposal_ = Proposal::flip;
    double initial_step_ = 1.0;
    double target_ = 0.44;
    std::vector<int64_t> scan_; // checkerboard: the sites of a sweep in order
    bool local_ = false;
    bool fused_ = false; // the model's local_step (2.4) does energy_delta, the acceptance and the commit

    // state
    std::vector<double> step_; // each chain's step size (gaussian, mala)
    // Chains per block of single_site: about this many bytes of their states (the core's L2 holds it).
    static constexpr int64_t kBlockBytes = 256 * 1024;
    int64_t clock_ = 0; // sweeps of the current batch of chains (the adaptation's t)
    int64_t proposed_ = 0, accepted_ = 0, metric_sweeps_ = 0;
    int64_t counts_[4] = {};

    // the memo of e^x for acceptance_thresholds
    struct MemoEntry
    {
        uint32_t key = 0; // the bits of x
        bool filled = false;
        float value = 0; // ansatz::exp of x
    };
    static constexpr int kMemoBits = 6;
    static constexpr int32_t kMemoSkip = 64; // proposal steps without the memo after one that mostly missed
    MemoEntry memo_[1 << kMemoBits] = {};
    int32_t memo_skip_ = 0;
    std::vector<int64_t> miss_at_;
    std::vector<float> miss_value_;

    // work buffers
    std::vector<int64_t> sites_;
    std::vector<float> values_, previous_, delta_, threshold_;
    std::vector<uint8_t> accepted_flag_;
    std::vector<float> uniforms_; // the fused step's draws, one per chain
    // fused_flips' chunk: sites, uniforms and flags {rounds, chains}
    std::vector<int64_t> fused_sites_;
    std::vector<float> fused_uniforms_;
    std::vector<uint8_t> fused_flags_;
    static constexpr int64_t kFusedRounds = 256;
    std::vector<int64_t> row_accepted_;
    std::vector<float> grad_, proposal_state_, proposal_grad_, f_, proposal_f_;
};

} // namespace

ANSATZ_PLUGIN(
    "metropolis_hastings", "0.1.0", "MIT",
    ansatz::sampler<MetropolisHastings>(
        "metropolis_hastings",
        "Metropolis-Hastings: single-site flips, categories or Gaussian steps, or MALA, for every chain "
        "at once"))

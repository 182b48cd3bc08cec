// Block Gibbs sampling for models with two conditionally independent blocks (an RBM):
//     h ~ p(h | v),  then  v ~ p(v | h)        (one sweep)
// for every chain of the batch at once; v is replaced in place by its sample.
#include <ansatz/plugin.hpp>

#include <string>
#include <vector>

namespace
{

using ansatz::Workspace;

class Gibbs final : public ansatz::Sampler
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_CONDITIONAL;

    static void describe(ansatz::Schema& s)
    {
        s.integer("steps",
                  "sweeps (h ~ p(h|v), then v ~ p(v|h)) per advance when the caller asks for the default")
            .default_value(1)
            .min(1);
    }

    Gibbs(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), steps_(c.integer("steps")), host_(host)
    {
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has_conditionals())
            throw ansatz::InputError("it needs a model with block conditionals (function 'conditional')");
        model_ = model;
    }

    void advance(ansatz_tensor& chains, int32_t steps, ansatz::Streams rngs) override
    {
        sweep(chains, steps, nullptr, rngs);
    }

    // Row n at inverse temperature beta[n]: the same two half-steps through the model's
    // tempered_conditional, which samples p_beta(h | v) and p_beta(v | h) of E_beta = E0 + beta E1.
    void advance_tempered(ansatz_tensor& chains, int32_t steps, const double* beta, ansatz::Streams rngs)
    {
        if (!model_.valid())
            throw ansatz::Error("sampler '" + name_ + "' is advanced before bind()");
        if (!model_.has(ANSATZ_FN_TEMPERED))
            throw ansatz::InputError("sampler '" + name_ +
                                     "' cannot temper this model: a tempered Gibbs sweep needs the model's "
                                     "tempered functions (tempered_free_energy + base_log_partition + "
                                     "tempered_conditional), and it has " +
                                     ansatz::model_function_names(model_.functions()));
        if (chains.rank >= 1 && chains.shape[0] == 0)
            return;
        sweep(chains, steps, beta, rngs);
    }

private:
    // `steps` sweeps (0: the configured count); beta nullptr: the model's own conditionals.
    void sweep(ansatz_tensor& chains, int32_t steps, const double* beta, ansatz::Streams rngs)
    {
        if (!model_.valid())
            throw ansatz::Error("sampler '" + name_ + "' is advanced before bind()");
        if (steps < 0)
            throw ansatz::Error("sampler '" + name_ + "': advance() got a negative step count");
        const int64_t visible = model_.block_size(ANSATZ_BLOCK_VISIBLE);
        const int64_t hidden = model_.block_size(ANSATZ_BLOCK_HIDDEN);
        if (visible < 0 || hidden < 0)
            throw ansatz::Error("sampler '" + name_ + "': the model did not report its block sizes");
        ansatz::require_matrix(chains, -1, visible, "gibbs advance: chains");
        const int64_t n = chains.shape[0];
        ansatz_tensor h_mean = h_mean_.view(n, hidden);
        ansatz_tensor h = h_sample_.view(n, hidden);
        ansatz_tensor v_mean = v_mean_.view(n, visible);

        const int64_t sweeps = steps == 0 ? steps_ : steps;
        for (int64_t s = 0; s < sweeps; ++s)
        {
            if (host_.cancelled())
                throw ansatz::Error("sampler '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
            if (beta)
            {
                model_.tempered_conditional(ANSATZ_BLOCK_HIDDEN, chains, beta, nullptr, h_mean, &h, rngs);
                model_.tempered_conditional(ANSATZ_BLOCK_VISIBLE, h, beta, nullptr, v_mean, &chains, rngs);
                continue;
            }
            model_.conditional(ANSATZ_BLOCK_HIDDEN, chains, h_mean, &h, rngs);
            model_.conditional(ANSATZ_BLOCK_VISIBLE, h, v_mean, &chains, rngs);
        }
        sweeps_ += sweeps;
    }

public:
    // "gibbs_sweeps": sweeps done since the last call (summed over calls, not over chains).
    void metrics(ansatz::Metrics& out)
    {
        out.add("gibbs_sweeps", static_cast<double>(sweeps_));
        sweeps_ = 0;
    }

    // The sweep counter of metrics(): a resumed run reports the same numbers.
    std::vector<ansatz_named_tensor> state() { return { { "sweeps", ansatz::make_view(&sweeps_, { 1 }) } }; }
    void set_state(const ansatz::StateIn& in)
    {
        in.require_only({ "sweeps" });
        sweeps_ = *in.get<int64_t>("sweeps", { 1 });
    }

private:
    std::string name_;
    int64_t steps_;
    ansatz::Host host_;
    int64_t sweeps_ = 0;
    Workspace h_mean_, h_sample_, v_mean_;
};

} // namespace

ANSATZ_PLUGIN("gibbs", "0.1.0", "MIT",
              ansatz::sampler<Gibbs>("gibbs",
                                     "block Gibbs sampling h ~ p(h|v), v ~ p(v|h) for every chain at once"))

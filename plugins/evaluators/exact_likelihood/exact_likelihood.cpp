// The exact log-likelihood of a model with two blocks, by enumerating the smaller one:
//
//     log Z = log sum_h exp(-F(h))    over all 2^H hidden states, F(h) = block_free_energy(HIDDEN, h)
//           = log sum_v exp(-F(v))    over all 2^D visible states (binary or spin visible units)
//     log_likelihood        = (1/N) sum_n (-F(v_n) - log Z),   F(v) = block_free_energy(VISIBLE, v)
//     log_likelihood_stderr = s / sqrt(N),  s the sample standard deviation of -F(v_n)
//
// The states go to the model in batches (one call per batch, each batch's log-sum-exp in double, then
// the log-sum-exp of the batches' values), so 2^24 states cost a few thousand calls and a buffer of a
// few MB. The layer is chosen in bind(); a model too large to enumerate is refused there.
#include <ansatz/math.hpp>
#include <ansatz/plugin.hpp>
#include <ansatz/statistics.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace
{

using ansatz::MeanAndError;

// Rows first .. first + count - 1 of the enumeration of `units` two-valued units: unit i of state k is
// bit i of k, written as `high` when set and `low` when not (ansatz::binary_states' order, up to 2^30
// states).
void fill_states(int64_t units, int64_t first, int64_t count, float low, float high, float* out)
{
    for (int64_t j = 0; j < count; ++j)
    {
        const uint64_t k = static_cast<uint64_t>(first + j);
        for (int64_t i = 0; i < units; ++i)
            out[j * units + i] = ((k >> i) & 1u) ? high : low;
    }
}

// The largest value of max_units: 2^30 states.
constexpr int64_t kMostUnits = 30;
// Rows per block_free_energy call over enumerated states: the model's work buffer is about rows times
// the other layer's size, kept near 2^22 floats (16 MiB).
constexpr int64_t kBufferFloats = int64_t{ 1 } << 22;

class ExactLikelihood final : public ansatz::Evaluator
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_CONDITIONAL | ANSATZ_FN_BLOCK_FREE_ENERGY;

    static void describe(ansatz::Schema& s)
    {
        s.integer("max_units", "the most units of the enumerated layer (2^max_units states)")
            .default_value(24)
            .min(1)
            .max(static_cast<double>(kMostUnits));
        s.choice("layer", "smaller|hidden|visible",
                 "the layer to enumerate: the smaller one that can be, or the one named")
            .default_value("smaller");
        s.integer("batch", "data rows per call of the model's block_free_energy (memory, not the result)")
            .default_value(1024)
            .min(1);
    }

    ExactLikelihood(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), max_units_(c.integer("max_units")), layer_key_(c.string("layer")),
          batch_(c.integer("batch")), host_(host)
    {
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has(ANSATZ_FN_BLOCK_FREE_ENERGY))
            throw ansatz::InputError("it needs a model with the function 'block_free_energy'");
        model_ = model;
        planned_ = false;
        domain_ = model.sample_info().domain;
        // A model is set up before any stage binds it; the sizes are known then. (If they are not yet,
        // the plan is made on the first evaluate.)
        if (model_.block_size(ANSATZ_BLOCK_VISIBLE) > 0)
            plan();
    }

    void evaluate(const ansatz_tensor& data, ansatz::Rng&, ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("evaluator '" + name_ + "' is used before bind()");
        if (!planned_)
            plan();
        ansatz::require_matrix(data, -1, -1, "exact_likelihood evaluate: data");
        const int64_t n = data.shape[0];
        const int64_t d = data.shape[1];
        if (n == 0)
            throw ansatz::InputError("the evaluated data has no rows");

        const double log_z = log_partition();

        const float* rows = ansatz::f32(data);
        MeanAndError log_p;
        for (int64_t first = 0; first < n; first += batch_)
        {
            check_cancelled();
            const int64_t count = std::min(batch_, n - first);
            const ansatz_tensor v = ansatz::make_view(rows + first * d, { count, d });
            free_.resize(static_cast<size_t>(count));
            ansatz_tensor f = ansatz::make_view(free_.data(), { count });
            model_.block_free_energy(ANSATZ_BLOCK_VISIBLE, v, f);
            for (int64_t r = 0; r < count; ++r)
                log_p.add(-free_[static_cast<size_t>(r)]);
        }
        out.add("log_z", log_z);
        out.add("log_likelihood", log_p.mean() - log_z);
        out.add("log_likelihood_stderr", log_p.standard_error());
    }

private:
    // Chooses the layer to enumerate, or refuses the model (InputError) naming the sizes.
    void plan()
    {
        const int64_t d = model_.block_size(ANSATZ_BLOCK_VISIBLE);
        const int64_t h = model_.block_size(ANSATZ_BLOCK_HIDDEN);
        if (d <= 0 || h < 0)
            throw ansatz::Error("evaluator '" + name_ + "': the model did not report its block sizes");
        if (domain_ == ANSATZ_DOMAIN_CATEGORICAL)
            throw ansatz::InputError(
                "exact_likelihood: the model's units are categorical; it enumerates two-valued units only");
        // Visible units can be enumerated when they take two values; hidden units are binary (spins for
        // a spin model) for every domain but categorical.
        const bool visible_ok = domain_ == ANSATZ_DOMAIN_BINARY || domain_ == ANSATZ_DOMAIN_SPIN;
        const std::string sizes = "exact_likelihood: the model has " + std::to_string(d) +
                                  (visible_ok ? " visible" : " real-valued visible") + " and " +
                                  std::to_string(h) + " hidden units; ";
        const std::string limit = " needs at most max_units = " + std::to_string(max_units_);
        if (layer_key_ == "visible")
        {
            if (!visible_ok)
                throw ansatz::InputError(sizes +
                                         "layer: visible, but only binary or spin visible units can be "
                                         "enumerated");
            if (d > max_units_)
                throw ansatz::InputError(sizes + "enumerating the visible layer (" + std::to_string(d) +
                                         " units)" + limit);
            layer_ = ANSATZ_BLOCK_VISIBLE;
        }
        else if (layer_key_ == "hidden" || !visible_ok)
        {
            if (h > max_units_)
                throw ansatz::InputError(sizes + "enumerating the hidden layer (" + std::to_string(h) +
                                         " units)" + limit);
            layer_ = ANSATZ_BLOCK_HIDDEN;
        }
        else
        {
            const int64_t smaller = std::min(d, h);
            if (smaller > max_units_)
                throw ansatz::InputError(sizes + "enumerating the smaller layer (" + std::to_string(smaller) +
                                         " units)" + limit);
            layer_ = h <= d ? ANSATZ_BLOCK_HIDDEN : ANSATZ_BLOCK_VISIBLE;
        }
        units_ = layer_ == ANSATZ_BLOCK_HIDDEN ? h : d;
        other_ = layer_ == ANSATZ_BLOCK_HIDDEN ? d : h;
        planned_ = true;
        host_.info("evaluator '" + name_ + "' enumerates the " + std::to_string(units_) +
                   (layer_ == ANSATZ_BLOCK_HIDDEN ? " hidden" : " visible") + " units (" +
                   std::to_string(int64_t{ 1 } << units_) + " states)");
    }

    // log Z = logsumexp over every state of the chosen layer of -block_free_energy(layer, state).
    double log_partition()
    {
        const int64_t total = int64_t{ 1 } << units_;
        const int64_t rows = std::min(total, std::clamp(kBufferFloats / std::max<int64_t>(other_, 1),
                                                        int64_t{ 256 }, int64_t{ 65536 }));
        const float low = domain_ == ANSATZ_DOMAIN_SPIN ? -1.0f : 0.0f;
        states_.resize(static_cast<size_t>(rows * units_));
        state_free_.resize(static_cast<size_t>(rows));
        std::vector<double> partial;
        partial.reserve(static_cast<size_t>((total + rows - 1) / rows));
        for (int64_t first = 0; first < total; first += rows)
        {
            check_cancelled();
            const int64_t count = std::min(rows, total - first);
            fill_states(units_, first, count, low, 1.0f, states_.data());
            const ansatz_tensor states = ansatz::make_view(states_.data(), { count, units_ });
            ansatz_tensor f = ansatz::make_view(state_free_.data(), { count });
            model_.block_free_energy(layer_, states, f);
            for (int64_t r = 0; r < count; ++r)
                state_free_[static_cast<size_t>(r)] = -state_free_[static_cast<size_t>(r)];
            partial.push_back(ansatz::logsumexp(state_free_.data(), count));
        }
        return ansatz::logsumexp(partial.data(), static_cast<int64_t>(partial.size()));
    }

    void check_cancelled() const
    {
        if (host_.cancelled())
            throw ansatz::Error("evaluator '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
    }

    std::string name_;
    int64_t max_units_;
    std::string layer_key_;
    int64_t batch_;
    ansatz::Host host_;

    int32_t domain_ = ANSATZ_DOMAIN_BINARY;
    bool planned_ = false;
    ansatz_block layer_ = ANSATZ_BLOCK_HIDDEN;
    int64_t units_ = 0; // of the enumerated layer
    int64_t other_ = 0; // of the other layer
    std::vector<float> states_;
    std::vector<double> state_free_, free_;
};

} // namespace

ANSATZ_PLUGIN("exact_likelihood", "0.1.0", "MIT",
              ansatz::evaluator<ExactLikelihood>(
                  "exact_likelihood",
                  "exact log Z and log-likelihood by enumerating the smaller layer (up to 2^30 states)"))

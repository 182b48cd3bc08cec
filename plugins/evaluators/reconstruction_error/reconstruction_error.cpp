// The reconstruction error of the data, as the contrastive_divergence loss reports it:
//
//     h_n ~ p(h | v_n)    (one sampled hidden state per row)
//     r_n = (1/D) sum_i (v_ni - E[v_i | h_n])^2
//     reconstruction_error        = (1/N) sum_n r_n
//     reconstruction_error_stderr = s / sqrt(N),  s the sample standard deviation of the r_n
//
// Row n draws h_n from a stream of its own, the n-th of N streams split from the evaluate stream
// (ansatz::split), so the result does not depend on `batch`.
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

class ReconstructionError final : public ansatz::Evaluator
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_CONDITIONAL;

    static void describe(ansatz::Schema& s)
    {
        s.integer("batch", "rows per call of the model's conditionals (memory, not the result)")
            .default_value(1024)
            .min(1);
    }

    ReconstructionError(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), batch_(c.integer("batch")), host_(host)
    {
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has_conditionals())
            throw ansatz::InputError("it needs a model with block conditionals (function 'conditional')");
        model_ = model;
    }

    void evaluate(const ansatz_tensor& data, ansatz::Rng& rng, ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("evaluator '" + name_ + "' is used before bind()");
        ansatz::require_matrix(data, -1, -1, "reconstruction_error evaluate: data");
        const int64_t n = data.shape[0];
        const int64_t d = data.shape[1];
        if (n == 0)
            throw ansatz::InputError("the evaluated data has no rows");
        const int64_t hidden = model_.block_size(ANSATZ_BLOCK_HIDDEN);
        if (hidden < 0)
            throw ansatz::Error("evaluator '" + name_ + "': the model did not report its hidden block size");
        const ansatz::Streams streams = streams_.split_from(rng, n);
        const float* rows = ansatz::f32(data);
        MeanAndError error;
        for (int64_t first = 0; first < n; first += batch_)
        {
            if (host_.cancelled())
                throw ansatz::Error("evaluator '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
            const int64_t count = std::min(batch_, n - first);
            const ansatz_tensor v = ansatz::make_view(rows + first * d, { count, d });
            ansatz_tensor h_mean = h_mean_.view(count, hidden);
            ansatz_tensor h = h_sample_.view(count, hidden);
            ansatz_tensor v_mean = v_mean_.view(count, d);
            model_.conditional(ANSATZ_BLOCK_HIDDEN, v, h_mean, &h,
                               streams.subspan(static_cast<size_t>(first), static_cast<size_t>(count)));
            model_.conditional(ANSATZ_BLOCK_VISIBLE, h, v_mean, nullptr);
            const float* m = ansatz::f32(v_mean);
            for (int64_t r = 0; r < count; ++r)
            {
                double sum = 0;
                for (int64_t i = 0; i < d; ++i)
                {
                    const double e = static_cast<double>(rows[(first + r) * d + i]) - m[r * d + i];
                    sum += e * e;
                }
                error.add(sum / static_cast<double>(d));
            }
        }
        out.add("reconstruction_error", error.mean());
        out.add("reconstruction_error_stderr", error.standard_error());
    }

private:
    std::string name_;
    int64_t batch_;
    ansatz::Host host_;
    ansatz::StreamArray streams_;
    ansatz::Workspace h_mean_, h_sample_, v_mean_;
};

} // namespace

ANSATZ_PLUGIN("reconstruction_error", "0.1.0", "MIT",
              ansatz::evaluator<ReconstructionError>(
                  "reconstruction_error",
                  "mean squared difference between the data and E[v | h], h ~ p(h | v), per unit"))

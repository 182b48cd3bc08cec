// The mean free energy of the data under the model, and its standard error:
//
//     free_energy        = (1/N) sum_n F(v_n)
//     free_energy_stderr = s / sqrt(N),   s^2 = (1/(N-1)) sum_n (F(v_n) - free_energy)^2
//
// F comes from the model's free_energy, in batches of `batch` rows; the sums are in double.
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

class FreeEnergy final : public ansatz::Evaluator
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_FREE_ENERGY;

    static void describe(ansatz::Schema& s)
    {
        s.integer("batch", "rows per call of the model's free_energy (memory, not the result)")
            .default_value(1024)
            .min(1);
    }

    FreeEnergy(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), batch_(c.integer("batch")), host_(host)
    {
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has_energy())
            throw ansatz::InputError("it needs a model with a free energy (function 'free_energy')");
        model_ = model;
    }

    void evaluate(const ansatz_tensor& data, ansatz::Rng&, ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("evaluator '" + name_ + "' is used before bind()");
        ansatz::require_matrix(data, -1, -1, "free_energy evaluate: data");
        const int64_t n = data.shape[0];
        const int64_t d = data.shape[1];
        if (n == 0)
            throw ansatz::InputError("the evaluated data has no rows");
        const float* rows = ansatz::f32(data);
        MeanAndError f;
        for (int64_t first = 0; first < n; first += batch_)
        {
            if (host_.cancelled())
                throw ansatz::Error("evaluator '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
            const int64_t count = std::min(batch_, n - first);
            const ansatz_tensor v = ansatz::make_view(rows + first * d, { count, d });
            ansatz_tensor values = f_.vector(count);
            model_.free_energy(v, values);
            for (int64_t r = 0; r < count; ++r)
                f.add(ansatz::f32(values)[r]);
        }
        out.add("free_energy", f.mean());
        out.add("free_energy_stderr", f.standard_error());
    }

private:
    std::string name_;
    int64_t batch_;
    ansatz::Host host_;
    ansatz::Workspace f_;
};

} // namespace

ANSATZ_PLUGIN("free_energy", "0.1.0", "MIT",
              ansatz::evaluator<FreeEnergy>("free_energy",
                                            "mean free energy F(v) of the data under the model, with its "
                                            "standard error"))

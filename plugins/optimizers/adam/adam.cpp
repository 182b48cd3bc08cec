// Adam, AMSGrad and AdamW with the semantics of torch.optim.Adam / AdamW (torch's single-tensor path),
// step t counted from 1, per element in float32 with the bias corrections in double:
//     g = grad + weight_decay * theta                  (L2, as Adam; AdamW instead: theta *= 1 - lr * wd)
//     m = beta1 * m + (1 - beta1) * g
//     v = beta2 * v + (1 - beta2) * g * g
//     v_max = max(v_max, v)                            (amsgrad; v_max replaces v below)
//     denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//     theta += (-lr / (1 - beta1^t)) * m / denom
// lr is the scheduled rate at this step (ansatz/schedule.hpp). State: the step count ("step", int64),
// "exp_avg.<parameter>", "exp_avg_sq.<parameter>" and, with amsgrad, "max_exp_avg_sq.<parameter>".
#include <ansatz/parallel.hpp>
#include <ansatz/plugin.hpp>
#include <ansatz/schedule.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace
{

// The coefficients of one step, rounded to float32 as torch's kernels round their scalars.
struct Coefficients
{
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float weight_decay; // L2: g += weight_decay * theta
    float decay;        // decoupled: theta *= decay (1 - lr * weight_decay)
    float bias2_sqrt;   // sqrt(1 - beta2^t)
    float eps;
    float neg_step_size; // -lr / (1 - beta1^t)
};

// One parameter's update; plain loops over restrict pointers that GCC vectorises at -O3 (with
// -fno-math-errno for sqrt). The operations and their order are torch's: m.mul_(b1).add_(g, alpha),
// v.mul_(b2).addcmul_(g, g, value), (sqrt(v) / bc2_sqrt).add_(eps), theta.addcdiv_(m, denom, value).
template <bool L2, bool Decoupled, bool Amsgrad>
inline __attribute__((always_inline)) void update_body(float* __restrict theta, const float* __restrict grad,
                                                       float* __restrict m, float* __restrict v,
                                                       float* __restrict v_max, int64_t n,
                                                       const Coefficients& c)
{
    for (int64_t i = 0; i < n; ++i)
    {
        float g = grad[i];
        float p = theta[i];
        if constexpr (Decoupled)
            p = p * c.decay;
        if constexpr (L2)
            g = g + c.weight_decay * p;
        const float mi = m[i] * c.beta1 + c.one_minus_beta1 * g;
        const float vi = v[i] * c.beta2 + c.one_minus_beta2 * g * g;
        m[i] = mi;
        v[i] = vi;
        float second = vi;
        if constexpr (Amsgrad)
        {
            second = std::max(v_max[i], vi);
            v_max[i] = second;
        }
        const float denom = std::sqrt(second) / c.bias2_sqrt + c.eps;
        theta[i] = p + c.neg_step_size * mi / denom;
    }
}

// The same loop compiled for AVX2 (8 floats a vector) and chosen at run time on a CPU that has it. Without
// FMA: every operation is the same IEEE single-precision operation as in the portable build, so the
// results are bit for bit the same on either path; only the vector width differs.
template <bool L2, bool Decoupled, bool Amsgrad>
__attribute__((target("avx2"))) void update_avx2(float* __restrict theta, const float* __restrict grad,
                                                 float* __restrict m, float* __restrict v,
                                                 float* __restrict v_max, int64_t n, const Coefficients& c)
{
    update_body<L2, Decoupled, Amsgrad>(theta, grad, m, v, v_max, n, c);
}

template <bool L2, bool Decoupled, bool Amsgrad>
void update(float* __restrict theta, const float* __restrict grad, float* __restrict m, float* __restrict v,
            float* __restrict v_max, int64_t n, const Coefficients& c)
{
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2)
        update_avx2<L2, Decoupled, Amsgrad>(theta, grad, m, v, v_max, n, c);
    else
        update_body<L2, Decoupled, Amsgrad>(theta, grad, m, v, v_max, n, c);
}

class Adam final : public ansatz::Optimizer
{
public:
    static void describe(ansatz::Schema& s)
    {
        s.real("learning_rate", "step size (the base rate of the schedule)")
            .default_value(1e-3)
            .double_precision()
            .min(0, true);
        s.real("beta1", "decay rate of the gradient's running mean")
            .default_value(0.9)
            .double_precision()
            .min(0)
            .max(1, true);
        s.real("beta2", "decay rate of the squared gradient's running mean")
            .default_value(0.999)
            .double_precision()
            .min(0)
            .max(1, true);
        s.real("eps", "added to the denominator's square root")
            .default_value(1e-8)
            .double_precision()
            .min(0, true);
        s.real("weight_decay", "L2 penalty added to the gradient as weight_decay * theta (AdamW's decay when "
                               "decoupled_weight_decay)")
            .default_value(0.0)
            .double_precision()
            .min(0);
        s.boolean("decoupled_weight_decay", "AdamW: theta *= 1 - learning_rate * weight_decay instead of L2")
            .default_value(false);
        s.boolean("amsgrad", "AMSGrad: divide by the running maximum of the squared-gradient mean")
            .default_value(false);
        ansatz::describe_schedule(s);
    }

    Adam(const ansatz::Config& c, const ansatz::Host& host)
        : host_(host), schedule_(c, c.real("learning_rate")), beta1_(c.real("beta1")),
          beta2_(c.real("beta2")), eps_(c.real("eps")), weight_decay_(c.real("weight_decay")),
          decoupled_(c.boolean("decoupled_weight_decay")), amsgrad_(c.boolean("amsgrad")),
          team_(std::max(1, host.threads()))
    {
    }

    void bind(const ansatz_named_tensor* params, int32_t n) override
    {
        buffers_.assign(static_cast<size_t>(n), Buffers{});
        for (int32_t k = 0; k < n; ++k)
        {
            Buffers& b = buffers_[static_cast<size_t>(k)];
            const auto size = static_cast<size_t>(ansatz::element_count(params[k].tensor));
            b.exp_avg.assign(size, 0.0f);
            b.exp_avg_sq.assign(size, 0.0f);
            if (amsgrad_)
                b.max_exp_avg_sq.assign(size, 0.0f);
            b.names[0] = std::string("exp_avg.") + params[k].name;
            b.names[1] = std::string("exp_avg_sq.") + params[k].name;
            b.names[2] = std::string("max_exp_avg_sq.") + params[k].name;
        }
        step_ = 0;
    }

    void step(ansatz_named_tensor* params, const ansatz_tensor* grads, int32_t n) override
    {
        if (static_cast<size_t>(n) != buffers_.size())
            throw ansatz::Error("adam: step() got " + std::to_string(n) + " parameters, bind() " +
                                std::to_string(buffers_.size()));
        ++step_;
        const double lr = schedule_.learning_rate(host_.progress());
        const double t = static_cast<double>(step_);
        const double bias1 = 1 - std::pow(beta1_, t);
        const double bias2 = 1 - std::pow(beta2_, t);
        const Coefficients c{
            static_cast<float>(beta1_),           static_cast<float>(1 - beta1_),
            static_cast<float>(beta2_),           static_cast<float>(1 - beta2_),
            static_cast<float>(weight_decay_),    static_cast<float>(1 - lr * weight_decay_),
            static_cast<float>(std::sqrt(bias2)), static_cast<float>(eps_),
            static_cast<float>(-(lr / bias1))
        };
        const bool l2 = weight_decay_ != 0 && !decoupled_;
        const bool decoupled = weight_decay_ != 0 && decoupled_;
        // Each parameter's elements in chunks, the chunks over the host's thread budget: the update is
        // element-wise, so the values do not depend on how it is cut (or on the thread count).
        chunks_.clear();
        for (int32_t k = 0; k < n; ++k)
        {
            const int64_t size = ansatz::element_count(params[k].tensor);
            if (ansatz::element_count(grads[k]) != size ||
                static_cast<size_t>(size) != buffers_[static_cast<size_t>(k)].exp_avg.size())
                throw ansatz::Error(std::string("adam: gradient or parameter '") + params[k].name +
                                    "' has another size than bind() saw");
            for (int64_t first = 0; first < size; first += chunk_size)
                chunks_.push_back({ k, first, std::min(size, first + chunk_size) });
        }
        const auto update_chunk = [&](size_t index) {
            const Chunk& ch = chunks_[index];
            Buffers& b = buffers_[static_cast<size_t>(ch.k)];
            float* theta = ansatz::f32(params[ch.k].tensor) + ch.first;
            const float* g = ansatz::f32(grads[ch.k]) + ch.first;
            float* m = b.exp_avg.data() + ch.first;
            float* v = b.exp_avg_sq.data() + ch.first;
            float* v_max = amsgrad_ ? b.max_exp_avg_sq.data() + ch.first : nullptr;
            const int64_t size = ch.end - ch.first;
            if (amsgrad_)
                dispatch<true>(l2, decoupled, theta, g, m, v, v_max, size, c);
            else
                dispatch<false>(l2, decoupled, theta, g, m, v, v_max, size, c);
        };
        // A part per thread (ThreadTeam::run runs at most that many), each an even share of the chunks;
        // a model of fewer than 4 chunks stays on the caller.
        const int64_t count = static_cast<int64_t>(chunks_.size());
        const int parts = count < 4 ? 1 : team_.size();
        auto run = [&](int part) {
            const auto [first, end] = ansatz::ThreadTeam::range(count, part, parts);
            for (int64_t i = first; i < end; ++i)
                update_chunk(static_cast<size_t>(i));
        };
        team_.run(parts, run);
        // The next step is a whole batch away: the model's team needs the cores until then
        // (ansatz/parallel.hpp, rest()).
        team_.rest();
    }

    std::vector<ansatz_named_tensor> state()
    {
        std::vector<ansatz_named_tensor> out{ { "step", ansatz::make_view(&step_, { 1 }) } };
        for (Buffers& b : buffers_)
        {
            const int64_t size = static_cast<int64_t>(b.exp_avg.size());
            out.push_back({ b.names[0].c_str(), ansatz::make_view(b.exp_avg.data(), { size }) });
            out.push_back({ b.names[1].c_str(), ansatz::make_view(b.exp_avg_sq.data(), { size }) });
            if (amsgrad_)
                out.push_back({ b.names[2].c_str(), ansatz::make_view(b.max_exp_avg_sq.data(), { size }) });
        }
        return out;
    }

    void set_state(const ansatz::StateIn& in)
    {
        const int64_t step = *in.get<int64_t>("step", { 1 });
        if (step < 0)
            throw ansatz::InputError("the saved state's step count is " + std::to_string(step) + ", below 0");
        for (Buffers& b : buffers_)
        {
            const int64_t size = static_cast<int64_t>(b.exp_avg.size());
            std::copy_n(in.get<float>(b.names[0].c_str(), { size }), size, b.exp_avg.data());
            std::copy_n(in.get<float>(b.names[1].c_str(), { size }), size, b.exp_avg_sq.data());
            if (amsgrad_)
                std::copy_n(in.get<float>(b.names[2].c_str(), { size }), size, b.max_exp_avg_sq.data());
        }
        step_ = step;
    }

private:
    struct Buffers
    {
        std::vector<float> exp_avg, exp_avg_sq, max_exp_avg_sq;
        std::string names[3]; // the state's names: exp_avg., exp_avg_sq., max_exp_avg_sq. + parameter
    };

    template <bool Amsgrad>
    static void dispatch(bool l2, bool decoupled, float* theta, const float* g, float* m, float* v,
                         float* v_max, int64_t size, const Coefficients& c)
    {
        if (l2)
            update<true, false, Amsgrad>(theta, g, m, v, v_max, size, c);
        else if (decoupled)
            update<false, true, Amsgrad>(theta, g, m, v, v_max, size, c);
        else
            update<false, false, Amsgrad>(theta, g, m, v, v_max, size, c);
    }

    ansatz::Host host_;
    ansatz::Schedule schedule_;
    double beta1_, beta2_, eps_, weight_decay_;
    bool decoupled_, amsgrad_;
    int64_t step_ = 0;
    std::vector<Buffers> buffers_;
    // The step's work: [first, end) of parameter k, at most chunk_size elements each.
    struct Chunk
    {
        int32_t k;
        int64_t first, end;
    };
    static constexpr int64_t chunk_size = 1 << 16;
    std::vector<Chunk> chunks_;
    ansatz::ThreadTeam team_;
};

} // namespace

ANSATZ_PLUGIN("adam", "0.1.0", "MIT",
              ansatz::optimizer<Adam>("adam",
                                      "Adam, AMSGrad and AdamW (torch.optim semantics) with a schedule"))

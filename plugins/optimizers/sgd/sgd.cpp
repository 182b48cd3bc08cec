// Stochastic gradient descent with momentum, Nesterov momentum and weight decay, as torch.optim.SGD:
//     g = grad + weight_decay * theta
//     buf = momentum * buf + (1 - dampening) * g      (buf = g on the first step)
//     theta -= lr * (nesterov ? g + momentum * buf : buf)
// lr is the scheduled rate at this step (ansatz/schedule.hpp).
// State: the momentum buffers ("momentum.<parameter>") and the first-step flag ("first_step").
#include <ansatz/parallel.hpp>
#include <ansatz/plugin.hpp>
#include <ansatz/schedule.hpp>

#include <algorithm>
#include <vector>

namespace
{

class Sgd final : public ansatz::Optimizer
{
public:
    static void describe(ansatz::Schema& s)
    {
        s.real("learning_rate", "step size").default_value(0.01).min(0, true);
        s.real("momentum", "heavy-ball momentum factor").default_value(0.0).min(0).max(1, true);
        s.real("dampening", "fraction of the gradient kept out of the momentum buffer")
            .default_value(0.0)
            .min(0)
            .max(1);
        s.real("weight_decay", "L2 penalty added to the gradient as weight_decay * theta")
            .default_value(0.0)
            .min(0);
        s.boolean("nesterov", "use Nesterov momentum (needs momentum > 0 and dampening 0)")
            .default_value(false);
        ansatz::describe_schedule(s);
    }

    Sgd(const ansatz::Config& c, const ansatz::Host& host)
        : host_(host), schedule_(c, c.real("learning_rate")),
          momentum_(static_cast<float>(c.real("momentum"))),
          dampening_(static_cast<float>(c.real("dampening"))),
          weight_decay_(static_cast<float>(c.real("weight_decay"))), nesterov_(c.boolean("nesterov"))
    {
        if (nesterov_ && (momentum_ <= 0 || dampening_ != 0))
            throw ansatz::InputError("nesterov needs momentum > 0 and dampening 0");
    }

    void bind(const ansatz_named_tensor* params, int32_t n) override
    {
        buffers_.clear();
        names_.clear();
        for (int32_t k = 0; k < n; ++k)
        {
            buffers_.emplace_back(static_cast<size_t>(ansatz::element_count(params[k].tensor)), 0.0f);
            names_.push_back(std::string("momentum.") + params[k].name);
        }
        first_ = true;
    }

    void step(ansatz_named_tensor* params, const ansatz_tensor* grads, int32_t n) override
    {
        if (static_cast<size_t>(n) != buffers_.size())
            throw ansatz::Error("sgd: step() got " + std::to_string(n) + " parameters, bind() " +
                                std::to_string(buffers_.size()));
        const auto lr = static_cast<float>(schedule_.learning_rate(host_.progress()));
        for (int32_t k = 0; k < n; ++k)
        {
            float* theta = ansatz::f32(params[k].tensor);
            const float* g = ansatz::f32(grads[k]);
            float* buf = buffers_[static_cast<size_t>(k)].data();
            const int64_t size = ansatz::element_count(params[k].tensor);
            if (ansatz::element_count(grads[k]) != size)
                throw ansatz::Error(std::string("sgd: gradient of '") + params[k].name +
                                    "' has the wrong size");
            // The settings as locals, and plain SGD as a loop of its own: a member read through `this`
            // inside the loop could alias theta (both are floats), which kept the loop scalar. The
            // elements are split over the thread budget: the update is bound by memory, and the other
            // cores would otherwise wait for it.
            const float weight_decay = weight_decay_, momentum = momentum_, keep = 1 - dampening_;
            const bool first = first_, nesterov = nesterov_;
            ansatz::ThreadTeam& team = this->team();
            const int parts = team.parts_for(size, 32768);
            team.run(parts, [&](int part) {
                const auto [begin, end] = ansatz::ThreadTeam::range(size, part, parts, 16);
                if (momentum == 0)
                    for (int64_t i = begin; i < end; ++i)
                        theta[i] -= lr * (g[i] + weight_decay * theta[i]);
                else
                    for (int64_t i = begin; i < end; ++i)
                    {
                        float d = g[i] + weight_decay * theta[i];
                        buf[i] = first ? d : momentum * buf[i] + keep * d;
                        d = nesterov ? d + momentum * buf[i] : buf[i];
                        theta[i] -= lr * d;
                    }
            });
        }
        // The next step is a whole batch away: the model's team needs the cores until then.
        team().rest();
        first_ = false;
    }

    std::vector<ansatz_named_tensor> state()
    {
        first_flag_ = first_ ? 1 : 0;
        std::vector<ansatz_named_tensor> out{ { "first_step", ansatz::make_view(&first_flag_, { 1 }) } };
        if (momentum_ == 0)
            return out;
        for (size_t k = 0; k < buffers_.size(); ++k)
            out.push_back(
                { names_[k].c_str(),
                  ansatz::make_view(buffers_[k].data(), { static_cast<int64_t>(buffers_[k].size()) }) });
        return out;
    }

    void set_state(const ansatz::StateIn& in)
    {
        first_ = *in.get<int64_t>("first_step", { 1 }) != 0;
        if (momentum_ == 0)
            return;
        for (size_t k = 0; k < buffers_.size(); ++k)
        {
            const float* saved =
                in.get<float>(names_[k].c_str(), { static_cast<int64_t>(buffers_[k].size()) });
            std::copy_n(saved, buffers_[k].size(), buffers_[k].data());
        }
    }

private:
    // The threads of the host's budget, started on first use.
    ansatz::ThreadTeam& team()
    {
        if (team_.size() != host_.threads())
            team_.resize(host_.threads());
        return team_;
    }

    ansatz::Host host_;
    ansatz::Schedule schedule_;
    float momentum_, dampening_, weight_decay_;
    bool nesterov_;
    bool first_ = true;
    int64_t first_flag_ = 1; // first_ as state() shows it
    std::vector<std::vector<float>> buffers_;
    ansatz::ThreadTeam team_;
    std::vector<std::string> names_;
};

} // namespace

ANSATZ_PLUGIN("sgd", "0.1.0", "MIT",
              ansatz::optimizer<Sgd>("sgd", "stochastic gradient descent with momentum and weight decay"))

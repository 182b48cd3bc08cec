// ansatz/schedule.hpp -- a learning-rate schedule over a train stage, shared by the optimizers.
//
// Header-only, no dependency beyond the author layer. An optimizer declares the keys and builds the
// schedule from its Config, then asks it for the rate at every step:
//
//     static void describe(ansatz::Schema& s)
//     {
//         s.real("learning_rate", "base step size").default_value(0.01).min(0, true);
//         ansatz::describe_schedule(s);
//     }
//     MyOptimizer(const ansatz::Config& c, const ansatz::Host& host)
//         : host_(host), schedule_(c, c.real("learning_rate")) {}
//     void step(...) { const double lr = schedule_.learning_rate(host_.progress()); ... }
//
// WHAT THIS OBJECT REPRESENTS
//   The learning rate as a pure function of where the train stage is (ansatz_progress: epoch,
//   epochs, step, steps_per_epoch), so it needs no state of its own and a resumed run gets the same
//   rates. It follows torch.optim.lr_scheduler with the scheduler stepped once per epoch (after the
//   epoch), or once per batch with `schedule_per: batch`. With t the schedule's time in epochs (the
//   epochs done before this step: `epoch - 1`; with `schedule_per: batch`, `step / steps_per_epoch`,
//   fractional) and T the stage's epochs:
//     constant     lr                                                      (no scheduler)
//     step         lr * gamma^floor(floor(t) / step_size)                  (StepLR)
//     exponential  lr * gamma^t                                            (ExponentialLR)
//     cosine       eta + (lr - eta) * (1 + cos(pi * t / T)) / 2            (CosineAnnealingLR, T_max = T)
//   times a linear warm-up when warmup_epochs W > 0:
//     s + (1 - s) * min(t, W) / W                                          (LinearLR, start_factor s,
//                                                                           total_iters W)
//   The product is torch's ChainedScheduler(LinearLR, ...) whenever the second scheduler is
//   multiplicative (step, exponential, cosine with eta = min_learning_rate = 0).
// requires: a validated Config of an optimizer whose describe() called describe_schedule().
// throws:   InputError from the constructor for keys that contradict each other (one sentence each).
#pragma once

#include "ansatz/abi.h"
#include "ansatz/error.hpp"
#include "ansatz/schema.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace ansatz
{

// Declares the schedule's keys (same names in every optimizer that has a schedule).
inline void describe_schedule(Schema& s)
{
    s.choice("schedule", "constant|step|exponential|cosine",
             "learning-rate schedule over the train stage (torch StepLR, ExponentialLR, CosineAnnealingLR)")
        .default_value("constant");
    s.choice("schedule_per", "epoch|batch",
             "when the scheduled rate changes: between epochs, or at every batch (time in fractional epochs)")
        .default_value("epoch");
    s.integer("step_size", "schedule: step: epochs between two multiplications by gamma (required)")
        .optional()
        .min(1);
    s.real("gamma",
           "schedule: step: the factor every step_size epochs (default 0.1); exponential: the factor per "
           "epoch (required)")
        .optional()
        .double_precision()
        .min(0, true);
    s.real(
         "min_learning_rate",
         "schedule: cosine: the floor the rate falls to at the end of the stage (torch's eta_min; default 0)")
        .optional()
        .double_precision()
        .min(0);
    s.real("warmup_epochs", "linear warm-up over the first N epochs (torch LinearLR; a fraction needs "
                            "schedule_per: batch)")
        .default_value(0.0)
        .double_precision()
        .min(0)
        .max(1e9);
    s.real("warmup_start_factor", "the warm-up's first factor of the rate (torch LinearLR's start_factor; "
                                  "default 1/3)")
        .optional()
        .double_precision()
        .min(0)
        .max(1);
}

class Schedule
{
public:
    enum class Kind
    {
        constant,
        step,
        exponential,
        cosine
    };

    // A constant rate (what an optimizer without schedule keys has).
    explicit Schedule(double learning_rate = 0) : lr_(learning_rate) {}

    // Reads the keys of describe_schedule(); `learning_rate` is the base rate (the optimizer's key).
    Schedule(const Config& c, double learning_rate) : lr_(learning_rate)
    {
        const std::string kind = c.string("schedule");
        kind_ = kind == "step"          ? Kind::step
                : kind == "exponential" ? Kind::exponential
                : kind == "cosine"      ? Kind::cosine
                                        : Kind::constant;
        per_batch_ = c.string("schedule_per") == "batch";
        const auto only_for = [&](const char* key, const char* schedules) {
            return InputError(std::string(key) + " applies only to " + schedules + " (the schedule is '" +
                              kind + "')");
        };
        if (c.has("step_size") && kind_ != Kind::step)
            throw only_for("step_size", "schedule: step");
        if (c.has("gamma") && kind_ != Kind::step && kind_ != Kind::exponential)
            throw only_for("gamma", "schedule: step or exponential");
        if (c.has("min_learning_rate") && kind_ != Kind::cosine)
            throw only_for("min_learning_rate", "schedule: cosine");
        if (kind_ == Kind::step && !c.has("step_size"))
            throw InputError(
                "schedule: step needs step_size (the epochs between two multiplications by gamma)");
        if (kind_ == Kind::exponential && !c.has("gamma"))
            throw InputError("schedule: exponential needs gamma (the factor per epoch)");
        step_size_ = c.has("step_size") ? c.integer("step_size") : 1;
        gamma_ = c.has("gamma") ? c.real("gamma") : 0.1;
        min_lr_ = c.has("min_learning_rate") ? c.real("min_learning_rate") : 0.0;
        if (min_lr_ > lr_)
            throw InputError("min_learning_rate " + number(min_lr_) + " is above learning_rate " +
                             number(lr_) +
                             "; the cosine schedule falls from learning_rate to min_learning_rate");
        warmup_ = c.real("warmup_epochs");
        if (c.has("warmup_start_factor") && warmup_ == 0)
            throw InputError("warmup_start_factor applies only with warmup_epochs > 0");
        start_factor_ = c.has("warmup_start_factor") ? c.real("warmup_start_factor") : 1.0 / 3.0;
        if (!per_batch_ && warmup_ != std::floor(warmup_))
            throw InputError(
                "warmup_epochs " + number(warmup_) +
                " is not a whole number of epochs, and with schedule_per: epoch the rate changes "
                "only between epochs; use schedule_per: batch for a fractional warm-up");
    }

    Kind kind() const { return kind_; }
    bool per_batch() const { return per_batch_; }
    double base_learning_rate() const { return lr_; }

    // The schedule's time in epochs at this step: the epochs done before it, fractional per batch
    // (0 where the host does not say: outside a train stage, or a host without progress).
    double time(const ansatz_progress& p) const
    {
        if (per_batch_ && p.steps_per_epoch > 0)
            return static_cast<double>(std::max<int64_t>(p.step, 0)) / static_cast<double>(p.steps_per_epoch);
        return static_cast<double>(whole_epochs(p));
    }

    // The learning rate for the step about to be taken.
    double learning_rate(const ansatz_progress& p) const
    {
        if (kind_ == Kind::constant && warmup_ == 0)
            return lr_;
        const double t = time(p);
        double rate = lr_;
        switch (kind_)
        {
        case Kind::constant:
            break;
        case Kind::step:
            rate = lr_ * std::pow(gamma_, static_cast<double>(whole_epochs(p) / step_size_));
            break;
        case Kind::exponential:
            rate = lr_ * std::pow(gamma_, t);
            break;
        case Kind::cosine:
        {
            const double T = static_cast<double>(p.epochs);
            const double u = T > 0 ? std::min(t, T) / T : 0.0;
            rate = min_lr_ + (lr_ - min_lr_) * (1 + std::cos(pi * u)) / 2;
            break;
        }
        }
        if (warmup_ > 0)
            rate *= start_factor_ + (1 - start_factor_) * std::min(t, warmup_) / warmup_;
        return rate;
    }

private:
    static constexpr double pi = 3.141592653589793238462643383279502884;

    // Whole epochs done before this step (the one clock of schedule: step, per epoch or per batch).
    int64_t whole_epochs(const ansatz_progress& p) const
    {
        if (per_batch_ && p.steps_per_epoch > 0)
            return std::max<int64_t>(p.step, 0) / p.steps_per_epoch;
        return p.epoch >= 1 ? p.epoch - 1 : 0;
    }
    // The shortest spelling that reads back as v (0.1, not 0.10000000000000001).
    static std::string number(double v)
    {
        char buffer[64];
        for (int precision = 1; precision <= 17; ++precision)
        {
            std::snprintf(buffer, sizeof buffer, "%.*g", precision, v);
            if (std::strtod(buffer, nullptr) == v)
                break;
        }
        return buffer;
    }

    double lr_;
    Kind kind_ = Kind::constant;
    bool per_batch_ = false;
    int64_t step_size_ = 1;
    double gamma_ = 0.1;
    double min_lr_ = 0;
    double warmup_ = 0;
    double start_factor_ = 1.0 / 3.0;
};

} // namespace ansatz

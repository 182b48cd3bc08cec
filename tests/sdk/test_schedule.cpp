// ansatz/schedule.hpp against torch.optim.lr_scheduler (torch 1.13.1, Debian's python3-torch): the
// rate every step uses, made by this script with `/usr/bin/python3 sched_ref.py`:
//
//     import torch
//     from torch.optim import lr_scheduler as L
//     def rates(make, steps, lr=0.1):
//         opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
//         s = make(opt)
//         out = []
//         for _ in range(steps):
//             out.append(opt.param_groups[0]["lr"])
//             opt.step()
//             s.step()
//         return ", ".join("%.17g" % r for r in out)
//     print(rates(lambda o: L.StepLR(o, step_size=2, gamma=0.5), 6))
//     print(rates(lambda o: L.ExponentialLR(o, gamma=0.8), 5))
//     print(rates(lambda o: L.CosineAnnealingLR(o, T_max=5, eta_min=0.01), 5))
//     print(rates(lambda o: L.LinearLR(o, total_iters=3), 5))
//     print(rates(lambda o: L.ChainedScheduler([L.LinearLR(o, start_factor=0.1, total_iters=2),
//                                               L.CosineAnnealingLR(o, T_max=6)]), 6))
//     # per batch, 4 batches an epoch: warm-up 0.5 epochs = 2 batches, T_max = 2 epochs = 8 batches
//     print(rates(lambda o: L.ChainedScheduler([L.LinearLR(o, start_factor=0.2, total_iters=2),
//                                               L.CosineAnnealingLR(o, T_max=8)]), 8))
//     print(rates(lambda o: L.ExponentialLR(o, gamma=0.5 ** 0.25), 8))  # per batch, 4 an epoch
//     print(rates(lambda o: L.StepLR(o, step_size=3, gamma=0.1), 9))    # per batch, 3 an epoch
//
// torch steps its schedulers by recurrences (lr *= gamma, the cosine's ratio of consecutive terms);
// the schedule computes the closed forms, so the two agree to rounding: 1e-12 relative.
#include "ansatz/schedule.hpp"
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace
{

// The schedule of an sgd optimizer configured by `yaml`, through the plugin's own validated schema
// (adam declares the same keys with the same function).
ansatz::Schedule schedule_of(const std::string& yaml)
{
    const ansatz::engine::PluginComponent* sgd = ansatz::test::in_tree_plugins().find("sgd");
    REQUIRE(sgd != nullptr);
    ansatz::engine::ConfigValues values = ansatz::engine::config_from_yaml(*sgd->desc, yaml);
    const ansatz::Config config(values.c("sgd"));
    return ansatz::Schedule(config, config.real("learning_rate"));
}

ansatz_progress at(int64_t epoch, int64_t epochs, int64_t step, int64_t steps_per_epoch)
{
    ansatz_progress p{};
    p.struct_size = sizeof p;
    p.stage = 1;
    p.epoch = epoch;
    p.epochs = epochs;
    p.step = step;
    p.steps_per_epoch = steps_per_epoch;
    return p;
}

// Per epoch: epoch e of `want.size()` uses want[e - 1], at its first, middle and last batch alike.
void check_per_epoch(const std::string& yaml, const std::vector<double>& want)
{
    const ansatz::Schedule s = schedule_of(yaml);
    const auto epochs = static_cast<int64_t>(want.size());
    const int64_t batches = 5;
    for (int64_t e = 1; e <= epochs; ++e)
        for (int64_t b : { 0, 2, 4 })
        {
            INFO(yaml << ", epoch " << e << ", batch " << b);
            CHECK(s.learning_rate(at(e, epochs, (e - 1) * batches + b, batches)) ==
                  Approx(want[static_cast<size_t>(e - 1)]).epsilon(1e-12));
        }
}

// Per batch: batch k (0-based, over the stage) uses want[k].
void check_per_batch(const std::string& yaml, int64_t batches, const std::vector<double>& want)
{
    const ansatz::Schedule s = schedule_of(yaml);
    const auto steps = static_cast<int64_t>(want.size());
    for (int64_t k = 0; k < steps; ++k)
    {
        INFO(yaml << ", batch " << k);
        CHECK(s.learning_rate(at(k / batches + 1, steps / batches, k, batches)) ==
              Approx(want[static_cast<size_t>(k)]).epsilon(1e-12));
    }
}

} // namespace

TEST_CASE("schedule: step, exponential and cosine per epoch match StepLR, ExponentialLR, CosineAnnealingLR",
          "[sdk][schedule]")
{
    check_per_epoch("{learning_rate: 0.1, schedule: step, step_size: 2, gamma: 0.5}",
                    { 0.10000000000000001, 0.10000000000000001, 0.050000000000000003, 0.050000000000000003,
                      0.025000000000000001, 0.025000000000000001 });
    check_per_epoch("{learning_rate: 0.1, schedule: exponential, gamma: 0.8}",
                    { 0.10000000000000001, 0.080000000000000016, 0.064000000000000015, 0.051200000000000016,
                      0.040960000000000017 });
    check_per_epoch("{learning_rate: 0.1, schedule: cosine, min_learning_rate: 0.01}",
                    { 0.10000000000000001, 0.091405764746872634, 0.068905764746872628, 0.041094235253127359,
                      0.018594235253127367 });
    // StepLR's default gamma, 0.1, when only step_size is given.
    check_per_epoch("{learning_rate: 0.1, schedule: step, step_size: 1}", { 0.1, 0.01, 0.001 });
}

TEST_CASE("schedule: a warm-up per epoch matches LinearLR, alone and chained with a cosine",
          "[sdk][schedule]")
{
    // The default start factor is LinearLR's, 1/3.
    check_per_epoch("{learning_rate: 0.1, warmup_epochs: 3}",
                    { 0.033333333333333333, 0.055555555555555559, 0.077777777777777779, 0.10000000000000001,
                      0.10000000000000001 });
    check_per_epoch("{learning_rate: 0.1, schedule: cosine, warmup_epochs: 2, warmup_start_factor: 0.1}",
                    { 0.010000000000000002, 0.051315698604072077, 0.075000000000000011, 0.050000000000000003,
                      0.025000000000000012, 0.006698729810778065 });
}

TEST_CASE("schedule: per batch, the schedules match torch's stepped every batch", "[sdk][schedule]")
{
    check_per_batch("{learning_rate: 0.1, schedule: cosine, schedule_per: batch, warmup_epochs: 0.5, "
                    "warmup_start_factor: 0.2}",
                    4,
                    { 0.020000000000000004, 0.05771638597533861, 0.085355339059327379, 0.069134171618254497,
                      0.050000000000000003, 0.030865828381745515, 0.014644660940672627,
                      0.0038060233744356634 });
    check_per_batch("{learning_rate: 0.1, schedule: exponential, gamma: 0.5, schedule_per: batch}", 4,
                    { 0.10000000000000001, 0.084089641525371461, 0.070710678118654752, 0.05946035575013605,
                      0.049999999999999996, 0.042044820762685724, 0.035355339059327369,
                      0.029730177875068018 });
    // StepLR with step_size = 1 epoch = 3 batches: the rate changes only at epoch boundaries.
    check_per_batch("{learning_rate: 0.1, schedule: step, step_size: 1, gamma: 0.1, schedule_per: batch}", 3,
                    { 0.10000000000000001, 0.10000000000000001, 0.10000000000000001, 0.010000000000000002,
                      0.010000000000000002, 0.010000000000000002, 0.0010000000000000002,
                      0.0010000000000000002, 0.0010000000000000002 });
}

TEST_CASE("schedule: the rate is a pure function of progress, and the constant schedule is the base rate",
          "[sdk][schedule]")
{
    const ansatz::Schedule constant = schedule_of("{learning_rate: 0.25}");
    CHECK(constant.learning_rate(at(7, 9, 123, 20)) == 0.25);
    CHECK(constant.learning_rate(ansatz_progress{}) == 0.25);

    // The same progress gives the same rate, whatever was asked before (no state: a resume is exact).
    const ansatz::Schedule cosine =
        schedule_of("{learning_rate: 0.1, schedule: cosine, schedule_per: batch, warmup_epochs: 1.5}");
    const double first = cosine.learning_rate(at(3, 4, 37, 16));
    for (int64_t k = 0; k < 64; ++k)
        (void)cosine.learning_rate(at(k / 16 + 1, 4, k, 16));
    CHECK(cosine.learning_rate(at(3, 4, 37, 16)) == first);
    CHECK(cosine.time(at(3, 4, 37, 16)) == Approx(37.0 / 16));

    // Outside a train stage (progress zeros) a schedule is at its start: the warm-up's first factor.
    CHECK(cosine.learning_rate(ansatz_progress{}) == Approx(0.1 / 3).epsilon(1e-15));
}

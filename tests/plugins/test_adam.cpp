// The adam optimizer against torch.optim.Adam and AdamW (torch 1.13.1, Debian's python3-torch): four
// steps from theta = (1, -2, 0.5, 0) with the gradients below, the numbers made by this script with
// `ATEN_CPU_CAPABILITY=default /usr/bin/python3 adam_ref.py`:
//
//     import torch
//     theta0 = [1.0, -2.0, 0.5, 0.0]
//     grads = [[0.5, 0.1, -0.3, 2.0], [-0.2, 0.4, 0.0, 1.0], [0.3, -0.6, 0.2, 0.5], [0.1, 0.2, -0.1, 0.25]]
//     def show(name, t):
//         print(name, ", ".join("%.9gf" % x for x in t.tolist()))
//     def run(cls, scheds=None, **kw):
//         p = torch.nn.Parameter(torch.tensor(theta0))
//         opt = cls([p], **kw)
//         s = scheds(opt) if scheds else None
//         for g in grads:
//             p.grad = torch.tensor(g)
//             opt.step()
//             if s:
//                 s.step()
//         show("theta", p.detach())
//         for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
//             if key in opt.state[p]:
//                 show(key, opt.state[p][key])
//     run(torch.optim.Adam, lr=0.1, weight_decay=0.01)                                           # A
//     run(torch.optim.Adam, lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.02, amsgrad=True)  # B
//     run(torch.optim.AdamW, lr=0.01, weight_decay=0.1)                                          # C
//     run(torch.optim.Adam, lr=0.1, scheds=lambda o: torch.optim.lr_scheduler.ChainedScheduler(  # D
//         [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=2),
//          torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4)]))
//
// ATEN_CPU_CAPABILITY=default makes torch use its plain (not FMA-fused) kernels, which is what the
// plugin's float32 operations compute: on a default x86-64 build the results are bit-equal. The
// tolerance, 1e-6 relative, admits a build whose compiler fuses multiply-adds (-march=native
// -ffp-contract=fast), a few float32 ulps apart; a wrong formula (bias correction, order of the
// decay, the AMSGrad maximum) is off by far more.
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace
{

const std::vector<float> theta0 = { 1.0f, -2.0f, 0.5f, 0.0f };
const std::vector<std::vector<float>> gradients = { { 0.5f, 0.1f, -0.3f, 2.0f },
                                                    { -0.2f, 0.4f, 0.0f, 1.0f },
                                                    { 0.3f, -0.6f, 0.2f, 0.5f },
                                                    { 0.1f, 0.2f, -0.1f, 0.25f } };

struct Run
{
    ansatz::engine::HostServices host{ 1234, 1 };
    std::unique_ptr<ansatz::engine::Instance> inst;
    std::vector<float> theta;
    std::vector<ansatz_named_tensor> params;

    explicit Run(const std::string& yaml, std::vector<float> start = theta0, int threads = 1)
        : host(1234, threads), inst(ansatz::test::make("adam", yaml, &host)), theta(std::move(start))
    {
        params.push_back(
            { "theta", ansatz::make_view(theta.data(), { static_cast<int64_t>(theta.size()) }) });
        ansatz_status st{};
        REQUIRE(inst->optimizer().bind(inst->self(), params.data(), 1, &st) == ANSATZ_STATUS_OK);
    }
    void step(std::vector<float> g)
    {
        ansatz_tensor gt = ansatz::make_view(g.data(), { static_cast<int64_t>(g.size()) });
        ansatz_status st{};
        REQUIRE(inst->optimizer().step(inst->self(), params.data(), &gt, 1, &st) == ANSATZ_STATUS_OK);
    }
    void four_steps()
    {
        for (const std::vector<float>& g : gradients)
            step(g);
    }
    // The state piece `name` as floats.
    std::vector<float> piece(const std::string& name) const
    {
        for (const ansatz_named_tensor& p : inst->state())
            if (name == p.name)
            {
                const float* f = ansatz::f32(p.tensor);
                return std::vector<float>(f, f + ansatz::element_count(p.tensor));
            }
        FAIL("no state piece " << name);
        return {};
    }
};

void check_close(const std::vector<float>& got, const std::vector<float>& want)
{
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i)
    {
        INFO("element " << i);
        CHECK(got[i] == Approx(want[i]).epsilon(1e-6).margin(1e-12));
    }
}

} // namespace

TEST_CASE("adam: four steps with L2 weight decay match torch.optim.Adam", "[adam]")
{
    Run r("{learning_rate: 0.1, weight_decay: 0.01}");
    r.four_steps();
    check_close(r.theta, { 0.751990378f, -2.16657162f, 0.688621044f, -0.352261335f });
    check_close(r.piece("exp_avg.theta"), { 0.0602922365f, -0.00160479173f, -0.0117503181f, 0.296267658f });
    check_close(r.piece("exp_avg_sq.theta"),
                { 0.000402567675f, 0.000567864568f, 0.000138168063f, 0.00529296277f });

    // The state: the step count first, then the two moments; no AMSGrad maximum without amsgrad.
    const std::vector<ansatz_named_tensor> state = r.inst->state();
    REQUIRE(state.size() == 3);
    CHECK(std::string(state[0].name) == "step");
    CHECK(*ansatz::data<int64_t>(state[0].tensor) == 4);
    CHECK(std::string(state[1].name) == "exp_avg.theta");
    CHECK(std::string(state[2].name) == "exp_avg_sq.theta");
}

TEST_CASE("adam: four AMSGrad steps with other betas, eps and weight decay match torch.optim.Adam", "[adam]")
{
    Run r("{learning_rate: 0.05, beta1: 0.8, beta2: 0.9, eps: 1e-6, weight_decay: 0.02, amsgrad: true}");
    r.four_steps();
    check_close(r.theta, { 0.876202047f, -2.07415318f, 0.581355989f, -0.170777455f });
    check_close(r.piece("exp_avg.theta"), { 0.104681171f, -0.018914111f, -0.0121318791f, 0.461815685f });
    check_close(r.piece("exp_avg_sq.theta"), { 0.0328989178f, 0.0502902679f, 0.0109527577f, 0.400878668f });
    // The running maximum is above the last mean of squares: the gradients shrank.
    check_close(r.piece("max_exp_avg_sq.theta"),
                { 0.0350051522f, 0.0530889891f, 0.0112997517f, 0.459800094f });
    CHECK(r.inst->state().size() == 4);
}

TEST_CASE("adam: decoupled weight decay matches torch.optim.AdamW", "[adam]")
{
    Run r("{learning_rate: 0.01, weight_decay: 0.1, decoupled_weight_decay: true}");
    r.four_steps();
    check_close(r.theta, { 0.971814275f, -2.00985241f, 0.517578423f, -0.035185013f });
    check_close(r.piece("exp_avg.theta"), { 0.0572500005f, 0.00569000095f, -0.013869999f, 0.296800017f });
    check_close(r.piece("exp_avg_sq.theta"),
                { 0.000389080815f, 0.000569290307f, 0.000139690295f, 0.00529826339f });

    // L2 decay with the same numbers differs: the decay enters the moments.
    Run l2("{learning_rate: 0.01, weight_decay: 0.1}");
    l2.four_steps();
    CHECK(l2.theta[2] != Approx(0.517578423f).epsilon(1e-5));
}

TEST_CASE("adam: the rate follows the schedule through the host's progress, as torch's schedulers per batch",
          "[adam][schedule]")
{
    // Two epochs of two batches, stepped per batch: LinearLR(0.25, total_iters = 1 epoch = 2 batches)
    // chained with CosineAnnealingLR(T_max = 2 epochs = 4 batches) (script above, D).
    Run r("{learning_rate: 0.1, schedule: cosine, schedule_per: batch, warmup_epochs: 1, "
          "warmup_start_factor: 0.25}");
    ansatz_progress& p = r.host.progress();
    p.epochs = 2;
    p.steps_per_epoch = 2;
    for (int64_t k = 0; k < 4; ++k)
    {
        p.epoch = k / 2 + 1;
        p.step = k; // batches done before this one
        r.step(gradients[static_cast<size_t>(k)]);
    }
    check_close(r.theta, { 0.921529889f, -2.06584382f, 0.567715704f, -0.127837732f });

    // Without progress (zeros: outside a train stage) the schedule is at its start: half the rate here.
    Run plain("{learning_rate: 0.1, schedule: cosine, warmup_epochs: 2, warmup_start_factor: 0.5}");
    Run constant("{learning_rate: 0.05}");
    plain.step(gradients[0]);
    constant.step(gradients[0]);
    CHECK(plain.theta == constant.theta);
}

TEST_CASE("adam: state and set_state round-trip: a restored optimizer steps bit for bit as the original",
          "[adam]")
{
    const std::string config = "{learning_rate: 0.05, amsgrad: true, weight_decay: 0.01}";
    Run original(config);
    original.step(gradients[0]);
    original.step(gradients[1]);
    std::vector<std::vector<char>> saved;
    std::vector<ansatz_named_tensor> pieces = original.inst->state();
    saved.reserve(pieces.size());
    for (ansatz_named_tensor& p : pieces)
    {
        const char* bytes = static_cast<const char*>(p.tensor.data);
        saved.emplace_back(bytes,
                           bytes + ansatz::element_count(p.tensor) * ansatz::dtype_size(p.tensor.dtype));
        p.tensor.data = saved.back().data();
    }
    Run restored(config, original.theta);
    restored.inst->set_state(pieces);
    for (Run* r : { &original, &restored })
    {
        r->step(gradients[2]);
        r->step(gradients[3]);
    }
    CHECK(restored.theta == original.theta);
    CHECK(restored.piece("max_exp_avg_sq.theta") == original.piece("max_exp_avg_sq.theta"));
    // Without the state (step count 0, zero moments) the next steps differ.
    Run fresh(config, original.theta);
    fresh.step(gradients[2]);
    CHECK(fresh.theta != original.theta);

    // A piece of another shape, or a missing one, is refused with a sentence naming it.
    std::vector<float> wrong(5);
    pieces[1].tensor = ansatz::make_view(wrong.data(), { 5 });
    REQUIRE_THROWS_WITH(
        restored.inst->set_state(pieces),
        Catch::Contains("the saved state's piece 'exp_avg.theta' holds float32 {5}, expected float32 {4}"));
    pieces.pop_back();
    pieces.erase(pieces.begin() + 1);
    REQUIRE_THROWS_WITH(restored.inst->set_state(pieces),
                        Catch::Contains("the saved state has no piece 'exp_avg.theta'"));
}

TEST_CASE("adam: a step on 200 000 elements equals the same update on each element alone", "[adam]")
{
    // The vectorised loop and its scalar tail compute one formula: an element's result does not
    // depend on its position (or on the vector width the compiler chose).
    const int64_t n = 200003;
    std::vector<float> start(static_cast<size_t>(n)), g(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
    {
        start[static_cast<size_t>(i)] = static_cast<float>((i * 7919) % 2001 - 1000) * 1e-3f;
        g[static_cast<size_t>(i)] = static_cast<float>((i * 104729) % 1999 - 999) * 1e-4f;
    }
    const std::string config = "{learning_rate: 0.01, weight_decay: 0.001, amsgrad: true}";
    Run big(config, start);
    big.step(g);
    big.step(std::vector<float>(g.rbegin(), g.rend()));
    for (int64_t i : { int64_t{ 0 }, int64_t{ 1 }, int64_t{ 5 }, n / 2, n - 3, n - 1 })
    {
        Run one(config, { start[static_cast<size_t>(i)] });
        one.step({ g[static_cast<size_t>(i)] });
        one.step({ g[static_cast<size_t>(n - 1 - i)] });
        INFO("element " << i);
        CHECK(one.theta[0] == big.theta[static_cast<size_t>(i)]);
    }
}

TEST_CASE("adam: on 2 and 3 threads, steps on 300 000 elements are bit-equal to one thread's",
          "[adam][threads]")
{
    // The update is element-wise: cut into chunks over the thread budget, it computes the same values.
    const int64_t n = 300007;
    std::vector<float> start(static_cast<size_t>(n)), g(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
    {
        start[static_cast<size_t>(i)] = static_cast<float>((i * 7919) % 2001 - 1000) * 1e-3f;
        g[static_cast<size_t>(i)] = static_cast<float>((i * 104729) % 1999 - 999) * 1e-4f;
    }
    const std::string config = "{learning_rate: 0.01, weight_decay: 0.001}";
    Run one(config, start, 1);
    one.step(g);
    one.step(std::vector<float>(g.rbegin(), g.rend()));
    for (int threads : { 2, 3 })
    {
        Run many(config, start, threads);
        many.step(g);
        many.step(std::vector<float>(g.rbegin(), g.rend()));
        INFO(threads << " threads");
        CHECK(many.theta == one.theta);
    }
}

// The sgd optimizer against torch.optim.SGD's update rule, on numbers worked out by hand:
//     d = g + weight_decay * theta
//     buf = d on the first step, else momentum * buf + (1 - dampening) * d
//     theta -= lr * (nesterov ? d + momentum * buf : buf)
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace
{

struct Run
{
    std::unique_ptr<ansatz::engine::Instance> inst;
    std::vector<float> theta;
    std::vector<ansatz_named_tensor> params;

    Run(const std::string& yaml, std::vector<float> start)
        : inst(ansatz::test::make("sgd", yaml)), theta(std::move(start))
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
};

} // namespace

TEST_CASE("sgd: two steps with momentum 0.9 and weight decay 0.01 match torch.optim.SGD by hand", "[sgd]")
{
    Run r("{learning_rate: 0.1, momentum: 0.9, weight_decay: 0.01}", { 1.0f, -2.0f, 0.5f });
    // Step 1, g = (0.5, 0.1, -0.3): d = g + 0.01 theta = (0.51, 0.08, -0.295) = buf;
    // theta = theta - 0.1 buf = (0.949, -2.008, 0.5295).
    r.step({ 0.5f, 0.1f, -0.3f });
    CHECK(r.theta[0] == Approx(0.949).margin(1e-6));
    CHECK(r.theta[1] == Approx(-2.008).margin(1e-6));
    CHECK(r.theta[2] == Approx(0.5295).margin(1e-6));
    // Step 2, g = (-0.2, 0.4, 0): d = (-0.19051, 0.37992, 0.005295);
    // buf = 0.9 (0.51, 0.08, -0.295) + d = (0.26849, 0.45192, -0.260205);
    // theta = (0.949 - 0.026849, -2.008 - 0.045192, 0.5295 + 0.0260205) = (0.922151, -2.053192, 0.5555205).
    r.step({ -0.2f, 0.4f, 0.0f });
    CHECK(r.theta[0] == Approx(0.922151).margin(1e-6));
    CHECK(r.theta[1] == Approx(-2.053192).margin(1e-6));
    CHECK(r.theta[2] == Approx(0.5555205).margin(1e-6));

    // The momentum buffer is the optimizer's state, named after the parameter, after the first-step flag.
    const std::vector<ansatz_named_tensor> state = r.inst->state();
    REQUIRE(state.size() == 2);
    CHECK(std::string(state[0].name) == "first_step");
    CHECK(*ansatz::data<int64_t>(state[0].tensor) == 0);
    CHECK(std::string(state[1].name) == "momentum.theta");
    CHECK(ansatz::f32(state[1].tensor)[0] == Approx(0.26849).margin(1e-6));
    CHECK(ansatz::f32(state[1].tensor)[2] == Approx(-0.260205).margin(1e-6));
}

TEST_CASE("sgd: state and set_state round-trip: a restored optimizer steps exactly as the original", "[sgd]")
{
    const std::string config = "{learning_rate: 0.1, momentum: 0.9, dampening: 0.2}";
    Run original(config, { 1.0f, -2.0f, 0.5f });
    original.step({ 0.5f, 0.1f, -0.3f });
    // Copy the state out (the views point into the optimizer), as a checkpoint does.
    std::vector<std::vector<char>> saved;
    std::vector<ansatz_named_tensor> pieces = original.inst->state();
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
        r->step({ -0.2f, 0.4f, 0.0f });
    // Bit for bit: the restored one saw the momentum and that its first step had been taken.
    CHECK(restored.theta == original.theta);
    Run fresh(config, { 0.949f, -2.008f, 0.5295f });
    fresh.step({ -0.2f, 0.4f, 0.0f });
    CHECK(fresh.theta != original.theta); // without the state the second step differs

    // A piece of another shape is refused with a sentence naming it.
    std::vector<float> wrong(5);
    pieces[1].tensor = ansatz::make_view(wrong.data(), { 5 });
    REQUIRE_THROWS_WITH(
        restored.inst->set_state(pieces),
        Catch::Contains("the saved state's piece 'momentum.theta' holds float32 {5}, expected float32 {3}"));
}

TEST_CASE("sgd: a Nesterov step and a dampened step match torch.optim.SGD by hand", "[sgd]")
{
    // Nesterov, first step: buf = d = (0.51, 0.08, -0.295); update d + 0.9 buf = 1.9 d;
    // theta = (1 - 0.0969, -2 - 0.0152, 0.5 + 0.05605).
    Run n("{learning_rate: 0.1, momentum: 0.9, weight_decay: 0.01, nesterov: true}", { 1.0f, -2.0f, 0.5f });
    n.step({ 0.5f, 0.1f, -0.3f });
    CHECK(n.theta[0] == Approx(0.9031).margin(1e-6));
    CHECK(n.theta[1] == Approx(-2.0152).margin(1e-6));
    CHECK(n.theta[2] == Approx(0.55605).margin(1e-6));

    // Dampening 0.5, no decay: step 1 buf = g = 1 (torch does not dampen the first step), theta = 2 - 0.1;
    // step 2 buf = 0.5 * 1 + 0.5 * 3 = 2, theta = 1.9 - 0.2 = 1.7.
    Run d("{learning_rate: 0.1, momentum: 0.5, dampening: 0.5}", { 2.0f });
    d.step({ 1.0f });
    CHECK(d.theta[0] == Approx(1.9).margin(1e-6));
    d.step({ 3.0f });
    CHECK(d.theta[0] == Approx(1.7).margin(1e-6));
}

TEST_CASE("sgd: the rate follows the schedule (one batch an epoch), as torch.optim.SGD with ExponentialLR",
          "[sgd][schedule]")
{
    // ATEN_CPU_CAPABILITY=default /usr/bin/python3 (torch 1.13.1):
    //     import torch
    //     p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    //     opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    //     s = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    //     for g in [[0.5, 0.1, -0.3], [-0.2, 0.4, 0.0], [0.3, -0.6, 0.2]]:
    //         p.grad = torch.tensor(g)
    //         opt.step()
    //         s.step()
    //     print(", ".join("%.9gf" % x for x in p.detach().tolist()))
    // Tolerance 1e-6 relative: float32 rounding of a build that fuses multiply-adds.
    ansatz::engine::HostServices host(1234, 1);
    auto inst = ansatz::test::make(
        "sgd", "{learning_rate: 0.1, momentum: 0.9, weight_decay: 0.01, schedule: exponential, gamma: 0.5}",
        &host);
    std::vector<float> theta = { 1.0f, -2.0f, 0.5f };
    ansatz_named_tensor param{ "theta", ansatz::make_view(theta.data(), { 3 }) };
    ansatz_status st{};
    REQUIRE(inst->optimizer().bind(inst->self(), &param, 1, &st) == ANSATZ_STATUS_OK);
    const std::vector<std::vector<float>> grads = { { 0.5f, 0.1f, -0.3f },
                                                    { -0.2f, 0.4f, 0.0f },
                                                    { 0.3f, -0.6f, 0.2f } };
    host.progress().epochs = 3;
    host.progress().steps_per_epoch = 1;
    for (int64_t e = 1; e <= 3; ++e)
    {
        host.progress().epoch = e;
        host.progress().step = e - 1;
        std::vector<float> g = grads[static_cast<size_t>(e - 1)];
        ansatz_tensor gt = ansatz::make_view(g.data(), { 3 });
        REQUIRE(inst->optimizer().step(inst->self(), &param, &gt, 1, &st) == ANSATZ_STATUS_OK);
    }
    CHECK(theta[0] == Approx(0.921800554f).epsilon(1e-6));
    CHECK(theta[1] == Approx(-2.0252564f).epsilon(1e-6));
    CHECK(theta[2] == Approx(0.543229282f).epsilon(1e-6));
}

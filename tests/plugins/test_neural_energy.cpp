// The neural_energy model: its gradients (parameters and input) against finite differences through the
// conformance kit, the weighted gradient against per-row calls, Foster's default network, its box, and
// the refusals of its keys.
#include "ansatz/testing/conformance.hpp"
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;

struct Grads
{
    std::vector<std::vector<float>> data;
    std::vector<ansatz_tensor> views;
    explicit Grads(const ModelRef& m)
    {
        for (const ansatz_named_tensor& p : m.parameters())
            data.emplace_back(static_cast<size_t>(ansatz::element_count(p.tensor)), 0.0f);
        for (size_t k = 0; k < data.size(); ++k)
        {
            ansatz_tensor v = m.parameters()[k].tensor;
            v.data = data[k].data();
            views.push_back(v);
        }
    }
};

std::vector<float> uniform_rows(int64_t n, int64_t d, uint64_t seed)
{
    Rng rng(seed);
    std::vector<float> x(static_cast<size_t>(n * d));
    for (float& v : x)
        v = static_cast<float>(2 * rng.uniform() - 1);
    return x;
}

std::string set_up_error(const std::string& yaml, const std::vector<int64_t>& shape)
{
    const auto instance = ansatz::test::make("neural_energy", yaml);
    const ansatz_model_handle h = instance->model();
    Rng rng(1);
    ansatz_status st{};
    if (h.table->setup(h.self, shape.data(), static_cast<int32_t>(shape.size()), &rng.state(), &st) ==
        ANSATZ_STATUS_OK)
        return "no error";
    CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
    return st.message;
}

} // namespace

TEST_CASE(
    "neural_energy: the conformance kit's gradients (parameters and input) agree with finite differences",
    "[neural_energy][conformance]")
{
    // Swish everywhere (smooth, so central differences hold at every point); conv and mlp.
    for (const auto& [config, shape] :
         { std::pair<const char*, std::vector<int64_t>>{ "{filters: [3, 4], kernel: [5, 3], dense: [5], "
                                                         "bounds: [-1, 1]}",
                                                         { 8, 8 } },
           std::pair<const char*, std::vector<int64_t>>{
               "{architecture: mlp, hidden: [6, 5], activation: tanh}", { 7 } } })
    {
        INFO(config);
        const auto instance = ansatz::test::make("neural_energy", config);
        const ModelRef m = ansatz::test::model_ref(*instance);
        Rng rng(3);
        m.setup(shape, rng);
        ansatz::testing::ConformanceOptions options;
        options.sample_shape = shape;
        const ansatz::testing::ConformanceReport report = ansatz::testing::check_model(m, options);
        INFO(report.summary());
        CHECK(report.passed());
        for (const char* check : { "free_energy_grad", "state_grad", "parameters", "random_state" })
            CHECK(report.outcome(check) == ansatz::testing::Outcome::passed);
    }
}

TEST_CASE("neural_energy: the weighted gradient equals one free_energy_grad call per row at its weight",
          "[neural_energy]")
{
    const auto instance = ansatz::test::make("neural_energy", "{filters: [3, 4], kernel: [3], dense: [6]}");
    const ModelRef m = ansatz::test::model_ref(*instance);
    Rng rng(5);
    m.setup({ 6, 6 }, rng);
    const int64_t n = 7, d = 36;
    std::vector<float> x = uniform_rows(n, d, 6);
    const std::vector<float> weights = { 0.5f, -1.25f, 0.0f, 2.0f, -0.3f, 1.0f, -0.75f };
    Grads weighted(m), rows(m);
    std::vector<float> out(n), f(n);
    ansatz_tensor xt = ansatz::make_view(x.data(), { n, d }), ot = ansatz::make_view(out.data(), { n });
    m.free_energy_grad_weighted(xt, weights.data(), weighted.views.data(),
                                static_cast<int32_t>(weighted.views.size()), &ot);
    ansatz_tensor ft = ansatz::make_view(f.data(), { n });
    m.free_energy(xt, ft);
    CHECK(out == f); // the same forward pass
    for (int64_t r = 0; r < n; ++r)
    {
        ansatz_tensor one = ansatz::make_view(x.data() + r * d, { 1, d });
        m.free_energy_grad(one, weights[static_cast<size_t>(r)], rows.views.data(),
                           static_cast<int32_t>(rows.views.size()));
    }
    double largest = 0;
    for (size_t k = 0; k < rows.data.size(); ++k)
        for (size_t i = 0; i < rows.data[k].size(); ++i)
        {
            CHECK(weighted.data[k][i] == Approx(rows.data[k][i]).margin(1e-5));
            largest = std::max(largest, std::abs(static_cast<double>(rows.data[k][i])));
        }
    CHECK(largest > 1e-2);
}

TEST_CASE("neural_energy: Foster's network by default, with torch.nn's names, and the box of its bounds",
          "[neural_energy]")
{
    const auto instance = ansatz::test::make("neural_energy", "{bounds: [-1, 1]}");
    const ModelRef m = ansatz::test::model_ref(*instance);
    const ansatz_sample_info info = m.sample_info();
    CHECK(info.rank == -1);
    CHECK(info.domain == ANSATZ_DOMAIN_REAL);
    CHECK(m.bounds() == std::pair<double, double>{ -1.0, 1.0 });
    Rng rng(7);
    m.setup({ 32, 32 }, rng);
    // conv 16 5x5 s2, swish, conv 32 3x3 s2, swish, conv 64, swish, conv 64, swish, flatten (64 x 2 x 2),
    // linear 64, swish, linear 1: items 0, 2, 4, 6, 9 and 11.
    std::vector<std::string> names;
    int64_t floats = 0;
    for (const ansatz_named_tensor& p : m.parameters())
    {
        names.emplace_back(p.name);
        floats += ansatz::element_count(p.tensor);
    }
    CHECK(names == std::vector<std::string>{ "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias",
                                             "net.4.weight", "net.4.bias", "net.6.weight", "net.6.bias",
                                             "net.9.weight", "net.9.bias", "net.11.weight", "net.11.bias" });
    CHECK(floats == (16 * 25 + 16) + (32 * 16 * 9 + 32) + (64 * 32 * 9 + 64) + (64 * 64 * 9 + 64) +
                        (64 * 256 + 64) + (64 + 1));

    // random_state: uniform in the box. 64 rows x 1024 values, seed 8: the mean of U(-1, 1) has standard
    // error 1 / sqrt(3 * 65536) = 0.0023; 5 of them is 0.011.
    const int64_t n = 64, d = 1024;
    std::vector<float> x(static_cast<size_t>(n * d));
    ansatz_tensor xt = ansatz::make_view(x.data(), { n, d });
    ansatz::StreamArray streams;
    Rng parent(8);
    m.random_state(xt, streams.split_from(parent, n));
    double sum = 0;
    for (float v : x)
    {
        REQUIRE(v >= -1.0f);
        REQUIRE(v <= 1.0f);
        sum += v;
    }
    CHECK(std::abs(sum / static_cast<double>(n * d)) < 0.011);
    CHECK(*std::min_element(x.begin(), x.end()) < -0.999f);
    CHECK(*std::max_element(x.begin(), x.end()) > 0.999f);

    // Without bounds: the real line (both 0 in the sample info), N(0, 1) starts.
    const auto free = ansatz::test::make("neural_energy", "{architecture: mlp, hidden: [4]}");
    CHECK(ansatz::test::model_ref(*free).bounds() == std::pair<double, double>{ -HUGE_VAL, HUGE_VAL });
}

TEST_CASE("neural_energy: keys that contradict each other and data that does not fit are refused with one "
          "sentence",
          "[neural_energy][bad-input]")
{
    const auto created = [](const std::string& yaml) -> std::string {
        try
        {
            ansatz::test::make("neural_energy", yaml);
        }
        catch (const std::exception& e)
        {
            return e.what();
        }
        return "no error";
    };
    CHECK_THAT(
        created("{bounds: [1, -1]}"),
        Catch::EndsWith("key bounds is [1, -1], which is not an interval [low, high] of finite numbers "
                        "with low < high"));
    CHECK_THAT(created("{hidden: [64]}"),
               Catch::EndsWith("key hidden belongs to architecture: mlp, but this neural_energy is "
                               "architecture: conv (its layers are filters, kernel, stride and dense)"));
    CHECK_THAT(created("{architecture: mlp, dense: [8]}"),
               Catch::EndsWith("key dense belongs to architecture: conv, but this neural_energy is "
                               "architecture: mlp (its layers are hidden)"));
    CHECK_THAT(created("{filters: [8, 16, 32], kernel: [3, 3]}"),
               Catch::EndsWith("key kernel has 2 items, but filters has 3: give one per convolution, or one "
                               "for all"));
    CHECK(set_up_error("{}", { 784 }) == "architecture: conv needs images, samples of shape {H, W} or {C, H, "
                                         "W}, but the data's samples have shape {784}");
    // 2^24 x 2^24 weights: refused before anything is allocated, naming what needs the memory.
    CHECK_THAT(set_up_error("{architecture: mlp, hidden: [16777216, 16777216]}", { 4 }),
               Catch::Contains("the layers of this neural_energy for samples of shape {4}"));
}

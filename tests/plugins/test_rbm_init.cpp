// The rbm model's visible biases started from a dataset's means (keys init_data and init_rows), through
// the engine's own configuration path (a COMPONENT key carries the dataset's handle) and the CLI.
#include "support/cli.hpp"
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;

// IDX header for `count` unsigned-byte samples of rows x cols, then the bytes.
std::string idx_file(uint32_t count, uint32_t rows, uint32_t cols, const std::vector<uint8_t>& bytes)
{
    std::string s("\x00\x00\x08\x03", 4);
    for (uint32_t v : { count, rows, cols })
        for (int shift = 24; shift >= 0; shift -= 8)
            s += static_cast<char>((v >> shift) & 0xff);
    s.append(bytes.begin(), bytes.end());
    return s;
}

// 6 samples of 2 x 3 bytes, one column per unit: unit 0 is always 0 and unit 1 always 255 (their
// marginals 0 and 1 are clipped), the others vary.
const std::vector<uint8_t> six_samples = {
    0, 255, 255, 0,   51,  200, //
    0, 255, 0,   0,   102, 10,  //
    0, 255, 255, 255, 153, 90,  //
    0, 255, 0,   0,   204, 255, //
    0, 255, 255, 0,   255, 0,   //
    0, 255, 0,   255, 0,   128, //
};

// Creates component `name` with `yaml`, its COMPONENT keys given the handles of `named` (as the engine
// does: the named component is created first).
std::unique_ptr<ansatz::engine::Instance> make_with(const std::string& name, const std::string& yaml,
                                                    const ansatz::engine::Instance& named)
{
    using namespace ansatz::engine;
    const PluginComponent* c = ansatz::test::in_tree_plugins().find(name);
    REQUIRE(c);
    Source source = Source::parse(yaml, "<" + name + ">");
    const std::vector<KeySpec> specs = key_specs(*c->desc);
    ConfigValues config = to_config(specs, validate_keys(source, source.root(), specs, "model 'rbm'", ""),
                                    [&](const std::string&) { return named.handle(); });
    return std::make_unique<Instance>(*c, config.c(name), ansatz::test::test_host().table());
}

std::vector<float> values_of(const ModelRef& m, size_t k)
{
    const ansatz_tensor t = m.parameters()[k].tensor;
    return std::vector<float>(ansatz::f32(t), ansatz::f32(t) + ansatz::element_count(t));
}

// The mean of unit i over the first `rows` samples, as the idx dataset reads them (byte / 255 in float).
double mean_of(int64_t i, int64_t rows)
{
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r)
        sum += static_cast<float>(six_samples[static_cast<size_t>(r * 6 + i)]) / 255.0f;
    return sum / static_cast<double>(rows);
}

} // namespace

TEST_CASE("rbm: init_data starts the visible biases at the logit of the clipped data marginals (bernoulli) "
          "or at the data means (gaussian), over init_rows rows",
          "[rbm][init]")
{
    const fs::path dir = ansatz::test::fresh_folder("rbm_init/values");
    ansatz::test::write_text(dir / "six.idx", idx_file(6, 2, 3, six_samples));
    auto data = ansatz::test::make("idx", "{images: " + (dir / "six.idx").string() + "}");

    // Without init_data: zeros, and the weights the same stream gives with init_data.
    auto plain = ansatz::test::make("rbm", "{hidden: 3, init_std: 0.5}");
    ModelRef pm = ansatz::test::model_ref(*plain);
    Rng rng0(501);
    pm.setup({ 2, 3 }, rng0);
    CHECK(values_of(pm, 1) == std::vector<float>(6, 0.0f));

    for (const int64_t rows : { int64_t(0), int64_t(4) })
    {
        INFO("init_rows: " << rows);
        const int64_t used = rows == 0 ? 6 : rows;
        auto inst = make_with(
            "rbm", "{hidden: 3, init_std: 0.5, init_data: data, init_rows: " + std::to_string(rows) + "}",
            *data);
        ModelRef m = ansatz::test::model_ref(*inst);
        Rng rng(501);
        m.setup({ 2, 3 }, rng);
        const std::vector<float> a = values_of(m, 1);
        for (int64_t i = 0; i < 6; ++i)
        {
            const double p = std::clamp(mean_of(i, used), 1e-3, 1 - 1e-3);
            INFO("unit " << i << ", marginal " << mean_of(i, used));
            CHECK(a[static_cast<size_t>(i)] == Approx(std::log(p / (1 - p))).epsilon(1e-6));
        }
        // The clipped units: log(1e-3 / 0.999) and its negative.
        CHECK(a[0] == Approx(-6.906755).epsilon(1e-6));
        CHECK(a[1] == Approx(6.906755).epsilon(1e-6));
        CHECK(values_of(m, 0) == values_of(pm, 0)); // the weights' stream is not disturbed
        CHECK(values_of(m, 2) == std::vector<float>(3, 0.0f));
        CHECK(rng.state().state[0] == rng0.state().state[0]);
    }

    // Gaussian units: the means themselves.
    auto gauss = make_with("rbm", "{hidden: 3, visible_units: gaussian, init_data: data}", *data);
    ModelRef g = ansatz::test::model_ref(*gauss);
    Rng rng(502);
    g.setup({ 2, 3 }, rng);
    const std::vector<float> a = values_of(g, 1);
    for (int64_t i = 0; i < 6; ++i)
        CHECK(a[static_cast<size_t>(i)] == Approx(mean_of(i, 6)).epsilon(1e-6));
}

TEST_CASE("rbm: init_data of another sample size, and init_rows without init_data, are input errors",
          "[rbm][init]")
{
    const fs::path dir = ansatz::test::fresh_folder("rbm_init/errors");
    ansatz::test::write_text(dir / "six.idx", idx_file(6, 2, 3, six_samples));
    auto data = ansatz::test::make("idx", "{images: " + (dir / "six.idx").string() + "}");
    auto inst = make_with("rbm", "{hidden: 3, init_data: data}", *data);
    const ansatz_model_handle h = inst->model();
    const int64_t shape[] = { 5 };
    Rng rng(1);
    ansatz_status st{};
    REQUIRE(h.table->setup(h.self, shape, 1, &rng.state(), &st) == ANSATZ_STATUS_INVALID_INPUT);
    CHECK(std::string(st.message) ==
          "init_data: the dataset's samples have 6 values, but the model has 5 visible units");

    REQUIRE_THROWS_WITH(
        ansatz::test::make("rbm", "{hidden: 3, init_rows: 10}"),
        Catch::EndsWith("init_rows is 10, but no init_data names a dataset to read them from"));
}

TEST_CASE("rbm: a pipeline with init_data trains, and one whose init_data does not fit the model exits 2",
          "[rbm][init][cli]")
{
    const fs::path dir = ansatz::test::fresh_folder("rbm_init/cli");
    ansatz::test::write_text(dir / "images.idx", ansatz::test::square_images());
    const std::string pipeline = R"(pipeline: init-data
seed: 1
components:
  data:  {plugin: idx, images: images.idx, binarize: 0.5}
  rbm:   {plugin: rbm, hidden: 4, init_data: data}
  gibbs: {plugin: gibbs, steps: 1}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 0.1}
stages:
  - train:  {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 1, batch_size: 8}
)";
    ansatz::test::write_text(dir / "pipeline.yaml", pipeline);
    const ansatz::test::CliResult ok =
        ansatz::test::run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(ok.err);
    CHECK(ok.status == 0);

    std::string bad = pipeline;
    bad.replace(bad.find("hidden: 4,"), 10, "hidden: 4, visible: 5,");
    bad.replace(bad.find("  - train:"), std::string::npos,
                "  - sample: {model: rbm, sampler: gibbs, count: 4, steps: 2}\n");
    ansatz::test::write_text(dir / "bad.yaml", bad);
    const ansatz::test::CliResult r = ansatz::test::run_ansatz({ "run", "bad.yaml", "--runs", "runs" }, dir);
    CHECK(r.status == 2);
    CHECK(r.err ==
          "component 'rbm' (model 'rbm' from " + std::string(ANSATZ_TEST_PLUGIN_DIR) +
              "/libansatz_rbm.so): init_data: the dataset's samples have 36 values, but the model has 5 "
              "visible units\n");
}

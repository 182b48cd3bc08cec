// The rbm model's visible biases started from a dataset's means (keys init_data and init_rows), through
// the engine's own configuration path (a COMPONENT key carries the dataset's handle) and the CLI.
#include "support/cli.hpp"
#include "support/plugins.hpp"

#include <ansatz/testing/conformance.hpp>

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

// An idx dataset of the six samples, written into a fresh test folder `folder`.
std::unique_ptr<ansatz::engine::Instance> six_sample_data(const std::string& folder)
{
    const fs::path dir = ansatz::test::fresh_folder(folder);
    ansatz::test::write_text(dir / "six.idx", idx_file(6, 2, 3, six_samples));
    return ansatz::test::make("idx", "{images: " + (dir / "six.idx").string() + "}");
}

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
    auto data = six_sample_data("rbm_init/values");

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
    auto data = six_sample_data("rbm_init/errors");
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

namespace
{

// F(v) of a centred RBM in double from its parameters W' {6, 3}, a' {6}, b' {3} and offsets mu, lambda = 1/2:
// the plain RBM with a = a' - W lambda 1 and b = b' - W^T mu.
double centered_free_energy(const std::vector<double>& w, const std::vector<double>& a,
                            const std::vector<double>& b, const std::vector<double>& mu, const float* v)
{
    double f = 0;
    for (int64_t i = 0; i < 6; ++i)
    {
        double row = 0;
        for (int64_t j = 0; j < 3; ++j)
            row += w[static_cast<size_t>(i * 3 + j)];
        f -= (a[static_cast<size_t>(i)] - 0.5 * row) * v[i];
    }
    for (int64_t j = 0; j < 3; ++j)
    {
        double x = b[static_cast<size_t>(j)];
        for (int64_t i = 0; i < 6; ++i)
            x += (v[i] - mu[static_cast<size_t>(i)]) * w[static_cast<size_t>(i * 3 + j)];
        f -= std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
    }
    return f;
}

} // namespace

TEST_CASE("rbm centered: starts as the plain rbm of the same seed, and its free energy and gradient are the "
          "centred parametrisation's (central differences in double)",
          "[rbm][init][centered]")
{
    auto data = six_sample_data("rbm_init/centered");
    auto plain = make_with("rbm", "{hidden: 3, init_std: 0.5, init_data: data}", *data);
    auto centred = make_with("rbm", "{hidden: 3, init_std: 0.5, init_data: data, centered: true}", *data);
    ModelRef pm = ansatz::test::model_ref(*plain);
    ModelRef cm = ansatz::test::model_ref(*centred);
    Rng r1(601), r2(601);
    pm.setup({ 2, 3 }, r1);
    cm.setup({ 2, 3 }, r2);
    const auto params = cm.parameters();
    REQUIRE(params.size() == 3);
    CHECK(std::string(params[1].name) == "centered_visible_bias");
    CHECK(std::string(params[2].name) == "centered_hidden_bias");
    CHECK(values_of(cm, 0) == values_of(pm, 0));

    Rng rng(602);
    std::vector<float> v;
    for (int k = 0; k < 5 * 6; ++k)
        v.push_back(k < 18 ? (rng.uniform() < 0.5f ? 1.0f : 0.0f) : rng.uniform());
    ansatz_tensor vt = ansatz::make_view(v.data(), { 5, 6 });
    std::vector<float> fp(5), fc(5);
    ansatz_tensor fpt = ansatz::make_view(fp.data(), { 5 }), fct = ansatz::make_view(fc.data(), { 5 });
    pm.free_energy(vt, fpt);
    cm.free_energy(vt, fct);
    for (size_t k = 0; k < 5; ++k) // the same a and b, to rounding of a' - W/2 and b' - W^T mu
        CHECK(fc[k] == Approx(fp[k]).epsilon(1e-5).margin(1e-5));

    // Other parameters, written as an optimizer would (then parameters_changed).
    std::vector<double> w(18), a(6), b(3), mu(6);
    for (size_t k = 0; k < 3; ++k)
    {
        float* x = ansatz::f32(params[k].tensor);
        std::vector<double>& into = k == 0 ? w : k == 1 ? a : b;
        for (size_t e = 0; e < into.size(); ++e)
        {
            x[e] = static_cast<float>(rng.normal() * 0.8);
            into[e] = x[e];
        }
    }
    cm.parameters_changed();
    for (int64_t i = 0; i < 6; ++i)
        mu[static_cast<size_t>(i)] = static_cast<float>(mean_of(i, 6)); // the means, unclipped
    cm.free_energy(vt, fct);
    for (int64_t n = 0; n < 5; ++n)
        CHECK(fc[static_cast<size_t>(n)] ==
              Approx(centered_free_energy(w, a, b, mu, v.data() + n * 6)).epsilon(1e-5).margin(1e-5));

    // grads start at 0.25: the test also checks grads += scale * dF, not =. Plain and weighted passes.
    const std::vector<float> row_weights = { 0.3f, -1.1f, 0.0f, 2.0f, 0.7f };
    for (const bool weighted : { false, true })
    {
        INFO((weighted ? "free_energy_grad_weighted" : "free_energy_grad (scale 0.7)"));
        const float scale = 0.7f;
        std::vector<float> gw(18, 0.25f), ga(6, 0.25f), gb(3, 0.25f);
        ansatz_tensor grads[3] = { ansatz::make_view(gw.data(), { 6, 3 }),
                                   ansatz::make_view(ga.data(), { 6 }), ansatz::make_view(gb.data(), { 3 }) };
        if (weighted)
            cm.free_energy_grad_weighted(vt, row_weights.data(), grads, 3);
        else
            cm.free_energy_grad(vt, scale, grads, 3);
        const auto total = [&](const std::vector<double>& ww, const std::vector<double>& aa,
                               const std::vector<double>& bb) {
            double s = 0;
            for (int64_t n = 0; n < 5; ++n)
                s += (weighted ? row_weights[static_cast<size_t>(n)] : scale) *
                     centered_free_energy(ww, aa, bb, mu, v.data() + n * 6);
            return s;
        };
        // Central differences in double, h = 1e-5: truncation ~1e-10, rounding ~1e-11; the float gradient
        // is good to ~1e-6 relative. A plain-RBM gradient (without the mu and lambda terms) is off by
        // O(0.1) here.
        const double h = 1e-5;
        const auto check_all = [&](int which, const std::vector<float>& got, const char* name) {
            for (size_t k = 0; k < got.size(); ++k)
            {
                std::vector<double> wp = w, wm = w, ap = a, am = a, bp = b, bm = b;
                (which == 0 ? wp : which == 1 ? ap : bp)[k] += h;
                (which == 0 ? wm : which == 1 ? am : bm)[k] -= h;
                const double fd = (total(wp, ap, bp) - total(wm, am, bm)) / (2 * h);
                INFO(name << "[" << k << "]");
                CHECK(got[k] == Approx(0.25 + fd).epsilon(1e-5).margin(1e-5));
            }
        };
        check_all(0, gw, "weights");
        check_all(1, ga, "centered_visible_bias");
        check_all(2, gb, "centered_hidden_bias");
    }
}

TEST_CASE("rbm centered: a pipeline with centered: true trains", "[rbm][init][centered][cli]")
{
    const fs::path dir = ansatz::test::fresh_folder("rbm_init/centered_cli");
    ansatz::test::write_text(dir / "images.idx", ansatz::test::square_images());
    ansatz::test::write_text(dir / "pipeline.yaml", R"(pipeline: centered
seed: 1
components:
  data:  {plugin: idx, images: images.idx, binarize: 0.5}
  rbm:   {plugin: rbm, hidden: 4, init_data: data, centered: true}
  gibbs: {plugin: gibbs, steps: 1}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 0.1}
stages:
  - train:  {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 3, batch_size: 8}
)");
    const ansatz::test::CliResult ok =
        ansatz::test::run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(ok.err);
    CHECK(ok.status == 0);
    // The checkpoint holds the centred parameters under their own names (a plain rbm cannot take them).
    std::vector<std::string> saved;
    for (const auto& e : fs::recursive_directory_iterator(dir / "runs"))
        if (e.path().parent_path().filename() == "stage1-epoch3" && e.path().extension() == ".npy")
            saved.push_back(e.path().filename().string());
    CHECK(std::count(saved.begin(), saved.end(), "rbm.centered_visible_bias.npy") == 1);
    CHECK(std::count(saved.begin(), saved.end(), "rbm.centered_hidden_bias.npy") == 1);
    CHECK(std::count(saved.begin(), saved.end(), "rbm.visible_bias.npy") == 0);
}

TEST_CASE("rbm centered: the conformance kit passes on a centred 6x3 RBM with written parameters",
          "[rbm][init][centered][conformance]")
{
    auto data = six_sample_data("rbm_init/centered_kit");
    auto inst = make_with("rbm", "{hidden: 3, init_std: 1.0, init_data: data, centered: true}", *data);
    ModelRef m = ansatz::test::model_ref(*inst);
    Rng rng(701);
    m.setup({ 2, 3 }, rng);
    for (ansatz_named_tensor& t : m.parameters())
        if (std::string(t.name) != "weights")
            for (int64_t k = 0; k < ansatz::element_count(t.tensor); ++k)
                ansatz::f32(t.tensor)[k] = static_cast<float>(0.5 * rng.normal());
    m.parameters_changed();
    // The energy, its local moves, the conditionals and the gradients checked against each other on the
    // model the centred parameters give (the kit writes parameters and announces them itself).
    const ansatz::testing::ConformanceReport report = ansatz::testing::check_model(m, {});
    INFO(report.summary());
    CHECK(report.passed());
    CHECK(report.skipped() == std::vector<std::string>{ "state_grad" });
}

// The ais evaluator: forward and reverse AIS against the exact log Z of an RBM trained on Fashion-MNIST
// (whose 20 hidden units are enumerated), schedules on a small RBM, base_data, cancellation.
#include "ansatz/math.hpp"
#include "support/evaluators.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;
using ansatz::engine::Instance;
using ansatz::test::evaluate;
using ansatz::test::metric;

const char* const kFashion = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

// The first n training images of Fashion-MNIST binarised at 0.5 (the idx plugin), and the dataset.
struct Images
{
    std::unique_ptr<Instance> dataset;
    std::vector<float> rows;
    int64_t n = 0;
    int64_t d = 784;
};

Images load_images(int64_t n)
{
    Images out;
    out.dataset = ansatz::test::make("idx", std::string("{images: '") + kFashion +
                                                "', binarize: 0.5, limit: " + std::to_string(n) + "}");
    out.n = n;
    out.rows.resize(static_cast<size_t>(n * out.d));
    std::vector<int64_t> indices(static_cast<size_t>(n));
    std::iota(indices.begin(), indices.end(), int64_t{ 0 });
    ansatz_tensor view = ansatz::make_view(out.rows.data(), { n, out.d });
    Rng rng(1);
    ansatz_status st{};
    out.dataset->check(out.dataset->dataset().read(out.dataset->self(), indices.data(), n, &view, nullptr,
                                                   &rng.state(), &st),
                       st);
    return out;
}

// CD-1 on the images: `updates` batches of 100 rows in order, W -= lr (<dF/dW>_data - <dF/dW>_recon),
// visible biases started at the logit of the pixel means (Hinton's practical guide).
void train_cd1(const ModelRef& model, const Images& images, int updates, float lr, uint64_t seed)
{
    const int64_t b = 100, d = images.d;
    std::vector<ansatz_named_tensor> params = model.parameters();
    {
        float* a = ansatz::f32(params[1].tensor);
        for (int64_t i = 0; i < d; ++i)
        {
            double m = 0;
            for (int64_t k = 0; k < images.n; ++k)
                m += images.rows[k * d + i];
            m = std::clamp(m / static_cast<double>(images.n), 0.01, 0.99);
            a[i] = static_cast<float>(std::log(m / (1 - m)));
        }
    }
    const int64_t h = params[0].tensor.shape[1];
    std::vector<std::vector<float>> grads;
    std::vector<ansatz_tensor> grad_views;
    for (const ansatz_named_tensor& p : params)
    {
        grads.emplace_back(static_cast<size_t>(ansatz::element_count(p.tensor)), 0.0f);
        ansatz_tensor g = p.tensor;
        g.data = grads.back().data();
        grad_views.push_back(g);
    }
    std::vector<float> h_mean(b * h), h_sample(b * h), v_mean(b * d), v_sample(b * d);
    ansatz_tensor hm = ansatz::make_view(h_mean.data(), { b, h }),
                  hs = ansatz::make_view(h_sample.data(), { b, h });
    ansatz_tensor vm = ansatz::make_view(v_mean.data(), { b, d }),
                  vs = ansatz::make_view(v_sample.data(), { b, d });
    Rng rng(seed);
    ansatz::StreamArray streams;
    for (int u = 0; u < updates; ++u)
    {
        const int64_t first = (u * b) % images.n;
        const ansatz_tensor batch = ansatz::make_view(images.rows.data() + first * d, { b, d });
        const ansatz::Streams s = streams.split_from(rng, b);
        model.conditional(ANSATZ_BLOCK_HIDDEN, batch, hm, &hs, s);
        model.conditional(ANSATZ_BLOCK_VISIBLE, hs, vm, &vs, s);
        for (auto& g : grads)
            std::fill(g.begin(), g.end(), 0.0f);
        model.free_energy_grad(batch, 1.0f / b, grad_views.data(), 3);
        model.free_energy_grad(vs, -1.0f / b, grad_views.data(), 3);
        for (size_t k = 0; k < params.size(); ++k)
        {
            float* theta = ansatz::f32(params[k].tensor);
            for (size_t e = 0; e < grads[k].size(); ++e)
                theta[e] -= lr * grads[k][e];
        }
    }
}

// F(h) of all 2^H hidden states through the model's block_free_energy, in batches of 4096 states.
std::vector<double> hidden_free_energies(const ModelRef& model, int64_t h)
{
    const int64_t total = int64_t{ 1 } << h, rows = std::min<int64_t>(total, 4096);
    std::vector<double> f(static_cast<size_t>(total));
    std::vector<float> states(static_cast<size_t>(rows * h));
    for (int64_t first = 0; first < total; first += rows)
    {
        ansatz::binary_states(h, first, rows, states.data());
        const ansatz_tensor s = ansatz::make_view(states.data(), { rows, h });
        ansatz_tensor out = ansatz::make_view(f.data() + first, { rows });
        model.block_free_energy(ANSATZ_BLOCK_HIDDEN, s, out);
    }
    return f;
}

double log_sum_exp_negated(const std::vector<double>& f)
{
    const double top = -*std::min_element(f.begin(), f.end());
    double s = 0;
    for (double x : f)
        s += std::exp(-x - top);
    return top + std::log(s);
}

// m exact samples of p(v): h from p(h) = exp(-F(h) - log Z) by inverting its distribution function,
// then v ~ p(v | h) through the model's conditional.
std::vector<float> exact_samples(const ModelRef& model, const std::vector<double>& f_hidden, double log_z,
                                 int64_t h, int64_t d, int64_t m, uint64_t seed)
{
    std::vector<double> cdf(f_hidden.size());
    double acc = 0;
    for (size_t k = 0; k < f_hidden.size(); ++k)
        cdf[k] = (acc += std::exp(-f_hidden[k] - log_z));
    Rng rng(seed);
    std::vector<float> hs(static_cast<size_t>(m * h)), vm(static_cast<size_t>(m * d)),
        vs(static_cast<size_t>(m * d));
    for (int64_t r = 0; r < m; ++r)
    {
        const double u = rng.uniform_double() * acc;
        const auto k = static_cast<uint64_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
        for (int64_t j = 0; j < h; ++j)
            hs[r * h + j] = static_cast<float>((std::min<uint64_t>(k, cdf.size() - 1) >> j) & 1u);
    }
    ansatz::StreamArray streams;
    const ansatz_tensor ht = ansatz::make_view(hs.data(), { m, h });
    ansatz_tensor vmt = ansatz::make_view(vm.data(), { m, d }), vst = ansatz::make_view(vs.data(), { m, d });
    model.conditional(ANSATZ_BLOCK_VISIBLE, ht, vmt, &vst, streams.split_from(rng, m));
    return vs;
}

// The ais component with every key given, base_data naming `base` (a dataset instance) when not null.
std::unique_ptr<Instance> make_ais(int64_t chains, int64_t temperatures, const std::string& schedule,
                                   bool reverse, const Instance* base,
                                   ansatz::engine::HostServices* host = nullptr)
{
    const ansatz::engine::PluginComponent* c = ansatz::test::in_tree_plugins().find("ais");
    REQUIRE(c != nullptr);
    ansatz::engine::ConfigValues config;
    config.set_int("chains", chains);
    config.set_int("temperatures", temperatures);
    config.set_text("schedule", ANSATZ_PARAM_CHOICE, schedule);
    config.set_bool("reverse", reverse);
    config.set_text("reverse_start", ANSATZ_PARAM_CHOICE, "first");
    if (base)
        config.set_component("base_data", base->name(), base->handle());
    else
        config.set_absent("base_data", ANSATZ_PARAM_COMPONENT);
    config.set_real("base_clip", 0.001);
    return std::make_unique<Instance>(*c, config.c("ais"),
                                      (host ? *host : ansatz::test::test_host()).table());
}

double frobenius(const ansatz_tensor& t)
{
    double s = 0;
    for (int64_t k = 0; k < ansatz::element_count(t); ++k)
        s += static_cast<double>(ansatz::f32(t)[k]) * ansatz::f32(t)[k];
    return std::sqrt(s);
}

} // namespace

namespace
{

// A 784 x 20 RBM trained by CD-1 on Fashion-MNIST, and its exact log Z from the model's block free energy
// of the 2^20 hidden states (kept: they give exact samples too).
struct Trained
{
    Images images;
    ansatz::test::TestRbm r;
    std::vector<double> f_hidden;
    double exact = 0;
    static constexpr int64_t h = 20;
};

Trained trained_rbm()
{
    Trained t;
    t.images = load_images(5000);
    t.r = ansatz::test::make_rbm(t.images.d, Trained::h, "init_std: 0.01", 61);
    // 1000 updates of 100 rows (20 passes over the 5000 images), learning rate 0.1.
    train_cd1(t.r.model, t.images, 1000, 0.1f, 62);
    t.f_hidden = hidden_free_energies(t.r.model, Trained::h);
    t.exact = log_sum_exp_negated(t.f_hidden);
    return t;
}

} // namespace

TEST_CASE("ais: forward and reverse AIS bracket the exact log Z of a 784x20 RBM trained by CD-1 on "
          "Fashion-MNIST, and forward is within 0.05 nats (100 chains, 14500 sigmoid temperatures, seeds 61 "
          "to 64)",
          "[evaluators][ais][statistical]")
{
    // One BLAS thread, as the engine sets for a run with the test host's budget (threads: 1): OpenBLAS's own
    // threads spin on these small products.
    ansatz::engine::set_blas_threads(1);
    const auto start = std::chrono::steady_clock::now();
    const Trained t = trained_rbm();
    const ModelRef& model = t.r.model;
    const int64_t d = t.images.d;
    const std::vector<ansatz_named_tensor> params = model.parameters();
    float w_max = 0;
    for (int64_t k = 0; k < ansatz::element_count(params[0].tensor); ++k)
        w_max = std::max(w_max, std::abs(ansatz::f32(params[0].tensor)[k]));
    const double w_norm = frobenius(params[0].tensor);
    WARN("trained weights: Frobenius norm " << w_norm << ", largest |w| " << w_max << ", visible bias norm "
                                            << frobenius(params[1].tensor) << ", hidden bias norm "
                                            << frobenius(params[2].tensor));
    // Trained weights, not small random ones: the hidden units matter for p(v).
    REQUIRE(w_norm > 10);
    const auto after_exact = std::chrono::steady_clock::now();

    // Reverse chains start at exact model samples, so the reverse estimate is high in expectation; data
    // rows would not be model samples, and the bracket would not be guaranteed.
    const int64_t chains = 100;
    std::vector<float> samples = exact_samples(model, t.f_hidden, t.exact, Trained::h, d, chains, 63);
    // The defaults: 100 chains, 14500 temperatures on the sigmoid schedule. (Over seeds 1000 to 1009 for the
    // samples and 2000 to 2009 for the evaluation, the errors were within 0.027 nats forward and reverse,
    // standard errors 0.011 to 0.015; Salakhutdinov & Murray's dense_near_one schedule gave 0.024 to 0.032.)
    auto ais = make_ais(chains, 14500, "sigmoid", true, t.images.dataset.get());
    const auto m = evaluate(*ais, model, ansatz::make_view(samples.data(), { chains, d }), Rng(64));
    const auto end = std::chrono::steady_clock::now();

    const double exact = t.exact;
    const double forward = metric(m, "log_z"), forward_se = metric(m, "log_z_stderr");
    const double reverse = metric(m, "log_z_reverse"), reverse_se = metric(m, "log_z_reverse_stderr");
    WARN("exact log Z " << exact << ", forward AIS " << forward << " +- " << forward_se << " (ESS "
                        << metric(m, "ais_ess") << "), reverse AIS " << reverse << " +- " << reverse_se
                        << " (ESS " << metric(m, "ais_ess_reverse") << "); training and enumeration "
                        << std::chrono::duration<double>(after_exact - start).count()
                        << " s, AIS both directions "
                        << std::chrono::duration<double>(end - after_exact).count() << " s");
    CHECK(std::abs(forward - exact) < 0.05);
    CHECK(forward <= exact + 2 * forward_se);
    CHECK(reverse >= exact - 2 * reverse_se);
    CHECK(std::abs(reverse - exact) < 0.05);

    // The log-likelihood is the data's mean -F minus the estimate.
    double mean_log_p = 0;
    const ansatz::test::RbmParams p = ansatz::test::read_params(model);
    for (int64_t k = 0; k < chains; ++k)
        mean_log_p -= p.free_energy(samples.data() + k * d) / static_cast<double>(chains);
    CHECK(metric(m, "log_likelihood") == Approx(mean_log_p - forward).margin(1e-6 * std::abs(mean_log_p)));
    CHECK(metric(m, "log_likelihood_reverse") ==
          Approx(mean_log_p - reverse).margin(1e-6 * std::abs(mean_log_p)));
    CHECK(metric(m, "log_likelihood_stderr") > forward_se);
}

namespace
{

// A D x H RBM with W ~ N(0, weight_std^2) and biases ~ N(0, 1) (seeded).
ansatz::test::TestRbm random_rbm(int64_t d, int64_t h, uint64_t seed, double weight_std)
{
    ansatz::test::TestRbm r = ansatz::test::make_rbm(d, h, "init_std: " + std::to_string(weight_std), seed);
    std::vector<ansatz_named_tensor> params = r.model.parameters();
    Rng biases(seed + 1);
    for (int64_t i = 0; i < d; ++i)
        ansatz::f32(params[1].tensor)[i] = static_cast<float>(biases.normal());
    for (int64_t j = 0; j < h; ++j)
        ansatz::f32(params[2].tensor)[j] = static_cast<float>(biases.normal());
    return r;
}

} // namespace

TEST_CASE(
    "ais: every schedule brackets and approaches the exact log Z of a 12x6 RBM with N(0,1) weights "
    "(200 chains, 1000 temperatures, seeds 71 to 73, within 0.05 nats and 3 standard errors, 0 failures "
    "over seeds 100 to 139)",
    "[evaluators][ais][statistical]")
{
    const int64_t d = 12, h = 6, chains = 200;
    const ansatz::test::TestRbm r = random_rbm(d, h, 71, 1.0);
    const std::vector<double> f_hidden = hidden_free_energies(r.model, h);
    const double exact = log_sum_exp_negated(f_hidden);
    std::vector<float> samples = exact_samples(r.model, f_hidden, exact, h, d, chains, 72);
    const ansatz_tensor view = ansatz::make_view(samples.data(), { chains, d });
    for (const char* schedule : { "dense_near_one", "linear", "sigmoid" })
    {
        INFO("schedule: " << schedule);
        auto ais = make_ais(chains, 1000, schedule, true, nullptr);
        const auto m = evaluate(*ais, r.model, view, Rng(73));
        const double forward = metric(m, "log_z"), reverse = metric(m, "log_z_reverse");
        INFO("exact " << exact << ", forward " << forward << " +- " << metric(m, "log_z_stderr")
                      << ", reverse " << reverse << " +- " << metric(m, "log_z_reverse_stderr"));
        CHECK(std::abs(forward - exact) < 0.05);
        CHECK(std::abs(reverse - exact) < 0.05);
        // Three standard errors here (the 784x20 test uses two, as asked of it): with 200 effective chains
        // the estimator's bias is far below its noise, and two would fail one seed in forty per check.
        CHECK(forward <= exact + 3 * metric(m, "log_z_stderr"));
        CHECK(reverse >= exact - 3 * metric(m, "log_z_reverse_stderr"));
        CHECK(metric(m, "ais_ess") > 0.5 * chains);
        CHECK(metric(m, "ais_ess_reverse") > 0.5 * chains);
    }
}

TEST_CASE(
    "ais: three temperatures are too few for a 12x6 RBM with N(0, 3^2) weights: the forward estimate is low "
    "by more than 0.05 nats with a small effective sample size (50 chains, seeds 74 and 75)",
    "[evaluators][ais]")
{
    // The power of the accuracy checks above: with three steps the weights are far from equal.
    const int64_t d = 12, h = 6, chains = 50;
    const ansatz::test::TestRbm r = random_rbm(d, h, 74, 3.0);
    const double exact = log_sum_exp_negated(hidden_free_energies(r.model, h));
    std::vector<float> data = ansatz::test::random_bits(chains, d, 0.5, 75);
    auto ais = make_ais(chains, 3, "linear", false, nullptr);
    const auto m = evaluate(*ais, r.model, ansatz::make_view(data.data(), { chains, d }), Rng(75));
    INFO("exact " << exact << ", forward " << metric(m, "log_z") << ", ESS " << metric(m, "ais_ess"));
    // The 0.05-nat criterion of the tests above rejects it, and the effective sample size says why.
    CHECK(metric(m, "log_z") < exact - 0.05);
    CHECK(metric(m, "ais_ess") < 0.2 * chains);
    CHECK(m.count("log_z_reverse") == 0);
}

TEST_CASE("ais: stateless and reproducible: the same stream gives the same metrics, another stream others",
          "[evaluators][ais]")
{
    const int64_t d = 12, h = 6, n = 30;
    const ansatz::test::TestRbm r = random_rbm(d, h, 76, 1.0);
    std::vector<float> data = ansatz::test::random_bits(n, d, 0.5, 77);
    const ansatz_tensor view = ansatz::make_view(data.data(), { n, d });
    auto ais = make_ais(20, 50, "sigmoid", true, nullptr);
    const auto first = evaluate(*ais, r.model, view, Rng(78));
    const auto again = evaluate(*ais, r.model, view, Rng(78));
    CHECK(first == again);
    REQUIRE(first.size() == 10);
    const auto other = evaluate(*ais, r.model, view, Rng(79));
    CHECK(metric(other, "log_z") != metric(first, "log_z"));
    CHECK(metric(other, "log_z_reverse") != metric(first, "log_z_reverse"));
}

TEST_CASE("ais: base_data naming a dataset of the evaluated rows gives the same estimate as the default, "
          "and one of another sample size is refused",
          "[evaluators][ais]")
{
    const Images images = load_images(200);
    const ansatz::test::TestRbm r = random_rbm(images.d, 8, 80, 0.05);
    const ansatz_tensor view = ansatz::make_view(images.rows.data(), { images.n, images.d });
    auto with_base = make_ais(10, 100, "linear", false, images.dataset.get());
    auto without = make_ais(10, 100, "linear", false, nullptr);
    const auto a = evaluate(*with_base, r.model, view, Rng(81));
    const auto b = evaluate(*without, r.model, view, Rng(81));
    CHECK(a == b);
    // A base-rate field from other data (all zeros) changes the estimate.
    std::vector<float> zeros(static_cast<size_t>(images.n * images.d), 0.0f);
    auto blank = make_ais(10, 100, "linear", false, nullptr);
    CHECK(metric(evaluate(*blank, r.model, ansatz::make_view(zeros.data(), { images.n, images.d }), Rng(81)),
                 "log_z") != metric(a, "log_z"));

    const ansatz::test::TestRbm small = random_rbm(12, 6, 82, 1.0);
    std::vector<float> rows = ansatz::test::random_bits(5, 12, 0.5, 83);
    auto mismatched = make_ais(10, 10, "linear", false, images.dataset.get());
    ansatz_status st{};
    REQUIRE(mismatched->evaluator().bind(mismatched->self(), &small.model.handle(), &st) == ANSATZ_STATUS_OK);
    ansatz::engine::MetricsSink sink;
    const ansatz_tensor rows_view = ansatz::make_view(rows.data(), { 5, 12 });
    Rng rng(84);
    CHECK(mismatched->evaluator().evaluate(mismatched->self(), &rows_view, &rng.state(), sink.c(), &st) ==
          ANSATZ_STATUS_INVALID_INPUT);
    CHECK(std::string(st.message) == "base_data's samples have 784 values, but the evaluated data's have 12");
}

TEST_CASE("ais: a cancelled run stops with ANSATZ_STATUS_CANCELLED", "[evaluators][ais]")
{
    const ansatz::test::TestRbm r = random_rbm(12, 6, 85, 1.0);
    std::vector<float> rows = ansatz::test::random_bits(5, 12, 0.5, 86);
    ansatz::engine::HostServices host(1, 1);
    host.request_cancel();
    auto ais = make_ais(10, 1000, "linear", false, nullptr, &host);
    ansatz_status st{};
    REQUIRE(ais->evaluator().bind(ais->self(), &r.model.handle(), &st) == ANSATZ_STATUS_OK);
    ansatz::engine::MetricsSink sink;
    const ansatz_tensor view = ansatz::make_view(rows.data(), { 5, 12 });
    Rng rng(87);
    CHECK(ais->evaluator().evaluate(ais->self(), &view, &rng.state(), sink.c(), &st) ==
          ANSATZ_STATUS_CANCELLED);
    CHECK(std::string(st.message).find("cancelled") != std::string::npos);
}

TEST_CASE(
    "ais: Gaussian visible units anneal from the confinement term alone (phi = 0): forward and reverse "
    "agree with the exact log Z of a 30x8 Gaussian-Bernoulli RBM (sigma 0.8, 200 chains, 5000 "
    "temperatures, seeds 88 to 90, within 0.05 nats and 3 standard errors, 0 failures over seeds 100 to "
    "139)",
    "[evaluators][ais][statistical]")
{
    const int64_t d = 30, h = 8, chains = 200;
    ansatz::test::TestRbm r =
        ansatz::test::make_rbm(d, h, "visible_units: gaussian, sigma: 0.8, init_std: 0.4", 88);
    {
        std::vector<ansatz_named_tensor> params = r.model.parameters();
        Rng biases(89);
        for (int64_t i = 0; i < d; ++i)
            ansatz::f32(params[1].tensor)[i] = static_cast<float>(biases.normal());
        for (int64_t j = 0; j < h; ++j)
            ansatz::f32(params[2].tensor)[j] = static_cast<float>(biases.normal());
    }
    const std::vector<double> f_hidden = hidden_free_energies(r.model, h);
    const double exact = log_sum_exp_negated(f_hidden);
    std::vector<float> samples = exact_samples(r.model, f_hidden, exact, h, d, chains, 90);
    auto ais = make_ais(chains, 5000, "sigmoid", true, nullptr);
    const auto m = evaluate(*ais, r.model, ansatz::make_view(samples.data(), { chains, d }), Rng(90));
    const double forward = metric(m, "log_z"), reverse = metric(m, "log_z_reverse");
    INFO("exact " << exact << ", forward " << forward << " +- " << metric(m, "log_z_stderr") << ", reverse "
                  << reverse << " +- " << metric(m, "log_z_reverse_stderr"));
    CHECK(std::abs(forward - exact) < 0.05);
    CHECK(std::abs(reverse - exact) < 0.05);
    CHECK(forward <= exact + 3 * metric(m, "log_z_stderr"));
    CHECK(reverse >= exact - 3 * metric(m, "log_z_reverse_stderr"));
}

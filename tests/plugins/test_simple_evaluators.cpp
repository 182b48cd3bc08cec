// The free_energy, reconstruction_error and pseudo_likelihood evaluators against direct computation in
// double on a small RBM, and pseudo_likelihood against scikit-learn's BernoulliRBM.score_samples.
#include "support/evaluators.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

namespace
{

using ansatz::Rng;
using ansatz::test::evaluate;
using ansatz::test::metric;

constexpr int64_t kD = 6;
constexpr int64_t kH = 4;

// The 6x4 RBM of the scikit-learn comparison (the Python script below uses the same numbers).
const std::vector<float> kW = {
    0.8f,  -1.2f, 0.5f, 0.3f, -0.7f, 0.9f, 1.4f,  -0.2f, 1.1f,  0.4f, -0.9f, 0.6f,
    -0.3f, -0.8f, 0.2f, 1.3f, 0.6f,  1.0f, -0.4f, -1.1f, -1.5f, 0.3f, 0.7f,  0.1f
};
const std::vector<float> kA = { 0.5f, -0.8f, 0.3f, -0.2f, 1.0f, -0.6f };
const std::vector<float> kB = { -0.4f, 0.7f, -1.0f, 0.2f };

ansatz::test::TestRbm fixed_rbm()
{
    ansatz::test::TestRbm r = ansatz::test::make_rbm(kD, kH);
    ansatz::test::write_params(r.model, kW, kA, kB);
    return r;
}

double sample_stderr(const std::vector<double>& x)
{
    const double n = static_cast<double>(x.size());
    const double mean = std::accumulate(x.begin(), x.end(), 0.0) / n;
    double ss = 0;
    for (double v : x)
        ss += (v - mean) * (v - mean);
    return std::sqrt(ss / (n - 1) / n);
}

double sigmoid(double x)
{
    return 1.0 / (1.0 + std::exp(-x));
}

} // namespace

TEST_CASE("free_energy evaluator: mean and standard error of F over 300 random rows match a double-precision "
          "computation (seed 11, relative 1e-6)",
          "[evaluators][free_energy]")
{
    const ansatz::test::TestRbm r = fixed_rbm();
    const ansatz::test::RbmParams p = ansatz::test::read_params(r.model);
    const int64_t n = 300;
    const std::vector<float> data = ansatz::test::random_bits(n, kD, 0.4, 11);
    std::vector<double> f;
    for (int64_t k = 0; k < n; ++k)
        f.push_back(p.free_energy(data.data() + k * kD));
    const double mean = std::accumulate(f.begin(), f.end(), 0.0) / n;

    const ansatz_tensor view = ansatz::make_view(data.data(), { n, kD });
    for (const char* yaml : { "{}", "{batch: 7}" })
    {
        INFO("configuration " << yaml);
        auto ev = ansatz::test::make("free_energy", yaml);
        const auto m = evaluate(*ev, r.model, view, Rng(1));
        REQUIRE(m.size() == 2);
        CHECK(metric(m, "free_energy") == Approx(mean).epsilon(1e-6));
        CHECK(metric(m, "free_energy_stderr") == Approx(sample_stderr(f)).epsilon(1e-5));
    }
}

TEST_CASE("reconstruction_error evaluator: matches h ~ p(h|v) from the documented per-row streams and "
          "E[v|h] computed in double (seed 21, 250 rows, absolute 1e-6)",
          "[evaluators][reconstruction_error]")
{
    const ansatz::test::TestRbm r = fixed_rbm();
    const ansatz::test::RbmParams p = ansatz::test::read_params(r.model);
    const int64_t n = 250;
    const std::vector<float> data = ansatz::test::random_bits(n, kD, 0.5, 21);

    // The evaluator splits one stream per row from the evaluate stream (seed 22) and draws
    // h_j = 1 when u < sigmoid(b_j + (vW)_j), one uniform per hidden unit in order.
    Rng replay(22);
    ansatz::StreamArray streams;
    const ansatz::Streams rows = streams.split_from(replay, n);
    std::vector<double> errors;
    for (int64_t k = 0; k < n; ++k)
    {
        const float* v = data.data() + k * kD;
        float h[kH];
        for (int64_t j = 0; j < kH; ++j)
            h[j] = rows[k].uniform() < static_cast<float>(sigmoid(p.pre_hidden(v, j))) ? 1.0f : 0.0f;
        double e = 0;
        for (int64_t i = 0; i < kD; ++i)
        {
            const double diff = v[i] - sigmoid(p.pre_visible(h, i));
            e += diff * diff;
        }
        errors.push_back(e / kD);
    }
    const double expected = std::accumulate(errors.begin(), errors.end(), 0.0) / n;

    const ansatz_tensor view = ansatz::make_view(data.data(), { n, kD });
    for (const char* yaml : { "{}", "{batch: 16}" })
    {
        INFO("configuration " << yaml);
        auto ev = ansatz::test::make("reconstruction_error", yaml);
        const auto m = evaluate(*ev, r.model, view, Rng(22));
        REQUIRE(m.size() == 2);
        CHECK(metric(m, "reconstruction_error") == Approx(expected).margin(1e-6));
        CHECK(metric(m, "reconstruction_error_stderr") == Approx(sample_stderr(errors)).epsilon(1e-4));
    }
    // Another stream gives other hidden draws, so another value.
    auto ev = ansatz::test::make("reconstruction_error");
    CHECK(metric(evaluate(*ev, r.model, view, Rng(23)), "reconstruction_error") != expected);
}

// Each entry [n][i] is scikit-learn 1.2.1's BernoulliRBM.score_samples(X)[n] when the corrupted unit of
// row n is i, for the RBM above (W, a, b) and the rows of kRows. Made by /usr/bin/python3 with:
//
//   import numpy as np
//   from sklearn.neural_network import BernoulliRBM
//   W = np.array([[0.8, -1.2, 0.5, 0.3], [-0.7, 0.9, 1.4, -0.2], [1.1, 0.4, -0.9, 0.6],
//                 [-0.3, -0.8, 0.2, 1.3], [0.6, 1.0, -0.4, -1.1], [-1.5, 0.3, 0.7, 0.1]])
//   a = np.array([0.5, -0.8, 0.3, -0.2, 1.0, -0.6]); b = np.array([-0.4, 0.7, -1.0, 0.2])
//   X = np.array([[1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 0, 1], [0, 0, 0, 1, 1, 1],
//                 [1, 0, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1]], float)
//   class Fixed(np.random.RandomState):          # score_samples draws rng.randint(0, D, N)
//       def __init__(self, column): super().__init__(0); self.column = column
//       def randint(self, low, high, size): return np.full(size, self.column)
//   rbm = BernoulliRBM(n_components=4)
//   rbm.components_, rbm.intercept_hidden_, rbm.intercept_visible_, rbm.n_features_in_ = W.T.copy(), b, a, 6
//   table = np.empty((8, 6))
//   for i in range(6):
//       rbm.random_state = Fixed(i); table[:, i] = rbm.score_samples(X)
//   for row in table: print("{ " + ", ".join("%.12f" % x for x in row) + " },")
const float kRows[8][kD] = { { 1, 0, 1, 1, 0, 0 }, { 0, 1, 1, 0, 1, 0 }, { 1, 1, 0, 0, 0, 1 },
                             { 0, 0, 0, 1, 1, 1 }, { 1, 0, 0, 0, 1, 1 }, { 1, 1, 1, 1, 1, 1 },
                             { 0, 0, 0, 0, 0, 0 }, { 0, 1, 0, 1, 0, 1 } };
const double kSklearn[8][kD] = {
    { -2.040205310299, -2.658887385970, -1.368523146403, -3.075702918411, -7.309907778460, -1.709462881380 },
    { -5.068581901656, -5.143806283142, -1.761670028678, -3.156911795129, -1.134366142053, -2.393783571823 },
    { -3.561048152507, -3.001826498879, -6.047764075827, -5.577782860753, -8.075733500766, -4.821234624933 },
    { -5.241222411712, -5.886518036863, -8.191230672024, -4.945139985254, -2.294752778944, -6.095965926785 },
    { -3.937609047218, -5.770581176199, -8.392153571081, -4.192282094818, -1.885560856550, -7.655626002161 },
    { -3.548726622922, -4.272616880148, -2.437267056062, -4.364132679541, -2.444975900177, -7.004631453172 },
    { -6.254581504940, -4.625086569690, -9.594847780073, -4.764115350873, -10.207961290940, -2.921735491735 },
    { -5.763957170529, -2.911199475193, -6.194019512189, -3.699275944787, -7.044210518134, -4.062737521720 },
};

TEST_CASE("pseudo_likelihood evaluator: equals scikit-learn's score_samples for the units it flips "
          "(8 rows, seeds 31 to 40, relative 1e-5)",
          "[evaluators][pseudo_likelihood]")
{
    const ansatz::test::TestRbm r = fixed_rbm();
    std::vector<float> data(&kRows[0][0], &kRows[0][0] + 8 * kD);
    const ansatz_tensor view = ansatz::make_view(data.data(), { 8, kD });
    auto ev = ansatz::test::make("pseudo_likelihood", "{batch: 3}");
    std::vector<int> seen(kD, 0);
    for (uint64_t seed = 31; seed <= 40; ++seed)
    {
        INFO("seed " << seed);
        // The evaluator draws unit i_n = rng.below(D) for rows n = 0, 1, ... in order.
        Rng replay(seed);
        std::vector<double> pl;
        for (int k = 0; k < 8; ++k)
        {
            const auto i = replay.below(kD);
            ++seen[i];
            pl.push_back(kSklearn[k][i]);
        }
        const double expected = std::accumulate(pl.begin(), pl.end(), 0.0) / 8;
        const auto m = evaluate(*ev, r.model, view, Rng(seed));
        REQUIRE(m.size() == 2);
        CHECK(metric(m, "pseudo_likelihood") == Approx(expected).epsilon(1e-5));
        CHECK(metric(m, "pseudo_likelihood_stderr") == Approx(sample_stderr(pl)).epsilon(1e-4));
    }
    // 80 draws reached every unit, so every column of the table was compared.
    for (int i = 0; i < kD; ++i)
        CHECK(seen[i] > 0);
}

TEST_CASE(
    "pseudo_likelihood evaluator: a double-precision replay of the flips agrees on 500 rows of 784 units "
    "(seed 41, relative 1e-5)",
    "[evaluators][pseudo_likelihood]")
{
    // A larger model with random weights (init_std 0.1) and biases: the same formula at scale.
    const int64_t d = 784, h = 20, n = 500;
    const ansatz::test::TestRbm r = ansatz::test::make_rbm(d, h, "init_std: 0.1", 42);
    {
        std::vector<ansatz_named_tensor> params = r.model.parameters();
        Rng biases(43);
        for (int64_t i = 0; i < d; ++i)
            ansatz::f32(params[1].tensor)[i] = static_cast<float>(biases.normal());
        for (int64_t j = 0; j < h; ++j)
            ansatz::f32(params[2].tensor)[j] = static_cast<float>(biases.normal());
    }
    const ansatz::test::RbmParams p = ansatz::test::read_params(r.model);
    const std::vector<float> data = ansatz::test::random_bits(n, d, 0.3, 41);
    Rng replay(44);
    std::vector<double> pl;
    std::vector<float> flipped(static_cast<size_t>(d));
    for (int64_t k = 0; k < n; ++k)
    {
        const auto i = replay.below(d);
        std::copy_n(data.data() + k * d, d, flipped.data());
        flipped[i] = 1.0f - flipped[i];
        const double x = p.free_energy(flipped.data()) - p.free_energy(data.data() + k * d);
        pl.push_back(static_cast<double>(d) * std::log(sigmoid(x)));
    }
    const double expected = std::accumulate(pl.begin(), pl.end(), 0.0) / static_cast<double>(n);
    auto ev = ansatz::test::make("pseudo_likelihood");
    const auto m = evaluate(*ev, r.model, ansatz::make_view(data.data(), { n, d }), Rng(44));
    CHECK(metric(m, "pseudo_likelihood") == Approx(expected).epsilon(1e-5));
    CHECK(metric(m, "pseudo_likelihood_stderr") == Approx(sample_stderr(pl)).epsilon(1e-4));
}

TEST_CASE("evaluators declare the model functions they call", "[evaluators]")
{
    const auto needs = [](const char* name) {
        const ansatz::engine::PluginComponent* c = ansatz::test::in_tree_plugins().find(name);
        REQUIRE(c != nullptr);
        CHECK(c->desc->kind == ANSATZ_KIND_EVALUATOR);
        return c->desc->needs;
    };
    CHECK(needs("free_energy") == ANSATZ_FN_FREE_ENERGY);
    CHECK(needs("reconstruction_error") == ANSATZ_FN_CONDITIONAL);
    CHECK(needs("pseudo_likelihood") == ANSATZ_FN_ENERGY_DELTA);
    CHECK(needs("exact_likelihood") == (ANSATZ_FN_CONDITIONAL | ANSATZ_FN_BLOCK_FREE_ENERGY));
    CHECK(needs("ais") == (ANSATZ_FN_CONDITIONAL | ANSATZ_FN_TEMPERED));

    // A model with only an energy (the fixture) lacks what every evaluator but free_energy needs, which is
    // what the host's validation compares.
    ansatz::engine::Registry fixtures;
    REQUIRE(
        fixtures.load(std::filesystem::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_energy_only.so"));
    const ansatz::engine::PluginComponent* c = fixtures.find("energy_only");
    REQUIRE(c != nullptr);
    ansatz::engine::ConfigValues config = ansatz::engine::config_from_yaml(*c->desc, "{}");
    const ansatz::engine::Instance energy_only(*c, config.c("energy_only"),
                                               ansatz::test::test_host().table());
    const uint64_t has = ansatz::ModelRef(energy_only.model()).functions();
    CHECK((has & needs("free_energy")) == needs("free_energy"));
    for (const char* name : { "reconstruction_error", "exact_likelihood", "ais" })
    {
        INFO(name);
        CHECK((has & needs(name)) != needs(name));
    }
}

TEST_CASE("pseudo_likelihood evaluator: Gaussian visible units are refused in bind",
          "[evaluators][pseudo_likelihood]")
{
    ansatz::test::TestRbm r = ansatz::test::make_rbm(5, 3, "visible_units: gaussian");
    auto ev = ansatz::test::make("pseudo_likelihood");
    ansatz_status st{};
    CHECK(ev->evaluator().bind(ev->self(), &r.model.handle(), &st) == ANSATZ_STATUS_INVALID_INPUT);
    CHECK(std::string(st.message) ==
          "the pseudo-likelihood flips one unit per row, so it needs binary or spin "
          "visible units; the model's are real-valued");
}

TEST_CASE(
    "free_energy and reconstruction_error evaluators on Gaussian visible units match a double-precision "
    "computation (5x3 RBM, sigma 1, seed 25, 100 rows)",
    "[evaluators][free_energy][reconstruction_error]")
{
    const int64_t d = 5, h = 3, n = 100;
    ansatz::test::TestRbm r = ansatz::test::make_rbm(d, h, "visible_units: gaussian, init_std: 0.5", 25);
    const ansatz::test::RbmParams p = ansatz::test::read_params(r.model);
    Rng rows_rng(26);
    std::vector<float> data(static_cast<size_t>(n * d));
    for (float& x : data)
        x = static_cast<float>(rows_rng.normal());
    // sigma = 1: F(v) = |v - a|^2 / 2 - sum_j softplus(b_j + (v W)_j), E[v | h] = a + W h.
    std::vector<double> f, errors;
    Rng replay(27);
    ansatz::StreamArray streams;
    const ansatz::Streams row_streams = streams.split_from(replay, n);
    for (int64_t k = 0; k < n; ++k)
    {
        const float* v = data.data() + k * d;
        double quadratic = 0;
        for (int64_t i = 0; i < d; ++i)
            quadratic += (v[i] - p.a[i]) * (v[i] - p.a[i]) / 2;
        f.push_back(quadratic + p.free_energy(v) + [&] {
            double av = 0; // p.free_energy has -a.v for Bernoulli units; take it back out
            for (int64_t i = 0; i < d; ++i)
                av += p.a[i] * v[i];
            return av;
        }());
        float hs[h];
        for (int64_t j = 0; j < h; ++j)
            hs[j] = row_streams[k].uniform() < static_cast<float>(sigmoid(p.pre_hidden(v, j))) ? 1.0f : 0.0f;
        double e = 0;
        for (int64_t i = 0; i < d; ++i)
        {
            const double diff = v[i] - p.pre_visible(hs, i);
            e += diff * diff;
        }
        errors.push_back(e / d);
    }
    const ansatz_tensor view = ansatz::make_view(data.data(), { n, d });
    auto fe = ansatz::test::make("free_energy");
    CHECK(metric(evaluate(*fe, r.model, view, Rng(1)), "free_energy") ==
          Approx(std::accumulate(f.begin(), f.end(), 0.0) / n).epsilon(1e-6));
    auto re = ansatz::test::make("reconstruction_error");
    CHECK(metric(evaluate(*re, r.model, view, Rng(27)), "reconstruction_error") ==
          Approx(std::accumulate(errors.begin(), errors.end(), 0.0) / n).epsilon(1e-6));
}

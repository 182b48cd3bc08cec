// The rbm model against exact enumeration and double-precision finite differences.
#include "ansatz/testing/conformance.hpp"
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;

// The parameters of an RBM, copied to double.
struct Params
{
    int64_t d = 0, h = 0;
    std::vector<double> w, a, b; // w row-major {d, h}
};

Params read_params(const ModelRef& m)
{
    const std::vector<ansatz_named_tensor> p = m.parameters();
    REQUIRE(p.size() == 3);
    Params out;
    out.d = p[0].tensor.shape[0];
    out.h = p[0].tensor.shape[1];
    out.w.assign(ansatz::f32(p[0].tensor), ansatz::f32(p[0].tensor) + out.d * out.h);
    out.a.assign(ansatz::f32(p[1].tensor), ansatz::f32(p[1].tensor) + out.d);
    out.b.assign(ansatz::f32(p[2].tensor), ansatz::f32(p[2].tensor) + out.h);
    return out;
}

// E(v, h) = -a.v - b.h - v W h, in double.
double energy(const Params& p, const double* v, const std::vector<int>& h)
{
    double e = 0;
    for (int64_t i = 0; i < p.d; ++i)
        e -= p.a[i] * v[i];
    for (int64_t j = 0; j < p.h; ++j)
        e -= p.b[j] * h[j];
    for (int64_t i = 0; i < p.d; ++i)
        for (int64_t j = 0; j < p.h; ++j)
            e -= v[i] * p.w[i * p.h + j] * h[j];
    return e;
}

std::vector<int> bits(uint64_t state, int64_t n)
{
    std::vector<int> out(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
        out[k] = static_cast<int>((state >> k) & 1u);
    return out;
}

// -log sum_h exp(-E(v, h)) by enumerating every hidden state.
double free_energy_by_enumeration(const Params& p, const double* v)
{
    std::vector<double> minus_e;
    for (uint64_t s = 0; s < (uint64_t(1) << p.h); ++s)
        minus_e.push_back(-energy(p, v, bits(s, p.h)));
    double top = minus_e[0];
    for (double x : minus_e)
        top = std::max(top, x);
    double sum = 0;
    for (double x : minus_e)
        sum += std::exp(x - top);
    return -(top + std::log(sum));
}

// The closed form F(v) = -a.v - sum_j log(1 + exp(b_j + (vW)_j)), in double (for finite differences).
double free_energy_closed(const Params& p, const double* v)
{
    double f = 0;
    for (int64_t i = 0; i < p.d; ++i)
        f -= p.a[i] * v[i];
    for (int64_t j = 0; j < p.h; ++j)
    {
        double x = p.b[j];
        for (int64_t i = 0; i < p.d; ++i)
            x += v[i] * p.w[i * p.h + j];
        f -= std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
    }
    return f;
}

// Sets every parameter (weights and both biases) to N(0, scale^2) values from rng.
void randomise(const ModelRef& m, Rng& rng, double scale)
{
    for (ansatz_named_tensor& t : m.parameters())
        for (int64_t k = 0; k < ansatz::element_count(t.tensor); ++k)
            ansatz::f32(t.tensor)[k] = static_cast<float>(scale * rng.normal());
}

struct Rbm
{
    std::unique_ptr<ansatz::engine::Instance> inst;
    ModelRef m;
};

Rbm make_rbm(int d, int h, double init_std, uint64_t seed)
{
    Rbm r;
    r.inst = ansatz::test::make("rbm", "{hidden: " + std::to_string(h) + ", visible: " + std::to_string(d) +
                                           ", init_std: " + std::to_string(init_std) + "}");
    r.m = ansatz::test::model_ref(*r.inst);
    Rng rng(seed);
    r.m.setup({ d }, rng);
    return r;
}

// Rows of v: every binary state of d units, then `extra` rows of fractional values in [0, 1].
std::vector<float> all_states_and_grey(int d, int extra, Rng& rng)
{
    std::vector<float> v;
    for (uint64_t s = 0; s < (uint64_t(1) << d); ++s)
        for (int bit : bits(s, d))
            v.push_back(static_cast<float>(bit));
    for (int k = 0; k < extra * d; ++k)
        v.push_back(rng.uniform());
    return v;
}

// E_beta,phi(v, h) = beta E(v, h) - phi.v (binary visible units: beta multiplies the whole energy).
double tempered_energy(const Params& p, double beta, const std::vector<double>& phi, const double* v,
                       const std::vector<int>& h)
{
    double e = beta * energy(p, v, h);
    for (int64_t i = 0; i < p.d; ++i)
        e -= phi[i] * v[i];
    return e;
}

double log_sum_exp(const std::vector<double>& x)
{
    double top = x[0];
    for (double y : x)
        top = std::max(top, y);
    double sum = 0;
    for (double y : x)
        sum += std::exp(y - top);
    return top + std::log(sum);
}

// Every binary state of n units as rows of floats (state k: unit i is bit i of k).
std::vector<float> binary_rows(int64_t n)
{
    std::vector<float> out;
    for (uint64_t s = 0; s < (uint64_t(1) << n); ++s)
        for (int bit : bits(s, n))
            out.push_back(static_cast<float>(bit));
    return out;
}

std::vector<double> to_double(const float* x, int64_t n)
{
    return std::vector<double>(x, x + n);
}

} // namespace

TEST_CASE("rbm: free energy equals -log sum_h exp(-E(v,h)) by enumeration on a 5x3 RBM", "[rbm]")
{
    Rbm r = make_rbm(5, 3, 0.5, 21);
    Rng rng(22);
    randomise(r.m, rng, 0.8);
    const Params p = read_params(r.m);
    // The 32 binary states and 8 grey (fractional) ones.
    std::vector<float> v = all_states_and_grey(5, 8, rng);
    const int64_t n = static_cast<int64_t>(v.size()) / 5;
    std::vector<float> f(static_cast<size_t>(n));
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, 5 });
    ansatz_tensor ft = ansatz::make_view(f.data(), { n });
    r.m.free_energy(vt, ft);
    for (int64_t k = 0; k < n; ++k)
    {
        std::vector<double> row(v.begin() + k * 5, v.begin() + (k + 1) * 5);
        const double exact = free_energy_by_enumeration(p, row.data());
        INFO("row " << k);
        // float32 arithmetic on O(1) terms: 1e-5 is ~100 ulp of the result.
        CHECK(f[k] == Approx(exact).epsilon(1e-5).margin(1e-5));
    }
}

TEST_CASE("rbm: free_energy_grad matches central finite differences in double for every parameter element",
          "[rbm]")
{
    Rbm r = make_rbm(5, 3, 0.5, 31);
    Rng rng(32);
    randomise(r.m, rng, 0.8);
    Params p = read_params(r.m);
    // A batch of 3 binary rows and 2 grey rows.
    std::vector<float> v;
    for (int k = 0; k < 5 * 5; ++k)
        v.push_back(k < 15 ? (rng.uniform() < 0.5f ? 1.0f : 0.0f) : rng.uniform());
    ansatz_tensor vt = ansatz::make_view(v.data(), { 5, 5 });

    // grads start at 0.25 so that the test also checks grads += scale * ..., not grads =.
    const float scale = 0.7f;
    std::vector<float> gw(15, 0.25f), ga(5, 0.25f), gb(3, 0.25f);
    ansatz_tensor grads[3] = { ansatz::make_view(gw.data(), { 5, 3 }), ansatz::make_view(ga.data(), { 5 }),
                               ansatz::make_view(gb.data(), { 3 }) };
    r.m.free_energy_grad(vt, scale, grads, 3);

    // Asked for the value too, the same pass gives free_energy's values and the same gradient.
    std::vector<float> gw2(15, 0.25f), ga2(5, 0.25f), gb2(3, 0.25f), f_pass(5), f_alone(5);
    ansatz_tensor grads2[3] = { ansatz::make_view(gw2.data(), { 5, 3 }), ansatz::make_view(ga2.data(), { 5 }),
                                ansatz::make_view(gb2.data(), { 3 }) };
    ansatz_tensor pass_view = ansatz::make_view(f_pass.data(), { 5 });
    ansatz_tensor alone_view = ansatz::make_view(f_alone.data(), { 5 });
    r.m.free_energy_grad(vt, scale, grads2, 3, &pass_view);
    r.m.free_energy(vt, alone_view);
    CHECK(f_pass == f_alone);
    CHECK(gw2 == gw);
    CHECK(ga2 == ga);
    CHECK(gb2 == gb);

    const auto total = [&](const Params& q) {
        double s = 0;
        for (int n = 0; n < 5; ++n)
        {
            std::vector<double> row(v.begin() + n * 5, v.begin() + (n + 1) * 5);
            s += free_energy_closed(q, row.data());
        }
        return s;
    };
    // Central differences in double with h = 1e-5: truncation error ~h^2 |F'''| ~ 1e-10, rounding
    // ~1e-16 / h ~ 1e-11; the float32 gradient is good to ~1e-6 relative. Tolerance 1e-5 abs + rel.
    const double h = 1e-5;
    const auto check_all = [&](std::vector<double> Params::*field, const std::vector<float>& got,
                               const char* name) {
        for (size_t k = 0; k < got.size(); ++k)
        {
            Params plus = p, minus = p;
            (plus.*field)[k] += h;
            (minus.*field)[k] -= h;
            const double fd = (total(plus) - total(minus)) / (2 * h);
            INFO(name << "[" << k << "]");
            CHECK(got[k] == Approx(0.25 + scale * fd).epsilon(1e-5).margin(1e-5));
        }
    };
    check_all(&Params::w, gw, "weights");
    check_all(&Params::a, ga, "visible_bias");
    check_all(&Params::b, gb, "hidden_bias");
}

TEST_CASE("rbm: free_energy_grad_weighted matches central finite differences in double of sum_n w_n F(v_n), "
          "with mixed-sign weights",
          "[rbm]")
{
    Rbm r = make_rbm(5, 3, 0.5, 33);
    REQUIRE(r.m.has(ANSATZ_FN_WEIGHTED_GRAD));
    Rng rng(34);
    randomise(r.m, rng, 0.8);
    const Params p = read_params(r.m);
    // 6 rows: 4 binary, 2 grey; weights of both signs, as a loss stacks data (-1/B) and chains (+1/M).
    const int64_t n = 6;
    std::vector<float> v;
    for (int k = 0; k < n * 5; ++k)
        v.push_back(k < 20 ? (rng.uniform() < 0.5f ? 1.0f : 0.0f) : rng.uniform());
    const std::vector<float> weights = { -0.25f, -0.25f, -0.25f, 0.5f, 1.5f, -2.0f };
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, 5 });

    // grads start at 0.25: the call adds.
    std::vector<float> gw(15, 0.25f), ga(5, 0.25f), gb(3, 0.25f), f(n, 0.0f), f_alone(n);
    ansatz_tensor grads[3] = { ansatz::make_view(gw.data(), { 5, 3 }), ansatz::make_view(ga.data(), { 5 }),
                               ansatz::make_view(gb.data(), { 3 }) };
    ansatz_tensor ft = ansatz::make_view(f.data(), { n }), fat = ansatz::make_view(f_alone.data(), { n });
    r.m.free_energy_grad_weighted(vt, weights.data(), grads, 3, &ft);
    r.m.free_energy(vt, fat);
    CHECK(f == f_alone);

    const auto total = [&](const Params& q) {
        double s = 0;
        for (int64_t k = 0; k < n; ++k)
        {
            std::vector<double> row(v.begin() + k * 5, v.begin() + (k + 1) * 5);
            s += weights[k] * free_energy_closed(q, row.data());
        }
        return s;
    };
    // As the unweighted check: h = 1e-5 in double, tolerance 1e-5 absolute + relative.
    const double h = 1e-5;
    const auto check_all = [&](std::vector<double> Params::*field, const std::vector<float>& got,
                               const char* name) {
        for (size_t k = 0; k < got.size(); ++k)
        {
            Params plus = p, minus = p;
            (plus.*field)[k] += h;
            (minus.*field)[k] -= h;
            const double fd = (total(plus) - total(minus)) / (2 * h);
            INFO(name << "[" << k << "]");
            CHECK(got[k] == Approx(0.25 + fd).epsilon(1e-5).margin(1e-5));
        }
    };
    check_all(&Params::w, gw, "weights");
    check_all(&Params::a, ga, "visible_bias");
    check_all(&Params::b, gb, "hidden_bias");

    // Equal weights w are free_energy_grad with scale w (within float rounding of the row scaling).
    std::vector<float> same(n, 0.7f), gw1(15, 0.0f), ga1(5, 0.0f), gb1(3, 0.0f), gw2(15, 0.0f), ga2(5, 0.0f),
        gb2(3, 0.0f);
    ansatz_tensor g1[3] = { ansatz::make_view(gw1.data(), { 5, 3 }), ansatz::make_view(ga1.data(), { 5 }),
                            ansatz::make_view(gb1.data(), { 3 }) };
    ansatz_tensor g2[3] = { ansatz::make_view(gw2.data(), { 5, 3 }), ansatz::make_view(ga2.data(), { 5 }),
                            ansatz::make_view(gb2.data(), { 3 }) };
    r.m.free_energy_grad_weighted(vt, same.data(), g1, 3);
    r.m.free_energy_grad(vt, 0.7f, g2, 3);
    for (size_t k = 0; k < gw1.size(); ++k)
        CHECK(gw1[k] == Approx(gw2[k]).epsilon(1e-6).margin(1e-6));
    for (size_t k = 0; k < ga1.size(); ++k)
        CHECK(ga1[k] == Approx(ga2[k]).epsilon(1e-6).margin(1e-6));
    for (size_t k = 0; k < gb1.size(); ++k)
        CHECK(gb1[k] == Approx(gb2[k]).epsilon(1e-6).margin(1e-6));

    // A wrong count of gradient buffers is refused, naming the call.
    REQUIRE_THROWS_WITH(r.m.free_energy_grad_weighted(vt, weights.data(), grads, 2),
                        Catch::Contains("rbm free_energy_grad_weighted: got 2 gradients, expected 3"));
}

TEST_CASE("rbm: energy_delta equals F(v with one site changed) - F(v) in every chain", "[rbm]")
{
    Rbm r = make_rbm(12, 7, 0.5, 41);
    Rng rng(42);
    randomise(r.m, rng, 1.0);
    const int64_t n = 40, d = 12;
    std::vector<float> v(static_cast<size_t>(n * d)), flipped;
    for (size_t k = 0; k < v.size(); ++k) // the last 8 chains are grey, the rest binary
        v[k] = k >= size_t(32 * d) ? rng.uniform() : (rng.uniform() < 0.5f ? 1.0f : 0.0f);
    std::vector<int64_t> sites(static_cast<size_t>(n));
    std::vector<float> new_values(static_cast<size_t>(n));
    flipped = v;
    for (int64_t k = 0; k < n; ++k) // binary chains: a flip; grey chains: a move to a random value
    {
        sites[k] = static_cast<int64_t>(rng.below(d));
        float& x = flipped[k * d + sites[k]];
        new_values[k] = k < 32 ? 1.0f - x : rng.uniform();
        x = new_values[k];
    }
    std::vector<float> delta(n), f0(n), f1(n);
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d }),
                  ft = ansatz::make_view(flipped.data(), { n, d });
    ansatz_tensor dt = ansatz::make_view(delta.data(), { n }), f0t = ansatz::make_view(f0.data(), { n }),
                  f1t = ansatz::make_view(f1.data(), { n });
    r.m.energy_delta(vt, sites.data(), new_values.data(), dt);
    r.m.free_energy(vt, f0t);
    r.m.free_energy(ft, f1t);
    for (int64_t k = 0; k < n; ++k)
    {
        INFO("chain " << k << ", site " << sites[k]);
        // Both sides are float32 with |F| ~ 10: 1e-4 absolute is ~100 ulp of F.
        CHECK(delta[k] == Approx(f1[k] - f0[k]).margin(1e-4));
    }

    // A value outside the units' support, or a site outside [0, D), is refused.
    new_values[5] = 1.5f;
    REQUIRE_THROWS_WITH(
        r.m.energy_delta(vt, sites.data(), new_values.data(), dt),
        Catch::Contains("new value 1.500000 of chain 5 is outside the units' support [0, 1]"));
    new_values[5] = 0.0f;
    sites[3] = d;
    REQUIRE_THROWS_AS(r.m.energy_delta(vt, sites.data(), new_values.data(), dt), ansatz::Error);
}

TEST_CASE("rbm: conditional means match p(h_j=1|v) and p(v_i=1|h) by enumeration", "[rbm]")
{
    Rbm r = make_rbm(5, 3, 0.5, 51);
    Rng rng(52);
    randomise(r.m, rng, 0.8);
    const Params p = read_params(r.m);

    // Hidden given v, for the 32 binary and 4 grey v: sum_h h_j exp(-E) / sum_h exp(-E).
    std::vector<float> v = all_states_and_grey(5, 4, rng);
    const int64_t n = static_cast<int64_t>(v.size()) / 5;
    std::vector<float> mean(static_cast<size_t>(n * 3));
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, 5 }), mt = ansatz::make_view(mean.data(), { n, 3 });
    r.m.conditional(ANSATZ_BLOCK_HIDDEN, vt, mt, nullptr);
    for (int64_t k = 0; k < n; ++k)
    {
        std::vector<double> row(v.begin() + k * 5, v.begin() + (k + 1) * 5);
        std::vector<double> num(3, 0.0);
        double den = 0;
        for (uint64_t s = 0; s < 8; ++s)
        {
            const std::vector<int> h = bits(s, 3);
            const double w = std::exp(-energy(p, row.data(), h));
            den += w;
            for (int j = 0; j < 3; ++j)
                num[j] += h[j] * w;
        }
        for (int j = 0; j < 3; ++j)
            CHECK(mean[k * 3 + j] == Approx(num[j] / den).margin(1e-6));
    }

    // Visible given h, for the 8 binary h: sum_v v_i exp(-E) / sum_v exp(-E).
    std::vector<float> h(8 * 3), vmean(8 * 5);
    for (uint64_t s = 0; s < 8; ++s)
        for (int j = 0; j < 3; ++j)
            h[s * 3 + j] = static_cast<float>((s >> j) & 1u);
    ansatz_tensor ht = ansatz::make_view(h.data(), { 8, 3 }), vmt = ansatz::make_view(vmean.data(), { 8, 5 });
    r.m.conditional(ANSATZ_BLOCK_VISIBLE, ht, vmt, nullptr);
    for (uint64_t s = 0; s < 8; ++s)
    {
        std::vector<double> num(5, 0.0);
        double den = 0;
        for (uint64_t vs = 0; vs < 32; ++vs)
        {
            const std::vector<int> vb = bits(vs, 5);
            const std::vector<double> vd(vb.begin(), vb.end());
            const double w = std::exp(-energy(p, vd.data(), bits(s, 3)));
            den += w;
            for (int i = 0; i < 5; ++i)
                num[i] += vb[i] * w;
        }
        for (int i = 0; i < 5; ++i)
            CHECK(vmean[s * 5 + i] == Approx(num[i] / den).margin(1e-6));
    }
}

TEST_CASE("rbm: sampled hidden units are binary with frequency = mean (seed 61, N = 20000 rows, tol 5 sigma)",
          "[rbm][statistical]")
{
    Rbm r = make_rbm(5, 3, 0.5, 61);
    Rng rng(61);
    randomise(r.m, rng, 0.8);
    const int64_t n = 20000;
    const std::vector<float> one = { 1, 0, 1, 1, 0 };
    std::vector<float> v;
    for (int64_t k = 0; k < n; ++k)
        v.insert(v.end(), one.begin(), one.end());
    std::vector<float> mean(n * 3), sample(n * 3, -1.0f);
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, 5 }), mt = ansatz::make_view(mean.data(), { n, 3 }),
                  st = ansatz::make_view(sample.data(), { n, 3 });
    ansatz::StreamArray rows;
    r.m.conditional(ANSATZ_BLOCK_HIDDEN, vt, mt, &st, rows.split_from(rng, n));
    for (int j = 0; j < 3; ++j)
    {
        double sum = 0;
        for (int64_t k = 0; k < n; ++k)
        {
            const float x = sample[k * 3 + j];
            REQUIRE((x == 0.0f || x == 1.0f));
            sum += x;
        }
        const double pj = mean[j];
        // 5 standard errors of a binomial proportion over N = 20000 draws.
        CHECK(std::abs(sum / n - pj) < 5 * std::sqrt(pj * (1 - pj) / n));
    }
}

TEST_CASE("rbm: setup draws W ~ N(0, init_std^2) with zero biases, and random_state is Bernoulli(0.5) "
          "(seed 71, 5000 weights and 40000 units, 5 sigma)",
          "[rbm][statistical]")
{
    auto inst = ansatz::test::make("rbm", "{hidden: 50, init_std: 0.3}");
    ModelRef m = ansatz::test::model_ref(*inst);
    Rng rng(71);
    m.setup({ 10, 10 }, rng); // visible 0: D = 100 from the shape
    REQUIRE(m.block_size(ANSATZ_BLOCK_VISIBLE) == 100);
    REQUIRE(m.block_size(ANSATZ_BLOCK_HIDDEN) == 50);
    const std::vector<ansatz_named_tensor> p = m.parameters();
    REQUIRE(std::string(p[0].name) == "weights");
    REQUIRE(std::string(p[1].name) == "visible_bias");
    REQUIRE(std::string(p[2].name) == "hidden_bias");
    REQUIRE(ansatz::shape_string(p[0].tensor) == "{100, 50}");
    REQUIRE(ansatz::shape_string(p[1].tensor) == "{100}");
    REQUIRE(ansatz::shape_string(p[2].tensor) == "{50}");
    double s1 = 0, s2 = 0;
    for (int k = 0; k < 5000; ++k)
    {
        s1 += ansatz::f32(p[0].tensor)[k];
        s2 += double(ansatz::f32(p[0].tensor)[k]) * ansatz::f32(p[0].tensor)[k];
    }
    // 5000 normal draws: the sample std is within 5% of 0.3 (its standard error is 1%), the mean
    // within 5 standard errors 5 * 0.3 / sqrt(5000) = 0.021.
    CHECK(std::abs(s1 / 5000) < 0.021);
    CHECK(std::sqrt(s2 / 5000) == Approx(0.3).epsilon(0.05));
    for (int k = 0; k < 100; ++k)
        CHECK(ansatz::f32(p[1].tensor)[k] == 0.0f);
    for (int k = 0; k < 50; ++k)
        CHECK(ansatz::f32(p[2].tensor)[k] == 0.0f);

    // random_state: 400 x 100 values, each 0 or 1, mean 0.5 within 5 sigma = 5 * 0.5 / 200 = 0.0125.
    std::vector<float> state(400 * 100, -1.0f);
    ansatz_tensor st = ansatz::make_view(state.data(), { 400, 100 });
    ansatz::StreamArray rows;
    m.random_state(st, rows.split_from(rng, 400));
    double ones = 0;
    for (float x : state)
    {
        REQUIRE((x == 0.0f || x == 1.0f));
        ones += x;
    }
    CHECK(std::abs(ones / state.size() - 0.5) < 0.0125);
}

TEST_CASE("rbm: a visible key that disagrees with the data is an InputError naming both sizes", "[rbm]")
{
    auto inst = ansatz::test::make("rbm", "{hidden: 4, visible: 6}");
    const ansatz_model_handle h = inst->model();
    const int64_t shape[] = { 28, 28 };
    Rng rng(1);
    ansatz_status st{};
    REQUIRE(h.table->setup(h.self, shape, 2, &rng.state(), &st) == ANSATZ_STATUS_INVALID_INPUT);
    REQUIRE(st.code == ANSATZ_STATUS_INVALID_INPUT);
    REQUIRE(std::string(st.message) ==
            "key visible is 6, but the data's samples have 784 values (sample shape {28, 28})");
    // Through the C++ wrapper, the same failure is an ansatz::InputError.
    REQUIRE_THROWS_AS(ansatz::test::model_ref(*inst).setup({ 28, 28 }, rng), ansatz::InputError);
    // And a model used before setup() fails instead of reading unallocated parameters.
    std::vector<float> v(6), f(1);
    ansatz_tensor vt = ansatz::make_view(v.data(), { 1, 6 }), ft = ansatz::make_view(f.data(), { 1 });
    REQUIRE_THROWS_WITH(ansatz::test::model_ref(*inst).free_energy(vt, ft),
                        "model 'rbm' is used before setup()");
}

TEST_CASE("rbm: each row draws from its own stream, so a row's sample does not depend on the rows beside it",
          "[rbm]")
{
    Rbm r = make_rbm(5, 3, 0.5, 62);
    Rng rng(62);
    randomise(r.m, rng, 0.8);
    std::vector<float> v = { 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0 }; // 3 rows
    std::vector<float> mean(9), all(9), first(3);
    ansatz_tensor vt = ansatz::make_view(v.data(), { 3, 5 }), mt = ansatz::make_view(mean.data(), { 3, 3 });
    ansatz_tensor at = ansatz::make_view(all.data(), { 3, 3 });
    Rng parent(63), same_parent(63);
    ansatz::StreamArray three, one;
    r.m.conditional(ANSATZ_BLOCK_HIDDEN, vt, mt, &at, three.split_from(parent, 3));
    // Row 0 alone, with the stream row 0 had.
    ansatz_tensor v0 = ansatz::make_view(v.data(), { 1, 5 }), m0 = ansatz::make_view(mean.data(), { 1, 3 });
    ansatz_tensor f0 = ansatz::make_view(first.data(), { 1, 3 });
    ansatz::Streams streams = one.split_from(same_parent, 3);
    r.m.conditional(ANSATZ_BLOCK_HIDDEN, v0, m0, &f0, streams.first(1));
    CHECK(std::vector<float>(all.begin(), all.begin() + 3) == first);

    // A sample without streams is refused, naming what is missing.
    REQUIRE_THROWS_WITH(r.m.conditional(ANSATZ_BLOCK_HIDDEN, vt, mt, &at, {}),
                        "a call on 3 chains got 0 random streams; it needs one per chain");
}

TEST_CASE(
    "rbm: the conformance kit passes on a 6x4 RBM (init_std 1.0, biases N(0, 0.5^2), kit seed 20251127)",
    "[rbm][conformance]")
{
    Rbm r = make_rbm(6, 4, 1.0, 101);
    Rng rng(102);
    for (ansatz_named_tensor& t : r.m.parameters())
        if (std::string(t.name) != "weights")
            for (int64_t k = 0; k < ansatz::element_count(t.tensor); ++k)
                ansatz::f32(t.tensor)[k] = static_cast<float>(0.5 * rng.normal());
    const ansatz::testing::ConformanceReport report = ansatz::testing::check_model(r.m, {});
    INFO(report.summary());
    CHECK(report.passed());
    // Every check applies to binary units but the state gradient, which needs real variables.
    CHECK(report.skipped() == std::vector<std::string>{ "state_grad" });
    CHECK(report.checks.size() == 9);
    CHECK(report.outcome("local_moves") == ansatz::testing::Outcome::passed);
    CHECK(report.outcome("local_step") == ansatz::testing::Outcome::passed);
}

TEST_CASE(
    "rbm: tempered_free_energy is free_energy at beta 1 without a field, -H log 2 - phi.v at beta 0, and "
    "-log sum_h exp(-E_beta,phi) by enumeration at every beta",
    "[rbm][tempered]")
{
    Rbm r = make_rbm(5, 3, 0.5, 111);
    REQUIRE(r.m.has(ANSATZ_FN_TEMPERED));
    Rng rng(112);
    randomise(r.m, rng, 0.8);
    const Params p = read_params(r.m);
    std::vector<float> v = all_states_and_grey(5, 4, rng);
    const int64_t n = static_cast<int64_t>(v.size()) / 5;
    std::vector<float> phi_f = { 0.3f, -1.2f, 0.0f, 2.1f, -0.4f };
    const std::vector<double> phi(phi_f.begin(), phi_f.end()), no_phi(5, 0.0);
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, 5 }), field = ansatz::make_view(phi_f.data(), { 5 });
    std::vector<double> out(static_cast<size_t>(n)), beta(static_cast<size_t>(n), 1.0);
    ansatz_tensor ot = ansatz::make_view(out.data(), { n });

    // beta = 1, no field: the model's free energy (float32 there: 1e-5 is ~100 ulp of |F| ~ 3).
    std::vector<float> f(static_cast<size_t>(n));
    ansatz_tensor ft = ansatz::make_view(f.data(), { n });
    r.m.free_energy(vt, ft);
    r.m.tempered_free_energy(vt, beta.data(), nullptr, ot);
    for (int64_t k = 0; k < n; ++k)
        CHECK(out[k] == Approx(f[k]).epsilon(1e-5).margin(1e-5));

    // beta = 0: -H log 2 - phi.v. phi.v is summed in double; each softplus(0) term is float32 (within 3
    // ulp of log 2), so 1e-6 absolute covers H = 3 of them.
    std::fill(beta.begin(), beta.end(), 0.0);
    r.m.tempered_free_energy(vt, beta.data(), &field, ot);
    for (int64_t k = 0; k < n; ++k)
    {
        double fv = 0;
        for (int i = 0; i < 5; ++i)
            fv += phi[i] * v[k * 5 + i];
        CHECK(out[k] == Approx(-3 * std::log(2.0) - fv).epsilon(0).margin(1e-6));
    }

    // One beta per row in one call, against -log sum_h exp(-E_beta,phi(v, h)) in double.
    for (int64_t k = 0; k < n; ++k)
        beta[k] = static_cast<double>(k % 5) / 4.0; // 0, 0.25, ..., 1
    r.m.tempered_free_energy(vt, beta.data(), &field, ot);
    for (int64_t k = 0; k < n; ++k)
    {
        const std::vector<double> row = to_double(v.data() + k * 5, 5);
        std::vector<double> minus_e;
        for (uint64_t s = 0; s < 8; ++s)
            minus_e.push_back(-tempered_energy(p, beta[k], phi, row.data(), bits(s, 3)));
        INFO("row " << k << ", beta " << beta[k]);
        // Pre-activations in float32: 1e-5 absolute.
        CHECK(out[k] == Approx(-log_sum_exp(minus_e)).margin(1e-5));
    }

    // A non-finite inverse temperature and a float32 out are refused.
    beta[2] = std::nan("");
    REQUIRE_THROWS_WITH(r.m.tempered_free_energy(vt, beta.data(), &field, ot),
                        Catch::Contains("the inverse temperature of row 2 is nan"));
    REQUIRE_THROWS_WITH(r.m.tempered_free_energy(vt, beta.data(), &field, ft),
                        Catch::Contains("out must be float64"));
}

TEST_CASE("rbm: log sum_v exp(-F_beta,phi(v)) equals log Z_beta,phi by enumerating v and h of a 5x3 RBM, "
          "and base_log_partition at beta 0",
          "[rbm][tempered]")
{
    Rbm r = make_rbm(5, 3, 0.5, 121);
    Rng rng(122);
    randomise(r.m, rng, 1.0);
    const Params p = read_params(r.m);
    std::vector<float> v = binary_rows(5);
    std::vector<float> phi_f = { -0.7f, 0.2f, 1.5f, 0.0f, -2.0f };
    const std::vector<double> phi(phi_f.begin(), phi_f.end());
    ansatz_tensor vt = ansatz::make_view(v.data(), { 32, 5 }), field = ansatz::make_view(phi_f.data(), { 5 });
    for (const double b : { 0.0, 0.25, 0.6, 1.0 })
    {
        std::vector<double> out(32), beta(32, b);
        ansatz_tensor ot = ansatz::make_view(out.data(), { 32 });
        r.m.tempered_free_energy(vt, beta.data(), &field, ot);
        std::vector<double> minus_f, minus_e;
        for (double x : out)
            minus_f.push_back(-x);
        for (uint64_t s = 0; s < 32; ++s)
        {
            const std::vector<double> row = to_double(v.data() + s * 5, 5);
            for (uint64_t t = 0; t < 8; ++t)
                minus_e.push_back(-tempered_energy(p, b, phi, row.data(), bits(t, 3)));
        }
        INFO("beta " << b);
        CHECK(log_sum_exp(minus_f) == Approx(log_sum_exp(minus_e)).margin(1e-5));
        if (b == 0.0)
        {
            // log Z_0,phi = H log 2 + sum_i log(1 + e^phi_i), from the enumeration and in closed form.
            CHECK(r.m.base_log_partition(&field) == Approx(log_sum_exp(minus_e)).epsilon(1e-12));
            double closed = 3 * std::log(2.0);
            for (double x : phi)
                closed += std::log1p(std::exp(x));
            CHECK(r.m.base_log_partition(&field) == Approx(closed).epsilon(1e-12));
        }
    }
    // Without a field: (D + H) log 2.
    CHECK(r.m.base_log_partition(nullptr) == Approx(8 * std::log(2.0)).epsilon(1e-14));
}

TEST_CASE("rbm: block_free_energy of the hidden block sums v out exactly, and both blocks give one log Z",
          "[rbm]")
{
    Rbm r = make_rbm(5, 3, 0.5, 131);
    REQUIRE(r.m.has(ANSATZ_FN_BLOCK_FREE_ENERGY));
    Rng rng(132);
    randomise(r.m, rng, 1.0);
    const Params p = read_params(r.m);
    std::vector<float> v = binary_rows(5), h = binary_rows(3);
    std::vector<double> fv(32), fh(8);
    ansatz_tensor vt = ansatz::make_view(v.data(), { 32, 5 }), ht = ansatz::make_view(h.data(), { 8, 3 });
    ansatz_tensor fvt = ansatz::make_view(fv.data(), { 32 }), fht = ansatz::make_view(fh.data(), { 8 });
    r.m.block_free_energy(ANSATZ_BLOCK_VISIBLE, vt, fvt);
    r.m.block_free_energy(ANSATZ_BLOCK_HIDDEN, ht, fht);

    // F(v) is the free energy (float32 there).
    std::vector<float> f(32);
    ansatz_tensor ft = ansatz::make_view(f.data(), { 32 });
    r.m.free_energy(vt, ft);
    for (int k = 0; k < 32; ++k)
        CHECK(fv[k] == Approx(f[k]).epsilon(1e-5).margin(1e-5));
    // F(h) = -log sum_v exp(-E(v, h)) by enumerating v, in double.
    for (uint64_t t = 0; t < 8; ++t)
    {
        std::vector<double> minus_e;
        for (uint64_t s = 0; s < 32; ++s)
        {
            const std::vector<double> row = to_double(v.data() + s * 5, 5);
            minus_e.push_back(-energy(p, row.data(), bits(t, 3)));
        }
        INFO("hidden state " << t);
        CHECK(fh[t] == Approx(-log_sum_exp(minus_e)).margin(1e-5));
    }
    // log Z from the 8 hidden states equals log Z from the 32 visible ones.
    std::vector<double> mv, mh;
    for (double x : fv)
        mv.push_back(-x);
    for (double x : fh)
        mh.push_back(-x);
    CHECK(log_sum_exp(mh) == Approx(log_sum_exp(mv)).margin(1e-5));

    // A states view of the other block's width is refused.
    REQUIRE_THROWS_WITH(r.m.block_free_energy(ANSATZ_BLOCK_HIDDEN, vt, fvt),
                        Catch::Contains("rbm block_free_energy: h has shape {32, 5}, expected {N, 3}"));
}

TEST_CASE("rbm: tempered_conditional means are the conditionals of E_beta,phi by enumeration, the model's at "
          "beta 1, and sigmoid(phi) whatever h is at beta 0",
          "[rbm][tempered]")
{
    Rbm r = make_rbm(5, 3, 0.5, 141);
    Rng rng(142);
    randomise(r.m, rng, 0.8);
    const Params p = read_params(r.m);
    std::vector<float> phi_f = { 0.9f, -0.3f, 0.0f, -1.7f, 0.4f };
    const std::vector<double> phi(phi_f.begin(), phi_f.end());
    ansatz_tensor field = ansatz::make_view(phi_f.data(), { 5 });
    std::vector<float> v = binary_rows(5), h = binary_rows(3);
    std::vector<double> beta_v(32), beta_h(8);
    for (int k = 0; k < 32; ++k)
        beta_v[k] = (k % 4) / 3.0;
    for (int k = 0; k < 8; ++k)
        beta_h[k] = (k % 4) / 3.0;

    // Hidden given v: sum_h h_j exp(-E_beta,phi) / sum_h exp(-E_beta,phi).
    std::vector<float> mh(32 * 3);
    ansatz_tensor vt = ansatz::make_view(v.data(), { 32, 5 }), mht = ansatz::make_view(mh.data(), { 32, 3 });
    r.m.tempered_conditional(ANSATZ_BLOCK_HIDDEN, vt, beta_v.data(), &field, mht, nullptr);
    for (uint64_t s = 0; s < 32; ++s)
    {
        const std::vector<double> row = to_double(v.data() + s * 5, 5);
        std::vector<double> num(3, 0.0);
        double den = 0;
        for (uint64_t t = 0; t < 8; ++t)
        {
            const std::vector<int> hb = bits(t, 3);
            const double w = std::exp(-tempered_energy(p, beta_v[s], phi, row.data(), hb));
            den += w;
            for (int j = 0; j < 3; ++j)
                num[j] += hb[j] * w;
        }
        for (int j = 0; j < 3; ++j)
            CHECK(mh[s * 3 + j] == Approx(num[j] / den).margin(1e-6));
    }
    // Visible given h: sum_v v_i exp(-E_beta,phi) / sum_v exp(-E_beta,phi).
    std::vector<float> mv(8 * 5);
    ansatz_tensor ht = ansatz::make_view(h.data(), { 8, 3 }), mvt = ansatz::make_view(mv.data(), { 8, 5 });
    r.m.tempered_conditional(ANSATZ_BLOCK_VISIBLE, ht, beta_h.data(), &field, mvt, nullptr);
    for (uint64_t t = 0; t < 8; ++t)
    {
        std::vector<double> num(5, 0.0);
        double den = 0;
        for (uint64_t s = 0; s < 32; ++s)
        {
            const std::vector<double> row = to_double(v.data() + s * 5, 5);
            const double w = std::exp(-tempered_energy(p, beta_h[t], phi, row.data(), bits(t, 3)));
            den += w;
            for (int i = 0; i < 5; ++i)
                num[i] += row[i] * w;
        }
        for (int i = 0; i < 5; ++i)
            CHECK(mv[t * 5 + i] == Approx(num[i] / den).margin(1e-6));
    }

    // beta 1 without a field is the model's conditional, bit for bit.
    std::vector<double> ones(32, 1.0);
    std::vector<float> plain(32 * 3), tempered(32 * 3);
    ansatz_tensor pt = ansatz::make_view(plain.data(), { 32, 3 }),
                  tt = ansatz::make_view(tempered.data(), { 32, 3 });
    r.m.conditional(ANSATZ_BLOCK_HIDDEN, vt, pt, nullptr);
    r.m.tempered_conditional(ANSATZ_BLOCK_HIDDEN, vt, ones.data(), nullptr, tt, nullptr);
    CHECK(plain == tempered);
    std::vector<float> plain_v(8 * 5), tempered_v(8 * 5);
    ansatz_tensor pvt = ansatz::make_view(plain_v.data(), { 8, 5 }),
                  tvt = ansatz::make_view(tempered_v.data(), { 8, 5 });
    r.m.conditional(ANSATZ_BLOCK_VISIBLE, ht, pvt, nullptr);
    r.m.tempered_conditional(ANSATZ_BLOCK_VISIBLE, ht, ones.data(), nullptr, tvt, nullptr);
    CHECK(plain_v == tempered_v);

    // beta 0: the visible mean is sigmoid(phi_i) for every h (and 1/2 for every hidden unit).
    std::vector<double> zeros(32, 0.0);
    r.m.tempered_conditional(ANSATZ_BLOCK_VISIBLE, ht, zeros.data(), &field, mvt, nullptr);
    for (int t = 0; t < 8; ++t)
        for (int i = 0; i < 5; ++i)
            CHECK(mv[t * 5 + i] == Approx(1 / (1 + std::exp(-phi[i]))).margin(1e-6));
    r.m.tempered_conditional(ANSATZ_BLOCK_HIDDEN, vt, zeros.data(), &field, mht, nullptr);
    for (float x : mh)
        CHECK(x == 0.5f);
}

TEST_CASE(
    "rbm: tempered_conditional at beta 0 samples the base distribution Bernoulli(sigmoid(phi)) whatever h "
    "is (seed 151, N = 20000 rows, 5 sigma)",
    "[rbm][tempered][statistical]")
{
    Rbm r = make_rbm(5, 3, 2.0, 151); // large weights: h would matter at beta 1
    Rng rng(151);
    const int64_t n = 20000;
    std::vector<float> phi_f = { 1.1f, -0.6f, 0.0f, 2.5f, -2.0f };
    ansatz_tensor field = ansatz::make_view(phi_f.data(), { 5 });
    std::vector<float> h(static_cast<size_t>(n * 3));
    for (float& x : h)
        x = rng.uniform() < 0.5f ? 1.0f : 0.0f;
    std::vector<double> beta(static_cast<size_t>(n), 0.0);
    std::vector<float> mean(static_cast<size_t>(n * 5)), sample(static_cast<size_t>(n * 5), -1.0f);
    ansatz_tensor ht = ansatz::make_view(h.data(), { n, 3 }), mt = ansatz::make_view(mean.data(), { n, 5 }),
                  st = ansatz::make_view(sample.data(), { n, 5 });
    ansatz::StreamArray rows;
    r.m.tempered_conditional(ANSATZ_BLOCK_VISIBLE, ht, beta.data(), &field, mt, &st, rows.split_from(rng, n));
    for (int i = 0; i < 5; ++i)
    {
        const double pi = 1 / (1 + std::exp(-double(phi_f[i])));
        double ones = 0;
        for (int64_t k = 0; k < n; ++k)
        {
            REQUIRE(mean[k * 5 + i] == mean[i]); // the same mean in every row, whatever h is
            const float x = sample[k * 5 + i];
            REQUIRE((x == 0.0f || x == 1.0f));
            ones += x;
        }
        INFO("unit " << i);
        CHECK(std::abs(ones / n - pi) < 5 * std::sqrt(pi * (1 - pi) / n));
    }
}

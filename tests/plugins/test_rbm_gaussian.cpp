// The rbm model with Gaussian visible units (visible_units: gaussian) against enumeration of the hidden
// units, numerical integration over the visible ones and double-precision finite differences.
//     E(v, h) = sum_i (v_i - a_i)^2 / 2 sigma_i^2 - b.h - sum_ij v_i W_ij h_j / sigma_i^2
#include "ansatz/testing/conformance.hpp"
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;

// The parameters of a Gaussian RBM in double; sigma_i = exp(log_sigma_i).
struct Gauss
{
    int64_t d = 0, h = 0;
    std::vector<double> w, a, b, log_sigma; // w row-major {d, h}
    double var(int64_t i) const { return std::exp(2 * log_sigma[i]); }
};

// With learn_sigma the model's log_sigma; else every unit has the `sigma` it was made with.
Gauss read_gauss(const ModelRef& m, double sigma)
{
    const std::vector<ansatz_named_tensor> p = m.parameters();
    REQUIRE((p.size() == 3 || p.size() == 4));
    Gauss out;
    out.d = p[0].tensor.shape[0];
    out.h = p[0].tensor.shape[1];
    out.w.assign(ansatz::f32(p[0].tensor), ansatz::f32(p[0].tensor) + out.d * out.h);
    out.a.assign(ansatz::f32(p[1].tensor), ansatz::f32(p[1].tensor) + out.d);
    out.b.assign(ansatz::f32(p[2].tensor), ansatz::f32(p[2].tensor) + out.h);
    if (p.size() == 4)
        out.log_sigma.assign(ansatz::f32(p[3].tensor), ansatz::f32(p[3].tensor) + out.d);
    else
        out.log_sigma.assign(static_cast<size_t>(out.d), std::log(sigma));
    return out;
}

double softplus(double x)
{
    return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
}

double sigmoid(double x)
{
    return 1 / (1 + std::exp(-x));
}

std::vector<int> bits(uint64_t state, int64_t n)
{
    std::vector<int> out(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
        out[k] = static_cast<int>((state >> k) & 1u);
    return out;
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

// E0(v) = sum_i (v_i - a_i)^2 / 2 sigma_i^2 and E1(v, h) = -b.h - sum_ij v_i W_ij h_j / sigma_i^2.
double e0(const Gauss& p, const double* v)
{
    double e = 0;
    for (int64_t i = 0; i < p.d; ++i)
        e += (v[i] - p.a[i]) * (v[i] - p.a[i]) / (2 * p.var(i));
    return e;
}
double e1(const Gauss& p, const double* v, const std::vector<int>& h)
{
    double e = 0;
    for (int64_t j = 0; j < p.h; ++j)
        e -= p.b[j] * h[j];
    for (int64_t i = 0; i < p.d; ++i)
        for (int64_t j = 0; j < p.h; ++j)
            e -= v[i] * p.w[i * p.h + j] * h[j] / p.var(i);
    return e;
}
double energy(const Gauss& p, const double* v, const std::vector<int>& h)
{
    return e0(p, v) + e1(p, v, h);
}
// E_beta,phi = E0 + beta E1 - phi.v (abi.h: Gaussian units keep their confinement E0 at every beta).
double tempered_energy(const Gauss& p, double beta, const std::vector<double>& phi, const double* v,
                       const std::vector<int>& h)
{
    double e = e0(p, v) + beta * e1(p, v, h);
    for (int64_t i = 0; i < p.d; ++i)
        e -= phi[i] * v[i];
    return e;
}

// The closed form F(v) = E0(v) - sum_j softplus(b_j + sum_i v_i W_ij / sigma_i^2), in double.
double free_energy_closed(const Gauss& p, const double* v)
{
    double f = e0(p, v);
    for (int64_t j = 0; j < p.h; ++j)
    {
        double x = p.b[j];
        for (int64_t i = 0; i < p.d; ++i)
            x += v[i] * p.w[i * p.h + j] / p.var(i);
        f -= softplus(x);
    }
    return f;
}

struct Model
{
    std::unique_ptr<ansatz::engine::Instance> inst;
    ModelRef m;
};

// A Gaussian RBM with `keys` added to its configuration, set up for d visible units.
Model make_gauss(int d, int h, const std::string& keys, uint64_t seed)
{
    Model r;
    r.inst = ansatz::test::make("rbm", "{visible_units: gaussian, hidden: " + std::to_string(h) +
                                           ", visible: " + std::to_string(d) + ", init_std: 0.5" +
                                           (keys.empty() ? "" : ", " + keys) + "}");
    r.m = ansatz::test::model_ref(*r.inst);
    Rng rng(seed);
    r.m.setup({ d }, rng);
    return r;
}

// Sets weights and biases to N(0, scale^2) values and log_sigma (when a parameter) to N(0, 0.3^2).
void randomise(const ModelRef& m, Rng& rng, double scale)
{
    for (ansatz_named_tensor& t : m.parameters())
    {
        const double s = std::string(t.name) == "log_sigma" ? 0.3 : scale;
        for (int64_t k = 0; k < ansatz::element_count(t.tensor); ++k)
            ansatz::f32(t.tensor)[k] = static_cast<float>(s * rng.normal());
    }
}

// Writes the parameters of p into the model (log_sigma only when it is a parameter).
void write_params(const ModelRef& m, const Gauss& p)
{
    std::vector<ansatz_named_tensor> t = m.parameters();
    std::copy(p.w.begin(), p.w.end(), ansatz::f32(t[0].tensor));
    std::copy(p.a.begin(), p.a.end(), ansatz::f32(t[1].tensor));
    std::copy(p.b.begin(), p.b.end(), ansatz::f32(t[2].tensor));
    if (t.size() == 4)
        std::copy(p.log_sigma.begin(), p.log_sigma.end(), ansatz::f32(t[3].tensor));
}

// A 2 x 2 model with unequal sigmas (learn_sigma, so sigma is per unit), for numerical integration.
Model tiny_model()
{
    Model r = make_gauss(2, 2, "learn_sigma: true", 301);
    Gauss p = read_gauss(r.m, 1.0);
    p.w = { 0.9, -0.6, 0.5, 1.1 };
    p.a = { 0.4, -0.7 };
    p.b = { 0.3, -0.5 };
    p.log_sigma = { std::log(0.8), std::log(1.3) };
    write_params(r.m, p);
    return r;
}

// A trapezoid grid over the visible plane of a 2-unit model: unit i from its centre a_i -+ (the largest
// mean shift + 12 sigma_i), in steps of sigma_i / 16. The integrands are Gaussian mixtures, for which the
// trapezoid rule converges faster than any power of the step: the error is far below 1e-10 here.
struct Grid
{
    std::vector<double> x0, x1;
    double dx0 = 0, dx1 = 0;
    std::vector<float> points; // every (x0, x1) as a row, x1 fastest
};

Grid grid_for(const Gauss& p, double shift)
{
    Grid g;
    for (int i = 0; i < 2; ++i)
    {
        const double s = std::sqrt(p.var(i));
        double reach = shift + 12 * s;
        for (int j = 0; j < p.h; ++j)
            reach += std::abs(p.w[i * p.h + j]);
        const double step = s / 16;
        const int64_t n = static_cast<int64_t>(std::ceil(2 * reach / step)) + 1;
        std::vector<double>& axis = i == 0 ? g.x0 : g.x1;
        for (int64_t k = 0; k < n; ++k)
            axis.push_back(p.a[i] - reach + k * step);
        (i == 0 ? g.dx0 : g.dx1) = step;
    }
    for (double x : g.x0)
        for (double y : g.x1)
        {
            g.points.push_back(static_cast<float>(x));
            g.points.push_back(static_cast<float>(y));
        }
    return g;
}

// log of the trapezoid integral of exp(values) over the grid (values in the points' order).
double log_integral(const Grid& g, const std::vector<double>& values)
{
    double top = values[0];
    for (double v : values)
        top = std::max(top, v);
    double sum = 0;
    size_t k = 0;
    for (size_t a = 0; a < g.x0.size(); ++a)
        for (size_t b = 0; b < g.x1.size(); ++b, ++k)
        {
            const double weight =
                (a == 0 || a + 1 == g.x0.size() ? 0.5 : 1.0) * (b == 0 || b + 1 == g.x1.size() ? 0.5 : 1.0);
            sum += weight * std::exp(values[k] - top);
        }
    return top + std::log(sum * g.dx0 * g.dx1);
}

// Grid points as doubles, the precision the test's own energies use.
std::vector<double> grid_point(const Grid& g, size_t k)
{
    return { g.x0[k / g.x1.size()], g.x1[k % g.x1.size()] };
}

} // namespace

TEST_CASE("rbm gaussian: the real domain, log_sigma only with learn_sigma, and random_state draws N(a, "
          "sigma^2) (seed 201, 20000 rows, 5 standard errors)",
          "[rbm][gaussian][statistical]")
{
    Model fixed = make_gauss(3, 2, "sigma: 0.5", 200);
    CHECK(fixed.m.sample_info().domain == ANSATZ_DOMAIN_REAL);
    CHECK(fixed.m.parameters().size() == 3);

    Model r = make_gauss(3, 2, "sigma: 0.5, learn_sigma: true", 201);
    const std::vector<ansatz_named_tensor> p = r.m.parameters();
    REQUIRE(p.size() == 4);
    CHECK(std::string(p[3].name) == "log_sigma");
    CHECK(ansatz::shape_string(p[3].tensor) == "{3}");
    for (int i = 0; i < 3; ++i)
        CHECK(ansatz::f32(p[3].tensor)[i] == static_cast<float>(std::log(0.5)));

    Gauss g = read_gauss(r.m, 0.5);
    g.a = { -1.0, 0.5, 2.0 };
    g.log_sigma = { std::log(0.5), 0.0, std::log(2.0) };
    write_params(r.m, g);
    const int64_t n = 20000;
    std::vector<float> state(static_cast<size_t>(n * 3));
    ansatz_tensor st = ansatz::make_view(state.data(), { n, 3 });
    Rng rng(201);
    ansatz::StreamArray rows;
    r.m.random_state(st, rows.split_from(rng, n));
    for (int i = 0; i < 3; ++i)
    {
        double s1 = 0, s2 = 0;
        for (int64_t k = 0; k < n; ++k)
            s1 += state[k * 3 + i];
        const double mean = s1 / n;
        for (int64_t k = 0; k < n; ++k)
            s2 += (state[k * 3 + i] - mean) * (state[k * 3 + i] - mean);
        const double var = s2 / (n - 1), sigma2 = g.var(i);
        INFO("unit " << i);
        // Standard errors: sigma / sqrt(N) for the mean, sigma^2 sqrt(2 / N) for the variance.
        CHECK(std::abs(mean - g.a[i]) < 5 * std::sqrt(sigma2 / n));
        CHECK(std::abs(var - sigma2) < 5 * sigma2 * std::sqrt(2.0 / n));
    }
}

TEST_CASE("rbm gaussian: free_energy equals -log sum_h exp(-E(v,h)) by enumeration, and energy_delta of real "
          "moves equals the difference of free energies",
          "[rbm][gaussian]")
{
    Model r = make_gauss(4, 3, "learn_sigma: true", 211);
    Rng rng(212);
    randomise(r.m, rng, 0.8);
    const Gauss p = read_gauss(r.m, 1.0);
    const int64_t n = 24, d = 4;
    std::vector<float> v(static_cast<size_t>(n * d));
    for (float& x : v)
        x = static_cast<float>(1.5 * rng.normal());
    std::vector<float> f(static_cast<size_t>(n));
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d }), ft = ansatz::make_view(f.data(), { n });
    r.m.free_energy(vt, ft);
    for (int64_t k = 0; k < n; ++k)
    {
        std::vector<double> row(v.begin() + k * d, v.begin() + (k + 1) * d);
        std::vector<double> minus_e;
        for (uint64_t s = 0; s < 8; ++s)
            minus_e.push_back(-energy(p, row.data(), bits(s, 3)));
        INFO("row " << k);
        // float32 pre-activations, |F| up to ~20: 1e-5 relative + 1e-5 absolute.
        CHECK(f[k] == Approx(-log_sum_exp(minus_e)).epsilon(1e-5).margin(1e-5));
        CHECK(f[k] == Approx(free_energy_closed(p, row.data())).epsilon(1e-5).margin(1e-5));
    }

    // A real move in every chain: u = v_i + N(0, 1), and u = v_i ("no change") in one chain.
    std::vector<int64_t> sites(static_cast<size_t>(n));
    std::vector<float> u(static_cast<size_t>(n)), moved = v, delta(static_cast<size_t>(n)),
                                                  f1(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
    {
        sites[k] = static_cast<int64_t>(rng.below(d));
        u[k] = k == 5 ? v[k * d + sites[k]] : v[k * d + sites[k]] + static_cast<float>(rng.normal());
        moved[k * d + sites[k]] = u[k];
    }
    ansatz_tensor dt = ansatz::make_view(delta.data(), { n }), mt = ansatz::make_view(moved.data(), { n, d }),
                  f1t = ansatz::make_view(f1.data(), { n });
    r.m.energy_delta(vt, sites.data(), u.data(), dt);
    r.m.free_energy(mt, f1t);
    for (int64_t k = 0; k < n; ++k)
    {
        INFO("chain " << k << ", site " << sites[k]);
        // Both free energies are float32 values of |F| ~ 10: 1e-4 absolute + 1e-5 relative.
        CHECK(delta[k] == Approx(f1[k] - f[k]).margin(1e-4 + 1e-5 * (std::abs(f[k]) + std::abs(f1[k]))));
    }
    CHECK(delta[5] == 0.0f);

    // A value outside the reals is refused; values beyond [0, 1] are not (unlike Bernoulli units).
    u[3] = INFINITY;
    REQUIRE_THROWS_WITH(r.m.energy_delta(vt, sites.data(), u.data(), dt),
                        Catch::Contains("new value inf of chain 3 is outside the units' support (the finite "
                                        "reals)"));
}

TEST_CASE("rbm gaussian: free_energy_grad and free_energy_grad_weighted match central finite differences in "
          "double for every parameter incl. log_sigma",
          "[rbm][gaussian]")
{
    // learn_sigma: 4 parameters; a fixed sigma 0.7: 3 (sigma is then a constant, not a parameter).
    for (const bool learn : { true, false })
    {
        INFO((learn ? "learn_sigma: true" : "sigma: 0.7"));
        Model r = make_gauss(4, 3, learn ? "learn_sigma: true" : "sigma: 0.7", 221);
        Rng rng(222);
        randomise(r.m, rng, 0.6);
        const Gauss p = read_gauss(r.m, 0.7);
        const int64_t n = 6, d = 4;
        std::vector<float> v(static_cast<size_t>(n * d));
        for (float& x : v)
            x = static_cast<float>(rng.normal());
        ansatz_tensor vt = ansatz::make_view(v.data(), { n, d });
        const std::vector<float> weights = { -0.25f, -0.25f, -0.25f, -0.25f, 0.5f, 1.5f };
        const int32_t count = learn ? 4 : 3;

        for (const bool weighted : { false, true })
        {
            INFO(
                (weighted ? "free_energy_grad_weighted, mixed-sign weights" : "free_energy_grad, scale 0.7"));
            const float scale = 0.7f;
            // grads start at 0.25: the calls add.
            std::vector<float> gw(12, 0.25f), ga(4, 0.25f), gb(3, 0.25f), gl(4, 0.25f), f(n), f_alone(n);
            ansatz_tensor grads[4] = { ansatz::make_view(gw.data(), { 4, 3 }),
                                       ansatz::make_view(ga.data(), { 4 }),
                                       ansatz::make_view(gb.data(), { 3 }),
                                       ansatz::make_view(gl.data(), { 4 }) };
            ansatz_tensor ft = ansatz::make_view(f.data(), { n }),
                          fat = ansatz::make_view(f_alone.data(), { n });
            if (weighted)
                r.m.free_energy_grad_weighted(vt, weights.data(), grads, count, &ft);
            else
                r.m.free_energy_grad(vt, scale, grads, count, &ft);
            r.m.free_energy(vt, fat);
            CHECK(f == f_alone);

            const auto total = [&](const Gauss& q) {
                double s = 0;
                for (int64_t k = 0; k < n; ++k)
                {
                    std::vector<double> row(v.begin() + k * d, v.begin() + (k + 1) * d);
                    s += (weighted ? weights[k] : scale) * free_energy_closed(q, row.data());
                }
                return s;
            };
            // Central differences in double, h = 1e-5 (truncation ~1e-10, rounding ~1e-11). The float32
            // gradients sum terms of size ~10 (v^2 / sigma^2): 2e-5 relative + 2e-5 absolute.
            const double h = 1e-5;
            const auto check_all = [&](std::vector<double> Gauss::*field, const std::vector<float>& got,
                                       const char* name) {
                for (size_t k = 0; k < got.size(); ++k)
                {
                    Gauss plus = p, minus = p;
                    (plus.*field)[k] += h;
                    (minus.*field)[k] -= h;
                    const double fd = (total(plus) - total(minus)) / (2 * h);
                    INFO(name << "[" << k << "]");
                    CHECK(got[k] == Approx(0.25 + fd).epsilon(2e-5).margin(2e-5));
                }
            };
            check_all(&Gauss::w, gw, "weights");
            check_all(&Gauss::a, ga, "visible_bias");
            check_all(&Gauss::b, gb, "hidden_bias");
            if (learn)
                check_all(&Gauss::log_sigma, gl, "log_sigma");
            else
                CHECK(gl == std::vector<float>(4, 0.25f)); // not a parameter: untouched
        }
        // The count of gradient buffers names the parameters.
        std::vector<float> g(12);
        ansatz_tensor one = ansatz::make_view(g.data(), { 4, 3 });
        REQUIRE_THROWS_WITH(r.m.free_energy_grad(vt, 1.0f, &one, 1),
                            Catch::Contains(learn ? "got 1 gradients, expected 4 (weights, visible_bias, "
                                                    "hidden_bias, log_sigma)"
                                                  : "got 1 gradients, expected 3 (weights, visible_bias, "
                                                    "hidden_bias)"));
    }
}

TEST_CASE("rbm gaussian: on a 2x2 model p(v_i|h), F(v), F(h), log Z and log Z_beta,phi agree with numerical "
          "integration over v",
          "[rbm][gaussian][tempered]")
{
    Model r = tiny_model();
    const Gauss p = read_gauss(r.m, 1.0);
    const std::vector<double> phi = { 0.6, -0.9 };
    std::vector<float> phi_f(phi.begin(), phi.end());
    ansatz_tensor field = ansatz::make_view(phi_f.data(), { 2 });
    const Grid g = grid_for(p, std::max(p.var(0), p.var(1)) * 0.9);
    const int64_t points = static_cast<int64_t>(g.points.size() / 2);
    std::vector<float> hs = { 0, 0, 1, 0, 0, 1, 1, 1 }; // the 4 hidden states as rows
    ansatz_tensor ht = ansatz::make_view(hs.data(), { 4, 2 });

    // p(v_i | h): its mean from the model, against the mean and variance by 1D quadrature of
    // exp(-E(v, h)) over v_i (the density factorises given h); the variance is sigma_i^2.
    std::vector<float> mean(8);
    ansatz_tensor mt = ansatz::make_view(mean.data(), { 4, 2 });
    r.m.conditional(ANSATZ_BLOCK_VISIBLE, ht, mt, nullptr);
    for (int t = 0; t < 4; ++t)
        for (int i = 0; i < 2; ++i)
        {
            const std::vector<double>& axis = i == 0 ? g.x0 : g.x1;
            const std::vector<int> h = bits(static_cast<uint64_t>(t), 2);
            double z = 0, m1 = 0, m2 = 0;
            for (double x : axis)
            {
                double c = 0;
                for (int j = 0; j < 2; ++j)
                    c += p.w[i * 2 + j] * h[j];
                const double e = std::exp(-(x - p.a[i]) * (x - p.a[i]) / (2 * p.var(i)) + x * c / p.var(i));
                z += e, m1 += x * e, m2 += x * x * e;
            }
            const double mu = m1 / z, var = m2 / z - mu * mu;
            INFO("hidden state " << t << ", unit " << i);
            CHECK(mean[t * 2 + i] == Approx(mu).margin(1e-5));
            CHECK(var == Approx(p.var(i)).epsilon(1e-8));
        }

    // F(h) from the model against -log of the 2D quadrature of exp(-E(v, h)).
    std::vector<double> fh(4);
    ansatz_tensor fht = ansatz::make_view(fh.data(), { 4 });
    r.m.block_free_energy(ANSATZ_BLOCK_HIDDEN, ht, fht);
    std::vector<std::vector<double>> minus_e(4, std::vector<double>(static_cast<size_t>(points)));
    for (int64_t k = 0; k < points; ++k)
    {
        const std::vector<double> x = grid_point(g, static_cast<size_t>(k));
        for (int t = 0; t < 4; ++t)
            minus_e[t][k] = -energy(p, x.data(), bits(static_cast<uint64_t>(t), 2));
    }
    std::vector<double> log_zh;
    for (int t = 0; t < 4; ++t)
    {
        log_zh.push_back(log_integral(g, minus_e[t]));
        INFO("hidden state " << t);
        // F(h) is computed from float32 parameters and a float32 product W h: 1e-5.
        CHECK(fh[t] == Approx(-log_zh.back()).margin(1e-5));
    }
    const double log_z = log_sum_exp(log_zh); // log sum_h integral exp(-E)

    // F(v) from the model on the grid: log integral exp(-F(v)) dv = log Z = log sum_h exp(-F(h)).
    std::vector<float> pts = g.points;
    ansatz_tensor vt = ansatz::make_view(pts.data(), { points, 2 });
    std::vector<double> fv(static_cast<size_t>(points));
    ansatz_tensor fvt = ansatz::make_view(fv.data(), { points });
    r.m.block_free_energy(ANSATZ_BLOCK_VISIBLE, vt, fvt);
    std::vector<double> minus_fv(fv.size()), minus_fh;
    for (size_t k = 0; k < fv.size(); ++k)
        minus_fv[k] = -fv[k];
    for (double x : fh)
        minus_fh.push_back(-x);
    CHECK(log_integral(g, minus_fv) == Approx(log_z).margin(1e-5));
    CHECK(log_sum_exp(minus_fh) == Approx(log_z).margin(1e-5));
    // F(v) itself, at a few grid points, against enumerating h in double.
    for (int64_t k = 0; k < points; k += points / 7)
    {
        std::vector<double> e;
        for (int t = 0; t < 4; ++t)
            e.push_back(minus_e[t][k]);
        CHECK(fv[k] == Approx(-log_sum_exp(e)).margin(1e-5));
    }

    // The tempered family: log integral exp(-F_beta,phi(v)) dv from the model against log sum_h integral
    // exp(-E_beta,phi(v, h)) dv from the test's own energy; at beta 0 also base_log_partition.
    for (const double b : { 0.0, 0.4, 1.0 })
    {
        std::vector<double> beta(static_cast<size_t>(points), b), ft(static_cast<size_t>(points));
        ansatz_tensor ftt = ansatz::make_view(ft.data(), { points });
        r.m.tempered_free_energy(vt, beta.data(), &field, ftt);
        std::vector<double> minus_ft(ft.size());
        for (size_t k = 0; k < ft.size(); ++k)
            minus_ft[k] = -ft[k];
        std::vector<double> per_h;
        for (int t = 0; t < 4; ++t)
        {
            std::vector<double> values(static_cast<size_t>(points));
            for (int64_t k = 0; k < points; ++k)
            {
                const std::vector<double> x = grid_point(g, static_cast<size_t>(k));
                values[k] = -tempered_energy(p, b, phi, x.data(), bits(static_cast<uint64_t>(t), 2));
            }
            per_h.push_back(log_integral(g, values));
        }
        INFO("beta " << b);
        CHECK(log_integral(g, minus_ft) == Approx(log_sum_exp(per_h)).margin(1e-5));
        if (b == 0.0)
            CHECK(r.m.base_log_partition(&field) == Approx(log_sum_exp(per_h)).margin(1e-8));
    }
}

TEST_CASE(
    "rbm gaussian: sampled visible units have the mean and variance of p(v_i|h), and at beta 0 those of "
    "N(a + sigma^2 phi, sigma^2) whatever h is (seed 231, 20000 rows per case, 5 standard errors)",
    "[rbm][gaussian][tempered][statistical]")
{
    Model r = tiny_model();
    const Gauss p = read_gauss(r.m, 1.0);
    const int64_t n = 20000;
    Rng rng(231);
    const auto check_moments = [&](const std::vector<float>& sample, const std::vector<double>& mu) {
        for (int i = 0; i < 2; ++i)
        {
            double s1 = 0, s2 = 0;
            for (int64_t k = 0; k < n; ++k)
                s1 += sample[k * 2 + i];
            const double m = s1 / n;
            for (int64_t k = 0; k < n; ++k)
                s2 += (sample[k * 2 + i] - m) * (sample[k * 2 + i] - m);
            const double var = s2 / (n - 1), sigma2 = p.var(i);
            INFO("unit " << i << ": sample mean " << m << ", variance " << var);
            CHECK(std::abs(m - mu[i]) < 5 * std::sqrt(sigma2 / n));
            CHECK(std::abs(var - sigma2) < 5 * sigma2 * std::sqrt(2.0 / n));
        }
    };
    std::vector<float> mean(static_cast<size_t>(n * 2)), sample(static_cast<size_t>(n * 2));
    ansatz_tensor mt = ansatz::make_view(mean.data(), { n, 2 }),
                  st = ansatz::make_view(sample.data(), { n, 2 });
    ansatz::StreamArray rows;
    for (uint64_t t = 0; t < 4; ++t)
    {
        const std::vector<int> h = bits(t, 2);
        std::vector<float> given;
        for (int64_t k = 0; k < n; ++k)
            given.insert(given.end(), h.begin(), h.end());
        ansatz_tensor gt = ansatz::make_view(given.data(), { n, 2 });
        r.m.conditional(ANSATZ_BLOCK_VISIBLE, gt, mt, &st, rows.split_from(rng, n));
        std::vector<double> mu(2);
        for (int i = 0; i < 2; ++i)
            mu[i] = p.a[i] + p.w[i * 2] * h[0] + p.w[i * 2 + 1] * h[1]; // a + W h
        INFO("hidden state " << t);
        check_moments(sample, mu);
    }

    // beta 0, random h in every row: every mean is a + sigma^2 phi.
    std::vector<float> phi_f = { 0.6f, -0.9f };
    ansatz_tensor field = ansatz::make_view(phi_f.data(), { 2 });
    std::vector<float> given(static_cast<size_t>(n * 2));
    for (float& x : given)
        x = rng.uniform() < 0.5f ? 1.0f : 0.0f;
    std::vector<double> beta(static_cast<size_t>(n), 0.0);
    ansatz_tensor gt = ansatz::make_view(given.data(), { n, 2 });
    r.m.tempered_conditional(ANSATZ_BLOCK_VISIBLE, gt, beta.data(), &field, mt, &st, rows.split_from(rng, n));
    const std::vector<double> base = { p.a[0] + p.var(0) * phi_f[0], p.a[1] + p.var(1) * phi_f[1] };
    for (int64_t k = 0; k < n; ++k)
        for (int i = 0; i < 2; ++i)
            REQUIRE(mean[k * 2 + i] == Approx(base[i]).margin(1e-6));
    INFO("beta 0");
    check_moments(sample, base);
}

TEST_CASE(
    "rbm gaussian: tempered conditionals and free energy against their formulas, and the model's at beta 1",
    "[rbm][gaussian][tempered]")
{
    Model r = make_gauss(4, 3, "learn_sigma: true", 241);
    Rng rng(242);
    randomise(r.m, rng, 0.8);
    const Gauss p = read_gauss(r.m, 1.0);
    const int64_t n = 12, d = 4;
    std::vector<float> v(static_cast<size_t>(n * d)), h(static_cast<size_t>(n * 3));
    for (float& x : v)
        x = static_cast<float>(rng.normal());
    for (float& x : h)
        x = rng.uniform() < 0.5f ? 1.0f : 0.0f;
    std::vector<double> beta(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
        beta[k] = static_cast<double>(k % 4) / 3.0;
    std::vector<float> phi_f = { 0.5f, -1.0f, 0.25f, 0.0f };
    ansatz_tensor field = ansatz::make_view(phi_f.data(), { 4 });
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d }), ht = ansatz::make_view(h.data(), { n, 3 });

    // Hidden: sigmoid(beta (b_j + sum_i v_i W_ij / sigma_i^2)); visible: a + beta W h + sigma^2 phi.
    std::vector<float> mh(static_cast<size_t>(n * 3)), mv(static_cast<size_t>(n * d));
    ansatz_tensor mht = ansatz::make_view(mh.data(), { n, 3 }), mvt = ansatz::make_view(mv.data(), { n, d });
    r.m.tempered_conditional(ANSATZ_BLOCK_HIDDEN, vt, beta.data(), &field, mht, nullptr);
    r.m.tempered_conditional(ANSATZ_BLOCK_VISIBLE, ht, beta.data(), &field, mvt, nullptr);
    for (int64_t k = 0; k < n; ++k)
    {
        for (int j = 0; j < 3; ++j)
        {
            double x = p.b[j];
            for (int i = 0; i < d; ++i)
                x += v[k * d + i] * p.w[i * 3 + j] / p.var(i);
            CHECK(mh[k * 3 + j] == Approx(sigmoid(beta[k] * x)).margin(1e-6));
        }
        for (int i = 0; i < d; ++i)
        {
            double c = 0;
            for (int j = 0; j < 3; ++j)
                c += p.w[i * 3 + j] * h[k * 3 + j];
            CHECK(mv[k * d + i] == Approx(p.a[i] + beta[k] * c + p.var(i) * phi_f[i]).margin(1e-5));
        }
    }
    // F_beta,phi(v) = E0(v) - phi.v - sum_j softplus(beta (...)), against -log sum_h exp(-E_beta,phi).
    std::vector<double> ft(static_cast<size_t>(n));
    ansatz_tensor ftt = ansatz::make_view(ft.data(), { n });
    r.m.tempered_free_energy(vt, beta.data(), &field, ftt);
    const std::vector<double> phi(phi_f.begin(), phi_f.end());
    for (int64_t k = 0; k < n; ++k)
    {
        std::vector<double> row(v.begin() + k * d, v.begin() + (k + 1) * d), e;
        for (uint64_t s = 0; s < 8; ++s)
            e.push_back(-tempered_energy(p, beta[k], phi, row.data(), bits(s, 3)));
        CHECK(ft[k] == Approx(-log_sum_exp(e)).margin(1e-5));
    }

    // beta 1 without a field: the model's conditionals bit for bit, and its free energy.
    std::vector<double> ones(static_cast<size_t>(n), 1.0);
    std::vector<float> plain_h(mh.size()), plain_v(mv.size());
    ansatz_tensor pht = ansatz::make_view(plain_h.data(), { n, 3 }),
                  pvt = ansatz::make_view(plain_v.data(), { n, d });
    r.m.conditional(ANSATZ_BLOCK_HIDDEN, vt, pht, nullptr);
    r.m.tempered_conditional(ANSATZ_BLOCK_HIDDEN, vt, ones.data(), nullptr, mht, nullptr);
    CHECK(plain_h == mh);
    r.m.conditional(ANSATZ_BLOCK_VISIBLE, ht, pvt, nullptr);
    r.m.tempered_conditional(ANSATZ_BLOCK_VISIBLE, ht, ones.data(), nullptr, mvt, nullptr);
    for (size_t k = 0; k < mv.size(); ++k) // a + (W h) against (a + W h) in float: an ulp or two
        CHECK(plain_v[k] == Approx(mv[k]).margin(1e-6));
    std::vector<float> f(static_cast<size_t>(n));
    ansatz_tensor fft = ansatz::make_view(f.data(), { n });
    r.m.free_energy(vt, fft);
    r.m.tempered_free_energy(vt, ones.data(), nullptr, ftt);
    for (int64_t k = 0; k < n; ++k)
        CHECK(ft[k] == Approx(f[k]).epsilon(1e-5).margin(1e-5));
}

TEST_CASE("rbm gaussian: the conformance kit passes with a fixed sigma and with learn_sigma (kit seed "
          "20251127), skipping only the checks for two-valued units",
          "[rbm][gaussian][conformance]")
{
    for (const std::string keys : { "sigma: 0.8", "learn_sigma: true" })
    {
        INFO(keys);
        Model r = make_gauss(6, 4, keys, 251);
        Rng rng(252);
        randomise(r.m, rng, 0.5);
        const ansatz::testing::ConformanceReport report = ansatz::testing::check_model(r.m, {});
        INFO(report.summary());
        CHECK(report.passed());
        CHECK(report.checks.size() == 9);
        // Binomial and enumeration checks need two-valued visible units.
        CHECK(report.skipped() == std::vector<std::string>{ "conditionals_exact", "conditional_sampling" });
        CHECK(report.outcome("energy_delta") == ansatz::testing::Outcome::passed);
        CHECK(report.outcome("free_energy_grad") == ansatz::testing::Outcome::passed);
        CHECK(report.outcome("local_moves") == ansatz::testing::Outcome::passed);
        CHECK(report.outcome("local_step") == ansatz::testing::Outcome::passed);
        CHECK(report.outcome("state_grad") == ansatz::testing::Outcome::passed);
    }
}

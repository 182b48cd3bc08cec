// The rbm's local-move session (ABI 2.2) and its state gradient: the session's energy_delta equals
// differences of the tempered free energy (computed in double here from the parameters) at every inverse
// temperature, and stays equal after many thousands of commits; misuse is refused with a sentence;
// free_energy_grad_state matches central differences for Gaussian units and is refused for Bernoulli ones.
#include "support/plugins.hpp"

#include <ansatz/math.hpp>
#include <ansatz/testing/conformance.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;

struct Model
{
    std::unique_ptr<ansatz::engine::Instance> inst;
    ModelRef m;
    int64_t d = 0;
    bool gaussian = false;
    double sigma = 1; // gaussian units without learn_sigma
};

// An rbm with `keys`, weights and biases set to N(0, scale^2) (log_sigma, when learnt, N(0, 0.3^2)).
Model make(int64_t d, int64_t h, const std::string& keys, double scale, uint64_t seed)
{
    Model r;
    r.inst = ansatz::test::make("rbm", "{hidden: " + std::to_string(h) + ", visible: " + std::to_string(d) +
                                           (keys.empty() ? "" : ", " + keys) + "}");
    r.m = ansatz::test::model_ref(*r.inst);
    r.d = d;
    r.gaussian = keys.find("gaussian") != std::string::npos;
    if (const size_t at = keys.find("sigma: ");
        at != std::string::npos && keys.find("learn_sigma") == std::string::npos)
        r.sigma = std::stod(keys.substr(at + 7));
    Rng rng(seed);
    r.m.setup({ d }, rng);
    for (ansatz_named_tensor& t : r.m.parameters())
    {
        const double s = std::string(t.name) == "log_sigma" ? 0.3 : scale;
        for (int64_t k = 0; k < ansatz::element_count(t.tensor); ++k)
            ansatz::f32(t.tensor)[k] = static_cast<float>(s * rng.normal());
    }
    return r;
}

// F_beta(v) of every row and its magnitude M = |visible term| + sum_j softplus(beta p_j) (what float
// rounding of the terms scales with), in double from the model's float parameters:
//   Bernoulli: F_beta = -beta a.v - sum_j softplus(beta p_j),                     p = b + v W
//   Gaussian:  F_beta = sum_i (v_i - a_i)^2 / 2 sigma_i^2 - sum_j softplus(beta p_j), p = b + (v / sigma^2) W
struct Reference
{
    std::vector<double> f, magnitude;
};

double softplus(double x)
{
    return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
}

Reference reference_f(const Model& r, const std::vector<float>& v, const std::vector<double>& beta)
{
    const std::vector<ansatz_named_tensor> p = r.m.parameters();
    const int64_t d = r.d, h = p[0].tensor.shape[1];
    const float* w = ansatz::f32(p[0].tensor);
    const float* a = ansatz::f32(p[1].tensor);
    const float* b = ansatz::f32(p[2].tensor);
    const float* log_sigma = p.size() > 3 ? ansatz::f32(p[3].tensor) : nullptr;
    Reference out;
    for (size_t n = 0; n < beta.size(); ++n)
    {
        const float* x = v.data() + n * static_cast<size_t>(d);
        std::vector<double> input(static_cast<size_t>(d));
        double visible = 0;
        for (int64_t i = 0; i < d; ++i)
        {
            const double s = log_sigma ? std::exp(static_cast<double>(log_sigma[i])) : r.sigma;
            input[static_cast<size_t>(i)] = r.gaussian ? x[i] / (s * s) : x[i];
            visible += r.gaussian ? (x[i] - a[i]) * (x[i] - a[i]) / (2 * s * s) : -beta[n] * a[i] * x[i];
        }
        double hidden = 0;
        for (int64_t j = 0; j < h; ++j)
        {
            double pre = b[j];
            for (int64_t i = 0; i < d; ++i)
                pre += input[static_cast<size_t>(i)] * w[i * h + j];
            hidden += softplus(beta[n] * pre);
        }
        out.f.push_back(visible - hidden);
        out.magnitude.push_back(std::abs(visible) + hidden);
    }
    return out;
}

struct Drift
{
    double worst = 0;     // the largest |session delta - reference delta|
    double tolerance = 0; // the largest tolerance it was compared with
    int64_t commits = 0;  // changes committed
    int64_t compared = 0; // deltas compared
};

// A session on n chains at the inverse temperatures `beta` (cycled over the rows), `rounds` proposals per
// chain (flips for Bernoulli units, Gaussian steps of 0.7 for Gaussian ones, every 5th a value anywhere
// in the support), about half of them committed. Every `every`-th round all deltas are compared with
// differences of F_beta computed in double here (reference_f); the first mismatch beyond
// 2e-4 + 2e-6 (M(v) + M(v')) fails the test (M: the magnitude of the terms, reference_f).
Drift run_session(const Model& r, int64_t n, int64_t rounds, int64_t every, const std::vector<double>& ladder,
                  uint64_t seed)
{
    Rng rng(seed);
    const int64_t d = r.d;
    std::vector<float> v(static_cast<size_t>(n * d));
    for (float& x : v)
        x = r.gaussian ? static_cast<float>(rng.normal()) : (rng.uniform() < 0.5f ? 1.0f : 0.0f);
    std::vector<double> beta(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
        beta[static_cast<size_t>(k)] = ladder[static_cast<size_t>(k) % ladder.size()];
    std::vector<int64_t> sites(static_cast<size_t>(n));
    std::vector<float> values(static_cast<size_t>(n)), previous(static_cast<size_t>(n)),
        delta(static_cast<size_t>(n));
    std::vector<uint8_t> accepted(static_cast<size_t>(n));
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d });
    ansatz_tensor dt = ansatz::make_view(delta.data(), { n });
    Drift drift;
    ansatz::LocalSession session(r.m, vt, beta.data());
    for (int64_t round = 0; round < rounds; ++round)
    {
        for (int64_t k = 0; k < n; ++k)
        {
            const size_t s = static_cast<size_t>(k);
            sites[s] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(d)));
            const float now = v[static_cast<size_t>(k * d + sites[s])];
            if (round % 5 == 4)
                values[s] = r.gaussian ? static_cast<float>(3 * rng.normal()) : rng.uniform();
            else
                values[s] = r.gaussian ? static_cast<float>(now + 0.7 * rng.normal()) : 1.0f - now;
        }
        r.m.energy_delta(vt, sites.data(), values.data(), dt);
        if (round % every == 0 || round == rounds - 1)
        {
            std::vector<float> changed = v;
            for (int64_t k = 0; k < n; ++k)
                changed[static_cast<size_t>(k * d + sites[static_cast<size_t>(k)])] =
                    values[static_cast<size_t>(k)];
            const Reference f0 = reference_f(r, v, beta), f1 = reference_f(r, changed, beta);
            for (int64_t k = 0; k < n; ++k)
            {
                const size_t s = static_cast<size_t>(k);
                const double want = f1.f[s] - f0.f[s];
                const double tolerance = 2e-4 + 2e-6 * (f0.magnitude[s] + f1.magnitude[s]);
                const double error = std::abs(delta[s] - want);
                INFO("round " << round << " after " << drift.commits << " commits, chain " << k << " at beta "
                              << beta[s] << ": session " << delta[s] << ", reference " << want);
                REQUIRE(error <= tolerance);
                drift.worst = std::max(drift.worst, error);
                drift.tolerance = std::max(drift.tolerance, tolerance);
                ++drift.compared;
            }
        }
        for (int64_t k = 0; k < n; ++k)
        {
            const size_t s = static_cast<size_t>(k);
            float& x = v[static_cast<size_t>(k * d + sites[s])];
            previous[s] = x;
            accepted[s] = rng.uniform() < 0.5f;
            if (accepted[s])
            {
                x = values[s];
                ++drift.commits;
            }
        }
        session.commit(vt, sites.data(), previous.data(), accepted.data());
    }
    session.end();
    return drift;
}

} // namespace

TEST_CASE(
    "rbm local moves: bernoulli units - the session's deltas equal free-energy differences (in double) at "
    "beta 1 and 0.5 and 0.25 and 1.5 through 64 chains x 4000 proposals (about 128000 commits)",
    "[rbm][local]")
{
    const Model r = make(20, 16, "", 1.0, 301);
    const Drift drift = run_session(r, 64, 4000, 50, { 1.0, 0.5, 0.25, 1.5 }, 302);
    WARN("bernoulli: worst |difference| " << drift.worst << " over " << drift.compared << " deltas, "
                                          << drift.commits << " commits");
    CHECK(drift.commits > 120000);
}

TEST_CASE("rbm local moves: a session after the weights changed (even without parameters_changed) uses "
          "tables of the new weights, and one at other betas its own - the tables kept between sessions",
          "[rbm][local]")
{
    // The rbm keeps its tables e^(beta W) (and per-row statistics of W) from one session to the next while
    // the weights are the same bits. Sessions in a row: the ladder {1, 0.5}; the same again (tables kept);
    // the weights scaled by 1.7 in place, nothing announced (tables made again); the ladder {0.25, 1.5, 1}
    // (one table kept, two made in the buffers of the unused one and anew); back to {1, 0.5}. Every
    // session's deltas against free-energy differences in double (run_session).
    const Model r = make(20, 16, "", 1.0, 341);
    const std::vector<std::vector<double>> ladders = {
        { 1.0, 0.5 }, { 1.0, 0.5 }, { 1.0, 0.5 }, { 0.25, 1.5, 1.0 }, { 1.0, 0.5 }
    };
    for (size_t k = 0; k < ladders.size(); ++k)
    {
        INFO("session " << k);
        if (k == 2)
        {
            ansatz_named_tensor w = r.m.parameters()[0];
            for (int64_t j = 0; j < ansatz::element_count(w.tensor); ++j)
                ansatz::f32(w.tensor)[j] *= 1.7f;
        }
        const Drift drift = run_session(r, 16, 300, 10, ladders[k], 342 + k);
        CHECK(drift.compared >= 16 * 30);
    }
}

TEST_CASE("rbm local moves: gaussian units with sigma 0.8 and with learn_sigma - the session's deltas equal "
          "free-energy differences (in double) through 32 chains x 3000 proposals",
          "[rbm][local][gaussian]")
{
    for (const std::string keys :
         { "visible_units: gaussian, sigma: 0.8", "visible_units: gaussian, learn_sigma: true" })
    {
        INFO(keys);
        const Model r = make(12, 10, keys, 0.5, 311);
        const Drift drift = run_session(r, 32, 3000, 50, { 1.0, 0.5, 0.25, 1.5 }, 312);
        WARN(keys << ": worst |difference| " << drift.worst << " over " << drift.compared << " deltas");
        CHECK(drift.commits > 40000);
    }
}

TEST_CASE(
    "rbm local moves: large weights (sd 20 and sd 100) - where pre-activations leave the range "
    "the cached sigmoids keep (|beta p| >= 80) and rows go back and forth to exact softplus differences - "
    "still agree at every proposal",
    "[rbm][local]")
{
    for (const double scale : { 20.0, 100.0 })
    {
        INFO("weights N(0, " << scale << "^2)");
        const Model r = make(8, 6, "", scale, 321);
        const Drift drift = run_session(r, 8, 400, 1, { 1.0, 0.5, 3.0 }, 322);
        CHECK(drift.compared == 8 * 400);
    }
}

TEST_CASE("rbm local moves: without beta the session is the model itself - and after local_end energy_delta "
          "is the plain F(v') - F(v) again",
          "[rbm][local]")
{
    const Model r = make(10, 7, "", 1.0, 331);
    const int64_t n = 5, d = 10;
    Rng rng(332);
    std::vector<float> v(static_cast<size_t>(n * d));
    for (float& x : v)
        x = rng.uniform() < 0.5f ? 1.0f : 0.0f;
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d });
    std::vector<int64_t> sites = { 0, 3, 9, 4, 4 };
    std::vector<float> values(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
        values[static_cast<size_t>(k)] = 1.0f - v[static_cast<size_t>(k * d + sites[static_cast<size_t>(k)])];
    std::vector<float> outside(static_cast<size_t>(n)), inside(static_cast<size_t>(n));
    ansatz_tensor ot = ansatz::make_view(outside.data(), { n }), it = ansatz::make_view(inside.data(), { n });
    r.m.energy_delta(vt, sites.data(), values.data(), ot);
    {
        ansatz::LocalSession session(r.m, vt);
        r.m.energy_delta(vt, sites.data(), values.data(), it);
        for (int64_t k = 0; k < n; ++k)
            CHECK(inside[static_cast<size_t>(k)] == Approx(outside[static_cast<size_t>(k)]).margin(1e-5));
    }
    std::vector<float> after(static_cast<size_t>(n));
    ansatz_tensor at = ansatz::make_view(after.data(), { n });
    r.m.energy_delta(vt, sites.data(), values.data(), at);
    CHECK(after == outside); // the same code path as before the session, bit for bit
}

TEST_CASE("rbm local moves: misuse of a session is refused with a sentence", "[rbm][local]")
{
    const Model r = make(6, 4, "", 1.0, 341);
    const int64_t n = 2, d = 6;
    std::vector<float> v(static_cast<size_t>(n * d), 0.0f), other = v;
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d }), ot = ansatz::make_view(other.data(), { n, d });
    std::vector<int64_t> sites = { 1, 2 }, wrong = { 1, 3 };
    std::vector<float> values = { 1.0f, 1.0f }, previous = { 0.0f, 0.0f }, delta(2);
    std::vector<uint8_t> yes = { 1, 1 }, second = { 0, 1 };
    ansatz_tensor dt = ansatz::make_view(delta.data(), { n });
    REQUIRE_THROWS_WITH(r.m.local_commit(vt, sites.data(), previous.data(), yes.data()),
                        "rbm local_commit: no local session is open (local_begin first)");
    ansatz::LocalSession session(r.m, vt);
    REQUIRE_THROWS_WITH(r.m.energy_delta(ot, sites.data(), values.data(), dt),
                        "rbm energy_delta: the local session is open on other chains (2 rows at another "
                        "address); pass the chains given to local_begin, or end the session first");
    REQUIRE_THROWS_WITH(r.m.local_commit(vt, sites.data(), previous.data(), yes.data()),
                        "rbm local_commit: no energy_delta of this session proposed changes to commit");
    r.m.energy_delta(vt, sites.data(), values.data(), dt);
    REQUIRE_THROWS_WITH(
        r.m.local_commit(vt, wrong.data(), previous.data(), second.data()),
        "rbm local_commit: chain 1 commits site 3, but the latest energy_delta proposed site 2");
    // Accepted, but the value was not written into v.
    REQUIRE_THROWS_WITH(
        r.m.local_commit(vt, sites.data(), previous.data(), yes.data()),
        "rbm local_commit: chain 0 holds 0.000000 at site 1, not the value 1.000000 the latest "
        "energy_delta proposed");
    std::vector<double> bad = { 1.0, std::nan("") };
    REQUIRE_THROWS_WITH(r.m.local_begin(vt, bad.data()),
                        "rbm local_begin: the inverse temperature of row 1 is nan; it must be finite");
}

TEST_CASE(
    "rbm free_energy_grad_state: gaussian units match central differences of F in double (sigma 0.8 and "
    "learn_sigma) and bernoulli units are refused",
    "[rbm][gaussian][local]")
{
    for (const std::string keys :
         { "visible_units: gaussian, sigma: 0.8", "visible_units: gaussian, learn_sigma: true" })
    {
        INFO(keys);
        const Model r = make(7, 5, keys, 0.6, 351);
        const int64_t n = 4, d = 7;
        Rng rng(352);
        std::vector<float> v(static_cast<size_t>(n * d));
        for (float& x : v)
            x = static_cast<float>(1.5 * rng.normal());
        std::vector<float> grad(static_cast<size_t>(n * d));
        ansatz_tensor vt = ansatz::make_view(v.data(), { n, d }),
                      gt = ansatz::make_view(grad.data(), { n, d });
        r.m.free_energy_grad_state(vt, gt);
        // F in double (reference_f at beta 1) at the float states x +- step.
        const std::vector<double> one(1, 1.0);
        for (int64_t k = 0; k < n * d; ++k)
        {
            std::vector<float> row(v.begin() + (k / d) * d, v.begin() + (k / d + 1) * d);
            const float x = row[static_cast<size_t>(k % d)];
            const float step = 1.0f / 64; // exact in float: x +- step is the state F is evaluated at
            row[static_cast<size_t>(k % d)] = x + step;
            Model view = { nullptr, r.m, d, true, r.sigma };
            const double up = reference_f(view, row, one).f[0];
            row[static_cast<size_t>(k % d)] = x - step;
            const double down = reference_f(view, row, one).f[0];
            const double fd = (up - down) / (static_cast<double>(x + step) - (x - step));
            INFO("element " << k << ": free_energy_grad_state " << grad[static_cast<size_t>(k)]
                            << ", central "
                            << "difference " << fd);
            CHECK(grad[static_cast<size_t>(k)] == Approx(fd).epsilon(2e-3).margin(2e-4));
        }
    }
    const Model b = make(4, 3, "", 1.0, 353);
    std::vector<float> v(8, 0.0f), g(8);
    ansatz_tensor vt = ansatz::make_view(v.data(), { 2, 4 }), gt = ansatz::make_view(g.data(), { 2, 4 });
    REQUIRE_THROWS_AS(b.m.free_energy_grad_state(vt, gt), ansatz::InputError);
    REQUIRE_THROWS_WITH(
        b.m.free_energy_grad_state(vt, gt),
        "rbm free_energy_grad_state: bernoulli visible units are discrete, so dF/dv is defined "
        "only for visible_units: gaussian");
}

TEST_CASE("rbm local moves: 256 and 200 hidden units (whole and partial lanes of the float products) with "
          "weights sd 0.05 and sd 1 - the float lanes and their bounds agree with free-energy differences "
          "through the commits' multiplies and the refreshes from v",
          "[rbm][local]")
{
    // sd 0.05: the lanes' bounds grow slowly, commits only multiply r by E; 1500 rounds cross no refresh
    // (every 2048 rounds) but the bounds are recomputed from the exponents of r. sd 1: a lane's bound
    // (its sum of max(0, q_j) plus |beta| sum of |W_ij| over its units) is near or beyond 80, so products
    // go in float or (some) in double lanes, and the bounds are recomputed often. 32 chains x 1500
    // proposals, compared every 7th round (2e-4 + 2e-6 (M + M'), run_session).
    for (const int64_t h : { int64_t(256), int64_t(200) })
        for (const double scale : { 0.05, 1.0 })
        {
            INFO(h << " hidden units, weights N(0, " << scale << "^2)");
            const Model r = make(40, h, "", scale, 361);
            const Drift drift = run_session(r, 32, 1500, 7, { 1.0, 0.5, 1.5 }, 362);
            WARN(h << " hidden, sd " << scale << ": worst |difference| " << drift.worst
                   << " (tolerance up to " << drift.tolerance << ") over " << drift.compared << " deltas, "
                   << drift.commits << " commits");
            CHECK(drift.commits > 20000);
        }
}

// The model of the wide-row tests: W_0j = 50 at j = 0 and 32, -50 at j = 1 and 33, the other weights
// N(0, 0.3^2), 6 x 64.
Model wide_row()
{
    Model r = make(6, 64, "", 0.3, 371);
    float* w = ansatz::f32(r.m.parameters()[0].tensor);
    for (const int64_t j : { 0, 32 })
        w[j] = 50.0f;
    for (const int64_t j : { 1, 33 })
        w[j] = -50.0f;
    r.m.parameters_changed();
    return r;
}

TEST_CASE("rbm local moves: a row of weights too wide for the float lanes (W_0j = +-50 on two units of two "
          "lanes) goes through products in double and r from p - and agrees with free-energy differences",
          "[rbm][local]")
{
    // Visible unit 0 has W_0j = 50 at j = 0 and 32 (lane 0) and -50 at j = 1 and 33 (lane 1), the other
    // weights N(0, 0.3^2), 64 hidden units. At beta 0.85 and 0.9 a lane's bound for a flip of unit 0 is
    // beta x 100 >= 80: beyond the float lanes, within a double's (beta max(sum W+, sum W-) < 700), so
    // the product goes in double. After that flip |beta p_j| is about 43 at four units, so a further commit
    // could take |q| past 80: r is then recomputed from p (and, beyond, the row uses softplus differences).
    // 16 chains x 1200 proposals, every round compared (2e-4 + 2e-6 (M + M'), run_session).
    Model r = wide_row();
    const Drift drift = run_session(r, 16, 1200, 1, { 0.85, 0.9 }, 372);
    WARN("wide row: worst |difference| " << drift.worst << " over " << drift.compared << " deltas");
    CHECK(drift.compared == 16 * 1200);
}

// ---- local_step (abi.h 2.4)

namespace
{

// The same chains in sessions of two copies of one model (r and its twin q: one session per model) at the
// inverse temperatures `ladder` (cycled over the n rows): A round by round (energy_delta; accepted when u <
// e^min(0, -delta), the exponential from ansatz::exp; the writes; local_commit), B through local_step in
// calls of chunks[0], chunks[1], ... rounds (cycled), chain-major. Proposals: with `mixed`, new values given,
// every 3rd a draw anywhere in [0, 1], the others flips (1 - v); without, flips left to the model (new values
// nullptr). After every call of B the flags and the states must equal A's bit for bit; at the end a flip of
// every unit in every chain must give the same deltas in both sessions, bit for bit (their caches agree).
// Returns the accepted and rejected counts.
std::pair<int64_t, int64_t> compare_step(const Model& r, const Model& q, int64_t n, int64_t rounds,
                                         const std::vector<int64_t>& chunks,
                                         const std::vector<double>& ladder, bool mixed, uint64_t seed)
{
    Rng rng(seed);
    const int64_t d = r.d;
    std::vector<float> a(static_cast<size_t>(n * d));
    for (float& x : a)
        x = rng.uniform() < 0.5f ? 1.0f : 0.0f;
    std::vector<float> b = a;
    std::vector<double> beta(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
        beta[static_cast<size_t>(k)] = ladder[static_cast<size_t>(k) % ladder.size()];
    ansatz_tensor at = ansatz::make_view(a.data(), { n, d }), bt = ansatz::make_view(b.data(), { n, d });
    ansatz::LocalSession sa(r.m, at, beta.data());
    ansatz::LocalSession sb(q.m, bt, beta.data());
    const size_t rows = static_cast<size_t>(n);
    std::vector<int64_t> sites(rows);
    std::vector<float> values(rows), previous(rows), uniforms(rows), delta(rows), threshold(rows);
    std::vector<uint8_t> flags(rows);
    ansatz_tensor dt = ansatz::make_view(delta.data(), { n });
    int64_t accepted = 0, rejected = 0, done = 0;
    for (size_t call = 0; done < rounds; ++call)
    {
        const int64_t span = std::min(chunks[call % chunks.size()], rounds - done);
        const size_t cells = static_cast<size_t>(span * n);
        std::vector<int64_t> flat_sites(cells);
        std::vector<float> flat_values(cells), flat_uniforms(cells);
        std::vector<uint8_t> want(cells), got(cells, uint8_t{ 2 });
        for (int64_t t = 0; t < span; ++t)
        {
            for (int64_t k = 0; k < n; ++k)
            {
                const size_t s = static_cast<size_t>(k);
                sites[s] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(d)));
                const float now = a[static_cast<size_t>(k * d) + static_cast<size_t>(sites[s])];
                values[s] = mixed && rng.below(3) == 0 ? rng.uniform() : (now == 1.0f ? 0.0f : 1.0f);
                uniforms[s] = rng.uniform();
                const size_t cell = static_cast<size_t>(k * span + t);
                flat_sites[cell] = sites[s];
                flat_values[cell] = values[s];
                flat_uniforms[cell] = uniforms[s];
            }
            r.m.energy_delta(at, sites.data(), values.data(), dt);
            for (size_t s = 0; s < rows; ++s)
            {
                const float minus = -delta[s];
                threshold[s] = minus >= 0.0f ? 0.0f : minus;
            }
            ansatz::exp(threshold.data(), n);
            for (int64_t k = 0; k < n; ++k)
            {
                const size_t s = static_cast<size_t>(k);
                float& x = a[static_cast<size_t>(k * d) + static_cast<size_t>(sites[s])];
                previous[s] = x;
                flags[s] = uniforms[s] < threshold[s] ? 1 : 0;
                if (flags[s])
                    x = values[s];
                want[static_cast<size_t>(k * span + t)] = flags[s];
                (flags[s] ? accepted : rejected) += 1;
            }
            sa.commit(at, sites.data(), previous.data(), flags.data());
        }
        sb.step(bt, span, flat_sites.data(), mixed ? flat_values.data() : nullptr, flat_uniforms.data(),
                got.data());
        for (size_t cell = 0; cell < cells; ++cell)
        {
            INFO("call " << call << " of " << span << " rounds, from round " << done << ": chain "
                         << cell / static_cast<size_t>(span) << " round " << cell % static_cast<size_t>(span)
                         << " at site " << flat_sites[cell]);
            REQUIRE(int(got[cell]) == int(want[cell]));
        }
        INFO("call " << call << " of " << span << " rounds, from round " << done);
        REQUIRE(b == a);
        done += span;
    }
    // Then a flip of each unit in turn, every chain, in both sessions: the same deltas, bit for bit (the
    // caches agree, also in what the flags cannot show: an exact difference is far from its threshold).
    std::vector<float> other(rows);
    ansatz_tensor ot = ansatz::make_view(other.data(), { n });
    for (int64_t i = 0; i < d; ++i)
    {
        for (int64_t k = 0; k < n; ++k)
        {
            const size_t s = static_cast<size_t>(k);
            sites[s] = i;
            values[s] = 1.0f - a[static_cast<size_t>(k * d + i)];
        }
        r.m.energy_delta(at, sites.data(), values.data(), dt);
        q.m.energy_delta(bt, sites.data(), values.data(), ot);
        INFO("a flip of unit " << i);
        CHECK(other == delta);
    }
    sa.end();
    sb.end();
    return { accepted, rejected };
}

} // namespace

TEST_CASE("rbm local_step: the conformance kit's local_step check passes - bernoulli units with weights sd "
          "0.05 (256 hidden units) and sd 1 and sd 20 and gaussian units (sigma 0.8 and learn_sigma)",
          "[rbm][local][conformance]")
{
    // The kit (seed 20251127) compares local_step round by round and all rounds in one call with
    // energy_delta + the acceptance + local_commit, bit for bit; at beta 1, 0.5, 0.25 and 1.5 (cycled).
    // sd 20 puts the rows' pre-activations beyond the float cache (exact softplus differences).
    struct Case
    {
        int64_t d, h;
        std::string keys;
        double scale;
        int64_t rows, rounds;
    };
    for (const Case& c :
         { Case{ 30, 256, "", 0.05, 8, 400 }, Case{ 12, 20, "", 1.0, 16, 300 },
           Case{ 8, 6, "", 20.0, 8, 300 }, Case{ 6, 5, "visible_units: gaussian, sigma: 0.8", 0.5, 8, 200 },
           Case{ 6, 5, "visible_units: gaussian, learn_sigma: true", 0.5, 8, 200 } })
    {
        INFO(c.d << " x " << c.h << " {" << c.keys << "}, weights N(0, " << c.scale << "^2)");
        const Model r = make(c.d, c.h, c.keys, c.scale, 381);
        REQUIRE(r.m.has(ANSATZ_FN_LOCAL_STEP));
        ansatz::testing::ConformanceOptions options;
        options.local_rows = c.rows;
        options.local_rounds = c.rounds;
        const ansatz::testing::CheckResult result = ansatz::testing::check_local_step(r.m, options);
        INFO(result.detail);
        CHECK(result.outcome == ansatz::testing::Outcome::passed);
    }
}

TEST_CASE("rbm local_step: the chains of energy_delta + local_commit bit for bit in calls of 1 to 700 rounds "
          "- across a refresh of the cache - in the float lanes and in their fallbacks (double lanes and r "
          "from p with a wide row of weights and exact softplus differences with weights sd 20) - with "
          "flips and with new values given",
          "[rbm][local]")
{
    // Calls of 1, 7, 64, 700 and 3 rounds (cycled): 2300 rounds cross the refresh of every row from v
    // (every 2048 rounds) inside a call.
    const std::vector<int64_t> chunks = { 1, 7, 64, 700, 3 };
    SECTION("float lanes: 40 x 256, weights sd 0.05 and sd 1 at beta 1, 0.5, 1.5")
    {
        for (const double scale : { 0.05, 1.0 })
        {
            INFO("weights N(0, " << scale << "^2)");
            const Model r = make(40, 256, "", scale, 391), q = make(40, 256, "", scale, 391);
            for (const bool mixed : { false, true })
            {
                INFO((mixed ? "new values given" : "flips"));
                const auto [accepted, rejected] =
                    compare_step(r, q, 6, 2300, chunks, { 1.0, 0.5, 1.5 }, mixed, 392);
                CHECK(accepted > 1000);
                CHECK(rejected > 1000);
            }
        }
    }
    SECTION("a wide row (W_0j = +-50 on two units of two lanes, as above) at beta 0.85 and 0.9: double lanes "
            "and r recomputed from p")
    {
        const Model r = wide_row(), q = wide_row();
        for (const bool mixed : { false, true })
        {
            INFO((mixed ? "new values given" : "flips"));
            const auto [accepted, rejected] = compare_step(r, q, 8, 2300, chunks, { 0.85, 0.9 }, mixed, 393);
            CHECK(accepted > 1000);
            CHECK(rejected > 1000);
        }
    }
    SECTION("a unit whose flips need exact softplus differences beside units in the float lanes (W_0j = "
            "+-35 on all 640 hidden units: a lane's bound 20 x 35 beta >= 700) at beta 1 and 1.5")
    {
        // The other weights N(0, 0.3^2); max |W| beta < 80, so flips have tables. a_0 = -320 x 35 offsets
        // the 320 softplus(35 beta), so unit 0 turns on and off (while it is on, a lane's bound keeps the
        // whole row in exact differences). p must be recomputed from v for the exact differences after the
        // fused loop's commits.
        Model twins[2] = { make(6, 640, "", 0.3, 397), make(6, 640, "", 0.3, 397) };
        for (Model& m : twins)
        {
            float* w = ansatz::f32(m.m.parameters()[0].tensor);
            for (int64_t j = 0; j < 640; ++j)
                w[j] = j % 2 ? -35.0f : 35.0f;
            ansatz::f32(m.m.parameters()[1].tensor)[0] = -320.0f * 35.0f;
            m.m.parameters_changed();
        }
        for (const bool mixed : { false, true })
        {
            INFO((mixed ? "new values given" : "flips"));
            const auto [accepted, rejected] =
                compare_step(twins[0], twins[1], 4, 2300, chunks, { 1.0, 1.5 }, mixed, 398);
            CHECK(accepted > 300);
            CHECK(rejected > 1000);
        }
    }
    SECTION("1, 3 and 5 chains (groups of four not filled) in calls that end right before, at and after "
            "the refresh (2046, 1, 1, 1 rounds)")
    {
        const std::vector<int64_t> edges = { 2046, 1, 1, 1, 251 };
        const Model r = make(40, 256, "", 0.05, 395), q = make(40, 256, "", 0.05, 395);
        for (const int64_t n : { 1, 3, 5 })
        {
            INFO(n << " chains");
            const auto [accepted, rejected] =
                compare_step(r, q, n, 2300, edges, { 1.0, 0.5 }, false, 396 + static_cast<uint64_t>(n));
            CHECK(accepted > 300 * n);
            CHECK(rejected > 100 * n);
        }
    }
    SECTION("weights sd 20 at beta 1, 0.5, 3: rows beyond the float cache, exact softplus differences")
    {
        const Model r = make(8, 6, "", 20.0, 321), q = make(8, 6, "", 20.0, 321);
        for (const bool mixed : { false, true })
        {
            INFO((mixed ? "new values given" : "flips"));
            const auto [accepted, rejected] =
                compare_step(r, q, 6, 2300, chunks, { 1.0, 0.5, 3.0 }, mixed, 394);
            CHECK(accepted > 100);
            CHECK(rejected > 1000);
        }
    }
}

TEST_CASE("rbm local_step: refusals name the site, the value or the missing session", "[rbm][local]")
{
    const Model r = make(6, 4, "", 1.0, 395);
    const int64_t n = 2, d = 6;
    std::vector<float> v(static_cast<size_t>(n * d), 0.0f);
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d });
    std::vector<int64_t> sites = { 1, 2, 3, 6 }; // {2 chains, 2 rounds}: chain 1's round 1 is outside
    std::vector<float> values = { 1.0f, 0.0f, 1.5f, 1.0f }, uniforms = { 0.5f, 0.5f, 0.5f, 0.5f };
    std::vector<uint8_t> flags(4);
    REQUIRE_THROWS_WITH(r.m.local_step(vt, 2, sites.data(), nullptr, uniforms.data(), flags.data()),
                        "rbm local_step: no local session is open (local_begin first)");
    ansatz::LocalSession session(r.m, vt);
    REQUIRE_THROWS_WITH(session.step(vt, 2, sites.data(), nullptr, uniforms.data(), flags.data()),
                        "rbm local_step: site 6 of chain 1 at round 1 is outside [0, 6)");
    sites[3] = 5;
    REQUIRE_THROWS_WITH(session.step(vt, 2, sites.data(), values.data(), uniforms.data(), flags.data()),
                        "rbm local_step: new value 1.500000 of chain 1 at round 0 is outside the units' "
                        "support [0, 1]");
    CHECK(v == std::vector<float>(static_cast<size_t>(n * d), 0.0f)); // refused before any round ran
    const Model g = make(6, 4, "visible_units: gaussian", 0.5, 396);
    ansatz::LocalSession gs(g.m, vt);
    REQUIRE_THROWS_WITH(gs.step(vt, 2, sites.data(), nullptr, uniforms.data(), flags.data()),
                        "rbm local_step: flips (no new values) need bernoulli visible units; gaussian units "
                        "take their new values");
}

TEST_CASE("rbm local_step: a call of 0 rounds between energy_delta and local_commit leaves the proposal "
          "pending - its commit works and the next deltas are still F differences",
          "[rbm][local]")
{
    // (A sampler may hand over an empty chunk; only rounds that run replace a pending proposal.)
    const Model r = make(9, 7, "", 1.0, 397);
    const int64_t n = 3, d = 9;
    Rng rng(398);
    std::vector<float> v(static_cast<size_t>(n * d));
    for (float& x : v)
        x = rng.uniform() < 0.5f ? 1.0f : 0.0f;
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, d });
    std::vector<int64_t> sites = { 2, 5, 8 };
    std::vector<float> values(static_cast<size_t>(n)), previous(static_cast<size_t>(n)),
        delta(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
        values[static_cast<size_t>(k)] = 1.0f - v[static_cast<size_t>(k * d + sites[static_cast<size_t>(k)])];
    ansatz_tensor dt = ansatz::make_view(delta.data(), { n });
    const std::vector<double> ones(static_cast<size_t>(n), 1.0);
    ansatz::LocalSession session(r.m, vt);
    r.m.energy_delta(vt, sites.data(), values.data(), dt);
    session.step(vt, 0, nullptr, nullptr, nullptr, nullptr);
    std::vector<uint8_t> accepted = { 1, 0, 1 };
    for (int64_t k = 0; k < n; ++k)
    {
        const size_t s = static_cast<size_t>(k);
        previous[s] = v[static_cast<size_t>(k * d + sites[s])];
        if (accepted[s])
            v[static_cast<size_t>(k * d + sites[s])] = values[s];
    }
    REQUIRE_NOTHROW(session.commit(vt, sites.data(), previous.data(), accepted.data()));
    // every unit of every chain proposed once more, against differences of F in double
    for (int64_t i = 0; i < d; ++i)
    {
        std::vector<int64_t> at(static_cast<size_t>(n), i);
        std::vector<float> changed = v, proposed(static_cast<size_t>(n)), now(static_cast<size_t>(n));
        for (int64_t k = 0; k < n; ++k)
        {
            now[static_cast<size_t>(k)] = v[static_cast<size_t>(k * d + i)];
            proposed[static_cast<size_t>(k)] = 1.0f - v[static_cast<size_t>(k * d + i)];
            changed[static_cast<size_t>(k * d + i)] = proposed[static_cast<size_t>(k)];
        }
        r.m.energy_delta(vt, at.data(), proposed.data(), dt);
        const Reference f0 = reference_f(r, v, ones), f1 = reference_f(r, changed, ones);
        for (int64_t k = 0; k < n; ++k)
        {
            const size_t s = static_cast<size_t>(k);
            INFO("unit " << i << ", chain " << k);
            CHECK(delta[s] ==
                  Approx(f1.f[s] - f0.f[s]).margin(2e-4 + 2e-6 * (f0.magnitude[s] + f1.magnitude[s])));
        }
        std::vector<uint8_t> none(static_cast<size_t>(n), 0);
        session.commit(vt, at.data(), now.data(), none.data());
    }
}

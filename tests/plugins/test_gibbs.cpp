// The gibbs sampler against the exact joint distribution of a small RBM, by enumeration.
#include "loading/registry.hpp"
#include "support/plugins.hpp"
#include "support/statistics.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace
{

using ansatz::test::ChiSquare;

using ansatz::ModelRef;
using ansatz::Rng;

constexpr int kVisible = 6;
constexpr int kHidden = 4;
constexpr int kStates = 1 << (kVisible + kHidden); // 1024 joint states (v, h)

struct Params
{
    std::vector<double> w, a, b; // w row-major {6, 4}
};

Params read_params(const ModelRef& m)
{
    const std::vector<ansatz_named_tensor> p = m.parameters();
    return { std::vector<double>(ansatz::f32(p[0].tensor), ansatz::f32(p[0].tensor) + kVisible * kHidden),
             std::vector<double>(ansatz::f32(p[1].tensor), ansatz::f32(p[1].tensor) + kVisible),
             std::vector<double>(ansatz::f32(p[2].tensor), ansatz::f32(p[2].tensor) + kHidden) };
}

// p(v, h) ∝ exp(a.v + b.h + v W h); state index = v bits (low 6) | h bits << 6.
std::vector<double> exact_joint(const Params& p)
{
    std::vector<double> out(kStates);
    for (int s = 0; s < kStates; ++s)
    {
        double x = 0;
        for (int i = 0; i < kVisible; ++i)
            x += p.a[i] * ((s >> i) & 1);
        for (int j = 0; j < kHidden; ++j)
            x += p.b[j] * ((s >> (kVisible + j)) & 1);
        for (int i = 0; i < kVisible; ++i)
            for (int j = 0; j < kHidden; ++j)
                x += p.w[i * kHidden + j] * ((s >> i) & 1) * ((s >> (kVisible + j)) & 1);
        out[s] = std::exp(x);
    }
    const double z = std::accumulate(out.begin(), out.end(), 0.0);
    for (double& x : out)
        x /= z;
    return out;
}

ChiSquare chi_square(const std::vector<double>& p, const std::vector<int64_t>& counts, int64_t n)
{
    const ChiSquare out = ansatz::test::chi_square(p, counts, n);
    // The cells come in increasing order and the largest expect far more than 5: no pooled remainder.
    REQUIRE_FALSE(out.pooled_remainder);
    return out;
}

struct Fixture
{
    std::unique_ptr<ansatz::engine::Instance> rbm, gibbs;
    ModelRef model;
    ansatz::SamplerRef sampler;
};

// A 6 x 4 RBM with W ~ N(0, 1) (init_std 1.0, setup seed 81) and fixed non-zero biases.
Fixture make_fixture()
{
    Fixture f;
    f.rbm = ansatz::test::make("rbm", "{hidden: 4, visible: 6, init_std: 1.0}");
    f.model = ansatz::test::model_ref(*f.rbm);
    Rng init(81);
    f.model.setup({ kVisible }, init);
    const std::vector<ansatz_named_tensor> p = f.model.parameters();
    const float a[kVisible] = { 0.5f, -0.8f, 0.3f, -0.2f, 1.0f, -0.6f };
    const float b[kHidden] = { -0.4f, 0.7f, -1.0f, 0.2f };
    std::copy(a, a + kVisible, ansatz::f32(p[1].tensor));
    std::copy(b, b + kHidden, ansatz::f32(p[2].tensor));
    f.gibbs = ansatz::test::make("gibbs", "{steps: 1}");
    f.sampler = ansatz::test::sampler_ref(*f.gibbs);
    f.sampler.bind(f.model);
    return f;
}

// Runs n chains (one stream each, split from rng) from random_state for `sweeps` sweeps, then draws
// h ~ p(h | v) for the final v: one joint sample (v, h) per chain; returns the counts per state.
std::vector<int64_t> joint_counts(const Fixture& f, int64_t n, int32_t sweeps, Rng& rng)
{
    std::vector<float> v(n * kVisible), hm(n * kHidden), h(n * kHidden);
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, kVisible });
    ansatz_tensor hmt = ansatz::make_view(hm.data(), { n, kHidden }),
                  ht = ansatz::make_view(h.data(), { n, kHidden });
    ansatz::StreamArray chains;
    const ansatz::Streams streams = chains.split_from(rng, n);
    f.model.random_state(vt, streams);
    if (sweeps > 0)
        f.sampler.advance(vt, sweeps, streams);
    f.model.conditional(ANSATZ_BLOCK_HIDDEN, vt, hmt, &ht, streams);
    std::vector<int64_t> counts(kStates, 0);
    for (int64_t c = 0; c < n; ++c)
    {
        int s = 0;
        for (int i = 0; i < kVisible; ++i)
            s |= (v[c * kVisible + i] != 0.0f) << i;
        for (int j = 0; j < kHidden; ++j)
            s |= (h[c * kHidden + j] != 0.0f) << (kVisible + j);
        ++counts[s];
    }
    return counts;
}

// Total variation between the exact v-marginal and the law of v after `sweeps` exact Gibbs sweeps
// from the uniform start (the 64 x 64 transition matrix T(v'|v) = sum_h p(h|v) p(v'|h)).
double tv_after_sweeps(const std::vector<double>& joint, int sweeps)
{
    constexpr int nv = 1 << kVisible, nh = 1 << kHidden;
    std::vector<double> pv(nv, 0.0), ph(nh, 0.0);
    for (int s = 0; s < kStates; ++s)
    {
        pv[s & (nv - 1)] += joint[s];
        ph[s >> kVisible] += joint[s];
    }
    std::vector<double> dist(nv, 1.0 / nv);
    for (int t = 0; t < sweeps; ++t)
    {
        std::vector<double> hdist(nh, 0.0), next(nv, 0.0);
        for (int s = 0; s < kStates; ++s) // h ~ p(h|v) = p(v,h) / p(v)
            hdist[s >> kVisible] += dist[s & (nv - 1)] * joint[s] / pv[s & (nv - 1)];
        for (int s = 0; s < kStates; ++s) // v ~ p(v|h) = p(v,h) / p(h)
            next[s & (nv - 1)] += hdist[s >> kVisible] * joint[s] / ph[s >> kVisible];
        dist = next;
    }
    double tv = 0;
    for (int v = 0; v < nv; ++v)
        tv += 0.5 * std::abs(dist[v] - pv[v]);
    return tv;
}

} // namespace

TEST_CASE(
    "gibbs: 40000 chains x 100 sweeps of a 6x4 RBM reproduce the exact joint p(v,h) "
    "(seed 82, chi-square over 1024 states pooled to expected >= 5, reject above the 1 - 1e-4 quantile)",
    "[gibbs][statistical]")
{
    const Fixture f = make_fixture();
    const std::vector<double> p = exact_joint(read_params(f.model));
    const int64_t n = 40000;
    const int32_t sweeps = 100;

    // The chains have mixed: after 100 exact sweeps from the uniform start the law of v is within
    // 1e-6 in total variation of p(v), far below the test's resolution (~sqrt(1024 / N) = 0.16).
    const double tv = tv_after_sweeps(p, sweeps);
    INFO("exact total variation after " << sweeps << " sweeps: " << tv);
    REQUIRE(tv < 1e-6);

    Rng rng(82);
    const ChiSquare good = chi_square(p, joint_counts(f, n, sweeps, rng), n);
    INFO("chi-square " << good.statistic << " over " << good.cells << " cells, threshold " << good.threshold);
    WARN("gibbs chi-square " << good.statistic << " over " << good.cells << " cells, threshold "
                             << good.threshold);
    CHECK(good.statistic < good.threshold);

    // Power: the same test rejects chains that were not advanced (v uniform, h ~ p(h|v)) ...
    Rng rng0(83);
    const ChiSquare unmixed = chi_square(p, joint_counts(f, n, 0, rng0), n);
    WARN("no sweeps: chi-square " << unmixed.statistic << ", threshold " << unmixed.threshold);
    CHECK(unmixed.statistic > unmixed.threshold);

    // ... and samples of a slightly different RBM (every weight scaled by 0.85).
    for (ansatz_named_tensor& t : f.model.parameters())
        if (std::string(t.name) == "weights")
            for (int k = 0; k < kVisible * kHidden; ++k)
                ansatz::f32(t.tensor)[k] *= 0.85f;
    Rng rng1(84);
    const ChiSquare other = chi_square(p, joint_counts(f, n, sweeps, rng1), n);
    WARN("W x 0.85: chi-square " << other.statistic << ", threshold " << other.threshold);
    CHECK(other.statistic > other.threshold);
}

TEST_CASE("gibbs: advance with steps 0 runs the configured sweeps and reports gibbs_sweeps", "[gibbs]")
{
    Fixture f = make_fixture();
    auto g3 = ansatz::test::make("gibbs", "{steps: 3}");
    ansatz::SamplerRef s3 = ansatz::test::sampler_ref(*g3);
    s3.bind(f.model);
    std::vector<float> v(8 * kVisible, 1.0f), w;
    ansatz_tensor vt = ansatz::make_view(v.data(), { 8, kVisible });
    Rng rng(91);
    ansatz::StreamArray streams, copies;
    s3.advance(vt, 0, streams.split_from(rng, 8));
    Rng copy(91);
    // The same stream through the 1-step sampler asked for 3 steps gives the same chains.
    w.assign(8 * kVisible, 1.0f);
    ansatz_tensor wt = ansatz::make_view(w.data(), { 8, kVisible });
    f.sampler.advance(wt, 3, copies.split_from(copy, 8));
    REQUIRE(v == w);
    for (float x : v)
        REQUIRE((x == 0.0f || x == 1.0f));
    ansatz::engine::MetricsSink sink;
    s3.metrics(*sink.c());
    const auto m = sink.take();
    REQUIRE(m.size() == 1);
    REQUIRE(m[0].first == "gibbs_sweeps");
    REQUIRE(m[0].second == 3.0);
    s3.metrics(*sink.c());
    REQUIRE(sink.take()[0].second == 0.0); // since the last call

    // Chains of the wrong width are refused.
    std::vector<float> bad(8 * 5);
    ansatz_tensor bt = ansatz::make_view(bad.data(), { 8, 5 });
    REQUIRE_THROWS_AS(s3.advance(bt, 1, streams.streams()), ansatz::Error);
}

namespace
{

// joint_counts, through advance_tempered at inverse temperature beta for every chain, then
// h ~ p_beta(h | v) for the final v.
std::vector<int64_t> tempered_joint_counts(const Fixture& f, int64_t n, int32_t sweeps, double beta, Rng& rng)
{
    std::vector<float> v(n * kVisible), hm(n * kHidden), h(n * kHidden);
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, kVisible });
    ansatz_tensor hmt = ansatz::make_view(hm.data(), { n, kHidden }),
                  ht = ansatz::make_view(h.data(), { n, kHidden });
    const std::vector<double> betas(static_cast<size_t>(n), beta);
    ansatz::StreamArray chains;
    const ansatz::Streams streams = chains.split_from(rng, n);
    f.model.random_state(vt, streams);
    f.sampler.advance_tempered(vt, sweeps, betas.data(), streams);
    f.model.tempered_conditional(ANSATZ_BLOCK_HIDDEN, vt, betas.data(), nullptr, hmt, &ht, streams);
    std::vector<int64_t> counts(kStates, 0);
    for (int64_t c = 0; c < n; ++c)
    {
        int s = 0;
        for (int i = 0; i < kVisible; ++i)
            s |= (v[c * kVisible + i] != 0.0f) << i;
        for (int j = 0; j < kHidden; ++j)
            s |= (h[c * kHidden + j] != 0.0f) << (kVisible + j);
        ++counts[s];
    }
    return counts;
}

} // namespace

TEST_CASE(
    "gibbs: advance_tempered at beta 0.5 reproduces the exact tempered joint p_beta(v h) of a 6x4 RBM "
    "(seed 85 - 40000 chains x 100 sweeps - chi-square over 1024 states pooled to expected >= 5 - reject "
    "above the 1 - 1e-4 quantile)",
    "[gibbs][tempered][statistical]")
{
    const Fixture f = make_fixture();
    REQUIRE(f.sampler.can_temper());
    // Binary units keep no E0: p_beta(v, h) is exp(-beta E) / Z_beta, the joint of the parameters times beta.
    const double beta = 0.5;
    Params scaled = read_params(f.model);
    for (std::vector<double>* x : { &scaled.w, &scaled.a, &scaled.b })
        for (double& y : *x)
            y *= beta;
    const std::vector<double> p = exact_joint(scaled);
    const int64_t n = 40000;
    const int32_t sweeps = 100;
    REQUIRE(tv_after_sweeps(p, sweeps) < 1e-6);
    Rng rng(85);
    const std::vector<int64_t> counts = tempered_joint_counts(f, n, sweeps, beta, rng);
    const ChiSquare good = chi_square(p, counts, n);
    WARN("gibbs tempered chi-square " << good.statistic << " over " << good.cells << " cells, threshold "
                                      << good.threshold);
    CHECK(good.statistic < good.threshold);
    // Power: the same samples against the model at beta = 1 are rejected.
    const ChiSquare cold = chi_square(exact_joint(read_params(f.model)), counts, n);
    WARN("against beta 1: chi-square " << cold.statistic << ", threshold " << cold.threshold);
    CHECK(cold.statistic > cold.threshold);
}

TEST_CASE("gibbs: advance_tempered with every beta 1 is advance bit for bit", "[gibbs][tempered]")
{
    const Fixture f = make_fixture();
    const int64_t n = 16;
    std::vector<float> a(n * kVisible, 0.0f), b = a;
    ansatz_tensor at = ansatz::make_view(a.data(), { n, kVisible }),
                  bt = ansatz::make_view(b.data(), { n, kVisible });
    const std::vector<double> ones(n, 1.0);
    Rng r1(86), r2(86);
    ansatz::StreamArray s1, s2;
    f.sampler.advance(at, 7, s1.split_from(r1, n));
    f.sampler.advance_tempered(bt, 7, ones.data(), s2.split_from(r2, n));
    CHECK(a == b);
}

TEST_CASE("gibbs: advance_tempered refuses a model without tempered functions - also on 0 rows (the probe a "
          "wrapper makes at bind)",
          "[gibbs][tempered]")
{
    ansatz::engine::Registry fixtures;
    fixtures.scan({ ANSATZ_TEST_FIXTURE_DIR });
    const ansatz::engine::PluginComponent* c = fixtures.find("conformance_rbm");
    REQUIRE(c != nullptr);
    ansatz::engine::ConfigValues config = ansatz::engine::config_from_yaml(*c->desc, "{}");
    ansatz::engine::Instance inst(*c, config.c("plain"), ansatz::test::test_host().table());
    const ModelRef model(inst.model());
    Rng init(1);
    model.setup({ kVisible }, init);
    auto gibbs = ansatz::test::make("gibbs", "{steps: 1}");
    const ansatz::SamplerRef sampler = ansatz::test::sampler_ref(*gibbs);
    sampler.bind(model);
    const std::string message =
        "sampler 'gibbs' cannot temper this model: a tempered Gibbs sweep needs the model's tempered "
        "functions "
        "(tempered_free_energy + base_log_partition + tempered_conditional), and it has free_energy, "
        "free_energy_grad, energy_delta, conditional, local_begin + local_commit + local_end";
    REQUIRE_THROWS_AS(sampler.require_tempering(kVisible), ansatz::InputError);
    REQUIRE_THROWS_WITH(sampler.require_tempering(kVisible), message);
    std::vector<float> v(2 * kVisible, 0.0f);
    ansatz_tensor vt = ansatz::make_view(v.data(), { 2, kVisible });
    const double beta[2] = { 0.5, 0.5 };
    Rng rng(2);
    ansatz::StreamArray streams;
    REQUIRE_THROWS_WITH(sampler.advance_tempered(vt, 1, beta, streams.split_from(rng, 2)), message);
}

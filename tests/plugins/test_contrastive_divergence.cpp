// The contrastive_divergence loss: its value and gradient against a replay with the same random stream,
// persistent chains, and CD-1 training with the real sgd plugin against the exact likelihood.
#include "loading/registry.hpp"
#include "pipeline/config_values.hpp"
#include "support/plugins.hpp"
#include "user_error.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;
using ansatz::SamplerRef;
using ansatz::engine::Instance;

// Gradient buffers shaped like the model's parameters, filled with `value`.
struct Grads
{
    std::vector<std::vector<float>> data;
    std::vector<ansatz_tensor> views;

    Grads(const ModelRef& m, float value)
    {
        for (const ansatz_named_tensor& p : m.parameters())
        {
            data.emplace_back(static_cast<size_t>(ansatz::element_count(p.tensor)), value);
            ansatz_tensor v = p.tensor;
            v.data = data.back().data();
            views.push_back(v);
        }
    }
    void fill(float value)
    {
        for (auto& d : data)
            std::fill(d.begin(), d.end(), value);
    }
};

struct Setup
{
    std::unique_ptr<Instance> rbm, gibbs, cd;
    ModelRef model;
    SamplerRef sampler;
};

// The fixture plugins (tests/fixtures/plugins), for a model without free_energy_grad_weighted.
const ansatz::engine::Registry& fixture_plugins()
{
    static const ansatz::engine::Registry registry = [] {
        ansatz::engine::Registry r;
        r.scan({ ANSATZ_TEST_FIXTURE_DIR });
        return r;
    }();
    return registry;
}

// The loss, sampler and model of a test; the model is the in-tree rbm unless `model` is given (a created,
// not yet set up instance). `host` (default: the tests' host) is lent to the loss.
Setup make_setup(int visible, int hidden, double init_std, const std::string& gibbs_yaml,
                 const std::string& cd_yaml, std::unique_ptr<Instance> model = nullptr,
                 ansatz::engine::HostServices* host = nullptr)
{
    Setup s;
    s.rbm = model ? std::move(model)
                  : ansatz::test::make("rbm", "{hidden: " + std::to_string(hidden) +
                                                  ", visible: " + std::to_string(visible) +
                                                  ", init_std: " + std::to_string(init_std) + "}");
    s.model = ansatz::test::model_ref(*s.rbm);
    Rng init(101);
    s.model.setup({ visible }, init);
    s.gibbs = ansatz::test::make("gibbs", gibbs_yaml);
    s.sampler = ansatz::test::sampler_ref(*s.gibbs);
    s.sampler.bind(s.model);
    s.cd = ansatz::test::make("contrastive_divergence", cd_yaml, host);
    const ansatz_model_handle mh = s.rbm->model();
    const ansatz_sampler_handle sh = s.gibbs->sampler();
    ansatz_status st{};
    REQUIRE(s.cd->loss().bind(s.cd->self(), &mh, &sh, &st) == ANSATZ_STATUS_OK);
    return s;
}

// Calls the loss through its C table; returns the metrics.
using Reported = std::vector<std::pair<std::string, double>>;

Reported compute(const Setup& s, std::vector<float>& batch, int64_t n, Grads& g, Rng& rng)
{
    const int64_t d = static_cast<int64_t>(batch.size()) / n;
    ansatz_tensor bt = ansatz::make_view(batch.data(), { n, d });
    ansatz::engine::MetricsSink out;
    ansatz_status st{};
    const int32_t code = s.cd->loss().compute(
        s.cd->self(), &bt, g.views.data(), static_cast<int32_t>(g.views.size()), &rng.state(), out.c(), &st);
    INFO(st.message);
    REQUIRE(code == ANSATZ_STATUS_OK);
    return out.take();
}

double metric(const Reported& m, const std::string& name)
{
    for (const auto& [n, value] : m)
        if (name == n)
            return value;
    FAIL("metric " << name << " was not reported");
    return 0;
}

double mean_free_energy(const ModelRef& m, std::vector<float>& v, int64_t n)
{
    std::vector<float> f(static_cast<size_t>(n));
    ansatz_tensor vt = ansatz::make_view(v.data(), { n, static_cast<int64_t>(v.size()) / n });
    ansatz_tensor ft = ansatz::make_view(f.data(), { n });
    m.free_energy(vt, ft);
    double sum = 0;
    for (float x : f)
        sum += x;
    return sum / n;
}

std::vector<float> random_binary(int64_t count, Rng& rng)
{
    std::vector<float> v(static_cast<size_t>(count));
    for (float& x : v)
        x = rng.uniform() < 0.5f ? 1.0f : 0.0f;
    return v;
}

// The reconstruction error as the loss documents it: h ~ p(h|v) with one stream per row split from rng,
// then E[v|h].
double reconstruction_error(const ModelRef& m, std::vector<float>& batch, int64_t n, int64_t d, int64_t h,
                            Rng& rng)
{
    std::vector<float> hm(n * h), hs(n * h), vm(n * d);
    ansatz_tensor bt = ansatz::make_view(batch.data(), { n, d });
    ansatz_tensor hmt = ansatz::make_view(hm.data(), { n, h }), hst = ansatz::make_view(hs.data(), { n, h }),
                  vmt = ansatz::make_view(vm.data(), { n, d });
    ansatz::StreamArray rows;
    m.conditional(ANSATZ_BLOCK_HIDDEN, bt, hmt, &hst, rows.split_from(rng, n));
    m.conditional(ANSATZ_BLOCK_VISIBLE, hst, vmt, nullptr);
    double sum = 0;
    for (int64_t k = 0; k < n * d; ++k)
        sum += (batch[k] - vm[k]) * (batch[k] - vm[k]);
    return sum / static_cast<double>(n * d);
}

// The 14 distinct 3x3 bars-and-stripes patterns: every subset of rows filled, or of columns.
std::vector<float> bars_and_stripes()
{
    std::vector<std::vector<float>> patterns;
    for (int mask = 0; mask < 8; ++mask)
        for (int by_column = 0; by_column < 2; ++by_column)
        {
            std::vector<float> p(9);
            for (int r = 0; r < 3; ++r)
                for (int c = 0; c < 3; ++c)
                    p[r * 3 + c] = static_cast<float>((mask >> (by_column ? c : r)) & 1);
            if (std::find(patterns.begin(), patterns.end(), p) == patterns.end())
                patterns.push_back(p);
        }
    REQUIRE(patterns.size() == 14);
    std::vector<float> out;
    for (const auto& p : patterns)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

// The exact negative log-likelihood per pattern: mean F(data) + log Z, log Z over all 2^9 states.
double exact_nll(const ModelRef& m, std::vector<float>& data)
{
    std::vector<float> all(512 * 9), f(512);
    for (int s = 0; s < 512; ++s)
        for (int i = 0; i < 9; ++i)
            all[s * 9 + i] = static_cast<float>((s >> i) & 1);
    ansatz_tensor at = ansatz::make_view(all.data(), { 512, 9 }), ft = ansatz::make_view(f.data(), { 512 });
    m.free_energy(at, ft);
    double top = -f[0];
    for (float x : f)
        top = std::max(top, -static_cast<double>(x));
    double sum = 0;
    for (float x : f)
        sum += std::exp(-static_cast<double>(x) - top);
    const double log_z = top + std::log(sum);
    return mean_free_energy(m, data, static_cast<int64_t>(data.size()) / 9) + log_z;
}

} // namespace

TEST_CASE(
    "contrastive_divergence: CD-1 reports loss, free_energy_gap and reconstruction_error, and its gradient "
    "is <dF>_data - <dF>_chains, replayed with the same stream",
    "[contrastive_divergence]")
{
    const Setup s = make_setup(6, 4, 0.5, "{steps: 1}", "{}");
    Rng data_rng(102);
    const int64_t n = 8, d = 6;
    std::vector<float> batch = random_binary(n * d, data_rng);

    Grads g(s.model, 0.5f); // grads start at 0.5: the loss adds to them
    Rng rng(103);
    const Rng before = rng;
    const Reported m = compute(s, batch, n, g, rng);
    REQUIRE(m.size() == 5);

    // Replay: chains = the batch, advanced by the sampler's configured step, one stream per row split
    // from the same stream.
    Rng replay = before;
    std::vector<float> chains = batch;
    ansatz_tensor ct = ansatz::make_view(chains.data(), { n, d });
    ansatz::StreamArray chain_streams;
    s.sampler.advance(ct, 0, chain_streams.split_from(replay, n));
    REQUIRE(chains != batch); // the sampler moved the chains
    const double gap = mean_free_energy(s.model, batch, n) - mean_free_energy(s.model, chains, n);
    CHECK(metric(m, "loss") == Approx(gap).margin(1e-5));
    CHECK(metric(m, "free_energy_gap") == Approx(gap).margin(1e-5));
    CHECK(metric(m, "free_energy_data") == Approx(mean_free_energy(s.model, batch, n)).margin(1e-5));
    CHECK(metric(m, "free_energy_samples") == Approx(mean_free_energy(s.model, chains, n)).margin(1e-5));
    CHECK(metric(m, "reconstruction_error") ==
          Approx(reconstruction_error(s.model, batch, n, d, 4, replay)).margin(1e-6));

    Grads expected(s.model, 0.5f);
    ansatz_tensor bt = ansatz::make_view(batch.data(), { n, d });
    s.model.free_energy_grad(bt, 1.0f / n, expected.views.data(), 3);
    s.model.free_energy_grad(ct, -1.0f / n, expected.views.data(), 3);
    for (size_t k = 0; k < 3; ++k)
        for (size_t i = 0; i < g.data[k].size(); ++i)
            CHECK(g.data[k][i] == Approx(expected.data[k][i]).margin(1e-6));
    // And the stream advanced exactly as far as the replay's.
    CHECK(rng.next() == replay.next());
}

TEST_CASE(
    "contrastive_divergence: energy_penalty adds alpha (mean F(data)^2 + mean F(chains)^2) and its gradient",
    "[contrastive_divergence]")
{
    // The same call with alpha = 0.3 and alpha = 0: the loss differs by alpha (mean F_d^2 + mean F_c^2), the
    // gradient by sum_rows 2 alpha F(row) / rows dF(row)/dtheta, computed here with free_energy_grad per row.
    const double alpha = 0.3;
    const Setup plain = make_setup(6, 4, 0.5, "{steps: 1}", "{}");
    const Setup penalised = make_setup(6, 4, 0.5, "{steps: 1}", "{energy_penalty: 0.3}");
    Rng data_rng(131);
    const int64_t n = 8, d = 6;
    std::vector<float> batch = random_binary(n * d, data_rng);
    Grads g0(plain.model, 0.0f), g1(penalised.model, 0.0f);
    Rng rng0(132), rng1(132);
    const Rng before = rng0;
    const Reported m0 = compute(plain, batch, n, g0, rng0);
    const Reported m1 = compute(penalised, batch, n, g1, rng1);

    Rng replay = before;
    std::vector<float> chains = batch;
    ansatz_tensor ct = ansatz::make_view(chains.data(), { n, d });
    ansatz::StreamArray chain_streams;
    plain.sampler.advance(ct, 0, chain_streams.split_from(replay, n));
    std::vector<float> f_data(n), f_chains(n);
    ansatz_tensor bt = ansatz::make_view(batch.data(), { n, d });
    ansatz_tensor fd = ansatz::make_view(f_data.data(), { n }),
                  fc = ansatz::make_view(f_chains.data(), { n });
    plain.model.free_energy(bt, fd);
    plain.model.free_energy(ct, fc);
    double squares = 0;
    for (int64_t r = 0; r < n; ++r)
        squares +=
            (static_cast<double>(f_data[r]) * f_data[r] + static_cast<double>(f_chains[r]) * f_chains[r]) / n;
    REQUIRE(squares > 0.01); // the penalty is not negligible for this check
    CHECK(metric(m1, "energy_penalty") == Approx(alpha * squares).epsilon(1e-5));
    CHECK(metric(m1, "loss") == Approx(metric(m0, "loss") + alpha * squares).margin(1e-5));
    CHECK(metric(m1, "free_energy_gap") == Approx(metric(m0, "free_energy_gap")).margin(1e-6));

    Grads expected = g0; // the plain gradient plus the penalty's, in buffers of its own
    for (size_t k = 0; k < expected.views.size(); ++k)
        expected.views[k].data = expected.data[k].data();
    for (int64_t r = 0; r < 2 * n; ++r)
    {
        float* row = r < n ? batch.data() + r * d : chains.data() + (r - n) * d;
        const float f = r < n ? f_data[r] : f_chains[r - n];
        ansatz_tensor one = ansatz::make_view(row, { 1, d });
        plain.model.free_energy_grad(one, static_cast<float>(2 * alpha * f / n), expected.views.data(),
                                     static_cast<int32_t>(expected.views.size()));
    }
    double largest = 0;
    for (size_t k = 0; k < expected.data.size(); ++k)
        for (size_t i = 0; i < expected.data[k].size(); ++i)
        {
            CHECK(g1.data[k][i] == Approx(expected.data[k][i]).margin(1e-5));
            largest = std::max(largest, std::abs(static_cast<double>(expected.data[k][i] - g0.data[k][i])));
        }
    CHECK(largest > 1e-3); // the penalty changed the gradient
}

TEST_CASE(
    "contrastive_divergence: persistent chains (5 of them) live across calls and are not a copy of the batch",
    "[contrastive_divergence]")
{
    const Setup s = make_setup(6, 4, 0.5, "{steps: 2}", "{persistent: true, chains: 5}");
    Rng data_rng(111);
    const int64_t n = 8, d = 6, m = 5;
    std::vector<float> batch1 = random_binary(n * d, data_rng), batch2 = random_binary(n * d, data_rng);
    Grads g(s.model, 0.0f);
    Rng rng(112);
    const Rng before = rng;
    const Reported m1 = compute(s, batch1, n, g, rng);
    const Rng between = rng;
    const Reported m2 = compute(s, batch2, n, g, rng);

    // Replay PCD: 5 chains from random_state, advanced 2 sweeps per call, kept between calls.
    Rng replay = before;
    std::vector<float> chains(m * d);
    ansatz_tensor ct = ansatz::make_view(chains.data(), { m, d });
    ansatz::StreamArray chain_streams; // one per persistent chain, split once and kept
    s.model.random_state(ct, chain_streams.split_from(replay, m));
    s.sampler.advance(ct, 0, chain_streams.streams());
    const double gap1 = mean_free_energy(s.model, batch1, n) - mean_free_energy(s.model, chains, m);
    reconstruction_error(s.model, batch1, n, d, 4, replay); // the split of call 1's reconstruction
    s.sampler.advance(ct, 0, chain_streams.streams());
    const double gap2 = mean_free_energy(s.model, batch2, n) - mean_free_energy(s.model, chains, m);
    CHECK(metric(m1, "loss") == Approx(gap1).margin(1e-5));
    CHECK(metric(m2, "loss") == Approx(gap2).margin(1e-5));

    // What call 2 would have reported had it restarted its chains at batch 2 (CD), on the same stream.
    Rng cd_replay = between;
    std::vector<float> restarted = batch2;
    ansatz_tensor rt = ansatz::make_view(restarted.data(), { n, d });
    ansatz::StreamArray row_streams;
    s.sampler.advance(rt, 0, row_streams.split_from(cd_replay, n));
    const double cd_gap = mean_free_energy(s.model, batch2, n) - mean_free_energy(s.model, restarted, n);
    INFO("PCD gap " << gap2 << ", CD gap " << cd_gap);
    CHECK(std::abs(metric(m2, "loss") - cd_gap) > 1e-3);
}

TEST_CASE("contrastive_divergence: key chains without persistent is an InputError",
          "[contrastive_divergence]")
{
    REQUIRE_THROWS_WITH(
        ansatz::test::make("contrastive_divergence", "{chains: 10}"),
        Catch::Contains("key chains is 10, but CD restarts one chain at every sample of the batch; "
                        "set persistent: true to keep 10 chains"));
    REQUIRE_THROWS_AS(ansatz::test::make("contrastive_divergence", "{chains: 10}"),
                      ansatz::engine::UserError);
}

TEST_CASE("contrastive_divergence: 800 full-batch CD-1 updates with sgd (lr 0.3) lower the exact NLL of 3x3 "
          "bars and stripes by more than 2 nats (rbm 9x16, init_std 0.1, seeds 101/121)",
          "[contrastive_divergence][training]")
{
    const Setup s = make_setup(9, 16, 0.1, "{steps: 1}", "{}");
    auto sgd = ansatz::test::make("sgd", "{learning_rate: 0.3}");
    std::vector<float> data = bars_and_stripes();
    const int64_t n = 14;

    std::vector<ansatz_named_tensor> params = s.model.parameters();
    ansatz_status st{};
    REQUIRE(sgd->optimizer().bind(sgd->self(), params.data(), 3, &st) == ANSATZ_STATUS_OK);

    const double before = exact_nll(s.model, data);
    Grads g(s.model, 0.0f);
    Rng rng(121);
    double last_error = 0;
    for (int update = 0; update < 800; ++update)
    {
        g.fill(0.0f);
        const Reported m = compute(s, data, n, g, rng);
        last_error = metric(m, "reconstruction_error");
        REQUIRE(sgd->optimizer().step(sgd->self(), params.data(), g.views.data(), 3, &st) ==
                ANSATZ_STATUS_OK);
    }
    const double after = exact_nll(s.model, data);
    // Before: near 9 log 2 = 6.24 nats (a near-uniform model); the best possible is log 14 = 2.64.
    // Measured with seed 121: 6.31 -> 3.51; with stream seeds 1..8 the result ranged over 3.34..3.71,
    // so the 2-nat margin leaves 0.6 nat of room.
    WARN("bars and stripes NLL before " << before << ", after " << after << " (log 14 = " << std::log(14.0)
                                        << "); last reconstruction error " << last_error);
    CHECK(before > 6.0);
    CHECK(after < before - 2.0);
    CHECK(after > std::log(14.0));
}

namespace
{

// The gradient as compute() should add it: the chains advanced as the loss advances them (PCD: m chains
// from random_state, one stream each, split from `rng`; CD: a copy of the batch, one stream per row),
// then <dF>_data - <dF>_chains from two free_energy_grad calls. Returns the chains.
std::vector<float> replay_gradient(const Setup& s, std::vector<float>& batch, int64_t n, int64_t d, int64_t m,
                                   bool persistent, Rng rng, Grads& out)
{
    std::vector<float> chains = persistent ? std::vector<float>(static_cast<size_t>(m * d)) : batch;
    ansatz_tensor ct = ansatz::make_view(chains.data(), { m, d });
    ansatz::StreamArray streams;
    ansatz::Streams split = streams.split_from(rng, m);
    if (persistent)
        s.model.random_state(ct, split);
    s.sampler.advance(ct, 0, split);
    ansatz_tensor bt = ansatz::make_view(batch.data(), { n, d });
    const int32_t k = static_cast<int32_t>(out.views.size());
    s.model.free_energy_grad(bt, 1.0f / static_cast<float>(n), out.views.data(), k);
    s.model.free_energy_grad(ct, -1.0f / static_cast<float>(m), out.views.data(), k);
    return chains;
}

} // namespace

TEST_CASE("contrastive_divergence: the one weighted pass over chains and batch gives the gradient of two "
          "free_energy_grad calls, and is that weighted call bit for bit",
          "[contrastive_divergence]")
{
    // A model large enough for real products (784 x 64 would be slow in a test; 100 x 24 has several
    // blocks of every kernel), PCD with 12 chains for batches of 20, and CD.
    const int64_t d = 100, hidden = 24, n = 20;
    for (const bool persistent : { true, false })
    {
        INFO((persistent ? "PCD, 12 chains" : "CD"));
        const int64_t m = persistent ? 12 : n;
        const Setup s = make_setup(static_cast<int>(d), static_cast<int>(hidden), 0.3, "{steps: 1}",
                                   persistent ? "{persistent: true, chains: 12}" : "{}");
        REQUIRE(s.model.has(ANSATZ_FN_WEIGHTED_GRAD));
        Rng data_rng(131);
        std::vector<float> batch = random_binary(n * d, data_rng);
        Grads g(s.model, 0.25f), two_calls(s.model, 0.25f), weighted(s.model, 0.25f);
        Rng rng(132);
        const Rng before = rng;
        const Reported reported = compute(s, batch, n, g, rng);

        std::vector<float> chains = replay_gradient(s, batch, n, d, m, persistent, before, two_calls);
        for (size_t k = 0; k < g.data.size(); ++k)
            for (size_t i = 0; i < g.data[k].size(); ++i)
                REQUIRE(g.data[k][i] == Approx(two_calls.data[k][i]).margin(2e-6));

        // The loss's pass: the rows [chains; batch], weights -1/M and +1/N, in one call.
        std::vector<float> stacked = chains;
        stacked.insert(stacked.end(), batch.begin(), batch.end());
        std::vector<float> weights(static_cast<size_t>(m), -1.0f / static_cast<float>(m));
        weights.resize(static_cast<size_t>(m + n), 1.0f / static_cast<float>(n));
        std::vector<float> f(static_cast<size_t>(m + n));
        ansatz_tensor st = ansatz::make_view(stacked.data(), { m + n, d });
        ansatz_tensor ft = ansatz::make_view(f.data(), { m + n });
        s.model.free_energy_grad_weighted(st, weights.data(), weighted.views.data(), 3, &ft);
        CHECK(g.data == weighted.data);
        double data_mean = 0, chain_mean = 0;
        for (int64_t r = 0; r < m; ++r)
            chain_mean += f[static_cast<size_t>(r)];
        for (int64_t r = m; r < m + n; ++r)
            data_mean += f[static_cast<size_t>(r)];
        CHECK(metric(reported, "loss") ==
              data_mean / static_cast<double>(n) - chain_mean / static_cast<double>(m));
    }
}

TEST_CASE("contrastive_divergence: a model without free_energy_grad_weighted gets two free_energy_grad calls",
          "[contrastive_divergence]")
{
    const ansatz::engine::PluginComponent* c = fixture_plugins().find("conformance_rbm");
    REQUIRE(c != nullptr);
    const std::string yaml = "{visible: 6, hidden: 4, init_std: 1.0}";
    ansatz::engine::ConfigValues config = ansatz::engine::config_from_yaml(*c->desc, yaml);
    auto fixture =
        std::make_unique<Instance>(*c, config.c("conformance_rbm"), ansatz::test::test_host().table());
    const Setup s = make_setup(6, 4, 1.0, "{steps: 1}", "{persistent: true, chains: 3}", std::move(fixture));
    REQUIRE_FALSE(s.model.has(ANSATZ_FN_WEIGHTED_GRAD));
    const int64_t n = 5, d = 6, m = 3;
    Rng data_rng(141);
    std::vector<float> batch = random_binary(n * d, data_rng);
    Grads g(s.model, 0.5f), expected(s.model, 0.5f);
    Rng rng(142);
    const Rng before = rng;
    const Reported reported = compute(s, batch, n, g, rng);
    std::vector<float> chains = replay_gradient(s, batch, n, d, m, true, before, expected);
    CHECK(g.data == expected.data); // the same two calls in the same order
    CHECK(metric(reported, "loss") ==
          Approx(mean_free_energy(s.model, batch, n) - mean_free_energy(s.model, chains, m)).margin(1e-5));
}

TEST_CASE("contrastive_divergence: reconstruction_every N computes the error on batches 1, N + 1, ... of an "
          "epoch and reports the last value between, 0 never, an evaluation always",
          "[contrastive_divergence]")
{
    ansatz::engine::HostServices host(1234, 1);
    ansatz_progress& progress = host.progress();
    progress.steps_per_epoch = 5; // batches per epoch, as the train stage says
    const Setup s =
        make_setup(6, 4, 0.5, "{steps: 1}", "{persistent: true, reconstruction_every: 3}", nullptr, &host);
    const Setup never =
        make_setup(6, 4, 0.5, "{steps: 1}", "{persistent: true, reconstruction_every: 0}", nullptr, &host);
    const int64_t n = 4, d = 6;
    Rng data_rng(151);
    Rng rng(152), rng_never(152);
    double last = -1;
    for (int64_t step = 0; step < 10; ++step) // two epochs of 5 batches
    {
        INFO("batch " << step % 5 + 1 << " of epoch " << step / 5 + 1);
        progress.step = step; // batches done before this one
        std::vector<float> batch = random_binary(n * d, data_rng);
        Grads g(s.model, 0.0f);
        const Rng before = rng;
        const Reported m = compute(s, batch, n, g, rng);
        Rng replay = before;
        ansatz::StreamArray chain_streams;
        if (step == 0)
            chain_streams.split_from(replay, n); // the chains' streams, split on the first call
        if (step % 5 % 3 == 0)
        {
            last = reconstruction_error(s.model, batch, n, d, 4, replay);
            CHECK(metric(m, "reconstruction_error") == last);
        }
        else
            CHECK(metric(m, "reconstruction_error") == last);
        Rng a = rng, b = replay; // the stream moved exactly as far as the replay's
        CHECK(a.next() == b.next());

        Grads g_never(never.model, 0.0f);
        const Rng before_never = rng_never;
        const Reported m_never = compute(never, batch, n, g_never, rng_never);
        CHECK(m_never.size() == 4); // loss, free_energy_gap, free_energy_data and free_energy_samples only
        Rng c = rng_never, e = before_never;
        if (step == 0)
            chain_streams.split_from(e, n);
        CHECK(c.next() == e.next()); // no row streams split
    }

    // An evaluation (no gradients) computes it whatever the batch.
    progress.step = 1;
    std::vector<float> batch = random_binary(n * d, data_rng);
    ansatz_tensor bt = ansatz::make_view(batch.data(), { n, d });
    ansatz::engine::MetricsSink out;
    ansatz_status st{};
    Rng replay = rng;
    REQUIRE(s.cd->loss().compute(s.cd->self(), &bt, nullptr, 0, &rng.state(), out.c(), &st) ==
            ANSATZ_STATUS_OK);
    CHECK(metric(out.take(), "reconstruction_error") ==
          reconstruction_error(s.model, batch, n, d, 4, replay));
}

TEST_CASE(
    "contrastive_divergence: energy_penalty without a weighted gradient and data_noise on binary values "
    "are refused at bind with one sentence",
    "[contrastive_divergence][bad-input]")
{
    const auto bind_message = [](const Instance& model, const std::string& cd_yaml) -> std::string {
        auto gibbs = ansatz::test::make("gibbs", "{steps: 1}");
        auto cd = ansatz::test::make("contrastive_divergence", cd_yaml);
        const ansatz_model_handle mh = model.model();
        const ansatz_sampler_handle sh = gibbs->sampler();
        ansatz_status st{};
        if (cd->loss().bind(cd->self(), &mh, &sh, &st) == ANSATZ_STATUS_OK)
            return "no error";
        CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
        return st.message;
    };
    const ansatz::engine::PluginComponent* c = fixture_plugins().find("conformance_rbm");
    REQUIRE(c != nullptr);
    ansatz::engine::ConfigValues config =
        ansatz::engine::config_from_yaml(*c->desc, "{visible: 6, hidden: 4, init_std: 1.0}");
    Instance plain(*c, config.c("conformance_rbm"), ansatz::test::test_host().table());
    CHECK(bind_message(plain, "{energy_penalty: 0.1}") ==
          "key energy_penalty needs a model with function 'free_energy_grad_weighted' (each row's gradient "
          "weighted by its energy)");
    auto rbm = ansatz::test::make("rbm", "{hidden: 4, visible: 6}");
    CHECK(bind_message(*rbm, "{data_noise: 0.01}") ==
          "key data_noise adds Gaussian noise, but the model's values are not real");
    CHECK(bind_message(*rbm, "{energy_penalty: 0.1}") == "no error");
}

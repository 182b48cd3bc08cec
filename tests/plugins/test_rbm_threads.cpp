// The rbm's hot paths split over its thread team (the host's `threads`): at 784 x 256 with 64-row
// batches the products, the row passes and the column sums all run on 2 and 3 threads. The results
// repeat bit for bit for a thread count (a resumed run equals an uninterrupted one), agree with one
// thread to rounding, and draw the same samples wherever the probabilities agree (row r from stream r).
#include "run/host_services.hpp"
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;
using ansatz::engine::HostServices;
using ansatz::engine::Instance;

constexpr int64_t d = 784, hidden = 256, rows = 64;

struct Outputs
{
    std::vector<float> h_mean, h_sample, v_mean, v_sample, free_energy;
    std::vector<std::vector<float>> grads;
};

// One model on `threads` threads, set up from the same stream; the gibbs half-steps and a weighted
// gradient over 2 x 64 stacked rows.
Outputs run_on(int threads)
{
    HostServices host(1234, threads);
    std::unique_ptr<Instance> rbm = ansatz::test::make("rbm", "{hidden: 256, init_std: 0.05}", &host);
    ModelRef m = ansatz::test::model_ref(*rbm);
    Rng init(5);
    m.setup({ d }, init);

    Rng data(6);
    std::vector<float> v(static_cast<size_t>(2 * rows * d));
    for (float& x : v)
        x = data.uniform() < 0.4f ? 1.0f : 0.0f;

    Outputs o;
    o.h_mean.resize(static_cast<size_t>(rows * hidden));
    o.h_sample.resize(o.h_mean.size());
    o.v_mean.resize(static_cast<size_t>(rows * d));
    o.v_sample.resize(o.v_mean.size());
    ansatz_tensor vt = ansatz::make_view(v.data(), { rows, d });
    ansatz_tensor hm = ansatz::make_view(o.h_mean.data(), { rows, hidden });
    ansatz_tensor hs = ansatz::make_view(o.h_sample.data(), { rows, hidden });
    ansatz_tensor vm = ansatz::make_view(o.v_mean.data(), { rows, d });
    ansatz_tensor vs = ansatz::make_view(o.v_sample.data(), { rows, d });
    Rng parent(7);
    ansatz::StreamArray streams;
    ansatz::Streams rngs = streams.split_from(parent, rows);
    m.conditional(ANSATZ_BLOCK_HIDDEN, vt, hm, &hs, rngs);
    m.conditional(ANSATZ_BLOCK_VISIBLE, hs, vm, &vs, rngs);

    std::vector<float> weights(static_cast<size_t>(2 * rows));
    for (size_t r = 0; r < weights.size(); ++r)
        weights[r] = r < static_cast<size_t>(rows) ? -1.0f / rows : 1.0f / rows;
    for (const ansatz_named_tensor& p : m.parameters())
        o.grads.emplace_back(static_cast<size_t>(ansatz::element_count(p.tensor)), 0.0f);
    std::vector<ansatz_tensor> gv;
    const std::vector<ansatz_named_tensor> params = m.parameters();
    for (size_t k = 0; k < params.size(); ++k)
    {
        ansatz_tensor t = params[k].tensor;
        t.data = o.grads[k].data();
        gv.push_back(t);
    }
    o.free_energy.resize(static_cast<size_t>(2 * rows));
    ansatz_tensor all = ansatz::make_view(v.data(), { 2 * rows, d });
    ansatz_tensor f = ansatz::make_view(o.free_energy.data(), { 2 * rows });
    m.free_energy_grad_weighted(all, weights.data(), gv.data(), static_cast<int32_t>(gv.size()), &f);
    return o;
}

double worst_relative(const std::vector<float>& a, const std::vector<float>& b)
{
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / (1e-3 + std::abs(b[i])));
    return worst;
}

// The share of samples that differ between a and b (only where a probability differed in its last
// bits can a draw flip).
double share_differing(const std::vector<float>& a, const std::vector<float>& b)
{
    size_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i)
        differ += a[i] != b[i];
    return static_cast<double>(differ) / static_cast<double>(a.size());
}

} // namespace

TEST_CASE("rbm on 2 and 3 threads: conditionals and the weighted gradient repeat bit for bit and agree with "
          "one thread",
          "[rbm][threads]")
{
    const Outputs one = run_on(1);
    for (int threads : { 2, 3 })
    {
        INFO(threads << " threads");
        const Outputs a = run_on(threads), b = run_on(threads);
        CHECK(a.h_mean == b.h_mean);
        CHECK(a.h_sample == b.h_sample);
        CHECK(a.v_mean == b.v_mean);
        CHECK(a.v_sample == b.v_sample);
        CHECK(a.free_energy == b.free_energy);
        CHECK(a.grads == b.grads);

        CHECK(worst_relative(a.h_mean, one.h_mean) < 1e-5);
        CHECK(worst_relative(a.v_mean, one.v_mean) < 1e-5);
        CHECK(worst_relative(a.free_energy, one.free_energy) < 1e-5);
        for (size_t k = 0; k < a.grads.size(); ++k)
            CHECK(worst_relative(a.grads[k], one.grads[k]) < 1e-4);
        CHECK(share_differing(a.h_sample, one.h_sample) < 1e-3);
        CHECK(share_differing(a.v_sample, one.v_sample) < 1e-3);
    }
}

TEST_CASE("rbm: conditional(HIDDEN) right after a weighted pass over the same rows reuses its E[h|v] only "
          "while those rows are unchanged and until parameters_changed",
          "[rbm][threads]")
{
    for (int threads : { 1, 2 })
    {
        INFO(threads << " threads");
        HostServices host(1234, threads);
        std::unique_ptr<Instance> rbm = ansatz::test::make("rbm", "{hidden: 96, init_std: 0.1}", &host);
        ModelRef m = ansatz::test::model_ref(*rbm);
        Rng init(11);
        const int64_t dv = 200, hv = 96, n = 32; // a pass over 2n rows: chains, then data
        m.setup({ dv }, init);
        Rng data(12);
        std::vector<float> rows(static_cast<size_t>(2 * n * dv));
        for (float& x : rows)
            x = data.uniform() < 0.3f ? 1.0f : 0.0f;
        std::vector<float> weights(static_cast<size_t>(2 * n), 1.0f / n);
        std::vector<std::vector<float>> grads;
        std::vector<ansatz_tensor> gv;
        for (const ansatz_named_tensor& p : m.parameters())
            grads.emplace_back(static_cast<size_t>(ansatz::element_count(p.tensor)), 0.0f);
        const std::vector<ansatz_named_tensor> params = m.parameters();
        for (size_t k = 0; k < params.size(); ++k)
        {
            ansatz_tensor t = params[k].tensor;
            t.data = grads[k].data();
            gv.push_back(t);
        }
        const auto pass = [&] {
            ansatz_tensor all = ansatz::make_view(rows.data(), { 2 * n, dv });
            m.free_energy_grad_weighted(all, weights.data(), gv.data(), static_cast<int32_t>(gv.size()));
        };
        // The means of n rows starting at `at` (a pointer into `rows` or elsewhere), and of a copy of them.
        const auto means = [&](const float* at) {
            std::vector<float> out(static_cast<size_t>(n * hv));
            ansatz_tensor given = ansatz::make_view(const_cast<float*>(at), { n, dv });
            ansatz_tensor mean = ansatz::make_view(out.data(), { n, hv });
            m.conditional(ANSATZ_BLOCK_HIDDEN, given, mean, nullptr);
            return out;
        };
        const auto fresh = [&](const float* at) {
            std::vector<float> copy(at, at + n * dv);
            return means(copy.data());
        };
        const auto close = [](const std::vector<float>& a, const std::vector<float>& b) {
            for (size_t i = 0; i < a.size(); ++i)
                if (std::abs(a[i] - b[i]) > 1e-6f)
                    return false;
            return true;
        };

        pass();
        const std::vector<float> chains = means(rows.data()), data_rows = means(rows.data() + n * dv);
        CHECK(close(chains, fresh(rows.data())));
        CHECK(close(data_rows, fresh(rows.data() + n * dv)));
        CHECK(means(rows.data()) == chains); // reused again, the same bits

        // Not rows of the pass: not row-aligned, or past its end.
        CHECK(means(rows.data() + 3) == fresh(rows.data() + 3));

        // A row changed after the pass: computed afresh; changed back: the pass's again.
        rows[5] = 1.0f - rows[5];
        CHECK(means(rows.data()) == fresh(rows.data()));
        rows[5] = 1.0f - rows[5];
        CHECK(means(rows.data()) == chains);

        // W changed through the parameters' view, as the host says (abi.h 2.3): computed afresh, and
        // still after W is changed back (the kept means are gone until the next pass).
        float* w = ansatz::f32(params[0].tensor);
        const float kept = w[17];
        w[17] += 0.25f;
        m.parameters_changed();
        const std::vector<float> changed = means(rows.data());
        CHECK(changed == fresh(rows.data()));
        CHECK(changed != chains);
        w[17] = kept;
        m.parameters_changed();
        CHECK(means(rows.data()) == fresh(rows.data()));
        pass();
        CHECK(means(rows.data()) == chains);

        // b changed likewise.
        float* b = ansatz::f32(params[2].tensor);
        b[3] -= 0.5f;
        m.parameters_changed();
        CHECK(means(rows.data()) == fresh(rows.data()));
        b[3] += 0.5f;
        m.parameters_changed();
        pass();

        // Another pass over other rows replaces the memo.
        std::vector<float> other(rows.rbegin(), rows.rend());
        std::swap(rows, other);
        pass();
        std::swap(rows, other);
        CHECK(means(rows.data()) == fresh(rows.data()));
    }
}

// support/evaluators.hpp -- calling an evaluator through its C table, and the small RBMs the evaluator
// tests share (header only).
#pragma once

#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ansatz::test
{

using Metrics = std::map<std::string, double>;

// bind(model) then evaluate(data, rng) through the C table; the metrics by name (each reported once).
inline Metrics evaluate(const engine::Instance& evaluator, const ModelRef& model, const ansatz_tensor& data,
                        Rng rng)
{
    ansatz_status st{};
    evaluator.check(evaluator.evaluator().bind(evaluator.self(), &model.handle(), &st), st);
    engine::MetricsSink sink;
    evaluator.check(evaluator.evaluator().evaluate(evaluator.self(), &data, &rng.state(), sink.c(), &st), st);
    Metrics out;
    for (const auto& [name, value] : sink.take())
    {
        INFO("metric " << name);
        REQUIRE(out.count(name) == 0);
        out[name] = value;
    }
    return out;
}

inline double metric(const Metrics& m, const std::string& name)
{
    INFO("metric " << name);
    REQUIRE(m.count(name) == 1);
    return m.at(name);
}

// An RBM's parameters in double: W row-major {D, H}, a {D}, b {H}.
struct RbmParams
{
    int64_t d = 0, h = 0;
    std::vector<double> w, a, b;

    double pre_hidden(const float* v, int64_t j) const
    {
        double x = b[j];
        for (int64_t i = 0; i < d; ++i)
            x += v[i] * w[i * h + j];
        return x;
    }
    double pre_visible(const float* hs, int64_t i) const
    {
        double x = a[i];
        for (int64_t j = 0; j < h; ++j)
            x += hs[j] * w[i * h + j];
        return x;
    }
    // F(v) = -a.v - sum_j softplus(b_j + (v W)_j), in double.
    double free_energy(const float* v) const
    {
        double f = 0;
        for (int64_t i = 0; i < d; ++i)
            f -= a[i] * v[i];
        for (int64_t j = 0; j < h; ++j)
        {
            const double x = pre_hidden(v, j);
            f -= std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
        }
        return f;
    }
};

inline RbmParams read_params(const ModelRef& m)
{
    const std::vector<ansatz_named_tensor> p = m.parameters();
    RbmParams out;
    out.d = p[0].tensor.shape[0];
    out.h = p[0].tensor.shape[1];
    const float* w = ansatz::f32(p[0].tensor);
    const float* a = ansatz::f32(p[1].tensor);
    const float* b = ansatz::f32(p[2].tensor);
    out.w.assign(w, w + out.d * out.h);
    out.a.assign(a, a + out.d);
    out.b.assign(b, b + out.h);
    return out;
}

// Writes W {D, H}, a, b into the model through its parameters() views.
inline void write_params(const ModelRef& m, const std::vector<float>& w, const std::vector<float>& a,
                         const std::vector<float>& b)
{
    const std::vector<ansatz_named_tensor> p = m.parameters();
    REQUIRE(p.size() >= 3);
    REQUIRE(static_cast<int64_t>(w.size()) == ansatz::element_count(p[0].tensor));
    REQUIRE(static_cast<int64_t>(a.size()) == ansatz::element_count(p[1].tensor));
    REQUIRE(static_cast<int64_t>(b.size()) == ansatz::element_count(p[2].tensor));
    std::copy(w.begin(), w.end(), ansatz::f32(p[0].tensor));
    std::copy(a.begin(), a.end(), ansatz::f32(p[1].tensor));
    std::copy(b.begin(), b.end(), ansatz::f32(p[2].tensor));
}

// An rbm instance set up for `visible` units (`yaml` adds keys such as init_std).
struct TestRbm
{
    std::unique_ptr<engine::Instance> instance;
    ModelRef model;
};

inline TestRbm make_rbm(int64_t visible, int64_t hidden, const std::string& extra_keys = "",
                        uint64_t seed = 7)
{
    TestRbm r;
    r.instance = make("rbm", "{hidden: " + std::to_string(hidden) + ", visible: " + std::to_string(visible) +
                                 (extra_keys.empty() ? "" : ", " + extra_keys) + "}");
    r.model = model_ref(*r.instance);
    Rng init(seed);
    r.model.setup({ visible }, init);
    return r;
}

// n rows of independent Bernoulli(p) bits.
inline std::vector<float> random_bits(int64_t n, int64_t d, double p, uint64_t seed)
{
    Rng rng(seed);
    std::vector<float> out(static_cast<size_t>(n * d));
    for (float& x : out)
        x = rng.uniform_double() < p ? 1.0f : 0.0f;
    return out;
}

} // namespace ansatz::test

// ansatz/refs.hpp -- calling another component through its C table, in C++.
//
// A sampler holds a ModelRef, a loss a ModelRef and a SamplerRef, the engine all of them: nobody
// includes another plugin's header. Each call checks the status and rethrows a failure as the same
// ansatz::Error / ansatz::InputError on this side of the boundary.
#pragma once

#include "ansatz/abi.h"
#include "ansatz/error.hpp"
#include "ansatz/random.hpp"
#include "ansatz/tensor.hpp"

#include <string>
#include <vector>

namespace ansatz
{

// A call on chains needs one stream per row (abi.h).
inline void require_streams(Streams rngs, const ansatz_tensor& rows)
{
    if (rows.rank < 1 || static_cast<int64_t>(rngs.size()) < rows.shape[0])
        throw Error("a call on " + std::to_string(rows.rank < 1 ? 0 : rows.shape[0]) + " chains got " +
                    std::to_string(rngs.size()) + " random streams; it needs one per chain");
}

class ModelRef
{
public:
    ModelRef() = default;
    explicit ModelRef(const ansatz_model_handle& handle) : h_(handle) {}

    bool valid() const { return h_.table != nullptr; }
    const ansatz_model_handle& handle() const { return h_; }
    bool has_energy() const { return h_.table && h_.table->energy; }
    bool has_conditionals() const { return h_.table && h_.table->conditionals; }
    bool has_latent() const { return h_.table && h_.table->latent; }

    void setup(const std::vector<int64_t>& sample_shape, Rng& rng) const
    {
        ansatz_status st{};
        check(h_.table->setup(h_.self, sample_shape.data(), static_cast<int32_t>(sample_shape.size()),
                              &rng.state(), &st),
              st);
    }

    std::vector<ansatz_named_tensor> parameters() const
    {
        const int32_t n = h_.table->parameters(h_.self, nullptr, 0);
        if (n < 0)
            throw Error("the model could not list its parameters");
        std::vector<ansatz_named_tensor> out(static_cast<size_t>(n));
        h_.table->parameters(h_.self, out.data(), n);
        return out;
    }

    // Row n of out from rngs[n]; rngs has a stream per row.
    void random_state(ansatz_tensor& out, Streams rngs) const
    {
        require_streams(rngs, out);
        ansatz_status st{};
        check(h_.table->random_state(h_.self, &out, c_states(rngs), &st), st);
    }

    // ---- ENERGY
    void free_energy(const ansatz_tensor& v, ansatz_tensor& out) const
    {
        ansatz_status st{};
        check(energy().free_energy(h_.self, &v, &out, &st), st);
    }
    // grads[k] += scale * sum_n dF(v[n])/dtheta_k; with out, also out[n] = F(v[n]).
    void free_energy_grad(const ansatz_tensor& v, float scale, ansatz_tensor* grads, int32_t n_grads,
                          ansatz_tensor* out = nullptr) const
    {
        ansatz_status st{};
        check(energy().free_energy_grad(h_.self, &v, scale, grads, n_grads, out, &st), st);
    }
    // out[n] = F(v[n] with unit sites[n] set to new_values[n]) - F(v[n]).
    void energy_delta(const ansatz_tensor& v, const int64_t* sites, const float* new_values,
                      ansatz_tensor& out) const
    {
        ansatz_status st{};
        check(energy().energy_delta(h_.self, &v, sites, new_values, &out, &st), st);
    }

    // ---- CONDITIONALS
    int64_t block_size(ansatz_block block) const { return conditionals().block_size(h_.self, block); }
    void conditional(ansatz_block block, const ansatz_tensor& given, ansatz_tensor& mean,
                     ansatz_tensor* sample, Streams rngs = {}) const
    {
        if (sample)
            require_streams(rngs, given);
        ansatz_status st{};
        check(conditionals().conditional(h_.self, block, &given, &mean, sample,
                                         rngs.empty() ? nullptr : c_states(rngs), &st),
              st);
    }

private:
    const ansatz_energy_table& energy() const
    {
        if (!has_energy())
            throw Error("the model has no energy table (capability 'energy')");
        return *h_.table->energy;
    }
    const ansatz_conditionals_table& conditionals() const
    {
        if (!has_conditionals())
            throw Error("the model has no conditionals table (capability 'conditionals')");
        return *h_.table->conditionals;
    }

    ansatz_model_handle h_{};
};

class SamplerRef
{
public:
    SamplerRef() = default;
    explicit SamplerRef(const ansatz_sampler_handle& handle) : h_(handle) {}

    bool valid() const { return h_.table != nullptr; }
    const ansatz_sampler_handle& handle() const { return h_; }

    void bind(const ModelRef& model) const
    {
        ansatz_status st{};
        check(h_.table->bind(h_.self, &model.handle(), &st), st);
    }
    // Advances every row of chains by `steps` sweeps (0: the sampler's configured count).
    void advance(ansatz_tensor& chains, int32_t steps, Streams rngs) const
    {
        require_streams(rngs, chains);
        ansatz_status st{};
        check(h_.table->advance(h_.self, &chains, steps, c_states(rngs), &st), st);
    }
    ansatz_metrics metrics() const
    {
        ansatz_metrics out{};
        ansatz_status st{};
        check(h_.table->metrics(h_.self, &out, &st), st);
        return out;
    }

private:
    ansatz_sampler_handle h_{};
};

// Appends named scalars to an ansatz_metrics; names must point to static storage.
class Metrics
{
public:
    explicit Metrics(ansatz_metrics& out) : out_(out) {}
    void add(const char* name, double value)
    {
        if (out_.count >= ANSATZ_MAX_METRICS)
            throw Error("more than ANSATZ_MAX_METRICS metrics reported");
        out_.items[out_.count++] = ansatz_metric{ name, value };
    }

private:
    ansatz_metrics& out_;
};

} // namespace ansatz

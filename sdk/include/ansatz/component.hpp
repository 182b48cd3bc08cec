// ansatz/component.hpp -- the base classes a plugin author derives from.
//
// A component is constructed from its validated Config and the Host, and does its work in the
// methods below on whole batches. Preconditions are checked by the caller's wrapper where it can
// (shapes), and by the component where only it knows (support, ranges); either throws.
//
// A class declares what it offers or needs as static constants, read by ANSATZ_PLUGIN:
//     static void describe(ansatz::Schema&);              every kind: its configuration keys
//     static constexpr uint32_t capabilities = ...;       model: tables it fills; sampler, loss: needs
//     static constexpr bool needs_sampler = true;         loss: estimates a negative phase with MCMC
#pragma once

#include "ansatz/abi.h"
#include "ansatz/error.hpp"
#include "ansatz/random.hpp"
#include "ansatz/refs.hpp"
#include "ansatz/schema.hpp"
#include "ansatz/tensor.hpp"

#include <string>
#include <vector>

namespace ansatz
{

// The services the host lends a component for its whole life.
class Host
{
public:
    explicit Host(const ansatz_host* host) : h_(host) {}

    int threads() const { return h_->threads; }
    bool cancelled() const { return h_->cancelled && h_->cancelled(h_->context) != 0; }
    void log(ansatz_log_level level, const std::string& message) const
    {
        if (h_->log)
            h_->log(h_->context, level, message.c_str());
    }
    void info(const std::string& message) const { log(ANSATZ_LOG_INFO, message); }
    void warn(const std::string& message) const { log(ANSATZ_LOG_WARNING, message); }
    // The run's stream `name`: the same pipeline and seed give the same stream.
    Rng stream(const std::string& name) const
    {
        ansatz_rng state{};
        h_->stream(h_->context, name.c_str(), &state);
        return Rng(state);
    }

private:
    const ansatz_host* h_;
};

/* WHAT THIS OBJECT REPRESENTS
 *   An unnormalised distribution p(v) = exp(-F(v)) / Z over samples v (rows of a batch), with
 *   parameters theta that a loss differentiates and an optimizer updates in place.
 * Every method works on a batch {N, D} where D is the flattened sample size given to setup(). */
class Model
{
public:
    virtual ~Model() = default;

    // ensures: parameters exist and are initialised for samples of this shape (batch axis excluded).
    virtual void setup(const std::vector<int64_t>& sample_shape, Rng& rng) = 0;
    // Views of the parameters, in a fixed order; the names are the checkpoint file names.
    virtual std::vector<ansatz_named_tensor> parameters() = 0;
    // out {N, D}: draws from a simple distribution over the support (chains' starting points),
    // row n from rngs[n].
    virtual void random_state(ansatz_tensor& out, Streams rngs) = 0;

    // ---- capability ENERGY
    // out {N}: F(v[n]).
    virtual void free_energy(const ansatz_tensor& v, ansatz_tensor& out);
    // grads[k] += scale * sum_n dF(v[n])/dtheta_k; when out is not null, also out[n] = F(v[n]).
    virtual void free_energy_grad(const ansatz_tensor& v, float scale, ansatz_tensor* grads, int32_t n_grads,
                                  ansatz_tensor* out);
    // out[n] = F(v[n] with unit sites[n] set to new_values[n]) - F(v[n]).
    virtual void energy_delta(const ansatz_tensor& v, const int64_t* sites, const float* new_values,
                              ansatz_tensor& out);

    // ---- capability CONDITIONALS
    virtual int64_t block_size(ansatz_block block) const;
    // mean[n] = E[block | given[n]]; if sample, also sample[n] ~ p(block | given[n]).
    virtual void conditional(ansatz_block block, const ansatz_tensor& given, ansatz_tensor& mean,
                             ansatz_tensor* sample, Streams rngs);
};

/* WHAT THIS OBJECT REPRESENTS
 *   A Markov chain transition that leaves the bound model's distribution invariant, applied to many
 *   chains at once. requires: bind() before advance(). */
class Sampler
{
public:
    virtual ~Sampler() = default;
    virtual void bind(const ModelRef& model) { model_ = model; }
    // chains {N, D}: every row is advanced in place by `steps` sweeps (0: the configured count).
    virtual void advance(ansatz_tensor& chains, int32_t steps, Streams rngs) = 0;
    // Diagnostics since the last call.
    virtual void metrics(Metrics&) {}

protected:
    ModelRef model_;
};

/* WHAT THIS OBJECT REPRESENTS
 *   A differentiable objective to minimise over a model's parameters, estimated on one batch. */
class Loss
{
public:
    virtual ~Loss() = default;
    virtual void bind(const ModelRef& model, const SamplerRef& sampler)
    {
        model_ = model;
        sampler_ = sampler;
    }
    // grads[k] += d(loss)/dtheta_k on this batch; reports "loss" and any other scalar.
    virtual void compute(const ansatz_tensor& batch, ansatz_tensor* grads, int32_t n_grads, Rng& rng,
                         Metrics& out) = 0;

protected:
    ModelRef model_;
    SamplerRef sampler_;
};

/* WHAT THIS OBJECT REPRESENTS
 *   An update rule theta <- theta - step(gradient), with state per parameter. */
class Optimizer
{
public:
    virtual ~Optimizer() = default;
    virtual void bind(const ansatz_named_tensor* params, int32_t n_params) = 0;
    virtual void step(ansatz_named_tensor* params, const ansatz_tensor* grads, int32_t n_params) = 0;
    virtual std::vector<ansatz_named_tensor> state() { return {}; }
};

/* WHAT THIS OBJECT REPRESENTS
 *   An indexed collection of samples of one shape, read in batches. */
class Dataset
{
public:
    virtual ~Dataset() = default;
    virtual ansatz_dataset_info info() const = 0;
    // out {n, D}: the samples `indices`, flattened; labels may be nullptr.
    virtual void read(const int64_t* indices, int64_t n, ansatz_tensor& out, float* labels, Rng& rng) = 0;
};

// ---- defaults of the optional tables: reached only if a class claims a capability it lacks.

namespace detail
{
[[noreturn]] inline void missing(const char* what)
{
    throw Error(std::string("the component claims a capability but does not implement ") + what);
}
} // namespace detail

inline void Model::free_energy(const ansatz_tensor&, ansatz_tensor&)
{
    detail::missing("free_energy");
}
inline void Model::free_energy_grad(const ansatz_tensor&, float, ansatz_tensor*, int32_t, ansatz_tensor*)
{
    detail::missing("free_energy_grad");
}
inline void Model::energy_delta(const ansatz_tensor&, const int64_t*, const float*, ansatz_tensor&)
{
    detail::missing("energy_delta");
}
inline int64_t Model::block_size(ansatz_block) const
{
    detail::missing("block_size");
}
inline void Model::conditional(ansatz_block, const ansatz_tensor&, ansatz_tensor&, ansatz_tensor*, Streams)
{
    detail::missing("conditional");
}

} // namespace ansatz

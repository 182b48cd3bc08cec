// ansatz/component.hpp -- the base classes a plugin author derives from.
//
// A component is constructed from its validated Config and the Host, and does its work in the
// methods below on whole batches. Preconditions are checked by the caller's wrapper where it can
// (shapes), and by the component where only it knows (domain, ranges); either throws.
//
// The base classes declare what every component of a kind must have. What is optional is found on
// the class itself by ANSATZ_PLUGIN (a C++20 `requires`): a class that does not define a function
// leaves its table slot NULL, and the host refuses, when it validates a pipeline, a sampler or loss
// that needs a function its model lacks. The optional members, with these exact signatures:
//   model, energy:       void free_energy(const ansatz_tensor& v, ansatz_tensor& out);
//                        void free_energy_grad(const ansatz_tensor& v, float scale, ansatz_tensor* grads,
//                                              int32_t n_grads, ansatz_tensor* out);
//                        void energy_delta(const ansatz_tensor& v, const int64_t* sites,
//                                          const float* new_values, ansatz_tensor& out);
//   model, conditionals: int64_t block_size(ansatz_block block) const;
//                        void conditional(ansatz_block block, const ansatz_tensor& given,
//                                         ansatz_tensor& mean, ansatz_tensor* sample, Streams rngs);
//   model, 2.1:          void free_energy_grad_weighted(const ansatz_tensor& v, const float* weights,
//                                                       ansatz_tensor* grads, int32_t n_grads,
//                                                       ansatz_tensor* out);
//                        void tempered_free_energy(const ansatz_tensor& v, const double* beta,
//                                                  const ansatz_tensor* field, ansatz_tensor& out);
//                        double base_log_partition(const ansatz_tensor* field);
//                        void tempered_conditional(ansatz_block block, const ansatz_tensor& given,
//                                                  const double* beta, const ansatz_tensor* field,
//                                                  ansatz_tensor& mean, ansatz_tensor* sample,
//                                                  Streams rngs);
//                        void block_free_energy(ansatz_block block, const ansatz_tensor& states,
//                                               ansatz_tensor& out);
//                        (the tempered functions go together: tempered_free_energy and
//                        base_log_partition, plus tempered_conditional exactly when the model has
//                        conditionals; see abi.h)
//   model, 2.2:          void local_begin(const ansatz_tensor& v, const double* beta);
//                        void local_commit(const ansatz_tensor& v, const int64_t* sites,
//                                          const float* previous_values, const uint8_t* accepted);
//                        void local_end();
//                        (the local-move session: all three or none, and energy_delta, which returns
//                        the session's tempered deltas while it is open; call order in abi.h)
//                        void free_energy_grad_state(const ansatz_tensor& v, ansatz_tensor& out);
//   model, 2.3:          void parameters_changed();   (the host wrote the parameters: drop what you
//                        derived from them; between two calls they do not change)
//   model, 2.4:          void local_step(const ansatz_tensor& v, int64_t rounds, const int64_t* sites,
//                                        const float* new_values, const float* uniforms,
//                                        uint8_t* accepted);
//                        (with the session: `rounds` rounds of energy_delta, accept when
//                        uniforms[n, t] < exp(min(0, -delta)) as ansatz::exp rounds it, write the
//                        accepted value into v, commit; new_values nullptr: flips; abi.h)
//   model, latent (abi.h, ansatz_latent_table; the prior is N(0, I)), all together:
//                        int64_t latent_size() const;                 (from create on: the config fixes L)
//                        void encode(const ansatz_tensor& x, ansatz_tensor& mu, ansatz_tensor& log_var);
//                        void encode_backward(const ansatz_tensor& x, const ansatz_tensor& d_mu,
//                                             const ansatz_tensor& d_log_var, float scale,
//                                             ansatz_tensor* grads, int32_t n_grads);
//                        void decode_log_likelihood(const ansatz_tensor& h, const ansatz_tensor& x,
//                                                   ansatz_tensor& out);
//                        void decode_mean(const ansatz_tensor& h, ansatz_tensor& x_mean);
//                        and one or both of the decoder's backward passes:
//                        void decode_backward(const ansatz_tensor& h, const ansatz_tensor& x, float scale,
//                                             ansatz_tensor* d_h, ansatz_tensor* grads, int32_t n_grads);
//                        void decode_backward_weighted(const ansatz_tensor& h, const ansatz_tensor& x,
//                                                      const float* weights, ansatz_tensor* d_h,
//                                                      ansatz_tensor* grads, int32_t n_grads,
//                                                      ansatz_tensor* out);          (2.2)
//                        (with only the weighted one, ANSATZ_PLUGIN makes decode_backward of it, every
//                        weight the scale; the trampolines check every shape against latent_size()
//                        before the call: x {N, D}, mu, log_var, h, d_mu, d_log_var, d_h {N, L}, out {N})
//   sampler:             void metrics(Metrics& out);
//   sampler, 2.2:        void advance_tempered(ansatz_tensor& chains, int32_t steps, const double* beta,
//                                              Streams rngs);
//                        (beta {N}: row n at inverse temperature beta[n]; 0 rows: only check that
//                        the bound model can be tempered, throwing InputError if not)
//   sampler, loss, optimizer (both or neither):
//                        std::vector<ansatz_named_tensor> state();
//                        void set_state(const StateIn& in);
//   any component:       static ansatz_function extension(const char* name);
// A class declares what it needs of its model and its flags as static constants:
//     static void describe(ansatz::Schema&);              every kind: its configuration keys
//     static constexpr uint64_t needs = ANSATZ_FN_...;    sampler, loss, evaluator: model functions it calls
//     static constexpr bool needs_sampler = true;         loss: estimates a negative phase with MCMC
#pragma once

#include "ansatz/abi.h"
#include "ansatz/error.hpp"
#include "ansatz/random.hpp"
#include "ansatz/refs.hpp"
#include "ansatz/schema.hpp"
#include "ansatz/tensor.hpp"

#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>
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
    // Where the run is (stage, epoch, step), for schedules; zeros when the host does not say.
    ansatz_progress progress() const
    {
        ansatz_progress p{};
        p.struct_size = sizeof(ansatz_progress);
        if (h_->progress)
            h_->progress(h_->context, &p);
        return p;
    }
    // Bytes of memory the machine has (0: unknown).
    int64_t memory_bytes() const { return h_->memory_bytes; }
    // Refuses (InputError) a configuration whose buffers would need more than the machine's memory:
    // `what` says which keys ask for it, e.g. "hidden: 2000000000 with 784 visible units".
    void require_memory(double bytes, const std::string& what) const
    {
        const double have = static_cast<double>(memory_bytes());
        if (have > 0 && bytes > have)
            throw InputError(what + " needs " + format_bytes(bytes) + " of memory, more than the " +
                             format_bytes(have) + " this machine has");
    }
    static std::string format_bytes(double bytes)
    {
        const char* units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        int u = 0;
        while (bytes >= 1024 && u < 6)
            bytes /= 1024, ++u;
        char buffer[48];
        std::snprintf(buffer, sizeof buffer, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
        return buffer;
    }

private:
    const ansatz_host* h_;
};

// The pieces of state passed to set_state, found by name with their dtype and shape checked.
class StateIn
{
public:
    StateIn(const ansatz_named_tensor* pieces, int32_t n, std::string owner)
        : pieces_(pieces), n_(n), owner_(std::move(owner))
    {
    }
    int32_t size() const { return n_; }
    bool has(const char* name) const { return find(name) != nullptr; }
    // The piece `name`, which must hold T with this shape; InputError naming it otherwise.
    template <class T>
    const T* get(const char* name, std::initializer_list<int64_t> shape) const
    {
        const ansatz_tensor* t = find(name);
        if (!t)
            throw InputError(prefix() + "the saved state has no piece '" + name + "'");
        ansatz_tensor expected = make_view(static_cast<T*>(nullptr), shape);
        bool same = t->dtype == expected.dtype && t->rank == expected.rank;
        for (int32_t i = 0; same && i < t->rank; ++i)
            same = t->shape[i] == expected.shape[i];
        if (!same)
            throw InputError(prefix() + "the saved state's piece '" + name + "' holds " +
                             dtype_name(t->dtype) + " " + shape_string(*t) + ", expected " +
                             dtype_name(expected.dtype) + " " + shape_string(expected));
        return static_cast<const T*>(t->data);
    }
    // The piece `name` as it is (nullptr if absent), for state whose shape the saver chose.
    const ansatz_tensor* find(const char* name) const
    {
        for (int32_t i = 0; i < n_; ++i)
            if (pieces_[i].name && std::strcmp(pieces_[i].name, name) == 0)
                return &pieces_[i].tensor;
        return nullptr;
    }
    // Refuses a piece whose name is not among `known` (state of another component or version).
    void require_only(std::initializer_list<const char*> known) const
    {
        for (int32_t i = 0; i < n_; ++i)
        {
            bool found = false;
            for (const char* k : known)
                found = found || (pieces_[i].name && std::strcmp(pieces_[i].name, k) == 0);
            if (!found)
                throw InputError(prefix() + "the saved state has a piece '" +
                                 std::string(pieces_[i].name ? pieces_[i].name : "") + "' it does not know");
        }
    }
    const std::string& owner() const { return owner_; }

private:
    // "owner: " when the reader was given an owner (the host already names the component).
    std::string prefix() const { return owner_.empty() ? std::string() : owner_ + ": "; }

    const ansatz_named_tensor* pieces_;
    int32_t n_;
    std::string owner_;
};

/* WHAT THIS OBJECT REPRESENTS
 *   An unnormalised distribution p(v) = exp(-F(v)) / Z over samples v (rows of a batch), with
 *   parameters theta that a loss differentiates and an optimizer updates in place.
 * Every method works on a batch {N, D} where D is the flattened sample size given to setup(). The
 * energy and conditionals functions are optional members (see the top of this file). */
class Model
{
public:
    virtual ~Model() = default;

    // Its samples' shape when the configuration fixes it (rank -1: from the data) and their domain.
    virtual ansatz_sample_info sample_info() const
    {
        ansatz_sample_info info{};
        info.struct_size = sizeof(ansatz_sample_info);
        info.rank = -1;
        info.domain = ANSATZ_DOMAIN_BINARY;
        return info;
    }
    // ensures: parameters exist and are initialised for samples of this shape (batch axis excluded).
    virtual void setup(const std::vector<int64_t>& sample_shape, Rng& rng) = 0;
    // Views of the parameters, in a fixed order; the names are the checkpoint file names.
    virtual std::vector<ansatz_named_tensor> parameters() = 0;
    // out {N, D}: draws from a simple distribution over the domain (chains' starting points),
    // row n from rngs[n].
    virtual void random_state(ansatz_tensor& out, Streams rngs) = 0;
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
    // Reports "loss" and any other scalar; when grads is not null, grads[k] += d(loss)/dtheta_k on
    // this batch. grads == nullptr asks for the value only: change no state training depends on.
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
};

/* WHAT THIS OBJECT REPRESENTS
 *   A measurement of a model on a dataset (a log-likelihood, an error), reported as named scalars; a
 *   standard error of metric x is reported as x_stderr. requires: bind() before evaluate(). It keeps
 *   nothing between evaluations and changes nothing of the model. */
class Evaluator
{
public:
    virtual ~Evaluator() = default;
    // Throw InputError here for a model this configuration cannot measure (too large to enumerate).
    virtual void bind(const ModelRef& model) { model_ = model; }
    // data {N, D}: every row of the evaluated dataset; draws only from rng.
    virtual void evaluate(const ansatz_tensor& data, Rng& rng, Metrics& out) = 0;

protected:
    ModelRef model_;
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

} // namespace ansatz

// ansatz/plugin.hpp -- writes a plugin's descriptor and the C trampolines for its C++ classes.
//
//     #include <ansatz/plugin.hpp>
//     class Rbm : public ansatz::Model { ... };
//     ANSATZ_PLUGIN("rbm", "0.1.0", "MIT", ansatz::model<Rbm>("rbm", "Bernoulli-Bernoulli RBM"))
//
// Each trampoline converts C views to the C++ call and any exception back to an ansatz_status
// (error.hpp's guard), so no exception ever crosses the boundary. Include this header in exactly one
// source file of a plugin: it defines the exported entry symbol.
#pragma once

#include "ansatz/abi.h"
#include "ansatz/component.hpp"

#include <concepts>
#include <deque>
#include <initializer_list>
#include <vector>

#ifndef ANSATZ_BUILD_FLAGS
#define ANSATZ_BUILD_FLAGS "unknown flags"
#endif

namespace ansatz
{
namespace detail
{

// The one stream of a call (an Rng is its ansatz_rng: no copy).
inline Rng& one_stream(ansatz_rng* state)
{
    if (!state)
        throw Error("no random stream was passed to a call that draws random numbers");
    return *reinterpret_cast<Rng*>(state);
}

// A batch of chains is a view of rank >= 1 whose first axis is the rows.
inline void require_rows(const ansatz_tensor& t, const char* what)
{
    if (t.rank < 1)
        throw Error(std::string(what) + " has rank 0; a batch has one row per chain");
}

// The per-row streams of a call on `rows` chains.
inline Streams row_streams(ansatz_rng* states, int64_t rows)
{
    if (!states && rows > 0)
        throw Error("no random streams were passed to a call on chains that draws random numbers");
    return as_streams(states, rows);
}

template <class T>
T& self(void* p)
{
    return *static_cast<T*>(p);
}

inline int32_t copy_views(const std::vector<ansatz_named_tensor>& views, ansatz_named_tensor* out,
                          int32_t capacity)
{
    const int32_t n = static_cast<int32_t>(views.size());
    for (int32_t i = 0; out && i < n && i < capacity; ++i)
        out[i] = views[static_cast<size_t>(i)];
    return n;
}

template <class T>
void* create(const ansatz_config* config, const ansatz_host* host, ansatz_status* st)
{
    T* created = nullptr;
    guard(st, [&] { created = new T(Config(*config), Host(host)); });
    return created;
}

template <class T>
void destroy(void* p)
{
    delete static_cast<T*>(p);
}

// Counting calls (parameters, state) return -1 and fill the status on failure (abi.h).
template <class Body>
int32_t count_guard(ansatz_status* st, Body&& body) noexcept
{
    int32_t n = -1;
    if (guard(st, [&] { n = body(); }) != ANSATZ_STATUS_OK)
        return -1;
    return n;
}

// ---- optional members, found on the class itself (component.hpp)

template <class T>
concept HasFreeEnergy = requires(T& t, const ansatz_tensor& v, ansatz_tensor& out)
{
    t.free_energy(v, out);
};
template <class T>
concept HasFreeEnergyGrad = requires(T& t, const ansatz_tensor& v, ansatz_tensor* g, ansatz_tensor* out)
{
    t.free_energy_grad(v, 1.0f, g, int32_t{}, out);
};
template <class T>
concept HasEnergyDelta = requires(T& t, const ansatz_tensor& v, const int64_t* s, const float* u,
                                  ansatz_tensor& out)
{
    t.energy_delta(v, s, u, out);
};
template <class T>
concept HasConditionals = requires(T& t, const ansatz_tensor& g, ansatz_tensor& m, ansatz_tensor* s,
                                   Streams r)
{
    {
        t.block_size(ANSATZ_BLOCK_VISIBLE)
        } -> std::convertible_to<int64_t>;
    t.conditional(ANSATZ_BLOCK_VISIBLE, g, m, s, r);
};
template <class T>
concept HasWeightedGrad = requires(T& t, const ansatz_tensor& v, const float* w, ansatz_tensor* g,
                                   ansatz_tensor* out)
{
    t.free_energy_grad_weighted(v, w, g, int32_t{}, out);
};
// The tempered functions go together (abi.h): tempered_free_energy and base_log_partition always, and
// tempered_conditional exactly when the model has conditionals. A class with only some is an error.
template <class T>
concept HasTemperedFreeEnergy = requires(T& t, const ansatz_tensor& v, const double* b,
                                         const ansatz_tensor* f, ansatz_tensor& out)
{
    t.tempered_free_energy(v, b, f, out);
};
template <class T>
concept HasBaseLogPartition = requires(T& t, const ansatz_tensor* f)
{
    {
        t.base_log_partition(f)
        } -> std::convertible_to<double>;
};
template <class T>
concept HasTemperedConditional = requires(T& t, const ansatz_tensor& g, const double* b,
                                          const ansatz_tensor* f, ansatz_tensor& m, ansatz_tensor* s,
                                          Streams r)
{
    t.tempered_conditional(ANSATZ_BLOCK_VISIBLE, g, b, f, m, s, r);
};
template <class T>
concept HasBlockFreeEnergy = requires(T& t, const ansatz_tensor& s, ansatz_tensor& out)
{
    t.block_free_energy(ANSATZ_BLOCK_VISIBLE, s, out);
};
// The latent functions (abi.h, ansatz_latent_table): latent_size, encode, encode_backward,
// decode_log_likelihood, decode_mean and a decoder backward pass (decode_backward, or
// decode_backward_weighted, or both) go together: a class with only some of them is an error.
template <class T>
concept HasLatentSize = requires(T& t)
{
    {
        t.latent_size()
        } -> std::convertible_to<int64_t>;
};
template <class T>
concept HasEncode = requires(T& t, const ansatz_tensor& x, ansatz_tensor& mu, ansatz_tensor& lv)
{
    t.encode(x, mu, lv);
};
template <class T>
concept HasEncodeBackward = requires(T& t, const ansatz_tensor& x, const ansatz_tensor& d, ansatz_tensor* g)
{
    t.encode_backward(x, d, d, 1.0f, g, int32_t{});
};
template <class T>
concept HasDecodeLogLikelihood = requires(T& t, const ansatz_tensor& h, const ansatz_tensor& x,
                                          ansatz_tensor& out)
{
    t.decode_log_likelihood(h, x, out);
};
template <class T>
concept HasDecodeBackward = requires(T& t, const ansatz_tensor& h, const ansatz_tensor& x, ansatz_tensor* d_h,
                                     ansatz_tensor* g)
{
    t.decode_backward(h, x, 1.0f, d_h, g, int32_t{});
};
template <class T>
concept HasDecodeBackwardWeighted = requires(T& t, const ansatz_tensor& h, const ansatz_tensor& x,
                                             const float* w, ansatz_tensor* d_h, ansatz_tensor* g,
                                             ansatz_tensor* out)
{
    t.decode_backward_weighted(h, x, w, d_h, g, int32_t{}, out);
};
template <class T>
concept HasDecodeMean = requires(T& t, const ansatz_tensor& h, ansatz_tensor& out)
{
    t.decode_mean(h, out);
};
// 2.2: the local-move session (all three, with energy_delta) and the state gradient.
template <class T>
concept HasLocalBegin = requires(T& t, const ansatz_tensor& v, const double* b)
{
    t.local_begin(v, b);
};
template <class T>
concept HasLocalCommit = requires(T& t, const ansatz_tensor& v, const int64_t* s, const float* p,
                                  const uint8_t* a)
{
    t.local_commit(v, s, p, a);
};
template <class T>
concept HasLocalEnd = requires(T& t)
{
    t.local_end();
};
// 2.4: fused rounds of the session.
template <class T>
concept HasLocalStep = requires(T& t, const ansatz_tensor& v, int64_t r, const int64_t* s, const float* n,
                                const float* u, uint8_t* a)
{
    t.local_step(v, r, s, n, u, a);
};
template <class T>
concept HasStateGrad = requires(T& t, const ansatz_tensor& v, ansatz_tensor& out)
{
    t.free_energy_grad_state(v, out);
};
// 2.3: told when the host has written the parameters (abi.h); a model that keeps nothing derived from
// them does not declare it.
template <class T>
concept HasParametersChanged = requires(T& t)
{
    t.parameters_changed();
};
template <class T>
concept HasAdvanceTempered = requires(T& t, ansatz_tensor& c, const double* b, Streams r)
{
    t.advance_tempered(c, int32_t{}, b, r);
};
template <class T>
concept HasMetrics = requires(T& t, Metrics& m)
{
    t.metrics(m);
};
template <class T>
concept HasState = requires(T& t, const StateIn& in)
{
    {
        t.state()
        } -> std::convertible_to<std::vector<ansatz_named_tensor>>;
    t.set_state(in);
};
template <class T>
concept HasExtension = requires(const char* name)
{
    {
        T::extension(name)
        } -> std::convertible_to<ansatz_function>;
};

// state / set_state for any kind: the slots stay NULL for a class without them.
template <class T>
struct StateSlots
{
    static int32_t state(void* p, ansatz_named_tensor* out, int32_t capacity, ansatz_status* st)
    {
        return count_guard(st, [&] { return copy_views(self<T>(p).state(), out, capacity); });
    }
    static int32_t set_state(void* p, const ansatz_named_tensor* in, int32_t n, ansatz_status* st)
    {
        return guard(st, [&] {
            if (n < 0 || (n > 0 && !in))
                throw Error("set_state got no pieces of state");
            self<T>(p).set_state(StateIn(in, n, "")); // the host names the component
        });
    }
    // `if constexpr`, not ?:, so a class without state() never instantiates the bodies above.
    static constexpr ansatz_state_fn state_fn()
    {
        if constexpr (HasState<T>)
            return state;
        else
            return nullptr;
    }
    static constexpr ansatz_set_state_fn set_state_fn()
    {
        if constexpr (HasState<T>)
            return set_state;
        else
            return nullptr;
    }
};

// ---- model

template <class T>
struct ModelTables
{
    static int32_t sample_info(void* p, ansatz_sample_info* out, ansatz_status* st)
    {
        return guard(st, [&] {
            *out = self<T>(p).sample_info();
            out->struct_size = sizeof(ansatz_sample_info);
        });
    }
    static int32_t setup(void* p, const int64_t* shape, int32_t rank, ansatz_rng* rng, ansatz_status* st)
    {
        return guard(st, [&] {
            if (rank < 0 || rank > ANSATZ_MAX_RANK || (rank > 0 && !shape))
                throw Error("setup got a sample shape of rank " + std::to_string(rank));
            self<T>(p).setup(std::vector<int64_t>(shape, shape + rank), one_stream(rng));
        });
    }
    static int32_t parameters(void* p, ansatz_named_tensor* out, int32_t capacity, ansatz_status* st)
    {
        return count_guard(st, [&] { return copy_views(self<T>(p).parameters(), out, capacity); });
    }
    static int32_t parameters_changed(void* p, ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).parameters_changed(); });
    }
    static constexpr auto parameters_changed_slot()
    {
        if constexpr (HasParametersChanged<T>)
            return parameters_changed;
        else
            return static_cast<decltype(&parameters_changed)>(nullptr);
    }
    static int32_t random_state(void* p, ansatz_tensor* out, ansatz_rng* rngs, ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*out, "random_state: out");
            self<T>(p).random_state(*out, row_streams(rngs, out->shape[0]));
        });
    }
    static int32_t free_energy(void* p, const ansatz_tensor* v, ansatz_tensor* out, ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).free_energy(*v, *out); });
    }
    static int32_t free_energy_grad(void* p, const ansatz_tensor* v, float scale, ansatz_tensor* grads,
                                    int32_t n, ansatz_tensor* out, ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).free_energy_grad(*v, scale, grads, n, out); });
    }
    static int32_t energy_delta(void* p, const ansatz_tensor* v, const int64_t* sites,
                                const float* new_values, ansatz_tensor* out, ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).energy_delta(*v, sites, new_values, *out); });
    }
    static int64_t block_size(void* p, int32_t block)
    {
        try
        {
            return self<T>(p).block_size(static_cast<ansatz_block>(block));
        }
        catch (...)
        {
            return -1;
        }
    }
    static int32_t conditional(void* p, int32_t block, const ansatz_tensor* given, ansatz_tensor* mean,
                               ansatz_tensor* sample, ansatz_rng* rngs, ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*given, "conditional: given");
            // Streams are needed only to draw a sample.
            const Streams streams =
                sample ? row_streams(rngs, given->shape[0]) : as_streams(rngs, rngs ? given->shape[0] : 0);
            self<T>(p).conditional(static_cast<ansatz_block>(block), *given, *mean, sample, streams);
        });
    }

    static int32_t free_energy_grad_weighted(void* p, const ansatz_tensor* v, const float* weights,
                                             ansatz_tensor* grads, int32_t n, ansatz_tensor* out,
                                             ansatz_status* st)
    {
        return guard(st, [&] {
            if (!weights)
                throw Error("free_energy_grad_weighted got no weights");
            self<T>(p).free_energy_grad_weighted(*v, weights, grads, n, out);
        });
    }
    static int32_t tempered_free_energy(void* p, const ansatz_tensor* v, const double* beta,
                                        const ansatz_tensor* field, ansatz_tensor* out, ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*v, "tempered_free_energy: v");
            if (!beta)
                throw Error("tempered_free_energy got no inverse temperatures");
            if (out->dtype != ANSATZ_DTYPE_FLOAT64)
                throw Error("tempered_free_energy: out must be float64");
            self<T>(p).tempered_free_energy(*v, beta, field, *out);
        });
    }
    static int32_t base_log_partition(void* p, const ansatz_tensor* field, double* out, ansatz_status* st)
    {
        return guard(st, [&] { *out = self<T>(p).base_log_partition(field); });
    }
    static int32_t tempered_conditional(void* p, int32_t block, const ansatz_tensor* given,
                                        const double* beta, const ansatz_tensor* field, ansatz_tensor* mean,
                                        ansatz_tensor* sample, ansatz_rng* rngs, ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*given, "tempered_conditional: given");
            if (!beta)
                throw Error("tempered_conditional got no inverse temperatures");
            const Streams streams =
                sample ? row_streams(rngs, given->shape[0]) : as_streams(rngs, rngs ? given->shape[0] : 0);
            self<T>(p).tempered_conditional(static_cast<ansatz_block>(block), *given, beta, field, *mean,
                                            sample, streams);
        });
    }
    static int32_t block_free_energy(void* p, int32_t block, const ansatz_tensor* states, ansatz_tensor* out,
                                     ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*states, "block_free_energy: states");
            if (out->dtype != ANSATZ_DTYPE_FLOAT64)
                throw Error("block_free_energy: out must be float64");
            self<T>(p).block_free_energy(static_cast<ansatz_block>(block), *states, *out);
        });
    }

    // ---- latent (abi.h, ansatz_latent_table): shapes checked here, so every model reports alike
    static int64_t latent_size(void* p)
    {
        try
        {
            return self<T>(p).latent_size();
        }
        catch (...)
        {
            return -1;
        }
    }
    // {rows, L} float32 (rows < 0: any), named in the error.
    static void require_latent(T& model, const ansatz_tensor& t, int64_t rows, const char* what)
    {
        require_matrix(t, rows, model.latent_size(), what);
    }
    static void require_grads(const ansatz_tensor* grads, int32_t n, const char* what)
    {
        if (n < 0 || (n > 0 && !grads))
            throw Error(std::string(what) + " got no gradients to add to");
    }
    static int32_t encode(void* p, const ansatz_tensor* x, ansatz_tensor* mu, ansatz_tensor* log_var,
                          ansatz_status* st)
    {
        return guard(st, [&] {
            T& m = self<T>(p);
            require_matrix(*x, -1, -1, "encode: x");
            require_latent(m, *mu, x->shape[0], "encode: mu");
            require_latent(m, *log_var, x->shape[0], "encode: log_var");
            m.encode(*x, *mu, *log_var);
        });
    }
    static int32_t encode_backward(void* p, const ansatz_tensor* x, const ansatz_tensor* d_mu,
                                   const ansatz_tensor* d_log_var, float scale, ansatz_tensor* grads,
                                   int32_t n, ansatz_status* st)
    {
        return guard(st, [&] {
            T& m = self<T>(p);
            require_matrix(*x, -1, -1, "encode_backward: x");
            require_latent(m, *d_mu, x->shape[0], "encode_backward: d_mu");
            require_latent(m, *d_log_var, x->shape[0], "encode_backward: d_log_var");
            require_grads(grads, n, "encode_backward");
            m.encode_backward(*x, *d_mu, *d_log_var, scale, grads, n);
        });
    }
    static int32_t decode_log_likelihood(void* p, const ansatz_tensor* h, const ansatz_tensor* x,
                                         ansatz_tensor* out, ansatz_status* st)
    {
        return guard(st, [&] {
            T& m = self<T>(p);
            require_latent(m, *h, -1, "decode_log_likelihood: h");
            require_matrix(*x, h->shape[0], -1, "decode_log_likelihood: x");
            require_vector(*out, h->shape[0], "decode_log_likelihood: out");
            m.decode_log_likelihood(*h, *x, *out);
        });
    }
    static void check_decode_backward(T& m, const ansatz_tensor* h, const ansatz_tensor* x,
                                      const ansatz_tensor* d_h, const ansatz_tensor* grads, int32_t n,
                                      const char* what)
    {
        const std::string w(what);
        require_latent(m, *h, -1, (w + ": h").c_str());
        require_matrix(*x, h->shape[0], -1, (w + ": x").c_str());
        if (d_h)
            require_latent(m, *d_h, h->shape[0], (w + ": d_h").c_str());
        require_grads(grads, n, what);
    }
    static int32_t decode_backward(void* p, const ansatz_tensor* h, const ansatz_tensor* x, float scale,
                                   ansatz_tensor* d_h, ansatz_tensor* grads, int32_t n, ansatz_status* st)
    {
        return guard(st, [&] {
            T& m = self<T>(p);
            check_decode_backward(m, h, x, d_h, grads, n, "decode_backward");
            if constexpr (HasDecodeBackward<T>)
                m.decode_backward(*h, *x, scale, d_h, grads, n);
            else
            {
                // Made of the weighted pass with every row weighted alike.
                thread_local std::vector<float> weights;
                weights.assign(static_cast<size_t>(h->shape[0]), scale);
                m.decode_backward_weighted(*h, *x, weights.data(), d_h, grads, n, nullptr);
            }
        });
    }
    static int32_t decode_backward_weighted(void* p, const ansatz_tensor* h, const ansatz_tensor* x,
                                            const float* weights, ansatz_tensor* d_h, ansatz_tensor* grads,
                                            int32_t n, ansatz_tensor* out, ansatz_status* st)
    {
        return guard(st, [&] {
            T& m = self<T>(p);
            check_decode_backward(m, h, x, d_h, grads, n, "decode_backward_weighted");
            if (!weights && h->shape[0] > 0)
                throw Error("decode_backward_weighted got no weights");
            if (out)
                require_vector(*out, h->shape[0], "decode_backward_weighted: out");
            m.decode_backward_weighted(*h, *x, weights, d_h, grads, n, out);
        });
    }
    static int32_t decode_mean(void* p, const ansatz_tensor* h, ansatz_tensor* x_mean, ansatz_status* st)
    {
        return guard(st, [&] {
            T& m = self<T>(p);
            require_latent(m, *h, -1, "decode_mean: h");
            require_matrix(*x_mean, h->shape[0], -1, "decode_mean: x_mean");
            m.decode_mean(*h, *x_mean);
        });
    }

    static constexpr bool has_latent = HasLatentSize<T> && HasEncode<T> && HasEncodeBackward<T> &&
                                       HasDecodeLogLikelihood<T> && HasDecodeMean<T> &&
                                       (HasDecodeBackward<T> || HasDecodeBackwardWeighted<T>);
    static_assert(has_latent || !(HasLatentSize<T> || HasEncode<T> || HasEncodeBackward<T> ||
                                  HasDecodeLogLikelihood<T> || HasDecodeMean<T> || HasDecodeBackward<T> ||
                                  HasDecodeBackwardWeighted<T>),
                  "a latent model needs all of latent_size, encode, encode_backward, decode_log_likelihood, "
                  "decode_mean and decode_backward or decode_backward_weighted (with the exact signatures of "
                  "component.hpp)");
    static constexpr auto decode_backward_weighted_slot()
    {
        if constexpr (has_latent && HasDecodeBackwardWeighted<T>)
            return decode_backward_weighted;
        else
            return static_cast<decltype(&decode_backward_weighted)>(nullptr);
    }
    static constexpr const ansatz_latent_table* latent_slot();

    static int32_t local_begin(void* p, const ansatz_tensor* v, const double* beta, ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*v, "local_begin: v");
            self<T>(p).local_begin(*v, beta);
        });
    }
    static int32_t local_commit(void* p, const ansatz_tensor* v, const int64_t* sites,
                                const float* previous_values, const uint8_t* accepted, ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*v, "local_commit: v");
            if (v->shape[0] > 0 && (!sites || !previous_values || !accepted))
                throw Error("local_commit got no sites, previous values or accepted flags");
            self<T>(p).local_commit(*v, sites, previous_values, accepted);
        });
    }
    static int32_t local_end(void* p, ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).local_end(); });
    }
    static int32_t local_step(void* p, const ansatz_tensor* v, int64_t rounds, const int64_t* sites,
                              const float* new_values, const float* uniforms, uint8_t* accepted,
                              ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*v, "local_step: v");
            if (rounds < 0)
                throw Error("local_step got " + std::to_string(rounds) + " rounds");
            if (rounds > 0 && v->shape[0] > 0 && (!sites || !uniforms || !accepted))
                throw Error("local_step got no sites, uniforms or accepted flags");
            self<T>(p).local_step(*v, rounds, sites, new_values, uniforms, accepted);
        });
    }
    static int32_t free_energy_grad_state(void* p, const ansatz_tensor* v, ansatz_tensor* out,
                                          ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*v, "free_energy_grad_state: v");
            self<T>(p).free_energy_grad_state(*v, *out);
        });
    }

    // tempered_conditional belongs to the conditionals: a model without them (an Ising model) is tempered
    // with the other two alone, and a model with them needs all three.
    static constexpr bool has_tempered = HasTemperedFreeEnergy<T> && HasBaseLogPartition<T> &&
                                         (HasConditionals<T> ? HasTemperedConditional<T> : true);
    static constexpr bool has_local = HasLocalBegin<T> && HasLocalCommit<T> && HasLocalEnd<T>;
    static_assert(
        has_local || !(HasLocalBegin<T> || HasLocalCommit<T> || HasLocalEnd<T>),
        "a model with a local-move session needs all three: local_begin, local_commit and local_end "
        "(with the exact signatures of component.hpp)");
    static_assert(!has_local || HasEnergyDelta<T>,
                  "a model with a local-move session needs energy_delta, which the session serves");
    static_assert(
        has_local || !HasLocalStep<T>,
        "a model with local_step needs the local-move session it runs in (local_begin, local_commit "
        "and local_end)");
    static_assert(has_tempered ||
                      !(HasTemperedFreeEnergy<T> || HasBaseLogPartition<T> || HasTemperedConditional<T>),
                  "a model with tempered functions needs tempered_free_energy and base_log_partition, and "
                  "tempered_conditional too when it has conditionals (with the exact signatures of "
                  "component.hpp)");
    static_assert(HasConditionals<T> || !HasTemperedConditional<T>,
                  "a model with tempered_conditional needs the conditionals (block_size and conditional)");

    // Each slot through `if constexpr`, so a class without the member never instantiates its body.
    static constexpr auto weighted_slot()
    {
        if constexpr (HasWeightedGrad<T>)
            return free_energy_grad_weighted;
        else
            return static_cast<decltype(&free_energy_grad_weighted)>(nullptr);
    }
    static constexpr auto tempered_free_energy_slot()
    {
        if constexpr (has_tempered)
            return tempered_free_energy;
        else
            return static_cast<decltype(&tempered_free_energy)>(nullptr);
    }
    static constexpr auto base_log_partition_slot()
    {
        if constexpr (has_tempered)
            return base_log_partition;
        else
            return static_cast<decltype(&base_log_partition)>(nullptr);
    }
    static constexpr auto tempered_conditional_slot()
    {
        if constexpr (has_tempered && HasConditionals<T>)
            return tempered_conditional;
        else
            return static_cast<decltype(&tempered_conditional)>(nullptr);
    }
    static constexpr auto local_begin_slot()
    {
        if constexpr (has_local)
            return local_begin;
        else
            return static_cast<decltype(&local_begin)>(nullptr);
    }
    static constexpr auto local_commit_slot()
    {
        if constexpr (has_local)
            return local_commit;
        else
            return static_cast<decltype(&local_commit)>(nullptr);
    }
    static constexpr auto local_end_slot()
    {
        if constexpr (has_local)
            return local_end;
        else
            return static_cast<decltype(&local_end)>(nullptr);
    }
    static constexpr auto local_step_slot()
    {
        if constexpr (has_local && HasLocalStep<T>)
            return local_step;
        else
            return static_cast<decltype(&local_step)>(nullptr);
    }
    static constexpr auto state_grad_slot()
    {
        if constexpr (HasStateGrad<T>)
            return free_energy_grad_state;
        else
            return static_cast<decltype(&free_energy_grad_state)>(nullptr);
    }
    static constexpr auto block_free_energy_slot()
    {
        if constexpr (HasBlockFreeEnergy<T> && HasConditionals<T>)
            return block_free_energy;
        else
            return static_cast<decltype(&block_free_energy)>(nullptr);
    }
    static constexpr auto free_energy_slot()
    {
        if constexpr (HasFreeEnergy<T>)
            return free_energy;
        else
            return static_cast<decltype(&free_energy)>(nullptr);
    }
    static constexpr auto free_energy_grad_slot()
    {
        if constexpr (HasFreeEnergyGrad<T>)
            return free_energy_grad;
        else
            return static_cast<decltype(&free_energy_grad)>(nullptr);
    }
    static constexpr auto energy_delta_slot()
    {
        if constexpr (HasEnergyDelta<T>)
            return energy_delta;
        else
            return static_cast<decltype(&energy_delta)>(nullptr);
    }
    static constexpr const ansatz_conditionals_table* conditionals_slot();

    static constexpr bool has_energy = HasFreeEnergy<T> || HasFreeEnergyGrad<T> || HasEnergyDelta<T> ||
                                       HasWeightedGrad<T> || has_tempered || has_local || HasStateGrad<T>;
    static constexpr ansatz_energy_table energy_table = { sizeof(ansatz_energy_table),
                                                          free_energy_slot(),
                                                          free_energy_grad_slot(),
                                                          energy_delta_slot(),
                                                          weighted_slot(),
                                                          tempered_free_energy_slot(),
                                                          base_log_partition_slot(),
                                                          local_begin_slot(),
                                                          local_commit_slot(),
                                                          local_end_slot(),
                                                          state_grad_slot(),
                                                          local_step_slot() };
    static constexpr ansatz_conditionals_table conditionals_table = {
        sizeof(ansatz_conditionals_table), block_size, conditional, tempered_conditional_slot(),
        block_free_energy_slot(),          {}
    };
    static constexpr ansatz_latent_table latent_table = { sizeof(ansatz_latent_table),
                                                          latent_size,
                                                          encode,
                                                          encode_backward,
                                                          decode_log_likelihood,
                                                          decode_backward,
                                                          decode_mean,
                                                          decode_backward_weighted_slot(),
                                                          {} };
    static constexpr ansatz_model_table table = { sizeof(ansatz_model_table),
                                                  sample_info,
                                                  setup,
                                                  parameters,
                                                  random_state,
                                                  has_energy ? &energy_table : nullptr,
                                                  conditionals_slot(),
                                                  latent_slot(),
                                                  parameters_changed_slot(),
                                                  {} };
};

template <class T>
constexpr const ansatz_latent_table* ModelTables<T>::latent_slot()
{
    if constexpr (has_latent)
        return &latent_table;
    else
        return nullptr;
}

template <class T>
constexpr const ansatz_conditionals_table* ModelTables<T>::conditionals_slot()
{
    if constexpr (HasConditionals<T>)
        return &conditionals_table;
    else
        return nullptr;
}

// ---- sampler

template <class T>
struct SamplerTables
{
    static int32_t bind(void* p, const ansatz_model_handle* model, ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).bind(ModelRef(*model)); });
    }
    static int32_t advance(void* p, ansatz_tensor* chains, int32_t steps, ansatz_rng* rngs, ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*chains, "advance: chains");
            self<T>(p).advance(*chains, steps, row_streams(rngs, chains->shape[0]));
        });
    }
    static int32_t metrics(void* p, const ansatz_metrics* out, ansatz_status* st)
    {
        return guard(st, [&] {
            Metrics m(*out);
            self<T>(p).metrics(m);
        });
    }
    static int32_t advance_tempered(void* p, ansatz_tensor* chains, int32_t steps, const double* beta,
                                    ansatz_rng* rngs, ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*chains, "advance_tempered: chains");
            const int64_t rows = chains->shape[0];
            if (rows > 0 && !beta)
                throw Error("advance_tempered got no inverse temperatures");
            self<T>(p).advance_tempered(*chains, steps, beta, row_streams(rngs, rows));
        });
    }
    static constexpr auto metrics_slot()
    {
        if constexpr (HasMetrics<T>)
            return metrics;
        else
            return static_cast<decltype(&metrics)>(nullptr);
    }
    static constexpr auto advance_tempered_slot()
    {
        if constexpr (HasAdvanceTempered<T>)
            return advance_tempered;
        else
            return static_cast<decltype(&advance_tempered)>(nullptr);
    }
    static constexpr ansatz_sampler_table table = { sizeof(ansatz_sampler_table),
                                                    bind,
                                                    advance,
                                                    metrics_slot(),
                                                    StateSlots<T>::state_fn(),
                                                    StateSlots<T>::set_state_fn(),
                                                    advance_tempered_slot(),
                                                    {} };
};

// ---- loss

template <class T>
struct LossTables
{
    static int32_t bind(void* p, const ansatz_model_handle* model, const ansatz_sampler_handle* sampler,
                        ansatz_status* st)
    {
        return guard(
            st, [&] { self<T>(p).bind(ModelRef(*model), sampler ? SamplerRef(*sampler) : SamplerRef()); });
    }
    static int32_t compute(void* p, const ansatz_tensor* batch, ansatz_tensor* grads, int32_t n,
                           ansatz_rng* rng, const ansatz_metrics* out, ansatz_status* st)
    {
        return guard(st, [&] {
            Metrics m(*out);
            self<T>(p).compute(*batch, grads, grads ? n : 0, one_stream(rng), m);
        });
    }
    static constexpr ansatz_loss_table table = {
        sizeof(ansatz_loss_table), bind, compute, StateSlots<T>::state_fn(), StateSlots<T>::set_state_fn(), {}
    };
};

// ---- optimizer

template <class T>
struct OptimizerTables
{
    static int32_t bind(void* p, const ansatz_named_tensor* params, int32_t n, ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).bind(params, n); });
    }
    static int32_t step(void* p, ansatz_named_tensor* params, const ansatz_tensor* grads, int32_t n,
                        ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).step(params, grads, n); });
    }
    static constexpr ansatz_optimizer_table table = {
        sizeof(ansatz_optimizer_table), bind, step, StateSlots<T>::state_fn(),
        StateSlots<T>::set_state_fn(),  {}
    };
};

// ---- dataset

template <class T>
struct DatasetTables
{
    static int32_t info(void* p, ansatz_dataset_info* out, ansatz_status* st)
    {
        return guard(st, [&] {
            *out = self<T>(p).info();
            out->struct_size = sizeof(ansatz_dataset_info);
        });
    }
    static int32_t read(void* p, const int64_t* indices, int64_t n, ansatz_tensor* out, float* labels,
                        ansatz_rng* rng, ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).read(indices, n, *out, labels, one_stream(rng)); });
    }
    static constexpr ansatz_dataset_table table = { sizeof(ansatz_dataset_table), info, read, {} };
};

// ---- evaluator (2.1)

template <class T>
struct EvaluatorTables
{
    static int32_t bind(void* p, const ansatz_model_handle* model, ansatz_status* st)
    {
        return guard(st, [&] { self<T>(p).bind(ModelRef(*model)); });
    }
    static int32_t evaluate(void* p, const ansatz_tensor* data, ansatz_rng* rng, const ansatz_metrics* out,
                            ansatz_status* st)
    {
        return guard(st, [&] {
            require_rows(*data, "evaluate: data");
            Metrics m(*out);
            self<T>(p).evaluate(*data, one_stream(rng), m);
        });
    }
    static constexpr ansatz_evaluator_table table = { sizeof(ansatz_evaluator_table), bind, evaluate, {} };
};

// What one component of a plugin is, before its schema is built.
struct ComponentDef
{
    ansatz_kind kind;
    const char* name;
    const char* summary;
    void (*describe)(Schema&);
    uint64_t needs;
    uint32_t flags;
    void* (*create)(const ansatz_config*, const ansatz_host*, ansatz_status*);
    void (*destroy)(void*);
    const void* table;
    ansatz_function (*extension)(const char*);
};

template <class T>
constexpr uint64_t needs_of()
{
    if constexpr (requires { T::needs; })
        return T::needs;
    else
        return 0;
}

template <class T>
constexpr ansatz_function (*extension_of())(const char*)
{
    if constexpr (HasExtension<T>)
        return [](const char* name) noexcept -> ansatz_function {
            try
            {
                return name ? T::extension(name) : nullptr;
            }
            catch (...)
            {
                return nullptr;
            }
        };
    else
        return nullptr;
}

template <class T>
constexpr uint32_t flags_of()
{
    if constexpr (requires { T::needs_sampler; })
        return T::needs_sampler ? ANSATZ_LOSS_NEEDS_SAMPLER : 0u;
    else
        return 0;
}

template <class T>
ComponentDef define(ansatz_kind kind, const char* name, const char* summary, const void* table)
{
    return ComponentDef{ kind,          name,       summary,     &T::describe, needs_of<T>(),
                         flags_of<T>(), &create<T>, &destroy<T>, table,        extension_of<T>() };
}

// Owns the descriptor of a plugin and everything it points to; one static instance per plugin.
class PluginBuilder
{
public:
    PluginBuilder(const char* name, const char* version, const char* license,
                  std::initializer_list<ComponentDef> defs)
    {
        for (const ComponentDef& def : defs)
        {
            Schema& schema = schemas_.emplace_back();
            def.describe(schema);
            ansatz_component c{};
            c.struct_size = sizeof(ansatz_component);
            c.kind = def.kind;
            c.name = def.name;
            c.summary = def.summary;
            c.params = schema.finish();
            c.n_params = schema.size();
            c.needs = def.needs;
            c.flags = def.flags;
            c.extension = def.extension;
            c.create = def.create;
            c.destroy = def.destroy;
            c.table = def.table;
            components_.push_back(c);
        }
        desc_.abi_major = ANSATZ_ABI_MAJOR;
        desc_.abi_minor = ANSATZ_ABI_MINOR;
        desc_.struct_size = sizeof(ansatz_plugin_desc);
        desc_.n_components = static_cast<int32_t>(components_.size());
        desc_.name = name;
        desc_.version = version;
        desc_.license = license;
        desc_.build = "g++ " __VERSION__ ", " ANSATZ_BUILD_FLAGS;
        desc_.components = components_.data();
    }
    const ansatz_plugin_desc* descriptor() const { return &desc_; }

private:
    std::deque<Schema> schemas_;
    std::vector<ansatz_component> components_;
    ansatz_plugin_desc desc_{};
};

} // namespace detail

template <class T>
detail::ComponentDef model(const char* name, const char* summary)
{
    static_assert(std::is_base_of_v<Model, T>, "ansatz::model<T> needs T derived from ansatz::Model");
    return detail::define<T>(ANSATZ_KIND_MODEL, name, summary, &detail::ModelTables<T>::table);
}
template <class T>
detail::ComponentDef sampler(const char* name, const char* summary)
{
    static_assert(std::is_base_of_v<Sampler, T>, "ansatz::sampler<T> needs T derived from ansatz::Sampler");
    return detail::define<T>(ANSATZ_KIND_SAMPLER, name, summary, &detail::SamplerTables<T>::table);
}
template <class T>
detail::ComponentDef loss(const char* name, const char* summary)
{
    static_assert(std::is_base_of_v<Loss, T>, "ansatz::loss<T> needs T derived from ansatz::Loss");
    return detail::define<T>(ANSATZ_KIND_LOSS, name, summary, &detail::LossTables<T>::table);
}
template <class T>
detail::ComponentDef optimizer(const char* name, const char* summary)
{
    static_assert(std::is_base_of_v<Optimizer, T>,
                  "ansatz::optimizer<T> needs T derived from ansatz::Optimizer");
    return detail::define<T>(ANSATZ_KIND_OPTIMIZER, name, summary, &detail::OptimizerTables<T>::table);
}
template <class T>
detail::ComponentDef dataset(const char* name, const char* summary)
{
    static_assert(std::is_base_of_v<Dataset, T>, "ansatz::dataset<T> needs T derived from ansatz::Dataset");
    return detail::define<T>(ANSATZ_KIND_DATASET, name, summary, &detail::DatasetTables<T>::table);
}

template <class T>
detail::ComponentDef evaluator(const char* name, const char* summary)
{
    static_assert(std::is_base_of_v<Evaluator, T>,
                  "ansatz::evaluator<T> needs T derived from ansatz::Evaluator");
    return detail::define<T>(ANSATZ_KIND_EVALUATOR, name, summary, &detail::EvaluatorTables<T>::table);
}

} // namespace ansatz

// Defines the plugin's one exported symbol. NAME, VERSION, LICENSE are string literals; the rest are
// ansatz::model<T>(...), ansatz::sampler<T>(...), ... one per component.
// The descriptor is built on the first call; a describe() that throws makes the entry return NULL,
// which the host refuses, instead of an exception crossing into C.
#define ANSATZ_PLUGIN(NAME, VERSION, LICENSE, ...)                                                           \
    extern "C" ANSATZ_EXPORT const ansatz_plugin_desc* ansatz_plugin_v1(void) noexcept                       \
    {                                                                                                        \
        try                                                                                                  \
        {                                                                                                    \
            static const ::ansatz::detail::PluginBuilder builder(NAME, VERSION, LICENSE, { __VA_ARGS__ });   \
            return builder.descriptor();                                                                     \
        }                                                                                                    \
        catch (...)                                                                                          \
        {                                                                                                    \
            return nullptr;                                                                                  \
        }                                                                                                    \
    }

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

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace ansatz
{

// The ansatz_model_function bits of a model table: a function is there when its slot is not NULL.
inline uint64_t model_functions(const ansatz_model_table* t)
{
    uint64_t f = 0;
    if (!t)
        return f;
    if (const ansatz_energy_table* e = t->energy)
    {
        f |= e->free_energy ? uint64_t{ ANSATZ_FN_FREE_ENERGY } : 0u;
        f |= e->free_energy_grad ? uint64_t{ ANSATZ_FN_FREE_ENERGY_GRAD } : 0u;
        f |= e->energy_delta ? uint64_t{ ANSATZ_FN_ENERGY_DELTA } : 0u;
        // 2.1 slots were zeroed reserved room in 2.0 tables, so they read as absent there.
        f |= e->free_energy_grad_weighted ? uint64_t{ ANSATZ_FN_WEIGHTED_GRAD } : 0u;
        // 2.2 slots, likewise zero in 2.0 and 2.1 tables.
        if (e->local_begin && e->local_commit && e->local_end && e->energy_delta)
            f |= ANSATZ_FN_LOCAL_MOVES;
        f |= e->free_energy_grad_state ? uint64_t{ ANSATZ_FN_STATE_GRAD } : 0u;
        // 2.4, zero in older tables; only with the session it runs in.
        if (e->local_step && (f & ANSATZ_FN_LOCAL_MOVES))
            f |= ANSATZ_FN_LOCAL_STEP;
    }
    const ansatz_conditionals_table* c = t->conditionals;
    const bool conditionals = c && c->block_size && c->conditional;
    if (conditionals)
    {
        f |= ANSATZ_FN_CONDITIONAL;
        f |= c->block_free_energy ? uint64_t{ ANSATZ_FN_BLOCK_FREE_ENERGY } : 0u;
    }
    // TEMPERED: tempered_free_energy and base_log_partition, and tempered_conditional when the model has
    // conditionals (a model without them, an Ising model, has no conditional to temper).
    if (t->energy && t->energy->tempered_free_energy && t->energy->base_log_partition &&
        (!conditionals || c->tempered_conditional))
        f |= ANSATZ_FN_TEMPERED;
    if (const ansatz_latent_table* l = t->latent; l && l->latent_size && l->encode && l->encode_backward &&
                                                  l->decode_log_likelihood && l->decode_backward &&
                                                  l->decode_mean)
        f |= ANSATZ_FN_LATENT;
    return f;
}

// "energy_delta, conditional": the names of model functions, for messages.
inline std::string model_function_names(uint64_t functions)
{
    static const std::pair<uint64_t, const char*> names[] = {
        { ANSATZ_FN_FREE_ENERGY, "free_energy" },
        { ANSATZ_FN_FREE_ENERGY_GRAD, "free_energy_grad" },
        { ANSATZ_FN_ENERGY_DELTA, "energy_delta" },
        { ANSATZ_FN_CONDITIONAL, "conditional" },
        { ANSATZ_FN_LATENT, "latent" },
        { ANSATZ_FN_TEMPERED, "tempered_free_energy + base_log_partition + "
                              "tempered_conditional" },
        { ANSATZ_FN_BLOCK_FREE_ENERGY, "block_free_energy" },
        { ANSATZ_FN_WEIGHTED_GRAD, "free_energy_grad_weighted" },
        { ANSATZ_FN_LOCAL_MOVES, "local_begin + local_commit + local_end" },
        { ANSATZ_FN_STATE_GRAD, "free_energy_grad_state" },
        { ANSATZ_FN_LOCAL_STEP, "local_step" }
    };
    std::string out;
    for (const auto& [bit, name] : names)
        if (functions & bit)
            out += (out.empty() ? "" : ", ") + std::string(name);
    return out.empty() ? "none" : out;
}

// A call on chains needs one stream per row (abi.h).
// A model's domain as messages name it: "binary {0, 1}", "spin {-1, +1}", "real", "K categories".
inline std::string domain_name(const ansatz_sample_info& info)
{
    switch (info.domain)
    {
    case ANSATZ_DOMAIN_BINARY:
        return "binary {0, 1}";
    case ANSATZ_DOMAIN_SPIN:
        return "spin {-1, +1}";
    case ANSATZ_DOMAIN_REAL:
        return "real";
    case ANSATZ_DOMAIN_CATEGORICAL:
        return std::to_string(info.categories) + " categories";
    default:
        return "unknown (" + std::to_string(info.domain) + ")";
    }
}

// The box {low, high} of a sample info (2.5): {-inf, +inf} when both are 0, as a plugin before 2.5
// leaves them (its reserved room), or for a domain other than REAL.
inline std::pair<double, double> sample_bounds(const ansatz_sample_info& info)
{
    if (info.domain != ANSATZ_DOMAIN_REAL || (info.low == 0.0 && info.high == 0.0))
        return { -HUGE_VAL, HUGE_VAL };
    return { info.low, info.high };
}

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
    // The ansatz_model_function bits whose slots the model fills (a NULL slot is absent).
    uint64_t functions() const { return model_functions(h_.table); }
    bool has(ansatz_model_function f) const { return (functions() & f) != 0; }
    bool has_energy() const { return has(ANSATZ_FN_FREE_ENERGY); }
    bool has_conditionals() const { return has(ANSATZ_FN_CONDITIONAL); }
    bool has_latent() const { return has(ANSATZ_FN_LATENT); }

    // The shape (rank -1: from the data) and domain of its samples.
    ansatz_sample_info sample_info() const
    {
        ansatz_sample_info info{};
        info.struct_size = sizeof(ansatz_sample_info);
        info.rank = -1;
        if (h_.table->sample_info)
        {
            ansatz_status st{};
            check(h_.table->sample_info(h_.self, &info, &st), st);
        }
        return info;
    }

    // The box {low, high} a REAL model's variables lie in (2.5): {-inf, +inf} when it states none.
    std::pair<double, double> bounds() const { return sample_bounds(sample_info()); }

    void setup(const std::vector<int64_t>& sample_shape, Rng& rng) const
    {
        ansatz_status st{};
        check(h_.table->setup(h_.self, sample_shape.data(), static_cast<int32_t>(sample_shape.size()),
                              &rng.state(), &st),
              st);
    }

    std::vector<ansatz_named_tensor> parameters() const
    {
        ansatz_status st{};
        const int32_t n = h_.table->parameters(h_.self, nullptr, 0, &st);
        if (n < 0)
            check(st.code ? st.code : ANSATZ_STATUS_FAILURE, st);
        std::vector<ansatz_named_tensor> out(static_cast<size_t>(n));
        if (h_.table->parameters(h_.self, out.data(), n, &st) != n)
            throw Error("the model gave another count of parameters the second time");
        return out;
    }

    // Say that the parameters were just written through the views of parameters() (abi.h 2.3: whoever
    // writes them does so before the model's next call). Nothing for a model without the slot.
    void parameters_changed() const
    {
        if (!h_.table->parameters_changed)
            return;
        ansatz_status st{};
        check(h_.table->parameters_changed(h_.self, &st), st);
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
        check(slot(energy().free_energy, "free_energy")(h_.self, &v, &out, &st), st);
    }
    // grads[k] += scale * sum_n dF(v[n])/dtheta_k; with out, also out[n] = F(v[n]).
    void free_energy_grad(const ansatz_tensor& v, float scale, ansatz_tensor* grads, int32_t n_grads,
                          ansatz_tensor* out = nullptr) const
    {
        ansatz_status st{};
        check(
            slot(energy().free_energy_grad, "free_energy_grad")(h_.self, &v, scale, grads, n_grads, out, &st),
            st);
    }
    // out[n] = F(v[n] with unit sites[n] set to new_values[n]) - F(v[n]).
    void energy_delta(const ansatz_tensor& v, const int64_t* sites, const float* new_values,
                      ansatz_tensor& out) const
    {
        ansatz_status st = fresh_status(); // once per proposal step of Metropolis-Hastings
        check(slot(energy().energy_delta, "energy_delta")(h_.self, &v, sites, new_values, &out, &st), st);
    }

    // grads[k] += sum_n weights[n] * dF(v[n])/dtheta_k; with out, also out[n] = F(v[n]).
    void free_energy_grad_weighted(const ansatz_tensor& v, const float* weights, ansatz_tensor* grads,
                                   int32_t n_grads, ansatz_tensor* out = nullptr) const
    {
        ansatz_status st{};
        check(slot(energy().free_energy_grad_weighted, "free_energy_grad_weighted")(h_.self, &v, weights,
                                                                                    grads, n_grads, out, &st),
              st);
    }

    // ---- LOCAL_MOVES (abi.h: the session's call order). Prefer LocalSession, which ends it.
    // Opens a session on the chains v {N, D} at inverse temperatures beta {N} (nullptr: 1).
    void local_begin(const ansatz_tensor& v, const double* beta = nullptr) const
    {
        ansatz_status st{};
        check(slot(energy().local_begin, "local_begin")(h_.self, &v, beta, &st), st);
    }
    // The accepted rows of the latest energy_delta now hold its new values; previous_values {N} are
    // what they held before, accepted {N} is 0 or 1 per row.
    void local_commit(const ansatz_tensor& v, const int64_t* sites, const float* previous_values,
                      const uint8_t* accepted) const
    {
        ansatz_status st = fresh_status(); // once per proposal step of Metropolis-Hastings
        check(slot(energy().local_commit, "local_commit")(h_.self, &v, sites, previous_values, accepted, &st),
              st);
    }
    void local_end() const
    {
        ansatz_status st{};
        check(slot(energy().local_end, "local_end")(h_.self, &st), st);
    }
    // ---- LOCAL_STEP (2.4): `rounds` rounds of energy_delta, accept when uniforms[n, t] < exp(min(0,
    // -delta)), write the accepted value into v and commit, in one call. sites, uniforms, accepted
    // {N, rounds} (chain-major); new_values {N, rounds}, or nullptr for flips of a two-valued domain (abi.h).
    void local_step(const ansatz_tensor& v, int64_t rounds, const int64_t* sites, const float* new_values,
                    const float* uniforms, uint8_t* accepted) const
    {
        ansatz_status st = fresh_status(); // once per proposal step of Metropolis-Hastings
        check(slot(energy().local_step, "local_step")(h_.self, &v, rounds, sites, new_values, uniforms,
                                                      accepted, &st),
              st);
    }

    // ---- STATE_GRAD: out[n, i] = dF(v[n]) / dv[n, i]; v and out {N, D}, a real-domain model.
    void free_energy_grad_state(const ansatz_tensor& v, ansatz_tensor& out) const
    {
        ansatz_status st{};
        check(slot(energy().free_energy_grad_state, "free_energy_grad_state")(h_.self, &v, &out, &st), st);
    }

    // ---- TEMPERED (abi.h: E_beta,phi = E0 + beta E1 - phi . v)
    // out[n] = F_beta[n],phi(v[n]), out FLOAT64 {N}; field {D} or nullptr.
    void tempered_free_energy(const ansatz_tensor& v, const double* beta, const ansatz_tensor* field,
                              ansatz_tensor& out) const
    {
        ansatz_status st{};
        check(
            slot(energy().tempered_free_energy, "tempered_free_energy")(h_.self, &v, beta, field, &out, &st),
            st);
    }
    // log Z at beta = 0 with the field.
    double base_log_partition(const ansatz_tensor* field) const
    {
        double out = 0;
        ansatz_status st{};
        check(slot(energy().base_log_partition, "base_log_partition")(h_.self, field, &out, &st), st);
        return out;
    }
    void tempered_conditional(ansatz_block block, const ansatz_tensor& given, const double* beta,
                              const ansatz_tensor* field, ansatz_tensor& mean, ansatz_tensor* sample,
                              Streams rngs = {}) const
    {
        if (sample)
            require_streams(rngs, given);
        ansatz_status st{};
        check(slot(conditionals().tempered_conditional,
                   "tempered_conditional")(h_.self, block, &given, beta, field, &mean, sample,
                                           rngs.empty() ? nullptr : c_states(rngs), &st),
              st);
    }
    // out[n] = -log sum_other exp(-E(states[n], other)), out FLOAT64 {N}.
    void block_free_energy(ansatz_block block, const ansatz_tensor& states, ansatz_tensor& out) const
    {
        ansatz_status st{};
        check(slot(conditionals().block_free_energy, "block_free_energy")(h_.self, block, &states, &out, &st),
              st);
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

    // ---- LATENT (abi.h, ansatz_latent_table; the prior is N(0, I))
    // L, the number of latent units.
    int64_t latent_size() const
    {
        const int64_t l = latent().latent_size(h_.self);
        if (l < 0)
            throw Error("the model's latent_size failed");
        return l;
    }
    // mu[n], log_var[n] of Q(h | x[n]); x {N, D}, mu and log_var {N, L}.
    void encode(const ansatz_tensor& x, ansatz_tensor& mu, ansatz_tensor& log_var) const
    {
        ansatz_status st{};
        check(latent().encode(h_.self, &x, &mu, &log_var, &st), st);
    }
    // grads += scale * sum_n (d_mu[n] . dmu/dtheta + d_log_var[n] . dlog_var/dtheta).
    void encode_backward(const ansatz_tensor& x, const ansatz_tensor& d_mu, const ansatz_tensor& d_log_var,
                         float scale, ansatz_tensor* grads, int32_t n_grads) const
    {
        ansatz_status st{};
        check(latent().encode_backward(h_.self, &x, &d_mu, &d_log_var, scale, grads, n_grads, &st), st);
    }
    // out[n] = log p(x[n] | h[n]); h {N, L}, x {N, D}, out {N}.
    void decode_log_likelihood(const ansatz_tensor& h, const ansatz_tensor& x, ansatz_tensor& out) const
    {
        ansatz_status st{};
        check(latent().decode_log_likelihood(h_.self, &h, &x, &out, &st), st);
    }
    // grads += scale * sum_n dlog p(x[n] | h[n])/dtheta; d_h (optional) = scale * dlog p/dh.
    void decode_backward(const ansatz_tensor& h, const ansatz_tensor& x, float scale, ansatz_tensor* d_h,
                         ansatz_tensor* grads, int32_t n_grads) const
    {
        ansatz_status st{};
        check(latent().decode_backward(h_.self, &h, &x, scale, d_h, grads, n_grads, &st), st);
    }
    // x_mean[n] = E[x | h[n]].
    void decode_mean(const ansatz_tensor& h, ansatz_tensor& x_mean) const
    {
        ansatz_status st{};
        check(latent().decode_mean(h_.self, &h, &x_mean, &st), st);
    }
    // Whether the model has the 2.2 slot itself (decode_backward_weighted works either way).
    bool has_decode_backward_weighted() const
    {
        return has_latent() && h_.table->latent->decode_backward_weighted != nullptr;
    }
    // grads += sum_n weights[n] * dlog p(x[n] | h[n])/dtheta; d_h (optional)[n] = weights[n] * dlog p/dh[n];
    // out (optional)[n] = log p(x[n] | h[n]). A model without the 2.2 slot gets decode_log_likelihood (for
    // out) and one decode_backward per run of consecutive rows with equal weights.
    void decode_backward_weighted(const ansatz_tensor& h, const ansatz_tensor& x, const float* weights,
                                  ansatz_tensor* d_h, ansatz_tensor* grads, int32_t n_grads,
                                  ansatz_tensor* out = nullptr) const
    {
        ansatz_status st{};
        if (has_decode_backward_weighted())
        {
            check(latent().decode_backward_weighted(h_.self, &h, &x, weights, d_h, grads, n_grads, out, &st),
                  st);
            return;
        }
        if (out)
            decode_log_likelihood(h, x, *out);
        if (h.rank != 2 || x.rank != 2 || h.shape[0] != x.shape[0] || (d_h && d_h->rank != 2))
            throw Error("decode_backward_weighted: h " + shape_string(h) + " and x " + shape_string(x) +
                        " are not batches of the same rows");
        const int64_t rows = h.shape[0];
        const auto rows_of = [](const ansatz_tensor& t, int64_t first, int64_t count) {
            ansatz_tensor v = t;
            v.data =
                static_cast<char*>(t.data) + first * t.shape[1] * static_cast<int64_t>(dtype_size(t.dtype));
            v.shape[0] = count;
            return v;
        };
        for (int64_t first = 0; first < rows;)
        {
            int64_t end = first + 1;
            while (end < rows && weights[end] == weights[first])
                ++end;
            const ansatz_tensor hr = rows_of(h, first, end - first), xr = rows_of(x, first, end - first);
            ansatz_tensor dr;
            if (d_h)
                dr = rows_of(*d_h, first, end - first);
            decode_backward(hr, xr, weights[first], d_h ? &dr : nullptr, grads, n_grads);
            first = end;
        }
    }

private:
    const ansatz_latent_table& latent() const
    {
        if (!has_latent())
            throw Error("the model has no latent functions (encode, decode, ...)");
        return *h_.table->latent;
    }
    const ansatz_energy_table& energy() const
    {
        if (!h_.table->energy)
            throw Error("the model has no energy functions");
        return *h_.table->energy;
    }
    const ansatz_conditionals_table& conditionals() const
    {
        if (!has_conditionals())
            throw Error("the model has no conditionals");
        return *h_.table->conditionals;
    }

    template <class F>
    static F slot(F f, const char* name)
    {
        if (!f)
            throw Error(std::string("the model has no ") + name + " function");
        return f;
    }

    ansatz_model_handle h_{};
};

// A local-move session (abi.h, LOCAL_MOVES) that ends when it goes out of scope, also when a call in
// it throws:
//     ansatz::LocalSession session(model, chains, beta);     // local_begin
//     ... model.energy_delta(chains, ...); write accepted values; session.commit(...) ...
//                                                             // local_end in the destructor
class LocalSession
{
public:
    LocalSession(const ModelRef& model, const ansatz_tensor& v, const double* beta = nullptr) : model_(model)
    {
        model_.local_begin(v, beta);
        open_ = true;
    }
    ~LocalSession()
    {
        if (!open_)
            return;
        try
        {
            model_.local_end();
        }
        catch (...) // a destructor does not throw; end() reports a failure to close
        {
        }
    }
    LocalSession(const LocalSession&) = delete;
    LocalSession& operator=(const LocalSession&) = delete;

    void commit(const ansatz_tensor& v, const int64_t* sites, const float* previous_values,
                const uint8_t* accepted) const
    {
        model_.local_commit(v, sites, previous_values, accepted);
    }

    // Fused rounds (LOCAL_STEP): see ModelRef::local_step.
    void step(const ansatz_tensor& v, int64_t rounds, const int64_t* sites, const float* new_values,
              const float* uniforms, uint8_t* accepted) const
    {
        model_.local_step(v, rounds, sites, new_values, uniforms, accepted);
    }
    // Closes the session now (and reports a failure); the destructor then does nothing.
    void end()
    {
        open_ = false;
        model_.local_end();
    }

private:
    ModelRef model_;
    bool open_ = false;
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
    // 2.2: whether it has advance_tempered (it may still refuse a model it cannot temper).
    bool can_temper() const { return h_.table->advance_tempered != nullptr; }
    // Advances row n at inverse temperature beta[n] (abi.h: advance_tempered); beta {N}.
    void advance_tempered(ansatz_tensor& chains, int32_t steps, const double* beta, Streams rngs) const
    {
        if (!can_temper())
            throw Error("the sampler cannot temper (it has no advance_tempered)");
        require_streams(rngs, chains);
        ansatz_status st{};
        check(h_.table->advance_tempered(h_.self, &chains, steps, beta, c_states(rngs), &st), st);
    }
    // Asks whether advance_tempered will work on the bound model: a call on 0 rows, which throws the
    // sampler's refusal (InputError) when it will not.
    void require_tempering(int64_t sample_size) const
    {
        if (!can_temper())
            throw InputError("the sampler cannot temper (it has no advance_tempered)");
        ansatz_tensor none = make_view(static_cast<float*>(nullptr), { 0, sample_size });
        ansatz_status st{};
        check(h_.table->advance_tempered(h_.self, &none, 1, nullptr, nullptr, &st), st);
    }
    // Its diagnostics since the last call, into a host's sink.
    void metrics(const ansatz_metrics& sink) const
    {
        if (!h_.table->metrics)
            return;
        ansatz_status st{};
        check(h_.table->metrics(h_.self, &sink, &st), st);
    }

private:
    ansatz_sampler_handle h_{};
};

// The names of a dataset's label values (abi.h 2.2, ansatz_dataset_info.label_names): name k of label
// value k; empty when the dataset gives none. An empty item is a value without a name.
inline std::vector<std::string> label_names(const ansatz_dataset_info& info)
{
    std::vector<std::string> out;
    if (!info.label_names)
        return out;
    std::string item;
    for (const char* c = info.label_names;; ++c)
    {
        if (*c == '|' || *c == '\0')
        {
            out.push_back(item);
            item.clear();
            if (*c == '\0')
                break;
        }
        else
            item += *c;
    }
    return out;
}

// A dataset as another component sees it (an evaluator's reference data, say).
class DatasetRef
{
public:
    DatasetRef() = default;
    DatasetRef(const ansatz_dataset_table* table, void* self) : table_(table), self_(self) {}

    bool valid() const { return table_ != nullptr; }
    ansatz_dataset_info info() const
    {
        ansatz_dataset_info out{};
        out.struct_size = sizeof(ansatz_dataset_info);
        ansatz_status st{};
        check(table_->info(self_, &out, &st), st);
        return out;
    }
    // out {n, D} FLOAT32: the samples `indices`; labels (n floats) may be nullptr.
    void read(const int64_t* indices, int64_t n, ansatz_tensor& out, float* labels, Rng& rng) const
    {
        ansatz_status st{};
        check(table_->read(self_, indices, n, &out, labels, &rng.state(), &st), st);
    }

private:
    const ansatz_dataset_table* table_ = nullptr;
    void* self_ = nullptr;
};

// The model, sampler or dataset a COMPONENT configuration key names (Config::component).
inline ModelRef as_model(const ansatz_handle& h)
{
    if (h.kind != ANSATZ_KIND_MODEL || !h.table)
        throw Error("a configuration key names a component that is not a model");
    return ModelRef(ansatz_model_handle{ static_cast<const ansatz_model_table*>(h.table), h.self });
}
inline SamplerRef as_sampler(const ansatz_handle& h)
{
    if (h.kind != ANSATZ_KIND_SAMPLER || !h.table)
        throw Error("a configuration key names a component that is not a sampler");
    return SamplerRef(ansatz_sampler_handle{ static_cast<const ansatz_sampler_table*>(h.table), h.self });
}
inline DatasetRef as_dataset(const ansatz_handle& h)
{
    if (h.kind != ANSATZ_KIND_DATASET || !h.table)
        throw Error("a configuration key names a component that is not a dataset");
    return DatasetRef(static_cast<const ansatz_dataset_table*>(h.table), h.self);
}

// Reports named scalars to the host's sink, which copies each name (abi.h: metrics).
class Metrics
{
public:
    explicit Metrics(const ansatz_metrics& sink) : sink_(sink) {}
    void add(const std::string& name, double value)
    {
        if (!sink_.add || sink_.add(sink_.context, name.c_str(), value) != 0)
            throw Error("metric '" + name +
                        "' was refused (a name is 1 to 63 letters, digits, '_' or '.', and at most " +
                        std::to_string(ANSATZ_MAX_METRICS) + " are reported per call)");
    }

private:
    const ansatz_metrics& sink_;
};

} // namespace ansatz

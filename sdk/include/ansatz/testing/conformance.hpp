// ansatz/testing/conformance.hpp -- a conformance kit for any model, driven only through its C table.
//
// WHAT THIS FILE PROVIDES
//     Checks that a model agrees with its own definitions (abi.h), for any plugin, in-tree or not:
//     every call goes through ansatz::ModelRef, so the kit sees exactly what a sampler, a loss or the
//     engine sees. No test framework is needed: a check returns a CheckResult when it passed or was
//     skipped, and throws ansatz::testing::ConformanceError (an ansatz::Error) when it failed, with one
//     message naming the check, the parameter or unit, the index, both values and the tolerance.
//     check_model() runs every check and returns a report that lists what passed, failed and was
//     skipped (a check whose model function is absent, a NULL slot, is skipped and says so).
//
//         ansatz::testing::ConformanceOptions options;           // every number the checks use
//         const auto report = ansatz::testing::check_model(model, options);
//         INFO(report.summary());
//         CHECK(report.passed());                                // or report.require(): throws
//
// REQUIRES (of the caller)
//     - The model is set up (ModelRef::setup) for samples of D values: D is options.sample_shape's
//       product when given, else the model's sample_info() shape, else its visible block size.
//     - Nothing else calls the model during a check (abi.h: no component is called concurrently).
// ENSURES
//     - Every parameter the kit changes (the gradient and round-trip checks perturb values in place
//       through the views of parameters()) is restored bit for bit before the check returns, also
//       when it fails. The kit re-reads parameters() before every access, so it relies only on the
//       views living until the model's next call, not until setup.
//     - The same model, options and seed give the same report: every random number comes from
//       ansatz::Rng streams derived from options.seed and the check's name.
//
// WHAT EACH CHECK PROVES (the check's name is what the report and the error message call it)
//     random_state
//         random_state() fills N rows (one stream per row) with values of the model's domain only
//         (binary: exactly 0 or 1, spin: exactly -1 or +1, categorical: an integer in [0, K), real:
//         finite), and a row drawn alone with the stream it had gives the same values bit for bit:
//         a chain's start does not depend on the chains beside it (abi.h, Randomness).
//     parameters
//         parameters() gives float32 host views with valid, unique names (letters, digits, '_', '.',
//         '-'); a second call gives the same names, shapes and values; values written through the
//         views read back from a later call; and, with a free energy, F on fixed states depends only
//         on the parameter values (F after writing, restoring and writing again is bit-equal): no
//         state hides beside the parameters, so a model restored through its views computes alike.
//     energy_delta                                                  (needs energy_delta, free_energy)
//         For N random states of the domain, a random site per row and a new value of the domain
//         (3 rows in 4 a flip, the 4th any value, so "no change" is covered), energy_delta equals
//         F(v with the site set) - F(v) computed with free_energy, within
//         delta_tolerance + 16 float epsilon * (|F(v)| + |F(v')|), and leaves v unchanged.
//     free_energy_grad                                         (needs free_energy_grad, free_energy)
//         On a batch of random domain states, every parameter element (or, for a parameter with more
//         than grad_max_elements, a seeded random subset of that size) has
//             grads[k] = 0.25 + scale * dF/dtheta_k
//         (grads start at 0.25 and scale != 1, so "+=" and the scale are checked), where dF/dtheta_k
//         is the central difference of sum_n F(v[n]) with step grad_step in float32 (the parameter is
//         perturbed in place and restored; the quotient uses the float values actually set). The
//         tolerance is grad_abs_tolerance + grad_rel_tolerance * |fd| + a rounding term
//         16 float epsilon * sum_n |F(v[n])| / (2 step). Also: with `out`, out equals free_energy and
//         the gradient equals the one of a call without `out` (within value_tolerance, relative).
//     conditionals_exact                           (needs conditional and free_energy; D + H small)
//         For a two-valued domain (binary or spin) with D + H <= max_enumerated_units, every visible
//         state v and hidden state h is enumerated; p(v) = exp(-F(v)) / Z exactly (log-sum-exp in
//         double), P(h|v) and P(v|h) are products of the factorised conditional means. Then:
//           - means lie in the domain's range ([0, 1] binary, [-1, 1] spin);
//           - stationarity: one exact block-Gibbs step v -> h -> v' from p(v) gives p again,
//             sum_v p(v) sum_h P(h|v) P(v'|h) = p(v') for every v';
//           - consistency: P(v|h) is Bayes' rule on the joint p(v) P(h|v): for every v and h,
//             p(v) P(h|v) = r(h) P(v|h) with r(h) = sum_v p(v) P(h|v).
//         Both within exact_abs_tolerance + exact_rel_tolerance * value. Together they prove that the
//         conditionals are those of a joint whose v-marginal is exp(-F)/Z, i.e. that block Gibbs on
//         this model samples the distribution its free energy defines. The hidden units' domain is
//         options.hidden_domain (-1: the model's domain).
//     conditional_sampling                                        (needs conditional; two-valued)
//         For each block, sampling_given random given states of the other block, each repeated in
//         sampling_rows_per_given rows with one stream per row: the means of every repeated row equal
//         the means of a call without sampling (value_tolerance), lie in the domain's range, every
//         sample is a value of the domain, the frequency of the high value (1, or +1) of every unit is
//         within sampling_sigmas binomial standard errors (+ 1/R) of the probability the mean gives,
//         and row 0 sampled alone with its stream gives the same row bit for bit.
//     local_moves                              (2.2: needs local_begin/commit/end, free_energy)
//         A session on local_rows random domain states runs local_rounds rounds of: a random site per
//         row and a new value (7 rows in 8 a change of the domain, the 8th any value), energy_delta,
//         a comparison with F_beta(v') - F_beta(v), a random half of the rows accepted (written into
//         v) and local_commit. The reference is tempered_free_energy(v, beta, no field) with the rows
//         at inverse temperatures {1, 0.5, 0.25, 1.5} when the model has the tempered functions;
//         beta F at those temperatures for a model without conditionals and without a real domain
//         (no hidden units, no E0: abi.h); else F itself, with beta NULL. Tolerance as energy_delta's;
//         energy_delta must not write v; after local_end, energy_delta is again F(v') - F(v).
//         The check runs after many commits, so a cache that drifts or misses a commit fails it.
//     local_step                                                        (2.4: needs local_step)
//         Two sessions on the same local_rows random domain states (beta as in local_moves) run
//         local_rounds rounds with the same proposals (a random site per row, a change of the domain)
//         and the same uniforms: one with energy_delta, the acceptance uniforms[n] < exp(min(0,
//         -delta)) (ansatz::exp), the write and local_commit; the other with local_step, one round per
//         call. The accepted flags and the states must agree bit for bit after every round (abi.h:
//         either path gives the same chain); for a two-valued domain also all rounds in one call with
//         no new values (flips). Some proposals of each kind (accepted, rejected) must occur.
//     state_grad                                         (2.2: needs free_energy_grad_state, free_energy)
//         For a model of the real domain, on grad_rows random states, every element (or a seeded
//         subset of grad_max_elements) of dF/dv equals the central difference of F with step
//         grad_step in float32, within grad_abs_tolerance + grad_rel_tolerance |fd| + 16 float epsilon
//         |F| / step; v is not written. Skipped for other domains (the call is then defined to refuse).
//     latent_rows                                                    (needs the latent functions)
//         latent_size() >= 1; on latent_check_rows random rows x of the domain and h ~ N(0, I), encode,
//         decode_log_likelihood and decode_mean give finite values (decode_mean in [0, 1] for a binary
//         domain, [-1, 1] for spins), write every output element, leave their inputs unchanged, and
//         rows 0 and N - 1 computed alone agree with the batch's (value_tolerance, relative): a row's
//         result does not depend on the rows beside it (abi.h, ansatz_latent_table).
//     latent_encode_backward                                         (needs the latent functions)
//         With random a, b {N, L} as d_mu and d_log_var, grads (starting at 0.25, scale grad_scale)
//         equal 0.25 + scale * dS/dtheta_k for S = sum_n a[n] . mu(x[n]) + b[n] . log_var(x[n]), the
//         central difference of encode's outputs (as free_energy_grad: step, subset, tolerances). The
//         decoder's parameters, on which S does not depend, keep 0.25.
//     latent_decode_backward                                         (needs the latent functions)
//         With S = sum_n log p(x[n] | h[n]) from decode_log_likelihood: grads = 0.25 + scale *
//         dS/dtheta_k for every checked parameter element (the encoder's keep 0.25), and d_h (filled
//         with NaN before the call: it is written, not added) = scale * dS/dh[n] for every element of
//         h, both against central differences.
//     latent_decode_weighted                                  (needs the 2.2 decode_backward_weighted)
//         With weights of both signs and a zero, decode_backward_weighted's grads, d_h and out agree
//         with one decode_backward call per row at scale weights[n] and with decode_log_likelihood
//         (latent_agree_tolerance, relative to max(1, |value|)).
// The 2.2 checks appear in a report only for a model that has their functions, so the report of a model
// built for ABI 2.0 or 2.1 lists exactly the checks it always did.
//
// Statistical checks use a fixed seed (options.seed), so a report is reproducible; with the defaults
// each of the conditional_sampling comparisons of a correct model fails by chance with probability
// about 6e-7 (5 sigma, normal approximation), about 1e-4 for all of a 100 x 64 RBM's units together.
#pragma once

#include "ansatz/abi.h"
#include "ansatz/error.hpp"
#include "ansatz/math.hpp"
#include "ansatz/random.hpp"
#include "ansatz/refs.hpp"
#include "ansatz/tensor.hpp"

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ansatz::testing
{

// Every number the checks use; the defaults suit float32 models of O(1) parameters.
struct ConformanceOptions
{
    uint64_t seed = 20251127;          // every stream of the kit derives from it
    std::vector<int64_t> sample_shape; // empty: sample_info(), else the visible block size
    int32_t hidden_domain = -1;        // ansatz_domain of the hidden block; -1: the model's domain

    // random_state
    int64_t random_state_rows = 256;

    // energy_delta
    int64_t delta_rows = 256;
    double delta_tolerance = 1e-4; // absolute, + 16 float epsilon * (|F(v)| + |F(v')|)

    // free_energy_grad
    int64_t grad_rows = 4;   // the batch the gradient is summed over
    float grad_scale = 0.7f; // the scale argument (!= 1 on purpose)
    double grad_step = 1e-2; // central-difference step, in float32
    double grad_abs_tolerance = 1e-3;
    double grad_rel_tolerance = 1e-2;
    int64_t grad_max_elements = 64; // per parameter; a larger one is checked on a random subset; 0: all
    double value_tolerance = 1e-5;  // relative (and absolute near 0): values that should agree exactly

    // conditionals_exact
    int64_t max_enumerated_units = 16; // D + H at most this: 2^(D+H) joint states
    double exact_abs_tolerance = 1e-6;
    double exact_rel_tolerance = 1e-3;

    // local_moves
    int64_t local_rows = 16;    // chains in the session
    int64_t local_rounds = 300; // proposals per chain, each compared and half of them committed

    // latent_rows, latent_encode_backward, latent_decode_backward, latent_decode_weighted
    int64_t latent_check_rows = 16;       // rows of latent_rows
    double latent_agree_tolerance = 1e-4; // weighted pass against per-row calls (float sums in another order)

    // conditional_sampling
    int64_t sampling_given = 4;             // given states per block
    int64_t sampling_rows_per_given = 5000; // R: rows (streams) per given state
    double sampling_sigmas = 5.0;
};

enum class Outcome
{
    passed,
    failed,
    skipped,
};

inline const char* outcome_name(Outcome o)
{
    return o == Outcome::passed ? "passed" : o == Outcome::failed ? "FAILED" : "skipped";
}

struct CheckResult
{
    std::string check; // "energy_delta", ...
    Outcome outcome = Outcome::passed;
    std::string detail; // passed: what was checked and the worst deviation; skipped: why; failed: the message
};

// A failed check: what() is "conformance check 'NAME' failed: ..." and check() is NAME.
class ConformanceError : public Error
{
public:
    ConformanceError(std::string check, const std::string& message)
        : Error("conformance check '" + check + "' failed: " + message), check_(std::move(check))
    {
    }
    // The error a report recorded: `what` is already the whole message.
    static ConformanceError recorded(std::string check, const std::string& what)
    {
        return ConformanceError(std::move(check), what, 0);
    }
    const std::string& check() const noexcept { return check_; }

private:
    ConformanceError(std::string check, const std::string& what, int) : Error(what), check_(std::move(check))
    {
    }
    std::string check_;
};

struct ConformanceReport
{
    std::vector<CheckResult> checks;

    // Nothing failed (skipped checks do not fail a report).
    bool passed() const
    {
        return std::none_of(checks.begin(), checks.end(),
                            [](const CheckResult& c) { return c.outcome == Outcome::failed; });
    }
    const CheckResult* find(std::string_view check) const
    {
        for (const CheckResult& c : checks)
            if (c.check == check)
                return &c;
        return nullptr;
    }
    Outcome outcome(std::string_view check) const
    {
        const CheckResult* c = find(check);
        if (!c)
            throw Error("the conformance report has no check named '" + std::string(check) + "'");
        return c->outcome;
    }
    std::vector<std::string> failed() const { return names(Outcome::failed); }
    std::vector<std::string> skipped() const { return names(Outcome::skipped); }
    // One line per check: "energy_delta: passed: 256 changes ...".
    std::string summary() const
    {
        std::string out;
        for (const CheckResult& c : checks)
            out += c.check + ": " + outcome_name(c.outcome) + ": " + c.detail + "\n";
        return out;
    }
    // Throws the first failure as a ConformanceError.
    void require() const
    {
        for (const CheckResult& c : checks)
            if (c.outcome == Outcome::failed)
                throw ConformanceError::recorded(c.check, c.detail);
    }

private:
    std::vector<std::string> names(Outcome o) const
    {
        std::vector<std::string> out;
        for (const CheckResult& c : checks)
            if (c.outcome == o)
                out.push_back(c.check);
        return out;
    }
};

// ---- the checks, one by one (each: a CheckResult when passed or skipped, ConformanceError if failed)

inline CheckResult check_random_state(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_parameters(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_energy_delta(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_free_energy_grad(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_conditionals_exact(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_conditional_sampling(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_local_moves(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_local_step(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_state_grad(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_latent_rows(const ModelRef& model, const ConformanceOptions& options = {});
inline CheckResult check_latent_encode_backward(const ModelRef& model,
                                                const ConformanceOptions& options = {});
inline CheckResult check_latent_decode_backward(const ModelRef& model,
                                                const ConformanceOptions& options = {});
inline CheckResult check_latent_decode_weighted(const ModelRef& model,
                                                const ConformanceOptions& options = {});

// Runs every check above, in that order; a failure of one does not stop the others. The latent_*
// checks run (and are listed) only for a model with the latent functions.
inline ConformanceReport check_model(const ModelRef& model, const ConformanceOptions& options = {});

// ================================================================ implementation

namespace detail::conformance
{

inline std::string num(double x)
{
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.9g", x);
    return buffer;
}

// The values a domain takes, as the kit draws and enumerates them.
struct Domain
{
    int32_t kind = ANSATZ_DOMAIN_BINARY;
    int32_t categories = 0;

    bool two_valued() const { return kind == ANSATZ_DOMAIN_BINARY || kind == ANSATZ_DOMAIN_SPIN; }
    float low() const { return kind == ANSATZ_DOMAIN_SPIN ? -1.0f : 0.0f; }
    float high() const { return 1.0f; }
    std::string name() const
    {
        switch (kind)
        {
        case ANSATZ_DOMAIN_BINARY:
            return "binary {0, 1}";
        case ANSATZ_DOMAIN_SPIN:
            return "spin {-1, +1}";
        case ANSATZ_DOMAIN_REAL:
            return "real";
        case ANSATZ_DOMAIN_CATEGORICAL:
            return "categorical {0, ..., " + std::to_string(categories - 1) + "}";
        default:
            return "unknown domain " + std::to_string(kind);
        }
    }
    bool contains(float x) const
    {
        switch (kind)
        {
        case ANSATZ_DOMAIN_BINARY:
            return x == 0.0f || x == 1.0f;
        case ANSATZ_DOMAIN_SPIN:
            return x == -1.0f || x == 1.0f;
        case ANSATZ_DOMAIN_REAL:
            return std::isfinite(x);
        case ANSATZ_DOMAIN_CATEGORICAL:
            return x >= 0.0f && x < static_cast<float>(categories) && x == std::floor(x);
        default:
            return false;
        }
    }
    float random(Rng& rng) const
    {
        switch (kind)
        {
        case ANSATZ_DOMAIN_REAL:
            return static_cast<float>(rng.normal());
        case ANSATZ_DOMAIN_CATEGORICAL:
            return static_cast<float>(rng.below(static_cast<uint64_t>(std::max(1, categories))));
        default:
            return rng.uniform() < 0.5f ? low() : high();
        }
    }
    // A value that differs from x (a flip for two values, a move or another category otherwise).
    float change(float x, Rng& rng) const
    {
        switch (kind)
        {
        case ANSATZ_DOMAIN_REAL:
            return x + static_cast<float>(rng.normal());
        case ANSATZ_DOMAIN_CATEGORICAL:
            if (categories < 2)
                return x;
            return static_cast<float>(
                (static_cast<int64_t>(x) + 1 +
                 static_cast<int64_t>(rng.below(static_cast<uint64_t>(categories - 1)))) %
                categories);
        default:
            return x == high() ? low() : high();
        }
    }
    // The range of a conditional mean.
    double mean_low() const { return low(); }
    double mean_high() const { return high(); }
    // P(unit = high) from its mean.
    double p_high(double mean) const { return kind == ANSATZ_DOMAIN_SPIN ? (1.0 + mean) / 2.0 : mean; }
};

inline Domain domain_of(const ModelRef& model)
{
    const ansatz_sample_info info = model.sample_info();
    return Domain{ info.domain, info.categories };
}

// The visible size D the model was set up for (see REQUIRES).
inline int64_t sample_size(const ModelRef& model, const ConformanceOptions& options, const std::string& check)
{
    int64_t d = 1;
    if (!options.sample_shape.empty())
    {
        for (int64_t e : options.sample_shape)
            d *= e;
        return d;
    }
    const ansatz_sample_info info = model.sample_info();
    if (info.rank >= 0)
    {
        for (int32_t i = 0; i < info.rank; ++i)
            d *= info.shape[i];
        return d;
    }
    if (model.has(ANSATZ_FN_CONDITIONAL))
    {
        const int64_t v = model.block_size(ANSATZ_BLOCK_VISIBLE);
        if (v >= 0)
            return v;
    }
    throw ConformanceError(check, "the model's sample size is unknown (its sample_info() has rank -1 and it "
                                  "has no visible block size): set ConformanceOptions::sample_shape");
}

// rows x d random values of the domain from rng.
inline std::vector<float> random_rows(const Domain& domain, int64_t rows, int64_t d, Rng& rng)
{
    std::vector<float> v(static_cast<size_t>(rows * d));
    for (float& x : v)
        x = domain.random(rng);
    return v;
}

// Every state of `units` two-valued units: row k, unit i = high if bit i of k is set (as math.hpp).
inline std::vector<float> all_states(const Domain& domain, int64_t units)
{
    const int64_t count = int64_t(1) << units;
    std::vector<float> out(static_cast<size_t>(count * units));
    for (int64_t k = 0; k < count; ++k)
        for (int64_t i = 0; i < units; ++i)
            out[static_cast<size_t>(k * units + i)] = ((k >> i) & 1) ? domain.high() : domain.low();
    return out;
}

inline std::vector<float> free_energy(const ModelRef& model, std::vector<float>& v, int64_t rows, int64_t d)
{
    std::vector<float> out(static_cast<size_t>(rows));
    ansatz_tensor vt = make_view(v.data(), { rows, d });
    ansatz_tensor ot = make_view(out.data(), { rows });
    model.free_energy(vt, ot);
    return out;
}

inline double sum_free_energy(const ModelRef& model, std::vector<float>& v, int64_t rows, int64_t d)
{
    double s = 0;
    for (float f : free_energy(model, v, rows, d))
        s += f;
    return s;
}

// "[1, 3]": the multi-index of flat element k of a view.
inline std::string index_string(const ansatz_tensor& t, int64_t k)
{
    std::vector<int64_t> idx(static_cast<size_t>(std::max(t.rank, 0)));
    for (int32_t i = t.rank - 1; i >= 0; --i)
    {
        const int64_t extent = std::max<int64_t>(1, t.shape[i]);
        idx[static_cast<size_t>(i)] = k % extent;
        k /= extent;
    }
    std::string s = "[";
    for (size_t i = 0; i < idx.size(); ++i)
        s += (i ? ", " : "") + std::to_string(idx[i]);
    return s + "]";
}

// The parameter views, checked to be float32 on the host (what the kit may perturb).
inline std::vector<ansatz_named_tensor> float_parameters(const ModelRef& model, const std::string& check)
{
    std::vector<ansatz_named_tensor> p = model.parameters();
    for (size_t k = 0; k < p.size(); ++k)
    {
        const char* name = p[k].name ? p[k].name : "";
        if (p[k].tensor.dtype != ANSATZ_DTYPE_FLOAT32 || p[k].tensor.device != ANSATZ_DEVICE_HOST)
            throw ConformanceError(check,
                                   "parameter '" + std::string(name) + "' (#" + std::to_string(k) +
                                       ") holds " + dtype_name(p[k].tensor.dtype) +
                                       " elements; a model's parameters are float32 views on the host");
        if (element_count(p[k].tensor) > 0 && !p[k].tensor.data)
            throw ConformanceError(check, "parameter '" + std::string(name) + "' (#" + std::to_string(k) +
                                              ") has elements but no data pointer");
    }
    return p;
}

inline float* element(const ModelRef& model, size_t param, int64_t k)
{
    return static_cast<float*>(model.parameters()[param].tensor.data) + k;
}

// Writes one parameter value through the views and says so (abi.h 2.3: whoever writes the parameters
// calls parameters_changed before the model's next call).
inline void set_element(const ModelRef& model, size_t param, int64_t k, float value)
{
    *element(model, param, k) = value;
    model.parameters_changed();
}

// Restores every parameter value on scope exit (also when a check throws).
class ParameterGuard
{
public:
    explicit ParameterGuard(const ModelRef& model) : model_(model)
    {
        for (const ansatz_named_tensor& p : model.parameters())
        {
            const float* x = static_cast<const float*>(p.tensor.data);
            saved_.emplace_back(x, x + element_count(p.tensor));
        }
    }
    ~ParameterGuard()
    {
        try
        {
            std::vector<ansatz_named_tensor> p = model_.parameters();
            for (size_t k = 0; k < p.size() && k < saved_.size(); ++k)
                std::copy(saved_[k].begin(), saved_[k].end(), static_cast<float*>(p[k].tensor.data));
            model_.parameters_changed();
        }
        catch (...)
        {
        }
    }
    ParameterGuard(const ParameterGuard&) = delete;
    ParameterGuard& operator=(const ParameterGuard&) = delete;
    const std::vector<std::vector<float>>& saved() const { return saved_; }

private:
    ModelRef model_;
    std::vector<std::vector<float>> saved_;
};

// Runs a check: a model call that throws is a failure of this check, naming what the model said.
template <class Body>
CheckResult run(const std::string& check, Body&& body)
{
    try
    {
        return body();
    }
    catch (const ConformanceError&)
    {
        throw;
    }
    catch (const std::exception& e)
    {
        throw ConformanceError(check, std::string("a call of the model failed: ") + e.what());
    }
}

inline CheckResult skipped(const std::string& check, const std::string& why)
{
    return CheckResult{ check, Outcome::skipped, why };
}

inline CheckResult passed(const std::string& check, const std::string& what)
{
    return CheckResult{ check, Outcome::passed, what };
}

inline bool valid_name(const char* name)
{
    if (!name || !*name)
        return false;
    for (const char* c = name; *c; ++c)
        if (!(std::isalnum(static_cast<unsigned char>(*c)) || *c == '_' || *c == '.' || *c == '-'))
            return false;
    return true;
}

inline bool close(double a, double b, double tolerance)
{
    return std::abs(a - b) <= tolerance * std::max(1.0, std::abs(b));
}

} // namespace detail::conformance

// ---------------------------------------------------------------- random_state

inline CheckResult check_random_state(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "random_state";
    return run(check, [&] {
        const Domain domain = domain_of(model);
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(1, options.random_state_rows);
        std::vector<float> out(static_cast<size_t>(n * d), std::numeric_limits<float>::quiet_NaN());
        ansatz_tensor ot = make_view(out.data(), { n, d });
        Rng parent = Rng::stream(options.seed, "conformance.random_state");
        StreamArray rows;
        const Streams streams = rows.split_from(parent, n);
        const std::vector<Rng> before(streams.begin(), streams.end());
        model.random_state(ot, streams);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t i = 0; i < d; ++i)
            {
                const float x = out[static_cast<size_t>(r * d + i)];
                if (!domain.contains(x))
                    throw ConformanceError(check, "row " + std::to_string(r) + ", unit " + std::to_string(i) +
                                                      " is " + num(x) + ", outside the model's domain (" +
                                                      domain.name() + ")");
            }
        // The first and the last row again, each alone with the stream it had.
        for (int64_t r : { int64_t(0), n - 1 })
        {
            std::vector<float> alone(static_cast<size_t>(d), std::numeric_limits<float>::quiet_NaN());
            ansatz_tensor at = make_view(alone.data(), { 1, d });
            Rng copy = before[static_cast<size_t>(r)];
            model.random_state(at, Streams(&copy, 1));
            for (int64_t i = 0; i < d; ++i)
                if (std::memcmp(&alone[static_cast<size_t>(i)], &out[static_cast<size_t>(r * d + i)],
                                sizeof(float)))
                    throw ConformanceError(
                        check, "row " + std::to_string(r) + " drawn alone with its stream has unit " +
                                   std::to_string(i) + " = " + num(alone[static_cast<size_t>(i)]) + ", but " +
                                   num(out[static_cast<size_t>(r * d + i)]) + " among " + std::to_string(n) +
                                   " rows: a row must draw only from its own stream (abi.h, Randomness)");
        }
        return passed(check, std::to_string(n) + " rows of " + std::to_string(d) + " values in the " +
                                 domain.name() + " domain; rows 0 and " + std::to_string(n - 1) +
                                 " drawn alone are bit-equal");
    });
}

// ---------------------------------------------------------------- parameters

inline CheckResult check_parameters(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "parameters";
    return run(check, [&]() -> CheckResult {
        const std::vector<ansatz_named_tensor> first = float_parameters(model, check);
        std::set<std::string> names;
        int64_t values = 0;
        for (size_t k = 0; k < first.size(); ++k)
        {
            const ansatz_tensor& t = first[k].tensor;
            if (!valid_name(first[k].name))
                throw ConformanceError(check, "parameter #" + std::to_string(k) + " has the name '" +
                                                  std::string(first[k].name ? first[k].name : "") +
                                                  "' (a name is letters, digits, '_', '.', '-')");
            if (!names.insert(first[k].name).second)
                throw ConformanceError(check,
                                       "two parameters are named '" + std::string(first[k].name) + "'");
            if (t.rank < 0 || t.rank > ANSATZ_MAX_RANK)
                throw ConformanceError(check, "parameter '" + std::string(first[k].name) + "' has rank " +
                                                  std::to_string(t.rank));
            for (int32_t i = 0; i < t.rank; ++i)
                if (t.shape[i] < 0)
                    throw ConformanceError(check, "parameter '" + std::string(first[k].name) +
                                                      "' has shape " + shape_string(t));
            values += element_count(t);
        }
        if (first.empty())
            return passed(check, "the model has no parameters");

        // The same views, twice.
        const std::vector<ansatz_named_tensor> second = float_parameters(model, check);
        if (second.size() != first.size())
            throw ConformanceError(check, "parameters() gave " + std::to_string(first.size()) +
                                              " views, then " + std::to_string(second.size()));
        for (size_t k = 0; k < first.size(); ++k)
        {
            const std::string name = first[k].name;
            if (std::strcmp(second[k].name ? second[k].name : "", first[k].name) != 0 ||
                shape_string(second[k].tensor) != shape_string(first[k].tensor))
                throw ConformanceError(check, "parameter #" + std::to_string(k) + " was '" + name + "' " +
                                                  shape_string(first[k].tensor) + ", then '" +
                                                  std::string(second[k].name ? second[k].name : "") + "' " +
                                                  shape_string(second[k].tensor));
            const float* a = static_cast<const float*>(first[k].tensor.data);
            const float* b = static_cast<const float*>(second[k].tensor.data);
            for (int64_t i = 0; i < element_count(first[k].tensor); ++i)
                if (std::memcmp(a + i, b + i, sizeof(float)) != 0)
                    throw ConformanceError(check, "parameter '" + name + "' element " +
                                                      index_string(first[k].tensor, i) + " reads " +
                                                      num(a[i]) + ", then " + num(b[i]) +
                                                      " from a second parameters() call");
        }

        ParameterGuard guard(model);
        // F on fixed states, when the model has one: it must depend on the parameter values only.
        const bool has_f = model.has(ANSATZ_FN_FREE_ENERGY);
        const Domain domain = domain_of(model);
        int64_t d = 0;
        std::vector<float> v;
        std::vector<float> f_original;
        Rng rng = Rng::stream(options.seed, "conformance.parameters");
        if (has_f)
        {
            d = sample_size(model, options, check);
            v = random_rows(domain, 8, d, rng);
            f_original = free_energy(model, v, 8, d);
        }
        // A pattern of small changes, written through the views and read back through new ones.
        const auto pattern = [&](size_t k, int64_t i) {
            return guard.saved()[k][static_cast<size_t>(i)] +
                   0.01f * static_cast<float>((i * 7 + static_cast<int64_t>(k) * 3) % 5 - 2);
        };
        const auto write_pattern = [&] {
            for (size_t k = 0; k < first.size(); ++k)
                for (int64_t i = 0; i < element_count(first[k].tensor); ++i)
                    set_element(model, k, i, pattern(k, i));
        };
        const auto read_back = [&](bool patterned, const char* when) {
            const std::vector<ansatz_named_tensor> now = float_parameters(model, check);
            for (size_t k = 0; k < first.size(); ++k)
                for (int64_t i = 0; i < element_count(first[k].tensor); ++i)
                {
                    const float want = patterned ? pattern(k, i) : guard.saved()[k][static_cast<size_t>(i)];
                    const float got = static_cast<const float*>(now[k].tensor.data)[i];
                    if (std::memcmp(&want, &got, sizeof(float)) != 0)
                        throw ConformanceError(check, "parameter '" + std::string(first[k].name) +
                                                          "' element " + index_string(first[k].tensor, i) +
                                                          " was set to " + num(want) + " " + when +
                                                          ", but parameters() reads " + num(got));
                }
        };
        write_pattern();
        read_back(true, "through the views");
        std::vector<float> f_pattern;
        if (has_f)
            f_pattern = free_energy(model, v, 8, d);
        for (size_t k = 0; k < first.size(); ++k)
            for (int64_t i = 0; i < element_count(first[k].tensor); ++i)
                set_element(model, k, i, guard.saved()[k][static_cast<size_t>(i)]);
        read_back(false, "(restored)");
        if (has_f)
        {
            const std::vector<float> f_restored = free_energy(model, v, 8, d);
            write_pattern();
            const std::vector<float> f_again = free_energy(model, v, 8, d);
            for (size_t r = 0; r < 8; ++r)
            {
                if (std::memcmp(&f_restored[r], &f_original[r], sizeof(float)) != 0)
                    throw ConformanceError(check,
                                           "F(v) of row " + std::to_string(r) + " was " + num(f_original[r]) +
                                               ", and " + num(f_restored[r]) +
                                               " after the parameters were changed and restored: the model "
                                               "has state beyond its parameters");
                if (std::memcmp(&f_again[r], &f_pattern[r], sizeof(float)) != 0)
                    throw ConformanceError(check,
                                           "F(v) of row " + std::to_string(r) + " was " + num(f_pattern[r]) +
                                               " with a set of parameter values, and " + num(f_again[r]) +
                                               " with the same values set again: the model has state "
                                               "beyond its parameters");
            }
        }
        return passed(check, std::to_string(first.size()) + " float32 parameters, " + std::to_string(values) +
                                 " values: read twice alike, set values read back" +
                                 (has_f ? ", F on 8 states depends on the values only" : ""));
    });
}

// ---------------------------------------------------------------- energy_delta

inline CheckResult check_energy_delta(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "energy_delta";
    if (!model.has(ANSATZ_FN_ENERGY_DELTA))
        return skipped(check, "the model has no energy_delta");
    if (!model.has(ANSATZ_FN_FREE_ENERGY))
        return skipped(check, "the model has energy_delta but no free_energy to compare it with");
    return run(check, [&] {
        const Domain domain = domain_of(model);
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(1, options.delta_rows);
        Rng rng = Rng::stream(options.seed, "conformance.energy_delta");
        std::vector<float> v = random_rows(domain, n, d, rng);
        std::vector<int64_t> sites(static_cast<size_t>(n));
        std::vector<float> values(static_cast<size_t>(n));
        std::vector<float> changed = v;
        for (int64_t r = 0; r < n; ++r)
        {
            const size_t k = static_cast<size_t>(r);
            sites[k] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(d)));
            float& x = changed[static_cast<size_t>(r * d + sites[k])];
            values[k] = r % 4 == 3 ? domain.random(rng) : domain.change(x, rng);
            x = values[k];
        }
        const std::vector<float> v_before = v;
        std::vector<float> delta(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN());
        ansatz_tensor vt = make_view(v.data(), { n, d });
        ansatz_tensor dt = make_view(delta.data(), { n });
        model.energy_delta(vt, sites.data(), values.data(), dt);
        if (v != v_before)
            throw ConformanceError(check,
                                   "energy_delta wrote into its input v (inputs are never written, abi.h)");
        const std::vector<float> f0 = free_energy(model, v, n, d);
        const std::vector<float> f1 = free_energy(model, changed, n, d);
        double worst = 0;
        for (int64_t r = 0; r < n; ++r)
        {
            const size_t k = static_cast<size_t>(r);
            const double want = static_cast<double>(f1[k]) - f0[k];
            const double tolerance = options.delta_tolerance +
                                     16 * FLT_EPSILON * (std::abs(double(f0[k])) + std::abs(double(f1[k])));
            const double error = std::abs(static_cast<double>(delta[k]) - want);
            if (!(error <= tolerance))
                throw ConformanceError(
                    check, "row " + std::to_string(r) + ", site " + std::to_string(sites[k]) + " set from " +
                               num(v[static_cast<size_t>(r * d + sites[k])]) + " to " + num(values[k]) +
                               ": energy_delta gives " + num(delta[k]) +
                               ", free_energy gives F(v') - F(v) = " + num(f1[k]) + " - " + num(f0[k]) +
                               " = " + num(want) + "; |difference| " + num(error) +
                               " exceeds the tolerance " + num(tolerance) + " (" +
                               num(options.delta_tolerance) + " + 16 float epsilon (|F(v)| + |F(v')|))");
            worst = std::max(worst, error);
        }
        return passed(check, std::to_string(n) + " changes of one site in random " + domain.name() +
                                 " states agree with differences of free_energy; worst |difference| " +
                                 num(worst) + " (tolerance " + num(options.delta_tolerance) +
                                 " + 16 eps (|F| + |F'|))");
    });
}

// ---------------------------------------------------------------- free_energy_grad

inline CheckResult check_free_energy_grad(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "free_energy_grad";
    if (!model.has(ANSATZ_FN_FREE_ENERGY_GRAD))
        return skipped(check, "the model has no free_energy_grad");
    if (!model.has(ANSATZ_FN_FREE_ENERGY))
        return skipped(check, "the model has free_energy_grad but no free_energy to differentiate");
    return run(check, [&] {
        const Domain domain = domain_of(model);
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(1, options.grad_rows);
        const float scale = options.grad_scale;
        Rng rng = Rng::stream(options.seed, "conformance.free_energy_grad");
        std::vector<float> v = random_rows(domain, n, d, rng);
        const std::vector<ansatz_named_tensor> params = float_parameters(model, check);
        const int32_t count = static_cast<int32_t>(params.size());
        if (count == 0)
            return passed(check, "the model has no parameters");

        const auto make_grads = [&](std::vector<std::vector<float>>& storage,
                                    std::vector<ansatz_tensor>& views) {
            storage.clear();
            views.clear();
            for (const ansatz_named_tensor& p : params)
                storage.emplace_back(static_cast<size_t>(element_count(p.tensor)), 0.25f);
            for (size_t k = 0; k < params.size(); ++k)
            {
                ansatz_tensor t = params[k].tensor;
                t.data = storage[k].data();
                views.push_back(t);
            }
        };
        std::vector<std::vector<float>> g, g2;
        std::vector<ansatz_tensor> gv, gv2;
        make_grads(g, gv);
        make_grads(g2, gv2);
        ansatz_tensor vt = make_view(v.data(), { n, d });
        const std::vector<float> v_before = v;
        model.free_energy_grad(vt, scale, gv.data(), count, nullptr);
        if (v != v_before)
            throw ConformanceError(
                check, "free_energy_grad wrote into its input v (inputs are never written, abi.h)");

        // With `out`: the same gradient, and out = free_energy.
        std::vector<float> out(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN());
        ansatz_tensor ot = make_view(out.data(), { n });
        model.free_energy_grad(vt, scale, gv2.data(), count, &ot);
        const std::vector<float> f = free_energy(model, v, n, d);
        for (int64_t r = 0; r < n; ++r)
            if (!close(out[static_cast<size_t>(r)], f[static_cast<size_t>(r)], options.value_tolerance))
                throw ConformanceError(
                    check, "its out[" + std::to_string(r) + "] is " + num(out[static_cast<size_t>(r)]) +
                               ", but free_energy gives " + num(f[static_cast<size_t>(r)]) + " (tolerance " +
                               num(options.value_tolerance) + " relative)");
        for (size_t k = 0; k < params.size(); ++k)
            for (size_t i = 0; i < g[k].size(); ++i)
                if (!close(g2[k][i], g[k][i], options.value_tolerance))
                    throw ConformanceError(
                        check, "parameter '" + std::string(params[k].name) + "' element " +
                                   index_string(params[k].tensor, static_cast<int64_t>(i)) +
                                   ": the gradient is " + num(g[k][i]) + " without out and " + num(g2[k][i]) +
                                   " with out (tolerance " + num(options.value_tolerance) + " relative)");

        double sum_abs_f = 0;
        for (float x : f)
            sum_abs_f += std::abs(double(x));
        ParameterGuard guard(model);
        int64_t checked = 0, total = 0, off = 0;
        double worst = 0;
        std::string first_failure;
        for (size_t k = 0; k < params.size(); ++k)
        {
            const int64_t size = element_count(params[k].tensor);
            total += size;
            std::vector<int64_t> elements;
            if (options.grad_max_elements <= 0 || size <= options.grad_max_elements)
                for (int64_t i = 0; i < size; ++i)
                    elements.push_back(i);
            else
            {
                // A seeded subset without repeats (partial Fisher-Yates), checked in increasing order.
                std::vector<int64_t> all(static_cast<size_t>(size));
                for (int64_t i = 0; i < size; ++i)
                    all[static_cast<size_t>(i)] = i;
                for (int64_t i = 0; i < options.grad_max_elements; ++i)
                    std::swap(all[static_cast<size_t>(i)],
                              all[static_cast<size_t>(
                                  i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(size - i))))]);
                elements.assign(all.begin(), all.begin() + options.grad_max_elements);
                std::sort(elements.begin(), elements.end());
            }
            for (int64_t i : elements)
            {
                const float original = guard.saved()[k][static_cast<size_t>(i)];
                const float plus = static_cast<float>(original + options.grad_step);
                const float minus = static_cast<float>(original - options.grad_step);
                set_element(model, k, i, plus);
                const double f_plus = sum_free_energy(model, v, n, d);
                set_element(model, k, i, minus);
                const double f_minus = sum_free_energy(model, v, n, d);
                set_element(model, k, i, original);
                const double width = static_cast<double>(plus) - static_cast<double>(minus);
                const double fd = (f_plus - f_minus) / width;
                const double got = (static_cast<double>(g[k][static_cast<size_t>(i)]) - 0.25) / scale;
                const double rounding = 16 * FLT_EPSILON * sum_abs_f / width;
                const double tolerance =
                    options.grad_abs_tolerance + options.grad_rel_tolerance * std::abs(fd) + rounding;
                const double error = std::abs(got - fd);
                ++checked;
                worst = std::max(worst, error / tolerance);
                if (!(error <= tolerance))
                {
                    ++off;
                    if (first_failure.empty())
                        first_failure =
                            "parameter '" + std::string(params[k].name) + "' element " +
                            index_string(params[k].tensor, i) + " (value " + num(original) +
                            "): free_energy_grad gives dF/dtheta = " + num(got) + " (grads = 0.25 + " +
                            num(scale) + " * dF/dtheta = " + num(g[k][static_cast<size_t>(i)]) +
                            "), the central difference of free_energy gives " + num(fd) + " (step " +
                            num(options.grad_step) + ", float32, summed over " + std::to_string(n) +
                            " rows); |difference| " + num(error) + " exceeds the tolerance " +
                            num(tolerance) + " (" + num(options.grad_abs_tolerance) + " + " +
                            num(options.grad_rel_tolerance) + " |fd| + rounding " + num(rounding) + ")";
                }
            }
        }
        if (off > 0)
            throw ConformanceError(check, first_failure + "; " + std::to_string(off) + " of " +
                                              std::to_string(checked) + " checked elements are off");
        return passed(check, std::to_string(checked) + " of " + std::to_string(total) +
                                 " parameter elements agree with central differences (step " +
                                 num(options.grad_step) + ", " + std::to_string(n) + " rows, scale " +
                                 num(scale) + "); worst |difference| / tolerance " + num(worst) +
                                 "; out equals free_energy");
    });
}

// ---------------------------------------------------------------- conditionals_exact

inline CheckResult check_conditionals_exact(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "conditionals_exact";
    if (!model.has(ANSATZ_FN_CONDITIONAL))
        return skipped(check, "the model has no conditionals");
    if (!model.has(ANSATZ_FN_FREE_ENERGY))
        return skipped(check, "the model has conditionals but no free_energy to define p(v)");
    return run(check, [&] {
        const Domain vis = domain_of(model);
        const Domain hid = options.hidden_domain < 0 ? vis : Domain{ options.hidden_domain, 0 };
        if (!vis.two_valued() || !hid.two_valued())
            return skipped(check, "enumeration needs two-valued units; the visible units are " + vis.name() +
                                      " and the hidden units " + hid.name());
        const int64_t d = model.block_size(ANSATZ_BLOCK_VISIBLE);
        const int64_t h = model.block_size(ANSATZ_BLOCK_HIDDEN);
        if (d < 0 || h < 0)
            throw ConformanceError(check, "block_size returned -1 (visible " + std::to_string(d) +
                                              ", hidden " + std::to_string(h) + ")");
        if (d + h > options.max_enumerated_units)
            return skipped(check, std::to_string(d) + " visible + " + std::to_string(h) +
                                      " hidden units are more than max_enumerated_units = " +
                                      std::to_string(options.max_enumerated_units));
        const int64_t nv = int64_t(1) << d, nh = int64_t(1) << h;
        std::vector<float> vs = all_states(vis, d), hs = all_states(hid, h);
        std::vector<float> mh(static_cast<size_t>(nv * h)), mv(static_cast<size_t>(nh * d));
        ansatz_tensor vst = make_view(vs.data(), { nv, d }), hst = make_view(hs.data(), { nh, h });
        ansatz_tensor mht = make_view(mh.data(), { nv, h }), mvt = make_view(mv.data(), { nh, d });
        model.conditional(ANSATZ_BLOCK_HIDDEN, vst, mht, nullptr);
        model.conditional(ANSATZ_BLOCK_VISIBLE, hst, mvt, nullptr);
        const auto in_range = [&](const std::vector<float>& m, const Domain& dom, int64_t cols,
                                  const char* block, const char* given) {
            for (size_t k = 0; k < m.size(); ++k)
                if (!(m[k] >= dom.mean_low() && m[k] <= dom.mean_high()))
                    throw ConformanceError(
                        check, std::string("the mean of ") + block + " unit " +
                                   std::to_string(static_cast<int64_t>(k) % cols) + " given " + given +
                                   " state " + std::to_string(static_cast<int64_t>(k) / cols) + " is " +
                                   num(m[k]) + ", outside [" + num(dom.mean_low()) + ", " +
                                   num(dom.mean_high()) + "]");
        };
        in_range(mh, hid, h, "hidden", "visible");
        in_range(mv, vis, d, "visible", "hidden");

        // p(v) = exp(-F(v)) / Z.
        const std::vector<float> f = free_energy(model, vs, nv, d);
        double top = -std::numeric_limits<double>::infinity();
        for (float x : f)
            top = std::max(top, -double(x));
        double z = 0;
        for (float x : f)
            z += std::exp(-double(x) - top);
        std::vector<double> pv(static_cast<size_t>(nv));
        for (int64_t a = 0; a < nv; ++a)
            pv[static_cast<size_t>(a)] = std::exp(-double(f[static_cast<size_t>(a)]) - top) / z;
        // P(state b of `units` | row r of the means m): the factorised product.
        const auto prob = [](const std::vector<float>& m, const Domain& dom, int64_t units, int64_t r,
                             int64_t b) {
            double p = 1;
            for (int64_t j = 0; j < units; ++j)
            {
                const double high = dom.p_high(m[static_cast<size_t>(r * units + j)]);
                p *= ((b >> j) & 1) ? high : 1.0 - high;
            }
            return p;
        };
        // joint(v, h) = p(v) P(h|v); r(h) = sum_v joint.
        std::vector<double> joint(static_cast<size_t>(nv * nh)), rh(static_cast<size_t>(nh), 0.0);
        for (int64_t a = 0; a < nv; ++a)
            for (int64_t b = 0; b < nh; ++b)
            {
                const double j = pv[static_cast<size_t>(a)] * prob(mh, hid, h, a, b);
                joint[static_cast<size_t>(a * nh + b)] = j;
                rh[static_cast<size_t>(b)] += j;
            }
        // Stationarity: q(v') = sum_h r(h) P(v'|h) = p(v').
        double worst = 0;
        for (int64_t a = 0; a < nv; ++a)
        {
            double q = 0;
            for (int64_t b = 0; b < nh; ++b)
                q += rh[static_cast<size_t>(b)] * prob(mv, vis, d, b, a);
            const double p = pv[static_cast<size_t>(a)];
            const double tolerance = options.exact_abs_tolerance + options.exact_rel_tolerance * p;
            const double error = std::abs(q - p);
            worst = std::max(worst, error / tolerance);
            if (!(error <= tolerance))
                throw ConformanceError(
                    check,
                    "stationarity: one exact Gibbs step v -> h -> v' from p(v) = exp(-F)/Z "
                    "gives " +
                        num(q) + " for visible state " + std::to_string(a) + ", but p(v') = " + num(p) +
                        "; |difference| " + num(error) + " exceeds the tolerance " + num(tolerance) + " (" +
                        num(options.exact_abs_tolerance) + " + " + num(options.exact_rel_tolerance) + " p)");
        }
        // Consistency: the joint p(v) P(h|v) equals r(h) P(v|h), the joint from its h-marginal and the
        // model's P(v|h) (Bayes' rule, written without dividing by a tiny r(h)).
        for (int64_t b = 0; b < nh; ++b)
            for (int64_t a = 0; a < nv; ++a)
            {
                const double want = joint[static_cast<size_t>(a * nh + b)];
                const double got = rh[static_cast<size_t>(b)] * prob(mv, vis, d, b, a);
                const double tolerance = options.exact_abs_tolerance + options.exact_rel_tolerance * want;
                const double error = std::abs(got - want);
                worst = std::max(worst, error / tolerance);
                if (!(error <= tolerance))
                    throw ConformanceError(
                        check, "consistency: for visible state " + std::to_string(a) + " and hidden state " +
                                   std::to_string(b) + ", p(v) P(h|v) = " + num(want) +
                                   " but r(h) P(v|h) = " + num(got) +
                                   " (r(h) = sum_v p(v) P(h|v), P(v|h) from "
                                   "conditional(visible)); |difference| " +
                                   num(error) + " exceeds the tolerance " + num(tolerance) + " (" +
                                   num(options.exact_abs_tolerance) + " + " +
                                   num(options.exact_rel_tolerance) + " p(v) P(h|v))");
            }
        return passed(check, std::to_string(d) + " visible x " + std::to_string(h) +
                                 " hidden units enumerated: means in range, one exact Gibbs step leaves "
                                 "exp(-F)/Z invariant, p(v) P(h|v) = r(h) P(v|h); worst |difference| / "
                                 "tolerance " +
                                 num(worst));
    });
}

// ---------------------------------------------------------------- conditional_sampling

inline CheckResult check_conditional_sampling(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "conditional_sampling";
    if (!model.has(ANSATZ_FN_CONDITIONAL))
        return skipped(check, "the model has no conditionals");
    return run(check, [&] {
        const Domain vis = domain_of(model);
        const Domain hid = options.hidden_domain < 0 ? vis : Domain{ options.hidden_domain, 0 };
        if (!vis.two_valued() || !hid.two_valued())
            return skipped(check, "the binomial test needs two-valued units; the visible units are " +
                                      vis.name() + " and the hidden units " + hid.name());
        const int64_t given_states = std::max<int64_t>(1, options.sampling_given);
        const int64_t r_rows = std::max<int64_t>(1, options.sampling_rows_per_given);
        const int64_t n = given_states * r_rows;
        double worst = 0;
        for (const ansatz_block block : { ANSATZ_BLOCK_HIDDEN, ANSATZ_BLOCK_VISIBLE })
        {
            const bool hidden = block == ANSATZ_BLOCK_HIDDEN;
            const char* block_name = hidden ? "hidden" : "visible";
            const Domain& dom = hidden ? hid : vis;
            const Domain& given_dom = hidden ? vis : hid;
            const int64_t size = model.block_size(block);
            const int64_t given_size = model.block_size(hidden ? ANSATZ_BLOCK_VISIBLE : ANSATZ_BLOCK_HIDDEN);
            if (size < 0 || given_size < 0)
                throw ConformanceError(check, "block_size returned -1");
            Rng rng =
                Rng::stream(options.seed, std::string("conformance.conditional_sampling.") + block_name);
            std::vector<float> given = random_rows(given_dom, given_states, given_size, rng);
            // Means without sampling, one row per given state.
            std::vector<float> mean_only(static_cast<size_t>(given_states * size));
            ansatz_tensor gt = make_view(given.data(), { given_states, given_size });
            ansatz_tensor mot = make_view(mean_only.data(), { given_states, size });
            model.conditional(block, gt, mot, nullptr);
            // Every given state repeated in R rows, one stream per row.
            std::vector<float> repeated(static_cast<size_t>(n * given_size));
            for (int64_t r = 0; r < n; ++r)
                std::copy_n(given.begin() + (r / r_rows) * given_size, given_size,
                            repeated.begin() + r * given_size);
            std::vector<float> mean(static_cast<size_t>(n * size)),
                sample(static_cast<size_t>(n * size), std::numeric_limits<float>::quiet_NaN());
            ansatz_tensor rt = make_view(repeated.data(), { n, given_size });
            ansatz_tensor mt = make_view(mean.data(), { n, size }),
                          st = make_view(sample.data(), { n, size });
            StreamArray rows;
            const Streams streams = rows.split_from(rng, n);
            const Rng stream0 = streams[0];
            model.conditional(block, rt, mt, &st, streams);
            std::vector<double> highs(static_cast<size_t>(given_states * size), 0.0);
            for (int64_t r = 0; r < n; ++r)
                for (int64_t j = 0; j < size; ++j)
                {
                    const size_t k = static_cast<size_t>(r * size + j);
                    const float m0 = mean_only[static_cast<size_t>((r / r_rows) * size + j)];
                    if (!close(mean[k], m0, options.value_tolerance))
                        throw ConformanceError(check,
                                               std::string("the mean of ") + block_name + " unit " +
                                                   std::to_string(j) + " in row " + std::to_string(r) +
                                                   " is " + num(mean[k]) + " when sampling, but " + num(m0) +
                                                   " from a call without sampling for the same given state");
                    if (!(mean[k] >= dom.mean_low() && mean[k] <= dom.mean_high()))
                        throw ConformanceError(check, std::string("the mean of ") + block_name + " unit " +
                                                          std::to_string(j) + " in row " + std::to_string(r) +
                                                          " is " + num(mean[k]) + ", outside [" +
                                                          num(dom.mean_low()) + ", " + num(dom.mean_high()) +
                                                          "]");
                    if (!dom.contains(sample[k]))
                        throw ConformanceError(check, std::string("the sample of ") + block_name + " unit " +
                                                          std::to_string(j) + " in row " + std::to_string(r) +
                                                          " is " + num(sample[k]) + ", outside the " +
                                                          dom.name() + " domain");
                    if (sample[k] == dom.high())
                        highs[static_cast<size_t>((r / r_rows) * size + j)] += 1;
                }
            for (int64_t g = 0; g < given_states; ++g)
                for (int64_t j = 0; j < size; ++j)
                {
                    const size_t k = static_cast<size_t>(g * size + j);
                    const double p = dom.p_high(mean_only[k]);
                    const double rows_per_given = static_cast<double>(r_rows);
                    const double freq = highs[k] / rows_per_given;
                    const double tolerance =
                        options.sampling_sigmas * std::sqrt(std::max(0.0, p * (1 - p)) / rows_per_given) +
                        1.0 / rows_per_given;
                    const double error = std::abs(freq - p);
                    worst = std::max(worst, error / tolerance);
                    if (!(error <= tolerance))
                        throw ConformanceError(
                            check, std::string("the ") + block_name + " unit " + std::to_string(j) +
                                       " given state " + std::to_string(g) + " is " + num(dom.high()) +
                                       " in " + num(highs[k]) + " of " + std::to_string(r_rows) +
                                       " rows (frequency " + num(freq) + "), but its mean " +
                                       num(mean_only[k]) + " says P = " + num(p) + "; |difference| " +
                                       num(error) + " exceeds " + num(options.sampling_sigmas) +
                                       " binomial standard errors + 1/R = " + num(tolerance) + " (seed " +
                                       std::to_string(options.seed) + ")");
                }
            // Row 0 again, alone, with the stream it had.
            std::vector<float> alone_mean(static_cast<size_t>(size)), alone(static_cast<size_t>(size));
            ansatz_tensor r0 = make_view(repeated.data(), { 1, given_size });
            ansatz_tensor am = make_view(alone_mean.data(), { 1, size }),
                          as = make_view(alone.data(), { 1, size });
            Rng copy = stream0;
            model.conditional(block, r0, am, &as, Streams(&copy, 1));
            for (int64_t j = 0; j < size; ++j)
                if (std::memcmp(&alone[static_cast<size_t>(j)], &sample[static_cast<size_t>(j)],
                                sizeof(float)) != 0)
                    throw ConformanceError(
                        check, std::string("row 0 of the ") + block_name +
                                   " block sampled alone with its stream has unit " + std::to_string(j) +
                                   " = " + num(alone[static_cast<size_t>(j)]) + ", but " +
                                   num(sample[static_cast<size_t>(j)]) + " among " + std::to_string(n) +
                                   " rows: a row must draw only from its own stream");
        }
        return passed(check,
                      "both blocks: " + std::to_string(given_states) + " given states x " +
                          std::to_string(r_rows) + " rows (seed " + std::to_string(options.seed) +
                          "): samples in the domain, frequencies within " + num(options.sampling_sigmas) +
                          " binomial standard errors + 1/R of the means (worst |difference| / tolerance " +
                          num(worst) + "), row 0 alone is bit-equal");
    });
}

// ---------------------------------------------------------------- latent

namespace detail::conformance
{

// Gradient buffers shaped like the parameters, every element starting at `start`.
struct GradBuffers
{
    std::vector<std::vector<float>> storage;
    std::vector<ansatz_tensor> views;

    GradBuffers(const std::vector<ansatz_named_tensor>& params, float start)
    {
        for (const ansatz_named_tensor& p : params)
            storage.emplace_back(static_cast<size_t>(element_count(p.tensor)), start);
        for (size_t k = 0; k < params.size(); ++k)
        {
            ansatz_tensor t = params[k].tensor;
            t.data = storage[k].data();
            views.push_back(t);
        }
    }
    int32_t count() const { return static_cast<int32_t>(views.size()); }
};

// The elements of a parameter of `size` values the gradient checks visit (a seeded subset when large).
inline std::vector<int64_t> checked_elements(int64_t size, const ConformanceOptions& options, Rng& rng)
{
    std::vector<int64_t> elements;
    if (options.grad_max_elements <= 0 || size <= options.grad_max_elements)
    {
        for (int64_t i = 0; i < size; ++i)
            elements.push_back(i);
        return elements;
    }
    std::vector<int64_t> all(static_cast<size_t>(size));
    for (int64_t i = 0; i < size; ++i)
        all[static_cast<size_t>(i)] = i;
    for (int64_t i = 0; i < options.grad_max_elements; ++i)
        std::swap(
            all[static_cast<size_t>(i)],
            all[static_cast<size_t>(i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(size - i))))]);
    elements.assign(all.begin(), all.begin() + options.grad_max_elements);
    std::sort(elements.begin(), elements.end());
    return elements;
}

// Counts of a gradient comparison, and its first failure.
struct GradTally
{
    int64_t checked = 0, total = 0, off = 0;
    double worst = 0;
    std::string first_failure;

    // got against the central difference fd; `what` names the element and the call.
    void compare(double got, double fd, double rounding, const ConformanceOptions& options,
                 const std::string& what)
    {
        const double tolerance =
            options.grad_abs_tolerance + options.grad_rel_tolerance * std::abs(fd) + rounding;
        const double error = std::abs(got - fd);
        ++checked;
        worst = std::max(worst, error / tolerance);
        if (!(error <= tolerance))
        {
            ++off;
            if (first_failure.empty())
                first_failure = what + " gives " + num(got) + ", the central difference " + num(fd) +
                                " (step " + num(options.grad_step) + ", float32); |difference| " +
                                num(error) + " exceeds the tolerance " + num(tolerance) + " (" +
                                num(options.grad_abs_tolerance) + " + " + num(options.grad_rel_tolerance) +
                                " |fd| + rounding " + num(rounding) + ")";
        }
    }
    void require(const std::string& check) const
    {
        if (off > 0)
            throw ConformanceError(check, first_failure + "; " + std::to_string(off) + " of " +
                                              std::to_string(checked) + " checked elements are off");
    }
};

// Every parameter element (or a subset) of grads = 0.25 + scale * dS/dtheta against the central
// difference of S(), where S is summed in double and `magnitude` bounds sum |terms| for the rounding.
template <class Objective>
void compare_parameter_gradient(const ModelRef& model, const std::vector<ansatz_named_tensor>& params,
                                const GradBuffers& g, float scale, Objective&& objective, double magnitude,
                                const ConformanceOptions& options, Rng& rng, const std::string& call,
                                GradTally& tally)
{
    ParameterGuard guard(model);
    for (size_t k = 0; k < params.size(); ++k)
    {
        const int64_t size = element_count(params[k].tensor);
        tally.total += size;
        for (int64_t i : checked_elements(size, options, rng))
        {
            const float original = guard.saved()[k][static_cast<size_t>(i)];
            const float plus = static_cast<float>(original + options.grad_step);
            const float minus = static_cast<float>(original - options.grad_step);
            set_element(model, k, i, plus);
            const double s_plus = objective();
            set_element(model, k, i, minus);
            const double s_minus = objective();
            set_element(model, k, i, original);
            const double width = static_cast<double>(plus) - static_cast<double>(minus);
            const double fd = (s_plus - s_minus) / width;
            const double got = (static_cast<double>(g.storage[k][static_cast<size_t>(i)]) - 0.25) / scale;
            tally.compare(got, fd, 16 * FLT_EPSILON * magnitude / width, options,
                          "parameter '" + std::string(params[k].name) + "' element " +
                              index_string(params[k].tensor, i) + " (value " + num(original) + "): " + call);
        }
    }
}

inline std::vector<float> normal_rows(int64_t rows, int64_t cols, Rng& rng)
{
    std::vector<float> out(static_cast<size_t>(rows * cols));
    for (float& x : out)
        x = static_cast<float>(rng.normal());
    return out;
}

inline void require_finite(const std::string& check, const std::vector<float>& values, int64_t cols,
                           const std::string& what)
{
    for (size_t k = 0; k < values.size(); ++k)
        if (!std::isfinite(values[k]))
            throw ConformanceError(check, what + " row " + std::to_string(static_cast<int64_t>(k) / cols) +
                                              ", element " + std::to_string(static_cast<int64_t>(k) % cols) +
                                              " is " + num(values[k]) +
                                              " (NaN if the call did not write it: outputs start as NaN)");
}

} // namespace detail::conformance

inline CheckResult check_latent_rows(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "latent_rows";
    if (!model.has_latent())
        return skipped(check, "the model has no latent functions");
    return run(check, [&] {
        const int64_t l = model.latent_size();
        if (l < 1)
            throw ConformanceError(check, "latent_size() is " + std::to_string(l) +
                                              "; a latent model has at least 1");
        const Domain domain = domain_of(model);
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(2, options.latent_check_rows);
        Rng rng = Rng::stream(options.seed, "conformance.latent_rows");
        std::vector<float> x = random_rows(domain, n, d, rng);
        std::vector<float> h = normal_rows(n, l, rng);
        const std::vector<float> x_before = x, h_before = h;
        const float nan = std::numeric_limits<float>::quiet_NaN();
        // All rows, then rows 0 and n - 1 alone.
        const auto outputs = [&](int64_t first, int64_t rows) {
            std::vector<float> mu(static_cast<size_t>(rows * l), nan), lv(mu.size(), nan),
                ll(static_cast<size_t>(rows), nan), mean(static_cast<size_t>(rows * d), nan);
            ansatz_tensor xt = make_view(x.data() + first * d, { rows, d });
            ansatz_tensor ht = make_view(h.data() + first * l, { rows, l });
            ansatz_tensor mt = make_view(mu.data(), { rows, l }), vt = make_view(lv.data(), { rows, l });
            ansatz_tensor lt = make_view(ll.data(), { rows }), et = make_view(mean.data(), { rows, d });
            model.encode(xt, mt, vt);
            model.decode_log_likelihood(ht, xt, lt);
            model.decode_mean(ht, et);
            return std::vector<std::vector<float>>{ mu, lv, ll, mean };
        };
        const std::vector<std::vector<float>> all = outputs(0, n);
        if (x != x_before || h != h_before)
            throw ConformanceError(check,
                                   "encode or a decode function wrote into its input x or h (inputs are "
                                   "never written, abi.h)");
        const char* names[] = { "encode's mu", "encode's log_var", "decode_log_likelihood", "decode_mean" };
        const int64_t widths[] = { l, l, 1, d };
        for (int k = 0; k < 4; ++k)
            require_finite(check, all[static_cast<size_t>(k)], widths[k], names[k]);
        if (domain.two_valued())
            for (size_t k = 0; k < all[3].size(); ++k)
                if (all[3][k] < domain.mean_low() || all[3][k] > domain.mean_high())
                    throw ConformanceError(
                        check, "decode_mean row " + std::to_string(static_cast<int64_t>(k) / d) + ", unit " +
                                   std::to_string(static_cast<int64_t>(k) % d) + " is " + num(all[3][k]) +
                                   ", outside the mean's range [" + num(domain.mean_low()) + ", " +
                                   num(domain.mean_high()) + "] of the " + domain.name() + " domain");
        for (int64_t r : { int64_t(0), n - 1 })
        {
            const std::vector<std::vector<float>> alone = outputs(r, 1);
            for (int k = 0; k < 4; ++k)
                for (int64_t j = 0; j < widths[k]; ++j)
                {
                    const float a = alone[static_cast<size_t>(k)][static_cast<size_t>(j)];
                    const float b = all[static_cast<size_t>(k)][static_cast<size_t>(r * widths[k] + j)];
                    if (!close(a, b, options.value_tolerance))
                        throw ConformanceError(check, std::string(names[k]) + " of row " + std::to_string(r) +
                                                          ", element " + std::to_string(j) + " is " + num(b) +
                                                          " among " + std::to_string(n) + " rows, but " +
                                                          num(a) + " computed alone (tolerance " +
                                                          num(options.value_tolerance) +
                                                          " relative): a row's result depends on the rows "
                                                          "beside it");
                }
        }
        return passed(check, "L = " + std::to_string(l) + "; " + std::to_string(n) + " rows of " +
                                 std::to_string(d) +
                                 " values: encode, decode_log_likelihood and decode_mean "
                                 "finite, inputs unchanged, rows 0 and " +
                                 std::to_string(n - 1) + " alone agree");
    });
}

inline CheckResult check_latent_encode_backward(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "latent_encode_backward";
    if (!model.has_latent())
        return skipped(check, "the model has no latent functions");
    return run(check, [&] {
        const int64_t l = model.latent_size();
        const Domain domain = domain_of(model);
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(1, options.grad_rows);
        const float scale = options.grad_scale;
        Rng rng = Rng::stream(options.seed, "conformance.latent_encode_backward");
        std::vector<float> x = random_rows(domain, n, d, rng);
        const std::vector<float> a = normal_rows(n, l, rng), b = normal_rows(n, l, rng);
        const std::vector<ansatz_named_tensor> params = float_parameters(model, check);
        if (params.empty())
            return passed(check, "the model has no parameters");
        GradBuffers g(params, 0.25f);
        ansatz_tensor xt = make_view(x.data(), { n, d });
        ansatz_tensor at = make_view(a.data(), { n, l }), bt = make_view(b.data(), { n, l });
        const std::vector<float> x_before = x;
        model.encode_backward(xt, at, bt, scale, g.views.data(), g.count());
        if (x != x_before)
            throw ConformanceError(check,
                                   "encode_backward wrote into its input x (inputs are never written)");
        double magnitude = 0;
        const auto objective = [&] {
            std::vector<float> mu(static_cast<size_t>(n * l)), lv(mu.size());
            ansatz_tensor mt = make_view(mu.data(), { n, l }), vt = make_view(lv.data(), { n, l });
            model.encode(xt, mt, vt);
            double sum = 0, abs_sum = 0;
            for (size_t k = 0; k < mu.size(); ++k)
            {
                sum += double(a[k]) * mu[k] + double(b[k]) * lv[k];
                abs_sum += std::abs(double(a[k]) * mu[k]) + std::abs(double(b[k]) * lv[k]);
            }
            magnitude = std::max(magnitude, abs_sum);
            return sum;
        };
        objective();
        GradTally tally;
        compare_parameter_gradient(model, params, g, scale, objective, magnitude, options, rng,
                                   "encode_backward's d(sum_n a.mu + b.log_var)/dtheta", tally);
        tally.require(check);
        return passed(check, std::to_string(tally.checked) + " of " + std::to_string(tally.total) +
                                 " parameter elements agree with central differences of encode (" +
                                 std::to_string(n) + " rows, scale " + num(scale) +
                                 "); worst |difference| / "
                                 "tolerance " +
                                 num(tally.worst));
    });
}

inline CheckResult check_latent_decode_backward(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "latent_decode_backward";
    if (!model.has_latent())
        return skipped(check, "the model has no latent functions");
    return run(check, [&] {
        const int64_t l = model.latent_size();
        const Domain domain = domain_of(model);
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(1, options.grad_rows);
        const float scale = options.grad_scale;
        Rng rng = Rng::stream(options.seed, "conformance.latent_decode_backward");
        std::vector<float> x = random_rows(domain, n, d, rng);
        std::vector<float> h = normal_rows(n, l, rng);
        const std::vector<ansatz_named_tensor> params = float_parameters(model, check);
        GradBuffers g(params, 0.25f);
        ansatz_tensor xt = make_view(x.data(), { n, d }), ht = make_view(h.data(), { n, l });
        std::vector<float> d_h(static_cast<size_t>(n * l), std::numeric_limits<float>::quiet_NaN());
        ansatz_tensor dt = make_view(d_h.data(), { n, l });
        const std::vector<float> x_before = x, h_before = h;
        model.decode_backward(ht, xt, scale, &dt, g.views.data(), g.count());
        if (x != x_before || h != h_before)
            throw ConformanceError(check,
                                   "decode_backward wrote into its input x or h (inputs are never written)");
        require_finite(check, d_h, l, "decode_backward's d_h");
        double magnitude = 0;
        const auto objective = [&] {
            std::vector<float> ll(static_cast<size_t>(n));
            ansatz_tensor lt = make_view(ll.data(), { n });
            model.decode_log_likelihood(ht, xt, lt);
            double sum = 0, abs_sum = 0;
            for (float v : ll)
                sum += v, abs_sum += std::abs(double(v));
            magnitude = std::max(magnitude, abs_sum);
            return sum;
        };
        objective();
        GradTally tally;
        compare_parameter_gradient(model, params, g, scale, objective, magnitude, options, rng,
                                   "decode_backward's dlog p(x|h)/dtheta", tally);
        // d_h against central differences in h.
        for (int64_t k = 0; k < n * l; ++k)
        {
            const float original = h[static_cast<size_t>(k)];
            const float plus = static_cast<float>(original + options.grad_step);
            const float minus = static_cast<float>(original - options.grad_step);
            h[static_cast<size_t>(k)] = plus;
            const double s_plus = objective();
            h[static_cast<size_t>(k)] = minus;
            const double s_minus = objective();
            h[static_cast<size_t>(k)] = original;
            const double width = static_cast<double>(plus) - static_cast<double>(minus);
            tally.compare(d_h[static_cast<size_t>(k)] / double(scale), (s_plus - s_minus) / width,
                          16 * FLT_EPSILON * magnitude / width, options,
                          "h row " + std::to_string(k / l) + ", unit " + std::to_string(k % l) +
                              ": decode_backward's d_h / scale = dlog p(x|h)/dh");
        }
        tally.require(check);
        return passed(check, std::to_string(tally.checked) +
                                 " gradient elements (of the parameters and of h) "
                                 "agree with central differences of decode_log_likelihood (" +
                                 std::to_string(n) + " rows, scale " + num(scale) +
                                 "); worst |difference| / "
                                 "tolerance " +
                                 num(tally.worst));
    });
}

inline CheckResult check_latent_decode_weighted(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "latent_decode_weighted";
    if (!model.has_latent())
        return skipped(check, "the model has no latent functions");
    if (!model.has_decode_backward_weighted())
        return skipped(check, "the model has no decode_backward_weighted (2.2); ModelRef makes it of "
                              "decode_backward calls");
    return run(check, [&] {
        const int64_t l = model.latent_size();
        const Domain domain = domain_of(model);
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(3, options.grad_rows);
        Rng rng = Rng::stream(options.seed, "conformance.latent_decode_weighted");
        std::vector<float> x = random_rows(domain, n, d, rng);
        std::vector<float> h = normal_rows(n, l, rng);
        std::vector<float> weights(static_cast<size_t>(n));
        for (float& w : weights)
            w = static_cast<float>(2 * rng.uniform_double() - 1);
        weights[1] = 0.0f;
        const std::vector<ansatz_named_tensor> params = float_parameters(model, check);
        GradBuffers g(params, 0.25f), reference(params, 0.25f);
        ansatz_tensor xt = make_view(x.data(), { n, d }), ht = make_view(h.data(), { n, l });
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::vector<float> d_h(static_cast<size_t>(n * l), nan), d_ref(d_h.size(), nan);
        std::vector<float> out(static_cast<size_t>(n), nan), ll(out.size(), nan);
        ansatz_tensor dt = make_view(d_h.data(), { n, l }), ot = make_view(out.data(), { n });
        ansatz_tensor lt = make_view(ll.data(), { n });
        model.decode_backward_weighted(ht, xt, weights.data(), &dt, g.views.data(), g.count(), &ot);
        model.decode_log_likelihood(ht, xt, lt);
        for (int64_t r = 0; r < n; ++r)
        {
            ansatz_tensor hr = make_view(h.data() + r * l, { 1, l }),
                          xr = make_view(x.data() + r * d, { 1, d });
            ansatz_tensor dr = make_view(d_ref.data() + r * l, { 1, l });
            model.decode_backward(hr, xr, weights[static_cast<size_t>(r)], &dr, reference.views.data(),
                                  reference.count());
        }
        const double tol = options.latent_agree_tolerance;
        const auto agree = [&](float got, float want, const std::string& what) {
            if (!(std::abs(double(got) - double(want)) <= tol * std::max(1.0, std::abs(double(want)))))
                throw ConformanceError(check, what + ": decode_backward_weighted gives " + num(got) + ", " +
                                                  num(want) + " expected (tolerance " + num(tol) +
                                                  " relative to max(1, |value|))");
        };
        for (int64_t r = 0; r < n; ++r)
            agree(out[static_cast<size_t>(r)], ll[static_cast<size_t>(r)],
                  "out[" + std::to_string(r) + "] against decode_log_likelihood");
        for (int64_t k = 0; k < n * l; ++k)
            agree(d_h[static_cast<size_t>(k)], d_ref[static_cast<size_t>(k)],
                  "d_h row " + std::to_string(k / l) + ", unit " + std::to_string(k % l) + " (weight " +
                      num(weights[static_cast<size_t>(k / l)]) + ") against decode_backward at that scale");
        int64_t values = 0;
        for (size_t k = 0; k < params.size(); ++k)
            for (size_t i = 0; i < g.storage[k].size(); ++i, ++values)
                agree(g.storage[k][i], reference.storage[k][i],
                      "parameter '" + std::string(params[k].name) + "' element " +
                          index_string(params[k].tensor, static_cast<int64_t>(i)) +
                          " against one decode_backward per row at scale weights[n]");
        return passed(check, std::to_string(n) +
                                 " rows with weights of both signs and a zero: " + std::to_string(values) +
                                 " gradient values, d_h and out agree with per-row "
                                 "decode_backward and decode_log_likelihood");
    });
}

// ---------------------------------------------------------------- local_moves

namespace detail::conformance
{
// The inverse temperatures a local session of n rows is checked at: the ladder {1, 0.5, 0.25, 1.5} over
// the rows for a model the session can temper (abi.h: one with the tempered functions, or one without
// conditionals and without a real domain, whose F_beta is beta F); empty for any other, checked with
// beta NULL.
inline std::vector<double> session_betas(const ModelRef& model, const Domain& domain, int64_t n)
{
    if (!model.has(ANSATZ_FN_TEMPERED) &&
        (model.has(ANSATZ_FN_CONDITIONAL) || domain.kind == ANSATZ_DOMAIN_REAL))
        return {};
    const double ladder[] = { 1.0, 0.5, 0.25, 1.5 };
    std::vector<double> beta(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r)
        beta[static_cast<size_t>(r)] = ladder[r % 4];
    return beta;
}
} // namespace detail::conformance

inline CheckResult check_local_moves(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "local_moves";
    if (!model.has(ANSATZ_FN_LOCAL_MOVES))
        return skipped(check, "the model has no local-move session");
    if (!model.has(ANSATZ_FN_FREE_ENERGY))
        return skipped(check, "the model has a local-move session but no free_energy to compare it with");
    return run(check, [&] {
        const Domain domain = domain_of(model);
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(1, options.local_rows);
        const int64_t rounds = std::max<int64_t>(1, options.local_rounds);
        // The reference free energy of the tempered family (abi.h).
        enum class Reference
        {
            tempered,
            scaled,
            plain
        };
        std::vector<double> beta = session_betas(model, domain, n);
        const Reference reference = model.has(ANSATZ_FN_TEMPERED) ? Reference::tempered
                                    : !beta.empty()               ? Reference::scaled
                                                                  : Reference::plain;
        if (beta.empty())
            beta.assign(static_cast<size_t>(n), 1.0);
        const auto reference_f = [&](std::vector<float>& rows) {
            std::vector<double> out(static_cast<size_t>(n));
            ansatz_tensor vt = make_view(rows.data(), { n, d });
            if (reference == Reference::tempered)
            {
                ansatz_tensor ot = make_view(out.data(), { n });
                model.tempered_free_energy(vt, beta.data(), nullptr, ot);
                return out;
            }
            const std::vector<float> f = free_energy(model, rows, n, d);
            for (int64_t r = 0; r < n; ++r)
                out[static_cast<size_t>(r)] = beta[static_cast<size_t>(r)] * f[static_cast<size_t>(r)];
            return out;
        };
        const char* reference_name = reference == Reference::tempered ? "tempered_free_energy"
                                     : reference == Reference::scaled ? "beta free_energy"
                                                                      : "free_energy";
        Rng rng = Rng::stream(options.seed, "conformance.local_moves");
        std::vector<float> v = random_rows(domain, n, d, rng);
        std::vector<int64_t> sites(static_cast<size_t>(n));
        std::vector<float> values(static_cast<size_t>(n)), previous(static_cast<size_t>(n));
        std::vector<uint8_t> accepted(static_cast<size_t>(n));
        std::vector<float> delta(static_cast<size_t>(n));
        ansatz_tensor vt = make_view(v.data(), { n, d });
        ansatz_tensor dt = make_view(delta.data(), { n });
        double worst = 0;
        int64_t commits = 0;
        {
            LocalSession session(model, vt, reference == Reference::plain ? nullptr : beta.data());
            for (int64_t round = 0; round < rounds; ++round)
            {
                std::vector<float> changed = v;
                for (int64_t r = 0; r < n; ++r)
                {
                    const size_t k = static_cast<size_t>(r);
                    sites[k] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(d)));
                    const float x = v[static_cast<size_t>(r * d + sites[k])];
                    values[k] = r % 8 == 7 ? domain.random(rng) : domain.change(x, rng);
                    changed[static_cast<size_t>(r * d + sites[k])] = values[k];
                }
                const std::vector<float> v_before = v;
                std::fill(delta.begin(), delta.end(), std::numeric_limits<float>::quiet_NaN());
                model.energy_delta(vt, sites.data(), values.data(), dt);
                if (v != v_before)
                    throw ConformanceError(check,
                                           "energy_delta wrote into its input v during a local session "
                                           "(inputs are never written, abi.h)");
                const std::vector<double> f0 = reference_f(v);
                const std::vector<double> f1 = reference_f(changed);
                for (int64_t r = 0; r < n; ++r)
                {
                    const size_t k = static_cast<size_t>(r);
                    const double want = f1[k] - f0[k];
                    const double tolerance =
                        options.delta_tolerance + 16 * FLT_EPSILON * (std::abs(f0[k]) + std::abs(f1[k]));
                    const double error = std::abs(static_cast<double>(delta[k]) - want);
                    if (!(error <= tolerance))
                        throw ConformanceError(
                            check, "round " + std::to_string(round) + " (after " + std::to_string(commits) +
                                       " committed changes), row " + std::to_string(r) + " at beta " +
                                       num(beta[k]) + ", site " + std::to_string(sites[k]) + " set from " +
                                       num(v[static_cast<size_t>(r * d + sites[k])]) + " to " +
                                       num(values[k]) + ": energy_delta in the session gives " +
                                       num(delta[k]) + ", " + reference_name +
                                       " gives F_beta(v') - F_beta(v) = " + num(want) + "; |difference| " +
                                       num(error) + " exceeds the tolerance " + num(tolerance));
                    worst = std::max(worst, error);
                }
                for (int64_t r = 0; r < n; ++r)
                {
                    const size_t k = static_cast<size_t>(r);
                    accepted[k] = rng.uniform() < 0.5f ? 1 : 0;
                    float& x = v[static_cast<size_t>(r * d + sites[k])];
                    previous[k] = x;
                    if (accepted[k])
                    {
                        x = values[k];
                        ++commits;
                    }
                }
                session.commit(vt, sites.data(), previous.data(), accepted.data());
            }
            session.end();
        }
        // Closed: energy_delta is the plain F(v') - F(v) again.
        std::vector<float> changed = v;
        for (int64_t r = 0; r < n; ++r)
        {
            const size_t k = static_cast<size_t>(r);
            sites[k] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(d)));
            values[k] = domain.change(v[static_cast<size_t>(r * d + sites[k])], rng);
            changed[static_cast<size_t>(r * d + sites[k])] = values[k];
        }
        model.energy_delta(vt, sites.data(), values.data(), dt);
        const std::vector<float> f0 = free_energy(model, v, n, d);
        const std::vector<float> f1 = free_energy(model, changed, n, d);
        for (int64_t r = 0; r < n; ++r)
        {
            const size_t k = static_cast<size_t>(r);
            const double want = static_cast<double>(f1[k]) - f0[k];
            const double tolerance = options.delta_tolerance +
                                     16 * FLT_EPSILON * (std::abs(double(f0[k])) + std::abs(double(f1[k])));
            if (!(std::abs(delta[k] - want) <= tolerance))
                throw ConformanceError(check, "after local_end, energy_delta of row " + std::to_string(r) +
                                                  " gives " + num(delta[k]) +
                                                  ", but free_energy gives F(v') - "
                                                  "F(v) = " +
                                                  num(want) +
                                                  ": a closed session must not change energy_delta");
        }
        return passed(check, std::to_string(n) + " chains x " + std::to_string(rounds) + " proposals (" +
                                 std::to_string(commits) + " committed) agree with differences of " +
                                 reference_name + "; worst |difference| " + num(worst));
    });
}

// ---------------------------------------------------------------- local_step

inline CheckResult check_local_step(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "local_step";
    if (!model.has(ANSATZ_FN_LOCAL_STEP))
        return skipped(check, "the model has no local_step");
    return run(check, [&] {
        const Domain domain = domain_of(model);
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(1, options.local_rows);
        const int64_t rounds = std::max<int64_t>(1, options.local_rounds);
        std::vector<double> beta = session_betas(model, domain, n);
        const bool tempered = !beta.empty();
        if (!tempered)
            beta.assign(static_cast<size_t>(n), 1.0);
        Rng start = Rng::stream(options.seed, "conformance.local_step");
        const std::vector<float> initial = random_rows(domain, n, d, start);
        std::vector<float> a = initial, b = initial;
        ansatz_tensor at = make_view(a.data(), { n, d }), bt = make_view(b.data(), { n, d });
        std::vector<int64_t> sites(static_cast<size_t>(n));
        std::vector<float> values(static_cast<size_t>(n)), previous(static_cast<size_t>(n)),
            uniforms(static_cast<size_t>(n)), delta(static_cast<size_t>(n)),
            threshold(static_cast<size_t>(n));
        std::vector<uint8_t> flags_a(static_cast<size_t>(n)), flags_b(static_cast<size_t>(n));
        ansatz_tensor dt = make_view(delta.data(), { n });
        // The three-call path first, its proposals, uniforms, flags and states recorded per round.
        std::vector<std::vector<int64_t>> all_sites;
        std::vector<std::vector<float>> all_values, all_uniforms, states;
        std::vector<std::vector<uint8_t>> all_flags;
        int64_t accepted = 0, rejected = 0;
        Rng rng = Rng::stream(options.seed, "conformance.local_step.rounds");
        {
            LocalSession session(model, at, tempered ? beta.data() : nullptr);
            for (int64_t round = 0; round < rounds; ++round)
            {
                for (int64_t r = 0; r < n; ++r)
                {
                    const size_t k = static_cast<size_t>(r);
                    sites[k] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(d)));
                    values[k] = domain.change(a[static_cast<size_t>(r * d + sites[k])], rng);
                    uniforms[k] = rng.uniform();
                }
                model.energy_delta(at, sites.data(), values.data(), dt);
                for (int64_t r = 0; r < n; ++r)
                {
                    const float minus = -delta[static_cast<size_t>(r)];
                    threshold[static_cast<size_t>(r)] = minus >= 0.0f ? 0.0f : minus;
                }
                ansatz::exp(threshold.data(), n);
                for (int64_t r = 0; r < n; ++r)
                {
                    const size_t k = static_cast<size_t>(r);
                    float& x = a[static_cast<size_t>(r * d + sites[k])];
                    previous[k] = x;
                    flags_a[k] = uniforms[k] < threshold[k] ? 1 : 0;
                    if (flags_a[k])
                        x = values[k];
                    (flags_a[k] ? accepted : rejected) += 1;
                }
                session.commit(at, sites.data(), previous.data(), flags_a.data());
                all_sites.push_back(sites);
                all_values.push_back(values);
                all_uniforms.push_back(uniforms);
                all_flags.push_back(flags_a);
                states.push_back(a);
            }
            session.end();
        }
        // The fused path on the same start, the same proposals and uniforms.
        {
            LocalSession session(model, bt, tempered ? beta.data() : nullptr);
            for (int64_t round = 0; round < rounds; ++round)
            {
                const size_t t = static_cast<size_t>(round);
                std::fill(flags_b.begin(), flags_b.end(), uint8_t{ 2 });
                session.step(bt, 1, all_sites[t].data(), all_values[t].data(), all_uniforms[t].data(),
                             flags_b.data());
                for (int64_t r = 0; r < n; ++r)
                {
                    const size_t k = static_cast<size_t>(r);
                    if (flags_b[k] != all_flags[t][k])
                        throw ConformanceError(
                            check, "round " + std::to_string(round) + ", row " + std::to_string(r) +
                                       " at beta " + num(beta[k]) + ", site " +
                                       std::to_string(all_sites[t][k]) + " set to " + num(all_values[t][k]) +
                                       " with uniform " + num(all_uniforms[t][k]) +
                                       ": local_step says accepted = " + std::to_string(flags_b[k]) +
                                       ", energy_delta and exp(min(0, -delta)) say " +
                                       std::to_string(all_flags[t][k]));
                }
                if (b != states[t])
                    throw ConformanceError(check, "round " + std::to_string(round) +
                                                      ": after local_step the states differ from those of "
                                                      "energy_delta + the accepted writes + local_commit");
            }
            session.end();
        }
        // Two-valued domains: every round in one call, the new values left to the model (flips).
        if (domain.two_valued())
        {
            std::vector<float> c = initial;
            ansatz_tensor ct = make_view(c.data(), { n, d });
            // Chain-major, {N, rounds}: chain r's round t at r * rounds + t.
            const size_t cells = static_cast<size_t>(rounds * n);
            std::vector<int64_t> flat_sites(cells);
            std::vector<float> flat_uniforms(cells);
            std::vector<uint8_t> flat_flags(cells, uint8_t{ 2 });
            for (int64_t t = 0; t < rounds; ++t)
                for (int64_t r = 0; r < n; ++r)
                {
                    const size_t at = static_cast<size_t>(r * rounds + t);
                    flat_sites[at] = all_sites[static_cast<size_t>(t)][static_cast<size_t>(r)];
                    flat_uniforms[at] = all_uniforms[static_cast<size_t>(t)][static_cast<size_t>(r)];
                }
            LocalSession session(model, ct, tempered ? beta.data() : nullptr);
            session.step(ct, rounds, flat_sites.data(), nullptr, flat_uniforms.data(), flat_flags.data());
            session.end();
            for (int64_t t = 0; t < rounds; ++t)
                for (int64_t r = 0; r < n; ++r)
                    if (flat_flags[static_cast<size_t>(r * rounds + t)] !=
                        all_flags[static_cast<size_t>(t)][static_cast<size_t>(r)])
                        throw ConformanceError(
                            check,
                            "all " + std::to_string(rounds) +
                                " rounds in one local_step with flips (no new "
                                "values): round " +
                                std::to_string(t) + ", row " + std::to_string(r) + " says accepted = " +
                                std::to_string(flat_flags[static_cast<size_t>(r * rounds + t)]) +
                                ", round by round it was " +
                                std::to_string(all_flags[static_cast<size_t>(t)][static_cast<size_t>(r)]));
            if (c != states.back())
                throw ConformanceError(check, "all " + std::to_string(rounds) +
                                                  " rounds in one local_step with flips end in other states "
                                                  "than round by round");
        }
        if (accepted == 0 || rejected == 0)
            throw ConformanceError(check, "the rounds gave " + std::to_string(accepted) + " accepted and " +
                                              std::to_string(rejected) +
                                              " rejected proposals: the check needs both (other seed or "
                                              "more local_rounds)");
        return passed(check, std::to_string(n) + " chains x " + std::to_string(rounds) + " rounds (" +
                                 std::to_string(accepted) + " accepted, " + std::to_string(rejected) +
                                 " rejected): local_step gives the flags and states of energy_delta + "
                                 "local_commit bit for bit");
    });
}

// ---------------------------------------------------------------- state_grad

inline CheckResult check_state_grad(const ModelRef& model, const ConformanceOptions& options)
{
    using namespace detail::conformance;
    const std::string check = "state_grad";
    if (!model.has(ANSATZ_FN_STATE_GRAD))
        return skipped(check, "the model has no free_energy_grad_state");
    if (!model.has(ANSATZ_FN_FREE_ENERGY))
        return skipped(check, "the model has free_energy_grad_state but no free_energy to compare it with");
    const Domain domain = domain_of(model);
    if (domain.kind != ANSATZ_DOMAIN_REAL)
        return skipped(check, "dF/dv is defined for real variables; the model's domain is " + domain.name());
    return run(check, [&] {
        const int64_t d = sample_size(model, options, check);
        const int64_t n = std::max<int64_t>(1, options.grad_rows);
        Rng rng = Rng::stream(options.seed, "conformance.state_grad");
        std::vector<float> v = random_rows(domain, n, d, rng);
        const std::vector<float> v_before = v;
        std::vector<float> grad(static_cast<size_t>(n * d), std::numeric_limits<float>::quiet_NaN());
        ansatz_tensor vt = make_view(v.data(), { n, d });
        ansatz_tensor gt = make_view(grad.data(), { n, d });
        model.free_energy_grad_state(vt, gt);
        if (v != v_before)
            throw ConformanceError(check, "free_energy_grad_state wrote into its input v");
        const int64_t total = n * d;
        std::vector<int64_t> elements;
        if (options.grad_max_elements <= 0 || total <= options.grad_max_elements)
            for (int64_t k = 0; k < total; ++k)
                elements.push_back(k);
        else
            for (int64_t k = 0; k < options.grad_max_elements; ++k)
                elements.push_back(static_cast<int64_t>(rng.below(static_cast<uint64_t>(total))));
        double worst = 0;
        for (int64_t k : elements)
        {
            const int64_t r = k / d;
            std::vector<float> row(v.begin() + r * d, v.begin() + (r + 1) * d);
            const float x = row[static_cast<size_t>(k % d)];
            const float up = static_cast<float>(x + options.grad_step);
            const float down = static_cast<float>(x - options.grad_step);
            row[static_cast<size_t>(k % d)] = up;
            const float f_up = free_energy(model, row, 1, d)[0];
            row[static_cast<size_t>(k % d)] = down;
            const float f_down = free_energy(model, row, 1, d)[0];
            const double fd = (static_cast<double>(f_up) - f_down) / (static_cast<double>(up) - down);
            const double tolerance = options.grad_abs_tolerance + options.grad_rel_tolerance * std::abs(fd) +
                                     16 * FLT_EPSILON * (std::abs(double(f_up)) + std::abs(double(f_down))) /
                                         (static_cast<double>(up) - down);
            const double error = std::abs(grad[static_cast<size_t>(k)] - fd);
            if (!(error <= tolerance))
                throw ConformanceError(
                    check, "row " + std::to_string(r) + ", unit " + std::to_string(k % d) +
                               ": free_energy_grad_state gives " + num(grad[static_cast<size_t>(k)]) +
                               ", the central difference of free_energy gives " + num(fd) + " (step " +
                               num(options.grad_step) + ", float32); |difference| " + num(error) +
                               " exceeds the tolerance " + num(tolerance));
            worst = std::max(worst, error / tolerance);
        }
        return passed(check, std::to_string(elements.size()) +
                                 " elements of dF/dv agree with central "
                                 "differences of free_energy; worst |difference| / "
                                 "tolerance " +
                                 num(worst));
    });
}

// ---------------------------------------------------------------- all of them

inline ConformanceReport check_model(const ModelRef& model, const ConformanceOptions& options)
{
    using Check = CheckResult (*)(const ModelRef&, const ConformanceOptions&);
    struct Entry
    {
        const char* name;
        Check run;
        uint64_t only_with; // a 2.2 check: reported only when the model has this function
    };
    static const Entry checks[] = {
        { "random_state", check_random_state, 0 },
        { "parameters", check_parameters, 0 },
        { "energy_delta", check_energy_delta, 0 },
        { "free_energy_grad", check_free_energy_grad, 0 },
        { "conditionals_exact", check_conditionals_exact, 0 },
        { "conditional_sampling", check_conditional_sampling, 0 },
        { "local_moves", check_local_moves, ANSATZ_FN_LOCAL_MOVES },
        { "local_step", check_local_step, ANSATZ_FN_LOCAL_STEP },
        { "state_grad", check_state_grad, ANSATZ_FN_STATE_GRAD },
        { "latent_rows", check_latent_rows, ANSATZ_FN_LATENT },
        { "latent_encode_backward", check_latent_encode_backward, ANSATZ_FN_LATENT },
        { "latent_decode_backward", check_latent_decode_backward, ANSATZ_FN_LATENT },
        { "latent_decode_weighted", check_latent_decode_weighted, ANSATZ_FN_LATENT },
    };
    ConformanceReport report;
    if (!model.valid())
        throw Error("check_model got a ModelRef without a model table");
    for (const auto& [name, run, only_with] : checks)
    {
        if (only_with && !(model.functions() & only_with))
            continue;
        try
        {
            report.checks.push_back(run(model, options));
        }
        catch (const ConformanceError& e)
        {
            report.checks.push_back(CheckResult{ e.check(), Outcome::failed, e.what() });
        }
        catch (const std::exception& e)
        {
            report.checks.push_back(CheckResult{ name, Outcome::failed,
                                                 "conformance check '" + std::string(name) +
                                                     "' failed: a call of the model failed: " + e.what() });
        }
    }
    return report;
}

} // namespace ansatz::testing

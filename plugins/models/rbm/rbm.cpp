// Restricted Boltzmann machine (Smolensky 1986; Hinton 2002) with binary hidden units h in {0,1}^H and
// Bernoulli or Gaussian visible units.
//
// Bernoulli (v in {0,1}^D):
//     E(v, h) = -a.v - b.h - v W h
//     F(v)    = -a.v - sum_j softplus(b_j + (v W)_j)
//     p(h_j = 1 | v) = sigmoid(b_j + (v W)_j),   p(v_i = 1 | h) = sigmoid(a_i + (h W^T)_i)
// Gaussian (v in R^D, standard deviations sigma_i), with x_i = v_i / sigma_i^2:
//     E(v, h) = sum_i (v_i - a_i)^2 / 2 sigma_i^2 - b.h - x W h
//     F(v)    = sum_i (v_i - a_i)^2 / 2 sigma_i^2 - sum_j softplus(b_j + (x W)_j)
//     p(h_j = 1 | v) = sigmoid(b_j + (x W)_j),   p(v_i | h) = N(a_i + (h W^T)_i, sigma_i^2)
//
// Parameters, in this order: "weights" W {D, H}, "visible_bias" a {D}, "hidden_bias" b {H}, and with
// learn_sigma "log_sigma" {D} (sigma_i = exp(log_sigma_i)); with centered, "centered_visible_bias" a' and
// "centered_hidden_bias" b' in place of a and b (see CENTRED PARAMETRISATION below).
// Every call works on a whole batch: one gemm for the pre-activations, then whole-array expressions.
#include "session_kernels.hpp"

#include <ansatz/blas.hpp>
#include <ansatz/math.hpp>
#include <ansatz/plugin.hpp>
#include <ansatz/xtensor.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xtensor.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numbers>
#include <string>
#include <vector>

namespace
{

using ansatz::blas::gemm;
using ansatz::blas::Op;

// softplus(x) = log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|).
template <class E>
auto softplus(E&& x)
{
    return xt::maximum(x, 0.0f) + xt::log1p(xt::exp(-xt::abs(x)));
}

// Every row of out {N, K} = bias {K}: a product with beta = 1 then adds onto the bias.
void fill_rows(ansatz_tensor& out, const float* bias)
{
    const int64_t cols = out.shape[1];
    float* o = ansatz::f32(out);
    for (int64_t r = 0; r < out.shape[0]; ++r)
        std::copy_n(bias, cols, o + r * cols);
}

// softplus in double, for the few scalars summed in double.
double softplus_double(double x)
{
    return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
}

// Requires a float64 vector view {size} (the tempered and block free energies' out).
void require_doubles(const ansatz_tensor& t, int64_t size, const char* what)
{
    if (t.dtype != ANSATZ_DTYPE_FLOAT64)
        throw ansatz::Error(std::string(what) + " holds " + ansatz::dtype_name(t.dtype) +
                            " elements, expected float64");
    if (t.rank != 1 || t.shape[0] != size)
        throw ansatz::Error(std::string(what) + " has shape " + ansatz::shape_string(t) + ", expected {" +
                            std::to_string(size) + "}");
}

// The SDK's shape checks for views named "call: part", the name composed only when a check fails (no
// string is built on the hot path).
void require_matrix(const ansatz_tensor& t, int64_t rows, int64_t cols, const char* call, const char* part)
{
    if (t.dtype == ANSATZ_DTYPE_FLOAT32 && t.rank == 2 && (rows < 0 || t.shape[0] == rows) &&
        (cols < 0 || t.shape[1] == cols))
        return;
    ansatz::require_matrix(t, rows, cols, (std::string(call) + ": " + part).c_str());
}

void require_vector(const ansatz_tensor& t, int64_t size, const char* call, const char* part)
{
    if (t.dtype == ANSATZ_DTYPE_FLOAT32 && t.rank == 1 && t.shape[0] == size)
        return;
    ansatz::require_vector(t, size, (std::string(call) + ": " + part).c_str());
}

using rbm::exp_one;
using rbm::FlipRun;
using rbm::kGroup;
using rbm::kLanes;
using rbm::session_kernels;
using rbm::session_max_lane_double;
using rbm::session_max_lane_float;
using rbm::session_max_q;

using ansatz::Workspace;

// acc[j] = sum_r w[r] x[r, j] for the columns [first, last) of x {rows, cols}, in double, rows in order (w =
// 1 when weights is null). Compiled twice, for plain x86-64 and for AVX2, chosen when the library is
// loaded (target_clones: an ifunc, so glibc): the same products and sums in the same order, so the same
// bits, four doubles an instruction instead of two. ("avx2" does not enable FMA, so the compiler cannot
// fuse w * x into the sum in one clone and not the other.)
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
__attribute__((target_clones("avx2", "default")))
#endif
#endif
void sum_columns(const float* x, int64_t rows, int64_t cols, const float* weights, int64_t first, int64_t last,
                 double* acc)
{
    std::fill(acc + first, acc + last, 0.0);
    for (int64_t r = 0; r < rows; ++r)
    {
        const float* row = x + r * cols;
        if (weights)
        {
            const double w = weights[r];
            for (int64_t j = first; j < last; ++j)
                acc[j] += w * row[j];
        }
        else
            for (int64_t j = first; j < last; ++j)
                acc[j] += row[j];
    }
}

class Rbm final : public ansatz::Model
{
public:
    static void describe(ansatz::Schema& s)
    {
        s.integer("hidden", "number of hidden units H").default_value(64).min(1);
        s.real("init_std",
               "standard deviation of the initial weights, W ~ N(0, init_std^2); biases start at 0 "
               "(the visible ones from init_data when it is given)")
            .default_value(0.01)
            .min(0);
        s.integer("visible", "number of visible units D; 0 takes D from the data's sample shape")
            .default_value(0)
            .min(0)
            .max(INT32_MAX);
        s.choice("visible_units", "bernoulli|gaussian",
                 "visible units: bernoulli (values in [0, 1]) or gaussian (real, N(a + W h, sigma^2))")
            .default_value("bernoulli");
        s.real("sigma", "gaussian units: the standard deviation of every unit (with learn_sigma, its start)")
            .default_value(1.0)
            .min(0, true);
        s.boolean("learn_sigma", "gaussian units: learn every unit's sigma, as the parameter log_sigma")
            .default_value(false);
        s.component(
             "init_data", ANSATZ_KIND_DATASET,
             "a dataset whose means start the visible biases: logit of the clipped marginal (bernoulli), "
             "the mean (gaussian); absent: biases start at 0")
            .optional();
        s.integer("init_rows", "rows of init_data to take the means over, from the first; 0: all")
            .default_value(0)
            .min(0);
        s.boolean("centered",
                  "bernoulli units: train in the centred parametrisation (Melchior, Fischer & Wiskott 2016), "
                  "E = -(v - mu).a - (h - 1/2).b - (v - mu) W (h - 1/2) with mu the means of init_data: "
                  "the same model family, a better conditioned gradient; the parameters are then "
                  "centered_visible_bias and centered_hidden_bias")
            .default_value(false);
    }

    Rbm(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), hidden_(c.integer("hidden")), visible_key_(c.integer("visible")),
          init_std_(c.real("init_std")), gaussian_(c.string("visible_units") == "gaussian"),
          sigma_(c.real("sigma")), learn_sigma_(c.boolean("learn_sigma")), init_rows_(c.integer("init_rows")),
          centered_(c.boolean("centered")), host_(host)
    {
        if (centered_ && gaussian_)
            throw ansatz::InputError("centered: true needs visible_units: bernoulli (the centred "
                                     "parametrisation is built here for binary units only)");
        if (centered_ && !c.has("init_data"))
            throw ansatz::InputError("centered: true needs init_data: the visible offsets mu are the means "
                                     "of its samples");
        if (learn_sigma_ && !gaussian_)
            throw ansatz::InputError(
                "learn_sigma: true needs visible_units: gaussian (bernoulli visible units "
                "have no sigma)");
        if (c.has("init_data"))
            init_data_ = ansatz::as_dataset(c.component("init_data"));
        else if (init_rows_ != 0)
            throw ansatz::InputError("init_rows is " + std::to_string(init_rows_) +
                                     ", but no init_data names a dataset to read them from");
        // Nothing is allocated before setup(): a size the machine cannot hold is refused there, or here
        // when `visible:` fixes it, before any memory is asked for.
        if (visible_key_ != 0)
            require_memory(visible_key_, "visible: " + std::to_string(visible_key_));
    }

    // With `visible:` set, the model knows its shape and can be sampled without data.
    ansatz_sample_info sample_info() const override
    {
        ansatz_sample_info info = Model::sample_info();
        info.domain = gaussian_ ? ANSATZ_DOMAIN_REAL : ANSATZ_DOMAIN_BINARY;
        if (visible_key_ != 0)
        {
            info.rank = 1;
            info.shape[0] = visible_key_;
        }
        return info;
    }

    void setup(const std::vector<int64_t>& sample_shape, ansatz::Rng& rng) override
    {
        int64_t d = 1;
        std::string shape = "{";
        for (size_t i = 0; i < sample_shape.size(); ++i)
        {
            if (sample_shape[i] <= 0)
                throw ansatz::InputError("the data's sample shape has an empty axis");
            d *= sample_shape[i];
            shape += (i ? ", " : "") + std::to_string(sample_shape[i]);
        }
        shape += "}";
        if (visible_key_ != 0 && visible_key_ != d)
            throw ansatz::InputError("key visible is " + std::to_string(visible_key_) +
                                     ", but the data's samples have " + std::to_string(d) +
                                     " values (sample shape " + shape + ")");
        require_memory(d, "the data's " + std::to_string(d) + " values per sample");
        allocate(d);
        memo_.valid = false;
        for (float& w : weights_)
            w = static_cast<float>(init_std_ * rng.normal());
        visible_bias_.fill(0.0f);
        hidden_bias_.fill(0.0f);
        log_sigma_.fill(static_cast<float>(std::log(sigma_)));
        refresh_sigma();
        if (init_data_.valid())
            init_visible_bias(rng.derive(0)); // a child stream: the weights' stream is the same either way
        if (centered_)
        {
            offsets_float_.assign(offsets_.begin(), offsets_.end());
            center_parameters();
        }
        ready_ = true;
    }

    std::vector<ansatz_named_tensor> parameters() override
    {
        std::vector<ansatz_named_tensor> out = { { "weights",
                                                   ansatz::make_view(weights_.data(), { d_, hidden_ }) } };
        if (centered_)
        {
            out.push_back({ "centered_visible_bias", ansatz::make_view(centered_visible_.data(), { d_ }) });
            out.push_back(
                { "centered_hidden_bias", ansatz::make_view(centered_hidden_.data(), { hidden_ }) });
        }
        else
        {
            out.push_back({ "visible_bias", ansatz::make_view(visible_bias_.data(), { d_ }) });
            out.push_back({ "hidden_bias", ansatz::make_view(hidden_bias_.data(), { hidden_ }) });
        }
        if (learn_sigma_)
            out.push_back({ "log_sigma", ansatz::make_view(log_sigma_.data(), { d_ }) });
        return out;
    }

    // The host wrote the parameters (abi.h 2.3): the kept E[h | v] belongs to the old ones, and a centred
    // model's biases follow from its parameters.
    void parameters_changed()
    {
        memo_.valid = false;
        if (centered_ && ready_)
            uncenter_biases();
    }

    // Bernoulli units: every unit Bernoulli(0.5); Gaussian units: v_i ~ N(a_i, sigma_i^2).
    void random_state(ansatz_tensor& out, ansatz::Streams rngs) override
    {
        prepare();
        ansatz::require_matrix(out, -1, d_, "rbm random_state: out");
        for (int64_t r = 0; r < out.shape[0]; ++r)
        {
            ansatz::Rng& rng = rngs[static_cast<size_t>(r)];
            float* o = ansatz::f32(out) + r * d_;
            if (gaussian_)
                for (int64_t i = 0; i < d_; ++i)
                    o[i] = static_cast<float>(visible_bias_.data()[i] + sd_[i] * rng.normal());
            else
                for (int64_t i = 0; i < d_; ++i)
                    o[i] = rng.uniform() < 0.5f ? 1.0f : 0.0f;
        }
    }

    // ---- ENERGY

    void free_energy(const ansatz_tensor& v, ansatz_tensor& out)
    {
        prepare();
        ansatz::require_matrix(v, -1, d_, "rbm free_energy: v");
        ansatz::require_vector(out, v.shape[0], "rbm free_energy: out");
        free_energy_from(v, pre_activations(hidden_input(v)), out);
    }

    void free_energy_grad(const ansatz_tensor& v, float scale, ansatz_tensor* grads, int32_t n_grads,
                          ansatz_tensor* out)
    {
        accumulate_grad(v, scale, nullptr, grads, n_grads, out, "rbm free_energy_grad");
    }

    // One pass over rows of both signs: grads[k] += sum_n weights[n] dF(v[n])/dtheta_k.
    void free_energy_grad_weighted(const ansatz_tensor& v, const float* weights, ansatz_tensor* grads,
                                   int32_t n_grads, ansatz_tensor* out)
    {
        accumulate_grad(v, 1.0f, weights, grads, n_grads, out, "rbm free_energy_grad_weighted");
    }

    void energy_delta(const ansatz_tensor& v, const int64_t* sites, const float* new_values,
                      ansatz_tensor& out)
    {
        if (session_.open)
        {
            session_delta(v, sites, new_values, out);
            return;
        }
        prepare();
        ansatz::require_matrix(v, -1, d_, "rbm energy_delta: v");
        const int64_t n = v.shape[0];
        ansatz::require_vector(out, n, "rbm energy_delta: out");

        // Setting v_i to u changes it by d = u - v_i and every pre-activation by d W_i (Bernoulli) or
        // d W_i / sigma_i^2 (Gaussian); the visible term by -a_i d, or by d ((u + v_i) / 2 - a_i) /
        // sigma_i^2.
        ansatz_tensor rows = flip_rows_.view(n, hidden_); // W_{sites[n]}
        ansatz_tensor change = flip_change_.view(n, 1);   // the pre-activations' factor of W_i
        ansatz_tensor visible = flip_bias_.view(n, 1);    // the change of the visible term
        const float* values = ansatz::f32(v);
        float* row_data = ansatz::f32(rows);
        float* change_data = ansatz::f32(change);
        float* visible_data = ansatz::f32(visible);
        for (int64_t k = 0; k < n; ++k)
        {
            const int64_t i = sites[k];
            if (i < 0 || i >= d_)
                throw ansatz::Error("rbm energy_delta: site " + std::to_string(i) + " of chain " +
                                    std::to_string(k) + " is outside [0, " + std::to_string(d_) + ")");
            const float u = new_values[k];
            if (gaussian_ ? !std::isfinite(u) : !(u >= 0.0f && u <= 1.0f))
                throw ansatz::Error("rbm energy_delta: new value " + std::to_string(u) + " of chain " +
                                    std::to_string(k) + " is outside the units' support " +
                                    (gaussian_ ? "(the finite reals)" : "[0, 1]"));
            std::copy_n(weights_.data() + i * hidden_, hidden_, row_data + k * hidden_);
            const float now = values[k * d_ + i];
            if (gaussian_)
            {
                const double d = static_cast<double>(u) - now;
                change_data[k] = static_cast<float>(d / variance_[i]);
                visible_data[k] = static_cast<float>(
                    d * (0.5 * (static_cast<double>(u) + now) - visible_bias_.data()[i]) / variance_[i]);
            }
            else
            {
                change_data[k] = u - now;
                visible_data[k] = -visible_bias_.data()[i] * change_data[k];
            }
        }
        ansatz_tensor pre = pre_activations(hidden_input(v));
        auto p = ansatz::adapt<2>(pre);
        auto w = ansatz::adapt<2>(rows);
        auto d_column = ansatz::adapt<2>(change);
        auto e = ansatz::adapt<1>(ansatz::make_view(visible_data, { n }));
        auto o = ansatz::adapt<1>(out);
        xt::noalias(o) =
            e - xt::cast<float>(xt::sum<double>(softplus(p + d_column * w) - softplus(p), { 1 }));
    }

    // ---- LOCAL MOVES (abi.h 2.2): a session on chains v in which energy_delta costs O(H) per row.
    //
    // Cached per row n, with q = beta_n p and p = b + x W the pre-activations (x = v, or v / sigma^2):
    //   r_j = e^(q_j) (float) and L = log prod_j (1 + r_j) (double). A float holds e^q with all its
    //   digits for |q| < 87, so neither saturating end of sigmoid(q) = r / (1 + r) loses any.
    // Changing unit i by d changes p by e W_i (e = d, or d / sigma_i^2), and, with y_j = beta e W_ij and
    // E_j = e^(y_j),
    //   softplus(q_j + y_j) - softplus(q_j) = log((1 + r_j E_j) / (1 + r_j)),
    // so the hidden part of F_beta(v') - F_beta(v) is -(log prod_j (1 + r_j E_j) - L): one multiply, one
    // add and one multiply per hidden unit, in float in kLanes independent lanes, and one log per row.
    // For flips of binary units (e = +-1) E comes from tables e^(+-beta W) built at local_begin
    // (e^(-beta W) as 1 / e^(beta W), so a flip and its reverse cancel to an ulp); other changes compute
    // E row by row. An accepted change makes r E the row's r and L the proposal's log prod: r is double
    // buffered, and after a round in which most rows were accepted the proposals write r E into the
    // other half (the commit flips the half), else the commit multiplies r by E: the same bits, no
    // division, no exp. Every refresh_every rounds all rows' p are recomputed from v (one product,
    // b + x W) and r and L from p, so rounding cannot accumulate.
    // Ranges: qlane bounds every lane's log prod_j (1 + r_j) (from the binary exponents of the lanes the
    // latest product computed), and since softplus is 1-Lipschitz a proposal's lane is below
    // qlane + |beta e| row_lane_i: while that is below 80 the lanes are normal floats (combined by
    // exponent and mantissa: no overflow); up to 700 the lanes go in double (the factors stay floats
    // while qmax + |beta e| max_j |W_ij| < 80). qmax bounds max_j |q_j|; commits raise it by
    // |beta e| max_j |W_ij|, and when that makes it too large it is recomputed from the exponents of r
    // (q_bounds). Beyond, or when E could leave the range of a float (|y_j| >= 80), or some |q_j| >= 80
    // (r subnormal or infinite in float), the row falls back to softplus differences in double from p,
    // which is then kept up to date for that row (p += e W_i at its commits; it is recomputed from v, in
    // double, when a row needs it after product commits; a commit that could take |q| past 80 recomputes
    // r from it).

    void local_begin(const ansatz_tensor& v, const double* beta)
    {
        prepare();
        require_matrix(v, -1, d_, "rbm local_begin", "v");
        const int64_t n = v.shape[0];
        if (beta)
            require_betas(beta, n, "rbm local_begin");
        LocalSession& ls = session_;
        ls.open = false;
        ls.data = v.data;
        ls.rows = n;
        ls.beta.assign(static_cast<size_t>(n), 1.0);
        if (beta)
            std::copy_n(beta, n, ls.beta.begin());
        ls.pending = false;
        const size_t nh = static_cast<size_t>(n * hidden_);
        const size_t rows = static_cast<size_t>(n);
        ls.p.resize(nh);
        ls.r.resize(2 * nh);
        ls.side.assign(rows, 0);
        ls.stored.assign(rows, 0);
        ls.store_ahead = true;
        ls.e.resize(nh);
        ls.kind.assign(rows, Change::none);
        ls.sites.resize(rows);
        ls.values.resize(rows);
        ls.factor.resize(rows);
        ls.p_current.assign(rows, 0);
        ls.stale.assign(rows, 0);
        ls.qmax.assign(rows, 0.0);
        ls.qlane.assign(rows, 0.0);
        ls.numerator_top.assign(rows, 0.0);
        ls.log_sum.assign(rows, 0.0);
        ls.numerator.assign(rows, 0.0);
        ls.ones.assign(static_cast<size_t>(hidden_), 1.0f);
        ls.rounds = 0;
        ls.table_of_row.assign(rows, -1);
        // Per visible unit: the largest |W_ij| and the largest sum of |W_ij| over the units j of one lane of
        // the products (j mod kLanes); kept while the weights are the same bits. `derived_from` names the
        // weights only once everything derived from them is complete, so an exception on the way (an
        // allocation) leaves the next session to derive them again.
        const size_t d = static_cast<size_t>(d_);
        const float* w = weights_.data();
        const size_t weight_count = static_cast<size_t>(d_ * hidden_);
        const bool same_weights = ls.derived_from.size() == weight_count &&
                                  std::memcmp(ls.derived_from.data(), w, weight_count * sizeof(float)) == 0;
        if (!same_weights)
        {
            ls.derived_from.clear();
            ls.row_max.resize(d);
            ls.row_lane.resize(d);
            for (int64_t i = 0; i < d_; ++i)
            {
                double mx = 0;
                double lane[kLanes] = {};
                for (int64_t j = 0; j < hidden_; ++j)
                {
                    const double x = std::abs(static_cast<double>(w[i * hidden_ + j]));
                    mx = std::max(mx, x);
                    lane[j % kLanes] += x;
                }
                const size_t k = static_cast<size_t>(i);
                ls.row_max[k] = mx;
                ls.row_lane[k] = *std::max_element(lane, lane + kLanes);
            }
        }
        ls.lane_units = static_cast<double>((hidden_ + kLanes - 1) / kLanes) * std::numbers::ln2;
        // Tables e^(beta W) and 1 / e^(beta W) for flips of binary units, one pair per distinct beta (the
        // first ones in row order, while they fit): the previous session's table of a beta when the weights
        // are the same, else made in the buffers of a table no longer used (first handed back, so that at
        // most one session's tables exist) or new ones. A table joins ls.tables only when it is complete.
        std::vector<double> wanted; // the betas given a table, in order of first use: ls.tables' order
        if (!gaussian_)
        {
            double max_w = 0;
            for (double m : ls.row_max)
                max_w = std::max(max_w, m);
            const double table_bytes = 8.0 * static_cast<double>(d_) * static_cast<double>(hidden_);
            for (int64_t r = 0; r < n; ++r)
            {
                const double b = ls.beta[static_cast<size_t>(r)];
                const auto at = std::find(wanted.begin(), wanted.end(), b);
                int32_t found = at == wanted.end() ? -1 : static_cast<int32_t>(at - wanted.begin());
                if (found < 0 && std::abs(b) * max_w < max_exponent &&
                    static_cast<double>(wanted.size() + 1) * table_bytes <= max_table_bytes)
                {
                    found = static_cast<int32_t>(wanted.size());
                    wanted.push_back(b);
                }
                ls.table_of_row[static_cast<size_t>(r)] = found;
            }
        }
        std::vector<Table> previous = std::move(ls.tables);
        ls.tables.clear();
        std::vector<Table> kept(wanted.size()); // (an empty up: none kept)
        for (Table& t : previous)
        {
            const auto at = std::find(wanted.begin(), wanted.end(), t.beta);
            if (same_weights && at != wanted.end())
                kept[static_cast<size_t>(at - wanted.begin())] = std::move(t);
            else
                ls.spare.push_back(std::move(t));
        }
        for (size_t k = 0; k < wanted.size(); ++k)
        {
            if (!kept[k].up.empty())
            {
                ls.tables.push_back(std::move(kept[k]));
                continue;
            }
            Table t;
            if (!ls.spare.empty())
            {
                t = std::move(ls.spare.back());
                ls.spare.pop_back();
            }
            t.beta = wanted[k];
            t.up.resize(weight_count);
            t.down.resize(weight_count);
            for (size_t j = 0; j < weight_count; ++j)
                t.up[j] = static_cast<float>(t.beta * w[j]);
            ansatz::exp(t.up.data(), static_cast<int64_t>(weight_count));
            for (size_t j = 0; j < weight_count; ++j)
                t.down[j] = 1.0f / t.up[j];
            ls.tables.push_back(std::move(t));
        }
        if (!same_weights)
            ls.derived_from.assign(w, w + weight_count);
        refresh_all(v);
        ls.open = true;
    }

    void local_commit(const ansatz_tensor& v, const int64_t* sites, const float* previous_values,
                      const uint8_t* accepted)
    {
        LocalSession& ls = session_;
        require_session(v, "rbm local_commit");
        if (!ls.pending)
            throw ansatz::Error(
                "rbm local_commit: no energy_delta of this session proposed changes to commit");
        const float* values = ansatz::f32(v);
        int64_t accepted_rows = 0;
        for (int64_t r = 0; r < ls.rows; ++r)
        {
            const size_t k = static_cast<size_t>(r);
            if (sites[r] != ls.sites[k])
                throw ansatz::Error("rbm local_commit: chain " + std::to_string(r) + " commits site " +
                                    std::to_string(sites[r]) +
                                    ", but the latest energy_delta proposed site " +
                                    std::to_string(ls.sites[k]));
            if (!accepted[r])
                continue;
            const int64_t i = sites[r];
            const float now = values[r * d_ + i];
            if (now != ls.values[k])
                throw ansatz::Error("rbm local_commit: chain " + std::to_string(r) + " holds " +
                                    std::to_string(now) + " at site " + std::to_string(i) +
                                    ", not the value " + std::to_string(ls.values[k]) +
                                    " the latest energy_delta proposed");
            (void)previous_values; // the cache kept the change from energy_delta
            ++accepted_rows;
            commit_row(v, r);
        }
        // The next round's proposals write r E ahead when most of this round's were accepted (a commit
        // then only flips the row's half); else the commits multiply r by E. The same bits either way.
        ls.store_ahead = 2 * accepted_rows > ls.rows;
        ls.pending = false;
    }

    // The commit of row r's latest proposal, accepted: v[r] holds its new value (see local_commit).
    void commit_row(const ansatz_tensor& v, int64_t r)
    {
        LocalSession& ls = session_;
        const size_t k = static_cast<size_t>(r);
        const int64_t i = ls.sites[k];
        const Change kind = ls.kind[k];
        if (kind == Change::none)
            return;
        const double e = ls.factor[k];
        const size_t ik = static_cast<size_t>(i);
        if (kind == Change::exact)
        {
            // p is up to date for this row (the proposal needed it): add the change, r from p.
            session_kernels().add_scaled(ls.p.data() + r * hidden_, e, weights_.data() + i * hidden_,
                                         hidden_);
            refresh_row(r);
            return;
        }
        // r *= E keeps every r_j a normal float while max_j |q_j| stays below max_q, which the change
        // moves by at most t max_j |W_ij|; beyond, r comes from p computed anew from v (which holds
        // the change).
        const double t = std::abs(ls.beta[k] * e), dq = t * ls.row_max[ik];
        if (ls.qmax[k] + dq >= max_q && ls.stale[k])
            estimate_bounds(r);
        ls.p_current[k] = 0;
        if (ls.qmax[k] + dq >= max_q)
        {
            current_p(v, r);
            refresh_row(r);
            return;
        }
        if (ls.stored[k])
            ls.side[k] ^= 1; // the proposal wrote r E into the row's other half
        else
            session_kernels().scale(r_of(r),
                                    kind == Change::general ? ls.e.data() + r * hidden_
                                                            : table_row(k, i, kind == Change::flip_down),
                                    hidden_);
        ls.log_sum[k] = ls.numerator[k];
        ls.qmax[k] += dq;
        ls.qlane[k] = ls.numerator_top[k]; // the new lanes' products, from the proposal's
        ls.stale[k] = 1;
    }

    void local_end()
    {
        session_.open = false;
        session_.pending = false;
        session_.data = nullptr;
    }

    // ---- LOCAL_STEP (abi.h 2.4): `rounds` rounds of the session in one call, chain-major arrays {N,
    // rounds}. Rows go in groups of kGroup, each group through all its rounds before the next (their r
    // stay in the core's cache): the common round (a flip of a binary unit with the row's table, its
    // product in the float lanes, its commit without a refresh) in flip_group's lockstep loop, any other
    // through general_round (propose, the acceptance, commit_row: the code of energy_delta and
    // local_commit). Both give the bits of energy_delta + the acceptance + local_commit round by round:
    // the same deltas from the same cache (r E either written into the other half or multiplied into r,
    // the same floats), and the refresh of every row every refresh_every rounds at the same rounds: the
    // call is cut there, every row runs its rounds up to the cut, then refresh_all. Flips (new_values
    // nullptr): the new value is 0 where v holds 1, else 1 (as the metropolis_hastings sampler proposes
    // them).
    void local_step(const ansatz_tensor& v, int64_t rounds, const int64_t* sites, const float* new_values,
                    const float* uniforms, uint8_t* accepted)
    {
        require_ready();
        LocalSession& ls = session_;
        require_session(v, "rbm local_step");
        const int64_t n = ls.rows;
        if (!new_values && gaussian_)
            throw ansatz::Error("rbm local_step: flips (no new values) need bernoulli visible units; "
                                "gaussian units take their new values");
        for (int64_t r = 0; r < n; ++r)
            for (int64_t t = 0; t < rounds; ++t)
            {
                const int64_t at = r * rounds + t, i = sites[at];
                if (i < 0 || i >= d_)
                    throw ansatz::Error("rbm local_step: site " + std::to_string(i) + " of chain " +
                                        std::to_string(r) + " at round " + std::to_string(t) +
                                        " is outside [0, " + std::to_string(d_) + ")");
                if (new_values && !in_support(new_values[at]))
                    throw ansatz::Error("rbm local_step: new value " + std::to_string(new_values[at]) +
                                        " of chain " + std::to_string(r) + " at round " + std::to_string(t) +
                                        " is outside the units' support " +
                                        (gaussian_ ? "(the finite reals)" : "[0, 1]"));
            }
        if (rounds >
            0) // (the rounds' proposals replace a pending energy_delta's, as another energy_delta does)
            ls.pending = false;
        for (int64_t t0 = 0; t0 < rounds;)
        {
            // Round t0 counts as energy_delta's call would (a refresh first when it is due); the rounds
            // after it up to the next refresh run without one.
            if (++ls.rounds > refresh_every)
                refresh_all(v);
            const int64_t span = std::min<int64_t>(rounds - t0, refresh_every - ls.rounds + 1);
            ls.rounds += static_cast<int32_t>(span - 1);
            for (int64_t r0 = 0; r0 < n; r0 += kGroup)
                rounds_of_group(v, r0, std::min<int64_t>(kGroup, n - r0), rounds, t0, t0 + span, sites,
                                new_values, uniforms, accepted);
            t0 += span;
        }
    }

    // Rows [r0, r0 + count) (count <= kGroup), rounds [first, end): the rows with a table in lockstep
    // (flip_group), the rounds it leaves through general_round; rows without a table through general_round.
    void rounds_of_group(const ansatz_tensor& v, int64_t r0, int64_t count, int64_t rounds, int64_t first,
                         int64_t end, const int64_t* sites, const float* new_values, const float* uniforms,
                         uint8_t* accepted)
    {
        LocalSession& ls = session_;
        FlipRun runs[kGroup];
        int64_t rows[kGroup];
        int grouped = 0;
        for (int64_t r = r0; r < r0 + count; ++r)
        {
            if (ls.table_of_row[static_cast<size_t>(r)] < 0) // no table: every round through general_round
            {
                for (int64_t t = first; t < end; ++t)
                    general_round(v, r, t, sites + r * rounds, new_values ? new_values + r * rounds : nullptr,
                                  uniforms + r * rounds, accepted + r * rounds);
                continue;
            }
            runs[grouped] = flip_run(v, r, sites + r * rounds, new_values ? new_values + r * rounds : nullptr,
                                     uniforms + r * rounds, accepted + r * rounds);
            rows[grouped++] = r;
        }
        if (grouped == 0)
            return;
        for (int64_t t = first; t < end; ++t)
        {
            for (int g = 0; g < grouped; ++g)
                load_run(runs[g], rows[g]);
            uint32_t pending = 0;
            t = session_kernels().flip_group(runs, grouped, t, end, &pending);
            for (int g = 0; g < grouped; ++g)
                store_run(runs[g], rows[g]);
            if (!pending)
                break;                        // (t == end)
            for (int g = 0; g < grouped; ++g) // round t of the rows the loop left
                if (pending >> g & 1)
                    general_round(v, rows[g], t, runs[g].sites, runs[g].values, runs[g].uniforms,
                                  runs[g].accepted);
        }
    }

    // flip_group's view of row r (a row with a table), its arrays from round 0; its state from load_run.
    FlipRun flip_run(const ansatz_tensor& v, int64_t r, const int64_t* sites, const float* new_values,
                     const float* uniforms, uint8_t* accepted)
    {
        LocalSession& ls = session_;
        const size_t k = static_cast<size_t>(r);
        const Table& tb = ls.tables[static_cast<size_t>(ls.table_of_row[k])];
        return FlipRun{ ansatz::f32(v) + r * d_,
                        sites,
                        new_values,
                        uniforms,
                        accepted,
                        { ls.r.data() + 2 * r * hidden_, ls.r.data() + (2 * r + 1) * hidden_ },
                        tb.up.data(),
                        tb.down.data(),
                        visible_bias_.data(),
                        ls.row_lane.data(),
                        ls.row_max.data(),
                        d_,
                        hidden_,
                        ls.beta[k],
                        std::abs(ls.beta[k]),
                        0,
                        0,
                        0,
                        0,
                        false };
    }
    void load_run(FlipRun& run, int64_t r) const
    {
        const LocalSession& ls = session_;
        const size_t k = static_cast<size_t>(r);
        run.side = ls.side[k];
        run.log_sum = ls.log_sum[k];
        run.qmax = ls.qmax[k];
        run.qlane = ls.qlane[k];
        run.committed = false;
    }
    void store_run(const FlipRun& run, int64_t r)
    {
        LocalSession& ls = session_;
        const size_t k = static_cast<size_t>(r);
        ls.side[k] = static_cast<uint8_t>(run.side);
        ls.log_sum[k] = run.log_sum;
        ls.qmax[k] = run.qmax;
        ls.qlane[k] = run.qlane;
        if (run.committed) // as local_commit: the bounds were raised by commits, p is not the row's
        {
            ls.stale[k] = 1;
            ls.p_current[k] = 0;
        }
    }

    // Round t of row r (its arrays from round 0) through propose, the acceptance and commit_row: the code
    // of energy_delta and local_commit.
    void general_round(const ansatz_tensor& v, int64_t r, int64_t t, const int64_t* sites,
                       const float* new_values, const float* uniforms, uint8_t* accepted)
    {
        float* row = ansatz::f32(v) + r * d_;
        const int64_t i = sites[t];
        const float now = row[i];
        const float u = new_values ? new_values[t] : (now == 1.0f ? 0.0f : 1.0f);
        const float minus = -propose(v, r, i, u);
        const float threshold = exp_one(minus >= 0.0f ? 0.0f : minus); // NaN stays NaN: rejected
        const bool accept = uniforms[t] < threshold;
        accepted[t] = accept ? 1 : 0;
        if (accept)
        {
            row[i] = u;
            commit_row(v, r);
        }
    }

    // ---- STATE GRADIENT (abi.h 2.2), gaussian units: with x = v / sigma^2 and p = b + x W,
    //   dF/dv_i = (v_i - a_i) / sigma_i^2 - sum_j sigmoid(p_j) W_ij / sigma_i^2.
    void free_energy_grad_state(const ansatz_tensor& v, ansatz_tensor& out)
    {
        prepare();
        if (!gaussian_)
            throw ansatz::InputError("rbm free_energy_grad_state: bernoulli visible units are discrete, so "
                                     "dF/dv is defined only for visible_units: gaussian");
        require_matrix(v, -1, d_, "rbm free_energy_grad_state", "v");
        const int64_t n = v.shape[0];
        require_matrix(out, n, d_, "rbm free_energy_grad_state", "out");
        ansatz_tensor pre = pre_activations(hidden_input(v));
        ansatz::sigmoid(ansatz::f32(pre), n * hidden_);
        gemm(team(), Op::none, Op::transpose, 1.0f, pre, weights_view(), 0.0f, out); // sigmoid(p) W^T
        const float* x = ansatz::f32(v);
        float* o = ansatz::f32(out);
        const float* a = visible_bias_.data();
        for (int64_t r = 0; r < n; ++r)
            for (int64_t i = 0; i < d_; ++i)
            {
                const size_t k = static_cast<size_t>(i);
                o[r * d_ + i] = (x[r * d_ + i] - a[i] - o[r * d_ + i]) * precision_[k];
            }
    }

    // ---- CONDITIONALS

    int64_t block_size(ansatz_block block) const { return block == ANSATZ_BLOCK_VISIBLE ? d_ : hidden_; }

    void conditional(ansatz_block block, const ansatz_tensor& given, ansatz_tensor& mean,
                     ansatz_tensor* sample, ansatz::Streams rngs)
    {
        conditional_at(block, given, nullptr, nullptr, mean, sample, rngs, "rbm conditional");
    }

    // ---- TEMPERED (abi.h): E_beta,phi(v, h) = E0(v) + beta E1(v, h) - phi.v. Bernoulli units: E0 = 0,
    // beta multiplies the whole energy; Gaussian units: E0 = sum_i (v_i - a_i)^2 / 2 sigma_i^2 is kept.

    // out[n] = F_beta[n],phi(v[n]), in double. With p = b + xW (x = v for Bernoulli units):
    //   Bernoulli: -beta a.v - phi.v - sum_j softplus(beta p_j)
    //   Gaussian:  sum_i (v_i - a_i)^2 / 2 sigma_i^2 - phi.v - sum_j softplus(beta p_j)
    void tempered_free_energy(const ansatz_tensor& v, const double* beta, const ansatz_tensor* field,
                              ansatz_tensor& out)
    {
        prepare();
        ansatz::require_matrix(v, -1, d_, "rbm tempered_free_energy: v");
        require_doubles(out, v.shape[0], "rbm tempered_free_energy: out");
        const float* phi = field_values(field, "rbm tempered_free_energy: field");
        require_betas(beta, v.shape[0], "rbm tempered_free_energy");
        free_energy_in_double(v, beta, phi, ansatz::data<double>(out));
    }

    // log Z_0,phi: at beta = 0 every unit is independent. Bernoulli: H log 2 + sum_i softplus(phi_i);
    // Gaussian: H log 2 + sum_i [log(2 pi sigma_i^2) / 2 + a_i phi_i + sigma_i^2 phi_i^2 / 2].
    double base_log_partition(const ansatz_tensor* field)
    {
        prepare();
        const float* phi = field_values(field, "rbm base_log_partition: field");
        double z = static_cast<double>(hidden_) * std::log(2.0);
        for (int64_t i = 0; i < d_; ++i)
        {
            const double f = phi ? phi[i] : 0.0;
            if (gaussian_)
                z += 0.5 * std::log(2 * std::numbers::pi * variance_[i]) + visible_bias_.data()[i] * f +
                     0.5 * variance_[i] * f * f;
            else
                z += softplus_double(f);
        }
        return z;
    }

    // mean = sigmoid(beta (b + x W)) for the hidden block (x = v, or v / sigma^2 for Gaussian units); for
    // the visible one sigmoid(beta (a + h W^T) + phi) (Bernoulli) or a + beta h W^T + sigma^2 phi, the mean
    // of N(., sigma^2) (Gaussian). At beta = 0 the visible units are their base distribution, whatever h is.
    void tempered_conditional(ansatz_block block, const ansatz_tensor& given, const double* beta,
                              const ansatz_tensor* field, ansatz_tensor& mean, ansatz_tensor* sample,
                              ansatz::Streams rngs)
    {
        prepare();
        if (!beta)
            throw ansatz::Error("rbm tempered_conditional got no inverse temperatures");
        const float* phi = field_values(field, "rbm tempered_conditional: field");
        conditional_at(block, given, beta, phi, mean, sample, rngs, "rbm tempered_conditional");
    }

    // out[n] = -log sum_other exp(-E(states[n], other)): F(v) for the visible block; for the hidden one,
    // with c = W h, Bernoulli: F(h) = -b.h - sum_i softplus(a_i + c_i); Gaussian (v integrated out):
    // F(h) = -b.h - sum_i [(a_i c_i + c_i^2 / 2) / sigma_i^2 + log(2 pi sigma_i^2) / 2]. In double.
    void block_free_energy(ansatz_block block, const ansatz_tensor& states, ansatz_tensor& out)
    {
        prepare();
        const bool hidden = is_hidden(block, "rbm block_free_energy");
        ansatz::require_matrix(states, -1, hidden ? hidden_ : d_,
                               hidden ? "rbm block_free_energy: h" : "rbm block_free_energy: v");
        const int64_t n = states.shape[0];
        require_doubles(out, n, "rbm block_free_energy: out");
        double* o = ansatz::data<double>(out);
        if (!hidden)
        {
            free_energy_in_double(states, nullptr, nullptr, o);
            return;
        }
        ansatz_tensor pre = visible_pre_.view(n, d_);
        if (gaussian_)
        {
            // c = h W^T, then sum_i [(a_i c_i + c_i^2 / 2) / sigma_i^2] + the Gaussians' normalisers.
            gemm(Op::none, Op::transpose, 1.0f, states, weights_view(), 0.0f, pre);
            const float* c = ansatz::f32(pre);
            const float* a = visible_bias_.data();
            double normalisers = 0;
            for (int64_t i = 0; i < d_; ++i)
                normalisers += 0.5 * std::log(2 * std::numbers::pi * variance_[i]);
            for (int64_t r = 0; r < n; ++r)
            {
                double sum = normalisers;
                for (int64_t i = 0; i < d_; ++i)
                {
                    const double ci = c[r * d_ + i];
                    sum += (a[i] * ci + 0.5 * ci * ci) / variance_[i];
                }
                o[r] = sum;
            }
        }
        else
        {
            fill_rows(pre, visible_bias_.data()); // a + h W^T
            gemm(Op::none, Op::transpose, 1.0f, states, weights_view(), 1.0f, pre);
            ansatz::sum_softplus_rows(ansatz::f32(pre), n, d_, o);
        }
        const float* h = ansatz::f32(states);
        const float* b = hidden_bias_.data();
        for (int64_t r = 0; r < n; ++r)
        {
            double bh = 0;
            for (int64_t j = 0; j < hidden_; ++j)
                bh += static_cast<double>(b[j]) * h[r * hidden_ + j];
            o[r] = -bh - o[r];
        }
    }

private:
    // ---- the local-move session's cache (see LOCAL MOVES above)
    enum class Change : uint8_t
    {
        none,      // no change proposed (the new value equals the old)
        flip_up,   // e = +1, E from the table e^(beta W)
        flip_down, // e = -1, E from the table e^(-beta W)
        general,   // E computed for this row into `e`
        exact,     // softplus differences in double from p (a product that could leave its range)
    };
    struct Table
    {
        double beta = 1;
        rbm::AlignedFloats up, down; // e^(beta W) and 1 / e^(beta W), {D, H}
    };
    struct LocalSession
    {
        bool open = false;
        const void* data = nullptr; // the chains' memory (checked, never read outside a call)
        int64_t rows = 0;
        std::vector<double> beta;          // {N}
        std::vector<double> p;             // {N, H} b + x W, where p_current
        rbm::AlignedFloats r;              // {N, 2, H} e^(beta p) in half side[n] of row n
        std::vector<uint8_t> side, stored; // {N} the row's half; whether the latest proposal wrote r E
        bool store_ahead = true;           // proposals write r E (see local_commit)
        rbm::AlignedFloats e;              // {N, H} E of a general change, for its commit
        std::vector<uint8_t> p_current;    // {N} whether p is the row's (else it is recomputed when needed)
        std::vector<double> log_sum;       // {N} L = log prod_j (1 + r_j), as the products evaluate it
        std::vector<double> numerator;     // {N} the latest proposal's log prod_j (1 + r_j E_j)
        std::vector<double> qmax;          // {N} a bound of max_j |q_j|
        std::vector<double> qlane;         // {N} a bound of max over the lanes of log prod_j (1 + r_j)
        std::vector<double>
            numerator_top;          // {N} the same for the latest proposal's lanes, prod_j (1 + r_j E_j)
        std::vector<uint8_t> stale; // {N} the bounds were raised by commits since computed from r
        std::vector<double> row_max, row_lane; // {D} see local_begin
        double lane_units = 0;                 // (the most units in a lane) log 2
        std::vector<float> ones;               // {H} 1
        std::vector<Table> tables;
        std::vector<int32_t> table_of_row; // {N} index into tables, or -1
        // What local_begin derives from the weights alone (row_max, row_lane, and the tables of each
        // beta) is kept to the next session while the weights are these, bit for bit: a sampler calls
        // local_begin once per advance(), often for a few sweeps of a model that has not changed, and the
        // tables (2 D H floats each) cost more to allocate and fill than a few sweeps of proposals.
        std::vector<float> derived_from; // {D, H} the weights of the row statistics and the tables
        std::vector<Table> spare;        // tables no longer used: their buffers, for the next ones
        // the latest energy_delta, for its commit
        bool pending = false;
        std::vector<Change> kind;   // {N}
        std::vector<int64_t> sites; // {N}
        std::vector<float> values;  // {N} the proposed values
        std::vector<double> factor; // {N} e: the change of p is e W_i
        int32_t rounds = 0;         // energy_delta calls since every row was refreshed
    };

    // e^x of a float stays finite for x < 88.7 and normal for x > -87.3; r = e^q keeps all its digits
    // while |q| < max_q. A float lane's partial products stay normal below max_lane_float, a double
    // lane's below max_lane_double.
    static constexpr double max_exponent = 80;
    static constexpr double max_q = session_max_q;
    static constexpr double max_lane_float = session_max_lane_float;
    static constexpr double max_lane_double = session_max_lane_double;
    static constexpr int32_t refresh_every = 2048;
    static constexpr int64_t kPrefetchAhead = 4; // chains
    static constexpr double max_table_bytes = 64.0 * 1024 * 1024;

    void require_session(const ansatz_tensor& v, const char* what) const
    {
        if (!session_.open)
            throw ansatz::Error(std::string(what) + ": no local session is open (local_begin first)");
        if (v.data != session_.data || v.rank != 2 || v.shape[0] != session_.rows || v.shape[1] != d_)
            throw ansatz::Error(std::string(what) + ": the local session is open on other chains (" +
                                std::to_string(session_.rows) +
                                " rows at another address); pass the chains "
                                "given to local_begin, or end the session first");
    }

    // r of row n: the half of its two that side[n] names, or the other one (where a proposal writes r E).
    float* r_of(int64_t n, int other = 0)
    {
        return session_.r.data() + (2 * n + ((session_.side[static_cast<size_t>(n)] + other) & 1)) * hidden_;
    }
    const float* r_of(int64_t n) const
    {
        return session_.r.data() + (2 * n + session_.side[static_cast<size_t>(n)]) * hidden_;
    }

    // The table row E_i of row k's table, e^(beta W_i) or (down) e^(-beta W_i).
    const float* table_row(size_t k, int64_t i, bool down) const
    {
        const Table& t = session_.tables[static_cast<size_t>(session_.table_of_row[k])];
        return (down ? t.down : t.up).data() + i * hidden_;
    }

    // p of row r = b + x W from the chains v, in double, unless it is up to date.
    void current_p(const ansatz_tensor& v, int64_t r)
    {
        LocalSession& ls = session_;
        const size_t k = static_cast<size_t>(r);
        if (ls.p_current[k])
            return;
        double* p = ls.p.data() + r * hidden_;
        const float* b = hidden_bias_.data();
        for (int64_t j = 0; j < hidden_; ++j)
            p[j] = b[j];
        const float* x = ansatz::f32(v) + r * d_;
        for (int64_t i = 0; i < d_; ++i)
        {
            const double xi =
                scaled_input_ ? static_cast<double>(x[i] * precision_[static_cast<size_t>(i)]) : x[i];
            if (xi != 0)
                session_kernels().add_scaled(p, xi, weights_.data() + i * hidden_, hidden_);
        }
        ls.p_current[k] = 1;
    }

    // r, L and the bounds of row r from its p (up to date), at the row's beta.
    void refresh_row(int64_t r)
    {
        LocalSession& ls = session_;
        const size_t k = static_cast<size_t>(r);
        const double b = ls.beta[k];
        const double* p = ls.p.data() + r * hidden_;
        float* x = r_of(r);
        double qmax = 0;
        double lane[kLanes] = {};
        for (int64_t j = 0; j < hidden_; ++j)
        {
            const double q = b * p[j];
            x[j] = static_cast<float>(std::clamp(q, -100.0, 100.0)); // (|q| >= 80: the exact fallback)
            qmax = std::max(qmax, std::abs(q));
            lane[j % kLanes] += std::max(q, 0.0);
        }
        ansatz::exp(x, hidden_);
        ls.qmax[k] = qmax;
        ls.stale[k] = 0;
        ls.log_sum[k] = 0;
        // log prod_j (1 + r_j) = sum_j softplus(q_j) <= (a lane's sum of max(0, q_j)) + (its units) log 2.
        const double bound = *std::max_element(lane, lane + kLanes) + ls.lane_units;
        ls.qlane[k] = bound;
        int32_t top = 0;
        if (bound >= max_lane_double)
            ls.qmax[k] =
                std::max(qmax, max_q); // L could overflow: softplus differences until the next refresh
        else if (qmax < max_q)
        {
            ls.log_sum[k] =
                bound < max_lane_float
                    ? session_kernels().log_product_float(x, ls.ones.data(), r_of(r, 1), hidden_, &top)
                    : session_kernels().log_product_double(x, ls.ones.data(), r_of(r, 1), hidden_, &top);
            ls.qlane[k] = top * std::numbers::ln2;
        }
    }

    // Every row's p recomputed from v (one product for all), then its r, L and bounds.
    void refresh_all(const ansatz_tensor& v)
    {
        LocalSession& ls = session_;
        ansatz_tensor pre = pre_activations(hidden_input(v));
        const float* pf = ansatz::f32(pre);
        for (size_t k = 0; k < ls.p.size(); ++k)
            ls.p[k] = pf[k];
        for (int64_t r = 0; r < ls.rows; ++r)
        {
            ls.p_current[static_cast<size_t>(r)] = 1;
            refresh_row(r);
        }
        ls.rounds = 1;
    }

    // qmax of row r from the exponents of r (within log 2 of the true one), when lower than the bound the
    // commits raised.
    void estimate_bounds(int64_t r)
    {
        LocalSession& ls = session_;
        const size_t k = static_cast<size_t>(r);
        int32_t bound[2];
        session_kernels().q_bounds(r_of(r), hidden_, bound);
        ls.qmax[k] = std::min(ls.qmax[k], bound[0] * std::numbers::ln2);
        ls.stale[k] = 0;
    }

    // Asks the memory for what a proposal at `site` in chain r reads: its r and, for a flip, the row of
    // its table in the direction of the flip (a hint; a site out of range is checked by the caller).
    void prefetch_row(const float* values, int64_t r, int64_t site, float value) const
    {
        const LocalSession& ls = session_;
        const size_t k = static_cast<size_t>(r);
        const float* rows[2] = { r_of(r), nullptr };
        if (ls.table_of_row[k] >= 0 && site >= 0 && site < d_)
            rows[1] = table_row(k, site, value < values[r * d_ + site]);
        const float* other = ls.r.data() + (2 * r + (ls.side[k] ^ 1)) * hidden_; // written: r E
        for (int64_t j = 0; j < hidden_; j += 16)                                // one cache line of 64 bytes
        {
            __builtin_prefetch(rows[0] + j);
            if (rows[1])
                __builtin_prefetch(rows[1] + j);
            if (ls.store_ahead)
                __builtin_prefetch(other + j, 1);
        }
    }

    // energy_delta while a session is open: F_beta(v') - F_beta(v) from the cache, O(H) per row.
    void session_delta(const ansatz_tensor& v, const int64_t* sites, const float* new_values,
                       ansatz_tensor& out)
    {
        require_ready();
        LocalSession& ls = session_;
        require_session(v, "rbm energy_delta");
        const int64_t n = ls.rows;
        ansatz::require_vector(out, n, "rbm energy_delta: out");
        // Every refresh_every rounds (energy_delta calls, the same for every chain) every row is refreshed
        // from v: a schedule that does not depend on the other chains.
        if (++ls.rounds > refresh_every)
            refresh_all(v);
        const float* values = ansatz::f32(v);
        float* o = ansatz::f32(out);
        for (int64_t r = 0; r < std::min<int64_t>(n, kPrefetchAhead); ++r)
            prefetch_row(values, r, sites[r], new_values[r]);
        for (int64_t r = 0; r < n; ++r)
        {
            const int64_t i = sites[r];
            if (r + kPrefetchAhead < n) // the rows of the chains ahead load while this one computes
                prefetch_row(values, r + kPrefetchAhead, sites[r + kPrefetchAhead],
                             new_values[r + kPrefetchAhead]);
            if (i < 0 || i >= d_)
                throw ansatz::Error("rbm energy_delta: site " + std::to_string(i) + " of chain " +
                                    std::to_string(r) + " is outside [0, " + std::to_string(d_) + ")");
            const float u = new_values[r];
            if (!in_support(u))
                throw ansatz::Error("rbm energy_delta: new value " + std::to_string(u) + " of chain " +
                                    std::to_string(r) + " is outside the units' support " +
                                    (gaussian_ ? "(the finite reals)" : "[0, 1]"));
            o[r] = propose(v, r, i, u);
        }
        ls.pending = true;
    }

    bool in_support(float u) const { return gaussian_ ? std::isfinite(u) : (u >= 0.0f && u <= 1.0f); }

    // Row r's proposal: unit i (in range) set to u (in the support), from the cache: F_beta(v') - F_beta(v),
    // and what its commit needs (kind, factor, the numerator and its lanes' bound, r E when stored).
    float propose(const ansatz_tensor& v, int64_t r, int64_t i, float u)
    {
        LocalSession& ls = session_;
        const float* values = ansatz::f32(v);
        const float* a = visible_bias_.data();
        const float* w = weights_.data();
        const size_t k = static_cast<size_t>(r);
        ls.sites[k] = i;
        ls.values[k] = u;
        const float now = values[r * d_ + i];
        const double b = ls.beta[k];
        const double d = static_cast<double>(u) - now;
        if (d == 0)
        {
            ls.kind[k] = Change::none;
            ls.factor[k] = 0;
            return 0.0f;
        }
        const size_t ik = static_cast<size_t>(i);
        // e: the change of p is e W_i; the visible term of F_beta.
        double e = d, visible = 0;
        if (gaussian_)
        {
            e = d / variance_[ik];
            visible = d * (0.5 * (static_cast<double>(u) + now) - a[i]) / variance_[ik];
        }
        else
            visible = -b * a[i] * d;
        ls.factor[k] = e;
        const float* wi = w + i * hidden_;
        const double t = std::abs(b * e); // |y_j| <= t |W_ij|
        const bool flip = ls.table_of_row[k] >= 0 && (d == 1 || d == -1);
        // A bound of every lane's log prod_j (1 + r_j E_j) (softplus is 1-Lipschitz: each factor grows at
        // most by e^|y_j| from 1 + r_j).
        const double lane = ls.qlane[k] + t * ls.row_lane[ik];
        double hidden_change = 0; // sum_j softplus(q_j + y_j) - softplus(q_j)
        // (The factors 1 + r_j E_j are floats: below e^(qmax + t max_j |W_ij|); qmax from r if that is
        // what keeps the product from double lanes.)
        if (lane >= max_lane_float && lane < max_lane_double && ls.stale[k] &&
            ls.qmax[k] + t * ls.row_max[ik] >= max_exponent)
            estimate_bounds(r);
        if (ls.qmax[k] < max_q && (flip || t * ls.row_max[ik] < max_exponent) &&
            (lane < max_lane_float ||
             (lane < max_lane_double && ls.qmax[k] + t * ls.row_max[ik] < max_exponent)))
        {
            const float* ex = nullptr;
            if (flip)
            {
                ls.kind[k] = d == 1 ? Change::flip_up : Change::flip_down;
                ex = table_row(k, i, d == -1);
            }
            else
            {
                ls.kind[k] = Change::general;
                float* ey = ls.e.data() + r * hidden_;
                const float y = static_cast<float>(b * e);
                for (int64_t j = 0; j < hidden_; ++j)
                    ey[j] = y * wi[j];
                ansatz::exp(ey, hidden_);
                ex = ey;
            }
            const float* x = r_of(r);
            float* next = r_of(r, 1);
            int32_t top = 0;
            const bool in_float = lane < max_lane_float;
            ls.stored[k] = !in_float || ls.store_ahead;
            const double numerator =
                !in_float        ? session_kernels().log_product_double(x, ex, next, hidden_, &top)
                : ls.store_ahead ? session_kernels().log_product_float(x, ex, next, hidden_, &top)
                                 : session_kernels().log_product_float_only(x, ex, next, hidden_, &top);
            ls.numerator_top[k] = top * std::numbers::ln2;
            ls.numerator[k] = numerator;
            hidden_change = numerator - ls.log_sum[k];
        }
        else
        {
            ls.kind[k] = Change::exact;
            current_p(v, r); // p itself is needed
            const double* p = ls.p.data() + r * hidden_;
            for (int64_t j = 0; j < hidden_; ++j)
                hidden_change += softplus_double(b * (p[j] + e * wi[j])) - softplus_double(b * p[j]);
        }
        return static_cast<float>(visible - hidden_change);
    }

    // Visible biases from the data's means (Hinton 2010, "A practical guide to training RBMs", 8.1):
    // over the first init_rows rows of init_data (all with 0), m_i = the mean of unit i, then
    // a_i = log(p_i / (1 - p_i)) with p_i = m_i clipped to [1e-3, 1 - 1e-3] for Bernoulli units, and
    // a_i = m_i for Gaussian ones (the mean of p(v_i | h = 0)). The rows are read in batches of about
    // 4 MiB, summed in double.
    void init_visible_bias(ansatz::Rng rng)
    {
        const ansatz_dataset_info info = init_data_.info();
        int64_t size = 1;
        for (int32_t k = 0; k < info.sample_rank; ++k)
            size *= info.sample_shape[k];
        if (size != d_)
            throw ansatz::InputError("init_data: the dataset's samples have " + std::to_string(size) +
                                     " values, but the model has " + std::to_string(d_) + " visible units");
        const int64_t rows = init_rows_ > 0 ? std::min(init_rows_, info.count) : info.count;
        if (rows <= 0)
            throw ansatz::InputError(
                "init_data: the dataset has no samples to take the visible units' means from");
        const int64_t batch = std::clamp<int64_t>((int64_t(1) << 20) / d_, 1, rows);
        std::vector<float> values(static_cast<size_t>(batch * d_));
        std::vector<int64_t> indices(static_cast<size_t>(batch));
        std::vector<double> sums(static_cast<size_t>(d_), 0.0);
        for (int64_t first = 0; first < rows; first += batch)
        {
            if (host_.cancelled())
                throw ansatz::Error("model '" + name_ + "' was cancelled while it read init_data",
                                    ANSATZ_STATUS_CANCELLED);
            const int64_t count = std::min(batch, rows - first);
            for (int64_t k = 0; k < count; ++k)
                indices[static_cast<size_t>(k)] = first + k;
            ansatz_tensor view = ansatz::make_view(values.data(), { count, d_ });
            init_data_.read(indices.data(), count, view, nullptr, rng);
            for (int64_t r = 0; r < count; ++r)
                for (int64_t i = 0; i < d_; ++i)
                {
                    const float x = values[static_cast<size_t>(r * d_ + i)];
                    if (gaussian_ ? !std::isfinite(x) : !(x >= 0.0f && x <= 1.0f))
                        throw ansatz::InputError("init_data: sample " + std::to_string(first + r) + " has " +
                                                 std::to_string(x) + " at unit " + std::to_string(i) +
                                                 (gaussian_
                                                      ? ", not a finite number"
                                                      : ", outside [0, 1], the range of bernoulli units"));
                    sums[static_cast<size_t>(i)] += x;
                }
        }
        for (int64_t i = 0; i < d_; ++i)
        {
            const double mean = sums[static_cast<size_t>(i)] / static_cast<double>(rows);
            if (centered_)
                offsets_[static_cast<size_t>(i)] = mean;
            const double p = std::clamp(mean, marginal_clip, 1 - marginal_clip);
            visible_bias_.data()[i] = static_cast<float>(gaussian_ ? mean : std::log(p / (1 - p)));
        }
    }

    // Bernoulli marginals are clipped to [marginal_clip, 1 - marginal_clip]: |a_i| <= log(999) = 6.9.
    static constexpr double marginal_clip = 1e-3;

    void allocate(int64_t d)
    {
        d_ = d;
        weights_ = xt::zeros<float>({ static_cast<size_t>(d), static_cast<size_t>(hidden_) });
        visible_bias_ = xt::zeros<float>({ static_cast<size_t>(d) });
        hidden_bias_ = xt::zeros<float>({ static_cast<size_t>(hidden_) });
        log_sigma_ = xt::zeros<float>({ static_cast<size_t>(learn_sigma_ ? d : 0) });
        centered_visible_ = xt::zeros<float>({ static_cast<size_t>(centered_ ? d : 0) });
        centered_hidden_ = xt::zeros<float>({ static_cast<size_t>(centered_ ? hidden_ : 0) });
        offsets_.assign(static_cast<size_t>(centered_ ? d : 0), 0.0);
        ones_.assign(static_cast<size_t>(centered_ ? hidden_ : 0), 1.0f);
        variance_.assign(static_cast<size_t>(gaussian_ ? d : 0), 1.0);
        sd_.assign(variance_.size(), 1.0);
        precision_.assign(variance_.size(), 1.0f);
        scaled_input_ = gaussian_ && (learn_sigma_ || sigma_ != 1.0);
    }

    // sigma_i^2, sigma_i and 1 / sigma_i^2 of Gaussian units, from the sigma key or from log_sigma (which
    // an optimizer changes in place between calls: every call that uses them refreshes them).
    void refresh_sigma()
    {
        for (size_t i = 0; i < variance_.size(); ++i)
        {
            const double s = learn_sigma_ ? std::exp(static_cast<double>(log_sigma_.data()[i])) : sigma_;
            variance_[i] = s * s;
            sd_[i] = s;
            precision_[i] = static_cast<float>(1.0 / (s * s));
        }
    }

    // The weights are D x H floats: refuse (exit 2) a size the machine cannot hold, naming the keys.
    void require_memory(int64_t d, const std::string& visible) const
    {
        const double bytes = 4.0 * (static_cast<double>(d) + 1) * (static_cast<double>(hidden_) + 1);
        host_.require_memory(bytes, "hidden: " + std::to_string(hidden_) + " with " + visible);
    }

    void require_ready() const
    {
        if (!ready_)
            throw ansatz::Error("model '" + name_ + "' is used before setup()");
    }

    // ---- CENTRED PARAMETRISATION (Melchior, Fischer & Wiskott, "How to center deep Boltzmann machines",
    // JMLR 17, 2016), with offsets mu (the data's means) and lambda = 1/2:
    //     E(v, h) = -(v - mu).a' - (h - lambda).b' - (v - mu) W (h - lambda)
    // is the RBM above with a = a' - W lambda and b = b' - W^T mu (plus a constant), so every call works
    // on a and b as they are; only the parameters and their gradient differ. With F written in a', b', W:
    //     dF/da' = dF/da,  dF/db' = dF/db,  dF/dW' = dF/dW - mu (dF/db)^T - (dF/da) lambda^T,
    // i.e. -(v - mu) E[h | v]^T + v lambda^T: a difference of two phases of it is Melchior's centred
    // gradient, <(v - mu)(h - lambda)^T>_data - <...>_model, which is invariant under flipping units
    // (v_i -> 1 - v_i with mu_i -> 1 - mu_i), unlike the plain one.
    static constexpr double hidden_offset = 0.5;

    // After setup's initialisation (a and b as the plain model starts): a' and b' that give the same a, b.
    void center_parameters()
    {
        for (int64_t i = 0; i < d_; ++i)
        {
            double row = 0;
            for (int64_t j = 0; j < hidden_; ++j)
                row += weights_(i, j);
            centered_visible_(i) = static_cast<float>(visible_bias_(i) + hidden_offset * row);
        }
        std::vector<double> column(static_cast<size_t>(hidden_), 0.0);
        for (int64_t i = 0; i < d_; ++i)
            for (int64_t j = 0; j < hidden_; ++j)
                column[static_cast<size_t>(j)] += offsets_[static_cast<size_t>(i)] * weights_(i, j);
        for (int64_t j = 0; j < hidden_; ++j)
            centered_hidden_(j) = static_cast<float>(hidden_bias_(j) + column[static_cast<size_t>(j)]);
        uncenter_biases();
    }

    // a = a' - W lambda, b = b' - W^T mu: two matrix-vector products (sgemv, after every parameter write,
    // so once a training step: a pass over W in double took 12 % of a 784 x 256 PCD epoch).
    void uncenter_biases()
    {
        std::copy_n(centered_visible_.data(), d_, visible_bias_.data());
        std::copy_n(centered_hidden_.data(), hidden_, hidden_bias_.data());
        const int d = static_cast<int>(d_), h = static_cast<int>(hidden_);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, d, h, static_cast<float>(-hidden_offset), weights_.data(), h,
                    ones_.data(), 1, 1.0f, visible_bias_.data(), 1);
        cblas_sgemv(CblasRowMajor, CblasTrans, d, h, -1.0f, weights_.data(), h, offsets_float_.data(), 1,
                    1.0f, hidden_bias_.data(), 1);
    }

    // Before every call: set up, and the current sigma.
    void prepare()
    {
        require_ready();
        if (learn_sigma_)
            refresh_sigma();
    }

    // What the hidden units see of v {N, D}: v itself, or x = v / sigma^2 per unit for Gaussian units
    // (into a work buffer; with every sigma 1 that is v again).
    ansatz_tensor hidden_input(const ansatz_tensor& v)
    {
        if (!scaled_input_)
            return v;
        const int64_t n = v.shape[0];
        ansatz_tensor x = scaled_.view(n, d_);
        const float* in = ansatz::f32(v);
        float* o = ansatz::f32(x);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t i = 0; i < d_; ++i)
                o[r * d_ + i] = in[r * d_ + i] * precision_[static_cast<size_t>(i)];
        return x;
    }

    // sum_i (v_i - a_i)^2 / 2 sigma_i^2 of one row, in double: the Gaussian units' E0.
    double confinement(const float* v) const
    {
        double e = 0;
        for (int64_t i = 0; i < d_; ++i)
        {
            const double dv = static_cast<double>(v[i]) - visible_bias_.data()[i];
            e += dv * dv / (2 * variance_[static_cast<size_t>(i)]);
        }
        return e;
    }

    ansatz_tensor weights_view() { return ansatz::make_view(weights_.data(), { d_, hidden_ }); }

    // out[n] = -a.v[n] - sum_j softplus(pre[n, j]) (Bernoulli) or sum_i (v_i - a_i)^2 / 2 sigma_i^2 -
    // sum_j softplus(pre[n, j]) (Gaussian), from the pre-activations b + x W.
    void free_energy_from(const ansatz_tensor& v, const ansatz_tensor& pre, ansatz_tensor& out)
    {
        const int64_t n = v.shape[0];
        if (gaussian_)
        {
            double* sums = doubles(row_sums_, n);
            ansatz::sum_softplus_rows(ansatz::f32(pre), n, hidden_, sums);
            float* o = ansatz::f32(out);
            for (int64_t r = 0; r < n; ++r)
                o[r] = static_cast<float>(confinement(ansatz::f32(v) + r * d_) - sums[r]);
            return;
        }
        double* sums = doubles(row_sums_, n);
        for_rows(n, d_ + 2 * hidden_, [&](int64_t first, int64_t last) {
            visible_terms(ansatz::f32(v), ansatz::f32(pre), first, last, sums, ansatz::f32(out));
        });
    }

    // out[r] = -a.v[r] - sum_j softplus(pre[r, j]) for rows [first, last) (Bernoulli units), both sums in
    // double (sums: a buffer of at least `last` doubles), rounded once.
    void visible_terms(const float* v, const float* pre, int64_t first, int64_t last, double* sums,
                       float* out)
    {
        ansatz::sum_softplus_rows(pre + first * hidden_, last - first, hidden_, sums + first);
        const float* a = visible_bias_.data();
        for (int64_t r = first; r < last; ++r)
        {
            // a.v accumulated in double by BLAS (a plain loop summing into one double cannot vectorise)
            const double av = cblas_dsdot(static_cast<int>(d_), a, 1, v + r * d_, 1);
            out[r] = static_cast<float>(-av - sums[r]);
        }
    }

    // grads[k] += scale * sum_n w[n] dF(v[n])/dtheta_k, with w[n] = weights[n], or 1 when weights is null
    // (free_energy_grad and free_energy_grad_weighted share this pass): one gemm for the pre-activations,
    // the rows of sigmoid(pre) scaled by their weights, one gemm for the weights' gradient.
    void accumulate_grad(const ansatz_tensor& v, float scale, const float* weights, ansatz_tensor* grads,
                         int32_t n_grads, ansatz_tensor* out, const char* what)
    {
        prepare();
        require_matrix(v, -1, d_, what, "v");
        const int32_t expected = learn_sigma_ ? 4 : 3;
        if (n_grads != expected)
            throw ansatz::Error(std::string(what) + ": got " + std::to_string(n_grads) +
                                " gradients, expected " + std::to_string(expected) +
                                (centered_ ? " (weights, centered_visible_bias, centered_hidden_bias"
                                           : " (weights, visible_bias, hidden_bias") +
                                (learn_sigma_ ? ", log_sigma)" : ")"));
        if (!grads)
            throw ansatz::Error(std::string(what) + ": got no gradient buffers");
        require_matrix(grads[0], d_, hidden_, what, "gradient of weights");
        require_vector(grads[1], d_, what,
                       centered_ ? "gradient of centered_visible_bias" : "gradient of visible_bias");
        require_vector(grads[2], hidden_, what,
                       centered_ ? "gradient of centered_hidden_bias" : "gradient of hidden_bias");
        if (learn_sigma_)
            require_vector(grads[3], d_, what, "gradient of log_sigma");
        const int64_t n = v.shape[0];

        const ansatz_tensor x = hidden_input(v);
        memo_.valid = false;
        ansatz_tensor pre = pre_activations(x);
        if (out)
            require_vector(*out, n, what, "out");
        if (out && gaussian_)
            free_energy_from(v, pre, *out); // from the same pre-activations: no second gemm
        float* s = ansatz::f32(pre);
        double* row_sums = doubles(row_sums_, n); // sized here: the rows' parts write into it concurrently
        // A weighted pass keeps E[h | v] for a conditional(HIDDEN) on the same rows (see HiddenMemo).
        const bool keep = weights && !scaled_input_ && !learn_sigma_;
        if (keep)
            memo_.reserve(n, d_, hidden_);
        // One pass over the rows, split over the team: F from the pre-activations (Bernoulli units), then
        // E[h | v] = sigmoid(pre), times each row's weight.
        for_rows(n, 3 * hidden_ + (out ? d_ : 0), [&](int64_t first, int64_t last) {
            if (out && !gaussian_)
                visible_terms(ansatz::f32(v), s, first, last, row_sums, ansatz::f32(*out));
            ansatz::sigmoid(s + first * hidden_, (last - first) * hidden_);
            if (keep)
            {
                std::copy(s + first * hidden_, s + last * hidden_, memo_.means.data() + first * hidden_);
                std::copy(ansatz::f32(v) + first * d_, ansatz::f32(v) + last * d_,
                          memo_.input.data() + first * d_);
            }
            if (weights)
                for (int64_t r = first; r < last; ++r)
                    for (int64_t j = 0; j < hidden_; ++j)
                        s[r * hidden_ + j] *= weights[r];
        });
        // dF/dW = -x^T s, dF/db = -sum_n s[n] (s already weighted); dF/da = -sum_n w[n] v[n] (Bernoulli)
        // or -sum_n w[n] (v[n] - a) / sigma^2 (Gaussian); dF/dlog sigma_i = -sum_n w[n] (v_ni - a_i)^2 /
        // sigma_i^2 + 2 sum_j W_ij G_ij with G = x^T s, the weights' gradient with its sign flipped.
        if (learn_sigma_)
        {
            ansatz_tensor g = weight_grad_.view(d_, hidden_); // scale * G
            gemm(Op::transpose, Op::none, scale, x, pre, 0.0f, g);
            float* gw = ansatz::f32(grads[0]);
            const float* gs = ansatz::f32(g);
            const float* w = weights_.data();
            double* dots = doubles(row_dots_, d_);
            for (int64_t i = 0; i < d_; ++i)
            {
                double dot = 0;
                for (int64_t j = 0; j < hidden_; ++j)
                {
                    gw[i * hidden_ + j] -= gs[i * hidden_ + j];
                    dot += static_cast<double>(w[i * hidden_ + j]) * gs[i * hidden_ + j];
                }
                dots[i] = dot;
            }
            const double* squares = square_deviation_sums(ansatz::f32(v), n, weights);
            float* gl = ansatz::f32(grads[3]);
            for (int64_t i = 0; i < d_; ++i)
                gl[i] +=
                    static_cast<float>(-static_cast<double>(scale) * squares[i] / variance_[i] + 2 * dots[i]);
        }
        else
            gemm(team(), Op::transpose, Op::none, -scale, x, pre, 1.0f, grads[0]);
        const double minus_scale = -static_cast<double>(scale);
        double* sums = column_sums(ansatz::f32(v), n, d_, weights);
        float* ga = ansatz::f32(grads[1]);
        if (gaussian_)
        {
            double total = static_cast<double>(n); // sum_n w[n]
            if (weights)
            {
                total = 0;
                for (int64_t r = 0; r < n; ++r)
                    total += weights[r];
            }
            for (int64_t i = 0; i < d_; ++i)
                ga[i] += static_cast<float>(minus_scale * (sums[i] - visible_bias_.data()[i] * total) /
                                            variance_[static_cast<size_t>(i)]);
        }
        else
            for (int64_t i = 0; i < d_; ++i)
                ga[i] += static_cast<float>(minus_scale * sums[i]);
        if (centered_)
            visible_sums_.assign(sums, sums + d_);
        sums = column_sums(s, n, hidden_, nullptr);
        float* gb = ansatz::f32(grads[2]);
        for (int64_t j = 0; j < hidden_; ++j)
            gb[j] += static_cast<float>(minus_scale * sums[j]);
        if (centered_) // dF/dW' = dF/dW + scale (mu S_h^T + S_v lambda^T), S the weighted sums of v and
                       // E[h|v]: float rows of FMAs (vectorised), the sums scaled in double first
        {
            float* gw = ansatz::f32(grads[0]);
            const double scaled = static_cast<double>(scale);
            hidden_terms_.resize(static_cast<size_t>(hidden_));
            for (int64_t j = 0; j < hidden_; ++j)
                hidden_terms_[static_cast<size_t>(j)] = static_cast<float>(scaled * sums[j]);
            const float* sh = hidden_terms_.data();
            for (int64_t i = 0; i < d_; ++i)
            {
                const float mu = offsets_float_[static_cast<size_t>(i)];
                const float v_term =
                    static_cast<float>(scaled * hidden_offset * visible_sums_[static_cast<size_t>(i)]);
                float* row = gw + i * hidden_;
                for (int64_t j = 0; j < hidden_; ++j)
                    row[j] += mu * sh[j] + v_term;
            }
        }
        if (keep)
            memo_.keep(ansatz::f32(v), n, d_, hidden_);
    }

    // sum_r w[r] x[r, j] for every column j of x {rows, cols}, in double (w = 1 when weights is null);
    // into a work buffer valid until the next call.
    double* column_sums(const float* x, int64_t rows, int64_t cols, const float* weights)
    {
        double* acc = doubles(column_sums_, cols);
        // Columns split over the team; each column summed over the rows in order, whatever the split.
        ansatz::ThreadTeam& t = team();
        const int parts =
            std::min<int>(t.parts_for(rows * cols, parallel_min), static_cast<int>(cols / 8 + 1));
        t.run(parts, [&](int part) {
            const auto [first, last] = ansatz::ThreadTeam::range(cols, part, parts, 8);
            sum_columns(x, rows, cols, weights, first, last, acc);
        });
        return acc;
    }

    // sum_r w[r] (v[r, i] - a_i)^2 for every unit i, in double (w = 1 when weights is null).
    const double* square_deviation_sums(const float* v, int64_t rows, const float* weights)
    {
        double* acc = doubles(square_sums_, d_);
        std::fill_n(acc, d_, 0.0);
        const float* a = visible_bias_.data();
        for (int64_t r = 0; r < rows; ++r)
        {
            const double w = weights ? weights[r] : 1.0;
            for (int64_t i = 0; i < d_; ++i)
            {
                const double dv = static_cast<double>(v[r * d_ + i]) - a[i];
                acc[i] += w * dv * dv;
            }
        }
        return acc;
    }

    // p(block | given) at inverse temperatures beta (nullptr: 1, the model) with the field phi on the
    // visible units (nullptr: 0). With beta and phi null this is the model's conditional, bit for bit.
    void conditional_at(ansatz_block block, const ansatz_tensor& given, const double* beta, const float* phi,
                        ansatz_tensor& mean, ansatz_tensor* sample, ansatz::Streams rngs, const char* what)
    {
        prepare();
        const bool hidden = is_hidden(block, what);
        const int64_t given_size = hidden ? d_ : hidden_;
        const int64_t size = hidden ? hidden_ : d_;
        require_matrix(given, -1, given_size, what, hidden ? "given v" : "given h");
        const int64_t n = given.shape[0];
        require_matrix(mean, n, size, what, "mean");
        if (sample)
            require_matrix(*sample, n, size, what, "sample");
        if (beta)
            require_betas(beta, n, what);

        if (hidden && !beta && !scaled_input_ && !learn_sigma_ &&
            memo_.reuse(ansatz::f32(given), n, ansatz::f32(mean), team()))
        {
            // E[h | v] of the last weighted pass over these rows, with these parameters: only the draws
            if (sample)
                draw_rows(ansatz::f32(mean), n, hidden_, ansatz::f32(*sample), rngs);
            return;
        }
        if (hidden)
        {
            fill_rows(mean, hidden_bias_.data());
            gemm(team(), Op::none, Op::none, 1.0f, hidden_input(given), weights_view(), 1.0f, mean);
            if (beta)
                scale_rows(mean, beta);
        }
        else if (gaussian_)
        {
            // The mean of N(a + beta h W^T + sigma^2 phi, sigma^2).
            if (beta)
            {
                gemm(Op::none, Op::transpose, 1.0f, given, weights_view(), 0.0f, mean);
                scale_rows(mean, beta);
                add_to_rows(mean, visible_bias_.data());
            }
            else
            {
                fill_rows(mean, visible_bias_.data());
                gemm(Op::none, Op::transpose, 1.0f, given, weights_view(), 1.0f, mean);
            }
            if (phi)
            {
                float* m = ansatz::f32(mean);
                for (int64_t r = 0; r < n; ++r)
                    for (int64_t i = 0; i < d_; ++i)
                        m[r * d_ + i] += static_cast<float>(variance_[static_cast<size_t>(i)] * phi[i]);
            }
        }
        else
        {
            fill_rows(mean, visible_bias_.data());
            gemm(team(), Op::none, Op::transpose, 1.0f, given, weights_view(), 1.0f, mean);
            if (beta)
                scale_rows(mean, beta);
            if (phi)
                add_to_rows(mean, phi);
        }
        const bool normal = gaussian_ && !hidden;
        if (normal)
        {
            if (sample)
                normal_rows(ansatz::f32(mean), n, ansatz::f32(*sample), rngs, what);
            return;
        }
        if (sample && static_cast<int64_t>(rngs.size()) < n) // the SDK's refusal, before the rows are split
            ansatz::bernoulli_rows(ansatz::f32(mean), n, size, ansatz::f32(*sample), rngs);
        // sigmoid, then (with sample) the draws, by rows over the team: row r from its own stream, so a
        // chain's draws do not depend on the other rows, nor on the split.
        float* m = ansatz::f32(mean);
        float* out = sample ? ansatz::f32(*sample) : nullptr;
        for_rows(n, size * (sample ? 3 : 1), [&](int64_t first, int64_t last) {
            ansatz::sigmoid(m + first * size, (last - first) * size);
            if (out)
                ansatz::bernoulli_rows(
                    m + first * size, last - first, size, out + first * size,
                    rngs.subspan(static_cast<size_t>(first), static_cast<size_t>(last - first)));
        });
    }

    // Bernoulli draws from the means {rows, cols} by rows over the team (row r from rngs[r]).
    void draw_rows(const float* mean, int64_t rows, int64_t cols, float* out, ansatz::Streams rngs)
    {
        if (static_cast<int64_t>(rngs.size()) < rows) // the SDK's refusal, before the rows are split
            ansatz::bernoulli_rows(mean, rows, cols, out, rngs);
        for_rows(rows, 2 * cols, [&](int64_t first, int64_t last) {
            ansatz::bernoulli_rows(
                mean + first * cols, last - first, cols, out + first * cols,
                rngs.subspan(static_cast<size_t>(first), static_cast<size_t>(last - first)));
        });
    }

    // out[r, i] = mean[r, i] + sigma_i z, z ~ N(0, 1) drawn from rngs[r] (one normal() per unit, in order).
    void normal_rows(const float* mean, int64_t rows, float* out, ansatz::Streams rngs, const char* what)
    {
        if (static_cast<int64_t>(rngs.size()) < rows)
            throw ansatz::Error(std::string(what) + ": " + std::to_string(rows) + " rows got " +
                                std::to_string(rngs.size()) + " random streams; sampling needs one per row");
        for (int64_t r = 0; r < rows; ++r)
        {
            ansatz::Rng& rng = rngs[static_cast<size_t>(r)];
            for (int64_t i = 0; i < d_; ++i)
                out[r * d_ + i] =
                    static_cast<float>(mean[r * d_ + i] + sd_[static_cast<size_t>(i)] * rng.normal());
        }
    }

    // out[n] = F_beta[n],phi(v[n]) in double (beta nullptr: 1; phi nullptr: 0): the pre-activations in
    // float32 from one gemm, times beta per row, then softplus summed in double.
    void free_energy_in_double(const ansatz_tensor& v, const double* beta, const float* phi, double* out)
    {
        const int64_t n = v.shape[0];
        ansatz_tensor pre = pre_activations(hidden_input(v));
        if (beta)
            scale_rows(pre, beta);
        ansatz::sum_softplus_rows(ansatz::f32(pre), n, hidden_, out);
        const float* x = ansatz::f32(v);
        const float* a = visible_bias_.data();
        for (int64_t r = 0; r < n; ++r)
        {
            const float* row = x + r * d_;
            double fv = 0;
            if (phi)
                for (int64_t i = 0; i < d_; ++i)
                    fv += static_cast<double>(phi[i]) * row[i];
            if (gaussian_)
            {
                out[r] = confinement(row) - fv - out[r];
                continue;
            }
            double av = 0;
            for (int64_t i = 0; i < d_; ++i)
                av += static_cast<double>(a[i]) * row[i];
            out[r] = -(beta ? beta[r] : 1.0) * av - fv - out[r];
        }
    }

    bool is_hidden(ansatz_block block, const char* what) const
    {
        if (block != ANSATZ_BLOCK_HIDDEN && block != ANSATZ_BLOCK_VISIBLE)
            throw ansatz::Error(std::string(what) + ": unknown block " +
                                std::to_string(static_cast<int>(block)));
        return block == ANSATZ_BLOCK_HIDDEN;
    }

    // The field phi {D} as floats, or nullptr for none (phi = 0).
    const float* field_values(const ansatz_tensor* field, const char* what) const
    {
        if (!field)
            return nullptr;
        ansatz::require_vector(*field, d_, what);
        return ansatz::f32(*field);
    }

    // One finite inverse temperature per row.
    static void require_betas(const double* beta, int64_t n, const char* what)
    {
        if (!beta)
            throw ansatz::Error(std::string(what) + " got no inverse temperatures");
        for (int64_t r = 0; r < n; ++r)
            if (!std::isfinite(beta[r]))
                throw ansatz::Error(std::string(what) + ": the inverse temperature of row " +
                                    std::to_string(r) + " is " + std::to_string(beta[r]) +
                                    "; it must be finite");
    }

    // Multiplies row r of t {N, K} by beta[r] (in float32).
    static void scale_rows(ansatz_tensor& t, const double* beta)
    {
        const int64_t cols = t.shape[1];
        float* x = ansatz::f32(t);
        for (int64_t r = 0; r < t.shape[0]; ++r)
        {
            const float b = static_cast<float>(beta[r]);
            for (int64_t j = 0; j < cols; ++j)
                x[r * cols + j] *= b;
        }
    }

    // Adds the row `add` {K} to every row of t {N, K}.
    static void add_to_rows(ansatz_tensor& t, const float* add)
    {
        const int64_t cols = t.shape[1];
        float* x = ansatz::f32(t);
        for (int64_t r = 0; r < t.shape[0]; ++r)
            for (int64_t j = 0; j < cols; ++j)
                x[r * cols + j] += add[j];
    }

    // b + x W into the work buffer: {N, H}, x = hidden_input(v).
    ansatz_tensor pre_activations(const ansatz_tensor& x)
    {
        ansatz_tensor pre = pre_.view(x.shape[0], hidden_);
        fill_rows(pre, hidden_bias_.data());
        gemm(team(), Op::none, Op::none, 1.0f, x, weights_view(), 1.0f, pre);
        return pre;
    }

    // The threads of the host's budget, started on first use: the products (ansatz::blas::gemm(team, ...))
    // and the row and column passes around them are split over it.
    ansatz::ThreadTeam& team()
    {
        if (team_.size() != host_.threads())
            team_.resize(host_.threads());
        return team_;
    }

    // Elements of work below which a pass stays on the caller (a test's 4 hidden units).
    static constexpr int64_t parallel_min = 8192;

    // f(first, last) on blocks of the rows [0, rows) over the team, when rows x cost is worth splitting.
    template <class F>
    void for_rows(int64_t rows, int64_t cost_per_row, F&& f)
    {
        ansatz::ThreadTeam& t = team();
        const int parts =
            std::min<int>(t.parts_for(rows * cost_per_row, parallel_min), static_cast<int>(rows));
        t.run(std::max(parts, 1), [&](int part) {
            const auto [first, last] = ansatz::ThreadTeam::range(rows, part, std::max(parts, 1));
            f(first, last);
        });
    }

    // A double buffer of at least n values (it grows, never shrinks: no allocation in steady state).
    static double* doubles(std::vector<double>& buffer, int64_t n)
    {
        if (buffer.size() < static_cast<size_t>(n))
            buffer.resize(static_cast<size_t>(n));
        return buffer.data();
    }

    std::string name_;
    int64_t hidden_;
    int64_t visible_key_;
    double init_std_;
    bool gaussian_;     // visible_units: gaussian
    double sigma_;      // the sigma key
    bool learn_sigma_;  // log_sigma is a parameter
    int64_t init_rows_; // rows of init_data for the visible biases (0: all)
    bool centered_;     // the centred parametrisation (see center_parameters)
    ansatz::DatasetRef init_data_;
    ansatz::Host host_;
    int64_t d_ = 0;
    bool ready_ = false;

    xt::xtensor<float, 2> weights_;
    xt::xtensor<float, 1> visible_bias_;
    xt::xtensor<float, 1> hidden_bias_;
    xt::xtensor<float, 1> log_sigma_; // {D} with learn_sigma, else empty
    // Centred models: the parameters a' {D} and b' {H} (visible_bias_ and hidden_bias_ then follow from
    // them), and the visible offsets mu {D}, the means of init_data (empty otherwise).
    xt::xtensor<float, 1> centered_visible_;
    xt::xtensor<float, 1> centered_hidden_;
    std::vector<double> offsets_;
    std::vector<float> offsets_float_, ones_; // mu in float {D}; {H} ones (W 1: the rows' sums)
    std::vector<double> visible_sums_;        // {D} a centred gradient's weighted sums of v
    std::vector<float> hidden_terms_;         // {H} scale S_h in float

    // Gaussian units (empty for Bernoulli ones), from sigma or log_sigma: sigma_i^2, sigma_i, 1 / sigma_i^2.
    std::vector<double> variance_, sd_;
    std::vector<float> precision_;
    bool scaled_input_ = false; // the hidden units see v / sigma^2, not v

    // E[h | v] of the last weighted gradient pass (hidden units that see v itself), kept for a
    // conditional(HIDDEN) on rows of the same input right after it: a PCD loss differentiates its chains
    // and the batch in one pass, then advances the chains, whose first half-sweep h ~ p(h | v) needs the
    // same means. reuse() hands them out only when the rows are bit for bit those of the pass (compared
    // with a copy taken then) and the parameters have not changed since (the host calls
    // parameters_changed() after it writes them: abi.h 2.3), so the result is the conditional's to
    // rounding (the pass's product had more rows); anything else computes afresh.
    struct HiddenMemo
    {
        bool valid = false;
        const float* input_ptr = nullptr; // where the pass's rows were
        int64_t rows = 0, d = 0, h = 0;
        std::vector<float> means, input; // copies: E[h|v] {rows, H}, v {rows, D}

        // Before the pass: room for n rows' means and inputs (copied by the pass's row phase).
        void reserve(int64_t n, int64_t visible, int64_t hidden)
        {
            valid = false;
            if (means.size() < static_cast<size_t>(n * hidden))
                means.resize(static_cast<size_t>(n * hidden));
            if (input.size() < static_cast<size_t>(n * visible))
                input.resize(static_cast<size_t>(n * visible));
        }
        // After the pass over v {n, D}: the memo holds.
        void keep(const float* v, int64_t n, int64_t visible, int64_t hidden)
        {
            input_ptr = v;
            rows = n;
            d = visible;
            h = hidden;
            valid = true;
        }
        // The means of the rows `given` {n, D} when they are rows of the pass's input, unchanged: copied
        // into mean, true. Else false (and mean untouched).
        bool reuse(const float* given, int64_t n, float* mean, ansatz::ThreadTeam& team)
        {
            if (!valid || n <= 0 || given < input_ptr || given >= input_ptr + rows * d ||
                (given - input_ptr) % d != 0)
                return false;
            const int64_t first = (given - input_ptr) / d;
            if (first + n > rows)
                return false;
            const int parts = team.parts_for(n * d, 65536);
            std::atomic<bool> same{ true };
            team.run(parts, [&](int part) {
                const auto [r0, r1] = ansatz::ThreadTeam::range(n, part, parts);
                if (std::memcmp(given + r0 * d, input.data() + (first + r0) * d,
                                static_cast<size_t>((r1 - r0) * d) * sizeof(float)) != 0)
                    same.store(false, std::memory_order_relaxed);
            });
            if (!same.load(std::memory_order_relaxed))
                return false;
            std::copy(means.data() + first * h, means.data() + (first + n) * h, mean);
            return true;
        }
    };
    HiddenMemo memo_;

    Workspace pre_, flip_rows_, flip_change_, flip_bias_, visible_pre_, scaled_, weight_grad_;
    LocalSession session_;
    std::vector<double> column_sums_, row_sums_, row_dots_, square_sums_;
    ansatz::ThreadTeam team_;
};

} // namespace

ANSATZ_PLUGIN("rbm", "0.1.0", "MIT",
              ansatz::model<Rbm>("rbm",
                                 "restricted Boltzmann machine with Bernoulli or Gaussian visible units"))

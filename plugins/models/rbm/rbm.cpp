// Bernoulli-Bernoulli restricted Boltzmann machine (Smolensky 1986; Hinton 2002).
//
//     E(v, h) = -a.v - b.h - v W h,           v in {0,1}^D, h in {0,1}^H
//     F(v)    = -a.v - sum_j softplus(b_j + (v W)_j)
//     p(h_j = 1 | v) = sigmoid(b_j + (v W)_j),   p(v_i = 1 | h) = sigmoid(a_i + (h W^T)_i)
//
// Parameters, in this order: "weights" W {D, H}, "visible_bias" a {D}, "hidden_bias" b {H}.
// Every call works on a whole batch: one gemm for the pre-activations, then whole-array expressions.
#include <ansatz/blas.hpp>
#include <ansatz/math.hpp>
#include <ansatz/plugin.hpp>
#include <ansatz/xtensor.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xtensor.hpp>

#include <algorithm>
#include <cmath>
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

// The SDK's vectorised kernels on contiguous memory (ansatz/math.hpp): xtensor's broadcasting of a
// bias row over a matrix takes its slow stepper path, which cost more than the products' share in a
// profile of a CD epoch.
void sigmoid_in_place(ansatz_tensor& t)
{
    ansatz::sigmoid(ansatz::f32(t), ansatz::element_count(t));
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

using ansatz::Workspace;

class Rbm final : public ansatz::Model
{
public:
    static void describe(ansatz::Schema& s)
    {
        s.integer("hidden", "number of hidden units H").default_value(64).min(1);
        s.real("init_std",
               "standard deviation of the initial weights, W ~ N(0, init_std^2); biases start at 0")
            .default_value(0.01)
            .min(0);
        s.integer("visible", "number of visible units D; 0 takes D from the data's sample shape")
            .default_value(0)
            .min(0)
            .max(INT32_MAX);
    }

    Rbm(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), hidden_(c.integer("hidden")), visible_key_(c.integer("visible")),
          init_std_(c.real("init_std")), host_(host)
    {
        // Nothing is allocated before setup(): a size the machine cannot hold is refused there, or here
        // when `visible:` fixes it, before any memory is asked for.
        if (visible_key_ != 0)
            require_memory(visible_key_, "visible: " + std::to_string(visible_key_));
    }

    // With `visible:` set, the model knows its shape and can be sampled without data.
    ansatz_sample_info sample_info() const override
    {
        ansatz_sample_info info = Model::sample_info();
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
        for (float& w : weights_)
            w = static_cast<float>(init_std_ * rng.normal());
        visible_bias_.fill(0.0f);
        hidden_bias_.fill(0.0f);
        ready_ = true;
    }

    std::vector<ansatz_named_tensor> parameters() override
    {
        return { { "weights", ansatz::make_view(weights_.data(), { d_, hidden_ }) },
                 { "visible_bias", ansatz::make_view(visible_bias_.data(), { d_ }) },
                 { "hidden_bias", ansatz::make_view(hidden_bias_.data(), { hidden_ }) } };
    }

    void random_state(ansatz_tensor& out, ansatz::Streams rngs) override
    {
        require_ready();
        ansatz::require_matrix(out, -1, d_, "rbm random_state: out");
        for (int64_t r = 0; r < out.shape[0]; ++r)
        {
            ansatz::Rng& rng = rngs[static_cast<size_t>(r)];
            float* o = ansatz::f32(out) + r * d_;
            for (int64_t i = 0; i < d_; ++i)
                o[i] = rng.uniform() < 0.5f ? 1.0f : 0.0f;
        }
    }

    // ---- ENERGY

    void free_energy(const ansatz_tensor& v, ansatz_tensor& out)
    {
        require_ready();
        ansatz::require_matrix(v, -1, d_, "rbm free_energy: v");
        ansatz::require_vector(out, v.shape[0], "rbm free_energy: out");
        free_energy_from(v, pre_activations(v), out);
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
        require_ready();
        ansatz::require_matrix(v, -1, d_, "rbm energy_delta: v");
        const int64_t n = v.shape[0];
        ansatz::require_vector(out, n, "rbm energy_delta: out");

        // Setting v_i to u changes it by d = u - v_i and every pre-activation by d W_i.
        ansatz_tensor rows = flip_rows_.view(n, hidden_); // W_{sites[n]}
        ansatz_tensor change = flip_change_.view(n, 1);   // d
        ansatz_tensor bias = flip_bias_.view(n, 1);       // a_{sites[n]}
        const float* values = ansatz::f32(v);
        float* row_data = ansatz::f32(rows);
        float* change_data = ansatz::f32(change);
        float* bias_data = ansatz::f32(bias);
        for (int64_t k = 0; k < n; ++k)
        {
            const int64_t i = sites[k];
            if (i < 0 || i >= d_)
                throw ansatz::Error("rbm energy_delta: site " + std::to_string(i) + " of chain " +
                                    std::to_string(k) + " is outside [0, " + std::to_string(d_) + ")");
            const float u = new_values[k];
            if (!(u >= 0.0f && u <= 1.0f))
                throw ansatz::Error("rbm energy_delta: new value " + std::to_string(u) + " of chain " +
                                    std::to_string(k) + " is outside the units' support [0, 1]");
            std::copy_n(weights_.data() + i * hidden_, hidden_, row_data + k * hidden_);
            change_data[k] = u - values[k * d_ + i];
            bias_data[k] = visible_bias_.data()[i];
        }
        ansatz_tensor pre = pre_activations(v);
        auto p = ansatz::adapt<2>(pre);
        auto w = ansatz::adapt<2>(rows);
        auto d_column = ansatz::adapt<2>(change);
        auto d = ansatz::adapt<1>(ansatz::make_view(change_data, { n }));
        auto a = ansatz::adapt<1>(ansatz::make_view(bias_data, { n }));
        auto o = ansatz::adapt<1>(out);
        xt::noalias(o) =
            -a * d - xt::cast<float>(xt::sum<double>(softplus(p + d_column * w) - softplus(p), { 1 }));
    }

    // ---- CONDITIONALS

    int64_t block_size(ansatz_block block) const { return block == ANSATZ_BLOCK_VISIBLE ? d_ : hidden_; }

    void conditional(ansatz_block block, const ansatz_tensor& given, ansatz_tensor& mean,
                     ansatz_tensor* sample, ansatz::Streams rngs)
    {
        conditional_at(block, given, nullptr, nullptr, mean, sample, rngs, "rbm conditional");
    }

    // ---- TEMPERED (abi.h): E_beta,phi(v, h) = beta E(v, h) - phi.v, beta multiplies the whole energy.

    // out[n] = F_beta[n],phi(v[n]) = -beta a.v - phi.v - sum_j softplus(beta (b + v W)_j), in double.
    void tempered_free_energy(const ansatz_tensor& v, const double* beta, const ansatz_tensor* field,
                              ansatz_tensor& out)
    {
        require_ready();
        ansatz::require_matrix(v, -1, d_, "rbm tempered_free_energy: v");
        require_doubles(out, v.shape[0], "rbm tempered_free_energy: out");
        const float* phi = field_values(field, "rbm tempered_free_energy: field");
        require_betas(beta, v.shape[0], "rbm tempered_free_energy");
        free_energy_in_double(v, beta, phi, ansatz::data<double>(out));
    }

    // log Z_0,phi = H log 2 + sum_i softplus(phi_i): at beta = 0 every unit is independent.
    double base_log_partition(const ansatz_tensor* field)
    {
        require_ready();
        const float* phi = field_values(field, "rbm base_log_partition: field");
        double z = static_cast<double>(hidden_) * std::log(2.0);
        for (int64_t i = 0; i < d_; ++i)
            z += softplus_double(phi ? phi[i] : 0.0);
        return z;
    }

    // mean = sigmoid(beta (b + v W)) for the hidden block, sigmoid(beta (a + h W^T) + phi) for the visible
    // one; at beta = 0 the visible units are Bernoulli(sigmoid(phi)), whatever h is.
    void tempered_conditional(ansatz_block block, const ansatz_tensor& given, const double* beta,
                              const ansatz_tensor* field, ansatz_tensor& mean, ansatz_tensor* sample,
                              ansatz::Streams rngs)
    {
        require_ready();
        if (!beta)
            throw ansatz::Error("rbm tempered_conditional got no inverse temperatures");
        const float* phi = field_values(field, "rbm tempered_conditional: field");
        conditional_at(block, given, beta, phi, mean, sample, rngs, "rbm tempered_conditional");
    }

    // out[n] = -log sum_other exp(-E(states[n], other)): F(v) for the visible block; for the hidden one
    // F(h) = -b.h - sum_i softplus(a_i + (W h)_i). In double.
    void block_free_energy(ansatz_block block, const ansatz_tensor& states, ansatz_tensor& out)
    {
        require_ready();
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
        ansatz_tensor pre = visible_pre_.view(n, d_); // a + h W^T
        fill_rows(pre, visible_bias_.data());
        gemm(Op::none, Op::transpose, 1.0f, states, weights_view(), 1.0f, pre);
        ansatz::sum_softplus_rows(ansatz::f32(pre), n, d_, o);
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
    void allocate(int64_t d)
    {
        d_ = d;
        weights_ = xt::zeros<float>({ static_cast<size_t>(d), static_cast<size_t>(hidden_) });
        visible_bias_ = xt::zeros<float>({ static_cast<size_t>(d) });
        hidden_bias_ = xt::zeros<float>({ static_cast<size_t>(hidden_) });
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

    ansatz_tensor weights_view() { return ansatz::make_view(weights_.data(), { d_, hidden_ }); }

    // out[n] = -a.v[n] - sum_j softplus(pre[n, j]), from the pre-activations b + v W.
    void free_energy_from(const ansatz_tensor& v, const ansatz_tensor& pre, ansatz_tensor& out)
    {
        const int64_t n = v.shape[0];
        // out = -v.a as a {N, 1} product, then minus the hidden units' softplus terms.
        ansatz_tensor out_column = ansatz::make_view(ansatz::f32(out), { n, 1 });
        gemm(Op::none, Op::none, -1.0f, v, ansatz::make_view(visible_bias_.data(), { d_, 1 }), 0.0f,
             out_column);
        ansatz_tensor sums = softplus_sums_.vector(n);
        ansatz::sum_softplus_rows(ansatz::f32(pre), n, hidden_, ansatz::f32(sums));
        float* o = ansatz::f32(out);
        const float* s = ansatz::f32(sums);
        for (int64_t r = 0; r < n; ++r)
            o[r] -= s[r];
    }

    // grads[k] += scale * sum_n w[n] dF(v[n])/dtheta_k, with w[n] = weights[n], or 1 when weights is null
    // (free_energy_grad and free_energy_grad_weighted share this pass): one gemm for the pre-activations,
    // the rows of sigmoid(pre) scaled by their weights, one gemm for the weights' gradient.
    void accumulate_grad(const ansatz_tensor& v, float scale, const float* weights, ansatz_tensor* grads,
                         int32_t n_grads, ansatz_tensor* out, const std::string& what)
    {
        require_ready();
        ansatz::require_matrix(v, -1, d_, (what + ": v").c_str());
        if (n_grads != 3)
            throw ansatz::Error(what + ": got " + std::to_string(n_grads) +
                                " gradients, expected 3 (weights, visible_bias, hidden_bias)");
        if (!grads)
            throw ansatz::Error(what + ": got no gradient buffers");
        ansatz::require_matrix(grads[0], d_, hidden_, (what + ": gradient of weights").c_str());
        ansatz::require_vector(grads[1], d_, (what + ": gradient of visible_bias").c_str());
        ansatz::require_vector(grads[2], hidden_, (what + ": gradient of hidden_bias").c_str());
        const int64_t n = v.shape[0];

        ansatz_tensor pre = pre_activations(v);
        if (out)
        {
            ansatz::require_vector(*out, n, (what + ": out").c_str());
            free_energy_from(v, pre, *out); // from the same pre-activations: no second gemm
        }
        sigmoid_in_place(pre); // now E[h | v]
        float* s = ansatz::f32(pre);
        if (weights)
            for (int64_t r = 0; r < n; ++r)
                for (int64_t j = 0; j < hidden_; ++j)
                    s[r * hidden_ + j] *= weights[r];
        // dF/dW = -v^T s, dF/da = -sum_n w[n] v[n], dF/db = -sum_n s[n] (s already weighted).
        gemm(Op::transpose, Op::none, -scale, v, pre, 1.0f, grads[0]);
        const double minus_scale = -static_cast<double>(scale);
        double* sums = column_sums(ansatz::f32(v), n, d_, weights);
        float* ga = ansatz::f32(grads[1]);
        for (int64_t i = 0; i < d_; ++i)
            ga[i] += static_cast<float>(minus_scale * sums[i]);
        sums = column_sums(s, n, hidden_, nullptr);
        float* gb = ansatz::f32(grads[2]);
        for (int64_t j = 0; j < hidden_; ++j)
            gb[j] += static_cast<float>(minus_scale * sums[j]);
    }

    // sum_r w[r] x[r, j] for every column j of x {rows, cols}, in double (w = 1 when weights is null);
    // into a work buffer valid until the next call.
    double* column_sums(const float* x, int64_t rows, int64_t cols, const float* weights)
    {
        if (column_sums_.size() < static_cast<size_t>(cols))
            column_sums_.resize(static_cast<size_t>(cols));
        double* acc = column_sums_.data();
        std::fill_n(acc, cols, 0.0);
        for (int64_t r = 0; r < rows; ++r)
        {
            const float* row = x + r * cols;
            if (weights)
            {
                const double w = weights[r];
                for (int64_t j = 0; j < cols; ++j)
                    acc[j] += w * row[j];
            }
            else
                for (int64_t j = 0; j < cols; ++j)
                    acc[j] += row[j];
        }
        return acc;
    }

    // p(block | given) at inverse temperatures beta (nullptr: 1, the model) with the field phi on the
    // visible units (nullptr: 0). With beta and phi null this is the model's conditional, bit for bit.
    void conditional_at(ansatz_block block, const ansatz_tensor& given, const double* beta, const float* phi,
                        ansatz_tensor& mean, ansatz_tensor* sample, ansatz::Streams rngs,
                        const std::string& what)
    {
        require_ready();
        const bool hidden = is_hidden(block, what);
        const int64_t given_size = hidden ? d_ : hidden_;
        const int64_t size = hidden ? hidden_ : d_;
        ansatz::require_matrix(given, -1, given_size, (what + (hidden ? ": given v" : ": given h")).c_str());
        const int64_t n = given.shape[0];
        ansatz::require_matrix(mean, n, size, (what + ": mean").c_str());
        if (sample)
            ansatz::require_matrix(*sample, n, size, (what + ": sample").c_str());
        if (beta)
            require_betas(beta, n, what);

        if (hidden)
        {
            fill_rows(mean, hidden_bias_.data());
            gemm(Op::none, Op::none, 1.0f, given, weights_view(), 1.0f, mean);
            if (beta)
                scale_rows(mean, beta);
        }
        else
        {
            fill_rows(mean, visible_bias_.data());
            gemm(Op::none, Op::transpose, 1.0f, given, weights_view(), 1.0f, mean);
            if (beta)
                scale_rows(mean, beta);
            if (phi)
                add_to_rows(mean, phi);
        }
        sigmoid_in_place(mean);
        if (!sample)
            return;
        // Row r from its own stream: a chain's draws do not depend on the other rows.
        ansatz::bernoulli_rows(ansatz::f32(mean), n, size, ansatz::f32(*sample), rngs);
    }

    // out[n] = F_beta[n],phi(v[n]) in double (beta nullptr: 1; phi nullptr: 0): the pre-activations in
    // float32 from one gemm, times beta per row, then softplus summed in double.
    void free_energy_in_double(const ansatz_tensor& v, const double* beta, const float* phi, double* out)
    {
        const int64_t n = v.shape[0];
        ansatz_tensor pre = pre_activations(v);
        if (beta)
            scale_rows(pre, beta);
        ansatz::sum_softplus_rows(ansatz::f32(pre), n, hidden_, out);
        const float* x = ansatz::f32(v);
        const float* a = visible_bias_.data();
        for (int64_t r = 0; r < n; ++r)
        {
            const float* row = x + r * d_;
            double av = 0, fv = 0;
            for (int64_t i = 0; i < d_; ++i)
                av += static_cast<double>(a[i]) * row[i];
            if (phi)
                for (int64_t i = 0; i < d_; ++i)
                    fv += static_cast<double>(phi[i]) * row[i];
            out[r] = -(beta ? beta[r] : 1.0) * av - fv - out[r];
        }
    }

    bool is_hidden(ansatz_block block, const std::string& what) const
    {
        if (block != ANSATZ_BLOCK_HIDDEN && block != ANSATZ_BLOCK_VISIBLE)
            throw ansatz::Error(what + ": unknown block " + std::to_string(static_cast<int>(block)));
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
    static void require_betas(const double* beta, int64_t n, const std::string& what)
    {
        if (!beta)
            throw ansatz::Error(what + " got no inverse temperatures");
        for (int64_t r = 0; r < n; ++r)
            if (!std::isfinite(beta[r]))
                throw ansatz::Error(what + ": the inverse temperature of row " + std::to_string(r) + " is " +
                                    std::to_string(beta[r]) + "; it must be finite");
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

    // b + v W into the work buffer: {N, H}.
    ansatz_tensor pre_activations(const ansatz_tensor& v)
    {
        ansatz_tensor pre = pre_.view(v.shape[0], hidden_);
        fill_rows(pre, hidden_bias_.data());
        gemm(Op::none, Op::none, 1.0f, v, weights_view(), 1.0f, pre);
        return pre;
    }

    std::string name_;
    int64_t hidden_;
    int64_t visible_key_;
    double init_std_;
    ansatz::Host host_;
    int64_t d_ = 0;
    bool ready_ = false;

    xt::xtensor<float, 2> weights_;
    xt::xtensor<float, 1> visible_bias_;
    xt::xtensor<float, 1> hidden_bias_;

    Workspace pre_, flip_rows_, flip_change_, flip_bias_, softplus_sums_, visible_pre_;
    std::vector<double> column_sums_;
};

} // namespace

ANSATZ_PLUGIN("rbm", "0.1.0", "MIT",
              ansatz::model<Rbm>("rbm", "Bernoulli-Bernoulli restricted Boltzmann machine"))

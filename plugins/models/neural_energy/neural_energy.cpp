// neural_energy -- an energy-based model whose energy is a neural network (Foster, Generative Deep
// Learning, 2nd ed., ch. 7; Du & Mordatch 2019):
//
//     p(x) = exp(-E(x)) / Z,    E(x) = net(x), a stack of the SDK's layers (ansatz/nn.hpp) ending in one
//     output
//
// No latent variables, so the free energy F of abi.h is E. The functions: free_energy (a forward pass),
// energy_delta (two forward passes: F after a one-value change minus F before),
// free_energy_grad and free_energy_grad_weighted (dE/dtheta, one forward and backward pass over all the
// rows, each row's dL/dE its weight), free_energy_grad_state (dE/dx, the Langevin and MALA gradient: a
// backward pass without the parameters' gradients). The variables are real, in the box of `bounds`
// (abi.h 2.5), where random_state draws uniformly. See README.md for the keys.
#include "architecture.hpp"

#include <ansatz/nn.hpp>
#include <ansatz/parallel.hpp>
#include <ansatz/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace
{

using namespace neural_energy;

class NeuralEnergy final : public ansatz::Model
{
public:
    static void describe(ansatz::Schema& s)
    {
        describe_architecture(s);
        s.reals(
             "bounds",
             "[low, high]: the box every value lies in (samplers clamp to it, random_state draws uniformly "
             "in it, pictures map it to black..white); absent: the real line")
            .optional()
            .length(2, 2);
    }

    NeuralEnergy(const ansatz::Config& c, const ansatz::Host& host)
        : arch_(Architecture::read(c)), host_(host), team_(std::max(1, host.threads()))
    {
        if (c.has("bounds"))
        {
            const std::vector<double> b = c.reals("bounds");
            if (!(std::isfinite(b[0]) && std::isfinite(b[1]) && b[0] < b[1]))
                throw ansatz::InputError("key bounds is [" + number(b[0]) + ", " + number(b[1]) +
                                         "], which is not an interval [low, high] of finite numbers with "
                                         "low < high");
            low_ = b[0];
            high_ = b[1];
        }
    }

    // The shape comes from the data; the values are real, in the box of `bounds`.
    ansatz_sample_info sample_info() const override
    {
        ansatz_sample_info info = Model::sample_info();
        info.domain = ANSATZ_DOMAIN_REAL;
        info.low = low_;
        info.high = high_;
        return info;
    }

    void setup(const std::vector<int64_t>& sample_shape, ansatz::Rng& rng) override
    {
        ready_ = false;
        d_ = 1;
        for (int64_t extent : sample_shape)
        {
            if (extent <= 0)
                throw ansatz::InputError("the data's sample shape has an empty axis");
            d_ *= extent;
        }
        const Stack stack = build(arch_, sample_shape);
        // Parameters, their gradients and an optimizer's two moments.
        host_.require_memory(16.0 * nn::parameter_floats(stack.layers, stack.input),
                             "the layers of this neural_energy for samples of shape " +
                                 shape_text(sample_shape));
        try
        {
            net_ = nn::Sequential(stack.layers, stack.input, "net.");
        }
        catch (const ansatz::InputError& e)
        {
            throw ansatz::InputError("the energy network on samples of shape " + shape_text(sample_shape) +
                                     ": " + e.what());
        }
        net_.initialize(rng);
        count_ = net_.parameter_count();
        ready_ = true;
    }

    std::vector<ansatz_named_tensor> parameters() override
    {
        require_setup();
        return net_.parameters();
    }

    // Uniform in the box of `bounds`; N(0, 1) per value without one. Row n from rngs[n], value by value.
    void random_state(ansatz_tensor& out, ansatz::Streams rngs) override
    {
        require_setup();
        ansatz::require_matrix(out, -1, d_, "neural_energy random_state: out");
        float* o = ansatz::f32(out);
        const bool box = std::isfinite(low_);
        for (int64_t r = 0; r < out.shape[0]; ++r)
        {
            ansatz::Rng& rng = rngs[static_cast<size_t>(r)];
            for (int64_t i = 0; i < d_; ++i)
                o[r * d_ + i] = box ? static_cast<float>(low_ + (high_ - low_) * rng.uniform())
                                    : static_cast<float>(rng.normal());
        }
    }

    // ---- energy

    void free_energy(const ansatz_tensor& v, ansatz_tensor& out)
    {
        const int64_t n = rows(v, "free_energy: v");
        ansatz::require_vector(out, n, "neural_energy free_energy: out");
        std::memcpy(ansatz::f32(out), net_.forward(team_, ansatz::f32(v), n),
                    sizeof(float) * static_cast<size_t>(n));
    }

    void free_energy_grad(const ansatz_tensor& v, float scale, ansatz_tensor* grads, int32_t n_grads,
                          ansatz_tensor* out)
    {
        accumulate(v, scale, nullptr, grads, n_grads, out, "free_energy_grad");
    }

    // One pass over rows of both signs: grads[k] += sum_n weights[n] dE(v[n])/dtheta_k.
    void free_energy_grad_weighted(const ansatz_tensor& v, const float* weights, ansatz_tensor* grads,
                                   int32_t n_grads, ansatz_tensor* out)
    {
        accumulate(v, 1.0f, weights, grads, n_grads, out, "free_energy_grad_weighted");
    }

    // out[n] = E(v[n] with value sites[n] set to new_values[n]) - E(v[n]): two forward passes of the
    // whole batch (a network has no cheaper local change), so single-site Metropolis works, slowly; MALA
    // (metropolis_hastings, proposal: mala) and Langevin move every value at once instead.
    void energy_delta(const ansatz_tensor& v, const int64_t* sites, const float* new_values,
                      ansatz_tensor& out)
    {
        const int64_t n = rows(v, "energy_delta: v");
        ansatz::require_vector(out, n, "neural_energy energy_delta: out");
        const float* x = ansatz::f32(v);
        float* moved = grow(moved_, n * d_);
        std::memcpy(moved, x, sizeof(float) * static_cast<size_t>(n * d_));
        for (int64_t r = 0; r < n; ++r)
        {
            if (sites[r] < 0 || sites[r] >= d_)
                throw ansatz::Error("neural_energy energy_delta: site " + std::to_string(sites[r]) +
                                    " of row " + std::to_string(r) + " is outside [0, " + std::to_string(d_) +
                                    ")");
            if (!std::isfinite(new_values[r]))
                throw ansatz::Error("neural_energy energy_delta: the new value of row " + std::to_string(r) +
                                    " is not finite");
            moved[r * d_ + sites[r]] = new_values[r];
        }
        float* e = ansatz::f32(out);
        std::memcpy(e, net_.forward(team_, moved, n), sizeof(float) * static_cast<size_t>(n));
        const float* before = net_.forward(team_, x, n);
        for (int64_t r = 0; r < n; ++r)
            e[r] -= before[r];
    }

    // out[n] = dE(v[n])/dv[n]: the backward pass of dL/dE = 1 per row, without the parameters' gradients.
    void free_energy_grad_state(const ansatz_tensor& v, ansatz_tensor& out)
    {
        const int64_t n = rows(v, "free_energy_grad_state: v");
        ansatz::require_matrix(out, n, d_, "neural_energy free_energy_grad_state: out");
        net_.forward(team_, ansatz::f32(v), n);
        float* dy = grow(dy_, n);
        std::fill_n(dy, n, 1.0f);
        net_.backward(team_, dy, ansatz::f32(out), static_cast<float* const*>(nullptr));
    }

private:
    void require_setup() const
    {
        if (!ready_)
            throw ansatz::Error("neural_energy: used before setup");
    }

    int64_t rows(const ansatz_tensor& v, const char* what) const
    {
        require_setup();
        ansatz::require_matrix(v, -1, d_, (std::string("neural_energy ") + what).c_str());
        return v.shape[0];
    }

    void accumulate(const ansatz_tensor& v, float scale, const float* weights, ansatz_tensor* grads,
                    int32_t n_grads, ansatz_tensor* out, const char* what)
    {
        const int64_t n = rows(v, (std::string(what) + ": v").c_str());
        if (n_grads != count_)
            throw ansatz::Error("neural_energy " + std::string(what) + ": " + std::to_string(n_grads) +
                                " gradients for " + std::to_string(count_) + " parameters");
        if (out)
            ansatz::require_vector(*out, n, ("neural_energy " + std::string(what) + ": out").c_str());
        const float* e = net_.forward(team_, ansatz::f32(v), n);
        if (out)
            std::memcpy(ansatz::f32(*out), e, sizeof(float) * static_cast<size_t>(n));
        float* dy = grow(dy_, n);
        for (int64_t r = 0; r < n; ++r)
            dy[r] = weights ? weights[r] : scale;
        net_.backward(team_, dy, nullptr,
                      std::span<const ansatz_tensor>(grads, static_cast<size_t>(n_grads)));
    }

    static float* grow(std::vector<float>& v, int64_t size)
    {
        if (v.size() < static_cast<size_t>(size))
            v.resize(static_cast<size_t>(size));
        return v.data();
    }

    Architecture arch_;
    ansatz::Host host_;
    ansatz::ThreadTeam team_;
    double low_ = 0.0, high_ = 0.0; // both 0: no box (abi.h 2.5)
    bool ready_ = false;
    int64_t d_ = 0;
    int32_t count_ = 0;
    nn::Sequential net_;
    std::vector<float> dy_;    // dL/dE per row
    std::vector<float> moved_; // energy_delta's rows with their value set
};

} // namespace

ANSATZ_PLUGIN("neural_energy", "0.1.0", "MIT",
              ansatz::model<NeuralEnergy>(
                  "neural_energy", "energy-based model whose energy is a neural network (ansatz/nn.hpp): "
                                   "convolutional or MLP, real values in a box"))

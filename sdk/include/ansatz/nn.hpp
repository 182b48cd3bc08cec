// ansatz/nn.hpp -- neural-network layers for model plugins: Linear, Conv2d, ConvTranspose2d, the usual
// activations, and a Sequential stack of them built from a plain description.
//
// WHAT THIS FILE PROVIDES
//     Layers that a model plugin (a VAE's encoder and decoder, a deep energy model) composes, with a
//     forward pass and a backward pass on whole batches, in float32, row-major, batch first: a batch of
//     N vectors is {N, F}, a batch of N images is {N, C, H, W} (NCHW, as PyTorch). Parameters use
//     PyTorch's layouts and default initialisation, so a stack can be compared with torch.nn bit for
//     bit in its parameters and to rounding in its outputs:
//         Linear            weight {out, in},                 bias {out}   y = x W^T + b
//         Conv2d            weight {C_out, C_in, kh, kw},     bias {C_out}
//         ConvTranspose2d   weight {C_in, C_out, kh, kw},     bias {C_out}
//     Header-only (bodies in ansatz/nn_impl.hpp), compiled into each plugin; it needs Ansatz::numerics
//     (OpenBLAS and xsimd) and uses no xtensor. None of it crosses the C ABI: a model hands the
//     parameters' views to the host through its own parameters().
//
// HOW FAST, AND WHY
//     Matrix products go through sgemm: on a CPU with AVX-512 (and a product of more than ~2^18
//     multiply-adds) the SDK's own (ansatz/sgemm_avx512.hpp: 16-float FMAs, where OpenBLAS runs the AVX2
//     kernel that OPENBLAS_CORETYPE names on CPUs it misdetects; about 2x its rate there), else OpenBLAS's.
//     A convolution is im2col / col2im around sgemm with the
//     batch folded into the product's long side (a chunk of images at a time, about 1 MiB of columns,
//     so the columns are still in cache when sgemm reads them), computed channels-last so that every
//     piece of im2col and col2im is a contiguous run of channels; between two convolutions of a
//     Sequential the activations stay channels-last (the stack's input, output and dx are NCHW), so
//     they are never transposed. A Conv2d's output rows start at its bias (sgemm with beta 1) and its
//     input gradient's columns go into a buffer kept at zero (OpenBLAS's own zeroing is a pass of scalar
//     stores). A Conv2d with one input channel and 8k outputs (a first layer on grey images: a product
//     too thin for sgemm) runs its forward pass and input gradient as direct AVX2 loops instead, on a
//     CPU that has AVX2 + FMA (ansatz/nn_direct_conv_impl.hpp). Every layer splits its work over the caller's
//     ThreadTeam (ansatz/parallel.hpp): a Linear layer by blocks of its output (each block one
//     single-threaded sgemm, then its bias and activation while the block is in cache), a convolution by
//     images (each part its own im2col, sgemm and col2im on its images, with a private weight-gradient sum
//     added in a fixed order at the end). A bias and the activation that follows a layer are applied in the
//     pass that reads the product (Sequential fuses them); the activations' derivatives are computed from
//     their outputs, so no pre-activation is stored. Element-wise work is vectorised (xsimd; sigmoid,
//     tanh, softplus from ansatz/math.hpp). Nothing allocates in the steady state: activations grow to
//     the largest batch seen and are reused, per-part workspaces are sized once per layer and team size.
//
// CALL ORDER, OWNERSHIP AND LIFETIMES (Sequential; the single layers follow the same rules, with the
//     caller holding the activations)
//     1. Sequential(layers, input_shape, prefix): checks the description against the input's shape
//        (throws ansatz::InputError naming the layer) and allocates the parameters.
//     2. initialize(rng): PyTorch's default initialisation (below), drawn from rng in parameter order.
//        parameters() gives views of the parameters, valid for the Sequential's lifetime (moving a
//        Sequential keeps them valid: the storage does not move); a resumed model writes through them.
//     3. forward(team, x, batch) -> y: returns the output {batch, output_size}, which the Sequential
//        owns and keeps, with every intermediate activation, until the next forward() (or release()).
//        The input x is NOT copied: the caller keeps it alive and unchanged until the matching
//        backward() has returned.
//     4. backward(team, dy, dx, grads): the gradient of the last forward(): dy {batch, output_size}
//        is dL/dy (read only); dx {batch, input_size} receives dL/dx (overwritten; nullptr skips that
//        work, e.g. for an encoder's input); grads, one per parameter in parameters() order with the
//        parameter's element count, ACCUMULATE dL/dtheta (+=; the caller zeroes them, scales dy for a
//        weighted sum). backward() may be called several times after one forward() (each adds).
//     A scale s on the gradient (ABI: grads += s * ...) is the caller's: pass s * dL/dy.
//
// THREADING
//     One caller at a time per Sequential (as the host calls a component): forward and backward are
//     not reentrant. The ThreadTeam is the caller's (size it from Host::threads()); it may be shared
//     by several Sequentials of one model, one call at a time. While a layer splits a product over
//     more than one part, OpenBLAS runs single-threaded (blas::SingleThreaded); with a team of one,
//     the products get OpenBLAS's own threads (the AVX-512 product runs on the calling thread). Results
//     are reproducible bit for bit for a given team size and CPU; across team sizes they agree to
//     rounding (sums split differently), and across CPUs with and without AVX-512 too.
//
// INITIALISATION (PyTorch's reset_parameters, so the scales match torch.nn)
//     weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform_ with a = sqrt(5)), bias ~ the same
//     bound, with fan_in = in (Linear), C_in kh kw (Conv2d) and C_out kh kw (ConvTranspose2d: torch
//     computes it from dimension 1 of the weight). Values come from Rng::uniform(), weight then bias,
//     layer after layer.
//
// PADDING
//     An explicit padding p adds p rows and columns of zeros on each side (Conv2d) or crops p from each
//     side of the full output (ConvTranspose2d), as torch.nn; output_padding adds rows and columns at
//     the bottom and right of a transposed convolution's output. The output sizes are PyTorch's:
//         Conv2d:          out = floor((in + 2 p - k) / s) + 1
//         ConvTranspose2d: out = (in - 1) s - 2 p + k + output_padding      (output_padding < s)
//     'same' gives out = ceil(in / s) (Conv2d) and out = in s (ConvTranspose2d), the sizes of Keras'
//     padding='same'. The total padding (Conv2d: max((out - 1) s + k - in, 0); ConvTranspose2d, the
//     adjoint of the Conv2d from out to in: max(k - s, 0)) is split with the odd row at the top and left
//     (TensorFlow puts it at the bottom and right), so that 'same' with an odd kernel on an even size is
//     PyTorch's padding = k / 2 (Conv2d) and padding = k / 2, output_padding = s - 1 (ConvTranspose2d
//     with s <= k): for the 3x3 stride-2 layers of a convolutional VAE, the results equal torch.nn's.
#pragma once

#include "ansatz/abi.h"
#include "ansatz/error.hpp"
#include "ansatz/parallel.hpp"
#include "ansatz/random.hpp"
#include "ansatz/tensor.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ansatz::nn
{

// ---- Activations ------------------------------------------------------------------------------------

//   none        y = x
//   relu        y = max(x, 0)                       dy/dx = [y > 0]        (0 at x = 0, as torch)
//   leaky_relu  y = x if x > 0 else a x (a >= 0)    dy/dx = 1 if y > 0 else a
//   tanh        y = tanh(x)                         dy/dx = 1 - y^2
//   sigmoid     y = 1 / (1 + e^-x)                  dy/dx = y (1 - y)
//   softplus    y = log(1 + e^x)                    dy/dx = sigmoid(x) = 1 - e^-y = -expm1(-y)
//   swish       y = x sigmoid(x) (torch's SiLU)     dy/dx = s + y (1 - s), s = sigmoid(x)
// A layer applies its activation in its own output pass (fused) and differentiates it from y, keeping no
// pre-activation; swish's derivative needs sigmoid(x) besides y, so a layer with swish keeps that
// sigmoid from its forward pass (one float per output) for the backward one.
enum class Activation
{
    none,
    relu,
    leaky_relu,
    tanh,
    sigmoid,
    softplus,
    swish
};

// "none", "relu", "leaky_relu", "tanh", "sigmoid", "softplus", "swish".
inline const char* activation_name(Activation a);
// The activation of that name.
//   throws: ansatz::InputError "unknown activation 'x' (known: none, relu, ...)" for any other name.
inline Activation parse_activation(std::string_view name);

// ---- Shapes and descriptions ------------------------------------------------------------------------

// One sample's shape, without the batch axis: an image {channels, height, width}, or a vector of
// `channels` features as {channels, 1, 1}. Its memory is size() floats in CHW order.
struct Shape
{
    int64_t channels = 0, height = 1, width = 1;
    int64_t size() const { return channels * height * width; }
    bool operator==(const Shape&) const = default;
};

// "784" for a vector, "64x7x7" for an image.
inline std::string shape_string(const Shape& s);

enum class LayerKind
{
    linear,           // out = features; any input shape is read as its size() features
    conv2d,           // out channels = features; kernel, stride, padding / same
    conv_transpose2d, // out channels = features; kernel, stride, padding / same, output_padding
    activation,       // activation (negative_slope for leaky_relu); fused into the layer before it
    flatten,          // the same memory as a vector of size() features (torch.nn.Flatten)
    reshape           // the same memory as `shape` (same size; torch.nn.Unflatten)
};

// One item of a Sequential, as a plugin fills it from its configuration (or with the helpers below).
// Fields that a kind does not use are ignored. Items are numbered from 0 as in torch.nn.Sequential,
// activations and reshapes included, and the parameters are named after the number: "<prefix>3.weight".
struct LayerSpec
{
    LayerKind kind = LayerKind::linear;
    int64_t features = 0;                 // linear: output features; convolutions: output channels
    int64_t kernel[2] = { 1, 1 };         // {kh, kw}
    int64_t stride[2] = { 1, 1 };         // {sh, sw}
    bool same = false;                    // 'same' padding (see PADDING above) instead of padding[]
    int64_t padding[2] = { 0, 0 };        // {ph, pw}
    int64_t output_padding[2] = { 0, 0 }; // conv_transpose2d only: {oph, opw}, each < its stride
    bool bias = true;                     // layers with parameters: false leaves the bias out
    Activation activation = Activation::none;
    float negative_slope = 0.01f; // leaky_relu's slope a (>= 0)
    Shape shape{};                // reshape's target
};

inline LayerSpec linear(int64_t out_features, bool bias = true);
// Square kernels and strides, symmetric padding, as torch.nn.Conv2d(in, out, k, s, p).
inline LayerSpec conv2d(int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t padding = 0);
inline LayerSpec conv2d_same(int64_t out_channels, int64_t kernel, int64_t stride = 1);
inline LayerSpec conv_transpose2d(int64_t out_channels, int64_t kernel, int64_t stride = 1,
                                  int64_t padding = 0, int64_t output_padding = 0);
inline LayerSpec conv_transpose2d_same(int64_t out_channels, int64_t kernel, int64_t stride = 1);
inline LayerSpec activation(Activation a, float negative_slope = 0.01f);
inline LayerSpec flatten();
inline LayerSpec reshape(Shape shape);

// A per-convolution key of a plugin's configuration (kernel, stride) against the number of convolutions
// (the length of `filters`): one item applies to all, `layers` items one each.
//   throws: ansatz::InputError "key K has N items, but filters has M: give one per convolution, or one
//           for all" for any other length.
inline std::vector<int64_t> per_layer(std::vector<int64_t> values, size_t layers, const char* key);

// The floats of a stack's parameters for an input shape, from its description alone (before anything is
// allocated: what a model checks against the memory it may use). Bias-free layers count a bias too (an
// upper bound).
inline double parameter_floats(const std::vector<LayerSpec>& layers, Shape input);

// A matrix product a layer computes, as the whole batch's sgemm C {m, n} = op(A) {m, k} op(B) {k, n}
// (what a forward + backward would cost at the sgemm rate: see Sequential::products).
struct Product
{
    int64_t m = 0, n = 0, k = 0;
    bool transpose_a = false, transpose_b = false;
    int64_t count = 1;
};

// A learnable tensor of a layer, owned by it: "weight" or "bias", its shape, its values.
struct Parameter
{
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> values;
};

// ---- Layers -------------------------------------------------------------------------------------------

/* WHAT THIS OBJECT REPRESENTS
 *   One layer y = f(x) on a batch, with its parameters and per-part workspaces; no activation is kept
 *   (the caller passes x and y to backward). x and y are NCHW, except between two convolutions of a
 *   Sequential (Conv::set_channels_last).
 * forward(team, x, y, batch)
 *   requires: x {batch, input_shape().size()}, y {batch, output_shape().size()}, not overlapping.
 *   ensures:  y = f(x) (with the fused activation).
 * backward(team, x, y, dy, dz, dx, grads, batch)
 *   requires: x and y of a forward with the current parameters; dy {batch, out} = dL/dy; dz a
 *             scratch of dy's size (may be dy itself: then dy is overwritten); dx {batch, in} or
 *             nullptr; grads[i] one buffer per parameter (parameters() order, its element count).
 *   ensures:  dx = dL/dx (overwritten), grads[i] += dL/dtheta_i; dz unspecified. dx must not overlap
 *             x, y, dy or dz. grads == nullptr skips the parameters' gradients (dx only: a Langevin
 *             step's gradient with respect to the input costs about two thirds of a full backward). */
class Layer
{
public:
    virtual ~Layer() = default;
    Shape input_shape() const { return in_; }
    Shape output_shape() const { return out_; }
    Activation activation() const { return act_; }
    // The parameters ("weight", then "bias" unless the layer has none), in the layouts above.
    std::span<Parameter> parameters() { return params_; }
    std::span<const Parameter> parameters() const { return params_; }
    // PyTorch's default initialisation (INITIALISATION above); nothing for a parameter-free layer.
    virtual void initialize(Rng& rng) = 0;
    virtual void forward(ThreadTeam& team, const float* x, float* y, int64_t batch) = 0;
    virtual void backward(ThreadTeam& team, const float* x, const float* y, const float* dy, float* dz,
                          float* dx, float* const* grads, int64_t batch) = 0;
    // The whole-batch products of a forward and a backward (with or without dL/dx).
    virtual void products(int64_t batch, bool input_gradient, std::vector<Product>& out) const = 0;
    // A one-line description, e.g. "conv2d 1x28x28 -> 32x14x14, 3x3 stride 2 same, relu".
    virtual std::string describe() const = 0;
    // Fuses an activation into this layer's output pass (Sequential does this for the item after it).
    void fuse(Activation a, float negative_slope)
    {
        act_ = a;
        slope_ = negative_slope;
    }

protected:
    // swish: the buffer of sigmoid(pre-activation) for `count` outputs, grown (never shrunk) before a
    // forward pass fills it; nullptr for every other activation.
    float* keep_sigmoid(int64_t count)
    {
        if (act_ != Activation::swish)
            return nullptr;
        if (sigmoid_.size() < static_cast<size_t>(count))
            sigmoid_.resize(static_cast<size_t>(count));
        return sigmoid_.data();
    }
    // The kept sigmoid at an output offset (nullptr without swish).
    const float* kept(int64_t offset) const
    {
        return act_ == Activation::swish ? sigmoid_.data() + offset : nullptr;
    }

    Shape in_, out_;
    Activation act_ = Activation::none;
    float slope_ = 0.01f;
    std::vector<Parameter> params_;
    std::vector<float> sigmoid_; // swish: sigmoid of the last forward pass's pre-activations
};

// y = act(x W^T + b): x {N, in}, W {out, in}, b {out}.
class Linear final : public Layer
{
public:
    Linear(int64_t in_features, int64_t out_features, bool bias = true);
    void initialize(Rng& rng) override;
    void forward(ThreadTeam& team, const float* x, float* y, int64_t batch) override;
    void backward(ThreadTeam& team, const float* x, const float* y, const float* dy, float* dz, float* dx,
                  float* const* grads, int64_t batch) override;
    void products(int64_t batch, bool input_gradient, std::vector<Product>& out) const override;
    std::string describe() const override;

private:
    int64_t n_in_, n_out_;
    std::vector<float> bias_sums_; // the bias gradient's sums (each part its block of features)
};

// The geometry of a convolution along one axis: the image side (the input of a Conv2d, the output of a
// ConvTranspose2d) and the grid side (the other), related by image = grid * stride - before + tap.
struct ConvAxis
{
    int64_t image = 0, grid = 0, kernel = 1, stride = 1, before = 0;
};

// A Conv2d or ConvTranspose2d (transposed = true): one class, as the two are each other's adjoint.
//   Conv2d:          y[n, o, g] = b[o] + sum_{c, t} W[o, c, t] x[n, c, g s - before + t]
//   ConvTranspose2d: y[n, o, i] = b[o] + sum_{c, g, t : g s - before + t = i} W[c, o, t] x[n, c, g]
// (g the grid position, t the kernel tap, per axis). Throws ansatz::InputError if the kernel does not
// fit, a size is not positive or output_padding >= stride.
class Conv final : public Layer
{
public:
    Conv(Shape input, const LayerSpec& spec);
    bool transposed() const { return transposed_; }
    const ConvAxis& rows() const { return ay_; }
    const ConvAxis& cols() const { return ax_; }
    // Images per chunk of im2col + sgemm (default: as many as fit about 1 MiB of columns, at least 1).
    int64_t chunk() const { return chunk_; }
    void set_chunk(int64_t images);
    // Whether the input and the output are channels-last ({N, H, W, C}) instead of NCHW. Sequential sets
    // this between two convolutions, whose activations then never go through NCHW (nothing else reads
    // them); a layer used alone is NCHW on both sides.
    void set_channels_last(bool input, bool output)
    {
        in_last_ = input;
        out_last_ = output;
    }
    bool input_channels_last() const { return in_last_; }
    bool output_channels_last() const { return out_last_; }
    void initialize(Rng& rng) override;
    void forward(ThreadTeam& team, const float* x, float* y, int64_t batch) override;
    void backward(ThreadTeam& team, const float* x, const float* y, const float* dy, float* dz, float* dx,
                  float* const* grads, int64_t batch) override;
    void products(int64_t batch, bool input_gradient, std::vector<Product>& out) const override;
    std::string describe() const override;

private:
    struct Part
    {
        std::vector<float> a, b, c, d; // chunk buffers (see nn_impl.hpp)
        std::vector<float> e;          // a Conv2d's dx columns, all 0 between calls (see backward)
        std::vector<float> dw, db;     // this part's gradient sums, the weight's in Wp's order
    };
    void prepare(int parts);
    void permute_weight();
    static void to_channels_last(const float* src, int64_t images, int64_t channels, int64_t pixels,
                                 float* dst);
    static void to_channels_first(const float* src, int64_t images, int64_t channels, int64_t pixels,
                                  float* dst);
    void taps_inside(int64_t gx, int64_t& t0, int64_t& t1) const;
    void im2col(const float* image, int64_t images, float* cols) const;
    void col2im(const float* cols, int64_t images, float* image) const;
    void output_pass(float* ys, int64_t g, const float* bias, float* kept) const;

    bool transposed_;
    bool same_;
    bool in_last_ = false, out_last_ = false;
    ConvAxis ay_, ax_;
    int64_t c_image_, c_grid_; // channels on the image side and on the grid side
    int64_t taps_;             // kh kw
    int64_t p_image_, p_grid_; // pixels of one channel on each side
    int64_t chunk_;            // images per chunk
    std::vector<Part> parts_;
    std::vector<float> wp_; // the weight in the order the products use
    std::vector<float> wt_; // one input channel: the weight as the direct kernels read it
};

// y = act(x), element-wise; for an activation that no layer before it can take.
class ActivationLayer final : public Layer
{
public:
    ActivationLayer(Shape shape, Activation a, float negative_slope = 0.01f);
    void initialize(Rng&) override {}
    void forward(ThreadTeam& team, const float* x, float* y, int64_t batch) override;
    void backward(ThreadTeam& team, const float* x, const float* y, const float* dy, float* dz, float* dx,
                  float* const* grads, int64_t batch) override;
    void products(int64_t, bool, std::vector<Product>&) const override {}
    std::string describe() const override;
};

// ---- Sequential -------------------------------------------------------------------------------------

/* WHAT THIS OBJECT REPRESENTS
 *   A stack of layers applied in order, owning their parameters, activations and gradient buffers.
 *   See CALL ORDER above. An activation item right after a layer with parameters (flatten and reshape
 *   in between allowed) is fused into that layer's output pass; any other becomes an ActivationLayer.
 *   Flatten and reshape cost nothing (the memory is already in that order). */
class Sequential
{
public:
    Sequential() = default;
    // requires: input.size() > 0.
    // throws:   ansatz::InputError "layer I (kind): ..." if an item does not fit the shape before it
    //           (a kernel larger than the padded input, a reshape of another size, a size < 1, a
    //           negative padding or slope), or if the stack computes nothing.
    Sequential(const std::vector<LayerSpec>& layers, Shape input, std::string prefix = "");
    Sequential(Sequential&&) noexcept = default;
    Sequential& operator=(Sequential&&) noexcept = default;

    Shape input_shape() const { return in_; }
    Shape output_shape() const { return out_; }
    int64_t input_size() const { return in_.size(); }
    int64_t output_size() const { return out_.size(); }
    // The shape after item i of the description.
    Shape shape_after(size_t item) const { return shapes_.at(item); }
    // One line per computing layer, with its item number, shapes and parameter count.
    std::string summary() const;

    void initialize(Rng& rng);
    // Views of every parameter, in order: "<prefix><item>.weight", "<prefix><item>.bias". The names and
    // the memory live as long as the Sequential.
    std::vector<ansatz_named_tensor> parameters();
    int32_t parameter_count() const { return static_cast<int32_t>(names_.size()); }
    int64_t parameter_size() const; // floats in all parameters

    // requires: x {batch, input_size()}, batch >= 0, alive and unchanged until backward() returns.
    // ensures:  returns y {batch, output_size()}, valid until the next forward() or release().
    const float* forward(ThreadTeam& team, const float* x, int64_t batch);
    // The output of the last forward() as a view {batch, output_size()}.
    ansatz_tensor output();
    int64_t batch() const { return batch_; }

    // requires: a forward() before; dy {batch, output_size()}; dx {batch, input_size()} or nullptr;
    //           grads in parameters() order, each float32 with the parameter's element count (the
    //           pointer form: nullptr skips every parameter's gradient, for dx alone).
    // ensures:  dx = dL/dx, grads += dL/dtheta (see CALL ORDER).
    // throws:   ansatz::Error for a missing forward(), a wrong count, dtype or size of grads.
    void backward(ThreadTeam& team, const float* dy, float* dx, std::span<const ansatz_tensor> grads);
    void backward(ThreadTeam& team, const float* dy, float* dx, float* const* grads);

    // The whole-batch products of one forward and one backward (with dL/dx or not).
    std::vector<Product> products(int64_t batch, bool input_gradient) const;
    // Frees the activations and gradient buffers (they are allocated again by the next forward()).
    void release();

    std::span<const std::unique_ptr<Layer>> layers() const { return layers_; }

private:
    void grow(int64_t batch);

    Shape in_, out_;
    std::vector<Shape> shapes_;                  // after each item
    std::vector<std::unique_ptr<Layer>> layers_; // the computing layers
    std::vector<int> items_;                     // the item number of each computing layer
    std::vector<int32_t> first_param_;           // index of each layer's first parameter
    std::vector<std::string> names_;             // every parameter's full name
    std::vector<std::vector<float>> outputs_;    // each layer's output, capacity_ rows
    std::vector<float> grad_[2];                 // ping-pong gradient buffers
    std::vector<float*> grad_ptrs_;              // the grads of the current backward()
    int64_t capacity_ = 0;
    int64_t batch_ = -1;
    const float* input_ = nullptr;
};

} // namespace ansatz::nn

#include "ansatz/nn_impl.hpp"

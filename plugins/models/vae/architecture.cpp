#include "architecture.hpp"

namespace vae
{

void describe_architecture(ansatz::Schema& s)
{
    s.integer("latent", "L: latent units of h (the encoder gives mu and log_var, L each)")
        .default_value(16)
        .min(1)
        .max(65536);
    s.choice("architecture", "mlp|conv",
             "mlp: Linear layers of the `hidden` widths; conv: convolutions (`filters`, `kernel`, `stride`, "
             "'same' padding), then Linear layers of the `dense` widths; the decoder mirrors the encoder")
        .default_value("mlp");
    s.integers("hidden",
               "mlp: the encoder's hidden widths, input side first (absent: [512, 256]); the decoder "
               "has them in reverse")
        .optional()
        .min(1)
        .max(1 << 24)
        .length(0, 64);
    s.choice("activation", "relu|leaky_relu|tanh|sigmoid|softplus",
             "after every hidden layer and convolution of both stacks (leaky_relu: slope 0.01, as torch)")
        .default_value("relu");
    s.integers("filters", "conv: output channels of each convolution, input side first (absent: [32, 64])")
        .optional()
        .min(1)
        .max(1 << 16)
        .length(1, 16);
    s.integers("kernel", "conv: square kernel size of each convolution, or one for all (absent: 3)")
        .optional()
        .min(1)
        .max(1024)
        .length(1, 16);
    s.integers("stride", "conv: stride of each convolution, or one for all (absent: 2)")
        .optional()
        .min(1)
        .max(1024)
        .length(1, 16);
    s.integers("dense", "conv: widths of the encoder's Linear layers between the convolutions and the latent "
                        "layer (absent: [16])")
        .optional()
        .min(1)
        .max(1 << 24)
        .length(0, 16);
}

namespace
{

std::vector<int64_t> list_or(const ansatz::Config& c, const char* key, std::vector<int64_t> otherwise)
{
    return c.has(key) ? c.integers(key) : otherwise;
}

} // namespace

Architecture Architecture::read(const ansatz::Config& c)
{
    Architecture a;
    a.latent = c.integer("latent");
    a.conv = c.string("architecture") == "conv";
    a.activation = nn::parse_activation(c.string("activation"));
    const char* mine[] = { "hidden" };
    const char* theirs[] = { "filters", "kernel", "stride", "dense" };
    if (a.conv)
    {
        for (const char* key : mine)
            if (c.has(key))
                throw ansatz::InputError("key " + std::string(key) +
                                         " belongs to architecture: mlp, but this vae is architecture: conv "
                                         "(its layers are filters, kernel, stride and dense)");
        a.filters = list_or(c, "filters", { 32, 64 });
        a.kernel = nn::per_layer(list_or(c, "kernel", { 3 }), a.filters.size(), "kernel");
        a.stride = nn::per_layer(list_or(c, "stride", { 2 }), a.filters.size(), "stride");
        a.dense = list_or(c, "dense", { 16 });
    }
    else
    {
        for (const char* key : theirs)
            if (c.has(key))
                throw ansatz::InputError("key " + std::string(key) +
                                         " belongs to architecture: conv, but this vae is architecture: mlp "
                                         "(its layers are hidden)");
        a.hidden = list_or(c, "hidden", { 512, 256 });
    }
    return a;
}

std::string shape_text(const std::vector<int64_t>& shape)
{
    std::string s = "{";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "}";
}

Stacks build(const Architecture& a, const std::vector<int64_t>& sample_shape)
{
    Stacks s;
    const nn::LayerSpec act = nn::activation(a.activation);
    int64_t d = 1;
    for (int64_t e : sample_shape)
        d *= e;
    if (!a.conv)
    {
        s.data = { d, 1, 1 };
        for (int64_t width : a.hidden)
            s.encoder.push_back(nn::linear(width)), s.encoder.push_back(act);
        s.encoder.push_back(nn::linear(2 * a.latent));
        for (auto it = a.hidden.rbegin(); it != a.hidden.rend(); ++it)
            s.decoder.push_back(nn::linear(*it)), s.decoder.push_back(act);
        s.decoder.push_back(nn::linear(d));
        return s;
    }
    if (sample_shape.size() == 2)
        s.data = { 1, sample_shape[0], sample_shape[1] };
    else if (sample_shape.size() == 3)
        s.data = { sample_shape[0], sample_shape[1], sample_shape[2] };
    else
        throw ansatz::InputError(
            "architecture: conv needs images, samples of shape {H, W} or {C, H, W}, but the "
            "data's samples have shape " +
            shape_text(sample_shape));
    // Encoder: the convolutions ('same': out = ceil(in / stride)), flatten, the dense layers, 2 L.
    nn::Shape at = s.data;
    for (size_t i = 0; i < a.filters.size(); ++i)
    {
        s.encoder.push_back(nn::conv2d_same(a.filters[i], a.kernel[i], a.stride[i]));
        s.encoder.push_back(act);
        at = { a.filters[i], (at.height + a.stride[i] - 1) / a.stride[i],
               (at.width + a.stride[i] - 1) / a.stride[i] };
    }
    s.encoder.push_back(nn::flatten());
    for (int64_t width : a.dense)
        s.encoder.push_back(nn::linear(width)), s.encoder.push_back(act);
    s.encoder.push_back(nn::linear(2 * a.latent));
    // Decoder, as the Keras example's: one Linear layer from h to the last convolution's shape, the
    // transposed convolutions in reverse ('same': out = in * stride), then one of the data's channels
    // with the first kernel and stride 1, whose outputs are the decoder's (logits or means).
    s.decoder.push_back(nn::linear(at.size()));
    s.decoder.push_back(act);
    s.decoder.push_back(nn::reshape(at));
    int64_t strides = 1;
    for (size_t i = a.filters.size(); i-- > 0;)
    {
        s.decoder.push_back(nn::conv_transpose2d_same(a.filters[i], a.kernel[i], a.stride[i]));
        s.decoder.push_back(act);
        at = { a.filters[i], at.height * a.stride[i], at.width * a.stride[i] };
        strides *= a.stride[i];
    }
    s.decoder.push_back(nn::conv_transpose2d_same(s.data.channels, a.kernel[0], 1));
    at.channels = s.data.channels;
    if (!(at == s.data))
        throw ansatz::InputError("architecture: conv: the decoder's transposed convolutions give images of " +
                                 nn::shape_string(at) + ", but the data's are " + nn::shape_string(s.data) +
                                 ": with 'same' padding the product of the strides (" +
                                 std::to_string(strides) + ") must divide the images' height and width");
    return s;
}

} // namespace vae

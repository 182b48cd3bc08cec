#include "architecture.hpp"

#include <cstdio>

namespace neural_energy
{

void describe_architecture(ansatz::Schema& s)
{
    s.choice("architecture", "conv|mlp",
             "conv: convolutions (`filters`, `kernel`, `stride`, 'same' padding), then Linear layers of the "
             "`dense` widths; mlp: Linear layers of the `hidden` widths; both end in one Linear output, the "
             "energy")
        .default_value("conv");
    s.integers("hidden", "mlp: the hidden widths, input side first (absent: [256, 256])")
        .optional()
        .min(1)
        .max(1 << 24)
        .length(0, 64);
    s.integers("filters",
               "conv: output channels of each convolution, input side first (absent: [16, 32, 64, 64])")
        .optional()
        .min(1)
        .max(1 << 16)
        .length(1, 16);
    s.integers("kernel",
               "conv: square kernel size of each convolution, or one for all (absent: [5, 3, 3, 3])")
        .optional()
        .min(1)
        .max(1024)
        .length(1, 16);
    s.integers("stride", "conv: stride of each convolution, or one for all (absent: 2)")
        .optional()
        .min(1)
        .max(1024)
        .length(1, 16);
    s.integers("dense",
               "conv: widths of the Linear layers between the convolutions and the output (absent: [64])")
        .optional()
        .min(1)
        .max(1 << 24)
        .length(0, 16);
    s.choice(
         "activation", "swish|relu|leaky_relu|tanh|sigmoid|softplus",
         "after every convolution and hidden layer (swish: x sigmoid(x), Foster's; leaky_relu: slope 0.01)")
        .default_value("swish");
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
    a.conv = c.string("architecture") == "conv";
    a.activation = nn::parse_activation(c.string("activation"));
    if (a.conv)
    {
        if (c.has("hidden"))
            throw ansatz::InputError("key hidden belongs to architecture: mlp, but this neural_energy is "
                                     "architecture: conv (its layers are filters, kernel, stride and dense)");
        a.filters = list_or(c, "filters", { 16, 32, 64, 64 });
        const bool foster = !c.has("filters") && !c.has("kernel");
        a.kernel = nn::per_layer(foster ? std::vector<int64_t>{ 5, 3, 3, 3 } : list_or(c, "kernel", { 3 }),
                                 a.filters.size(), "kernel");
        a.stride = nn::per_layer(list_or(c, "stride", { 2 }), a.filters.size(), "stride");
        a.dense = list_or(c, "dense", { 64 });
    }
    else
    {
        for (const char* key : { "filters", "kernel", "stride", "dense" })
            if (c.has(key))
                throw ansatz::InputError("key " + std::string(key) +
                                         " belongs to architecture: conv, but this neural_energy is "
                                         "architecture: mlp (its layers are hidden)");
        a.hidden = list_or(c, "hidden", { 256, 256 });
    }
    return a;
}

Stack build(const Architecture& a, const std::vector<int64_t>& sample_shape)
{
    Stack s;
    const nn::LayerSpec act = nn::activation(a.activation);
    int64_t d = 1;
    for (int64_t e : sample_shape)
        d *= e;
    if (!a.conv)
    {
        s.input = { d, 1, 1 };
        for (int64_t width : a.hidden)
            s.layers.push_back(nn::linear(width)), s.layers.push_back(act);
        s.layers.push_back(nn::linear(1));
        return s;
    }
    if (sample_shape.size() == 2)
        s.input = { 1, sample_shape[0], sample_shape[1] };
    else if (sample_shape.size() == 3)
        s.input = { sample_shape[0], sample_shape[1], sample_shape[2] };
    else
        throw ansatz::InputError("architecture: conv needs images, samples of shape {H, W} or {C, H, W}, but "
                                 "the data's samples have shape " +
                                 shape_text(sample_shape));
    for (size_t i = 0; i < a.filters.size(); ++i)
    {
        s.layers.push_back(nn::conv2d_same(a.filters[i], a.kernel[i], a.stride[i]));
        s.layers.push_back(act);
    }
    s.layers.push_back(nn::flatten());
    for (int64_t width : a.dense)
        s.layers.push_back(nn::linear(width)), s.layers.push_back(act);
    s.layers.push_back(nn::linear(1));
    return s;
}

std::string shape_text(const std::vector<int64_t>& shape)
{
    std::string s = "{";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "}";
}

std::string number(double x)
{
    char text[32];
    std::snprintf(text, sizeof text, "%g", x);
    return text;
}

} // namespace neural_energy

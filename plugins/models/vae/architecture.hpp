// The vae's architecture: its configuration keys (describe), what they say before the data is known
// (Architecture, checked when the component is created), and the encoder and decoder stacks it gives
// for the data's sample shape (build, checked when the model is set up, in validation).
#pragma once

#include <ansatz/nn.hpp>
#include <ansatz/plugin.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace vae
{

namespace nn = ansatz::nn;

// The keys of the architecture (latent, architecture, hidden, activation, filters, kernel, stride, dense).
void describe_architecture(ansatz::Schema& s);

// What the keys say, with the defaults of the architecture filled in. Every list of a convolutional
// architecture has one item per convolution (kernel and stride given as one item apply to all).
struct Architecture
{
    int64_t latent = 0;
    bool conv = false;
    std::vector<int64_t> hidden; // mlp: the encoder's hidden widths, input side first
    nn::Activation activation = nn::Activation::relu;
    std::vector<int64_t> filters, kernel, stride; // conv: per convolution, input side first
    std::vector<int64_t> dense;                   // conv: the encoder's Linear layers after them

    // throws: ansatz::InputError for a key of the other architecture, or kernel / stride lists whose
    //         length is neither 1 nor the number of filters.
    static Architecture read(const ansatz::Config& c);
};

// The two stacks for samples of `sample_shape`, and the shape the data is read as.
struct Stacks
{
    nn::Shape data;                     // {D, 1, 1} (mlp) or {C, H, W} (conv)
    std::vector<nn::LayerSpec> encoder; // data -> 2 L (mu, then log_var)
    std::vector<nn::LayerSpec> decoder; // L -> data's size (the decoder's outputs: logits or means)
};

// requires: every extent of sample_shape >= 1.
// throws:   ansatz::InputError for a convolutional architecture on samples that are not images
//           ({H, W} or {C, H, W}), and for a decoder whose output does not have the data's shape.
//           Sizes that do not fit a layer are reported when the stacks are constructed (nn.hpp).
Stacks build(const Architecture& a, const std::vector<int64_t>& sample_shape);

// "{28, 28}"
std::string shape_text(const std::vector<int64_t>& shape);

} // namespace vae

// The neural energy's network: its configuration keys (describe), what they say before the data is known
// (Architecture, checked when the component is created), and the stack they give for the data's sample
// shape (build, checked when the model is set up, in validation).
#pragma once

#include <ansatz/nn.hpp>
#include <ansatz/plugin.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace neural_energy
{

namespace nn = ansatz::nn;

// The keys of the network (architecture, hidden, filters, kernel, stride, dense, activation).
void describe_architecture(ansatz::Schema& s);

// What the keys say, with the defaults filled in (Foster's energy network for the conv architecture).
// Every list of the conv architecture has one item per convolution (kernel and stride given as one item
// apply to all).
struct Architecture
{
    bool conv = true;
    std::vector<int64_t> hidden;                  // mlp: hidden widths, input side first
    std::vector<int64_t> filters, kernel, stride; // conv: per convolution, input side first
    std::vector<int64_t> dense;                   // conv: Linear layers after the convolutions
    nn::Activation activation = nn::Activation::swish;

    // throws: ansatz::InputError for a key of the other architecture, or kernel / stride lists whose
    //         length is neither 1 nor the number of filters.
    static Architecture read(const ansatz::Config& c);
};

// The stack for samples of a shape: its input shape and layers (ending in one output, the energy).
struct Stack
{
    nn::Shape input;
    std::vector<nn::LayerSpec> layers;
};

// throws: ansatz::InputError for the conv architecture on samples that are not images ({H, W} or
//         {C, H, W}). Sizes that do not fit a layer are reported when the Sequential is constructed.
Stack build(const Architecture& a, const std::vector<int64_t>& sample_shape);

// "{28, 28}"
std::string shape_text(const std::vector<int64_t>& shape);
// A number as a message shows it: "-1", "0.5".
std::string number(double x);

} // namespace neural_energy

// ansatz/xtensor.hpp -- views as xtensor expressions, for the bodies of plugins.
//
// Heavy to compile: include it in the .cpp files that compute, never in a header that many files
// include. The adaptors write through to the view's memory; they own nothing.
#pragma once

#include "ansatz/tensor.hpp"

#include <xtensor/xadapt.hpp>

#include <array>
#include <cstddef>

namespace ansatz
{

// A rank-N xtensor adaptor over a float32 view; throws if the view's rank or type differs.
template <std::size_t N>
auto adapt(const ansatz_tensor& t)
{
    if (t.rank != static_cast<int32_t>(N))
        throw Error("expected a rank-" + std::to_string(N) + " tensor, got shape " + shape_string(t));
    std::array<std::size_t, N> shape{};
    for (std::size_t i = 0; i < N; ++i)
        shape[i] = static_cast<std::size_t>(t.shape[i]);
    return xt::adapt(f32(t), static_cast<std::size_t>(element_count(t)), xt::no_ownership(), shape);
}

} // namespace ansatz

// ansatz/tensor.hpp -- tensor views: pointer + shape, row-major, contiguous, float32.
//
// A view never owns memory. Lightweight on purpose: no xtensor here, so that every file may include
// it; ansatz/xtensor.hpp adapts a view to an xtensor expression where a body needs one.
#pragma once

#include "ansatz/abi.h"
#include "ansatz/error.hpp"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace ansatz
{

inline int64_t element_count(const ansatz_tensor& t)
{
    int64_t n = 1;
    for (int32_t i = 0; i < t.rank; ++i)
        n *= t.shape[i];
    return n;
}

inline ansatz_tensor make_view(float* data, std::initializer_list<int64_t> shape)
{
    ansatz_tensor t{};
    t.data = data;
    for (int64_t extent : shape)
        t.shape[t.rank++] = extent;
    return t;
}

inline ansatz_tensor make_view(const float* data, std::initializer_list<int64_t> shape)
{
    // Inputs are never written (abi.h); the C view has one pointer type for both directions.
    return make_view(const_cast<float*>(data), shape);
}

inline std::string shape_string(const ansatz_tensor& t)
{
    std::string s = "{";
    for (int32_t i = 0; i < t.rank; ++i)
        s += (i ? ", " : "") + std::to_string(t.shape[i]);
    return s + "}";
}

// Requires a rank-2 view {rows, cols}; cols < 0 accepts any column count. Names the view in the error.
inline void require_matrix(const ansatz_tensor& t, int64_t rows, int64_t cols, const char* what)
{
    if (t.rank != 2 || (rows >= 0 && t.shape[0] != rows) || (cols >= 0 && t.shape[1] != cols))
        throw Error(std::string(what) + " has shape " + shape_string(t) + ", expected {" +
                    (rows >= 0 ? std::to_string(rows) : std::string("N")) + ", " +
                    (cols >= 0 ? std::to_string(cols) : std::string("D")) + "}");
}

inline void require_vector(const ansatz_tensor& t, int64_t size, const char* what)
{
    if (t.rank != 1 || t.shape[0] != size)
        throw Error(std::string(what) + " has shape " + shape_string(t) + ", expected {" +
                    std::to_string(size) + "}");
}

// A work buffer that grows to the largest size asked for and never shrinks: views of any smaller
// shape reuse it, so alternating batch sizes (a data batch, then the chains) never reallocate. A view
// is valid until the next view() or vector() of the same workspace asks for more: one live view per
// workspace.
class Workspace
{
public:
    ansatz_tensor view(int64_t rows, int64_t cols)
    {
        reserve(rows * cols);
        return make_view(data_.data(), { rows, cols });
    }
    ansatz_tensor vector(int64_t size)
    {
        reserve(size);
        return make_view(data_.data(), { size });
    }

private:
    void reserve(int64_t size)
    {
        if (data_.size() < static_cast<size_t>(size))
            data_.resize(static_cast<size_t>(size));
    }
    std::vector<float> data_;
};

} // namespace ansatz

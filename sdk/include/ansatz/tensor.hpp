// ansatz/tensor.hpp -- tensor views: pointer + element type + shape, row-major, contiguous.
//
// A view never owns memory. Models compute in float32 (f32() reads a view as floats, checking its
// type); state may be any ansatz_dtype. Lightweight on purpose: no xtensor here, so that every file may
// include it; ansatz/xtensor.hpp adapts a view to an xtensor expression where a body needs one.
#pragma once

#include "ansatz/abi.h"
#include "ansatz/error.hpp"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
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

// The ansatz_dtype of an element type; only these five cross the boundary.
template <class T>
constexpr int32_t dtype_of()
{
    if constexpr (std::is_same_v<T, float>)
        return ANSATZ_DTYPE_FLOAT32;
    else if constexpr (std::is_same_v<T, double>)
        return ANSATZ_DTYPE_FLOAT64;
    else if constexpr (std::is_same_v<T, int64_t>)
        return ANSATZ_DTYPE_INT64;
    else if constexpr (std::is_same_v<T, uint64_t>)
        return ANSATZ_DTYPE_UINT64;
    else
    {
        static_assert(std::is_same_v<T, uint8_t>,
                      "a tensor holds float, double, int64_t, uint64_t or uint8_t");
        return ANSATZ_DTYPE_UINT8;
    }
}

inline const char* dtype_name(int32_t dtype)
{
    switch (dtype)
    {
    case ANSATZ_DTYPE_FLOAT32:
        return "float32";
    case ANSATZ_DTYPE_FLOAT64:
        return "float64";
    case ANSATZ_DTYPE_INT64:
        return "int64";
    case ANSATZ_DTYPE_UINT64:
        return "uint64";
    case ANSATZ_DTYPE_UINT8:
        return "uint8";
    default:
        return "unknown";
    }
}

// Bytes of one element, 0 for an unknown dtype.
inline size_t dtype_size(int32_t dtype)
{
    switch (dtype)
    {
    case ANSATZ_DTYPE_FLOAT32:
        return 4;
    case ANSATZ_DTYPE_FLOAT64:
    case ANSATZ_DTYPE_INT64:
    case ANSATZ_DTYPE_UINT64:
        return 8;
    case ANSATZ_DTYPE_UINT8:
        return 1;
    default:
        return 0;
    }
}

template <class T>
ansatz_tensor make_view(T* data, std::initializer_list<int64_t> shape)
{
    ansatz_tensor t{};
    t.data = data;
    t.dtype = dtype_of<T>();
    t.device = ANSATZ_DEVICE_HOST;
    for (int64_t extent : shape)
        t.shape[t.rank++] = extent;
    return t;
}

template <class T>
ansatz_tensor make_view(const T* data, std::initializer_list<int64_t> shape)
{
    // Inputs are never written (abi.h); the C view has one pointer type for both directions.
    return make_view(const_cast<T*>(data), shape);
}

inline std::string shape_string(const ansatz_tensor& t)
{
    std::string s = "{";
    for (int32_t i = 0; i < t.rank; ++i)
        s += (i ? ", " : "") + std::to_string(t.shape[i]);
    return s + "}";
}

// The elements of a view as T, after checking that it holds T on the host.
template <class T>
T* data(const ansatz_tensor& t)
{
    if (t.dtype != dtype_of<T>() || t.device != ANSATZ_DEVICE_HOST)
        throw Error(std::string("a tensor of ") + dtype_name(t.dtype) + " elements (shape " +
                    shape_string(t) + ") was passed where " + dtype_name(dtype_of<T>()) +
                    " elements on the host are expected");
    return static_cast<T*>(t.data);
}

// The elements of a float32 view (what models compute on).
inline float* f32(const ansatz_tensor& t)
{
    return data<float>(t);
}

// Requires a float32 rank-2 view {rows, cols}; cols < 0 accepts any column count. Names the view in the
// error.
inline void require_matrix(const ansatz_tensor& t, int64_t rows, int64_t cols, const char* what)
{
    if (t.dtype != ANSATZ_DTYPE_FLOAT32)
        throw Error(std::string(what) + " holds " + dtype_name(t.dtype) + " elements, expected float32");
    if (t.rank != 2 || (rows >= 0 && t.shape[0] != rows) || (cols >= 0 && t.shape[1] != cols))
        throw Error(std::string(what) + " has shape " + shape_string(t) + ", expected {" +
                    (rows >= 0 ? std::to_string(rows) : std::string("N")) + ", " +
                    (cols >= 0 ? std::to_string(cols) : std::string("D")) + "}");
}

inline void require_vector(const ansatz_tensor& t, int64_t size, const char* what)
{
    if (t.dtype != ANSATZ_DTYPE_FLOAT32)
        throw Error(std::string(what) + " holds " + dtype_name(t.dtype) + " elements, expected float32");
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

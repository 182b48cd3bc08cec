// npy.hpp -- NumPy .npy files (format 1.0, little-endian, C order) for every ansatz_dtype: written
// from tensor views, read back with their header checked against the file's size.
#pragma once

#include "ansatz/abi.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ansatz::engine
{

// The bytes of a .npy file holding the view's elements.
std::string npy_bytes(const ansatz_tensor& view);

struct NpyArray
{
    int32_t dtype = ANSATZ_DTYPE_FLOAT32;
    std::vector<int64_t> shape;
    std::string bytes; // the elements

    // A view of the elements (valid while this array lives and is not changed).
    ansatz_tensor view();
};

// Reads a .npy file this engine wrote, of at most max_bytes (a regular file only); a damaged or
// foreign file throws std::runtime_error whose message says what is wrong (the caller names the file).
NpyArray read_npy(const std::filesystem::path& file, uint64_t max_bytes = uint64_t{ 1 } << 40);

} // namespace ansatz::engine

// npy_file.hpp -- reads and checks one NumPy .npy file (numpy.lib.format, versions 1.0, 2.0 and 3.0).
//
// Layout (numpy/lib/format.py, NEP 1):
//     bytes 0-5   the magic string \x93NUMPY
//     bytes 6, 7  the format version, major and minor: 1.0, 2.0 or 3.0
//     then        the header length HLEN, little-endian: 2 bytes (1.0) or 4 bytes (2.0, 3.0)
//     HLEN bytes  the header: a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)}
//                 padded with spaces and ending in '\n' (latin-1 in 1.0 and 2.0, UTF-8 in 3.0)
//     then        the data: prod(shape) elements of the dtype, nothing after them
// Read here: dtypes float32 '<f4', float64 '<f8', uint8 '|u1' and bool '|b1', C order, any rank >= 1.
// Every problem is an ansatz::InputError of one sentence: "<path>: byte <offset>: <what>".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ansatz_npy
{

enum class Dtype
{
    float32,
    float64,
    uint8,
    boolean,
};

// "float32", ...
const char* dtype_name(Dtype d);
size_t item_size(Dtype d);

struct NpyFile
{
    std::string path;
    int version = 1; // the major version: 1, 2 or 3
    Dtype dtype = Dtype::float32;
    std::vector<int64_t> shape; // shape[0] is the row count
    size_t data_offset = 0;     // where the data starts in the file
    std::vector<unsigned char> data;

    int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
    // Values per row: the product of the extents after the first.
    int64_t row_size() const;
    // Element i (flat, C order) as a double.
    double value(int64_t i) const;
    // "(100, 64)"
    std::string shape_text() const;
};

// Loads and checks `path`: the preamble, the header, a data size that matches the header, finite
// floats and bools of 0 or 1. Refuses a file larger than `max_bytes` (the machine's memory) before
// reading its data, and one that is not a regular file.
NpyFile load_npy(const std::string& path, uint64_t max_bytes);

} // namespace ansatz_npy

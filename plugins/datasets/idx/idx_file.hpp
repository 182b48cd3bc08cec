// idx_file.hpp -- reads and checks one IDX file (the MNIST format), plain or gzip-compressed.
//
// Layout (http://yann.lecun.com/exdb/mnist/):
//     byte 0, 1   zero
//     byte 2      data type: 0x08 unsigned byte (the only one supported here), 0x09 signed byte,
//                 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
//     byte 3      rank r
//     4 r bytes   the dimensions, big-endian uint32, the first one the sample count
//     then        the data, row-major, exactly prod(dims) elements
// A file whose first two bytes are 0x1f 0x8b is a gzip stream of such a file and is decompressed
// whole (every member of a multi-member stream).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ansatz_idx
{

struct IdxFile
{
    std::string path;
    bool compressed = false;
    std::vector<int64_t> dims;  // dims[0] is the sample count
    std::vector<uint8_t> bytes; // the whole (decompressed) file, header included
    size_t data_offset = 0;     // where the data starts in `bytes`

    const uint8_t* data() const { return bytes.data() + data_offset; }
};

// Loads and checks `path`. Every problem with the file is an ansatz::InputError of one sentence that
// begins with the path and names the byte offset where it applies (offsets in the decompressed stream
// for a gzip file).
IdxFile load_idx(const std::string& path);

} // namespace ansatz_idx

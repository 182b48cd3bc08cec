#include "outputs/npy.hpp"

#include "ansatz/tensor.hpp"
#include "outputs/files.hpp"

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace ansatz::engine
{

namespace
{

const char* descr(int32_t dtype)
{
    switch (dtype)
    {
    case ANSATZ_DTYPE_FLOAT32:
        return "<f4";
    case ANSATZ_DTYPE_FLOAT64:
        return "<f8";
    case ANSATZ_DTYPE_INT64:
        return "<i8";
    case ANSATZ_DTYPE_UINT64:
        return "<u8";
    case ANSATZ_DTYPE_UINT8:
        return "|u1";
    default:
        throw std::runtime_error("unknown dtype " + std::to_string(dtype));
    }
}

constexpr char magic[] = "\x93NUMPY\x01\x00";

} // namespace

std::string npy_bytes(const ansatz_tensor& view)
{
    std::string dims;
    for (int32_t i = 0; i < view.rank; ++i)
        dims += std::to_string(view.shape[i]) + ",";
    if (view.rank > 1)
        dims.pop_back(); // (3,) for rank 1, (3, 4) otherwise
    std::string header = std::string("{'descr': '") + descr(view.dtype) +
                         "', 'fortran_order': False, 'shape': (" + dims + "), }";
    // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    const size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::string out(magic, 8);
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
    out += header;
    const size_t size = static_cast<size_t>(element_count(view)) * dtype_size(view.dtype);
    if (size > 0)
        out.append(static_cast<const char*>(view.data), size);
    return out;
}

ansatz_tensor NpyArray::view()
{
    ansatz_tensor t{};
    t.data = bytes.data();
    t.dtype = dtype;
    t.rank = static_cast<int32_t>(shape.size());
    for (size_t i = 0; i < shape.size(); ++i)
        t.shape[i] = shape[i];
    return t;
}

NpyArray read_npy(const std::filesystem::path& file, uint64_t max_bytes)
{
    std::string content;
    if (const std::string why = read_regular_file(file, max_bytes, content); !why.empty())
        throw std::runtime_error("it " + why);
    if (content.size() < 10 || content.compare(0, 8, std::string(magic, 8)) != 0)
        throw std::runtime_error("it is not a .npy file of format 1.0 (" + std::to_string(content.size()) +
                                 " bytes)");
    const size_t header_size = static_cast<unsigned char>(content[8]) |
                               (static_cast<size_t>(static_cast<unsigned char>(content[9])) << 8);
    if (10 + header_size > content.size())
        throw std::runtime_error("its header ends at byte " + std::to_string(10 + header_size) +
                                 ", past the end of the " + std::to_string(content.size()) + "-byte file");
    const std::string header = content.substr(10, header_size);
    NpyArray array;
    const int32_t dtypes[] = { ANSATZ_DTYPE_FLOAT32, ANSATZ_DTYPE_FLOAT64, ANSATZ_DTYPE_INT64,
                               ANSATZ_DTYPE_UINT64, ANSATZ_DTYPE_UINT8 };
    bool known = false;
    for (int32_t d : dtypes)
        if (header.find(std::string("'descr': '") + descr(d) + "'") != std::string::npos)
            array.dtype = d, known = true;
    if (!known || header.find("'fortran_order': False") == std::string::npos)
        throw std::runtime_error("its header is not one this engine writes: " + header.substr(0, 80));
    const size_t open = header.find("'shape': (");
    const size_t close = header.find(')', open);
    if (open == std::string::npos || close == std::string::npos)
        throw std::runtime_error("its header has no shape");
    int64_t count = 1;
    std::string dims = header.substr(open + 10, close - open - 10);
    for (size_t at = 0; at < dims.size();)
    {
        const size_t comma = dims.find(',', at);
        const std::string item = dims.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        if (item.find_first_not_of(' ') != std::string::npos)
        {
            const int64_t extent = std::stoll(item);
            if (extent < 0 || (extent > 0 && count > INT64_MAX / 16 / extent))
                throw std::runtime_error("its shape is not valid");
            array.shape.push_back(extent);
            count *= extent;
        }
        if (comma == std::string::npos)
            break;
        at = comma + 1;
    }
    if (array.shape.size() > ANSATZ_MAX_RANK)
        throw std::runtime_error("its rank is above " + std::to_string(ANSATZ_MAX_RANK));
    const size_t expected = 10 + header_size + static_cast<size_t>(count) * dtype_size(array.dtype);
    if (content.size() != expected)
        throw std::runtime_error("it has " + std::to_string(content.size()) +
                                 " bytes, but its header describes " + std::to_string(expected));
    array.bytes = content.substr(10 + header_size);
    return array;
}

} // namespace ansatz::engine

#include "idx_file.hpp"

#include <ansatz/abi.h>
#include <ansatz/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace ansatz_idx
{
namespace
{

using ansatz::InputError;

std::string hex_byte(unsigned value)
{
    char text[8];
    std::snprintf(text, sizeof text, "0x%02X", value & 0xFFu);
    return text;
}

const char* type_name(unsigned type)
{
    switch (type)
    {
    case 0x08:
        return "unsigned byte";
    case 0x09:
        return "signed byte";
    case 0x0B:
        return "16-bit integer";
    case 0x0C:
        return "32-bit integer";
    case 0x0D:
        return "32-bit float";
    case 0x0E:
        return "64-bit float";
    default:
        return "unknown type";
    }
}

std::vector<uint8_t> read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in)
        throw InputError(path + ": cannot be opened (" + std::strerror(errno) + ")");
    const std::streamoff size = in.tellg();
    if (size < 0)
        throw InputError(path + ": cannot be read (its size is unknown)");
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    in.seekg(0);
    if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
        throw InputError(path + ": cannot be read (" + std::strerror(errno) + ")");
    return bytes;
}

bool is_gzip(const std::vector<uint8_t>& raw)
{
    return raw.size() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;
}

// Inflates every gzip member of `raw`; a corrupt or truncated stream names its compressed byte offset.
std::vector<uint8_t> gunzip(const std::string& path, const std::vector<uint8_t>& raw)
{
    // ISIZE, the last four bytes, is the uncompressed size modulo 2^32: the first guess of the output
    // size, bounded because a truncated or corrupt file has anything there. The buffer grows by doubling.
    size_t guess = raw.size() * 4;
    if (raw.size() >= 18)
    {
        const uint8_t* t = raw.data() + raw.size() - 4;
        const size_t isize =
            uint32_t(t[0]) | uint32_t(t[1]) << 8 | uint32_t(t[2]) << 16 | uint32_t(t[3]) << 24;
        guess = std::min(isize, raw.size() * 16);
    }
    std::vector<uint8_t> out(std::max<size_t>(guess, 1024));

    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) // 16 + window bits: gzip wrapper only
        throw ansatz::Error(path + ": zlib could not be initialised");
    size_t in_pos = 0;  // compressed bytes consumed before the current inflate call
    size_t out_pos = 0; // decompressed bytes produced
    const auto corrupt = [&](const char* why) {
        const std::string message = path +
                                    ": gzip stream is corrupt or truncated at compressed byte offset " +
                                    std::to_string(in_pos) + " (" + why + ")";
        inflateEnd(&zs);
        throw InputError(message);
    };
    for (;;)
    {
        if (out_pos == out.size())
            out.resize(out.size() * 2);
        const size_t in_left = raw.size() - in_pos;
        const size_t out_left = out.size() - out_pos;
        zs.next_in = const_cast<Bytef*>(raw.data() + in_pos);
        zs.avail_in = static_cast<uInt>(std::min<size_t>(in_left, UINT_MAX));
        zs.next_out = out.data() + out_pos;
        zs.avail_out = static_cast<uInt>(std::min<size_t>(out_left, UINT_MAX));
        const uInt avail_in = zs.avail_in;
        const uInt avail_out = zs.avail_out;
        const int ret = inflate(&zs, Z_NO_FLUSH);
        in_pos += avail_in - zs.avail_in;
        out_pos += avail_out - zs.avail_out;
        if (ret == Z_STREAM_END)
        {
            if (in_pos == raw.size())
                break;
            if (raw.size() - in_pos >= 2 && raw[in_pos] == 0x1f && raw[in_pos + 1] == 0x8b)
            {
                inflateReset(&zs); // the next member of a multi-member stream
                continue;
            }
            const std::string message = path + ": " + std::to_string(raw.size() - in_pos) +
                                        " bytes after the end of the gzip stream at compressed byte offset " +
                                        std::to_string(in_pos) + " are not a gzip member";
            inflateEnd(&zs);
            throw InputError(message);
        }
        if (ret == Z_OK)
            continue;
        if (ret == Z_BUF_ERROR && zs.avail_out == 0)
            continue; // grows above
        if (ret == Z_BUF_ERROR && in_pos == raw.size())
            corrupt("the stream ends before its end marker");
        if (ret == Z_MEM_ERROR)
        {
            inflateEnd(&zs);
            throw std::bad_alloc();
        }
        corrupt(zs.msg ? zs.msg : "zlib cannot decode it");
    }
    inflateEnd(&zs);
    out.resize(out_pos);
    out.shrink_to_fit();
    return out;
}

uint32_t big_endian(const uint8_t* p)
{
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

} // namespace

IdxFile load_idx(const std::string& path)
{
    IdxFile f;
    f.path = path;
    std::vector<uint8_t> raw = read_file(path);
    if (raw.empty())
        throw InputError(path + ": the file is empty (0 bytes), so it is not an IDX file");
    f.compressed = is_gzip(raw);
    f.bytes = f.compressed ? gunzip(path, raw) : std::move(raw);
    raw = {};

    const std::vector<uint8_t>& b = f.bytes;
    const size_t size = b.size();
    const std::string file = f.compressed ? "the decompressed stream" : "the file";
    const std::string offsets = f.compressed ? " (offsets in the decompressed stream)" : "";
    if (size == 0)
        throw InputError(path + ": the gzip stream decompresses to 0 bytes, so it is not an IDX file");
    if (b[0] != 0 || (size >= 2 && b[1] != 0))
    {
        std::string found = hex_byte(b[0]) + (size >= 2 ? " " + hex_byte(b[1]) : std::string());
        throw InputError(path + ": bad magic number: the first " + (size >= 2 ? "two bytes" : "byte") +
                         (f.compressed ? " of the decompressed stream" : "") +
                         (size >= 2 ? " are " : " is ") + found +
                         ", not 0x00 0x00, so this is not an IDX file");
    }
    if (size < 4)
        throw InputError(path + ": truncated header: " + file + " has only " + std::to_string(size) +
                         " of the 4 bytes of an IDX magic number");
    const unsigned type = b[2];
    if (type != 0x08)
        throw InputError(path + ": data type " + hex_byte(type) + " (" + type_name(type) +
                         ") at byte offset 2 is not supported; only 0x08 (unsigned byte) is");
    const unsigned rank = b[3];
    if (rank == 0)
        throw InputError(
            path + ": rank 0 at byte offset 3; an IDX file has at least one dimension, the sample count");
    if (rank > ANSATZ_MAX_RANK + 1)
        throw InputError(path + ": rank " + std::to_string(rank) + " at byte offset 3 is more than " +
                         std::to_string(ANSATZ_MAX_RANK + 1) + ", the most this reader supports");
    const size_t header = 4 + 4 * size_t(rank);
    if (size < header)
        throw InputError(path + ": truncated header: a rank-" + std::to_string(rank) + " IDX header has " +
                         std::to_string(header) + " bytes, but " + file + " has only " +
                         std::to_string(size));

    // Each extent is below 2^32 and the product is capped once it passes 2^64, so 128 bits never overflow.
    const unsigned __int128 cap = (unsigned __int128)UINT64_MAX + 1;
    unsigned __int128 claimed = 1;
    std::string product;
    for (unsigned i = 0; i < rank; ++i)
    {
        const uint32_t extent = big_endian(b.data() + 4 + 4 * i);
        if (extent == 0)
            throw InputError(path + ": dimension " + std::to_string(i) + " (at byte offset " +
                             std::to_string(4 + 4 * i) + ") is 0, so the file holds no data");
        f.dims.push_back(extent);
        claimed = std::min(claimed * extent, cap);
        product += (i ? " x " : "") + std::to_string(extent);
    }
    const std::string total = claimed == cap ? "more than 2^64" : std::to_string(uint64_t(claimed));
    const std::string claim = "header claims " + product + (rank > 1 ? " = " + total : "") +
                              " bytes of data from byte offset " + std::to_string(header);
    if (claimed > size - header)
        throw InputError(path + ": " + claim + ", but the data ends at byte offset " + std::to_string(size) +
                         offsets);
    const size_t end = header + size_t(claimed);
    if (end < size)
        throw InputError(path + ": " + claim + ", which end at byte offset " + std::to_string(end) +
                         ", but " + file + " goes on to byte offset " + std::to_string(size) + " (" +
                         std::to_string(size - end) + " trailing bytes)" + offsets);
    f.data_offset = header;
    return f;
}

} // namespace ansatz_idx

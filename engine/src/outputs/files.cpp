#include "outputs/files.hpp"

#include "outputs/npy.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

namespace ansatz::engine
{

namespace fs = std::filesystem;

void write_file_atomic(const fs::path& file, const std::string& bytes)
{
    // Appended piecewise: "." + name + ".tmp" trips a false -Wrestrict in GCC 12 (bug 105329).
    std::string name = ".";
    name += file.filename().string();
    name += ".tmp";
    const fs::path temporary = file.parent_path() / name;
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        out.flush();
        if (!out)
            throw std::runtime_error("cannot write " + temporary.string());
    }
    std::error_code ec;
    fs::rename(temporary, file, ec);
    if (ec)
        throw std::runtime_error("cannot rename " + temporary.string() + " to " + file.string() + ": " +
                                 ec.message());
}

std::string read_regular_file(const fs::path& file, uint64_t max_bytes, std::string& out)
{
    std::error_code ec;
    const fs::file_status status = fs::status(file, ec); // follows links: /dev/zero behind one is a device
    if (ec || status.type() == fs::file_type::not_found)
        return "does not exist";
    if (status.type() != fs::file_type::regular)
        return status.type() == fs::file_type::directory ? "is a folder, not a file"
                                                         : "is not a regular file (a device, FIFO or socket)";
    const uint64_t size = fs::file_size(file, ec);
    if (ec)
        return "cannot be read (" + ec.message() + ")";
    if (size > max_bytes)
        return "is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
               " this file may have";
    std::ifstream in(file, std::ios::binary);
    if (!in)
        return "cannot be opened";
    out.resize(size);
    in.read(out.data(), static_cast<std::streamsize>(size));
    out.resize(static_cast<size_t>(in.gcount()));
    return "";
}

std::string npy_bytes(const float* data, const std::vector<int64_t>& shape)
{
    ansatz_tensor view{};
    view.data = const_cast<float*>(data);
    view.dtype = ANSATZ_DTYPE_FLOAT32;
    for (int64_t extent : shape)
        view.shape[view.rank++] = extent;
    return npy_bytes(view);
}

namespace
{

void put_u32(std::string& out, uint32_t v)
{
    for (int shift = 24; shift >= 0; shift -= 8)
        out += static_cast<char>((v >> shift) & 0xff);
}

void put_chunk(std::string& out, const char* type, const std::string& data)
{
    put_u32(out, static_cast<uint32_t>(data.size()));
    const std::string body = std::string(type, 4) + data;
    out += body;
    put_u32(out, static_cast<uint32_t>(
                     crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

} // namespace

std::string png_bytes(const std::vector<uint8_t>& pixels, int width, int height)
{
    std::string raw;
    raw.reserve(static_cast<size_t>(height) * (static_cast<size_t>(width) + 1));
    for (int y = 0; y < height; ++y)
    {
        raw += '\0'; // filter: none
        raw.append(reinterpret_cast<const char*>(pixels.data()) + static_cast<size_t>(y) * width,
                   static_cast<size_t>(width));
    }
    uLongf size = compressBound(static_cast<uLong>(raw.size()));
    std::string compressed(size, '\0');
    if (compress2(reinterpret_cast<Bytef*>(compressed.data()), &size,
                  reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 6) != Z_OK)
        throw std::runtime_error("zlib could not compress a PNG image");
    compressed.resize(size);

    std::string out("\x89PNG\r\n\x1a\n", 8);
    std::string ihdr;
    put_u32(ihdr, static_cast<uint32_t>(width));
    put_u32(ihdr, static_cast<uint32_t>(height));
    ihdr += std::string("\x08\x00\x00\x00\x00", 5); // 8-bit greyscale, deflate, no interlace
    put_chunk(out, "IHDR", ihdr);
    put_chunk(out, "IDAT", compressed);
    put_chunk(out, "IEND", "");
    return out;
}

std::vector<uint8_t> image_grid(const float* images, int64_t count, int64_t height, int64_t width,
                                int& grid_width, int& grid_height)
{
    const int64_t columns =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(count)))));
    return image_grid(images, count, height, width, columns, grid_width, grid_height);
}

std::vector<uint8_t> image_grid(const float* images, int64_t count, int64_t height, int64_t width,
                                int64_t columns, int& grid_width, int& grid_height)
{
    columns = std::max<int64_t>(1, columns);
    const int64_t rows = (count + columns - 1) / columns;
    grid_width = static_cast<int>(columns * (width + 1) + 1);
    grid_height = static_cast<int>(rows * (height + 1) + 1);
    std::vector<uint8_t> pixels(static_cast<size_t>(grid_width) * static_cast<size_t>(grid_height), 128);
    for (int64_t i = 0; i < count; ++i)
    {
        const int64_t x0 = 1 + (i % columns) * (width + 1), y0 = 1 + (i / columns) * (height + 1);
        const float* image = images + i * height * width;
        for (int64_t y = 0; y < height; ++y)
            for (int64_t x = 0; x < width; ++x)
            {
                const float v = std::clamp(image[y * width + x], 0.0f, 1.0f);
                pixels[static_cast<size_t>((y0 + y) * grid_width + x0 + x)] =
                    static_cast<uint8_t>(std::lround(v * 255.0f));
            }
    }
    return pixels;
}

std::vector<uint8_t> upscale(const std::vector<uint8_t>& pixels, int width, int height, int scale)
{
    if (scale <= 1)
        return pixels;
    const size_t out_width = static_cast<size_t>(width) * scale;
    std::vector<uint8_t> out(out_width * static_cast<size_t>(height) * scale);
    for (size_t y = 0; y < out.size() / out_width; ++y)
        for (size_t x = 0; x < out_width; ++x)
            out[y * out_width + x] = pixels[(y / scale) * static_cast<size_t>(width) + x / scale];
    return out;
}

} // namespace ansatz::engine

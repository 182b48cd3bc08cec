// files.hpp -- writing run outputs so that a crash never leaves half a file: write to a temporary
// name in the same folder, then rename over the final one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ansatz::engine
{

void write_file_atomic(const std::filesystem::path& file, const std::string& bytes);

// Reads a regular file of at most max_bytes into `out` without ever blocking on a FIFO or a device;
// returns "" or why it was not read ("is a character device, not a file", "is 95 MB, more than ...").
std::string read_regular_file(const std::filesystem::path& file, uint64_t max_bytes, std::string& out);

// A float32 .npy file (format 1.0, little-endian '<f4', C order).
std::string npy_bytes(const float* data, const std::vector<int64_t>& shape);

// An 8-bit greyscale PNG.
std::string png_bytes(const std::vector<uint8_t>& pixels, int width, int height);

// Tiles `count` images of height x width (values in [0, 1], row-major, one after another) into a
// grid with a 1-pixel border; returns the pixels and sets the grid's size.
std::vector<uint8_t> image_grid(const float* images, int64_t count, int64_t height, int64_t width,
                                int& grid_width, int& grid_height);
// The same with `columns` images per row (ceil(sqrt(count)) above).
std::vector<uint8_t> image_grid(const float* images, int64_t count, int64_t height, int64_t width,
                                int64_t columns, int& grid_width, int& grid_height);

// Each pixel becomes a scale x scale block.
std::vector<uint8_t> upscale(const std::vector<uint8_t>& pixels, int width, int height, int scale);

} // namespace ansatz::engine

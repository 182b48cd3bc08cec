#include "idx_file.hpp"

#include <ansatz/abi.h>
#include <ansatz/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

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

uint32_t big_endian(const uint8_t* p)
{
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Grows `out` to `size` bytes (new bytes uninitialised), allocating exactly `size` when it must grow.
void grow(Bytes& out, size_t size)
{
    if (size > out.capacity())
        out.reserve(size);
    out.resize(size);
}

// "a named pipe (FIFO)", "a character device", ...: what a path that is not a regular file is.
const char* file_kind(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "a named pipe (FIFO)";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISDIR(mode))
        return "a folder";
    return "not a regular file";
}

// Opens `path` for reading if it is a regular file. O_NONBLOCK: opening a FIFO would otherwise wait for
// a writer forever; a FIFO or a device is refused before a byte is read.
std::FILE* open_regular(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        throw InputError(path + ": cannot be opened (" + std::strerror(errno) + ")");
    struct stat st
    {
    };
    const int error = ::fstat(fd, &st) != 0 ? errno : 0;
    if (error != 0 || !S_ISREG(st.st_mode))
    {
        ::close(fd);
        if (error != 0)
            throw InputError(path + ": cannot be opened (" + std::strerror(error) + ")");
        throw InputError(path + ": is " + file_kind(st.st_mode) +
                         ", not a regular file; IDX data is read from regular files only");
    }
    std::FILE* file = ::fdopen(fd, "rb");
    if (!file)
    {
        const int fdopen_error = errno;
        ::close(fd);
        throw InputError(path + ": cannot be opened (" + std::strerror(fdopen_error) + ")");
    }
    return file;
}

// The bytes of an IDX file in order: the file itself, or what its gzip members decompress to. Nothing
// is read or decompressed before it is asked for, and a gzip stream is decompressed only as far as the
// bytes asked for (its errors are those met on the way).
class Source
{
public:
    explicit Source(const std::string& path) : path_(path), owner_(open_regular(path), &std::fclose)
    {
        file_ = owner_.get();
        off_t size = -1;
        if (fseeko(file_, 0, SEEK_END) == 0)
            size = ftello(file_);
        if (size < 0)
            fail("its size is unknown");
        size_ = static_cast<uint64_t>(size);
        uint8_t magic[2] = { 0, 0 };
        if (size_ >= 2)
        {
            read_at(0, magic, 2);
            compressed_ = magic[0] == 0x1f && magic[1] == 0x8b;
        }
        if (compressed_)
        {
            // ISIZE, the last four bytes, is the uncompressed size of the last member modulo 2^32: a hint
            // for the size of the buffer, no more (a multi-member, large, truncated or forged file has
            // anything there). Deflate expands at most 1032-fold, so the hint is bounded by that too.
            if (size_ >= 18)
            {
                uint8_t t[4];
                read_at(size_ - 4, t, 4);
                const uint64_t isize =
                    uint32_t(t[0]) | uint32_t(t[1]) << 8 | uint32_t(t[2]) << 16 | uint32_t(t[3]) << 24;
                hint_ = std::min(isize + 1, size_ * 1032);
            }
            in_.resize(std::min<uint64_t>(size_, 1 << 20));
        }
        if (fseeko(file_, 0, SEEK_SET) != 0)
            fail(std::strerror(errno));
        // Last: nothing throws after it, so the destructor always runs once zlib holds memory.
        if (compressed_)
        {
            if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) // 16 + window bits: gzip wrapper only
                throw ansatz::Error(path + ": zlib could not be initialised");
            zlib_ = true;
        }
    }

    ~Source()
    {
        if (zlib_)
            inflateEnd(&zs_);
    }

    Source(const Source&) = delete;
    Source& operator=(const Source&) = delete;

    uint64_t file_size() const { return size_; }
    bool compressed() const { return compressed_; }

    // Appends the next `n` bytes of the stream to `out`, or fewer only where the stream ends.
    void append(Bytes& out, uint64_t n)
    {
        if (compressed_)
            inflate_into(out, n);
        else
            read_into(out, n);
    }

private:
    [[noreturn]] void fail(const std::string& why) const
    {
        throw InputError(path_ + ": cannot be read (" + why + ")");
    }

    void read_at(uint64_t offset, uint8_t* to, size_t n)
    {
        if (fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(to, 1, n, file_) != n)
            fail(std::ferror(file_) ? std::strerror(errno) : "it is shorter than its size");
    }

    void read_into(Bytes& out, uint64_t n)
    {
        const uint64_t take = std::min(n, size_ - pos_);
        const size_t from = out.size();
        grow(out, from + take);
        if (take > 0 && std::fread(out.data() + from, 1, take, file_) != take)
            fail(std::ferror(file_) ? std::strerror(errno) : "it is shorter than its size");
        pos_ += take;
    }

    // Moves the unread input to the front of the buffer and fills the rest from the file.
    void refill()
    {
        const size_t left = zs_.avail_in;
        if (left > 0)
            std::memmove(in_.data(), zs_.next_in, left);
        const size_t want = static_cast<size_t>(std::min<uint64_t>(in_.size() - left, size_ - pos_));
        if (want > 0 && std::fread(in_.data() + left, 1, want, file_) != want)
            fail(std::ferror(file_) ? std::strerror(errno) : "it is shorter than its size");
        pos_ += want;
        zs_.next_in = in_.data();
        zs_.avail_in = static_cast<uInt>(left + want);
    }

    [[noreturn]] void corrupt(const char* why) const
    {
        throw InputError(path_ + ": gzip stream is corrupt or truncated at compressed byte offset " +
                         std::to_string(consumed_) + " (" + why + ")");
    }

    // At the end of a gzip member: the end of the file, or the next member of a multi-member stream.
    void member_end()
    {
        if (consumed_ == size_)
        {
            ended_ = true;
            return;
        }
        if (zs_.avail_in < 2)
            refill();
        if (size_ - consumed_ >= 2 && zs_.next_in[0] == 0x1f && zs_.next_in[1] == 0x8b)
        {
            inflateReset(&zs_);
            return;
        }
        throw InputError(path_ + ": " + std::to_string(size_ - consumed_) +
                         " bytes after the end of the gzip stream at compressed byte offset " +
                         std::to_string(consumed_) + " are not a gzip member");
    }

    void inflate_into(Bytes& out, uint64_t n)
    {
        size_t filled = out.size();
        const size_t target = filled + n;
        while (filled < target && !ended_)
        {
            if (filled == out.size()) // room for more: the hint, else doubling, never past the target
                grow(out, std::min<uint64_t>(target,
                                             std::max<uint64_t>({ filled + (64 << 10), 2 * filled, hint_ })));
            if (zs_.avail_in == 0 && pos_ < size_)
                refill();
            zs_.next_out = out.data() + filled;
            zs_.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - filled, UINT_MAX));
            const uInt avail_in = zs_.avail_in;
            const uInt avail_out = zs_.avail_out;
            const int ret = inflate(&zs_, Z_NO_FLUSH);
            consumed_ += avail_in - zs_.avail_in;
            filled += avail_out - zs_.avail_out;
            if (ret == Z_STREAM_END)
                member_end();
            else if (ret == Z_OK || (ret == Z_BUF_ERROR && zs_.avail_out == 0))
                continue;
            else if (ret == Z_BUF_ERROR && zs_.avail_in == 0 && consumed_ == size_)
                corrupt("the stream ends before its end marker");
            else if (ret == Z_MEM_ERROR)
                throw std::bad_alloc();
            else
                corrupt(zs_.msg ? zs_.msg : "zlib cannot decode it");
        }
        out.resize(filled);
    }

    std::string path_;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> owner_;
    std::FILE* file_ = nullptr; // owner_'s
    uint64_t size_ = 0;         // of the file
    uint64_t pos_ = 0;          // bytes of the file read so far
    bool compressed_ = false;
    // gzip
    z_stream zs_{};
    bool zlib_ = false;
    std::vector<uint8_t> in_; // compressed input, read from the file as zlib needs it
    uint64_t consumed_ = 0;   // compressed bytes zlib has consumed
    uint64_t hint_ = 0;       // first guess of the decompressed size
    bool ended_ = false;      // the last member has ended
};

} // namespace

IdxFile load_idx(const std::string& path)
{
    Source in(path);
    if (in.file_size() == 0)
        throw InputError(path + ": the file is empty (0 bytes), so it is not an IDX file");
    IdxFile f;
    f.path = path;
    f.compressed = in.compressed();
    Bytes& b = f.bytes;
    const std::string file = f.compressed ? "the decompressed stream" : "the file";
    const std::string offsets = f.compressed ? " (offsets in the decompressed stream)" : "";

    // The magic number; fewer than 4 bytes only when the stream ends there.
    in.append(b, 4);
    const size_t size = b.size();
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

    // The dimensions; fewer bytes only when the stream ends there.
    const size_t header = 4 + 4 * size_t(rank);
    in.append(b, header - 4);
    if (b.size() < header)
        throw InputError(path + ": truncated header: a rank-" + std::to_string(rank) + " IDX header has " +
                         std::to_string(header) + " bytes, but " + file + " has only " +
                         std::to_string(b.size()));

    // The claimed size, checked for overflow: each extent is below 2^32, and once the product passes
    // 2^64 - 1 it is only reported as such.
    uint64_t claimed = 1;
    bool overflow = false;
    std::string product;
    for (unsigned i = 0; i < rank; ++i)
    {
        const uint32_t extent = big_endian(b.data() + 4 + 4 * i);
        if (extent == 0)
            throw InputError(path + ": dimension " + std::to_string(i) + " (at byte offset " +
                             std::to_string(4 + 4 * i) + ") is 0, so the file holds no data");
        f.dims.push_back(extent);
        overflow = overflow || __builtin_mul_overflow(claimed, uint64_t(extent), &claimed);
        product += (i ? " x " : "") + std::to_string(extent);
    }
    const std::string total = overflow ? "2^64 or more" : std::to_string(claimed);
    const std::string claim = "header claims " + product + (rank > 1 ? " = " + total : "") +
                              " bytes of data from byte offset " + std::to_string(header);
    if (overflow || claimed > max_data_bytes)
        throw InputError(path + ": " + claim + ", more than " + std::to_string(max_data_bytes) + " bytes (" +
                         std::to_string(max_data_bytes >> 30) +
                         " GiB), the most this reader loads into memory");
    // One sample is the dimensions after the first; below 2^34 values now, so no overflow.
    uint64_t sample = 1;
    std::string sample_product;
    for (unsigned i = 1; i < rank; ++i)
    {
        sample *= uint64_t(f.dims[i]);
        sample_product += (i > 1 ? " x " : "") + std::to_string(f.dims[i]);
    }
    if (sample > max_sample_values)
        throw InputError(path + ": header claims samples of " + sample_product +
                         (rank > 2 ? " = " + std::to_string(sample) : "") + " values each, more than " +
                         std::to_string(max_sample_values) +
                         " (2^31 - 1), the most one flattened sample may have");

    // The data: exactly `claimed` bytes and nothing after them.
    const uint64_t end = header + claimed;
    if (!f.compressed)
    {
        // A plain file's size is known: check it before reading a byte of data.
        const uint64_t file_size = in.file_size();
        if (claimed > file_size - header)
            throw InputError(path + ": " + claim + ", but the data ends at byte offset " +
                             std::to_string(file_size));
        if (end < file_size)
            throw InputError(path + ": " + claim + ", which end at byte offset " + std::to_string(end) +
                             ", but the file goes on to byte offset " + std::to_string(file_size) + " (" +
                             std::to_string(file_size - end) + " trailing bytes)");
        in.append(b, claimed);
        if (b.size() != end)
            throw InputError(path + ": cannot be read (it ends at byte offset " + std::to_string(b.size()) +
                             ", before its size of " + std::to_string(file_size) + " bytes)");
    }
    else
    {
        // At most one byte past the claimed end is decompressed: it is enough to show trailing data, and
        // a stream of any length after it (a gzip bomb) is never decompressed.
        in.append(b, claimed + 1);
        if (b.size() < end)
            throw InputError(path + ": " + claim + ", but the data ends at byte offset " +
                             std::to_string(b.size()) + offsets);
        if (b.size() > end)
            throw InputError(path + ": " + claim + ", which end at byte offset " + std::to_string(end) +
                             ", but the decompressed stream goes on past it (trailing bytes; decompression "
                             "stops there, so they are not counted)");
        // Room for the trailing byte was reserved: give it back when that is a real saving.
        if (b.capacity() - b.size() > b.size() / 8)
            b.shrink_to_fit();
    }
    f.data_offset = header;
    return f;
}

} // namespace ansatz_idx

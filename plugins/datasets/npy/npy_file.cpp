#include "npy_file.hpp"

#include <ansatz/abi.h>
#include <ansatz/error.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>

namespace ansatz_npy
{

namespace
{

using ansatz::InputError;

constexpr char magic[] = "\x93NUMPY";
constexpr size_t magic_size = 6;

// "a named pipe (FIFO)", ...: what a path that is not a regular file is.
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

// A file descriptor that closes itself.
struct Fd
{
    int fd = -1;
    ~Fd()
    {
        if (fd >= 0)
            ::close(fd);
    }
};

// The whole of a regular file of at most max_bytes. O_NONBLOCK: opening a FIFO would otherwise wait
// for a writer forever.
std::vector<unsigned char> read_regular(const std::string& path, uint64_t max_bytes)
{
    Fd f{ ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC) };
    if (f.fd < 0)
        throw InputError(path + ": cannot be opened (" + std::strerror(errno) + ")");
    struct stat st
    {
    };
    if (::fstat(f.fd, &st) != 0)
        throw InputError(path + ": cannot be opened (" + std::strerror(errno) + ")");
    if (!S_ISREG(st.st_mode))
        throw InputError(path + ": is " + std::string(file_kind(st.st_mode)) +
                         ", not a regular file; .npy data is read from regular files only");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (max_bytes > 0 && size > max_bytes)
        throw InputError(path + ": is " + std::to_string(size) + " bytes, more than the " +
                         std::to_string(max_bytes) + " bytes of memory this machine has");
    std::vector<unsigned char> bytes(static_cast<size_t>(size));
    size_t done = 0;
    while (done < bytes.size())
    {
        const ssize_t got = ::read(f.fd, bytes.data() + done, bytes.size() - done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            throw InputError(path + ": cannot be read (" + std::strerror(errno) + ")");
        if (got == 0)
            break; // shrank while being read: the checks below see the bytes there are
        done += static_cast<size_t>(got);
    }
    bytes.resize(done);
    return bytes;
}

// The header dict, parsed as Python's ast.literal_eval would read what numpy writes: single- or
// double-quoted strings, True/False, tuples of non-negative integers (Python 2's 3L too), and a list
// for a structured dtype (recognised only to be refused).
class HeaderParser
{
public:
    HeaderParser(const std::string& path, const std::string& text, size_t offset)
        : path_(path), text_(text), offset_(offset)
    {
    }

    struct Result
    {
        std::string descr;
        size_t descr_at = 0;
        bool structured = false;
        bool fortran = false;
        size_t fortran_at = 0;
        std::vector<int64_t> shape;
        size_t shape_at = 0;
    };

    Result parse()
    {
        Result r;
        bool has_descr = false, has_fortran = false, has_shape = false;
        skip();
        expect('{', "the header does not begin with '{', so it is not a Python dict literal");
        skip();
        while (peek() != '}')
        {
            const size_t key_at = pos_;
            if (peek() != '\'' && peek() != '"')
                fail(pos_, "the header has " + show(pos_) + " where a quoted key or '}' belongs");
            const std::string key = string_literal();
            skip();
            expect(':', "the header has no ':' after the key '" + key + "'");
            skip();
            const size_t value_at = pos_;
            bool* seen = nullptr;
            if (key == "descr")
            {
                seen = &has_descr;
                r.descr_at = value_at;
                if (peek() == '[')
                {
                    r.structured = true;
                    skip_bracketed();
                }
                else if (peek() == '\'' || peek() == '"')
                    r.descr = string_literal();
                else
                    fail(value_at,
                         "the value of 'descr' is " + show(value_at) + ", not a quoted dtype string");
            }
            else if (key == "fortran_order")
            {
                seen = &has_fortran;
                r.fortran_at = value_at;
                if (text_.compare(pos_, 4, "True") == 0)
                    r.fortran = true, pos_ += 4;
                else if (text_.compare(pos_, 5, "False") == 0)
                    r.fortran = false, pos_ += 5;
                else
                    fail(value_at,
                         "the value of 'fortran_order' is " + show(value_at) + ", not True or False");
            }
            else if (key == "shape")
            {
                seen = &has_shape;
                r.shape_at = value_at;
                r.shape = shape_tuple();
            }
            else
                fail(key_at, "the header has the key '" + key +
                                 "', but a .npy header has exactly the keys 'descr', 'fortran_order' and "
                                 "'shape'");
            if (*seen)
                fail(key_at, "the header gives the key '" + key + "' twice");
            *seen = true;
            skip();
            if (peek() == ',')
            {
                ++pos_;
                skip();
            }
            else if (peek() != '}')
                fail(pos_, "the header has " + show(pos_) + " where ',' or '}' belongs");
        }
        ++pos_;
        skip();
        if (pos_ != text_.size())
            fail(pos_, "the header has " + show(pos_) + " after its closing '}'");
        for (const auto& [has, name] :
             { std::pair{ has_descr, "descr" }, std::pair{ has_fortran, "fortran_order" },
               std::pair{ has_shape, "shape" } })
            if (!has)
                fail(text_.size(), std::string("the header has no '") + name + "' key");
        return r;
    }

    [[noreturn]] void fail(size_t at, const std::string& what) const
    {
        throw InputError(path_ + ": byte " + std::to_string(offset_ + at) + ": " + what);
    }

private:
    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

    // "'x'", "the end of the header", "byte 0x07": what stands at `at`, for a message.
    std::string show(size_t at) const
    {
        if (at >= text_.size())
            return "the end of the header";
        const unsigned char c = static_cast<unsigned char>(text_[at]);
        if (c >= 0x20 && c < 0x7f)
            return std::string("'") + static_cast<char>(c) + "'";
        char hex[16];
        std::snprintf(hex, sizeof hex, "byte 0x%02X", c);
        return hex;
    }

    void skip()
    {
        while (pos_ < text_.size() &&
               (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
            ++pos_;
    }

    void expect(char c, const std::string& what)
    {
        if (peek() != c)
            fail(pos_, what);
        ++pos_;
    }

    std::string string_literal()
    {
        const size_t start = pos_;
        const char quote = text_[pos_++];
        std::string out;
        while (pos_ < text_.size() && text_[pos_] != quote && text_[pos_] != '\n')
        {
            if (text_[pos_] == '\\')
                fail(pos_, "the header's string has a backslash escape, which no .npy header holds");
            out += text_[pos_++];
        }
        if (pos_ >= text_.size() || text_[pos_] == '\n')
            fail(start, "the header's string that begins here is not closed on its line");
        ++pos_;
        return out;
    }

    void skip_bracketed()
    {
        const size_t start = pos_;
        int depth = 0;
        do
        {
            if (pos_ >= text_.size())
                fail(start, "the header's list that begins here is not closed");
            const char c = text_[pos_];
            if (c == '\'' || c == '"')
            {
                string_literal();
                continue;
            }
            depth += (c == '[' || c == '(') ? 1 : (c == ']' || c == ')') ? -1 : 0;
            ++pos_;
        } while (depth > 0);
    }

    std::vector<int64_t> shape_tuple()
    {
        const size_t start = pos_;
        if (peek() != '(')
            fail(start, "the value of 'shape' is " + show(start) + ", not a tuple of integers");
        ++pos_;
        std::vector<int64_t> out;
        bool comma_after_last = false;
        skip();
        while (peek() != ')')
        {
            const size_t at = pos_;
            if (peek() < '0' || peek() > '9')
                fail(at, "the shape has " + show(at) + " where a non-negative integer belongs");
            int64_t value = 0;
            while (peek() >= '0' && peek() <= '9')
            {
                const int digit = peek() - '0';
                if (value > (std::numeric_limits<int64_t>::max() - digit) / 10)
                    fail(at, "an extent of the shape does not fit a 64-bit integer");
                value = value * 10 + digit;
                ++pos_;
            }
            if (peek() == 'L') // Python 2's long literal, as numpy 1.x wrote under Python 2
                ++pos_;
            out.push_back(value);
            skip();
            comma_after_last = false;
            if (peek() == ',')
            {
                ++pos_;
                comma_after_last = true;
                skip();
            }
            else if (peek() != ')')
                fail(pos_, "the shape has " + show(pos_) + " where ',' or ')' belongs");
        }
        ++pos_;
        if (out.size() == 1 && !comma_after_last)
            fail(start, "the shape (" + std::to_string(out[0]) +
                            ") is a parenthesised integer, not a tuple (numpy writes (" +
                            std::to_string(out[0]) + ",))");
        return out;
    }

    const std::string& path_;
    const std::string& text_;
    size_t offset_; // of the header in the file
    size_t pos_ = 0;
};

uint32_t little_endian(const unsigned char* p, int bytes)
{
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; --i)
        v = v << 8 | p[i];
    return v;
}

} // namespace

const char* dtype_name(Dtype d)
{
    switch (d)
    {
    case Dtype::float32:
        return "float32";
    case Dtype::float64:
        return "float64";
    case Dtype::uint8:
        return "uint8";
    case Dtype::boolean:
        return "bool";
    }
    return "?";
}

size_t item_size(Dtype d)
{
    return d == Dtype::float64 ? 8 : d == Dtype::float32 ? 4 : 1;
}

int64_t NpyFile::row_size() const
{
    int64_t n = 1;
    for (size_t i = 1; i < shape.size(); ++i)
        n *= shape[i];
    return n;
}

double NpyFile::value(int64_t i) const
{
    const unsigned char* p = data.data() + static_cast<size_t>(i) * item_size(dtype);
    switch (dtype)
    {
    case Dtype::float32:
    {
        float v;
        std::memcpy(&v, p, 4);
        return v;
    }
    case Dtype::float64:
    {
        double v;
        std::memcpy(&v, p, 8);
        return v;
    }
    default:
        return *p;
    }
}

std::string NpyFile::shape_text() const
{
    std::string out = "(";
    for (size_t i = 0; i < shape.size(); ++i)
        out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + (shape.size() == 1 ? ",)" : ")");
}

NpyFile load_npy(const std::string& path, uint64_t max_bytes)
{
    static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559);
    static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the reader copies little-endian data as it is");
    const std::vector<unsigned char> bytes = read_regular(path, max_bytes);
    const size_t size = bytes.size();
    const auto fail = [&](size_t at, const std::string& what) -> void {
        throw InputError(path + ": byte " + std::to_string(at) + ": " + what);
    };

    // The preamble.
    if (size == 0)
        fail(0, "the file is empty, so it is not a .npy file");
    for (size_t i = 0; i < magic_size; ++i)
        if (i >= size || bytes[i] != static_cast<unsigned char>(magic[i]))
            fail(i, i >= size ? "the file ends inside the magic string \\x93NUMPY, so it is not a .npy file"
                              : "the file does not begin with the magic string \\x93NUMPY, so it is not a "
                                ".npy file");
    if (size < 8)
        fail(size, "the file ends before the format version (bytes 6 and 7)");
    const int major = bytes[6], minor = bytes[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        fail(6, ".npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                    " is not one this reader knows (1.0, 2.0 and 3.0)");
    const int length_bytes = major == 1 ? 2 : 4;
    const size_t header_start = 8 + static_cast<size_t>(length_bytes);
    if (size < header_start)
        fail(size,
             "the file ends inside the header length (bytes 8 to " + std::to_string(header_start - 1) + ")");
    const size_t header_length = little_endian(&bytes[8], length_bytes);
    const size_t data_start = header_start + header_length;
    if (data_start > size)
        fail(8, "the header length is " + std::to_string(header_length) +
                    " bytes, so the header ends at byte " + std::to_string(data_start) +
                    ", but the file ends at byte " + std::to_string(size));
    const std::string header(reinterpret_cast<const char*>(&bytes[header_start]), header_length);
    // 1.0 and 2.0 headers are latin-1, 3.0 UTF-8; the keys and values numpy writes are ASCII in both.
    for (size_t i = 0; i < header.size(); ++i)
        if (static_cast<unsigned char>(header[i]) >= 0x80)
            fail(header_start + i, "the header holds a byte above 0x7F, which no header numpy writes for "
                                   "these dtypes holds");

    HeaderParser parser(path, header, header_start);
    const HeaderParser::Result h = parser.parse();

    NpyFile f;
    f.path = path;
    f.version = major;
    if (h.structured)
        parser.fail(h.descr_at, "the dtype is a structured (record) dtype; only plain float32 '<f4', "
                                "float64 '<f8', uint8 '|u1' and bool '|b1' arrays are read");
    if (h.descr == "<f4")
        f.dtype = Dtype::float32;
    else if (h.descr == "<f8")
        f.dtype = Dtype::float64;
    else if (h.descr == "|u1")
        f.dtype = Dtype::uint8;
    else if (h.descr == "|b1")
        f.dtype = Dtype::boolean;
    else if (h.descr.size() >= 2 && h.descr[0] == '>')
        parser.fail(h.descr_at, "the dtype '" + h.descr +
                                    "' is big-endian; only little-endian data is read (numpy: "
                                    "x.astype(x.dtype.newbyteorder('<')))");
    else
        parser.fail(h.descr_at, "the dtype '" + h.descr +
                                    "' is not one this reader takes: float32 '<f4', float64 '<f8', uint8 "
                                    "'|u1' or bool '|b1'");
    if (h.fortran)
        parser.fail(h.fortran_at, "fortran_order is True (column-major data); save a C-ordered array "
                                  "(numpy.ascontiguousarray) instead");
    f.shape = h.shape;
    if (f.shape.empty())
        parser.fail(h.shape_at, "the shape () is a scalar; a dataset needs at least one axis, the rows");
    if (f.shape.size() > ANSATZ_MAX_RANK + 1)
        parser.fail(h.shape_at, "the shape has " + std::to_string(f.shape.size()) + " axes; at most " +
                                    std::to_string(ANSATZ_MAX_RANK + 1) +
                                    " are read (the rows and a sample of rank " +
                                    std::to_string(ANSATZ_MAX_RANK) + ")");
    // The data size, without overflow: prod(shape) * item size, compared with what the file holds.
    const size_t item = item_size(f.dtype);
    const size_t available = size - data_start;
    __uint128_t needed = item;
    bool too_big = false;
    for (int64_t extent : f.shape)
    {
        needed *= static_cast<uint64_t>(extent);
        too_big |= needed > (__uint128_t{ 1 } << 64);
    }
    if (too_big || needed != available)
    {
        const std::string what =
            "the shape " + f.shape_text() + " of " + dtype_name(f.dtype) + " needs " +
            (too_big ? std::string("more than 2^64") : std::to_string(uint64_t(needed))) +
            " bytes of data from byte " + std::to_string(data_start) + ", but ";
        if (too_big || needed > available)
            fail(data_start, what + "the file ends at byte " + std::to_string(size) + " (" +
                                 std::to_string(available) + " bytes of data)");
        fail(data_start + static_cast<size_t>(needed),
             what + "the file goes on to byte " + std::to_string(size) + " (" +
                 std::to_string(available - static_cast<size_t>(needed)) + " bytes after the data)");
    }
    if (f.shape[0] == 0)
        fail(data_start, "the shape " + f.shape_text() + " holds no rows");
    if (f.row_size() > INT32_MAX)
        parser.fail(h.shape_at, "a row of shape " + f.shape_text() + " holds " +
                                    std::to_string(f.row_size()) + " values, more than 2^31 - 1");
    f.data_offset = data_start;
    f.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(data_start), bytes.end());

    // Every value is usable: finite floats, bools of 0 or 1.
    const int64_t count = f.rows() * f.row_size();
    const int64_t per_row = f.row_size();
    for (int64_t i = 0; i < count; ++i)
    {
        const size_t at = data_start + static_cast<size_t>(i) * item;
        const auto where = [&] {
            return "row " + std::to_string(i / per_row) + ", value " + std::to_string(i % per_row);
        };
        if (f.dtype == Dtype::boolean && f.data[static_cast<size_t>(i)] > 1)
        {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02X", f.data[static_cast<size_t>(i)]);
            fail(at, where() + " is the bool byte " + hex + ", not 0 or 1");
        }
        if (f.dtype == Dtype::float32 || f.dtype == Dtype::float64)
        {
            const double v = f.value(i);
            if (!std::isfinite(v))
                fail(at, where() + " is " +
                             (std::isnan(v) ? "NaN"
                              : v > 0       ? "inf"
                                            : "-inf") +
                             "; the data must be finite");
        }
    }
    return f;
}

} // namespace ansatz_npy

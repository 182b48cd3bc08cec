// idx_file.hpp -- reads and checks one IDX file (the MNIST format), plain or gzip-compressed.
//
// Layout (http://yann.lecun.com/exdb/mnist/):
//     byte 0, 1   zero
//     byte 2      data type: 0x08 unsigned byte (the only one supported here), 0x09 signed byte,
//                 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
//     byte 3      rank r
//     4 r bytes   the dimensions, big-endian uint32, the first one the sample count
//     then        the data, row-major, exactly prod(dims) elements
// A file whose first two bytes are 0x1f 0x8b is a gzip stream of such a file (every member of a
// multi-member stream). The header is read first and the size it claims checked; then exactly that
// much data is read: a gzip stream is decompressed no further than the claimed size + 1 byte (the byte
// that shows trailing data), so a gzip bomb costs no more memory than the data its header claims.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <sys/mman.h>
#include <utility>
#include <vector>

namespace ansatz_idx
{

// The most data bytes a header may claim (16 GiB): the data is held in memory.
constexpr uint64_t max_data_bytes = uint64_t(1) << 34;
// The most values one sample (the dimensions after the first) may have: the engine's int32 limit for
// a flattened sample.
constexpr uint64_t max_sample_values = INT32_MAX;

// An allocator whose resize() leaves new bytes uninitialised: a buffer reserved for decompressed data
// costs resident memory only as it is written. Buffers of 8 MiB and more come in 2 MiB pages where the
// kernel offers them (transparent huge pages on request, madvise): a shuffled epoch reads its rows from
// all over the data, and with 4 KiB pages nearly every row is a TLB miss (measured on the PCD-1 bench,
// 938 batches of 64 Fashion-MNIST rows: 0.049-0.053 s of reads an epoch with 4 KiB pages, 0.038-0.043 s
// with 2 MiB ones). A minimal allocator of its own (not derived from std::allocator, whose C++23
// allocate_at_least would hand out memory this deallocate does not own).
template <class T>
struct UninitAllocator
{
    using value_type = T;
    template <class U>
    struct rebind
    {
        using other = UninitAllocator<U>;
    };
    UninitAllocator() = default;
    template <class U>
    UninitAllocator(const UninitAllocator<U>&) noexcept
    {
    }

    T* allocate(size_t n)
    {
        const size_t bytes = n * sizeof(T);
        if (n > SIZE_MAX / sizeof(T))
            throw std::bad_array_new_length();
        if (bytes < huge_from)
            return static_cast<T*>(::operator new (bytes, std::align_val_t{ alignof(T) }));
        void* p = std::aligned_alloc(huge_page, rounded(bytes));
        if (!p)
            throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
        ::madvise(p, rounded(bytes), MADV_HUGEPAGE); // a hint: without it the pages are 4 KiB
#endif
        return static_cast<T*>(p);
    }
    void deallocate(T* p, size_t n) noexcept
    {
        if (n * sizeof(T) < huge_from)
            ::operator delete (p, std::align_val_t{ alignof(T) });
        else
            std::free(p);
    }

    template <class U>
    void construct(U* p) noexcept
    {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args)
    {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }

    template <class U>
    bool operator==(const UninitAllocator<U>&) const noexcept
    {
        return true;
    }

private:
    static constexpr size_t huge_page = size_t(1) << 21;
    static constexpr size_t huge_from = size_t(1) << 23;
    static size_t rounded(size_t bytes)
    {
        return (bytes + huge_page - 1) / huge_page * huge_page;
    }
};

using Bytes = std::vector<uint8_t, UninitAllocator<uint8_t>>;

struct IdxFile
{
    std::string path;
    bool compressed = false;
    std::vector<int64_t> dims; // dims[0] is the sample count
    Bytes bytes;               // the whole (decompressed) file, header included
    size_t data_offset = 0;    // where the data starts in `bytes`

    const uint8_t* data() const { return bytes.data() + data_offset; }
};

// Loads and checks `path`. Every problem with the file is an ansatz::InputError of one sentence that
// begins with the path and names the byte offset where it applies (offsets in the decompressed stream
// for a gzip file). A header that claims more than max_data_bytes of data, or samples of more than
// max_sample_values values, is refused before any data is read.
IdxFile load_idx(const std::string& path);

} // namespace ansatz_idx

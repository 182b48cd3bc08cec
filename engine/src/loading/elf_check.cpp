#include "loading/elf_check.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ansatz::engine
{

namespace
{

// What this engine can load: the machine, byte order and class it was built for.
#if defined(__x86_64__)
constexpr uint16_t host_machine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t host_machine = EM_AARCH64;
#elif defined(__powerpc64__)
constexpr uint16_t host_machine = EM_PPC64;
#elif defined(__riscv) && __riscv_xlen == 64
constexpr uint16_t host_machine = EM_RISCV;
#elif defined(__s390x__)
constexpr uint16_t host_machine = EM_S390;
#else
#error "elf_check.cpp: add this machine's ELF e_machine value"
#endif
static_assert(sizeof(void*) == 8, "the engine loads 64-bit ELF shared objects only");
constexpr unsigned char host_data = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;

// "AArch64 (e_machine 183)", or "e_machine 9999" for a machine not named here.
std::string machine_name(uint16_t machine)
{
    const char* name = nullptr;
    switch (machine)
    {
    case EM_386:
        name = "x86";
        break;
    case EM_X86_64:
        name = "x86-64";
        break;
    case EM_ARM:
        name = "ARM";
        break;
    case EM_AARCH64:
        name = "AArch64";
        break;
    case EM_PPC64:
        name = "PowerPC64";
        break;
    case EM_RISCV:
        name = "RISC-V";
        break;
    case EM_S390:
        name = "S/390";
        break;
    default:
        break;
    }
    const std::string number = "e_machine " + std::to_string(machine);
    return name ? std::string(name) + " (" + number + ")" : number;
}

std::string type_name(uint16_t type)
{
    switch (type)
    {
    case ET_NONE:
        return "an ELF file of no type (ET_NONE)";
    case ET_REL:
        return "an ELF relocatable object file (ET_REL)";
    case ET_EXEC:
        return "an ELF executable (ET_EXEC)";
    case ET_CORE:
        return "an ELF core dump (ET_CORE)";
    default:
        return "an ELF file of type " + std::to_string(type);
    }
}

// a + b * c, or UINT64_MAX if it overflows (past the end of any file).
uint64_t end_of(uint64_t a, uint64_t b, uint64_t c = 1)
{
    uint64_t product = 0, sum = 0;
    if (__builtin_mul_overflow(b, c, &product) || __builtin_add_overflow(a, product, &sum))
        return UINT64_MAX;
    return sum;
}

std::string incomplete(const std::string& why)
{
    return "it is not a complete ELF shared object (" + why + ")";
}

std::string unreadable()
{
    return std::string("it cannot be read (") +
           (errno ? std::strerror(errno) : "it is shorter than its size") + ")";
}

std::string past_end(const std::string& what, uint64_t end, uint64_t size)
{
    return incomplete(what + " ends at byte " + std::to_string(end) + ", past the end of the " +
                      std::to_string(size) + "-byte file");
}

class Fd
{
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

// Reads n bytes at offset; false if the file gives fewer (errno is 0 if it ended early).
bool read_at(int fd, void* to, size_t n, uint64_t offset)
{
    errno = 0;
    auto* p = static_cast<char*>(to);
    while (n > 0)
    {
        const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        p += got, n -= static_cast<size_t>(got), offset += static_cast<uint64_t>(got);
    }
    return true;
}

} // namespace

std::string elf_refusal(const std::filesystem::path& file)
{
    // O_NONBLOCK: a FIFO named like a plugin must not block the open.
    const Fd fd(::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0)
        return unreadable();
    struct stat st
    {
    };
    if (::fstat(fd.get(), &st) != 0)
        return unreadable();
    if (!S_ISREG(st.st_mode))
        return "it is not a regular file";
    const uint64_t size = static_cast<uint64_t>(st.st_size);

    Elf64_Ehdr h{};
    const size_t head = static_cast<size_t>(std::min<uint64_t>(size, sizeof h));
    if (!read_at(fd.get(), &h, head, 0))
        return unreadable();
    if (size == 0)
        return "it is not an ELF file (it is empty)";
    if (size < SELFMAG || std::memcmp(h.e_ident, ELFMAG, SELFMAG) != 0)
        return "it is not an ELF file (it does not start with the ELF magic number 0x7f 'E' 'L' 'F')";
    if (size < EI_NIDENT)
        return incomplete("the file is " + std::to_string(size) + " bytes, shorter than the " +
                          std::to_string(EI_NIDENT) + "-byte ELF identification");
    if (h.e_ident[EI_CLASS] != ELFCLASS64)
        return "it is not an ELF shared object for this machine (it is " +
               std::string(h.e_ident[EI_CLASS] == ELFCLASS32
                               ? "32-bit ELF"
                               : "of ELF class " + std::to_string(h.e_ident[EI_CLASS])) +
               ", and this engine loads 64-bit ELF only)";
    if (h.e_ident[EI_DATA] != host_data)
        return "it is not an ELF shared object for this machine (it is " +
               std::string(h.e_ident[EI_DATA] == ELFDATA2MSB   ? "big-endian"
                           : h.e_ident[EI_DATA] == ELFDATA2LSB ? "little-endian"
                                                               : "of unknown byte order") +
               ", and this machine is " + (host_data == ELFDATA2LSB ? "little-endian" : "big-endian") + ")";
    if (size < sizeof h)
        return incomplete("the file is " + std::to_string(size) + " bytes, shorter than the " +
                          std::to_string(sizeof h) + "-byte ELF header");
    if (h.e_machine != host_machine)
        return "it is not an ELF shared object for this machine (it is built for " +
               machine_name(h.e_machine) + ", and this machine is " + machine_name(host_machine) + ")";
    if (h.e_type != ET_DYN)
        return "it is " + type_name(h.e_type) + ", not a shared object (ET_DYN)";

    // Program headers: the table, then every segment the loader maps (PT_LOAD) or reads (PT_DYNAMIC).
    if (h.e_phnum == 0)
        return incomplete("it has no program headers");
    if (h.e_phentsize != sizeof(Elf64_Phdr))
        return incomplete("its program headers are " + std::to_string(h.e_phentsize) + " bytes each, not " +
                          std::to_string(sizeof(Elf64_Phdr)));
    const uint64_t ph_end = end_of(h.e_phoff, h.e_phnum, h.e_phentsize);
    if (ph_end > size)
        return past_end("its program header table", ph_end, size);
    std::vector<Elf64_Phdr> ph(h.e_phnum);
    if (!read_at(fd.get(), ph.data(), ph.size() * sizeof(Elf64_Phdr), h.e_phoff))
        return unreadable();
    for (size_t i = 0; i < ph.size(); ++i)
    {
        if (ph[i].p_type != PT_LOAD && ph[i].p_type != PT_DYNAMIC)
            continue;
        const uint64_t end = end_of(ph[i].p_offset, ph[i].p_filesz);
        if (end > size)
            return past_end("its " + std::string(ph[i].p_type == PT_LOAD ? "PT_LOAD" : "PT_DYNAMIC") +
                                " segment (program header " + std::to_string(i) + ")",
                            end, size);
    }

    // Section headers: with more than SHN_LORESERVE sections e_shnum is 0 and the count is elsewhere;
    // then at least the first header must be there.
    if (h.e_shoff != 0)
    {
        const uint64_t sh_end = end_of(h.e_shoff, h.e_shnum == 0 ? 1 : h.e_shnum, h.e_shentsize);
        if (sh_end > size)
            return past_end("its section header table", sh_end, size);
    }
    return "";
}

} // namespace ansatz::engine

// elf_check.hpp -- checks a plugin file against its size before the dynamic loader sees it.
//
// dlopen() maps a library's segments as they are described, not as far as the file goes: a truncated
// file is mapped past its end and the first touch of the missing pages kills the process with SIGBUS,
// and a file cut after its segments may even load. So before any file is opened as a library, its ELF
// header is read and everything the loader will map or read must lie within the file: the program
// header table, every PT_LOAD and PT_DYNAMIC segment's file bytes, and the section header table. The
// header must also be for this machine: ELF magic, 64-bit, this byte order, this e_machine, ET_DYN.
#pragma once

#include <filesystem>
#include <string>

namespace ansatz::engine
{

// The reason to refuse `file` as a plugin ("it is not a complete ELF shared object (...)"), or "" if it
// is a complete ELF shared object for this machine. Reads the file; never opens it as a library.
std::string elf_refusal(const std::filesystem::path& file);

} // namespace ansatz::engine

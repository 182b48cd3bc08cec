// Plugin loading: refusals name the file and the versions, and the engine goes on with the others.
#include "loading/registry.hpp"
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <elf.h>

using ansatz::engine::Registry;

namespace
{

const std::string fixtures = ANSATZ_TEST_FIXTURE_DIR;
const std::string plugins = ANSATZ_TEST_PLUGIN_DIR;

bool has_refusal(const Registry& r, const std::string& sentence)
{
    return std::find(r.refusals().begin(), r.refusals().end(), sentence) != r.refusals().end();
}

Registry scan_both()
{
    Registry r;
    r.scan({ plugins, fixtures });
    return r;
}

} // namespace

TEST_CASE("a plugin built for another ABI major is refused", "[registry]")
{
    const Registry r = scan_both();
    CHECK(has_refusal(r, "plugin " + fixtures +
                             "/libansatz_fixture_major.so refused: it was built for plugin ABI " +
                             std::to_string(ANSATZ_ABI_MAJOR + 1) + ".0 and this engine speaks ABI " +
                             std::to_string(ANSATZ_ABI_MAJOR) + "." + std::to_string(ANSATZ_ABI_MINOR) +
                             " (the major versions differ)."));
    CHECK(r.find("major_opt") == nullptr);
}

TEST_CASE("a plugin built for ABI 1.0 (plain C, no SDK header) is refused, naming both versions",
          "[registry]")
{
    const Registry r = scan_both();
    const std::string engine = std::to_string(ANSATZ_ABI_MAJOR) + "." + std::to_string(ANSATZ_ABI_MINOR);
    CHECK(has_refusal(
        r, "plugin " + fixtures +
               "/libansatz_fixture_abi1.so refused: it was built for plugin ABI 1.0 and this engine "
               "speaks ABI " +
               engine + " (the major versions differ)."));
}

TEST_CASE("a plugin built for a newer ABI minor is refused", "[registry]")
{
    const Registry r = scan_both();
    CHECK(has_refusal(r, "plugin " + fixtures +
                             "/libansatz_fixture_minor.so refused: it was built for plugin ABI " +
                             std::to_string(ANSATZ_ABI_MAJOR) + "." + std::to_string(ANSATZ_ABI_MINOR + 1) +
                             ", newer than this engine's ABI " + std::to_string(ANSATZ_ABI_MAJOR) + "." +
                             std::to_string(ANSATZ_ABI_MINOR) + "."));
    CHECK(r.find("minor_opt") == nullptr);
}

TEST_CASE("a plugin whose descriptor is smaller than this ABI's is refused", "[registry]")
{
    const Registry r = scan_both();
    CHECK(has_refusal(r, "plugin " + fixtures +
                             "/libansatz_fixture_small.so refused: its descriptor is 16 bytes, "
                             "smaller than the " +
                             std::to_string(sizeof(ansatz_plugin_desc)) + " bytes of ABI 2.0."));
    CHECK(r.find("small_opt") == nullptr);
}

TEST_CASE("a library without the entry symbol is refused", "[registry]")
{
    const Registry r = scan_both();
    CHECK(has_refusal(
        r, "plugin " + fixtures +
               "/libansatz_fixture_no_entry.so refused: it exports no 'ansatz_plugin_v1' entry symbol "
               "(was it built with ANSATZ_PLUGIN and ansatz_add_plugin?)."));
}

TEST_CASE("a component name that another plugin already has is refused, naming both files", "[registry]")
{
    const Registry r = scan_both();
    CHECK(has_refusal(
        r, "plugin " + fixtures +
               "/libansatz_fixture_duplicate.so (fixture 0.0.1) refused: its optimizer 'sgd' has the "
               "name of the optimizer 'sgd' already provided by " +
               plugins + "/libansatz_sgd.so (sgd 0.1.0)."));
    REQUIRE(r.find("sgd") != nullptr);
    CHECK(r.find("sgd")->file.string() == plugins + "/libansatz_sgd.so");
}

TEST_CASE("a plugin whose table lacks a function its kind needs is refused before anything calls it",
          "[registry]")
{
    const Registry r = scan_both();
    CHECK(has_refusal(
        r, "plugin " + fixtures +
               "/libansatz_fixture_null_step.so refused: its optimizer 'null_step_opt' is unfit: its "
               "table has no 'step' function."));
    CHECK(r.find("null_step_opt") == nullptr);
}

TEST_CASE("a plugin that declares one component name twice is refused", "[registry]")
{
    const Registry r = scan_both();
    CHECK(has_refusal(r, "plugin " + fixtures +
                             "/libansatz_fixture_twice.so refused: it declares two components "
                             "named 'twice_opt'."));
}

TEST_CASE("the engine goes on with the other plugins after refusals", "[registry]")
{
    const Registry r = scan_both();
    CHECK(r.refusals().size() == 8);
    for (const char* name : { "good_opt", "energy_only", "conformance_rbm", "rbm", "gibbs",
                              "contrastive_divergence", "sgd", "adam", "idx" })
        CHECK(r.find(name) != nullptr);
}

TEST_CASE("a file that is not ELF is refused before the loader opens it", "[registry]")
{
    const auto dir = ansatz::test::fresh_folder("registry_not_elf");
    const std::string file = (dir / "libansatz_text.so").string();
    ansatz::test::write_text(file, std::string(200, 'x'));
    Registry r;
    r.scan({ dir });
    REQUIRE(r.refusals().size() == 1);
    CHECK(r.refusals()[0] ==
          "plugin " + file +
              " refused: it is not an ELF file (it does not start with the ELF magic number "
              "0x7f 'E' 'L' 'F').");
}

TEST_CASE("`ansatz plugins` warns about refused files and lists the rest", "[registry][cli]")
{
    const auto r = ansatz::test::run_ansatz({ "plugins", "--plugin-path", fixtures }, ANSATZ_TEST_WORK_DIR);
    CHECK(r.status == 0);
    CHECK(r.err.find("warning: plugin " + fixtures + "/libansatz_fixture_major.so refused") !=
          std::string::npos);
    CHECK(r.out.find("optimizer  good_opt                 0.0.1     " + fixtures +
                     "/libansatz_fixture_good.so\n") != std::string::npos);
    CHECK(r.out.find("model      rbm                      0.1.0     " + plugins + "/libansatz_rbm.so\n") !=
          std::string::npos);
}

namespace
{

// The refusal of the in-tree sgd plugin cut to `size` bytes, worked out from its own headers: the first
// of its program header table, PT_LOAD and PT_DYNAMIC segments and section header table that ends past
// the cut.
std::string truncation_reason(const std::string& elf, uint64_t size)
{
    Elf64_Ehdr h;
    std::memcpy(&h, elf.data(), sizeof h);
    const auto past = [&](const std::string& what, uint64_t end) {
        return "it is not a complete ELF shared object (" + what + " ends at byte " + std::to_string(end) +
               ", past the end of the " + std::to_string(size) + "-byte file).";
    };
    if (h.e_phoff + uint64_t(h.e_phnum) * h.e_phentsize > size)
        return past("its program header table", h.e_phoff + uint64_t(h.e_phnum) * h.e_phentsize);
    for (int i = 0; i < h.e_phnum; ++i)
    {
        Elf64_Phdr p;
        std::memcpy(&p, elf.data() + h.e_phoff + i * sizeof p, sizeof p);
        if ((p.p_type == PT_LOAD || p.p_type == PT_DYNAMIC) && p.p_offset + p.p_filesz > size)
            return past("its " + std::string(p.p_type == PT_LOAD ? "PT_LOAD" : "PT_DYNAMIC") +
                            " segment (program header " + std::to_string(i) + ")",
                        p.p_offset + p.p_filesz);
    }
    return past("its section header table", h.e_shoff + uint64_t(h.e_shnum) * h.e_shentsize);
}

// An ELF header for a shared object of this machine (x86-64, little-endian), changed by `edit`, and
// nothing after it.
template <class Edit>
std::string elf_header(Edit edit)
{
    Elf64_Ehdr h{};
    std::memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_DYN;
    h.e_machine = EM_X86_64;
    h.e_version = EV_CURRENT;
    h.e_ehsize = sizeof h;
    h.e_phentsize = sizeof(Elf64_Phdr);
    h.e_shentsize = sizeof(Elf64_Shdr);
    edit(h);
    return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

} // namespace

TEST_CASE("a plugin cut to 50%, 75%, 90% or 99% of its size is refused before it is opened",
          "[registry][cli]")
{
    const std::string elf = ansatz::test::read_text(plugins + "/libansatz_sgd.so");
    REQUIRE(elf.size() > 1000);
    for (const int percent : { 50, 75, 90, 99 })
    {
        INFO(percent << "%");
        const auto dir = ansatz::test::fresh_folder("registry_truncated_" + std::to_string(percent));
        const std::string file = (dir / "libansatz_sgd.so").string();
        const uint64_t size = elf.size() * percent / 100;
        ansatz::test::write_text(file, elf.substr(0, size));
        // Found first (--plugin-path), so a damaged copy that loaded would take over the name 'sgd'.
        const auto r = ansatz::test::run_ansatz({ "plugins", "--plugin-path", dir.string() }, dir);
        CHECK(r.status == 0);
        CHECK(r.err == "warning: plugin " + file + " refused: " + truncation_reason(elf, size) + "\n");
        CHECK(r.out.find("optimizer  sgd                      0.1.0     " + plugins +
                         "/libansatz_sgd.so\n") != std::string::npos);
    }
}

TEST_CASE("a truncated copy of a plugin found first does not take over its component name", "[registry]")
{
    const std::string elf = ansatz::test::read_text(plugins + "/libansatz_sgd.so");
    const auto dir = ansatz::test::fresh_folder("registry_truncated_copy");
    const std::string file = (dir / "libansatz_sgd_copy.so").string();
    ansatz::test::write_text(file, elf.substr(0, elf.size() - 1));
    Registry r;
    r.scan({ dir, plugins });
    CHECK(r.refusals() == std::vector<std::string>{ "plugin " + file +
                                                    " refused: " + truncation_reason(elf, elf.size() - 1) });
    REQUIRE(r.find("sgd") != nullptr);
    CHECK(r.find("sgd")->file.string() == plugins + "/libansatz_sgd.so");
}

TEST_CASE("an ELF file of another class, byte order, machine or type is refused, naming what differs",
          "[registry]")
{
    const auto dir = ansatz::test::fresh_folder("registry_foreign_elf");
    const auto refusal = [&](const std::string& name, const std::string& bytes) {
        ansatz::test::write_text(dir / name, bytes);
        Registry r;
        r.load(dir / name);
        REQUIRE(r.refusals().size() == 1);
        return r.refusals()[0];
    };
    const std::string prefix = "plugin " + dir.string() + "/";

    // A 32-bit header (52 bytes): its class is read before its size matters.
    Elf32_Ehdr h32{};
    std::memcpy(h32.e_ident, ELFMAG, SELFMAG);
    h32.e_ident[EI_CLASS] = ELFCLASS32;
    h32.e_ident[EI_DATA] = ELFDATA2LSB;
    h32.e_type = ET_DYN;
    h32.e_machine = EM_386;
    CHECK(refusal("libansatz_elf32.so", std::string(reinterpret_cast<const char*>(&h32), sizeof h32)) ==
          prefix +
              "libansatz_elf32.so refused: it is not an ELF shared object for this machine (it is 32-bit "
              "ELF, and this engine loads 64-bit ELF only).");
    CHECK(refusal("libansatz_big.so", elf_header([](Elf64_Ehdr& h) { h.e_ident[EI_DATA] = ELFDATA2MSB; })) ==
          prefix + "libansatz_big.so refused: it is not an ELF shared object for this machine (it is "
                   "big-endian, and this machine is little-endian).");
    CHECK(refusal("libansatz_arm.so", elf_header([](Elf64_Ehdr& h) { h.e_machine = EM_AARCH64; })) ==
          prefix + "libansatz_arm.so refused: it is not an ELF shared object for this machine (it is built "
                   "for AArch64 (e_machine 183), and this machine is x86-64 (e_machine 62)).");
    CHECK(refusal("libansatz_exec.so", elf_header([](Elf64_Ehdr& h) { h.e_type = ET_EXEC; })) ==
          prefix + "libansatz_exec.so refused: it is an ELF executable (ET_EXEC), not a shared object "
                   "(ET_DYN).");
    CHECK(refusal("libansatz_short.so", elf_header([](Elf64_Ehdr&) {}).substr(0, 40)) ==
          prefix +
              "libansatz_short.so refused: it is not a complete ELF shared object (the file is 40 bytes, "
              "shorter than the 64-byte ELF header).");
    CHECK(refusal("libansatz_noph.so", elf_header([](Elf64_Ehdr&) {})) ==
          prefix + "libansatz_noph.so refused: it is not a complete ELF shared object (it has no program "
                   "headers).");
    CHECK(refusal("libansatz_ph.so", elf_header([](Elf64_Ehdr& h) { h.e_phoff = 64, h.e_phnum = 2; })) ==
          prefix + "libansatz_ph.so refused: it is not a complete ELF shared object (its program header "
                   "table ends at byte 176, past the end of the 64-byte file).");
}

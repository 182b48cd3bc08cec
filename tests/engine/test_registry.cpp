// Plugin loading: refusals name the file and the versions, and the engine goes on with the others.
#include "registry.hpp"
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

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
                              "contrastive_divergence", "sgd", "idx" })
        CHECK(r.find(name) != nullptr);
}

TEST_CASE("a file that is not a shared library is refused with the loader's reason", "[registry]")
{
    const auto dir = ansatz::test::fresh_folder("registry_not_elf");
    const std::string file = (dir / "libansatz_text.so").string();
    ansatz::test::write_text(file, std::string(200, 'x'));
    Registry r;
    r.scan({ dir });
    REQUIRE(r.refusals().size() == 1);
    CHECK(r.refusals()[0] ==
          "plugin " + file + " refused: it could not be loaded (" + file + ": invalid ELF header).");
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

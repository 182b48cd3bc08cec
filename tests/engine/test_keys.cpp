// The engine's key validation, directly: suggestions, conversions, defaults.
#include "keys.hpp"
#include "user_error.hpp"

#include <catch2/catch.hpp>

using namespace ansatz::engine;

TEST_CASE("closest suggests a near name and nothing for a far one", "[keys]")
{
    const std::vector<std::string> names = { "hidden", "init_std", "visible" };
    CHECK(closest("hiden", names) == "hidden");
    CHECK(closest("visable", names) == "visible");
    CHECK(closest("temperature", names).empty());
}

TEST_CASE("validate_keys converts values, fills defaults and reports where", "[keys]")
{
    Source source = Source::parse("a: 3\nb: yes\nc: 0.5\n", "inline.yaml");
    std::vector<KeySpec> specs(4);
    specs[0].name = "a", specs[0].type = ANSATZ_PARAM_INT, specs[0].flags = ANSATZ_PARAM_HAS_MIN,
    specs[0].min = 1;
    specs[1].name = "b", specs[1].type = ANSATZ_PARAM_BOOL, specs[1].default_value = "false";
    specs[2].name = "c", specs[2].type = ANSATZ_PARAM_FLOAT, specs[2].flags = ANSATZ_PARAM_HAS_MAX,
    specs[2].max = 1;
    specs[3].name = "d", specs[3].type = ANSATZ_PARAM_FLOAT, specs[3].default_value = "0.25";
    const Values v = validate_keys(source, source.root(), specs, "thing 'x'", "");
    CHECK(v.at("a").integer == 3);
    CHECK(v.at("b").integer == 1);
    CHECK(v.at("c").real == 0.5);
    CHECK(v.at("d").real == 0.25);
    CHECK(v.at("d").node.IsNull()); // from the default, not the file

    Source bad = Source::parse("a: 0\n", "inline.yaml");
    CHECK_THROWS_WITH(validate_keys(bad, bad.root(), specs, "thing 'x'", ""),
                      "inline.yaml:1:4: key 'a' of thing 'x' is 0, out of range: it must be >= 1");
}

TEST_CASE("an override (--set) walks maps and lists and labels the values it sets", "[keys]")
{
    Source source = Source::parse("stages:\n  - train: {epochs: 1}\n", "p.yaml");
    source.apply_override("stages.0.train.epochs=4");
    CHECK(source.root()["stages"][0]["train"]["epochs"].as<int>() == 4);
    CHECK(source.where(source.root()["stages"][0]["train"]["epochs"]) == "--set stages.0.train.epochs=4");
    CHECK_THROWS_WITH(source.apply_override("stages.3.train.epochs=4"),
                      "--set stages.3.train.epochs=4: 'stages.3' is past the end of a list of 1.");
    CHECK_THROWS_WITH(source.apply_override("epochs"),
                      "--set epochs: an override is KEY.PATH=VALUE, e.g. components.rbm.hidden=128.");
}

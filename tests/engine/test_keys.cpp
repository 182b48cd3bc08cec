// The engine's key validation, directly: suggestions, conversions, defaults.
#include "pipeline/keys.hpp"
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

TEST_CASE("a duplicate key in any mapping of the file is refused where it repeats", "[keys]")
{
    CHECK_THROWS_WITH(Source::parse("a: 1\nb:\n  - {x: 1, y: 2, x: 3}\na: 4\n", "p.yaml"),
                      "p.yaml:3:18: duplicate key 'x' (first at p.yaml:3:6).");
    CHECK_THROWS_WITH(Source::parse("a: 1\nb: 2\na: 3\n", "p.yaml"),
                      "p.yaml:3:1: duplicate key 'a' (first at p.yaml:1:1).");
    // A node shared through an alias is one node: checked once, and not a duplicate of itself.
    CHECK_NOTHROW(Source::parse("a: &A {x: 1}\nb: *A\nc: [*A, *A]\n", "p.yaml"));
    // yaml-cpp builds a cycle from an alias inside its own anchor; the check still ends.
    CHECK_NOTHROW(Source::parse("a: &A [*A]\n", "p.yaml"));
}

TEST_CASE("a pipeline file holds one YAML document", "[keys]")
{
    CHECK_THROWS_WITH(Source::parse("a: 1\n---\nb: 2\n", "p.yaml"),
                      "p.yaml:3:1: a pipeline file holds one YAML document; a second one starts here.");
    CHECK_NOTHROW(Source::parse("---\na: 1\n...\n", "p.yaml"));
}

TEST_CASE("an override blames the last --set of a key, and a value inside a --set value on it", "[keys]")
{
    Source source = Source::parse("c:\n  m: {h: 1}\n", "p.yaml");
    source.apply_override("c.m.h=2");
    source.apply_override("c.m.h=3");
    CHECK(source.root()["c"]["m"]["h"].as<int>() == 3);
    CHECK(source.where(source.root()["c"]["m"]["h"]) == "--set c.m.h=3");
    source.apply_override("c.n={a: {b: 1}}");
    // b's mark is a position in the --set text, not in p.yaml.
    CHECK(source.where(source.root()["c"]["n"]["a"]["b"]) == "--set c.n={a: {b: 1}}");
    CHECK(source.where(source.root()["c"]["m"]) == "p.yaml:2:6");
}

TEST_CASE("an override refuses empty parts and list indices that are not all digits", "[keys]")
{
    Source source = Source::parse("s:\n  - t: {e: 1}\n", "p.yaml");
    CHECK_THROWS_WITH(source.apply_override("s.0.t.=2"),
                      "--set s.0.t.=2: the key path 's.0.t.' has an empty part.");
    CHECK_THROWS_WITH(source.apply_override(".s=2"), "--set .s=2: the key path '.s' has an empty part.");
    CHECK_THROWS_WITH(source.apply_override("s..t=2"),
                      "--set s..t=2: the key path 's..t' has an empty part.");
    CHECK_THROWS_WITH(source.apply_override("s.0abc.t.e=2"),
                      "--set s.0abc.t.e=2: 's' is a list; index it with a number, not '0abc'.");
    CHECK_THROWS_WITH(source.apply_override("s.+0.t.e=2"),
                      "--set s.+0.t.e=2: 's' is a list; index it with a number, not '+0'.");
    CHECK_THROWS_WITH(
        source.apply_override("s.99999999999999999999999.t.e=2"),
        "--set s.99999999999999999999999.t.e=2: 's.99999999999999999999999' is past the end of a "
        "list of 1.");
    CHECK_THROWS_WITH(source.apply_override("s.0.t.e.f=2"),
                      "--set s.0.t.e.f=2: 's.0.t.e' is a value, not a mapping.");
    source.apply_override("s.0.t.e=2");
    CHECK(source.root()["s"][0]["t"]["e"].as<int>() == 2);
}

TEST_CASE("an override through a YAML alias is refused, and through the anchor it reaches every alias",
          "[keys]")
{
    const std::string text = "c:\n  a: &A {h: 1, l: &L [1, 2]}\n  b: *A\n  k: *L\n";
    Source source = Source::parse(text, "p.yaml");
    CHECK_THROWS_WITH(
        source.apply_override("c.b.h=2"),
        "--set c.b.h=2: 'c.b' is shared with 'c.a' through a YAML alias; override the anchor's key "
        "instead: c.a.h.");
    CHECK_THROWS_WITH(
        source.apply_override("c.b=2"),
        "--set c.b=2: 'c.b' is shared with 'c.a' through a YAML alias; override the anchor's key "
        "instead: c.a.");
    CHECK_THROWS_WITH(
        source.apply_override("c.k=2"),
        "--set c.k=2: 'c.k' is shared with 'c.a.l' through a YAML alias; override the anchor's key "
        "instead: c.a.l.");
    CHECK(source.root()["c"]["a"]["h"].as<int>() == 1); // nothing changed
    source.apply_override("c.a.h=3");
    CHECK(source.root()["c"]["a"]["h"].as<int>() == 3);
    CHECK(source.root()["c"]["b"]["h"].as<int>() == 3);
    // Other nodes keep their place in the file.
    CHECK(source.where(source.root()["c"]["k"]) == "p.yaml:2:19");
}

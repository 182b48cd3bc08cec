// Schema declarations become the C parameter specs the engine validates against.
#include "ansatz/schema.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <iterator>
#include <string>

TEST_CASE("a schema key carries type, default, range, choices and doc", "[sdk][schema]")
{
    ansatz::Schema s;
    s.integer("hidden", "number of hidden units").default_value(64).min(1);
    s.real("rate", "step").default_value(0.1).min(0, true).max(1);
    s.choice("init", "random|data", "where chains start").default_value("random");
    s.path("images", "IDX file").required().must_exist();
    s.real("binarize", "threshold").optional();
    const ansatz_param_spec* specs = s.finish();
    REQUIRE(s.size() == 5);

    CHECK(std::string(specs[0].name) == "hidden");
    CHECK(specs[0].type == ANSATZ_PARAM_INT);
    CHECK(std::string(specs[0].default_value) == "64");
    CHECK(specs[0].flags == ANSATZ_PARAM_HAS_MIN);
    CHECK(specs[0].min == 1);

    CHECK(std::string(specs[1].default_value) == "0.1"); // the short spelling that round-trips
    CHECK(specs[1].flags == (ANSATZ_PARAM_HAS_MIN | ANSATZ_PARAM_MIN_EXCLUSIVE | ANSATZ_PARAM_HAS_MAX));

    CHECK(std::string(specs[2].choices) == "random|data");
    CHECK(specs[3].flags == (ANSATZ_PARAM_REQUIRED | ANSATZ_PARAM_MUST_EXIST));
    CHECK(specs[3].default_value == nullptr);
    CHECK(specs[4].flags == ANSATZ_PARAM_OPTIONAL);
    CHECK(std::string(specs[4].doc) == "threshold");
}

TEST_CASE("Config reads validated values and refuses undeclared or mistyped reads", "[sdk][schema]")
{
    ansatz_value values[] = { { "hidden", ANSATZ_PARAM_INT, 1, 32, 0, nullptr },
                              { "rate", ANSATZ_PARAM_FLOAT, 1, 0, 0.25, nullptr },
                              { "binarize", ANSATZ_PARAM_FLOAT, 0, 0, 0, nullptr } };
    ansatz_config c{ sizeof(ansatz_config), 3, values, "rbm", {} };
    const ansatz::Config config(c);
    CHECK(config.integer("hidden") == 32);
    CHECK(config.real("rate") == 0.25);
    CHECK_FALSE(config.has("binarize"));
    CHECK_THROWS_WITH(config.real("binarize"), "configuration key 'binarize' is absent; check has() first");
    CHECK_THROWS_WITH(config.real("hidden"), "configuration key 'hidden' is read with the wrong type");
    CHECK_THROWS_WITH(config.integer("visible"),
                      "configuration key 'visible' was not declared in describe()");
}

TEST_CASE("a float default is spelt as a person writes it: short, and without an exponent in between",
          "[sdk][schema]")
{
    ansatz::Schema s;
    const double values[] = { 10.0, 1000.0, 0.005, 1e-4, 123456.0, 1e-7, 1e20, 0.0, -2.5, 0.1 + 0.2 };
    for (const double v : values)
        s.real(("k" + std::to_string(s.size())).c_str(), "a value").default_value(v);
    const ansatz_param_spec* specs = s.finish();
    const char* expected[] = { "10",    "1000",  "0.005", "0.0001", "123456",
                               "1e-07", "1e+20", "0",     "-2.5",   "0.30000000000000004" };
    for (size_t i = 0; i < std::size(values); ++i)
    {
        INFO(values[i]);
        CHECK(std::string(specs[i].default_value) == expected[i]);
        CHECK(std::strtod(specs[i].default_value, nullptr) == values[i]); // still round-trips
    }
}

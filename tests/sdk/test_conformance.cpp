// The conformance kit (ansatz/testing/conformance.hpp) can fail: a fixture RBM that is wrong on
// purpose in one function (tests/fixtures/plugins/conformance_rbm.cpp, key `bug:`) is caught by the
// check for that function, which names itself, the element and the values; the other checks pass.
#include "ansatz/testing/conformance.hpp"
#include "loading/instance.hpp"
#include "loading/registry.hpp"
#include "pipeline/config_values.hpp"
#include "pipeline/keys.hpp"
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

namespace
{

using ansatz::testing::ConformanceError;
using ansatz::testing::ConformanceOptions;
using ansatz::testing::ConformanceReport;
using ansatz::testing::Outcome;

const ansatz::engine::Registry& fixture_plugins()
{
    static const ansatz::engine::Registry registry = [] {
        ansatz::engine::Registry r;
        r.scan({ ANSATZ_TEST_FIXTURE_DIR });
        return r;
    }();
    return registry;
}

struct Model
{
    std::unique_ptr<ansatz::engine::Instance> inst;
    ansatz::ModelRef ref;
};

// A fixture model, created with `yaml` and set up for `shape` from stream seed 7.
Model make_fixture(const std::string& name, const std::string& yaml, const std::vector<int64_t>& shape)
{
    const ansatz::engine::PluginComponent* c = fixture_plugins().find(name);
    REQUIRE(c != nullptr);
    ansatz::engine::ConfigValues config = ansatz::engine::config_from_yaml(*c->desc, yaml);
    Model m;
    m.inst =
        std::make_unique<ansatz::engine::Instance>(*c, config.c(name), ansatz::test::test_host().table());
    m.ref = ansatz::ModelRef(m.inst->model());
    ansatz::Rng rng(7);
    m.ref.setup(shape, rng);
    return m;
}

ConformanceReport report_for(const std::string& bug)
{
    Model m =
        make_fixture("conformance_rbm", "{visible: 6, hidden: 4, init_std: 1.0, bug: " + bug + "}", { 6 });
    return ansatz::testing::check_model(m.ref, {});
}

std::string detail(const ConformanceReport& r, const std::string& check)
{
    const ansatz::testing::CheckResult* c = r.find(check);
    REQUIRE(c != nullptr);
    return c->detail;
}

} // namespace

TEST_CASE("conformance kit: the fixture RBM without a bug passes every check, none skipped", "[conformance]")
{
    const ConformanceReport r = report_for("none");
    INFO(r.summary());
    CHECK(r.passed());
    CHECK(r.skipped().empty());
    for (const char* check : { "random_state", "parameters", "energy_delta", "free_energy_grad",
                               "conditionals_exact", "conditional_sampling", "local_moves" })
        CHECK(r.outcome(check) == Outcome::passed);
    CHECK(r.checks.size() == 7); // no state_grad: the fixture has no free_energy_grad_state
    CHECK_NOTHROW(r.require());
}

TEST_CASE(
    "conformance kit: a gradient off by a factor 2 fails free_energy_grad, naming the parameter and element",
    "[conformance]")
{
    const ConformanceReport r = report_for("grad_factor");
    INFO(r.summary());
    CHECK(r.failed() == std::vector<std::string>{ "free_energy_grad" });
    const std::string message = detail(r, "free_energy_grad");
    CHECK_THAT(message, Catch::StartsWith(
                            "conformance check 'free_energy_grad' failed: parameter 'weights' element ["));
    CHECK_THAT(message, Catch::Contains("the central difference of free_energy gives"));
    CHECK_THAT(message, Catch::Contains("(step 0.01, float32, summed over 4 rows)"));
    CHECK_THAT(message, Catch::Contains("exceeds the tolerance"));
    CHECK_THAT(message, Catch::Contains("checked elements are off"));
    // The same failure, from the check alone, as an ansatz::Error naming its check.
    Model m = make_fixture("conformance_rbm", "{bug: grad_factor}", { 6 });
    try
    {
        ansatz::testing::check_free_energy_grad(m.ref);
        FAIL("check_free_energy_grad did not throw");
    }
    catch (const ConformanceError& e)
    {
        CHECK(e.check() == "free_energy_grad");
        CHECK_THAT(e.what(),
                   Catch::StartsWith("conformance check 'free_energy_grad' failed: parameter 'weights'"));
    }
    // The parameters the check perturbed are restored bit for bit.
    std::vector<float> before;
    for (const ansatz_named_tensor& t : m.ref.parameters())
        before.insert(before.end(), ansatz::f32(t.tensor),
                      ansatz::f32(t.tensor) + ansatz::element_count(t.tensor));
    CHECK_THROWS_AS(ansatz::testing::check_free_energy_grad(m.ref), ConformanceError);
    std::vector<float> after;
    for (const ansatz_named_tensor& t : m.ref.parameters())
        after.insert(after.end(), ansatz::f32(t.tensor),
                     ansatz::f32(t.tensor) + ansatz::element_count(t.tensor));
    CHECK(after == before);
    // report.require() throws the recorded failure, with the same message.
    CHECK_THROWS_WITH(r.require(), message);
}

TEST_CASE(
    "conformance kit: an energy_delta with a sign error fails energy_delta, naming the row, site and values",
    "[conformance]")
{
    const ConformanceReport r = report_for("delta_sign");
    INFO(r.summary());
    // The session's energy_delta has the same sign error.
    CHECK(r.failed() == std::vector<std::string>{ "energy_delta", "local_moves" });
    const std::string message = detail(r, "energy_delta");
    CHECK_THAT(message, Catch::StartsWith("conformance check 'energy_delta' failed: row 0, site "));
    CHECK_THAT(message, Catch::Contains(": energy_delta gives "));
    CHECK_THAT(message, Catch::Contains(", free_energy gives F(v') - F(v) = "));
    CHECK_THAT(message, Catch::Contains(" exceeds the tolerance "));
    CHECK_THAT(message, Catch::Contains("(0.0001 + 16 float epsilon (|F(v)| + |F(v')|))"));
}

TEST_CASE(
    "conformance kit: a wrong visible conditional fails conditionals_exact (stationarity by enumeration)",
    "[conformance]")
{
    const ConformanceReport r = report_for("conditional_mean");
    INFO(r.summary());
    CHECK(r.failed() == std::vector<std::string>{ "conditionals_exact" });
    CHECK_THAT(
        detail(r, "conditionals_exact"),
        Catch::StartsWith("conformance check 'conditionals_exact' failed: stationarity: one exact Gibbs step "
                          "v -> h -> v' from p(v) = exp(-F)/Z gives "));
}

TEST_CASE("conformance kit: samples drawn with the wrong probability fail conditional_sampling "
          "(seed 20251127, 4 x 5000 rows, 5 sigma)",
          "[conformance][statistical]")
{
    const ConformanceReport r = report_for("conditional_sample");
    INFO(r.summary());
    CHECK(r.failed() == std::vector<std::string>{ "conditional_sampling" });
    const std::string message = detail(r, "conditional_sampling");
    CHECK_THAT(message,
               Catch::StartsWith("conformance check 'conditional_sampling' failed: the hidden unit "));
    CHECK_THAT(message, Catch::Contains(" binomial standard errors + 1/R = "));
    CHECK_THAT(message, Catch::Contains("(seed 20251127)"));
}

TEST_CASE("conformance kit: random states outside the domain fail random_state", "[conformance]")
{
    const ConformanceReport r = report_for("random_state");
    INFO(r.summary());
    CHECK(r.failed() == std::vector<std::string>{ "random_state" });
    CHECK(detail(r, "random_state") ==
          "conformance check 'random_state' failed: row 0, unit 0 is 0.5, outside the "
          "model's domain (binary {0, 1})");
}

TEST_CASE(
    "conformance kit: parameters() that return views of a copy fail parameters (and the gradient check)",
    "[conformance]")
{
    const ConformanceReport r = report_for("parameter_copy");
    INFO(r.summary());
    CHECK(r.failed() == std::vector<std::string>{ "parameters", "free_energy_grad" });
    CHECK_THAT(
        detail(r, "parameters"),
        Catch::StartsWith("conformance check 'parameters' failed: parameter 'weights' element [0, 0] was set "
                          "to "));
    CHECK_THAT(detail(r, "parameters"), Catch::Contains(" through the views, but parameters() reads "));
}

TEST_CASE("conformance kit: checks whose functions the model lacks are skipped and say why", "[conformance]")
{
    Model m = make_fixture("energy_only", "{bias: 0.3}", { 5 });
    ConformanceOptions options;
    options.sample_shape = { 5 }; // the model does not declare its shape
    const ConformanceReport r = ansatz::testing::check_model(m.ref, options);
    INFO(r.summary());
    CHECK(r.passed());
    CHECK(r.outcome("random_state") == Outcome::passed);
    CHECK(r.outcome("parameters") == Outcome::passed);
    CHECK(r.skipped() == std::vector<std::string>{ "energy_delta", "free_energy_grad", "conditionals_exact",
                                                   "conditional_sampling" });
    CHECK(detail(r, "energy_delta") == "the model has no energy_delta");
    CHECK(detail(r, "free_energy_grad") == "the model has no free_energy_grad");
    CHECK(detail(r, "conditionals_exact") == "the model has no conditionals");

    // Without the shape, a check that needs it fails and says what to set.
    const ConformanceReport unknown = ansatz::testing::check_model(m.ref, {});
    CHECK_THAT(detail(unknown, "random_state"), Catch::EndsWith("set ConformanceOptions::sample_shape"));
}

// ---- the latent checks, on the linear-Gaussian VAE fixture (tests/fixtures/plugins/linear_vae.cpp)

namespace
{

ConformanceReport latent_report(const std::string& component, const std::string& bug)
{
    Model m = make_fixture(component, "{latent: 3, init_std: 0.5, init_sigma: 0.8, bug: " + bug + "}", { 5 });
    ConformanceOptions options;
    options.sample_shape = { 5 };
    return ansatz::testing::check_model(m.ref, options);
}

} // namespace

TEST_CASE("conformance kit: the linear VAE fixtures pass every latent check", "[conformance][latent]")
{
    for (const char* component : { "linear_vae", "linear_vae_weighted" })
    {
        INFO(component);
        const ConformanceReport r = latent_report(component, "none");
        INFO(r.summary());
        CHECK(r.passed());
        for (const char* check : { "random_state", "parameters", "latent_rows", "latent_encode_backward",
                                   "latent_decode_backward", "latent_decode_weighted" })
            CHECK(r.outcome(check) == Outcome::passed);
        CHECK(r.skipped() == std::vector<std::string>{ "energy_delta", "free_energy_grad",
                                                       "conditionals_exact", "conditional_sampling" });
    }
    // Without the 2.2 slot the weighted check is skipped (ModelRef makes the pass of decode_backward).
    const ConformanceReport plain = latent_report("linear_vae_plain", "none");
    INFO(plain.summary());
    CHECK(plain.passed());
    CHECK(plain.outcome("latent_decode_weighted") == Outcome::skipped);
    CHECK(detail(plain, "latent_decode_weighted") ==
          "the model has no decode_backward_weighted (2.2); ModelRef makes it of decode_backward calls");
}

TEST_CASE("conformance kit: each wrong latent function fails its own check, naming what it found",
          "[conformance][latent]")
{
    const ConformanceReport encode = latent_report("linear_vae", "encode_grad");
    INFO(encode.summary());
    CHECK(encode.failed() == std::vector<std::string>{ "latent_encode_backward" });
    CHECK_THAT(
        detail(encode, "latent_encode_backward"),
        Catch::StartsWith("conformance check 'latent_encode_backward' failed: parameter 'encoder.weight' "
                          "element [0, 0] (value "));
    CHECK_THAT(detail(encode, "latent_encode_backward"),
               Catch::Contains("encode_backward's d(sum_n a.mu + b.log_var)/dtheta gives "));

    const ConformanceReport dh = latent_report("linear_vae", "decode_grad_h");
    INFO(dh.summary());
    // (its weighted pass has the same sign error, so the two passes still agree with each other)
    CHECK(dh.failed() == std::vector<std::string>{ "latent_decode_backward" });
    CHECK_THAT(detail(dh, "latent_decode_backward"),
               Catch::StartsWith("conformance check 'latent_decode_backward' failed: h row 0, unit 0: "
                                 "decode_backward's d_h / scale = dlog p(x|h)/dh gives "));

    const ConformanceReport weights = latent_report("linear_vae", "decode_weights");
    INFO(weights.summary());
    CHECK(weights.failed() == std::vector<std::string>{ "latent_decode_weighted" });
    CHECK_THAT(
        detail(weights, "latent_decode_weighted"),
        Catch::StartsWith("conformance check 'latent_decode_weighted' failed: d_h row 1, unit 0 (weight 0) "
                          "against decode_backward at that scale: decode_backward_weighted gives "));

    const ConformanceReport rows = latent_report("linear_vae", "row_mixing");
    INFO(rows.summary());
    CHECK(rows.failed() == std::vector<std::string>{ "latent_rows" });
    CHECK_THAT(
        detail(rows, "latent_rows"),
        Catch::StartsWith("conformance check 'latent_rows' failed: encode's mu of row 15, element 0 is "));
    CHECK_THAT(detail(rows, "latent_rows"), Catch::EndsWith("a row's result depends on the rows beside it"));
}

TEST_CASE(
    "conformance kit: a local session whose commit misses the change fails local_moves naming the round",
    "[conformance]")
{
    const ConformanceReport r = report_for("local_stale");
    INFO(r.summary());
    CHECK(r.failed() == std::vector<std::string>{ "local_moves" });
    const std::string message = detail(r, "local_moves");
    // Round 0 compares before any commit; the stale cache shows from the first round after one.
    CHECK_THAT(message, Catch::StartsWith("conformance check 'local_moves' failed: round 1 (after "));
    CHECK_THAT(message, Catch::Contains(" committed changes), row "));
    CHECK_THAT(message, Catch::Contains(": energy_delta in the session gives "));
    CHECK_THAT(message, Catch::Contains(", free_energy gives F_beta(v') - F_beta(v) = "));
}

TEST_CASE(
    "conformance kit: a Gaussian target passes local_moves and state_grad - and a gradient with the wrong "
    "sign fails state_grad",
    "[conformance]")
{
    const std::string yaml = "{mean: [0.5, -1.0], precision: [2.0, 0.9, 0.9, 1.0]";
    {
        Model m = make_fixture("gaussian_target", yaml + "}", { 2 });
        const ConformanceReport r = ansatz::testing::check_model(m.ref, {});
        INFO(r.summary());
        CHECK(r.passed());
        CHECK(r.outcome("local_moves") == Outcome::passed);
        CHECK(r.outcome("state_grad") == Outcome::passed);
        CHECK(r.skipped() ==
              std::vector<std::string>{ "free_energy_grad", "conditionals_exact", "conditional_sampling" });
    }
    {
        // Without the 2.2 functions their checks are not in the report at all.
        Model m = make_fixture("gaussian_target_plain", yaml + "}", { 2 });
        const ConformanceReport r = ansatz::testing::check_model(m.ref, {});
        CHECK(r.passed());
        CHECK(r.find("local_moves") == nullptr);
        CHECK(r.find("state_grad") == nullptr);
        CHECK(r.checks.size() == 6);
    }
    {
        Model m = make_fixture("gaussian_target", yaml + ", bug: grad_sign}", { 2 });
        const ConformanceReport r = ansatz::testing::check_model(m.ref, {});
        CHECK(r.failed() == std::vector<std::string>{ "state_grad" });
        const std::string message = detail(r, "state_grad");
        CHECK_THAT(message, Catch::StartsWith("conformance check 'state_grad' failed: row 0, unit 0: "
                                              "free_energy_grad_state gives "));
        CHECK_THAT(message, Catch::Contains(", the central difference of free_energy gives "));
    }
}

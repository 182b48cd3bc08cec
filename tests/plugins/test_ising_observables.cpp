// The ising_observables evaluator on exact samples (drawn by enumeration) of small lattices: every
// observable within 3 of its reported standard errors of the exact value, the jackknife errors against
// the spread of repeated independent estimates, blocks that see correlated rows as binning does, and
// its bad inputs.
#include "models/ising/exact.hpp"
#include "support/cli.hpp"
#include "support/evaluators.hpp"

#include <ansatz/statistics.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace
{

using ansatz::Rng;
using ansatz::ising::Lattice;
using ansatz::test::metric;
using ansatz::test::Metrics;
namespace fs = std::filesystem;

const char* const names[] = { "energy", "abs_magnetisation", "specific_heat", "susceptibility",
                              "binder_cumulant" };

double exact_value(const ansatz::ising::Observables& o, const std::string& name)
{
    if (name == "energy")
        return o.energy;
    if (name == "abs_magnetisation")
        return o.abs_magnetisation;
    if (name == "specific_heat")
        return o.specific_heat;
    if (name == "susceptibility")
        return o.susceptibility;
    return o.binder;
}

struct Setup
{
    std::unique_ptr<ansatz::engine::Instance> model, evaluator;
    ansatz::ModelRef ref;
};

// An ising model of the lattice (what the evaluator is bound to) and the evaluator with the same keys.
Setup make(const Lattice& l, double J, double h, double beta, const std::string& extra = "")
{
    char keys[256];
    std::snprintf(keys, sizeof keys,
                  "dimension: %d, size: %lld, J: %.17g, h: %.17g, beta: %.17g, boundary: %s", l.dimension,
                  static_cast<long long>(l.size), J, h, beta, l.periodic ? "periodic" : "open");
    Setup s;
    s.model = ansatz::test::make("ising", "{" + std::string(keys) + "}");
    s.ref = ansatz::test::model_ref(*s.model);
    Rng init(1);
    const ansatz_sample_info info = s.ref.sample_info();
    s.ref.setup(std::vector<int64_t>(info.shape, info.shape + info.rank), init);
    s.evaluator = ansatz::test::make("ising_observables",
                                     "{" + std::string(keys) + (extra.empty() ? "" : ", " + extra) + "}");
    return s;
}

// rows exact samples, spins -1/+1 (or 0/1).
std::vector<float> exact_rows(const ansatz::ising::ExactSampler& sampler, int64_t rows, Rng& rng,
                              bool binary = false)
{
    std::vector<float> out(static_cast<size_t>(rows * sampler.sites()));
    for (int64_t r = 0; r < rows; ++r)
        sampler.draw(rng, out.data() + r * sampler.sites(), binary);
    return out;
}

Metrics evaluate(const Setup& s, std::vector<float>& rows, int64_t sites,
                 const ansatz::ModelRef* model = nullptr)
{
    const int64_t n = static_cast<int64_t>(rows.size()) / sites;
    return ansatz::test::evaluate(*s.evaluator, model ? *model : s.ref,
                                  ansatz::make_view(rows.data(), { n, sites }), Rng(3));
}

} // namespace

TEST_CASE(
    "ising_observables: every observable of exact samples is within 3 standard errors of the exact value",
    "[ising_observables][statistical]")
{
    // 4 x 4 periodic, J = 1, h = 0, at T = 1.5, 2.269, 3.0, and 3 x 3 open with J = 0.8, h = 0.3 at
    // T = 2: 20000 independent exact samples each (seed 2024 + case), 20 blocks; each of the 20
    // observables within 3 of its reported standard errors (about 1 in 370 each, by chance).
    struct Case
    {
        Lattice lattice;
        double J, h, t;
    };
    const Case cases[] = { { { 2, 4, true }, 1.0, 0.0, 1.5 },
                           { { 2, 4, true }, 1.0, 0.0, 2.269 },
                           { { 2, 4, true }, 1.0, 0.0, 3.0 },
                           { { 2, 3, false }, 0.8, 0.3, 2.0 } };
    uint64_t seed = 2024;
    for (const Case& c : cases)
    {
        INFO("L = " << c.lattice.size << (c.lattice.periodic ? " periodic" : " open") << " T = " << c.t);
        const double beta = 1.0 / c.t;
        const Setup s = make(c.lattice, c.J, c.h, beta);
        const ansatz::ising::ExactSampler sampler(c.lattice, c.J, c.h, beta);
        Rng rng(seed++);
        std::vector<float> rows = exact_rows(sampler, 20000, rng);
        const Metrics m = evaluate(s, rows, c.lattice.sites());
        const ansatz::ising::Observables exact = ansatz::ising::DensityOfStates(c.lattice).at(c.J, c.h, beta);
        for (const char* name : names)
        {
            INFO(name << " = " << metric(m, name) << " +- " << metric(m, std::string(name) + "_stderr")
                      << ", exact " << exact_value(exact, name));
            const double se = metric(m, std::string(name) + "_stderr");
            CHECK(se > 0);
            CHECK(std::abs(metric(m, name) - exact_value(exact, name)) < 3 * se);
        }
    }
}

TEST_CASE(
    "ising_observables: rows of 0/1 read as s = 2v - 1 give the spins' numbers for a binary model or by key",
    "[ising_observables]")
{
    const Lattice lattice{ 2, 4, true };
    const Setup s = make(lattice, 1.0, 0.0, 0.4);
    const ansatz::ising::ExactSampler sampler(lattice, 1.0, 0.0, 0.4);
    Rng a(9), b(9);
    std::vector<float> spins = exact_rows(sampler, 500, a), bits = exact_rows(sampler, 500, b, true);
    const Metrics from_spins = evaluate(s, spins, 16);
    // Bound to an RBM with 16 binary visible units (values: model reads its domain) ...
    const ansatz::test::TestRbm rbm = ansatz::test::make_rbm(16, 4);
    const Metrics from_rbm = evaluate(s, bits, 16, &rbm.model);
    // ... or told by its key, whatever the model.
    const Setup keyed = make(lattice, 1.0, 0.0, 0.4, "values: binary");
    const Metrics from_key = evaluate(keyed, bits, 16);
    for (const auto& [name, value] : from_spins)
    {
        INFO(name);
        CHECK(from_rbm.at(name) == value);
        CHECK(from_key.at(name) == value);
    }
}

TEST_CASE(
    "ising_observables: the jackknife error of the specific heat matches the spread of repeated estimates",
    "[ising_observables][statistical]")
{
    // 4 x 4 periodic at T = 2.269: 400 independent sets of 500 exact samples (seed 515), 20 blocks each.
    // The standard deviation of the 400 estimates of C (relative error about 1/sqrt(2 * 399) = 3.5%)
    // against the mean of the 400 jackknife errors (about 1%): their ratio within [0.85, 1.15], about 4
    // standard errors. The same for the energy.
    const Lattice lattice{ 2, 4, true };
    const double beta = 1 / 2.269;
    const Setup s = make(lattice, 1.0, 0.0, beta);
    const ansatz::ising::ExactSampler sampler(lattice, 1.0, 0.0, beta);
    Rng rng(515);
    ansatz::MeanAndError c, c_error, e, e_error;
    for (int k = 0; k < 400; ++k)
    {
        std::vector<float> rows = exact_rows(sampler, 500, rng);
        const Metrics m = evaluate(s, rows, 16);
        c.add(metric(m, "specific_heat"));
        c_error.add(metric(m, "specific_heat_stderr"));
        e.add(metric(m, "energy"));
        e_error.add(metric(m, "energy_stderr"));
    }
    const double c_spread = c.standard_error() * std::sqrt(400.0); // the sample standard deviation
    const double e_spread = e.standard_error() * std::sqrt(400.0);
    INFO("C: spread " << c_spread << ", mean jackknife error " << c_error.mean());
    INFO("E: spread " << e_spread << ", mean jackknife error " << e_error.mean());
    CHECK(c_error.mean() / c_spread > 0.85);
    CHECK(c_error.mean() / c_spread < 1.15);
    CHECK(e_error.mean() / e_spread > 0.85);
    CHECK(e_error.mean() / e_spread < 1.15);
}

TEST_CASE("ising_observables: blocks longer than the correlation see correlated rows as binning does",
          "[ising_observables]")
{
    // 4000 exact samples (4 x 4 at T = 2.269, seed 616), each repeated 8 times in a row: 32000 rows that
    // hold the information of 4000. With 20 blocks (1600 rows, 200 distinct samples each) every block's
    // sums are 8 times those of the distinct rows' block, so the values and errors are those of the 4000
    // distinct rows (exactly, but for rounding). The plain jackknife (one block per row), blind to the
    // correlation, gives sqrt(3999 / 31999) = 0.354 of the distinct rows' plain error: sqrt(8) too small.
    const Lattice lattice{ 2, 4, true };
    const double beta = 1 / 2.269;
    const ansatz::ising::ExactSampler sampler(lattice, 1.0, 0.0, beta);
    Rng rng(616);
    std::vector<float> distinct = exact_rows(sampler, 4000, rng), repeated;
    for (int64_t r = 0; r < 4000; ++r)
        for (int copy = 0; copy < 8; ++copy)
            repeated.insert(repeated.end(), distinct.begin() + r * 16, distinct.begin() + (r + 1) * 16);
    const Metrics alone = evaluate(make(lattice, 1.0, 0.0, beta), distinct, 16);
    const Metrics blocked = evaluate(make(lattice, 1.0, 0.0, beta), repeated, 16);
    const Metrics plain = evaluate(make(lattice, 1.0, 0.0, beta, "blocks: 4000"), distinct, 16);
    const Metrics naive = evaluate(make(lattice, 1.0, 0.0, beta, "blocks: 32000"), repeated, 16);
    for (const char* name : names)
    {
        const std::string se = std::string(name) + "_stderr";
        INFO(name << ": distinct rows " << metric(alone, se) << ", repeated rows in 20 blocks "
                  << metric(blocked, se) << ", one block per repeated row " << metric(naive, se));
        CHECK(metric(blocked, name) == Approx(metric(alone, name)).epsilon(1e-9));
        CHECK(metric(blocked, se) == Approx(metric(alone, se)).epsilon(1e-6));
    }
    // For the means (energy, |m|) the plain jackknife is s / sqrt(n) exactly.
    for (const char* name : { "energy", "abs_magnetisation" })
    {
        const std::string se = std::string(name) + "_stderr";
        INFO(name);
        CHECK(metric(naive, se) / metric(plain, se) == Approx(std::sqrt(3999.0 / 31999.0)).epsilon(1e-6));
    }
}

TEST_CASE("ising_observables: bad data and models are refused with one sentence", "[ising_observables]")
{
    const std::string at = "component 'ising_observables' (evaluator 'ising_observables' from " +
                           std::string(ANSATZ_TEST_PLUGIN_DIR) + "/libansatz_ising_observables.so): ";
    const Lattice lattice{ 2, 3, true };
    const Setup s = make(lattice, 1.0, 0.0, 0.5, "blocks: 4");
    std::vector<float> rows(3 * 9, 1.0f);
    REQUIRE_THROWS_WITH(
        evaluate(s, rows, 9),
        at + "the evaluated data has 3 rows, fewer than blocks = 4 (the jackknife needs a row in every "
             "block)");
    rows.assign(8 * 9, 1.0f);
    rows[5 * 9 + 7] = 0.0f;
    REQUIRE_THROWS_WITH(evaluate(s, rows, 9),
                        at + "row 5 has 0.000000 at site 7; spin values are -1 or +1 (values: model)");
    std::vector<float> wide(8 * 10, 1.0f);
    REQUIRE_THROWS_WITH(
        evaluate(s, wide, 10),
        at + "the evaluated rows have 10 values, but the lattice (dimension: 2, size: 3) has 9 spins");
    // Binary rows with a grey value.
    const Setup binary = make(lattice, 1.0, 0.0, 0.5, "blocks: 4, values: binary");
    rows.assign(8 * 9, 1.0f);
    rows[2] = 0.5f;
    REQUIRE_THROWS_WITH(evaluate(binary, rows, 9),
                        at + "row 0 has 0.500000 at site 2; binary values are 0 or 1 (values: binary)");
    // A model of real values, and one whose samples do not fit the lattice.
    const ansatz::test::TestRbm gaussian = ansatz::test::make_rbm(9, 2, "visible_units: gaussian");
    REQUIRE_THROWS_WITH(
        evaluate(s, rows, 9, &gaussian.model),
        at + "values: model reads the rows as the model's domain, but its values are real; give "
             "values: spin or values: binary");
    const ansatz::test::TestRbm wrong = ansatz::test::make_rbm(16, 2);
    REQUIRE_THROWS_WITH(
        evaluate(s, rows, 9, &wrong.model),
        at + "the model's samples have 16 values, but the lattice (dimension: 2, size: 3) has 9 spins");
}

// ---- through the binary: an evaluate stage, and bad keys (exit 2)

namespace
{

struct Run
{
    int status;
    std::string err;
    fs::path dir;
};

// An evaluate stage of ising_observables (keys `keys`) on a 4 x 4 IDX file binarised at 0.5, bound to a
// 4 x 4 ising model.
Run observables_pipeline(const std::string& name, const std::string& keys)
{
    const fs::path dir = ansatz::test::fresh_folder("ising_observables/" + name);
    ansatz::test::write_text(dir / "pipeline.yaml",
                             "pipeline: observables\nseed: 1\ncomponents:\n"
                             "  data:  {plugin: idx, images: images.idx, binarize: 0.5}\n"
                             "  ising: {plugin: ising, size: 4, beta: 0.4}\n"
                             "  obs:   {plugin: ising_observables, size: 4, beta: 0.4" +
                                 keys +
                                 "}\n"
                                 "stages:\n"
                                 "  - evaluate: {model: ising, data: data, evaluators: [obs]}\n");
    std::string idx("\x00\x00\x08\x03\x00\x00\x00\x08\x00\x00\x00\x04\x00\x00\x00\x04", 16);
    for (int i = 0; i < 128; ++i)
        idx += static_cast<char>(i * 37 % 256);
    ansatz::test::write_text(dir / "images.idx", idx);
    const ansatz::test::CliResult r =
        ansatz::test::run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    return { r.status, r.err, dir };
}

} // namespace

TEST_CASE("ising_observables: an evaluate stage reports every observable and its error in metrics.csv",
          "[ising_observables][cli]")
{
    const Run r = observables_pipeline("run", ", values: binary, blocks: 4");
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.find("energy = ") != std::string::npos);
    CHECK(r.err.find("binder_cumulant = ") != std::string::npos);
}

TEST_CASE("bad input: ising_observables keys", "[ising_observables][cli][bad-input]")
{
    const std::string where = "\n  while validating component 'obs' (plugin file " +
                              std::string(ANSATZ_TEST_PLUGIN_DIR) + "/libansatz_ising_observables.so)\n";
    Run r = observables_pipeline("blocks", ", blocks: 1");
    CHECK(r.status == 2);
    CHECK(r.err == "pipeline.yaml:6:66: key 'blocks' of evaluator 'ising_observables' is 1, out of range: it "
                   "must be >= 2" +
                       where);
    r = observables_pipeline("values", ", values: spins");
    CHECK(r.status == 2);
    CHECK(r.err ==
          "pipeline.yaml:6:66: key 'values' of evaluator 'ising_observables' is 'spins', which is not "
          "one of: model,spin,binary (did you mean 'spin'?)" +
              where);
    r = observables_pipeline("beta", ", dimension: 3");
    CHECK(r.status == 2);
    CHECK(r.err ==
          "pipeline.yaml:6:69: key 'dimension' of evaluator 'ising_observables' is 3, out of range: it "
          "must be [1, 2]" +
              where);
    // The ising model's samples are spins: binary data of 0/1 read with values: model is refused.
    r = observables_pipeline("domain", ", blocks: 4");
    CHECK(r.status == 2);
    CHECK(r.err.find("row 0 has 0.000000 at site 0; spin values are -1 or +1 (values: model)") !=
          std::string::npos);
}

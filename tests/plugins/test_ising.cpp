// The ising model: its energy and local differences against brute force, its tempered functions, the
// exact references (enumeration, the chain's transfer matrix) against each other and against the
// plugin, and its bad keys.
#include "models/ising/exact.hpp"
#include "models/ising/transfer_matrix.hpp"
#include "outputs/npy.hpp"
#include "support/cli.hpp"
#include "support/plugins.hpp"
#include "support/statistics.hpp"

#include <ansatz/math.hpp>
#include <ansatz/testing/conformance.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace
{

using ansatz::ModelRef;
using ansatz::Rng;
using ansatz::ising::Lattice;
namespace fs = std::filesystem;

struct TestIsing
{
    std::unique_ptr<ansatz::engine::Instance> instance;
    ModelRef model;
    Lattice lattice;
    double J, h, beta;
};

TestIsing make_ising(int dimension, int64_t size, bool periodic, double J, double h, double beta)
{
    TestIsing t;
    char yaml[256];
    std::snprintf(yaml, sizeof yaml,
                  "{dimension: %d, size: %lld, J: %.17g, h: %.17g, beta: %.17g, boundary: %s}", dimension,
                  static_cast<long long>(size), J, h, beta, periodic ? "periodic" : "open");
    t.instance = ansatz::test::make("ising", yaml);
    t.model = ansatz::test::model_ref(*t.instance);
    t.lattice = Lattice{ dimension, size, periodic };
    t.J = J, t.h = h, t.beta = beta;
    Rng init(1);
    const ansatz_sample_info info = t.model.sample_info();
    t.model.setup(std::vector<int64_t>(info.shape, info.shape + info.rank), init);
    return t;
}

// H(s) from the bond list written out here: -J sum over bonds - h sum of spins.
double brute_energy(const TestIsing& t, const float* s)
{
    double bonds = 0, m = 0;
    for (const auto& [i, j] : t.lattice.bonds())
        bonds += static_cast<double>(s[i]) * s[j];
    for (int64_t i = 0; i < t.lattice.sites(); ++i)
        m += s[i];
    return -t.J * bonds - t.h * m;
}

std::vector<float> random_spins(int64_t rows, int64_t sites, uint64_t seed)
{
    Rng rng(seed);
    std::vector<float> out(static_cast<size_t>(rows * sites));
    for (float& x : out)
        x = rng.uniform() < 0.5f ? -1.0f : 1.0f;
    return out;
}

// The lattices the energy tests run on: chains and squares, both boundaries, the doubled bonds of L = 2.
struct Case
{
    int dimension;
    int64_t size;
    bool periodic;
};
const Case cases[] = { { 1, 2, true }, { 1, 7, true }, { 1, 7, false }, { 2, 2, true },
                       { 2, 3, true }, { 2, 5, true }, { 2, 5, false }, { 2, 4, false } };

std::string name_of(const Case& c)
{
    return std::to_string(c.dimension) + "D L=" + std::to_string(c.size) +
           (c.periodic ? " periodic" : " open");
}

} // namespace

TEST_CASE("ising: sample_info declares the spin domain and the lattice's shape and there are no parameters",
          "[ising]")
{
    const TestIsing chain = make_ising(1, 12, true, 1, 0, 1);
    ansatz_sample_info info = chain.model.sample_info();
    CHECK(info.domain == ANSATZ_DOMAIN_SPIN);
    CHECK(info.rank == 1);
    CHECK(info.shape[0] == 12);
    const TestIsing square = make_ising(2, 5, false, 1, 0, 1);
    info = square.model.sample_info();
    CHECK(info.domain == ANSATZ_DOMAIN_SPIN);
    CHECK(info.rank == 2);
    CHECK(info.shape[0] == 5);
    CHECK(info.shape[1] == 5);
    CHECK(square.model.parameters().empty());
    // Energy, local differences, the tempered pair and the local-move session; no conditionals, so no
    // tempered_conditional.
    const uint64_t f = square.model.functions();
    CHECK(f == (ANSATZ_FN_FREE_ENERGY | ANSATZ_FN_ENERGY_DELTA | ANSATZ_FN_TEMPERED | ANSATZ_FN_LOCAL_MOVES |
                ANSATZ_FN_LOCAL_STEP));
}

TEST_CASE("ising: free_energy is beta H of brute force over the bonds and of known states", "[ising]")
{
    for (const Case& c : cases)
    {
        INFO(name_of(c));
        const TestIsing t = make_ising(c.dimension, c.size, c.periodic, 0.8, -0.35, 0.6);
        const int64_t n = t.lattice.sites(), rows = 64;
        std::vector<float> v = random_spins(rows, n, 11);
        std::vector<float> out(rows);
        ansatz_tensor vt = ansatz::make_view(v.data(), { rows, n }),
                      ot = ansatz::make_view(out.data(), { rows });
        t.model.free_energy(vt, ot);
        for (int64_t r = 0; r < rows; ++r)
            CHECK(out[r] == Approx(t.beta * brute_energy(t, v.data() + r * n)).margin(1e-5));
    }
    // All spins up on a periodic 4 x 4 lattice: 32 bonds, M = 16; the bond list itself has 2 L^2 bonds.
    const TestIsing t = make_ising(2, 4, true, 1.0, 0.5, 0.25);
    CHECK(t.lattice.bonds().size() == 32);
    std::vector<float> up(16, 1.0f), out(1);
    ansatz_tensor ut = ansatz::make_view(up.data(), { 1, 16 }), ot = ansatz::make_view(out.data(), { 1 });
    t.model.free_energy(ut, ot);
    CHECK(out[0] == Approx(0.25 * (-32 - 0.5 * 16)));
    // Open 3 x 3: 12 bonds; a checkerboard has every bond -1 and M = +1.
    const TestIsing o = make_ising(2, 3, false, 1.0, 0.0, 1.0);
    CHECK(o.lattice.bonds().size() == 12);
    std::vector<float> board = { 1, -1, 1, -1, 1, -1, 1, -1, 1 };
    out.assign(1, 0);
    ansatz_tensor bt = ansatz::make_view(board.data(), { 1, 9 });
    o.model.free_energy(bt, ot);
    CHECK(out[0] == Approx(12.0));
}

TEST_CASE("ising: energy_delta is the difference of brute-force energies for every site of random states",
          "[ising]")
{
    for (const Case& c : cases)
    {
        INFO(name_of(c));
        const TestIsing t = make_ising(c.dimension, c.size, c.periodic, -1.3, 0.7, 0.45);
        const int64_t n = t.lattice.sites(), rows = 8 * n;
        std::vector<float> v = random_spins(rows, n, 23);
        std::vector<int64_t> sites(rows);
        std::vector<float> values(rows), out(rows);
        for (int64_t r = 0; r < rows; ++r)
        {
            sites[r] = r % n;                                              // every site, several times
            values[r] = r % 5 == 4 ? v[r * n + r % n] : -v[r * n + r % n]; // a flip, or no change
        }
        const std::vector<float> before = v;
        ansatz_tensor vt = ansatz::make_view(v.data(), { rows, n }),
                      ot = ansatz::make_view(out.data(), { rows });
        t.model.energy_delta(vt, sites.data(), values.data(), ot);
        CHECK(v == before);
        for (int64_t r = 0; r < rows; ++r)
        {
            std::vector<float> changed(v.begin() + r * n, v.begin() + (r + 1) * n);
            changed[sites[r]] = values[r];
            const double expected =
                t.beta * (brute_energy(t, changed.data()) - brute_energy(t, v.data() + r * n));
            CHECK(out[r] == Approx(expected).margin(1e-5));
        }
    }
}

TEST_CASE(
    "ising: the SDK's conformance kit passes (random states and parameters and energy_delta and local moves)",
    "[ising]")
{
    for (const Case& c : { cases[1], cases[5], cases[6] })
    {
        INFO(name_of(c));
        const TestIsing t = make_ising(c.dimension, c.size, c.periodic, 1.0, 0.2, 0.44);
        const auto report = ansatz::testing::check_model(t.model, {});
        INFO(report.summary());
        CHECK(report.passed());
    }
}

TEST_CASE("ising: in a local-move session energy_delta is beta' times the plain difference through commits",
          "[ising][local]")
{
    const TestIsing t = make_ising(2, 4, true, 1.0, 0.3, 0.44);
    CHECK(t.model.has(ANSATZ_FN_LOCAL_MOVES));
    const int64_t n = 16, rows = 6;
    std::vector<float> v = random_spins(rows, n, 41);
    const std::vector<double> beta = { 1.0, 0.5, 0.0, 2.0, 0.25, 0.8 };
    ansatz_tensor vt = ansatz::make_view(v.data(), { rows, n });
    std::vector<int64_t> sites(rows);
    std::vector<float> values(rows), previous(rows), plain(rows), tempered(rows);
    std::vector<uint8_t> accepted(rows);
    ansatz_tensor pt = ansatz::make_view(plain.data(), { rows }),
                  tt = ansatz::make_view(tempered.data(), { rows });
    Rng rng(43);
    for (int round = 0; round < 200; ++round)
    {
        for (int64_t r = 0; r < rows; ++r)
        {
            sites[r] = static_cast<int64_t>(rng.below(n));
            values[r] = -v[r * n + sites[r]];
        }
        t.model.energy_delta(vt, sites.data(), values.data(), pt); // outside a session: beta' = 1
        {
            ansatz::LocalSession session(t.model, vt, beta.data());
            t.model.energy_delta(vt, sites.data(), values.data(), tt);
            for (int64_t r = 0; r < rows; ++r)
            {
                INFO("round " << round << " row " << r);
                CHECK(tempered[r] == Approx(beta[r] * plain[r]).margin(1e-6));
                accepted[r] = rng.uniform() < 0.5f;
                previous[r] = v[r * n + sites[r]];
                if (accepted[r])
                    v[r * n + sites[r]] = values[r];
            }
            session.commit(vt, sites.data(), previous.data(), accepted.data());
        }
    }
    // Misuse: another number of chains in a session, a commit outside one.
    std::vector<float> fewer(2 * n, 1.0f), out(2);
    ansatz_tensor ft = ansatz::make_view(fewer.data(), { 2, n }), ot = ansatz::make_view(out.data(), { 2 });
    ansatz::LocalSession session(t.model, vt, beta.data());
    REQUIRE_THROWS_WITH(t.model.energy_delta(ft, sites.data(), values.data(), ot),
                        "ising energy_delta: 2 chains in a local-move session begun on 6");
    session.end();
    REQUIRE_THROWS_WITH(t.model.local_commit(vt, sites.data(), previous.data(), accepted.data()),
                        "ising local_commit: no local-move session is open");
}

TEST_CASE("ising: random_state draws spins about half up with each row from its own stream", "[ising]")
{
    const TestIsing t = make_ising(2, 8, true, 1, 0, 1);
    const int64_t rows = 400, n = 64;
    std::vector<float> out(rows * n);
    ansatz_tensor ot = ansatz::make_view(out.data(), { rows, n });
    ansatz::StreamArray streams;
    Rng parent(5);
    t.model.random_state(ot, streams.split_from(parent, rows));
    double up = 0;
    for (float x : out)
    {
        REQUIRE((x == 1.0f || x == -1.0f));
        up += x > 0;
    }
    // 25600 fair coins: the fraction up is within 5 standard errors (0.5 / sqrt(25600) = 0.003125) of 1/2.
    CHECK(std::abs(up / (rows * n) - 0.5) < 5 * 0.003125);
}

TEST_CASE("ising: bad states and proposals are refused naming the row and site", "[ising]")
{
    const TestIsing t = make_ising(1, 4, true, 1, 0, 1);
    std::vector<float> v = { 1, -1, 0, 1 }, out(1);
    ansatz_tensor vt = ansatz::make_view(v.data(), { 1, 4 }), ot = ansatz::make_view(out.data(), { 1 });
    REQUIRE_THROWS_WITH(
        t.model.free_energy(vt, ot),
        "ising free_energy: row 0 has 0.000000 at site 2; an Ising state holds spins, -1 or +1");
    v[2] = 1;
    int64_t site = 4;
    float value = -1;
    REQUIRE_THROWS_WITH(t.model.energy_delta(vt, &site, &value, ot),
                        "ising energy_delta: site 4 of chain 0 is outside [0, 4)");
    site = 1;
    value = 0.5f;
    REQUIRE_THROWS_WITH(t.model.energy_delta(vt, &site, &value, ot),
                        "ising energy_delta: new value 0.500000 of chain 0 is not a spin (-1 or +1)");
}

TEST_CASE("ising: tempered_free_energy is beta' beta H - phi.s and base_log_partition is log sum_s e^(phi.s)",
          "[ising][tempered]")
{
    const TestIsing t = make_ising(2, 3, true, 0.9, 0.3, 0.7);
    const int64_t n = 9, rows = 40;
    std::vector<float> v = random_spins(rows, n, 31);
    std::vector<double> beta(rows), out(rows);
    std::vector<float> plain(rows), phi(n);
    for (int64_t r = 0; r < rows; ++r)
        beta[r] = r % 4 == 0 ? 1.0 : r % 4 == 1 ? 0.0 : 0.1 * r;
    for (int64_t i = 0; i < n; ++i)
        phi[i] = static_cast<float>(0.3 * i - 1.1);
    ansatz_tensor vt = ansatz::make_view(v.data(), { rows, n }), ot = ansatz::make_view(out.data(), { rows });
    ansatz_tensor pt = ansatz::make_view(plain.data(), { rows }), ft = ansatz::make_view(phi.data(), { n });
    // beta' = 1 without a field: the model's own free energy.
    std::vector<double> ones(rows, 1.0);
    t.model.tempered_free_energy(vt, ones.data(), nullptr, ot);
    t.model.free_energy(vt, pt);
    for (int64_t r = 0; r < rows; ++r)
        CHECK(out[r] == Approx(plain[r]).margin(1e-5));
    t.model.tempered_free_energy(vt, beta.data(), &ft, ot);
    for (int64_t r = 0; r < rows; ++r)
    {
        double field = 0;
        for (int64_t i = 0; i < n; ++i)
            field += phi[i] * v[r * n + i];
        CHECK(out[r] == Approx(beta[r] * t.beta * brute_energy(t, v.data() + r * n) - field).epsilon(1e-12));
    }
    // log Z_0,phi by enumerating the 512 states, and N log 2 without a field.
    std::vector<float> states(512 * n);
    ansatz::spin_states(n, states.data());
    std::vector<double> minus(512);
    for (int64_t k = 0; k < 512; ++k)
        for (int64_t i = 0; i < n; ++i)
            minus[k] += phi[i] * states[k * n + i];
    CHECK(t.model.base_log_partition(&ft) == Approx(ansatz::logsumexp(minus.data(), 512)).epsilon(1e-12));
    CHECK(t.model.base_log_partition(nullptr) == Approx(9 * std::log(2.0)).epsilon(1e-15));
    // A non-finite beta is refused, naming the row.
    beta[3] = NAN;
    REQUIRE_THROWS_WITH(
        t.model.tempered_free_energy(vt, beta.data(), nullptr, ot),
        "ising tempered_free_energy: the inverse temperature of row 3 is nan; it must be finite");
}

TEST_CASE(
    "ising: enumeration by the density of states equals the plugin's own energies summed over all states",
    "[ising][exact]")
{
    const TestIsing t = make_ising(2, 3, false, 1.1, 0.25, 0.8);
    const ansatz::ising::DensityOfStates dos(t.lattice);
    double total = 0;
    for (const auto& level : dos.levels())
        total += level.second;
    CHECK(total == 512);
    std::vector<float> states(512 * 9), f(512);
    ansatz::spin_states(9, states.data());
    ansatz_tensor st = ansatz::make_view(states.data(), { 512, 9 }),
                  ft = ansatz::make_view(f.data(), { 512 });
    t.model.free_energy(st, ft);
    std::vector<double> minus(512), e(512);
    for (int k = 0; k < 512; ++k)
        minus[k] = -static_cast<double>(f[k]), e[k] = f[k] / t.beta;
    const double log_z = ansatz::logsumexp(minus.data(), 512);
    const ansatz::ising::Observables o = dos.at(t.J, t.h, t.beta);
    CHECK(o.log_z == Approx(log_z).epsilon(1e-6));
    double mean = 0;
    for (int k = 0; k < 512; ++k)
        mean += std::exp(minus[k] - log_z) * e[k];
    CHECK(o.energy == Approx(mean / 9).epsilon(1e-5));
    // At beta = 0 every state weighs the same: log Z = N log 2, |m| the binomial mean.
    const ansatz::ising::Observables flat = dos.at(1.0, 0.0, 0.0);
    CHECK(flat.log_z == Approx(9 * std::log(2.0)));
    double am = 0;
    for (int up = 0; up <= 9; ++up)
        am +=
            std::tgamma(10) / (std::tgamma(up + 1) * std::tgamma(10 - up)) / 512 * std::abs(2 * up - 9) / 9.0;
    CHECK(flat.abs_magnetisation == Approx(am));
}

TEST_CASE(
    "ising: a 12-spin chain by enumeration equals the transfer matrix - periodic and open - with a field",
    "[ising][exact]")
{
    for (bool periodic : { true, false })
        for (double h : { 0.0, 0.3, -0.7 })
            for (double beta : { 0.2, 0.9, 2.5 })
            {
                INFO((periodic ? "periodic" : "open") << " h = " << h << " beta = " << beta);
                const ansatz::ising::DensityOfStates dos(Lattice{ 1, 12, periodic });
                const ansatz::ising::Observables e = dos.at(1.2, h, beta);
                const ansatz::ising::ChainObservables t =
                    ansatz::ising::transfer_matrix_chain(12, periodic, 1.2, h, beta);
                const double tol = 1e-9;
                CHECK(t.log_z == Approx(e.log_z).epsilon(tol));
                CHECK(t.log_z_resolved == Approx(e.log_z).epsilon(tol));
                CHECK(t.energy == Approx(e.energy).epsilon(tol).margin(tol));
                CHECK(t.specific_heat == Approx(e.specific_heat).epsilon(1e-7).margin(1e-9));
                CHECK(t.magnetisation == Approx(e.magnetisation).epsilon(1e-7).margin(1e-9));
                CHECK(t.signed_susceptibility == Approx(e.signed_susceptibility).epsilon(1e-7).margin(1e-9));
                CHECK(t.abs_magnetisation == Approx(e.abs_magnetisation).epsilon(tol));
                CHECK(t.m2 == Approx(e.m2).epsilon(tol));
                CHECK(t.m4 == Approx(e.m4).epsilon(tol));
                CHECK(t.susceptibility == Approx(e.susceptibility).epsilon(1e-7).margin(1e-9));
                CHECK(t.binder == Approx(e.binder).epsilon(1e-7).margin(1e-9));
            }
}

TEST_CASE("ising: the transfer matrix of long chains tends to its largest eigenvalue's closed forms",
          "[ising][exact]")
{
    for (double beta : { 0.3, 1.0, 1.7 })
    {
        INFO("beta = " << beta);
        const ansatz::ising::ChainLimit l = ansatz::ising::transfer_matrix_limit(1.0, 0.0, beta);
        CHECK(l.energy == Approx(-std::tanh(beta)).epsilon(1e-12));
        CHECK(l.specific_heat == Approx(std::pow(beta / std::cosh(beta), 2)).epsilon(1e-10));
        CHECK(l.susceptibility == Approx(beta * std::exp(2 * beta)).epsilon(1e-10));
        CHECK(l.magnetisation == Approx(0).margin(1e-12));
        CHECK(l.free_energy == Approx(-std::log(2 * std::cosh(beta)) / beta).epsilon(1e-12));
        // A periodic chain of 2000 spins: the second eigenvalue's share is (tanh beta)^2000, nothing.
        const ansatz::ising::ChainObservables c =
            ansatz::ising::transfer_matrix_chain(2000, true, 1.0, 0.0, beta);
        CHECK(c.energy == Approx(l.energy).epsilon(1e-9));
        CHECK(c.specific_heat == Approx(l.specific_heat).epsilon(1e-6));
        CHECK(c.signed_susceptibility == Approx(l.susceptibility).epsilon(1e-6));
    }
    // With a field: m = sinh(beta h) / sqrt(sinh^2(beta h) + e^(-4 beta J)).
    const double b = 0.8, h = 0.4;
    const ansatz::ising::ChainLimit l = ansatz::ising::transfer_matrix_limit(1.0, h, b);
    CHECK(l.magnetisation ==
          Approx(std::sinh(b * h) / std::sqrt(std::pow(std::sinh(b * h), 2) + std::exp(-4 * b)))
              .epsilon(1e-12));
}

TEST_CASE("ising: the exact sampler draws states with the exact energy distribution",
          "[ising][exact][statistical]")
{
    // 3 x 3 periodic at beta = 0.4: 100000 samples (seed 77), the energy histogram against exact
    // probabilities, chi-square below its 1 - 1e-4 quantile.
    const Lattice lattice{ 2, 3, true };
    const ansatz::ising::ExactSampler sampler(lattice, 1.0, 0.0, 0.4);
    const auto levels = ansatz::ising::DensityOfStates(lattice).energy_distribution(1.0, 0.0, 0.4);
    const auto bonds = lattice.bonds();
    std::vector<int64_t> counts(levels.size());
    Rng rng(77);
    const int64_t n = 100000;
    for (int64_t k = 0; k < n; ++k)
    {
        const auto [b, m] = ansatz::ising::bonds_and_magnetisation(bonds, 9, sampler.draw_state(rng));
        const double e = -1.0 * b;
        size_t at = 0;
        while (levels[at].first != e)
            ++at;
        ++counts[at];
    }
    double chi = 0;
    for (size_t k = 0; k < levels.size(); ++k)
    {
        const double expected = n * levels[k].second;
        chi += (counts[k] - expected) * (counts[k] - expected) / expected;
    }
    // 4 energy levels (E = -18, -6, 2, 6 and so on: every level here expects > 5), 1 - 1e-4 quantile of
    // chi-square with levels - 1 degrees of freedom, Wilson-Hilferty.
    const double k = static_cast<double>(levels.size() - 1);
    const double threshold = k * std::pow(1 - 2 / (9 * k) + 3.719 * std::sqrt(2 / (9 * k)), 3);
    for (const auto& level : levels)
        REQUIRE(n * level.second > 5);
    CHECK(chi < threshold);
}

// ---- bad keys, through the binary: one sentence, exit status 2

namespace
{

struct Outcome
{
    int status;
    std::string err;
};

// Validates (or runs) a pipeline whose ising component has `keys`; an evaluate stage measures its free
// energy on a small IDX file (16 values per sample).
Outcome ising_pipeline(const std::string& name, const std::string& keys, bool run = false)
{
    const fs::path dir = ansatz::test::fresh_folder("ising/" + name);
    ansatz::test::write_text(dir / "pipeline.yaml",
                             "pipeline: ising\nseed: 1\ncomponents:\n"
                             "  data:  {plugin: idx, images: images.idx, binarize: 0.5}\n"
                             "  ising: {plugin: ising" +
                                 keys +
                                 "}\n"
                                 "  mean_f: {plugin: free_energy}\n"
                                 "stages:\n"
                                 "  - evaluate: {model: ising, data: data, evaluators: [mean_f]}\n");
    // 4 images of 4 x 4 bytes.
    std::string idx("\x00\x00\x08\x03\x00\x00\x00\x04\x00\x00\x00\x04\x00\x00\x00\x04", 16);
    for (int i = 0; i < 64; ++i)
        idx += static_cast<char>(i * 37 % 256);
    ansatz::test::write_text(dir / "images.idx", idx);
    const ansatz::test::CliResult r =
        ansatz::test::run_ansatz(run ? std::vector<std::string>{ "run", "pipeline.yaml", "--runs", "runs" }
                                     : std::vector<std::string>{ "validate", "pipeline.yaml" },
                                 dir);
    return { r.status, r.err };
}

const std::string plugin_file = std::string(ANSATZ_TEST_PLUGIN_DIR) + "/libansatz_ising.so";

} // namespace

TEST_CASE("bad input: ising keys out of range - a bad boundary - a lattice too large",
          "[ising][cli][bad-input]")
{
    const std::string where = "\n  while validating component 'ising' (plugin file " + plugin_file + ")\n";
    Outcome o = ising_pipeline("dimension", ", dimension: 3, size: 4");
    CHECK(o.status == 2);
    CHECK(o.err ==
          "pipeline.yaml:5:37: key 'dimension' of model 'ising' is 3, out of range: it must be [1, 2]" +
              where);
    o = ising_pipeline("size", ", size: 1");
    CHECK(o.status == 2);
    CHECK(o.err ==
          "pipeline.yaml:5:32: key 'size' of model 'ising' is 1, out of range: it must be >= 2" + where);
    o = ising_pipeline("beta", ", size: 4, beta: 0");
    CHECK(o.status == 2);
    CHECK(o.err ==
          "pipeline.yaml:5:41: key 'beta' of model 'ising' is 0, out of range: it must be > 0" + where);
    o = ising_pipeline("beta_negative", ", size: 4, beta: -0.5");
    CHECK(o.status == 2);
    CHECK(o.err ==
          "pipeline.yaml:5:41: key 'beta' of model 'ising' is -0.5, out of range: it must be > 0" + where);
    o = ising_pipeline("boundary", ", size: 4, boundary: periodik");
    CHECK(o.status == 2);
    CHECK(o.err == "pipeline.yaml:5:45: key 'boundary' of model 'ising' is 'periodik', which is not one of: "
                   "periodic,open (did you mean 'periodic'?)" +
                       where);
    o = ising_pipeline("J_type", ", size: 4, J: strong");
    CHECK(o.status == 2);
    CHECK(o.err == "pipeline.yaml:5:38: key 'J' of model 'ising' expects a float, got 'strong'" + where);
    o = ising_pipeline("too_large", ", size: 50000", true);
    CHECK(o.status == 2);
    CHECK(o.err == "component 'ising' (model 'ising' from " + plugin_file +
                       "): size: 50000 with dimension: 2 makes 2500000000 spins, more than the 2147483647 "
                       "values a sample may have\n");
}

TEST_CASE("bad input: an ising model evaluated on data that are not spins names the row and site",
          "[ising][cli][bad-input]")
{
    // The run folder is made before the stage runs: the message is the last line.
    const Outcome o = ising_pipeline("not_spins", ", size: 4", true);
    CHECK(o.status == 2);
    const std::string expected =
        "component 'mean_f' (evaluator 'free_energy' from " + std::string(ANSATZ_TEST_PLUGIN_DIR) +
        "/libansatz_free_energy.so): ising free_energy: row 0 has 0.000000 at site 0; an "
        "Ising state holds spins, -1 or +1\n";
    REQUIRE(o.err.size() >= expected.size());
    CHECK(o.err.substr(o.err.size() - expected.size()) == expected);
}

TEST_CASE(
    "ising: a sample stage with the frozen ABI 2.0 Metropolis sampler reproduces the exact energy histogram "
    "of the 3 x 3 torus (seed 33 - 20000 chains x 200 sweeps - chi-square below its 1 - 1e-4 quantile)",
    "[ising][cli][statistical]")
{
    // A model without parameters in a sample stage: the chains start from random_state, the states are
    // written as .npy and, for the 2-D shape, as a picture; metrics.csv has the mean free energy.
    const fs::path dir = ansatz::test::fresh_folder("ising/sample_stage");
    ansatz::test::write_text(dir / "pipeline.yaml",
                             "pipeline: ising-sample\nseed: 33\nthreads: 1\ncomponents:\n"
                             "  ising: {plugin: ising, size: 3, beta: 0.4407}\n"
                             "  mh: {plugin: abi20_metropolis}\n"
                             "stages:\n  - sample: {model: ising, sampler: mh, count: 20000, steps: 200}\n");
    const ansatz::test::CliResult r = ansatz::test::run_ansatz(
        { "run", "pipeline.yaml", "--runs", "runs", "--plugin-path", ANSATZ_TEST_ABI20_DIR }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    std::string folder = r.out;
    while (!folder.empty() && folder.back() == '\n')
        folder.pop_back();
    const fs::path run = dir / folder;
    CHECK(fs::exists(run / "stage1_samples.png"));
    const std::string metrics = ansatz::test::read_text(run / "metrics.csv");
    CHECK(metrics.find("mean_free_energy") != std::string::npos);
    CHECK(metrics.find("acceptance_rate") != std::string::npos);

    ansatz::engine::NpyArray samples = ansatz::engine::read_npy(run / "stage1_samples.npy");
    REQUIRE(samples.shape == std::vector<int64_t>{ 20000, 3, 3 });
    const float* s = ansatz::f32(samples.view());
    const Lattice lattice{ 2, 3, true };
    const auto levels = ansatz::ising::DensityOfStates(lattice).energy_distribution(1.0, 0.0, 0.4407);
    std::vector<double> p;
    for (const auto& level : levels)
        p.push_back(level.second);
    std::vector<int64_t> counts(levels.size(), 0);
    for (int64_t c = 0; c < 20000; ++c)
    {
        double bonds = 0;
        for (const auto& [i, j] : lattice.bonds())
            bonds += s[c * 9 + i] * s[c * 9 + j];
        size_t at = 0;
        while (at < levels.size() && levels[at].first != -bonds)
            ++at;
        REQUIRE(at < levels.size());
        ++counts[at];
    }
    const ansatz::test::ChiSquare chi = ansatz::test::chi_square(p, counts, 20000);
    INFO("chi-square " << chi.statistic << " over " << chi.cells << " cells, threshold " << chi.threshold);
    CHECK(chi.statistic < chi.threshold);
}

TEST_CASE(
    "ising: local_step (abi 2.4) gives the flags and states of energy_delta + local_commit bit for bit - "
    "on both boundaries and at four inverse temperatures",
    "[ising][local]")
{
    for (const bool periodic : { true, false })
    {
        INFO((periodic ? "periodic" : "open"));
        // J = 1, h = 0.3, beta = 0.44: both signs of every change occur, so both kinds of outcome do.
        const TestIsing t = make_ising(2, 4, periodic, 1.0, 0.3, 0.44);
        CHECK(t.model.has(ANSATZ_FN_LOCAL_STEP));
        ansatz::testing::ConformanceOptions options;
        options.local_rows = 32;
        options.local_rounds = 200;
        const ansatz::testing::CheckResult r = ansatz::testing::check_local_step(t.model, options);
        INFO(r.detail);
        CHECK(r.outcome == ansatz::testing::Outcome::passed);
    }
}

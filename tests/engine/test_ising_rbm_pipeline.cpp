// pipelines/ising-rbm.yaml: the file as shipped validates, and the same file, shrunk through its
// anchors with --set (a 4 x 4 lattice, few rows, 2 epochs, short chains), runs its whole chain of
// stages in seconds: generate (Metropolis-Hastings at eight temperatures) -> npy with temperature and
// spins_to_bits (majority: down at T = 1.5 and 1.8) -> one RBM trained per temperature -> Gibbs samples of
// each -> ising_observables on MC rows and RBM samples with x: temperature and series MC/RBM ->
// comparison.csv and one plot per observable in report.html.
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <sstream>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;

namespace
{

const fs::path shipped = fs::path(ANSATZ_TEST_SOURCE_DIR) / "pipelines" / "ising-rbm.yaml";

const std::vector<std::string> observables = { "energy", "abs_magnetisation", "specific_heat",
                                               "susceptibility", "binder_cumulant" };
const std::vector<double> temperatures = { 1.5, 1.8, 2.1, 2.269, 2.5, 2.8, 3.1, 3.5 };

// A temperature as a key: comparison.csv writes 17 digits (2.2690000000000001).
long key(double t)
{
    return std::lround(t * 1000);
}

std::vector<std::map<std::string, std::string>> csv(const std::string& text)
{
    std::istringstream in(text);
    std::string line;
    std::vector<std::string> header;
    std::vector<std::map<std::string, std::string>> rows;
    while (std::getline(in, line))
    {
        std::vector<std::string> cells;
        std::stringstream cs(line);
        for (std::string c; std::getline(cs, c, ',');)
            cells.push_back(c);
        if (header.empty())
        {
            header = cells;
            continue;
        }
        std::map<std::string, std::string> row;
        for (size_t i = 0; i < header.size(); ++i)
            row[header[i]] = i < cells.size() ? cells[i] : "";
        rows.push_back(row);
    }
    return rows;
}

} // namespace

TEST_CASE("pipelines/ising-rbm.yaml validates as shipped", "[ising-rbm][pipelines]")
{
    const fs::path dir = ansatz::test::fresh_folder("ising_rbm/validate");
    const auto r = run_ansatz({ "validate", shipped.string() }, dir, 60);
    INFO(r.err);
    CHECK(r.status == 0);
    // 1 generate, 8 x (train, sample), 8 x 2 evaluate stages.
    CHECK(r.out.find("valid pipeline 'ising-rbm'") != std::string::npos);
    CHECK(r.out.find("33 stages") != std::string::npos);
}

TEST_CASE("pipelines/ising-rbm.yaml shrunk to a 4 x 4 lattice runs its chain of stages end to end",
          "[ising-rbm][pipelines]")
{
    const fs::path dir = ansatz::test::fresh_folder("ising_rbm/tiny");
    // The anchors of the file: &L (the lattice, also the evaluators'), &chains, &burn_in, &samples of
    // the generate stage, &epochs of the CD-10 train stages (stage 15, T = 3.5, has epochs of its own,
    // set here too), &count and &steps of every sample stage.
    const auto r = run_ansatz({ "run",    shipped.string(),
                                "--runs", (dir / "runs").string(),
                                "--set",  "components.ising.size=4",
                                "--set",  "stages.0.generate.chains=20",
                                "--set",  "stages.0.generate.burn_in=200",
                                "--set",  "stages.0.generate.samples=100",
                                "--set",  "stages.1.train.epochs=2",
                                "--set",  "stages.15.train.epochs=2",
                                "--set",  "stages.2.sample.count=400",
                                "--set",  "stages.2.sample.steps=20" },
                              dir, 300);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path run = *fs::directory_iterator(dir / "runs" / "ising-rbm");
    CHECK(fs::exists(run / "finished"));
    // MC rows per temperature: 20 chains x 100 samples, written once for all eight temperatures.
    const auto rows = csv(read_text(run / "comparison.csv"));
    REQUIRE(rows.size() == 16);
    std::map<std::pair<std::string, long>, std::map<std::string, std::string>> at;
    for (const auto& row : rows)
        at[{ row.at("series"), key(std::stod(row.at("temperature"))) }] = row;
    for (const std::string& series : { "MC", "RBM" })
        for (const double t : temperatures)
        {
            INFO(series << " at T = " << t);
            REQUIRE(at.count({ series, key(t) }) == 1);
            for (const std::string& o : observables)
            {
                CHECK(std::isfinite(std::stod(at[{ series, key(t) }].at(o))));
                CHECK(std::stod(at[{ series, key(t) }].at(o + "_stderr")) >= 0);
            }
        }
    // The chain reads the right rows: the MC energy and |m| at T = 2.269 are those of the exact 4 x 4
    // torus (plugins/models/ising/README.md: -1.565769, 0.843920) within 3 of their jackknife standard
    // errors (seed 2026 of the file; 2000 rows of 20 chains, 20 blocks).
    const auto& mc = at[{ "MC", key(2.269) }];
    CHECK(std::abs(std::stod(mc.at("energy")) + 1.565769) < 3 * std::stod(mc.at("energy_stderr")));
    CHECK(std::abs(std::stod(mc.at("abs_magnetisation")) - 0.843920) <
          3 * std::stod(mc.at("abs_magnetisation_stderr")));
    // At T = 1.5 the rows go through majority: down (each row flipped to mostly -1 spins) before they
    // are bits: flipping whole rows keeps every observable, so the exact torus's values hold there too
    // (-1.950643, 0.986173; within 3 jackknife SE, seed 2026 of the file, 2000 rows of 20 chains, 20
    // blocks; a row flipped in part would break up its ordered state and fail).
    const auto& low = at[{ "MC", key(1.5) }];
    CHECK(std::abs(std::stod(low.at("energy")) + 1.950643) < 3 * std::stod(low.at("energy_stderr")));
    CHECK(std::abs(std::stod(low.at("abs_magnetisation")) - 0.986173) <
          3 * std::stod(low.at("abs_magnetisation_stderr")));
    // A plot per observable against the temperature, MC and RBM lines, in report.html.
    const std::string html = read_text(run / "report.html");
    CHECK(html.find("id=\"comparison\"") != std::string::npos);
    for (const std::string& o : observables)
    {
        INFO(o);
        REQUIRE(fs::exists(run / "plots" / ("comparison_" + o + ".svg")));
        const std::string svg = read_text(run / "plots" / ("comparison_" + o + ".svg"));
        CHECK(svg.find(o + " against temperature") != std::string::npos);
        CHECK(svg.find("MC") != std::string::npos);
        CHECK(svg.find("RBM") != std::string::npos);
    }
}

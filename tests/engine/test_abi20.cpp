// A plugin built against the frozen ABI 2.0 headers (tests/fixtures/abi-2.0) still loads and runs:
// the registry reports ABI 2.0, a pipeline with only a `sample` stage runs its Ising model with its
// Metropolis sampler through the real binary and reproduces the exact Boltzmann distribution, the
// conformance kit passes on its model, and the PNG of 2-D spin samples maps -1/+1 to black/white.
#include "ansatz/testing/conformance.hpp"
#include "loading/instance.hpp"
#include "loading/registry.hpp"
#include "pipeline/config_values.hpp"
#include "pipeline/keys.hpp"
#include "support/cli.hpp"
#include "support/plugins.hpp"
#include "support/statistics.hpp"

#include <catch2/catch.hpp>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

using ansatz::test::ChiSquare;

const std::string abi20_dir = ANSATZ_TEST_ABI20_DIR;

constexpr int kSpins = 6;
constexpr int kStates = 1 << kSpins;

// The couplings J_ij (i < j, row by row) and fields h_i of the test model: mixed signs, |J| <= 0.6.
const std::vector<double> kCouplings = { 0.5, -0.3, 0.2, 0.0,  -0.4, 0.6,   -0.2, 0.3,
                                         0.1, -0.5, 0.4, -0.1, 0.25, -0.35, 0.15 };
const std::vector<double> kFields = { 0.3, -0.2, 0.1, -0.4, 0.2, 0.0 };

std::string yaml_list(const std::vector<double>& values)
{
    std::string s = "[";
    for (size_t i = 0; i < values.size(); ++i)
    {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%s%g", i ? ", " : "", values[i]);
        s += buffer;
    }
    return s + "]";
}

std::string model_yaml(const std::string& spins)
{
    return "{plugin: abi20_ising, spins: " + spins + ", couplings: " + yaml_list(kCouplings) +
           ", fields: " + yaml_list(kFields) + "}";
}

// E(s) for state k (spin i = +1 when bit i is set), with the float32 values the model holds.
double energy(int k, double beta = 1.0)
{
    const auto spin = [&](int i) { return ((k >> i) & 1) ? 1.0 : -1.0; };
    double e = 0;
    int pair = 0;
    for (int i = 0; i < kSpins; ++i)
    {
        e -= static_cast<float>(kFields[i]) * spin(i);
        for (int j = i + 1; j < kSpins; ++j, ++pair)
            e -= static_cast<float>(kCouplings[pair]) * spin(i) * spin(j);
    }
    return beta * e;
}

// p(s) = exp(-beta E(s)) / Z over the 64 states.
std::vector<double> boltzmann(double beta)
{
    std::vector<double> p(kStates);
    for (int k = 0; k < kStates; ++k)
        p[k] = std::exp(-energy(k, beta));
    const double z = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p)
        x /= z;
    return p;
}

// Total variation between p and the law after `sweeps` sweeps (D proposals each) of exact random-scan
// single-site Metropolis from the uniform start.
double tv_after_sweeps(const std::vector<double>& p, int sweeps)
{
    std::vector<double> dist(kStates, 1.0 / kStates);
    for (int t = 0; t < sweeps * kSpins; ++t)
    {
        std::vector<double> next(kStates, 0.0);
        for (int k = 0; k < kStates; ++k)
            for (int i = 0; i < kSpins; ++i)
            {
                const int flipped = k ^ (1 << i);
                const double accept = std::min(1.0, std::exp(-(energy(flipped) - energy(k))));
                next[flipped] += dist[k] / kSpins * accept;
                next[k] += dist[k] / kSpins * (1 - accept);
            }
        dist = next;
    }
    double tv = 0;
    for (int k = 0; k < kStates; ++k)
        tv += 0.5 * std::abs(dist[k] - p[k]);
    return tv;
}

ChiSquare chi_square(const std::vector<double>& p, const std::vector<int64_t>& counts, int64_t n)
{
    const ChiSquare out = ansatz::test::chi_square(p, counts, n);
    // The cells come in increasing order and the largest expect far more than 5: no pooled remainder.
    REQUIRE_FALSE(out.pooled_remainder);
    return out;
}

// A float32 .npy file (format 1.0, little-endian, C order), parsed here rather than by the engine.
struct Npy
{
    std::vector<int64_t> shape;
    std::vector<float> values;
};

Npy parse_npy(const std::string& bytes)
{
    REQUIRE(bytes.size() >= 10);
    REQUIRE(bytes.compare(0, 6, "\x93NUMPY") == 0);
    REQUIRE(bytes[6] == 1);
    const size_t header_length =
        static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    const std::string header = bytes.substr(10, header_length);
    INFO(header);
    REQUIRE(header.find("'descr': '<f4'") != std::string::npos);
    REQUIRE(header.find("'fortran_order': False") != std::string::npos);
    const size_t open = header.find("'shape': (");
    REQUIRE(open != std::string::npos);
    const size_t close = header.find(')', open);
    Npy out;
    std::string dims = header.substr(open + 10, close - open - 10);
    for (size_t at = 0; at < dims.size();)
    {
        const size_t comma = dims.find(',', at);
        const std::string item = dims.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        if (item.find_first_not_of(' ') != std::string::npos)
            out.shape.push_back(std::stoll(item));
        if (comma == std::string::npos)
            break;
        at = comma + 1;
    }
    const int64_t count =
        std::accumulate(out.shape.begin(), out.shape.end(), int64_t(1), std::multiplies<>());
    const size_t data = 10 + header_length;
    REQUIRE(bytes.size() == data + static_cast<size_t>(count) * 4);
    out.values.resize(static_cast<size_t>(count));
    std::memcpy(out.values.data(), bytes.data() + data, bytes.size() - data);
    return out;
}

// An 8-bit greyscale PNG without interlace, as the engine writes it (filter type 0 on every row).
struct Png
{
    uint32_t width = 0, height = 0;
    std::vector<uint8_t> pixels;
};

uint32_t big_endian(const std::string& s, size_t at)
{
    return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
           (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

Png decode_png(const std::string& bytes)
{
    REQUIRE(bytes.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0);
    Png png;
    std::string idat;
    for (size_t at = 8; at + 8 <= bytes.size();)
    {
        const uint32_t length = big_endian(bytes, at);
        const std::string type = bytes.substr(at + 4, 4);
        const std::string body = bytes.substr(at + 8, length);
        if (type == "IHDR")
        {
            png.width = big_endian(body, 0);
            png.height = big_endian(body, 4);
            REQUIRE(body[8] == 8);  // bit depth
            REQUIRE(body[9] == 0);  // greyscale
            REQUIRE(body[12] == 0); // no interlace
        }
        else if (type == "IDAT")
            idat += body;
        at += 12 + length;
    }
    std::vector<uint8_t> raw(static_cast<size_t>(png.height) * (png.width + 1));
    uLongf size = static_cast<uLongf>(raw.size());
    REQUIRE(uncompress(raw.data(), &size, reinterpret_cast<const Bytef*>(idat.data()),
                       static_cast<uLong>(idat.size())) == Z_OK);
    REQUIRE(size == raw.size());
    for (uint32_t y = 0; y < png.height; ++y)
    {
        REQUIRE(raw[y * (png.width + 1)] == 0); // filter: none
        png.pixels.insert(png.pixels.end(), raw.begin() + y * (png.width + 1) + 1,
                          raw.begin() + (y + 1) * (png.width + 1));
    }
    return png;
}

// Runs `pipeline` with the frozen fixture's folder on the plugin path; returns the run folder.
fs::path run_pipeline(const std::string& name, const std::string& pipeline)
{
    const fs::path dir = ansatz::test::fresh_folder("abi20/" + name);
    write_text(dir / "pipeline.yaml", pipeline);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs", "--plugin-path", abi20_dir }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    std::string folder = r.out;
    while (!folder.empty() && folder.back() == '\n')
        folder.pop_back();
    return dir / folder;
}

} // namespace

TEST_CASE("abi 2.0: the engine loads a plugin built against the frozen ABI 2.0 headers and reports ABI 2.0",
          "[abi20][registry]")
{
    ansatz::engine::Registry r;
    r.scan({ abi20_dir });
    CHECK(r.refusals().empty());
    const ansatz::engine::PluginComponent* model = r.find("abi20_ising", ANSATZ_KIND_MODEL);
    const ansatz::engine::PluginComponent* sampler = r.find("abi20_metropolis", ANSATZ_KIND_SAMPLER);
    REQUIRE(model != nullptr);
    REQUIRE(sampler != nullptr);
    CHECK(model->plugin->abi_major == 2);
    CHECK(model->plugin->abi_minor == 0);
    CHECK(model->file == fs::path(abi20_dir) / "libansatz_abi20_fixture.so");
    CHECK(sampler->desc->needs == ANSATZ_FN_ENERGY_DELTA);

    const auto cli = run_ansatz({ "plugins", "--plugin-path", abi20_dir, "--verbose" }, ANSATZ_TEST_WORK_DIR);
    INFO(cli.out << cli.err);
    CHECK(cli.status == 0);
    CHECK(cli.err.empty());
    CHECK(cli.out.find("model      abi20_ising              2.0.0     " + abi20_dir +
                       "/libansatz_abi20_fixture.so\n") != std::string::npos);
    CHECK(cli.out.find("sampler    abi20_metropolis         2.0.0     " + abi20_dir +
                       "/libansatz_abi20_fixture.so\n") != std::string::npos);
    CHECK(cli.out.find("; ABI 2.0; MIT; build: ") != std::string::npos);
    CHECK(cli.out.find("frozen ABI 2.0 headers") != std::string::npos);
}

TEST_CASE(
    "abi 2.0: a sample-only pipeline of the frozen Ising model and Metropolis sampler reproduces the "
    "exact Boltzmann distribution (seed 2020, 40000 chains x 100 sweeps, chi-square over 64 states pooled "
    "to expected >= 5, reject above the 1 - 1e-4 quantile)",
    "[abi20][cli][statistical]")
{
    const int64_t chains = 40000;
    const int sweeps = 100;
    const std::vector<double> p = boltzmann(1.0);
    // The chains have mixed: after 100 exact sweeps from the uniform start the law is within 1e-6 in
    // total variation of p, far below the test's resolution (~sqrt(64 / N) = 0.04).
    const double tv = tv_after_sweeps(p, sweeps);
    INFO("exact total variation after " << sweeps << " sweeps: " << tv);
    REQUIRE(tv < 1e-6);

    const fs::path run =
        run_pipeline("chi_square", "pipeline: abi20\nseed: 2020\nthreads: 1\ncomponents:\n"
                                   "  ising: " +
                                       model_yaml("[6]") +
                                       "\n"
                                       "  mh: {plugin: abi20_metropolis}\n"
                                       "stages:\n  - sample: {model: ising, sampler: mh, count: " +
                                       std::to_string(chains) + ", steps: " + std::to_string(sweeps) + "}\n");
    const Npy samples = parse_npy(read_text(run / "stage1_samples.npy"));
    REQUIRE(samples.shape == std::vector<int64_t>{ chains, kSpins });
    CHECK_FALSE(fs::exists(run / "stage1_samples.png")); // a 1-D sample shape is no picture
    CHECK(read_text(run / "metrics.csv").find("acceptance_rate") != std::string::npos);
    std::vector<int64_t> counts(kStates, 0);
    for (int64_t c = 0; c < chains; ++c)
    {
        int k = 0;
        for (int i = 0; i < kSpins; ++i)
        {
            const float s = samples.values[static_cast<size_t>(c * kSpins + i)];
            REQUIRE((s == -1.0f || s == 1.0f));
            k |= (s == 1.0f) << i;
        }
        ++counts[k];
    }
    const ChiSquare good = chi_square(p, counts, chains);
    INFO("chi-square " << good.statistic << " over " << good.cells << " cells, threshold " << good.threshold);
    WARN("abi20 metropolis chi-square " << good.statistic << " over " << good.cells << " cells, threshold "
                                        << good.threshold);
    CHECK(good.statistic < good.threshold);

    // Power: the same samples against the exact distribution at another temperature (beta = 0.8) are
    // rejected.
    const ChiSquare hot = chi_square(boltzmann(0.8), counts, chains);
    WARN("against beta = 0.8: chi-square " << hot.statistic << " over " << hot.cells << " cells, threshold "
                                           << hot.threshold);
    CHECK(hot.statistic > hot.threshold);
}

TEST_CASE("abi 2.0: the conformance kit passes on the frozen Ising model (conditionals skipped: it has none)",
          "[abi20][conformance]")
{
    ansatz::engine::Registry r;
    r.scan({ abi20_dir });
    const ansatz::engine::PluginComponent* c = r.find("abi20_ising");
    REQUIRE(c != nullptr);
    std::string yaml = model_yaml("[2, 3]");
    yaml.replace(yaml.find("plugin: abi20_ising, "), std::strlen("plugin: abi20_ising, "), "");
    ansatz::engine::ConfigValues config = ansatz::engine::config_from_yaml(*c->desc, yaml);
    ansatz::engine::Instance inst(*c, config.c("ising"), ansatz::test::test_host().table());
    const ansatz::ModelRef model(inst.model());
    const ansatz_sample_info info = model.sample_info();
    REQUIRE(info.domain == ANSATZ_DOMAIN_SPIN);
    REQUIRE(info.rank == 2);
    ansatz::Rng rng(1);
    model.setup({ info.shape[0], info.shape[1] }, rng);
    const ansatz::testing::ConformanceReport report = ansatz::testing::check_model(model, {});
    INFO(report.summary());
    CHECK(report.passed());
    CHECK(report.skipped() == std::vector<std::string>{ "conditionals_exact", "conditional_sampling" });
    CHECK(report.outcome("energy_delta") == ansatz::testing::Outcome::passed);
    CHECK(report.outcome("free_energy_grad") == ansatz::testing::Outcome::passed);
}

TEST_CASE("abi 2.0: the sample stage draws a PNG of 2-D spin samples with -1 black and +1 white",
          "[abi20][cli]")
{
    const fs::path run =
        run_pipeline("png", "pipeline: abi20-png\nseed: 7\nthreads: 1\ncomponents:\n"
                            "  ising: " +
                                model_yaml("[2, 3]") +
                                "\n"
                                "  mh: {plugin: abi20_metropolis}\n"
                                "stages:\n  - sample: {model: ising, sampler: mh, count: 4, steps: 10}\n");
    const Npy samples = parse_npy(read_text(run / "stage1_samples.npy"));
    REQUIRE(samples.shape == std::vector<int64_t>{ 4, 2, 3 });
    REQUIRE(fs::exists(run / "stage1_samples.png"));
    const Png png = decode_png(read_text(run / "stage1_samples.png"));
    // Every pixel is black (-1), white (+1) or the grid's grey; each spin is a square of scale^2
    // pixels, so black : white = (-1 count) : (+1 count) exactly.
    int64_t black = 0, white = 0, grey = 0, minus = 0, plus = 0;
    for (uint8_t x : png.pixels)
    {
        REQUIRE((x == 0 || x == 255 || x == 128));
        (x == 0 ? black : x == 255 ? white : grey) += 1;
    }
    for (float s : samples.values)
        (s < 0 ? minus : plus) += 1;
    REQUIRE(black + white > 0);
    const int64_t per_spin = (black + white) / 24;
    CHECK(black == minus * per_spin);
    CHECK(white == plus * per_spin);
    // One pixel: the first spin of the first sample, at grid cell (1, 1) of a grid that is
    // 2 x (3 + 1) + 1 = 9 cells wide (nearest-neighbour upscaled by width / 9).
    REQUIRE(png.width % 9 == 0);
    const uint32_t scale = png.width / 9;
    CHECK(png.height == 7 * scale);
    CHECK(int64_t(scale) * scale == per_spin);
    const uint8_t first = png.pixels[static_cast<size_t>(scale + scale / 2) * png.width + scale + scale / 2];
    CHECK(first == (samples.values[0] < 0 ? 0 : 255));
    CHECK(png.pixels[0] == 128);
}

// The rbm's local-session kernels (plugins/models/rbm/session_kernels.hpp) compiled for every instruction
// set give the same bits: each kernel, and local_step's fused rounds (flip_group) through thousands of
// rounds on the same chains, for hidden sizes with and without a partial lane block, aligned and
// misaligned buffers, groups of 1 to 4 rows, rows in the float lanes, in the double lanes and outside
// flip_group (pending: their rounds left to the caller, and new values that are not flips). The
// widest set this CPU runs is the one the plugin uses; the others are what other CPUs compute. The
// rbm's own tests (test_rbm_local.cpp) check what the kernels compute.
#include "models/rbm/session_kernels.hpp"

#include <ansatz/random.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace
{

using rbm::AlignedFloats;
using rbm::FlipRun;
using rbm::Isa;
using rbm::SessionKernels;

const char* isa_name(Isa isa)
{
    return isa == Isa::base ? "base" : isa == Isa::avx2 ? "avx2" : "avx512";
}

// The instruction sets this CPU runs besides the baseline (WARN for the others: nothing is compared for
// them here).
std::vector<Isa> wider_sets()
{
    std::vector<Isa> out;
    for (const Isa isa : { Isa::avx2, Isa::avx512 })
        if (rbm::session_kernels_for(isa))
            out.push_back(isa);
        else
            WARN("this CPU cannot run the " << isa_name(isa)
                                            << " session kernels: they are not compared here");
    return out;
}

bool same_bits(const float* a, const float* b, int64_t n)
{
    return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

bool same_bits(double a, double b)
{
    return std::memcmp(&a, &b, sizeof a) == 0;
}

// Chains, tables and state for flip_group: `rows` rows of d binary units and h hidden units, tables
// e^(+-beta W) with W ~ N(0, scale^2), r = e^q with q ~ N(0, 1), starting from `offset` floats past a
// 64-byte boundary (0: aligned as the session allocates them).
struct Rounds
{
    int64_t rows, d, h, rounds;
    AlignedFloats up, down, r;
    std::vector<float> v, a, uniforms;
    std::vector<float> odd_values; // new values that are not flips (vary_bounds gives them to row 4)
    std::vector<double> row_lane, row_max;
    std::vector<int64_t> sites;
    std::vector<uint8_t> accepted;
    std::vector<FlipRun> runs;

    Rounds(int64_t rows_, int64_t d_, int64_t h_, int64_t rounds_, int64_t offset, double scale,
           uint64_t seed)
        : rows(rows_), d(d_), h(h_), rounds(rounds_)
    {
        ansatz::Rng rng(seed);
        up.resize(static_cast<size_t>(d * h + offset));
        down.resize(up.size());
        r.resize(static_cast<size_t>(2 * rows * h + offset));
        for (int64_t k = 0; k < d * h; ++k)
        {
            up[static_cast<size_t>(offset + k)] = std::exp(static_cast<float>(scale * rng.normal()));
            down[static_cast<size_t>(offset + k)] = 1.0f / up[static_cast<size_t>(offset + k)];
        }
        for (float& x : r)
            x = std::exp(static_cast<float>(rng.normal()));
        v.resize(static_cast<size_t>(rows * d));
        for (float& x : v)
            x = rng.uniform() < 0.5f ? 1.0f : 0.0f;
        a.resize(static_cast<size_t>(d));
        for (float& x : a)
            x = static_cast<float>(0.1 * rng.normal());
        row_lane.resize(static_cast<size_t>(d));
        row_max.resize(static_cast<size_t>(d));
        for (int64_t i = 0; i < d; ++i)
        {
            row_max[static_cast<size_t>(i)] = 4 * scale;
            row_lane[static_cast<size_t>(i)] = 4 * scale * static_cast<double>((h + 31) / 32);
        }
        sites.resize(static_cast<size_t>(rows * rounds));
        uniforms.resize(sites.size());
        for (size_t k = 0; k < sites.size(); ++k)
        {
            sites[k] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(d)));
            uniforms[k] = rng.uniform();
        }
        accepted.assign(sites.size(), 7);
        odd_values.assign(static_cast<size_t>(rounds), 0.37f);
        for (int64_t g = 0; g < rows; ++g)
        {
            float* half = r.data() + offset + 2 * g * h;
            double log_sum = 0;
            for (int64_t j = 0; j < h; ++j)
                log_sum += std::log1p(static_cast<double>(half[j]));
            runs.push_back(FlipRun{ v.data() + g * d,
                                    sites.data() + g * rounds,
                                    nullptr,
                                    uniforms.data() + g * rounds,
                                    accepted.data() + g * rounds,
                                    { half, half + h },
                                    up.data() + offset,
                                    down.data() + offset,
                                    a.data(),
                                    row_lane.data(),
                                    row_max.data(),
                                    d,
                                    h,
                                    0.8,
                                    0.8,
                                    0,
                                    log_sum,
                                    4.0,
                                    8.0,
                                    false });
        }
    }

    // All rounds through flip_group in groups of rbm::kGroup rows. A round flip_group leaves (pending) is
    // marked 2 and its row's bound reset, as if a general round had run and refreshed it.
    void run(const SessionKernels& k)
    {
        for (int64_t g0 = 0; g0 < rows; g0 += rbm::kGroup)
        {
            const int count = static_cast<int>(std::min<int64_t>(rbm::kGroup, rows - g0));
            FlipRun* group = runs.data() + g0;
            for (int64_t t = 0; t < rounds;)
            {
                uint32_t pending = 0;
                t = k.flip_group(group, count, t, rounds, &pending);
                if (!pending)
                    break;
                for (int g = 0; g < count; ++g)
                    if (pending >> g & 1)
                    {
                        group[g].accepted[t] = 2;
                        group[g].qmax = 4.0;
                    }
                ++t;
            }
        }
    }
};

// Rows that take every path: the float lanes (row 0); qlane high enough that the first proposals go to
// the double lanes (row 1); qmax so high that the first commits leave flip_group (pending, row 2); r near
// e^12, so that every lane's product of about h / 32 factors needs the double lanes throughout (row 3).
void vary_bounds(Rounds& s)
{
    if (s.rows > 1)
        s.runs[1].qlane = 78.0;
    if (s.rows > 2)
        s.runs[2].qmax = 79.0;
    if (s.rows > 3)
    {
        FlipRun& run = s.runs[3];
        for (int64_t j = 0; j < s.h; ++j)
            run.half[0][j] *= std::exp(12.0f);
        run.qmax = 16.0;
        run.qlane = 120.0;
    }
    if (s.rows > 4) // new values that are not flips, with bounds in the double lanes: always left
    {
        s.runs[4].values = s.odd_values.data();
        s.runs[4].qlane = 78.0;
    }
}

void require_same_rounds(const Rounds& wide, const Rounds& base, const std::string& what)
{
    INFO(what);
    REQUIRE(wide.accepted == base.accepted);
    REQUIRE(same_bits(wide.v.data(), base.v.data(), static_cast<int64_t>(base.v.size())));
    REQUIRE(same_bits(wide.r.data(), base.r.data(), static_cast<int64_t>(base.r.size())));
    for (size_t g = 0; g < base.runs.size(); ++g)
    {
        INFO("row " << g);
        REQUIRE(wide.runs[g].side == base.runs[g].side);
        REQUIRE(wide.runs[g].committed == base.runs[g].committed);
        REQUIRE(same_bits(wide.runs[g].log_sum, base.runs[g].log_sum));
        REQUIRE(same_bits(wide.runs[g].qmax, base.runs[g].qmax));
        REQUIRE(same_bits(wide.runs[g].qlane, base.runs[g].qlane));
    }
}

} // namespace

TEST_CASE("rbm session kernels: flip_group gives the same bits on every instruction set", "[rbm][local]")
{
    const SessionKernels& base_kernels = *rbm::session_kernels_for(Isa::base);
    // seed 11 + h; 5 + h mod 3 rows (a group of 4 and one of 2, 1 or 3), 3000 rounds each, W ~ N(0, 0.3^2);
    // H with no partial lane block, and with one of 6, 26 (reaching the second 16 lanes) and 5 units
    for (const int64_t h : { int64_t{ 256 }, int64_t{ 70 }, int64_t{ 90 }, int64_t{ 5 } })
        for (const int64_t offset : { int64_t{ 0 }, int64_t{ 3 } })
        {
            const int64_t rows = 5 + h % 3;
            Rounds base(rows, 40, h, 3000, offset, 0.3, 11 + static_cast<uint64_t>(h));
            vary_bounds(base);
            base.run(base_kernels);
            int64_t accepted = 0, pending = 0;
            for (const uint8_t flag : base.accepted)
            {
                accepted += flag == 1;
                pending += flag == 2;
            }
            // the rounds took every path: accepted and rejected flips, and rounds left to the caller
            REQUIRE(accepted > 1000);
            REQUIRE(accepted < static_cast<int64_t>(base.accepted.size()) - 1000);
            REQUIRE(pending > 0);
            for (const Isa isa : wider_sets())
            {
                Rounds wide(rows, 40, h, 3000, offset, 0.3, 11 + static_cast<uint64_t>(h));
                vary_bounds(wide);
                wide.run(*rbm::session_kernels_for(isa));
                require_same_rounds(wide, base,
                                    std::string(isa_name(isa)) + ", H " + std::to_string(h) + ", offset " +
                                        std::to_string(offset));
            }
        }
}

TEST_CASE("rbm session kernels: products, logs, bounds and commits give the same bits on every "
          "instruction set",
          "[rbm][local]")
{
    const SessionKernels& base = *rbm::session_kernels_for(Isa::base);
    const std::vector<Isa> wider = wider_sets();
    ansatz::Rng rng(5); // r = e^(N(0, 2^2)), z = e^(N(0, 0.5^2))
    for (const int64_t n : { 1, 7, 31, 32, 33, 70, 256, 300 })
        for (const int64_t offset : { 0, 1 })
        {
            AlignedFloats r(static_cast<size_t>(n + offset)), z(r.size()), out_base(r.size()),
                out_wide(r.size());
            std::vector<double> p_base(static_cast<size_t>(n)), p_wide(p_base.size());
            for (size_t k = 0; k < r.size(); ++k)
            {
                r[k] = std::exp(static_cast<float>(2 * rng.normal()));
                z[k] = std::exp(static_cast<float>(0.5 * rng.normal()));
            }
            const float* rp = r.data() + offset;
            const float* zp = z.data() + offset;
            for (const Isa isa : wider)
            {
                const SessionKernels& wide = *rbm::session_kernels_for(isa);
                INFO(isa_name(isa) << ", n " << n << ", offset " << offset);
                int32_t top_base = 0, top_wide = 0;
                double l_base = base.log_product_float(rp, zp, out_base.data(), n, &top_base);
                double l_wide = wide.log_product_float(rp, zp, out_wide.data(), n, &top_wide);
                REQUIRE(same_bits(l_wide, l_base));
                REQUIRE(top_wide == top_base);
                REQUIRE(same_bits(out_wide.data(), out_base.data(), n));
                l_base = base.log_product_float_only(rp, zp, out_base.data(), n, &top_base);
                l_wide = wide.log_product_float_only(rp, zp, out_wide.data(), n, &top_wide);
                REQUIRE(same_bits(l_wide, l_base));
                REQUIRE(top_wide == top_base);
                l_base = base.log_product_double(rp, zp, out_base.data(), n, &top_base);
                l_wide = wide.log_product_double(rp, zp, out_wide.data(), n, &top_wide);
                REQUIRE(same_bits(l_wide, l_base));
                REQUIRE(top_wide == top_base);
                REQUIRE(same_bits(out_wide.data(), out_base.data(), n));
                int32_t bound_base = 0, bound_wide = 0;
                base.q_bounds(rp, n, &bound_base);
                wide.q_bounds(rp, n, &bound_wide);
                REQUIRE(bound_wide == bound_base);
                std::copy(r.begin(), r.end(), out_base.begin());
                std::copy(r.begin(), r.end(), out_wide.begin());
                base.scale(out_base.data() + offset, zp, n);
                wide.scale(out_wide.data() + offset, zp, n);
                REQUIRE(same_bits(out_wide.data(), out_base.data(), n + offset));
                std::fill(p_base.begin(), p_base.end(), 0.25);
                std::fill(p_wide.begin(), p_wide.end(), 0.25);
                base.add_scaled(p_base.data(), -0.7, zp, n);
                wide.add_scaled(p_wide.data(), -0.7, zp, n);
                REQUIRE(std::memcmp(p_wide.data(), p_base.data(), p_base.size() * sizeof(double)) == 0);
            }
        }
}

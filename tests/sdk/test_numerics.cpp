// The SDK's shared math (ansatz/math.hpp) against scalar references computed with std:: in double:
// accuracy over a wide sweep and at the edges, counts that leave a tail after the last whole batch,
// bit-exact Bernoulli draws against the scalar loop the RBM used, and the order of enumerated states.
#include "ansatz/math.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

namespace
{

constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float quiet_nan = std::numeric_limits<float>::quiet_NaN();

// Distance in units in the last place: the number of floats between a and b (0 if equal, also for
// +0 and -0, and for two NaN). Subnormals count in steps of 2^-149.
int64_t ulp_distance(float a, float b)
{
    if (a == b || (std::isnan(a) && std::isnan(b)))
        return 0;
    if (std::isnan(a) || std::isnan(b))
        return std::numeric_limits<int64_t>::max();
    int32_t ia, ib;
    std::memcpy(&ia, &a, sizeof a);
    std::memcpy(&ib, &b, sizeof b);
    // Map the sign-magnitude bit patterns to a monotonic integer line.
    const int64_t la = ia < 0 ? -static_cast<int64_t>(ia & 0x7fffffff) : ia;
    const int64_t lb = ib < 0 ? -static_cast<int64_t>(ib & 0x7fffffff) : ib;
    return la > lb ? la - lb : lb - la;
}

bool same_bits(float a, float b)
{
    return std::memcmp(&a, &b, sizeof a) == 0;
}

double softplus_reference(double x)
{
    return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
}

double sigmoid_reference(double x)
{
    return 1.0 / (1.0 + std::exp(-x));
}

// -110 .. 110 in steps of about 7e-4, every power of two (with a factor 1.37, both signs), +-0,
// +-inf, +-FLT_MAX, every float in [88, 89] (the overflow of e^x) and dense steps over -104 .. -86
// (subnormal results).
std::vector<float> sweep()
{
    std::vector<float> x;
    for (double v = -110.0; v <= 110.0; v += 0.000731)
        x.push_back(static_cast<float>(v));
    for (int e = -149; e <= 127; ++e)
        for (float m : { 1.0f, 1.37f, -1.0f, -1.37f })
            x.push_back(std::ldexp(m, e));
    for (float v :
         { 0.0f, -0.0f, inf, -inf, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, FLT_EPSILON, -FLT_EPSILON })
        x.push_back(v);
    for (float v = 88.0f; v < 89.0f; v = std::nextafter(v, 100.0f))
        x.push_back(v);
    for (float v = -104.5f; v < -86.0f; v += 1e-4f)
        x.push_back(v);
    return x;
}

using ArrayFunction = void (*)(const float*, float*, int64_t);
using Reference = double (*)(double);

struct Case
{
    const char* name;
    ArrayFunction f;
    Reference reference;
    int64_t max_ulp;
    double lowest; // inputs below are outside the domain
};

const Case cases[] = {
    { "exp", ansatz::exp, [](double v) { return std::exp(v); }, 2, -inf },
    { "log1p", ansatz::log1p, [](double v) { return std::log1p(v); }, 2, -1.0 },
    { "sigmoid", ansatz::sigmoid, sigmoid_reference, 3, -inf },
    { "softplus", ansatz::softplus, softplus_reference, 3, -inf },
    { "tanh", ansatz::tanh, [](double v) { return std::tanh(v); }, 3, -inf },
};

// While alive, the functions take the portable path, or (avx2 true) the AVX2 one where the CPU has it.
struct UsePath
{
#ifdef ANSATZ_MATH_AVX2
    explicit UsePath(bool avx2) : had(ansatz::detail::math::avx2::enabled())
    {
        ansatz::detail::math::avx2::enabled() = avx2 && had;
    }
    ~UsePath()
    {
        ansatz::detail::math::avx2::enabled() = had;
    }
    bool had;
#else
    explicit UsePath(bool) {}
#endif
    UsePath(const UsePath&) = delete;
    UsePath& operator=(const UsePath&) = delete;
};

// Runs `check` on every code path this CPU can take: the portable (xsimd) kernels, and, on a CPU with
// AVX2 and FMA in a build for plain x86-64, the AVX2 kernels the functions dispatch to.
void on_every_path(const std::function<void()>& check)
{
    for (bool avx2 : { false, true })
    {
        INFO((avx2 ? "AVX2 + FMA kernels, where the CPU has them" : "portable kernels"));
        const UsePath path(avx2);
        check();
    }
}

} // namespace

TEST_CASE("numerics: exp, log1p, sigmoid, softplus and tanh are within a few ulp of std:: in double",
          "[sdk][numerics]")
{
    on_every_path([] {
        // Tolerances: exp and log1p 2 ulp, sigmoid, softplus and tanh 3 ulp, of the double result rounded
        // to float (measured: 1, 1, 2, 1, 1 ulp with SSE2 and with AVX2 + FMA). No NaN or infinity where the
        // exact value is finite.
        const std::vector<float> x = sweep();
        std::vector<float> y(x.size());
        for (const Case& c : cases)
        {
            c.f(x.data(), y.data(), static_cast<int64_t>(x.size()));
            int64_t worst = 0;
            float worst_x = 0.0f;
            int64_t non_finite = 0;
            for (size_t i = 0; i < x.size(); ++i)
            {
                if (!(x[i] >= c.lowest))
                    continue;
                const float want = static_cast<float>(c.reference(x[i]));
                if (std::isfinite(want) && !std::isfinite(y[i]))
                    ++non_finite;
                const int64_t d = ulp_distance(y[i], want);
                if (d > worst)
                {
                    worst = d;
                    worst_x = x[i];
                }
            }
            INFO(c.name << ": worst " << worst << " ulp at x = " << worst_x << " over " << x.size()
                        << " inputs");
            CHECK(worst <= c.max_ulp);
            CHECK(non_finite == 0);
        }
    });
}

TEST_CASE("numerics: edge values", "[sdk][numerics]")
{
    // Every section once per path: the portable kernels, then the AVX2 ones where the CPU has them.
    const UsePath path(GENERATE(false, true));
    auto one = [](ArrayFunction f, float v) {
        float out = 0.0f;
        f(&v, &out, 1);
        return out;
    };
    SECTION("exp")
    {
        CHECK(one(ansatz::exp, 0.0f) == 1.0f);
        CHECK(one(ansatz::exp, -0.0f) == 1.0f);
        CHECK(one(ansatz::exp, -inf) == 0.0f);
        CHECK(one(ansatz::exp, inf) == inf);
        CHECK(one(ansatz::exp, 88.72f) < FLT_MAX); // xsimd 8.1's exp overflows from 88.38
        CHECK(one(ansatz::exp, 88.73f) == inf);
        CHECK(one(ansatz::exp, -100.0f) > 0.0f); // 3.7e-44, subnormal
        CHECK(one(ansatz::exp, -104.0f) == 0.0f);
        CHECK(std::isnan(one(ansatz::exp, quiet_nan)));
    }
    SECTION("log1p")
    {
        CHECK(one(ansatz::log1p, 0.0f) == 0.0f);
        CHECK(one(ansatz::log1p, 1e-30f) == 1e-30f);
        CHECK(one(ansatz::log1p, -1e-30f) == -1e-30f);
        CHECK(one(ansatz::log1p, -1.0f) == -inf);
        CHECK(std::isnan(one(ansatz::log1p, -2.0f)));
        CHECK(one(ansatz::log1p, inf) == inf);
        CHECK(std::isnan(one(ansatz::log1p, quiet_nan)));
    }
    SECTION("sigmoid")
    {
        CHECK(one(ansatz::sigmoid, 0.0f) == 0.5f);
        CHECK(one(ansatz::sigmoid, -0.0f) == 0.5f);
        CHECK(one(ansatz::sigmoid, 100.0f) == 1.0f);
        const float tiny = one(ansatz::sigmoid, -100.0f); // exact 3.72e-44
        CHECK(tiny >= 0.0f);
        CHECK(tiny < 4e-44f);
        CHECK(one(ansatz::sigmoid, inf) == 1.0f);
        CHECK(one(ansatz::sigmoid, -inf) == 0.0f);
        CHECK(one(ansatz::sigmoid, FLT_MAX) == 1.0f);
        CHECK(one(ansatz::sigmoid, -FLT_MAX) == 0.0f);
        CHECK(std::isnan(one(ansatz::sigmoid, quiet_nan)));
    }
    SECTION("softplus")
    {
        CHECK(one(ansatz::softplus, 100.0f) == 100.0f);
        CHECK(one(ansatz::softplus, 0.0f) == static_cast<float>(std::log(2.0)));
        const float tiny = one(ansatz::softplus, -100.0f);
        CHECK(tiny >= 0.0f);
        CHECK(tiny < 4e-44f);
        CHECK(one(ansatz::softplus, inf) == inf);
        CHECK(one(ansatz::softplus, -inf) == 0.0f);
        CHECK(one(ansatz::softplus, FLT_MAX) == FLT_MAX);
        CHECK(one(ansatz::softplus, -FLT_MAX) == 0.0f);
        CHECK(std::isnan(one(ansatz::softplus, quiet_nan)));
    }
    SECTION("tanh")
    {
        CHECK(same_bits(one(ansatz::tanh, 0.0f), 0.0f));
        CHECK(same_bits(one(ansatz::tanh, -0.0f), -0.0f));
        CHECK(one(ansatz::tanh, 1e-30f) == 1e-30f);
        CHECK(one(ansatz::tanh, -1e-30f) == -1e-30f);
        CHECK(one(ansatz::tanh, 10.0f) == 1.0f);
        CHECK(one(ansatz::tanh, -10.0f) == -1.0f);
        CHECK(one(ansatz::tanh, inf) == 1.0f);
        CHECK(one(ansatz::tanh, -inf) == -1.0f);
        CHECK(one(ansatz::tanh, FLT_MAX) == 1.0f);
        CHECK(one(ansatz::tanh, -FLT_MAX) == -1.0f);
        CHECK(std::isnan(one(ansatz::tanh, quiet_nan)));
    }
}

TEST_CASE("numerics: counts 0, 1, 7, 17, 1000: tails, in place, and no dependence on position",
          "[sdk][numerics]")
{
    on_every_path([] {
        const float sentinel = -12345.0f;
        for (const Case& c : cases)
            for (int64_t n : { 0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 1000 })
            {
                INFO(c.name << ", n = " << n);
                std::vector<float> x(static_cast<size_t>(n));
                for (int64_t i = 0; i < n; ++i)
                    x[static_cast<size_t>(i)] = 0.37f * static_cast<float>(i % 41) - 7.0f;
                // Out of place, with a sentinel after the end that must survive.
                std::vector<float> out(static_cast<size_t>(n) + 1, sentinel);
                c.f(x.data(), out.data(), n);
                CHECK(same_bits(out.back(), sentinel));
                // In place gives the same bits.
                std::vector<float> in_place = x;
                in_place.push_back(sentinel);
                c.f(in_place.data(), in_place.data(), n);
                CHECK(same_bits(in_place.back(), sentinel));
                bool all_same = true, all_alone = true;
                int64_t worst = 0;
                for (int64_t i = 0; i < n; ++i)
                {
                    const size_t k = static_cast<size_t>(i);
                    all_same = all_same && same_bits(out[k], in_place[k]);
                    // Each element alone (a count of 1: all tail) gives the same bits as in the array.
                    float alone = 0.0f;
                    c.f(&x[k], &alone, 1);
                    all_alone = all_alone && same_bits(out[k], alone);
                    worst = std::max(worst, ulp_distance(out[k], static_cast<float>(c.reference(x[k]))));
                }
                CHECK(all_same);
                CHECK(all_alone);
                CHECK(worst <= c.max_ulp);
            }
        // A count of 0 reads and writes nothing, not even through null pointers.
        ansatz::sigmoid(nullptr, nullptr, 0);
        ansatz::softplus(static_cast<float*>(nullptr), 0);
    });
}

TEST_CASE("numerics: sum_softplus_rows sums each row in double", "[sdk][numerics]")
{
    on_every_path([] {
        // Each term is within 3 ulp and all terms are positive, so the sum is within a relative 3 ulp
        // (3.6e-7) of the double reference; 4e-7 is allowed, plus 1e-44 per term for subnormal terms
        // (softplus(-100) = 3.7e-44 is a float with 5 significant bits).
        for (int64_t cols : { 0, 1, 7, 17, 256, 1000 })
        {
            const int64_t rows = 5;
            std::vector<float> x(static_cast<size_t>(rows * cols));
            for (size_t i = 0; i < x.size(); ++i)
                x[i] = 30.0f * std::sin(0.7f * static_cast<float>(i)) - 3.0f; // -33 .. 27
            if (cols > 0)
                x[0] = -100.0f;
            std::vector<double> sums(static_cast<size_t>(rows), -1.0);
            std::vector<float> sums_float(static_cast<size_t>(rows), -1.0f);
            ansatz::sum_softplus_rows(x.data(), rows, cols, sums.data());
            ansatz::sum_softplus_rows(x.data(), rows, cols, sums_float.data());
            for (int64_t r = 0; r < rows; ++r)
            {
                double want = 0.0;
                for (int64_t j = 0; j < cols; ++j)
                    want += softplus_reference(x[static_cast<size_t>(r * cols + j)]);
                INFO("cols = " << cols << ", row " << r);
                const size_t k = static_cast<size_t>(r);
                CHECK(std::abs(sums[k] - want) <= 4e-7 * want + 1e-44 * static_cast<double>(cols));
                CHECK(sums_float[k] == static_cast<float>(sums[k]));
            }
        }
        // Rows longer than a chunk of 512 terms (whose lane products are combined and logged at its end):
        // softplus(0) = log 2 a term, each factor of a product at its largest (2); 4100 terms cross
        // eight chunk boundaries and end in a part chunk and a part batch.
        for (int64_t cols : { 512, 513, 4100 })
        {
            const std::vector<float> zeros(static_cast<size_t>(cols), 0.0f);
            double sum = -1.0;
            ansatz::sum_softplus_rows(zeros.data(), 1, cols, &sum);
            const double want = static_cast<double>(cols) * std::numbers::ln2;
            INFO("cols = " << cols);
            CHECK(std::abs(sum - want) <= 1e-13 * want);
        }
        // Infinities and NaN: -inf adds 0, +inf makes the sum +inf, NaN makes it NaN, wherever they are.
        for (int64_t at : { 0, 7, 16, 600 })
        {
            std::vector<float> row(700, 1.0f);
            double sums[3];
            std::vector<float> rows3;
            for (float special : { -INFINITY, INFINITY, NAN })
            {
                row[static_cast<size_t>(at)] = special;
                rows3.insert(rows3.end(), row.begin(), row.end());
            }
            ansatz::sum_softplus_rows(rows3.data(), 3, 700, sums);
            INFO("special value at " << at);
            CHECK(std::abs(sums[0] - 699 * softplus_reference(1.0f)) <= 4e-7 * sums[0]); // e^-1 in float
            CHECK(sums[1] == INFINITY);
            CHECK(std::isnan(sums[2]));
        }
    });
}

TEST_CASE("numerics: logsumexp in double, stable for large and tiny values", "[sdk][numerics]")
{
    // Reference in long double; tolerance 1e-14 relative (+ 1e-14 absolute, for a result near 0).
    auto reference = [](const auto& x) {
        long double m = -INFINITY;
        for (auto v : x)
            m = std::max(m, static_cast<long double>(v));
        long double s = 0;
        for (auto v : x)
            s += std::exp(static_cast<long double>(v) - m);
        return static_cast<double>(m + std::log(s));
    };
    auto close = [](double got, double want) {
        return std::abs(got - want) <= 1e-14 * (std::abs(want) + 1.0);
    };
    for (int64_t n : { 1, 2, 3, 7, 17, 1000 })
        for (double offset : { 0.0, 1000.0, -1000.0, 1e5 })
        {
            INFO("n = " << n << ", offset " << offset);
            std::vector<double> xd(static_cast<size_t>(n));
            std::vector<float> xf(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i)
            {
                xf[static_cast<size_t>(i)] =
                    static_cast<float>(offset + 40.0 * std::cos(1.3 * static_cast<double>(i)));
                xd[static_cast<size_t>(i)] =
                    offset + 40.0 * std::cos(1.3 * static_cast<double>(i)) + 1e-9 * i;
            }
            CHECK(close(ansatz::logsumexp(xd.data(), n), reference(xd)));
            CHECK(close(ansatz::logsumexp(xf.data(), n), reference(xf)));
        }
    SECTION("edges")
    {
        const double dinf = std::numeric_limits<double>::infinity();
        CHECK(ansatz::logsumexp(static_cast<const double*>(nullptr), 0) == -dinf);
        const std::vector<double> all_minus_inf(5, -dinf);
        CHECK(ansatz::logsumexp(all_minus_inf.data(), 5) == -dinf);
        std::vector<double> with_inf = { 1.0, dinf, 2.0 };
        CHECK(ansatz::logsumexp(with_inf.data(), 3) == dinf);
        std::vector<double> with_nan = { 1.0, 2.0, 3.0, 4.0, 5.0, std::nan("") };
        CHECK(std::isnan(ansatz::logsumexp(with_nan.data(), 6)));
        with_nan[5] = 6.0;
        with_nan[0] = std::nan("");
        CHECK(std::isnan(ansatz::logsumexp(with_nan.data(), 6)));
        const std::vector<float> twice = { -1e4f, -1e4f }; // e^-1e4 underflows; the result does not
        CHECK(close(ansatz::logsumexp(twice.data(), 2), -1e4 + std::log(2.0)));
    }
    SECTION("rows")
    {
        const int64_t rows = 3, cols = 17;
        std::vector<float> xf(rows * cols);
        std::vector<double> xd(rows * cols);
        for (size_t i = 0; i < xf.size(); ++i)
            xd[i] = xf[i] = static_cast<float>(i % 5) * 3.0f - static_cast<float>(i / cols) * 500.0f;
        std::vector<double> out_f(rows), out_d(rows), empty(rows, 1.0);
        ansatz::logsumexp_rows(xf.data(), rows, cols, out_f.data());
        ansatz::logsumexp_rows(xd.data(), rows, cols, out_d.data());
        ansatz::logsumexp_rows(xd.data(), rows, 0, empty.data());
        for (int64_t r = 0; r < rows; ++r)
        {
            const std::vector<double> row(xd.begin() + r * cols, xd.begin() + (r + 1) * cols);
            CHECK(out_f[r] == ansatz::logsumexp(xf.data() + r * cols, cols));
            CHECK(close(out_d[r], reference(row)));
            CHECK(empty[r] == -std::numeric_limits<double>::infinity());
        }
    }
}

TEST_CASE("numerics: bernoulli_rows draws exactly what the scalar loop draws", "[sdk][numerics]")
{
    // Every check once per path: the portable loop, then the AVX2 one (4 rows at a time) where the CPU has
    // it.
    const UsePath path(GENERATE(false, true));
    for (int64_t cols : { 0, 1, 7, 17, 1000 })
    {
        INFO("cols = " << cols);
        const int64_t rows = 6;
        std::vector<float> p(static_cast<size_t>(rows * cols));
        for (size_t i = 0; i < p.size(); ++i)
            p[i] = static_cast<float>(i % 23) / 22.0f; // 0, 1/22, ..., 1
        if (cols >= 7)
        {
            p[1] = -0.5f; // acts as 0
            p[2] = 1.5f;  // acts as 1
            p[3] = 1e-30f;
            p[4] = std::nextafter(1.0f, 0.0f);
            p[5] = quiet_nan; // never 1
        }
        ansatz::Rng parent(2024);
        ansatz::StreamArray streams, expected_streams;
        ansatz::Rng parent_copy = parent;
        ansatz::Streams rngs = streams.split_from(parent, rows);
        ansatz::Streams expected_rngs = expected_streams.split_from(parent_copy, rows);

        std::vector<float> out(p.size(), -7.0f), expected(p.size());
        for (int64_t r = 0; r < rows; ++r) // the loop of rbm.cpp's conditional()
        {
            ansatz::Rng& rng = expected_rngs[static_cast<size_t>(r)];
            for (int64_t i = 0; i < cols; ++i)
            {
                const size_t k = static_cast<size_t>(r * cols + i);
                expected[k] = rng.uniform() < p[k] ? 1.0f : 0.0f;
            }
        }
        ansatz::bernoulli_rows(p.data(), rows, cols, out.data(), rngs);
        CHECK(std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)) == 0);
        for (int64_t r = 0; r < rows; ++r) // every stream advanced by exactly cols draws
            CHECK(rngs[static_cast<size_t>(r)].next() == expected_rngs[static_cast<size_t>(r)].next());

        // Spins: the same uniforms, +1 / -1; in place over p.
        std::vector<float> spins = p;
        std::vector<float> expected_spins(p.size());
        for (int64_t r = 0; r < rows; ++r)
        {
            ansatz::Rng& rng = expected_rngs[static_cast<size_t>(r)];
            for (int64_t i = 0; i < cols; ++i)
            {
                const size_t k = static_cast<size_t>(r * cols + i);
                expected_spins[k] = rng.uniform() < p[k] ? 1.0f : -1.0f;
            }
        }
        ansatz::bernoulli_spin_rows(spins.data(), rows, cols, spins.data(), rngs);
        CHECK(std::memcmp(spins.data(), expected_spins.data(), spins.size() * sizeof(float)) == 0);
    }
    SECTION("row r depends on stream r only")
    {
        std::vector<float> p(3 * 9, 0.5f), all(p.size()), alone(9);
        ansatz::Rng parent(5);
        ansatz::StreamArray a, b;
        ansatz::Rng parent_copy = parent;
        ansatz::bernoulli_rows(p.data(), 3, 9, all.data(), a.split_from(parent, 3));
        ansatz::Streams only = b.split_from(parent_copy, 3);
        ansatz::bernoulli_rows(p.data(), 1, 9, alone.data(), only.subspan(2, 1));
        CHECK(std::memcmp(alone.data(), all.data() + 18, 9 * sizeof(float)) == 0);
    }
    SECTION("too few streams is an error, and nothing is drawn")
    {
        std::vector<float> p(4 * 3, 0.5f), out(p.size(), -7.0f);
        ansatz::Rng parent(1);
        ansatz::StreamArray streams;
        ansatz::Streams rngs = streams.split_from(parent, 3);
        const ansatz::Rng before = rngs[0];
        CHECK_THROWS_WITH(ansatz::bernoulli_rows(p.data(), 4, 3, out.data(), rngs),
                          "bernoulli_rows: 3 random streams for 4 rows (one stream per row)");
        CHECK_THROWS_AS(ansatz::bernoulli_spin_rows(p.data(), 4, 3, out.data(), rngs), ansatz::Error);
        CHECK(out[0] == -7.0f);
        CHECK(std::memcmp(&before, &rngs[0], sizeof before) == 0);
    }
}

TEST_CASE("numerics: binary and spin states are enumerated in bit order", "[sdk][numerics]")
{
    SECTION("3 units: state k has unit i = bit i of k")
    {
        const float expected[8][3] = { { 0, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 1, 1, 0 },
                                       { 0, 0, 1 }, { 1, 0, 1 }, { 0, 1, 1 }, { 1, 1, 1 } };
        std::vector<float> states(8 * 3, -7.0f), spins(8 * 3);
        CHECK(ansatz::state_count(3) == 8);
        ansatz::binary_states(3, states.data());
        ansatz::spin_states(3, spins.data());
        for (int k = 0; k < 8; ++k)
            for (int i = 0; i < 3; ++i)
            {
                CHECK(states[k * 3 + i] == expected[k][i]);
                CHECK(spins[k * 3 + i] == 2.0f * expected[k][i] - 1.0f);
            }
    }
    SECTION("every state once, for 0 .. 12 units; blocks are slices of the whole")
    {
        for (int64_t d = 0; d <= 12; ++d)
        {
            const int64_t count = ansatz::state_count(d);
            CHECK(count == (int64_t{ 1 } << d));
            std::vector<float> states(static_cast<size_t>(count * d));
            ansatz::binary_states(d, states.data());
            std::vector<bool> seen(static_cast<size_t>(count), false);
            for (int64_t k = 0; k < count; ++k)
            {
                int64_t index = 0;
                for (int64_t i = 0; i < d; ++i)
                    index |= static_cast<int64_t>(states[static_cast<size_t>(k * d + i)]) << i;
                seen[static_cast<size_t>(index)] = true;
                CHECK(index == k);
            }
            CHECK(std::find(seen.begin(), seen.end(), false) == seen.end());
            if (count >= 4)
            {
                std::vector<float> block(static_cast<size_t>(3 * d));
                ansatz::binary_states(d, count - 3, 3, block.data());
                CHECK(std::equal(block.begin(), block.end(), states.end() - 3 * d));
            }
        }
        std::vector<float> one_state(1, -7.0f);
        ansatz::binary_states(0, one_state.data()); // one state of no units: nothing written
        CHECK(one_state[0] == -7.0f);
    }
    SECTION("the limit: 24 units")
    {
        CHECK(ansatz::state_count(24) == 16777216);
        CHECK(ansatz::max_enumerated_units == 24);
        std::vector<float> last(24);
        ansatz::spin_states(24, 16777215, 1, last.data());
        CHECK(std::count(last.begin(), last.end(), 1.0f) == 24);
        CHECK_THROWS_WITH(ansatz::state_count(25),
                          "cannot enumerate the states of 25 units: the number of units must be in [0, "
                          "24] (2^24 = 16777216 states at most)");
        float dummy = -7.0f;
        CHECK_THROWS_AS(ansatz::binary_states(25, &dummy), ansatz::Error);
        CHECK_THROWS_AS(ansatz::spin_states(-1, &dummy), ansatz::Error);
        CHECK_THROWS_WITH(ansatz::binary_states(3, 6, 3, &dummy),
                          "binary_states: 3 rows from state 6 are not among the 8 states of 3 units");
        CHECK_THROWS_AS(ansatz::binary_states(3, -1, 1, &dummy), ansatz::Error);
        CHECK(dummy == -7.0f);
    }
}

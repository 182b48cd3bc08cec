// The SDK's random streams: the algorithm is part of the contract, streams are reproducible and
// independent, and the distributions are right.
#include "ansatz/random.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

using ansatz::Rng;

TEST_CASE("xoshiro256** matches the reference output", "[sdk][random]")
{
    // Reference: xoshiro256starstar.c (Blackman & Vigna) from state {1, 2, 3, 4}.
    ansatz_rng state{ { 1, 2, 3, 4 } };
    Rng rng(state);
    const uint64_t expected[] = { 11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL };
    for (uint64_t e : expected)
        CHECK(rng.next() == e);
}

TEST_CASE("named streams are reproducible and differ by name and seed", "[sdk][random]")
{
    Rng a = Rng::stream(1234, "stages.1.train.loss"), b = Rng::stream(1234, "stages.1.train.loss");
    Rng c = Rng::stream(1234, "stages.1.train.data"), d = Rng::stream(1235, "stages.1.train.loss");
    const uint64_t first = a.next();
    CHECK(first == b.next());
    CHECK(first != c.next());
    CHECK(first != d.next());
}

TEST_CASE("uniform, below and normal have the right moments", "[sdk][random]")
{
    // Seed 7, 10^6 draws; thresholds at about 5 standard errors.
    Rng rng(7);
    const int n = 1000000;
    double sum = 0, sum2 = 0;
    std::vector<int> counts(10, 0);
    double nsum = 0, nsum2 = 0;
    int outside = 0;
    for (int i = 0; i < n; ++i)
    {
        const double u = rng.uniform();
        outside += u < 0.0 || u >= 1.0;
        sum += u;
        sum2 += u * u;
        ++counts[rng.below(10)];
        const double z = rng.normal();
        nsum += z;
        nsum2 += z * z;
    }
    CHECK(outside == 0);
    CHECK(std::abs(sum / n - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
    CHECK(std::abs(sum2 / n - 1.0 / 3) < 5 * std::sqrt(4.0 / 45 / n));
    for (int c : counts)
        CHECK(std::abs(c - n / 10.0) < 5 * std::sqrt(n * 0.1 * 0.9));
    CHECK(std::abs(nsum / n) < 5 / std::sqrt(double(n)));
    CHECK(std::abs(nsum2 / n - 1) < 5 * std::sqrt(2.0 / n));
}

TEST_CASE("split gives every chain its own stream, and the next split other ones", "[sdk][random]")
{
    ansatz::Rng parent(5), again(5);
    ansatz::StreamArray first, second, replay;
    const ansatz::Streams a = first.split_from(parent, 3);
    const ansatz::Streams b = second.split_from(parent, 3);
    const ansatz::Streams c = replay.split_from(again, 3);
    CHECK(a[0].state().state[0] == c[0].state().state[0]); // reproducible from the parent's state
    for (size_t i = 0; i < 3; ++i)
        for (size_t j = 0; j < 3; ++j)
        {
            CHECK(a[i].state().state[0] != b[j].state().state[0]); // the second split differs
            if (i != j)
                CHECK(a[i].state().state[0] != a[j].state().state[0]);
        }
}

TEST_CASE("derived streams are independent of their parent and of each other", "[sdk][random]")
{
    // Seed 99, 200000 pairs: the correlation of two derived streams is within 5/sqrt(n) of 0.
    const Rng parent(99);
    Rng x = parent.derive(0), y = parent.derive(1), again = parent.derive(0), p = parent;
    CHECK(x.next() == again.next());
    const int n = 200000;
    // Pearson correlation of two streams over n draws; |r| < 5/sqrt(n) for independent ones.
    const auto correlation = [n](Rng u, Rng v) {
        double sxy = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; ++i)
        {
            const double a = u.uniform_double(), b = v.uniform_double();
            sx += a, sy += b, sxy += a * b, sxx += a * a, syy += b * b;
        }
        const double cov = sxy / n - (sx / n) * (sy / n);
        return cov / std::sqrt((sxx / n - sx * sx / n / n) * (syy / n - sy * sy / n / n));
    };
    CHECK(std::abs(correlation(x, y)) < 5 / std::sqrt(double(n)));
    CHECK(std::abs(correlation(x, p)) < 5 / std::sqrt(double(n))); // child against its parent
}

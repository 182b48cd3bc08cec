// The SDK's thread team (ansatz/parallel.hpp) and the products split over it (ansatz/blas.hpp): every
// part runs once per run(), also right after the team starts or resizes and after its workers fell
// asleep or were sent to sleep by rest(); exceptions come back to the caller; ranges cover their items; a
// split product agrees with the single call to rounding and is reproducible bit for bit for a given team
// size.
#include "ansatz/blas.hpp"
#include "ansatz/parallel.hpp"
#include "ansatz/random.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

using ansatz::ThreadTeam;

TEST_CASE("ThreadTeam: every part runs exactly once per run, from the first run on", "[parallel]")
{
    for (int threads : { 1, 2, 3, 5 })
    {
        ThreadTeam team(threads);
        CHECK(team.size() == threads);
        for (int round = 0; round < 2000; ++round)
        {
            const int parts = 1 + round % 6; // sometimes more parts than threads: cut to size()
            std::vector<std::atomic<int>> calls(8);
            team.run(parts, [&](int part) { calls[static_cast<size_t>(part)].fetch_add(1); });
            const int ran = std::min(parts, threads);
            for (int p = 0; p < 8; ++p)
                REQUIRE(calls[static_cast<size_t>(p)].load() == (p < ran ? 1 : 0));
        }
    }
}

TEST_CASE("ThreadTeam: a run right after the team starts or resizes is not missed", "[parallel]")
{
    for (int round = 0; round < 200; ++round)
    {
        ThreadTeam team(2);
        std::atomic<int> calls{ 0 };
        team.run(2, [&](int) { calls.fetch_add(1); });
        CHECK(calls.load() == 2);
        team.resize(3);
        team.run(3, [&](int) { calls.fetch_add(1); });
        CHECK(calls.load() == 5);
    }
}

TEST_CASE("ThreadTeam: workers that fell asleep wake for the next run", "[parallel]")
{
    ThreadTeam team(3);
    for (int round = 0; round < 3; ++round)
    {
        std::this_thread::sleep_for(std::chrono::milliseconds(5)); // longer than the workers spin
        std::atomic<int> calls{ 0 };
        team.run(3, [&](int) { calls.fetch_add(1); });
        CHECK(calls.load() == 3);
    }
}

TEST_CASE("ThreadTeam: after rest() the workers sleep at once and still wake to run parts of the next run "
          "beside the caller",
          "[parallel]")
{
    // Each part waits (up to 2 s) until every part of its run has started: only parts that run on
    // different threads at the same time all see that, so a worker that missed its wake-up after
    // rest() leaves the caller to run the parts one after another, and the first gives up unseen.
    ThreadTeam team(3);
    for (int round = 0; round < 200; ++round)
    {
        std::atomic<int> started{ 0 }, saw_all{ 0 };
        team.run(3, [&](int) {
            started.fetch_add(1);
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
            while (started.load() < 3 && std::chrono::steady_clock::now() < until)
                std::this_thread::yield();
            saw_all.fetch_add(started.load() == 3 ? 1 : 0);
        });
        REQUIRE(saw_all.load() == 3); // on one thread the first part would have given up alone
        team.rest();
        if (round % 50 == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(1)); // some runs after a real sleep
    }
}

TEST_CASE("ThreadTeam: an exception in any part is rethrown after every part finished", "[parallel]")
{
    ThreadTeam team(3);
    for (int thrower : { 0, 1, 2 })
    {
        std::atomic<int> finished{ 0 };
        CHECK_THROWS_WITH(team.run(3,
                                   [&](int part) {
                                       if (part == thrower)
                                           throw std::runtime_error("part " + std::to_string(part));
                                       finished.fetch_add(1);
                                   }),
                          "part " + std::to_string(thrower));
        CHECK(finished.load() == 2);
    }
    std::atomic<int> calls{ 0 }; // and the team still works
    team.run(3, [&](int) { calls.fetch_add(1); });
    CHECK(calls.load() == 3);
}

TEST_CASE("ThreadTeam::range covers 0 to n in order, in blocks of align", "[parallel]")
{
    for (int64_t n : { 0, 1, 7, 16, 100, 784 })
        for (int parts : { 1, 2, 3, 7 })
            for (int64_t align : { 1, 8, 16 })
            {
                int64_t next = 0;
                for (int p = 0; p < parts; ++p)
                {
                    const auto [begin, end] = ThreadTeam::range(n, p, parts, align);
                    REQUIRE(begin == next);
                    REQUIRE(end >= begin);
                    if (end < n)
                        REQUIRE(end % align == 0);
                    next = end;
                }
                REQUIRE(next == n);
            }
}

TEST_CASE("blas::gemm over a team agrees with the single call, and repeats itself bit for bit",
          "[parallel][blas]")
{
    using ansatz::blas::Op;
    ansatz::Rng rng(7);
    struct Case
    {
        int64_t m, n, k;
    };
    for (Case c : { Case{ 128, 256, 784 }, Case{ 64, 784, 256 }, Case{ 784, 256, 128 }, Case{ 3, 5, 7 } })
        for (bool ta : { false, true })
            for (bool tb : { false, true })
            {
                std::vector<float> a(static_cast<size_t>(c.m * c.k)), b(static_cast<size_t>(c.k * c.n)),
                    c0(static_cast<size_t>(c.m * c.n));
                for (float& x : a)
                    x = rng.uniform() < 0.5f ? 1.0f : 0.0f;
                for (float& x : b)
                    x = static_cast<float>(0.01 * rng.normal());
                for (float& x : c0)
                    x = rng.uniform();
                const ansatz_tensor av = ansatz::make_view(a.data(), { ta ? c.k : c.m, ta ? c.m : c.k });
                const ansatz_tensor bv = ansatz::make_view(b.data(), { tb ? c.n : c.k, tb ? c.k : c.n });
                std::vector<float> expected = c0;
                ansatz_tensor ev = ansatz::make_view(expected.data(), { c.m, c.n });
                {
                    ansatz::blas::SingleThreaded one;
                    ansatz::blas::gemm(ta ? Op::transpose : Op::none, tb ? Op::transpose : Op::none, -0.5f,
                                       av, bv, 1.0f, ev);
                }
                for (int threads : { 1, 2, 3 })
                {
                    ThreadTeam team(threads);
                    std::vector<float> got = c0, again = c0;
                    ansatz_tensor gv = ansatz::make_view(got.data(), { c.m, c.n });
                    ansatz_tensor again_view = ansatz::make_view(again.data(), { c.m, c.n });
                    const Op oa = ta ? Op::transpose : Op::none, ob = tb ? Op::transpose : Op::none;
                    ansatz::blas::gemm(team, oa, ob, -0.5f, av, bv, 1.0f, gv);
                    ansatz::blas::gemm(team, oa, ob, -0.5f, av, bv, 1.0f, again_view);
                    INFO(c.m << "x" << c.n << "x" << c.k << " ta " << ta << " tb " << tb << ", " << threads
                             << " threads");
                    CHECK(got == again);
                    float worst = 0;
                    for (size_t i = 0; i < got.size(); ++i)
                        worst = std::max(worst, std::abs(got[i] - expected[i]));
                    CHECK(worst < 1e-5f); // |C| ~ 1: a few ulp
                }
            }
}

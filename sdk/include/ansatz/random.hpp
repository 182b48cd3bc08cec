// ansatz/random.hpp -- the random streams of a run.
//
// One algorithm for the host and every plugin (xoshiro256**, state in ansatz_rng), so a stream's
// numbers do not depend on which library draws them. Streams are derived from the pipeline's seed and a
// name by hashing (SplitMix64 over FNV-1a), so adding a stream never shifts another one, and the
// same pipeline with the same seed draws the same numbers. Never use xtensor's global random engine:
// each shared library would get its own copy.
#pragma once

#include "ansatz/abi.h"

#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ansatz
{

inline uint64_t splitmix64(uint64_t& x)
{
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

inline uint64_t fnv1a(std::string_view text)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : text)
        h = (h ^ c) * 0x100000001b3ULL;
    return h;
}

// A stream is a value; copy it to fork, derive() to split.
class Rng
{
public:
    explicit Rng(uint64_t seed = 0) { reseed(seed); }
    explicit Rng(const ansatz_rng& state) : s_(state) {}

    // The stream `name` of the generator seeded by `seed`.
    static Rng stream(uint64_t seed, std::string_view name)
    {
        return Rng(seed ^ fnv1a(name) * 0x9e3779b97f4a7c15ULL);
    }

    void reseed(uint64_t seed)
    {
        uint64_t x = seed;
        for (auto& word : s_.state)
            word = splitmix64(x);
    }

    // An independent child stream, e.g. one per chain: derive(i) does not advance this stream.
    Rng derive(uint64_t index) const
    {
        uint64_t x = s_.state[0] ^ (s_.state[3] << 1) ^ (index * 0xd1b54a32d192ed03ULL);
        return Rng(splitmix64(x));
    }

    uint64_t next()
    {
        uint64_t* s = s_.state;
        const uint64_t result = rotl(s[1] * 5, 7) * 9;
        const uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
    }

    // Uniform in [0, 1) with 24 random bits: exact in float.
    float uniform() { return static_cast<float>(next() >> 40) * 0x1.0p-24f; }
    // Uniform in [0, 1) with 53 random bits.
    double uniform_double() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    // Uniform integer in [0, n), without modulo bias (Lemire's method; __uint128_t: GCC and Clang).
    uint64_t below(uint64_t n)
    {
        __uint128_t m = static_cast<__uint128_t>(next()) * n;
        uint64_t low = static_cast<uint64_t>(m);
        if (low < n)
        {
            const uint64_t threshold = (0 - n) % n;
            while (low < threshold)
            {
                m = static_cast<__uint128_t>(next()) * n;
                low = static_cast<uint64_t>(m);
            }
        }
        return static_cast<uint64_t>(m >> 64);
    }

    // Standard normal by Box-Muller. The second value is not cached: the whole state of a stream is
    // its ansatz_rng, so a stream copied across the C boundary draws exactly what the original would.
    double normal()
    {
        double u1 = 0.0;
        while (u1 <= 0.0)
            u1 = uniform_double();
        const double u2 = uniform_double();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    }

    ansatz_rng& state() { return s_; }
    const ansatz_rng& state() const { return s_; }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

    ansatz_rng s_{};
};

// An Rng is its ansatz_rng and nothing else, so an array of C states is an array of Rng.
static_assert(std::is_standard_layout_v<Rng> && sizeof(Rng) == sizeof(ansatz_rng),
              "ansatz::Rng must stay layout-compatible with ansatz_rng");

// One stream per row of a batch of chains (abi.h: "Calls on chains").
using Streams = std::span<Rng>;

inline Streams as_streams(ansatz_rng* states, int64_t n)
{
    return Streams(reinterpret_cast<Rng*>(states), static_cast<size_t>(n));
}
inline ansatz_rng* c_states(Streams streams)
{
    return reinterpret_cast<ansatz_rng*>(streams.data());
}

// Fills `out` with independent child streams of `parent` (out[i] = parent.derive(i)), then moves the
// parent on, so the next split gives other children.
inline void split(Rng& parent, Streams out)
{
    for (size_t i = 0; i < out.size(); ++i)
        out[i] = parent.derive(i);
    parent.next();
}

// A reusable array of per-row streams.
class StreamArray
{
public:
    // n children of parent (see split), reusing the storage.
    Streams split_from(Rng& parent, int64_t n)
    {
        rows_.resize(static_cast<size_t>(n));
        split(parent, Streams(rows_));
        return Streams(rows_);
    }
    Streams streams() { return Streams(rows_); }

private:
    std::vector<Rng> rows_;
};

} // namespace ansatz

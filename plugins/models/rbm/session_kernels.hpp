// The kernels of the rbm's local-move session (see LOCAL MOVES in rbm.cpp): the products of a proposal's
// factors over the hidden units, their logs, the commits' bounds, and local_step's fused rounds of flips
// (flip_group). Each is written once and compiled for the baseline instruction set and, on x86-64, for
// AVX2 and for AVX-512, chosen at run time; none uses fused multiply-adds (the plugin is built with
// -ffp-contract=off) and the reductions have fixed lanes and trees, so every build gives the same bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace rbm
{

// The products' lanes: unit j goes to lane j mod kLanes (the session's bounds use the same assignment).
// 32 float lanes are 4 AVX2 registers (2 AVX-512 ones) of independent products, so the multiply's
// latency is hidden.
constexpr int kLanes = 32;

// ---- local_step's fused rounds (see local_step in rbm.cpp): flips of binary units whose factors E come
// from a table and whose products stay in the float lanes, the common case, each round what
// energy_delta, the acceptance and local_commit compute for it. The limits are the class's (max_q,
// max_lane_float: see LocalSession).
constexpr double session_max_q = 80;
constexpr double session_max_lane_float = 80;
constexpr double session_max_lane_double = 700;

// local_step's rows go through flip_group in groups of at most kGroup, in lockstep: one row's round
// waits on its own results (product, log, exponential, decision) and the others' fill that time; the
// logs of a round are one vector of four doubles. (Groups of 8, in lockstep or as two groups of 4
// taking turns, measured the same.)
constexpr int kGroup = 4;

// One row (chain) as flip_group sees it: where its arrays are, and its state, read and written.
struct FlipRun
{
    float* v;             // the row's chain {D}
    const int64_t* sites; // the row's rounds: sites, new values (or nullptr: flips), uniforms, flags
    const float* values;
    const float* uniforms;
    uint8_t* accepted;
    float* half[2];  // the row's two halves of r
    const float* up; // its tables e^(beta W) and e^(-beta W) {D, H}
    const float* down;
    const float* a;         // visible biases {D}
    const double* row_lane; // per visible unit (see local_begin)
    const double* row_max;
    int64_t d, h;
    double beta, t; // the row's beta and |beta|
    // the row's state, read and written: r is half[side]; L; the bounds qmax and qlane
    int side;
    double log_sum, qmax, qlane;
    bool committed; // a change was committed (the bounds were raised by commits; p is no longer current)
};

struct SessionKernels
{
    void (*add_scaled)(double* p, double e, const float* w, int64_t n);
    double (*log_product_float)(const float* r, const float* z, float* out, int64_t n, int32_t* top);
    double (*log_product_float_only)(const float* r, const float* z, float* out, int64_t n, int32_t* top);
    void (*scale)(float* r, const float* z, int64_t n);
    double (*log_product_double)(const float* r, const float* z, float* out, int64_t n, int32_t* top);
    void (*q_bounds)(const float* r, int64_t n, int32_t* bound);
    int64_t (*flip_group)(FlipRun* runs, int count, int64_t t, int64_t end, uint32_t* pending);
};

// The kernels for this CPU: the widest instruction set it has (the same bits on every one).
const SessionKernels& session_kernels();

// The kernels compiled for one instruction set, or nullptr where this CPU cannot run them (tests compare
// them bit for bit).
enum class Isa
{
    base,
    avx2,
    avx512
};
const SessionKernels* session_kernels_for(Isa isa);

// e^x as ansatz::exp rounds it (its AVX2 + FMA kernel on one value where ansatz::exp uses that kernel: the
// lanes are independent, so the same bits as in a call on many; else the call itself).
float exp_one(float x);

// The session's floats that the kernels stream (r, the tables, E), each buffer on a 64-byte boundary: the
// AVX-512 kernels read and write them 16 floats at a time, and an access that straddles two cache lines
// costs about twice as much (a product of 256 units measured 15-17 ns aligned, 25-32 ns at an offset of
// 16 or 32 bytes). With H a multiple of 16 every row starts on a boundary too.
template <class T>
struct CacheAligned
{
    using value_type = T;
    static constexpr std::align_val_t alignment{ 64 };
    CacheAligned() = default;
    template <class U>
    CacheAligned(const CacheAligned<U>&) noexcept
    {
    }
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, alignment); }
    template <class U>
    bool operator==(const CacheAligned<U>&) const noexcept
    {
        return true;
    }
};
using AlignedFloats = std::vector<float, CacheAligned<float>>;

} // namespace rbm

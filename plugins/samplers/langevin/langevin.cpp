// Langevin dynamics for a model with a real domain and the gradient of its free energy in the state
// (free_energy_grad_state), batch-shaped: every step makes one gradient call for all chains.
//
// Unadjusted (ULA, Foster's order per step, Generative Deep Learning 2nd ed. ch. 7):
//     x <- clamp(x + noise z);  g = clip(dF/dx(x));  x <- clamp(x - step_size g)
// with z ~ N(0, I), clip to [-c, c] elementwise (clip_gradient) and clamp to the model's box.
// Adjusted (MALA with independent scales): x' = x - step_size g(x) + noise z, accepted with the
// Metropolis-Hastings ratio of the Gaussian proposal; a proposal outside the box is rejected.
// A replay buffer (buffer > 0) gives the chains of every default-length call their starts: noise with
// probability `restart`, else a stored sample, and stores the results (a ring). See README.md for
// every key, the equations and the order of the random draws.
#include <ansatz/parallel.hpp>
#include <ansatz/plugin.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
namespace
{

std::string format(double x)
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%g", x);
    return buffer;
}

// The Box-Muller kernel (box_muller.inc), 4 lanes for every CPU and 8 lanes for one with AVX2, with the
// same bits either way.
namespace box_muller_default
{
typedef float VF __attribute__((vector_size(16)));
typedef int32_t VI __attribute__((vector_size(16)));
constexpr int64_t LANES = 4;
static inline VF VSQRT(VF x)
{
#if defined(__x86_64__)
    return (VF)_mm_sqrt_ps((__m128)x);
#else
    for (int64_t l = 0; l < LANES; ++l)
        x[l] = __builtin_sqrtf(x[l]);
    return x;
#endif
}
#include "box_muller.inc"
} // namespace box_muller_default

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2")
namespace box_muller_avx2
{
typedef float VF __attribute__((vector_size(32)));
typedef int32_t VI __attribute__((vector_size(32)));
constexpr int64_t LANES = 8;
static inline VF VSQRT(VF x)
{
    return (VF)_mm256_sqrt_ps((__m256)x);
}
#include "box_muller.inc"
} // namespace box_muller_avx2
#pragma GCC pop_options
#endif

// c[k], s[k] for k < n (n a multiple of 8) from h[k] = 2^32 u1 and a[k] = 2^24 u2 (box_muller.inc).
void box_muller(const float* h, const int32_t* a, float* c, float* s, int64_t n)
{
#if defined(__x86_64__)
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2)
        return box_muller_avx2::box_muller_block(h, a, c, s, n);
#endif
    box_muller_default::box_muller_block(h, a, c, s, n);
}

// Standard normals for one chain, by Box-Muller on pairs, vectorised over the pairs. Pair k of a row of
// d values (P = ceil(d / 2) pairs) comes from the k-th 64-bit word w of the chain's stream:
//     u1 = ((w >> 32) + 1) 2^-32 (rounded to float, in (0, 1]),  u2 = ((w mod 2^32) >> 8) 2^-24,
//     r = sqrt(-2 ln u1),  z[k] = r cos(2 pi u2),  z[P + k] = r sin(2 pi u2)  (when P + k < d),
// with ln, cos and sin as box_muller.inc computes them (within 1e-6 of the exact values).
// |z| <= r <= sqrt(64 ln 2) = 6.66: the tail beyond it is cut (probability 2e-10 for a pair, 3e-11 per
// value).
class NormalRow
{
public:
    // z[0 .. d) from rng (P words drawn).
    void draw(ansatz::Rng& rng, float* z, int64_t d)
    {
        const int64_t pairs = (d + 1) / 2;
        const int64_t padded = (pairs + 7) / 8 * 8;
        if (static_cast<int64_t>(h_.size()) < padded)
        {
            h_.resize(static_cast<size_t>(padded));
            a_.resize(static_cast<size_t>(padded));
            c_.resize(static_cast<size_t>(padded));
            s_.resize(static_cast<size_t>(padded));
        }
        float* h = h_.data();
        int32_t* a = a_.data();
        for (int64_t k = 0; k < pairs; ++k)
        {
            const uint64_t w = rng.next();
            h[k] = static_cast<float>(static_cast<int64_t>((w >> 32) + 1)); // 2^32 u1, rounded
            a[k] = static_cast<int32_t>((w & 0xffffffffu) >> 8);            // 2^24 u2
        }
        for (int64_t k = pairs; k < padded; ++k)
        {
            h[k] = 0x1.0p32f; // u1 = 1: r = 0
            a[k] = 0;
        }
        box_muller(h, a, c_.data(), s_.data(), padded);
        std::copy_n(c_.data(), pairs, z);
        std::copy_n(s_.data(), d - pairs, z + pairs);
    }

private:
    std::vector<float> h_, c_, s_;
    std::vector<int32_t> a_;
};

// What the parts of one parallel pass count, summed after it.
struct Tally
{
    int64_t clipped = 0;  // gradient elements beyond [-c, c]
    int64_t clamped = 0;  // elements put back into the box
    int64_t bad_row = -1; // a row whose (clipped) gradient is not finite
    double squares = 0;   // sum of the unclipped gradient's squares
    int64_t accepted = 0; // adjusted: accepted proposals
    int64_t outside = 0;  // adjusted: proposals outside the box
};

class Langevin final : public ansatz::Sampler
{
public:
    // The state gradient; free_energy too for adjusted: true (checked at bind).
    static constexpr uint64_t needs = ANSATZ_FN_STATE_GRAD;

    static void describe(ansatz::Schema& s)
    {
        s.integer("steps", "Langevin steps per advance when the caller asks for the default (a loss's "
                           "negative phase); an explicit count from a stage is used as it is")
            .default_value(60)
            .min(1);
        s.real("step_size", "epsilon in x <- x - epsilon dF/dx (noise^2 = 2 epsilon targets exp(-F) itself)")
            .default_value(10.0)
            .min(0, true)
            .double_precision();
        s.real("noise", "the standard deviation sigma of the Gaussian noise added per step (0: gradient "
                        "descent, unadjusted only)")
            .default_value(0.005)
            .min(0)
            .double_precision();
        s.real("clip_gradient", "clip every element of dF/dx to [-c, c] before the step (Foster: 0.03); "
                                "absent: no clipping")
            .optional()
            .min(0, true)
            .double_precision();
        s.boolean("adjusted", "Metropolis-adjusted (MALA): accept x' = x - epsilon g(x) + sigma z with the "
                              "Metropolis-Hastings ratio, so exp(-F) is the exact target")
            .default_value(false);
        s.integer("buffer", "size of the replay buffer: each default-length call starts its chains from "
                            "stored samples or noise and stores the results (0: the chains continue "
                            "from where they are)")
            .default_value(0)
            .min(0);
        s.real("restart", "with a buffer: the probability that a chain starts from the model's "
                          "random_state instead of a stored sample (default 0.05)")
            .optional()
            .min(0)
            .max(1)
            .double_precision();
    }

    Langevin(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), steps_(c.integer("steps")), step_size_(c.real("step_size")),
          noise_(c.real("noise")), adjusted_(c.boolean("adjusted")), buffer_size_(c.integer("buffer")),
          host_(host), team_(std::max(1, host.threads()))
    {
        if (c.has("clip_gradient"))
            clip_ = c.real("clip_gradient");
        if (c.has("restart"))
        {
            restart_ = c.real("restart");
            if (buffer_size_ == 0)
                throw ansatz::InputError("restart is " + format(restart_) +
                                         ", but buffer is 0: without a replay buffer every chain continues "
                                         "from where it is (set buffer, or drop restart)");
        }
        if (adjusted_ && noise_ == 0)
            throw ansatz::InputError("adjusted: true needs noise > 0: the Metropolis-Hastings ratio of the "
                                     "proposal divides by noise^2 (set noise, or adjusted: false)");
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has(ANSATZ_FN_STATE_GRAD))
            throw ansatz::InputError(
                "it needs a model with free_energy_grad_state (dF/dx), and the model has " +
                ansatz::model_function_names(model.functions()));
        const ansatz_sample_info info = model.sample_info();
        if (info.domain != ANSATZ_DOMAIN_REAL)
            throw ansatz::InputError("it needs real variables, but the model's variables are " +
                                     ansatz::domain_name(info));
        if (adjusted_ && !model.has(ANSATZ_FN_FREE_ENERGY))
            throw ansatz::InputError(
                "adjusted: true needs the model's free_energy for the Metropolis-Hastings "
                "ratio, and the model has " +
                ansatz::model_function_names(model.functions()));
        const auto [low, high] = ansatz::sample_bounds(info);
        low_ = static_cast<float>(low);
        high_ = static_cast<float>(high);
        boxed_ = std::isfinite(low) || std::isfinite(high);
        // The buffer stays: it is the sampler's memory across stages (and a resumed run's, set after bind).
        model_ = model;
    }

    void advance(ansatz_tensor& chains, int32_t steps, ansatz::Streams rngs) override
    {
        if (!model_.valid())
            throw ansatz::Error("sampler '" + name_ + "' is advanced before bind()");
        if (steps < 0)
            throw ansatz::Error("sampler '" + name_ + "': advance() got a negative step count");
        ansatz::require_matrix(chains, -1, -1, "langevin advance: chains");
        ansatz::require_streams(rngs, chains);
        const int64_t n = chains.shape[0], d = chains.shape[1];
        if (n == 0 || d == 0)
            return;
        const bool buffered = buffer_size_ > 0 && steps == 0;
        const int64_t count = steps == 0 ? steps_ : steps;
        if (buffered)
            start(chains, rngs);
        if (adjusted_)
            mala(chains, count, rngs);
        else
            ula(chains, count, rngs);
        if (buffered)
            store(chains);
    }

    // acceptance_rate (adjusted), restarted (buffer), gradient_clipped (clip_gradient), clamped (a box,
    // unadjusted), gradient_rms, buffer_filled (buffer), langevin_steps: since the last call.
    void metrics(ansatz::Metrics& out)
    {
        if (adjusted_ && proposed_ > 0)
        {
            out.add("acceptance_rate", static_cast<double>(accepted_) / static_cast<double>(proposed_));
            out.add("outside_box", static_cast<double>(outside_) / static_cast<double>(proposed_));
        }
        if (buffer_size_ > 0)
        {
            if (started_ > 0)
                out.add("restarted", static_cast<double>(restarted_) / static_cast<double>(started_));
            out.add("buffer_filled", static_cast<double>(filled_));
        }
        if (gradient_elements_ > 0)
        {
            if (clip_)
                out.add("gradient_clipped",
                        static_cast<double>(clipped_) / static_cast<double>(gradient_elements_));
            out.add("gradient_rms", std::sqrt(squares_ / static_cast<double>(gradient_elements_)));
        }
        if (boxed_ && !adjusted_ && clamp_elements_ > 0)
            out.add("clamped", static_cast<double>(clamped_) / static_cast<double>(clamp_elements_));
        out.add("langevin_steps", static_cast<double>(metric_steps_));
        proposed_ = accepted_ = outside_ = started_ = restarted_ = 0;
        gradient_elements_ = clipped_ = clamp_elements_ = clamped_ = metric_steps_ = 0;
        squares_ = 0;
    }

    // The buffer's filled rows {filled, D} (when any), the ring position and count, and the metrics'
    // counters, so a resumed run continues bit for bit.
    std::vector<ansatz_named_tensor> state()
    {
        counts_ = { position_,       filled_,  buffer_d_,    proposed_,          accepted_,
                    outside_,        started_, restarted_,   gradient_elements_, clipped_,
                    clamp_elements_, clamped_, metric_steps_ };
        sums_[0] = squares_;
        std::vector<ansatz_named_tensor> out = {
            { "counts", ansatz::make_view(counts_.data(), { static_cast<int64_t>(counts_.size()) }) },
            { "sums", ansatz::make_view(sums_, { 1 }) }
        };
        if (filled_ > 0)
            out.push_back({ "buffer", ansatz::make_view(buffer_.data(), { filled_, buffer_d_ }) });
        return out;
    }

    void set_state(const ansatz::StateIn& in)
    {
        in.require_only({ "counts", "sums", "buffer" });
        const int64_t* c = in.get<int64_t>("counts", { kCounts });
        const int64_t position = c[0], filled = c[1], d = c[2];
        // The ring fills rows 0, 1, ... until it is full; then the next write may be at any row.
        const bool fits =
            filled >= 0 && filled <= buffer_size_ &&
            (filled < buffer_size_ ? position == filled : position >= 0 && position < buffer_size_);
        if (!fits)
            throw ansatz::InputError("the saved replay buffer holds " + std::to_string(filled) +
                                     " samples at ring position " + std::to_string(position) +
                                     ", which does not fit buffer: " + std::to_string(buffer_size_));
        const float* rows = filled > 0 ? in.get<float>("buffer", { filled, d }) : nullptr;
        if (filled == 0 && in.has("buffer"))
            throw ansatz::InputError(
                "the saved state has a piece 'buffer', though it says the buffer is empty");
        proposed_ = c[3];
        accepted_ = c[4];
        outside_ = c[5];
        started_ = c[6];
        restarted_ = c[7];
        gradient_elements_ = c[8];
        clipped_ = c[9];
        clamp_elements_ = c[10];
        clamped_ = c[11];
        metric_steps_ = c[12];
        squares_ = *in.get<double>("sums", { 1 });
        position_ = position;
        filled_ = filled;
        buffer_d_ = filled > 0 ? d : 0;
        buffer_.clear();
        if (filled > 0)
        {
            buffer_.resize(static_cast<size_t>(buffer_size_ * d));
            std::copy_n(rows, filled * d, buffer_.data());
        }
    }

private:
    static constexpr int64_t kCounts = 13;
    // Rows per part of a parallel pass: below this the caller does it alone.
    static constexpr int64_t kMinElementsPerPart = 16384;

    void cancel_point() const
    {
        if (host_.cancelled())
            throw ansatz::Error("sampler '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
    }

    // f(part, first_row, end_row) over the rows, split over the team; the tallies of the parts are summed.
    template <class F>
    Tally rows(int64_t n, int64_t d, F&& f)
    {
        const int parts = team_.parts_for(n * d, kMinElementsPerPart);
        tallies_.assign(static_cast<size_t>(parts), Tally{});
        if (normals_.size() < static_cast<size_t>(parts))
            normals_.resize(static_cast<size_t>(parts));
        if (noise_rows_.size() < static_cast<size_t>(parts))
            noise_rows_.resize(static_cast<size_t>(parts));
        team_.run(parts, [&](int part) {
            const auto [first, end] = ansatz::ThreadTeam::range(n, part, parts);
            f(part, first, end);
        });
        // The model's call comes next, with a team of its own: the workers leave it the cores.
        team_.rest();
        Tally sum;
        for (const Tally& t : tallies_)
        {
            sum.clipped += t.clipped;
            sum.clamped += t.clamped;
            sum.squares += t.squares;
            sum.accepted += t.accepted;
            sum.outside += t.outside;
            if (sum.bad_row < 0)
                sum.bad_row = t.bad_row;
        }
        return sum;
    }

    float* noise_row(int part, int64_t d)
    {
        std::vector<float>& z = noise_rows_[static_cast<size_t>(part)];
        if (static_cast<int64_t>(z.size()) < d)
            z.resize(static_cast<size_t>(d));
        return z.data();
    }

    // Clips g (n x d) in place to [-c, c] (when clip_gradient is set), tallying the clipped elements, the
    // squares of the unclipped ones and the first row that is not finite after clipping.
    void clip_rows(float* g, int64_t first, int64_t end, int64_t d, Tally& t) const
    {
        const float c = clip_ ? static_cast<float>(*clip_) : HUGE_VALF;
        for (int64_t r = first; r < end; ++r)
        {
            float* row = g + r * d;
            // Lane-wise partial sums of squares (a loop the compiler vectorises), added in a fixed order.
            constexpr int64_t kLanes = 8;
            float squares[kLanes] = {};
            int32_t clipped = 0, bad = 0;
            int64_t i = 0;
            for (; i + kLanes <= d; i += kLanes)
                for (int64_t l = 0; l < kLanes; ++l)
                {
                    const float v = row[i + l];
                    squares[l] += v * v;
                    clipped += (v > c) | (v < -c);
                    const float w = std::min(std::max(v, -c), c);
                    bad |= !(std::fabs(w) <= FLT_MAX);
                    row[i + l] = w;
                }
            for (; i < d; ++i)
            {
                const float v = row[i];
                squares[0] += v * v;
                clipped += (v > c) | (v < -c);
                const float w = std::min(std::max(v, -c), c);
                bad |= !(std::fabs(w) <= FLT_MAX);
                row[i] = w;
            }
            for (float s : squares)
                t.squares += s;
            t.clipped += clipped;
            if (bad && t.bad_row < 0)
                t.bad_row = r;
        }
    }

    void check_gradient(const Tally& t, int64_t step) const
    {
        if (t.bad_row >= 0)
            throw ansatz::Error("sampler '" + name_ + "': the model's dF/dx is not finite in chain " +
                                std::to_string(t.bad_row) + " at step " + std::to_string(step + 1) +
                                (clip_ ? "" : "; set clip_gradient, or lower step_size"));
    }

    // Unadjusted: per step x <- clamp(x + sigma z); g = clip(dF/dx); x <- clamp(x - epsilon g).
    void ula(ansatz_tensor& chains, int64_t steps, ansatz::Streams rngs)
    {
        const int64_t n = chains.shape[0], d = chains.shape[1];
        float* x = ansatz::f32(chains);
        grad_.resize(static_cast<size_t>(n * d));
        float* g = grad_.data();
        ansatz_tensor gt = ansatz::make_view(g, { n, d });
        const float sigma = static_cast<float>(noise_), eps = static_cast<float>(step_size_);
        const float lo = low_, hi = high_;
        // x <- clamp(x + sigma z) for rows [first, end); returns the clamped elements.
        const auto add_noise = [&](int part, int64_t first, int64_t end) {
            float* z = noise_row(part, d);
            NormalRow& normal = normals_[static_cast<size_t>(part)];
            int64_t clamped = 0;
            for (int64_t r = first; r < end; ++r)
            {
                normal.draw(rngs[static_cast<size_t>(r)], z, d);
                float* row = x + r * d;
                for (int64_t i = 0; i < d; ++i)
                {
                    const float v = row[i] + sigma * z[i];
                    clamped += (v < lo) | (v > hi);
                    row[i] = std::min(std::max(v, lo), hi);
                }
            }
            return clamped;
        };
        if (sigma > 0 && steps > 0)
        {
            const Tally t = rows(n, d, [&](int part, int64_t first, int64_t end) {
                tallies_[static_cast<size_t>(part)].clamped = add_noise(part, first, end);
            });
            clamped_ += t.clamped;
            clamp_elements_ += n * d;
        }
        for (int64_t step = 0; step < steps; ++step)
        {
            cancel_point();
            model_.free_energy_grad_state(chains, gt);
            // The gradient half of this step, then (one pass over the rows) the noise half of the next.
            const bool noise_next = sigma > 0 && step + 1 < steps;
            const Tally t = rows(n, d, [&](int part, int64_t first, int64_t end) {
                Tally& tally = tallies_[static_cast<size_t>(part)];
                clip_rows(g, first, end, d, tally);
                int64_t clamped = 0;
                for (int64_t r = first; r < end; ++r)
                {
                    float* row = x + r * d;
                    const float* gr = g + r * d;
                    for (int64_t i = 0; i < d; ++i)
                    {
                        const float v = row[i] - eps * gr[i];
                        clamped += (v < lo) | (v > hi);
                        row[i] = std::min(std::max(v, lo), hi);
                    }
                }
                if (noise_next)
                    clamped += add_noise(part, first, end);
                tally.clamped = clamped;
            });
            check_gradient(t, step);
            clamped_ += t.clamped;
            clamp_elements_ += (noise_next ? 2 : 1) * n * d;
            clipped_ += t.clipped;
            squares_ += t.squares;
            gradient_elements_ += n * d;
            ++metric_steps_;
        }
    }

    // Adjusted: per step x' = x - epsilon g(x) + sigma z, u ~ U[0, 1) (drawn after z), and x <- x' when
    // x' is in the box and u < exp(min(0, log alpha)),
    //     log alpha = F(x) - F(x') - (|x - x' + epsilon g(x')|^2 - |x' - x + epsilon g(x)|^2) / (2 sigma^2),
    // g the clipped gradient both ways; in double, from the float states as they are.
    void mala(ansatz_tensor& chains, int64_t steps, ansatz::Streams rngs)
    {
        const int64_t n = chains.shape[0], d = chains.shape[1];
        const size_t size = static_cast<size_t>(n * d);
        float* x = ansatz::f32(chains);
        grad_.resize(size);
        proposal_.resize(size);
        proposal_grad_.resize(size);
        f_.resize(static_cast<size_t>(n));
        proposal_f_.resize(static_cast<size_t>(n));
        uniforms_.resize(static_cast<size_t>(n));
        inside_.resize(static_cast<size_t>(n));
        float* g = grad_.data();
        float* y = proposal_.data();
        float* gy = proposal_grad_.data();
        ansatz_tensor gt = ansatz::make_view(g, { n, d }), yt = ansatz::make_view(y, { n, d }),
                      gyt = ansatz::make_view(gy, { n, d }), ft = ansatz::make_view(f_.data(), { n }),
                      fyt = ansatz::make_view(proposal_f_.data(), { n });
        model_.free_energy(chains, ft);
        model_.free_energy_grad_state(chains, gt);
        {
            const Tally t = rows(n, d, [&](int part, int64_t first, int64_t end) {
                clip_rows(g, first, end, d, tallies_[static_cast<size_t>(part)]);
            });
            check_gradient(t, -1);
        }
        const double sigma = noise_, eps = step_size_;
        const float sigma_f = static_cast<float>(sigma), eps_f = static_cast<float>(eps);
        const float lo = low_, hi = high_;
        for (int64_t step = 0; step < steps; ++step)
        {
            cancel_point();
            const Tally drawn = rows(n, d, [&](int part, int64_t first, int64_t end) {
                float* z = noise_row(part, d);
                NormalRow& normal = normals_[static_cast<size_t>(part)];
                int64_t outside = 0;
                for (int64_t r = first; r < end; ++r)
                {
                    ansatz::Rng& rng = rngs[static_cast<size_t>(r)];
                    normal.draw(rng, z, d);
                    uniforms_[static_cast<size_t>(r)] = rng.uniform_double();
                    const float* xr = x + r * d;
                    const float* gr = g + r * d;
                    float* yr = y + r * d;
                    bool in = true;
                    for (int64_t i = 0; i < d; ++i)
                    {
                        const float v = xr[i] - eps_f * gr[i] + sigma_f * z[i];
                        in = in && v >= lo && v <= hi;
                        yr[i] = v;
                    }
                    // Outside the box the target is 0: rejected, and the model is asked about x instead.
                    inside_[static_cast<size_t>(r)] = in ? 1 : 0;
                    if (!in)
                    {
                        std::copy_n(xr, d, yr);
                        ++outside;
                    }
                }
                tallies_[static_cast<size_t>(part)].outside = outside;
            });
            model_.free_energy(yt, fyt);
            model_.free_energy_grad_state(yt, gyt);
            const Tally t = rows(n, d, [&](int part, int64_t first, int64_t end) {
                Tally& tally = tallies_[static_cast<size_t>(part)];
                clip_rows(gy, first, end, d, tally);
                for (int64_t r = first; r < end; ++r)
                {
                    const size_t rs = static_cast<size_t>(r);
                    if (!inside_[rs])
                        continue;
                    const float* xr = x + r * d;
                    const float* yr = y + r * d;
                    const float* gxr = g + r * d;
                    const float* gyr = gy + r * d;
                    double back = 0, forward = 0;
                    for (int64_t i = 0; i < d; ++i)
                    {
                        const double b = static_cast<double>(xr[i]) - yr[i] + eps * gyr[i];
                        const double f = static_cast<double>(yr[i]) - xr[i] + eps * gxr[i];
                        back += b * b;
                        forward += f * f;
                    }
                    const double log_alpha = static_cast<double>(f_[rs]) - proposal_f_[rs] -
                                             (back - forward) / (2 * sigma * sigma);
                    // A NaN (a NaN energy) is rejected: min(log_alpha, 0) keeps it (std::min returns its
                    // first argument when the comparison is false), and exp(NaN) compares false.
                    if (!(uniforms_[rs] < std::exp(std::min(log_alpha, 0.0))))
                        continue;
                    ++tally.accepted;
                    std::copy_n(yr, d, x + r * d);
                    std::copy_n(gyr, d, g + r * d);
                    f_[rs] = proposal_f_[rs];
                }
            });
            check_gradient(t, step);
            accepted_ += t.accepted;
            outside_ += drawn.outside;
            proposed_ += n;
            clipped_ += t.clipped;
            squares_ += t.squares;
            gradient_elements_ += n * d;
            ++metric_steps_;
        }
    }

    // Each chain's start from its own stream: u ~ U[0, 1); the model's random_state when the buffer is
    // empty or u < restart, else the stored sample below(filled) (both draws from rngs[r], in this order).
    void start(ansatz_tensor& chains, ansatz::Streams rngs)
    {
        const int64_t n = chains.shape[0], d = chains.shape[1];
        if (filled_ > 0 && d != buffer_d_)
        {
            host_.warn("sampler '" + name_ + "': the chains have " + std::to_string(d) +
                       " values, the replay buffer's samples " + std::to_string(buffer_d_) +
                       "; the buffer starts anew");
            filled_ = position_ = 0;
        }
        if (filled_ == 0)
        {
            host_.require_memory(4.0 * static_cast<double>(buffer_size_) * static_cast<double>(d),
                                 "buffer: " + std::to_string(buffer_size_) + " samples of " +
                                     std::to_string(d) + " values");
            buffer_.assign(static_cast<size_t>(buffer_size_ * d), 0.0f);
            buffer_d_ = d;
        }
        float* x = ansatz::f32(chains);
        fresh_rows_.clear();
        for (int64_t r = 0; r < n; ++r)
        {
            ansatz::Rng& rng = rngs[static_cast<size_t>(r)];
            const double u = rng.uniform_double();
            if (filled_ == 0 || u < restart_)
            {
                fresh_rows_.push_back(r);
                continue;
            }
            const int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(filled_)));
            std::copy_n(buffer_.data() + j * d, d, x + r * d);
        }
        const int64_t fresh = static_cast<int64_t>(fresh_rows_.size());
        started_ += n;
        restarted_ += fresh;
        if (fresh == 0)
            return;
        // random_state on the fresh rows alone, each with its own stream (copied there and back).
        fresh_states_.resize(static_cast<size_t>(fresh * d));
        fresh_streams_.resize(static_cast<size_t>(fresh));
        for (int64_t k = 0; k < fresh; ++k)
            fresh_streams_[static_cast<size_t>(k)] =
                rngs[static_cast<size_t>(fresh_rows_[static_cast<size_t>(k)])];
        ansatz_tensor out = ansatz::make_view(fresh_states_.data(), { fresh, d });
        model_.random_state(out, ansatz::Streams(fresh_streams_));
        for (int64_t k = 0; k < fresh; ++k)
        {
            const int64_t r = fresh_rows_[static_cast<size_t>(k)];
            rngs[static_cast<size_t>(r)] = fresh_streams_[static_cast<size_t>(k)];
            std::copy_n(fresh_states_.data() + k * d, d, x + r * d);
        }
    }

    // The final rows into the ring, in row order: the oldest entries are replaced first.
    void store(const ansatz_tensor& chains)
    {
        const int64_t n = chains.shape[0], d = chains.shape[1];
        const float* x = ansatz::f32(chains);
        for (int64_t r = 0; r < n; ++r)
        {
            std::copy_n(x + r * d, d, buffer_.data() + position_ * d);
            position_ = (position_ + 1) % buffer_size_;
            filled_ = std::min(filled_ + 1, buffer_size_);
        }
    }

    std::string name_;
    int64_t steps_;
    double step_size_, noise_;
    std::optional<double> clip_;
    bool adjusted_;
    int64_t buffer_size_;
    double restart_ = 0.05;
    ansatz::Host host_;
    ansatz::ThreadTeam team_;

    // from bind: the model's box (+-inf: none)
    float low_ = -HUGE_VALF, high_ = HUGE_VALF;
    bool boxed_ = false;

    // state: the replay buffer {buffer_size_, buffer_d_}, its first filled_ rows in use, the next one to
    // write at position_; the metrics' counters
    std::vector<float> buffer_;
    int64_t buffer_d_ = 0, filled_ = 0, position_ = 0;
    int64_t proposed_ = 0, accepted_ = 0, outside_ = 0, started_ = 0, restarted_ = 0;
    int64_t gradient_elements_ = 0, clipped_ = 0, clamp_elements_ = 0, clamped_ = 0, metric_steps_ = 0;
    double squares_ = 0;
    std::vector<int64_t> counts_;
    double sums_[1] = {};

    // work buffers
    std::vector<Tally> tallies_;
    std::vector<NormalRow> normals_;             // one per part
    std::vector<std::vector<float>> noise_rows_; // one row of z per part
    std::vector<float> grad_, proposal_, proposal_grad_, f_, proposal_f_;
    std::vector<double> uniforms_;
    std::vector<uint8_t> inside_;
    std::vector<int64_t> fresh_rows_;
    std::vector<float> fresh_states_;
    std::vector<ansatz::Rng> fresh_streams_;
};

} // namespace

ANSATZ_PLUGIN("langevin", "0.1.0", "MIT",
              ansatz::sampler<Langevin>(
                  "langevin", "Langevin dynamics (unadjusted, or Metropolis-adjusted) with gradient "
                              "clipping, the model's box and a replay buffer"))

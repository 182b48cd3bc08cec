// ansatz/mcmc_diagnostics_impl.hpp -- the bodies of ansatz/mcmc_diagnostics.hpp (include that header,
// not this one).
#pragma once

#include "ansatz/mcmc_diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <numbers>
#include <numeric>
#include <vector>

namespace ansatz::mcmc
{

namespace detail
{

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

inline bool all_finite(const double* x, int64_t n)
{
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i]))
            return false;
    return true;
}

inline double mean(const double* x, int64_t n)
{
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
        sum += x[i];
    return sum / static_cast<double>(n);
}

// Variance with n - 1 in the denominator (two passes); 0 for n < 2.
inline double sample_variance(const double* x, int64_t n)
{
    if (n < 2)
        return 0;
    const double m = mean(x, n);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
        sum += (x[i] - m) * (x[i] - m);
    return sum / static_cast<double>(n - 1);
}

// In-place radix-2 FFT of a power-of-two length (the inverse divides by the length).
inline void fft(std::vector<std::complex<double>>& a, bool inverse)
{
    const size_t n = a.size();
    for (size_t i = 1, j = 0; i < n; ++i)
    {
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j)
            std::swap(a[i], a[j]);
    }
    // Twiddles from cos and sin directly (no recurrence, so no drift over long transforms).
    std::vector<std::complex<double>> w(n / 2);
    const double sign = inverse ? 1.0 : -1.0;
    for (size_t k = 0; k < n / 2; ++k)
    {
        const double angle = 2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(n);
        w[k] = { std::cos(angle), sign * std::sin(angle) };
    }
    for (size_t length = 2; length <= n; length <<= 1)
    {
        const size_t half = length / 2, stride = n / length;
        for (size_t start = 0; start < n; start += length)
            for (size_t j = 0; j < half; ++j)
            {
                const std::complex<double> u = a[start + j];
                const std::complex<double> v = a[start + j + half] * w[j * stride];
                a[start + j] = u + v;
                a[start + j + half] = u - v;
            }
    }
    if (inverse)
        for (auto& value : a)
            value /= static_cast<double>(n);
}

// C(t) = (1/n) sum_{s<n-t} (x_s - m)(x_{s+t} - m), t = 0..n-1; all 0 for a constant series.
inline std::vector<double> autocovariance(const double* x, int64_t n)
{
    std::vector<double> out(static_cast<size_t>(n), 0.0);
    if (n == 0)
        return out;
    const auto [lo, hi] = std::minmax_element(x, x + n);
    if (*lo == *hi)
        return out;
    size_t m = 1;
    while (m < 2 * static_cast<size_t>(n))
        m <<= 1;
    const double centre = mean(x, n);
    std::vector<std::complex<double>> a(m);
    for (int64_t i = 0; i < n; ++i)
        a[static_cast<size_t>(i)] = x[i] - centre;
    fft(a, false);
    for (auto& value : a)
        value = std::norm(value);
    fft(a, true);
    for (int64_t t = 0; t < n; ++t)
        out[static_cast<size_t>(t)] = a[static_cast<size_t>(t)].real() / static_cast<double>(n);
    return out;
}

// The chains cut in halves: 2 * chains rows of draws / 2 (the middle draw of an odd count dropped).
inline std::vector<double> split_chains(const Traces& t, int64_t& half)
{
    half = t.draws / 2;
    std::vector<double> out(static_cast<size_t>(2 * t.chains * half));
    for (int64_t c = 0; c < t.chains; ++c)
        for (int64_t i = 0; i < half; ++i)
        {
            out[static_cast<size_t>((2 * c) * half + i)] = t.at(c, i);
            out[static_cast<size_t>((2 * c + 1) * half + i)] = t.at(c, t.draws - half + i);
        }
    return out;
}

// Gelman-Rubin on `rows` chains of n draws (row-major), as ArviZ's _rhat.
inline double rhat_rows(const std::vector<double>& x, int64_t rows, int64_t n)
{
    if (rows < 2 || n < 2)
        return nan;
    std::vector<double> means(static_cast<size_t>(rows));
    double within = 0;
    for (int64_t r = 0; r < rows; ++r)
    {
        means[static_cast<size_t>(r)] = mean(&x[static_cast<size_t>(r * n)], n);
        within += sample_variance(&x[static_cast<size_t>(r * n)], n);
    }
    within /= static_cast<double>(rows);
    const double between = static_cast<double>(n) * sample_variance(means.data(), rows);
    if (within == 0)
        return between == 0 ? 1.0 : std::numeric_limits<double>::infinity();
    return std::sqrt((between / within + static_cast<double>(n) - 1) / static_cast<double>(n));
}

inline double median(std::vector<double> x)
{
    const size_t n = x.size(), mid = n / 2;
    std::nth_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(mid), x.end());
    const double upper = x[mid];
    if (n % 2 == 1)
        return upper;
    return 0.5 * (*std::max_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(mid)) + upper);
}

// ArviZ's _ess on `rows` chains of n draws: Geyer's initial positive, then monotone, sequence.
inline double ess_rows(const std::vector<double>& x, int64_t rows, int64_t n)
{
    const double size = static_cast<double>(rows * n);
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    if (*hi - *lo < 1e-15)
        return size;
    std::vector<std::vector<double>> acov(static_cast<size_t>(rows));
    std::vector<double> means(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
    {
        acov[static_cast<size_t>(r)] = autocovariance(&x[static_cast<size_t>(r * n)], n);
        means[static_cast<size_t>(r)] = mean(&x[static_cast<size_t>(r * n)], n);
    }
    const auto mean_acov = [&](int64_t lag) {
        double sum = 0;
        for (const auto& a : acov)
            sum += a[static_cast<size_t>(lag)];
        return sum / static_cast<double>(rows);
    };
    const double dn = static_cast<double>(n);
    const double mean_var = mean_acov(0) * dn / (dn - 1);
    double var_plus = mean_var * (dn - 1) / dn;
    if (rows > 1)
        var_plus += sample_variance(means.data(), rows);

    std::vector<double> rho(static_cast<size_t>(n), 0.0);
    double even = 1.0;
    double odd = 1.0 - (mean_var - mean_acov(1)) / var_plus;
    rho[0] = even;
    rho[1] = odd;
    int64_t t = 1;
    while (t < n - 3 && even + odd > 0.0)
    {
        even = 1.0 - (mean_var - mean_acov(t + 1)) / var_plus;
        odd = 1.0 - (mean_var - mean_acov(t + 2)) / var_plus;
        if (even + odd >= 0)
        {
            rho[static_cast<size_t>(t + 1)] = even;
            rho[static_cast<size_t>(t + 2)] = odd;
        }
        t += 2;
    }
    const int64_t max_t = t - 2;
    if (even > 0)
        rho[static_cast<size_t>(max_t + 1)] = even;
    for (t = 1; t <= max_t - 2; t += 2)
        if (rho[static_cast<size_t>(t + 1)] + rho[static_cast<size_t>(t + 2)] >
            rho[static_cast<size_t>(t - 1)] + rho[static_cast<size_t>(t)])
        {
            rho[static_cast<size_t>(t + 1)] =
                (rho[static_cast<size_t>(t - 1)] + rho[static_cast<size_t>(t)]) / 2.0;
            rho[static_cast<size_t>(t + 2)] = rho[static_cast<size_t>(t + 1)];
        }
    double tau = -1.0 + rho[static_cast<size_t>(max_t + 1)];
    for (int64_t i = 0; i <= max_t; ++i)
        tau += 2.0 * rho[static_cast<size_t>(i)];
    tau = std::max(tau, 1.0 / std::log10(size));
    return size / tau;
}

} // namespace detail

inline std::vector<double> autocorrelation(const double* x, int64_t n)
{
    std::vector<double> c = detail::autocovariance(x, n);
    if (n == 0)
        return c;
    if (!detail::all_finite(x, n))
        return std::vector<double>(static_cast<size_t>(n), detail::nan);
    if (c[0] == 0) // constant
    {
        c[0] = 1;
        return c;
    }
    const double c0 = c[0];
    for (double& value : c)
        value /= c0;
    return c;
}

inline AutocorrelationTime integrated_autocorrelation_time(const Traces& t, double c)
{
    AutocorrelationTime out;
    if (t.chains < 1 || t.draws < 2 || !detail::all_finite(t.data, t.size()))
    {
        out.tau = detail::nan;
        return out;
    }
    std::vector<double> rho(static_cast<size_t>(t.draws), 0.0);
    for (int64_t chain = 0; chain < t.chains; ++chain)
    {
        const std::vector<double> r = autocorrelation(t.data + chain * t.draws, t.draws);
        for (size_t i = 0; i < rho.size(); ++i)
            rho[i] += r[i];
    }
    for (double& value : rho)
        value /= static_cast<double>(t.chains);
    // tau(M) = 1 + 2 sum_{s=1..M} rho(s); the window is the smallest M >= c tau(M).
    double tau = 1.0;
    out.window = t.draws - 1;
    out.tau = detail::nan;
    bool closed = false;
    for (int64_t m = 1; m < t.draws; ++m)
    {
        tau += 2.0 * rho[static_cast<size_t>(m)];
        if (static_cast<double>(m) >= c * tau)
        {
            out.window = m;
            closed = true;
            break;
        }
    }
    out.tau = tau;
    out.reliable = closed && static_cast<double>(t.draws) >= 50.0 * tau;
    return out;
}

inline double effective_sample_size(const Traces& t, double c)
{
    return static_cast<double>(t.size()) / integrated_autocorrelation_time(t, c).tau;
}

inline double ess_bulk(const Traces& t)
{
    if (t.chains < 1 || t.draws < 4 || !detail::all_finite(t.data, t.size()))
        return detail::nan;
    int64_t half = 0;
    const std::vector<double> split = detail::split_chains(t, half);
    const std::vector<double> z = rank_normalize(split.data(), static_cast<int64_t>(split.size()));
    return detail::ess_rows(z, 2 * t.chains, half);
}

inline double split_rhat(const Traces& t)
{
    if (t.chains < 1 || t.draws < 4 || !detail::all_finite(t.data, t.size()))
        return detail::nan;
    int64_t half = 0;
    const std::vector<double> split = detail::split_chains(t, half);
    return detail::rhat_rows(split, 2 * t.chains, half);
}

inline double rank_normalized_rhat(const Traces& t)
{
    if (t.chains < 1 || t.draws < 4 || !detail::all_finite(t.data, t.size()))
        return detail::nan;
    int64_t half = 0;
    std::vector<double> split = detail::split_chains(t, half);
    const int64_t n = static_cast<int64_t>(split.size());
    const double bulk = detail::rhat_rows(rank_normalize(split.data(), n), 2 * t.chains, half);
    const double centre = detail::median(split);
    for (double& value : split)
        value = std::abs(value - centre);
    const double tail = detail::rhat_rows(rank_normalize(split.data(), n), 2 * t.chains, half);
    return std::max(bulk, tail);
}

inline Binning binning(const Traces& t)
{
    Binning out;
    const int64_t total = t.size();
    if (t.chains < 1 || total < 2 || !detail::all_finite(t.data, total))
    {
        out.mean = out.standard_error = detail::nan;
        return out;
    }
    out.mean = detail::mean(t.data, total);
    std::vector<double> blocks(t.data, t.data + total);
    int64_t length = t.draws; // blocks per chain
    for (int64_t size = 1; length >= 1 && t.chains * length >= 2; size *= 2)
    {
        const int64_t count = t.chains * length;
        BinningLevel level;
        level.block_size = size;
        level.blocks = count;
        level.standard_error =
            std::sqrt(detail::sample_variance(blocks.data(), count) / static_cast<double>(count));
        level.error_of_error = level.standard_error / std::sqrt(2.0 * static_cast<double>(count - 1));
        out.levels.push_back(level);
        // Average neighbours within each chain; an odd last block is dropped.
        const int64_t next = length / 2;
        for (int64_t c = 0; c < t.chains; ++c)
            for (int64_t i = 0; i < next; ++i)
                blocks[static_cast<size_t>(c * next + i)] =
                    0.5 * (blocks[static_cast<size_t>(c * length + 2 * i)] +
                           blocks[static_cast<size_t>(c * length + 2 * i + 1)]);
        length = next;
    }
    const double first = out.levels.front().standard_error;
    if (first == 0) // constant
    {
        out.standard_error = 0;
        out.block_size = 1;
        out.converged = true;
        return out;
    }
    // The smallest B with B^3 > 2 N (SE(B) / SE(1))^4 (Lee et al. 2011, eq. 14; pyblock).
    for (const BinningLevel& level : out.levels)
    {
        const double b = static_cast<double>(level.block_size);
        const double ratio = level.standard_error / first;
        if (b * b * b > 2.0 * static_cast<double>(total) * ratio * ratio * ratio * ratio)
        {
            out.standard_error = level.standard_error;
            out.block_size = level.block_size;
            out.converged = true;
            return out;
        }
    }
    // No plateau: the largest error among the levels with enough blocks to be estimated.
    const BinningLevel* worst = nullptr;
    for (const BinningLevel& level : out.levels)
        if (level.blocks >= 8 && (!worst || level.standard_error > worst->standard_error))
            worst = &level;
    if (!worst)
        for (const BinningLevel& level : out.levels)
            if (!worst || level.standard_error > worst->standard_error)
                worst = &level;
    out.standard_error = worst->standard_error;
    out.block_size = worst->block_size;
    return out;
}

inline Summary summarize(const Traces& t, double c)
{
    Summary s;
    const Binning b = binning(t);
    s.mean = b.mean;
    s.standard_error = b.standard_error;
    s.error_converged = b.converged;
    s.block_size = b.block_size;
    const AutocorrelationTime a = integrated_autocorrelation_time(t, c);
    s.tau = a.tau;
    s.tau_reliable = a.reliable;
    s.ess = static_cast<double>(t.size()) / a.tau;
    s.rhat = rank_normalized_rhat(t);
    return s;
}

inline double normal_quantile(double p)
{
    if (!(p >= 0 && p <= 1))
        return detail::nan;
    if (p == 0)
        return -std::numeric_limits<double>::infinity();
    if (p == 1)
        return std::numeric_limits<double>::infinity();
    // The upper half by symmetry: 1 - p is exact there (Sterbenz), and the refinement below is
    // accurate only where Phi(x) is not close to 1.
    if (p > 0.5)
        return -normal_quantile(1 - p);
    // P. J. Acklam's rational approximation (relative error below 1.15e-9) ...
    static constexpr double a[] = { -3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                                    1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00 };
    static constexpr double b[] = { -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                    6.680131188771972e+01, -1.328068155288572e+01 };
    static constexpr double c[] = { -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                    -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00 };
    static constexpr double d[] = { 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                    3.754408661907416e+00 };
    constexpr double low = 0.02425;
    double x;
    if (p < low)
    {
        const double q = std::sqrt(-2 * std::log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    else
    {
        const double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    // ... refined by one step of Halley's method on Phi(x) = erfc(-x / sqrt 2) / 2.
    const double e = 0.5 * std::erfc(-x / std::numbers::sqrt2) - p;
    const double u = e * std::sqrt(2 * std::numbers::pi) * std::exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

inline std::vector<double> rank_normalize(const double* x, int64_t n)
{
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{ 0 });
    std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return x[i] < x[j]; });
    std::vector<double> z(static_cast<size_t>(n));
    const double denominator = static_cast<double>(n) + 0.25;
    for (int64_t i = 0; i < n;)
    {
        int64_t j = i + 1;
        while (j < n && x[order[static_cast<size_t>(j)]] == x[order[static_cast<size_t>(i)]])
            ++j;
        // Positions i..j-1 share the average of ranks i+1..j.
        const double rank = 0.5 * static_cast<double>(i + 1 + j);
        const double score = normal_quantile((rank - 0.375) / denominator);
        for (int64_t k = i; k < j; ++k)
            z[static_cast<size_t>(order[static_cast<size_t>(k)])] = score;
        i = j;
    }
    return z;
}

} // namespace ansatz::mcmc

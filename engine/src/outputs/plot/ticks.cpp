#include "outputs/plot/ticks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

namespace ansatz::engine::plot
{

namespace
{

// 10^e, exact (the double nearest the decimal) for |e| <= 22.
double power_of_ten(int e)
{
    static constexpr double exact[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
    if (e >= 0 && e <= 22)
        return exact[e];
    if (e < 0 && e >= -22)
        return 1.0 / exact[-e];
    return std::pow(10.0, e);
}

int floor_log10(double x)
{
    int e = static_cast<int>(std::floor(std::log10(x)));
    // log10 may be off by one ulp near a power of ten: correct it.
    if (power_of_ten(e) > x)
        --e;
    else if (power_of_ten(e + 1) <= x)
        ++e;
    return e;
}

// A step of the form mantissa x 10^exponent (mantissa 1, 2 or 5); k steps are computed as the decimal
// k * mantissa scaled by a power of ten, so that 3 x 0.2 reads 0.6 and not 0.6000000000000001.
struct Step
{
    long long mantissa;
    int exponent;

    double value() const { return at(1); }
    double at(long long k) const
    {
        if (exponent < -22 || exponent > 22) // 10^e is not exact: let strtod round the decimal once
        {
            char decimal[48];
            std::snprintf(decimal, sizeof decimal, "%llde%d", k * mantissa, exponent);
            return std::strtod(decimal, nullptr);
        }
        const double whole = static_cast<double>(k * mantissa);
        return exponent >= 0 ? whole * power_of_ten(exponent) : whole / power_of_ten(-exponent);
    }
};

Step step_of(double d)
{
    int e = floor_log10(d);
    long long m = std::llround(d / power_of_ten(e));
    if (m >= 10)
    {
        m /= 10;
        ++e;
    }
    return Step{ std::max(1LL, m), e };
}

std::string trimmed_number(const char* format, int digits, double value)
{
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, format, digits, value);
    return buffer;
}

} // namespace

double nice_number(double x, bool round)
{
    const int e = floor_log10(x);
    // In [1, 10), rounded to 12 digits so that 0.3 / 0.1 = 2.9999999999999996 counts as 3.
    const double f = std::round(x / power_of_ten(e) * 1e12) / 1e12;
    double nice;
    if (round)
        nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else
        nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nice * power_of_ten(e);
}

std::string tick_label(double value, double step)
{
    if (value == 0 || !std::isfinite(value))
        return value == 0 ? "0" : std::isnan(value) ? "NaN" : value > 0 ? "inf" : "-inf";
    step = std::abs(step);
    if (!(step > 0) || !std::isfinite(step))
        step = std::abs(value);
    const double magnitude = std::max(std::abs(value), step);
    const int step_exponent = floor_log10(step);
    if (magnitude >= 1e6 || magnitude < 1e-4)
    {
        // Mantissa digits enough to tell ticks apart, then "1.5e30", "-2e-7".
        const int digits = std::clamp(floor_log10(std::abs(value)) - step_exponent, 0, 16);
        std::string s = trimmed_number("%.*e", digits, value);
        const size_t e = s.find('e');
        std::string mantissa = s.substr(0, e);
        if (mantissa.find('.') != std::string::npos)
        {
            while (mantissa.back() == '0')
                mantissa.pop_back();
            if (mantissa.back() == '.')
                mantissa.pop_back();
        }
        const int exponent = std::stoi(s.substr(e + 1));
        return mantissa + "e" + std::to_string(exponent);
    }
    const int fraction = std::clamp(-step_exponent, 0, 17);
    std::string s = trimmed_number("%.*f", fraction, value);
    if (s == "-0" || s.find_first_not_of("-0.") == std::string::npos)
        return "0";
    return s;
}

Ticks linear_ticks(double min, double max, int target)
{
    Ticks out;
    if (!std::isfinite(min) || !std::isfinite(max) || min > max)
    {
        out.ticks = { { 0, "0" }, { 1, "1" } };
        return out;
    }
    // Beyond about 1e300 the arithmetic below overflows: tick a scaled copy and scale back.
    const double largest = std::max(std::abs(min), std::abs(max));
    if (largest > 1e300 || !std::isfinite(max - min))
    {
        constexpr double scale = 1e16;
        Ticks scaled = linear_ticks(min / scale, max / scale, target);
        const double step =
            scaled.ticks.size() > 1 ? (scaled.ticks[1].value - scaled.ticks[0].value) * scale : largest;
        // Ticks beyond the largest double are dropped, and the axis ends there.
        constexpr double largest_double = std::numeric_limits<double>::max();
        out.lo = std::max(scaled.lo * scale, -largest_double);
        out.hi = std::min(scaled.hi * scale, largest_double);
        for (const Tick& t : scaled.ticks)
            if (std::isfinite(t.value * scale))
                out.ticks.push_back({ t.value * scale, tick_label(t.value * scale, step) });
        return out;
    }
    if (min == max)
    {
        const double widen = min == 0 ? 1.0 : std::abs(min) * 0.1;
        min -= widen;
        max += widen;
    }
    target = std::max(target, 2);
    const double range = nice_number(max - min, false);
    double d = nice_number(range / (target - 1), true);
    if (!(d > 0) || !std::isfinite(d)) // a range below the smallest double's resolution
        d = std::max(std::abs(max), 1e-300);
    const Step step = step_of(d);
    long long first = static_cast<long long>(std::floor(min / step.value()));
    long long last = static_cast<long long>(std::ceil(max / step.value()));
    while (step.at(first) > min)
        --first;
    while (step.at(first + 1) <= min && first + 1 < last)
        ++first;
    while (step.at(last) < max)
        ++last;
    while (step.at(last - 1) >= max && last - 1 > first)
        --last;
    if (last == first)
        ++last;
    for (long long k = first; k <= last && k - first <= 200; ++k)
        out.ticks.push_back({ step.at(k), tick_label(step.at(k), step.value()) });
    out.lo = out.ticks.front().value;
    out.hi = out.ticks.back().value;
    return out;
}

Ticks log_ticks(double min, double max)
{
    Ticks out;
    if (!(min > 0) || !(max >= min) || !std::isfinite(max))
        return log_ticks(1, 10);
    int lo = floor_log10(min);
    int hi = floor_log10(max);
    if (power_of_ten(hi) < max)
        ++hi;
    if (lo == hi) // one value, a power of ten: a decade on either side
    {
        --lo;
        ++hi;
    }
    const int decades = hi - lo;
    const int every = (decades + 7) / 8; // at most about 8 labelled decades
    if (every > 1)
    {
        lo = static_cast<int>(std::floor(static_cast<double>(lo) / every)) * every;
        hi = static_cast<int>(std::ceil(static_cast<double>(hi) / every)) * every;
    }
    // Plain numbers from 0.001 to 10000, else every label as "2e-7" (one style per axis).
    const bool plain = lo >= -3 && hi <= 4;
    const auto label = [plain](double value) {
        const int e = floor_log10(value);
        if (plain)
            return tick_label(value, power_of_ten(std::min(e, 0)));
        char mantissa[16];
        std::snprintf(mantissa, sizeof mantissa, "%.3g", value / power_of_ten(e));
        return std::string(mantissa) + "e" + std::to_string(e);
    };
    for (int e = lo; e <= hi; e += every)
    {
        const double decade = power_of_ten(e);
        out.ticks.push_back({ decade, label(decade) });
        if (e == hi || every > 1 || decades > 6)
            continue;
        for (int m = 2; m <= 9; ++m) // 2 and 5 labelled when there are few decades, the rest grid lines
        {
            const double v = e >= 0 ? m * power_of_ten(e) : m / power_of_ten(-e);
            out.ticks.push_back({ v, decades <= 2 && (m == 2 || m == 5) ? label(v) : std::string() });
        }
    }
    out.lo = power_of_ten(lo);
    out.hi = power_of_ten(hi);
    return out;
}

} // namespace ansatz::engine::plot

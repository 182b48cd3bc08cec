// ansatz/statistics.hpp -- summaries that evaluators and samplers report with their error bars.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace ansatz
{

// Mean and standard error of a stream of values (Welford's update, in double).
class MeanAndError
{
public:
    void add(double x)
    {
        ++n_;
        const double d = x - mean_;
        mean_ += d / static_cast<double>(n_);
        m2_ += d * (x - mean_);
    }
    int64_t count() const { return n_; }
    double mean() const { return mean_; }
    // The sample standard deviation (n - 1 in the denominator) over sqrt(n); NaN for fewer than 2 values.
    double standard_error() const
    {
        if (n_ < 2)
            return std::numeric_limits<double>::quiet_NaN();
        const double n = static_cast<double>(n_);
        return std::sqrt(m2_ / (n - 1) / n);
    }

private:
    int64_t n_ = 0;
    double mean_ = 0;
    double m2_ = 0;
};

} // namespace ansatz

#include "support/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ansatz::test
{

ChiSquare chi_square(const std::vector<double>& p, const std::vector<int64_t>& counts, int64_t n)
{
    std::vector<size_t> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return p[x] < p[y]; });
    ChiSquare out;
    double expected = 0, observed = 0;
    for (size_t k : order)
    {
        expected += static_cast<double>(n) * p[k];
        observed += static_cast<double>(counts[k]);
        if (expected >= 5)
        {
            out.statistic += (observed - expected) * (observed - expected) / expected;
            ++out.cells;
            expected = observed = 0;
        }
    }
    out.pooled_remainder = expected != 0;
    const double k = out.cells - 1;
    const double c = 2.0 / (9.0 * k);
    out.threshold = k * std::pow(1 - c + 3.719 * std::sqrt(c), 3);
    return out;
}

} // namespace ansatz::test

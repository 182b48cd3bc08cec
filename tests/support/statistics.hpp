// support/statistics.hpp -- the goodness-of-fit test the sampler tests share.
#pragma once

#include <cstdint>
#include <vector>

namespace ansatz::test
{

// Chi-square goodness of fit of `counts` (n draws) against the exact probabilities p: cells that
// expect fewer than 5 draws are pooled, in increasing order of expectation, until they expect 5.
// `threshold` is the 1 - 1e-4 quantile of chi-square with cells - 1 degrees of freedom
// (Wilson-Hilferty: k (1 - 2/(9k) + z sqrt(2/(9k)))^3, z = 3.719).
struct ChiSquare
{
    double statistic = 0;
    int cells = 0;
    double threshold = 0;
    bool pooled_remainder = false; // a last pool that expected fewer than 5 (then not counted)
};

ChiSquare chi_square(const std::vector<double>& p, const std::vector<int64_t>& counts, int64_t n);

} // namespace ansatz::test

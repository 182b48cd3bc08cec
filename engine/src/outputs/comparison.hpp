// outputs/comparison.hpp -- measurements of several evaluate stages side by side: comparison.csv and one
// plot per metric against the stages' `x` (a temperature, a hidden-layer size), a line per `series`
// (Monte Carlo, an RBM's samples). Read back from a run folder's files alone, like the rest of the
// report, so a resumed run's comparison is the uninterrupted one's.
#pragma once

#include "outputs/report_data.hpp"

#include <map>
#include <string>
#include <vector>

namespace ansatz::engine::report
{

struct ComparisonRow
{
    double x = 0;
    std::string series;
    size_t stage = 0;
    std::map<std::string, double> values; // the stage's metrics (timing columns apart)
};

struct Comparison
{
    std::string x_label;              // the stages' `x_label`, "x" when none is given
    std::vector<std::string> series;  // in order of first appearance
    std::vector<std::string> columns; // metric columns (standard errors included), in metrics.csv order
    std::vector<ComparisonRow> rows;  // by series (in that order), then by x, then by stage
    bool empty() const { return rows.empty(); }
};

// The evaluate stages with an `x` key that have a row in metrics.csv. A stage's series is its `series`
// key, else the name of its model.
Comparison comparison_of(const RunData& run);

// x_label,series,stage,<columns...>: one line per row, numbers as %.17g, a missing value empty, a
// series name quoted when it holds a comma, a quote or a line break (RFC 4180).
std::string comparison_csv(const Comparison& comparison);

} // namespace ansatz::engine::report

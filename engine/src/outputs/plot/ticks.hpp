// plot/ticks.hpp -- the ticks of a plot axis: where they go, and how they read.
//
// Linear axes use Heckbert's "nice numbers" (P. S. Heckbert, "Nice numbers for graph labels",
// Graphics Gems, 1990): the range is rounded to 1, 2, 5 or 10 times a power of ten, the step between
// ticks to the nearest of those, and the axis is widened outwards to whole steps ("loose labelling"),
// so that every value lies inside the axis and the first and last ticks are its ends. Logarithmic
// axes tick at whole decades (every k-th when there are many), with 2 and 5 in between when there
// are few.
#pragma once

#include <string>
#include <vector>

namespace ansatz::engine::plot
{

struct Tick
{
    double value;
    std::string label; // empty for a minor tick (a grid line without a label)
};

struct Ticks
{
    double lo = 0; // the ends of the axis (the first and last ticks)
    double hi = 1;
    std::vector<Tick> ticks; // in increasing order
};

// Heckbert's nicenum: a number of the form {1, 2, 5, 10} x 10^k near x > 0; with `round`, the nearest
// such number, else the smallest that is >= x.
double nice_number(double x, bool round);

// Ticks for data in [min, max] (finite, min <= max) on a linear axis, about `target` of them (at
// least 2). A degenerate range (one value) is widened around it: by 10% of |value|, or by 1 for 0.
Ticks linear_ticks(double min, double max, int target = 5);

// Ticks for data in [min, max] (both > 0) on a logarithmic axis.
Ticks log_ticks(double min, double max);

// A tick value as it reads on the axis, given the distance between ticks: "0.25", "-3", "1.5e+30".
std::string tick_label(double value, double step);

} // namespace ansatz::engine::plot

// plot/plot.hpp -- plots as self-contained SVG: line plots, scatter plots and histograms.
//
// WHAT THIS IS
//     Each function returns one <svg> element (no XML declaration: svg_file() adds one for a file of
//     its own), with its size in pixels, a white background, a title, axis labels, ticks chosen by
//     Heckbert's nice numbers (ticks.hpp) and, where there is more than one series or class, a legend.
//     No script, no external font or stylesheet, no id attribute (so that many can be inlined into
//     one HTML page). All text is XML-escaped.
//
// WHAT IS SKIPPED, AND SAID
//     NaN and infinite values are not drawn; nor, on a logarithmic axis, values <= 0. Each kind of
//     skipped value is counted and said in a note under the title ("2 NaN values not shown"). A line
//     is broken where a value is missing. A plot with nothing to draw says so in its middle.
//
// MARKUP THE TESTS READ
//     <g class="axis x|y" data-lo=".." data-hi=".." data-scale="linear|log">, inside it one
//     <text class="tick" data-value="..">label</text> per labelled tick; <g class="legend"> with one
//     <text class="legend-entry"> per entry; <text class="note"> per note.
#pragma once

#include <string>
#include <vector>

namespace ansatz::engine::plot
{

enum class Scale
{
    linear,
    log
};

struct Axis
{
    std::string label;
    Scale scale = Scale::linear;
    bool integer = false; // ticks at whole numbers only (epochs, counts)
};

struct Figure
{
    std::string title;
    Axis x;
    Axis y;
    int width = 640;
    int height = 400;
};

enum class ErrorStyle
{
    bars, // a vertical bar with caps at each point
    band  // a shaded band between y - error and y + error
};

struct Series
{
    std::string name;
    std::vector<double> x;
    std::vector<double> y;
    std::vector<double> error; // empty, or one standard error (or half-width) per point
    ErrorStyle error_style = ErrorStyle::bars;
    bool line = true; // join the points (a series of one point is a marker either way)
};

// Several series against a shared x axis; the legend lists them all, in order.
std::string line_plot(const Figure& figure, const std::vector<Series>& series);

struct Points
{
    std::vector<double> x;
    std::vector<double> y;
    std::vector<int> label;               // one class index per point (empty: all one class)
    std::vector<std::string> class_names; // the name of class i (missing: "class i")
};

// Points coloured by their class; the legend names the classes that occur, with their counts.
std::string scatter_plot(const Figure& figure, const Points& points);

// Counts of `values` in bins of equal, nice width (about Sturges' number of them when `bins` is 0).
// figure.y is the count axis; its label defaults to "count".
std::string histogram(const Figure& figure, const std::vector<double>& values, int bins = 0);

// `svg` as a file: an XML declaration, then the element.
std::string svg_file(const std::string& svg);

// & < > " ' as entities; bytes that XML 1.0 forbids (control characters) dropped.
std::string xml_escape(const std::string& text);

} // namespace ansatz::engine::plot

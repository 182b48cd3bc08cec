#include "outputs/plot/plot.hpp"

#include "outputs/plot/ticks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>

namespace ansatz::engine::plot
{

namespace
{

// Tableau 10: distinct in colour and in lightness, and readable on white.
const char* const palette[] = { "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac" };
constexpr int palette_size = 10;
const char* const font = "DejaVu Sans, Helvetica, Arial, sans-serif";

constexpr double title_size = 15;
constexpr double label_size = 13;
constexpr double tick_size = 11.5;
constexpr double legend_size = 12;
constexpr double note_size = 11.5;
constexpr double inner_pad = 8; // between the frame and the first / last tick

std::string num(double v)
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f", v);
    std::string s = buffer;
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0)
        s.resize(s.size() - 2);
    return s == "-0" ? "0" : s;
}

std::string exact(double v)
{
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.17g", v);
    return buffer;
}

// Width of a text in pixels, estimated (DejaVu Sans averages about 0.6 em; code points, not bytes).
double text_width(const std::string& text, double size)
{
    size_t points = 0;
    for (unsigned char c : text)
        points += (c & 0xc0) != 0x80;
    return static_cast<double>(points) * size * 0.6;
}

std::string plural(size_t n, const std::string& one, const std::string& many)
{
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

// What was left out, said once per kind.
struct Skipped
{
    size_t nan = 0;
    size_t infinite = 0;
    size_t not_positive_x = 0;
    size_t not_positive_y = 0;

    std::vector<std::string> notes() const
    {
        std::vector<std::string> out;
        if (nan)
            out.push_back(plural(nan, "NaN value", "NaN values") + " not shown");
        if (infinite)
            out.push_back(plural(infinite, "infinite value", "infinite values") + " not shown");
        if (not_positive_x)
            out.push_back(plural(not_positive_x, "value", "values") +
                          " \xe2\x89\xa4 0 not shown on the logarithmic x axis");
        if (not_positive_y)
            out.push_back(plural(not_positive_y, "value", "values") +
                          " \xe2\x89\xa4 0 not shown on the logarithmic y axis");
        return out;
    }
};

// Whether (x, y) can be drawn on these axes; counts why not.
bool drawable(double x, double y, const Figure& f, Skipped& skipped)
{
    if (std::isnan(x) || std::isnan(y))
    {
        ++skipped.nan;
        return false;
    }
    if (!std::isfinite(x) || !std::isfinite(y))
    {
        ++skipped.infinite;
        return false;
    }
    bool ok = true;
    if (f.x.scale == Scale::log && x <= 0)
    {
        ++skipped.not_positive_x;
        ok = false;
    }
    if (f.y.scale == Scale::log && y <= 0)
    {
        ++skipped.not_positive_y;
        ok = false;
    }
    return ok;
}

struct Range
{
    double lo = INFINITY;
    double hi = -INFINITY;
    void add(double v)
    {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    bool empty() const { return lo > hi; }
};

Ticks axis_ticks(const Axis& axis, Range r, int target)
{
    if (r.empty())
        r = axis.scale == Scale::log ? Range{ 1, 10 } : Range{ 0, 1 };
    if (axis.scale == Scale::log)
        return log_ticks(r.lo, r.hi);
    Ticks t = linear_ticks(r.lo, r.hi, target);
    if (axis.integer && t.ticks.size() > 1 && t.ticks[1].value - t.ticks[0].value < 1)
    {
        // Whole numbers only: one tick per integer (the range is short, or the step would be >= 1).
        double lo = std::floor(r.lo), hi = std::ceil(r.hi);
        if (lo == hi)
        {
            lo -= 1;
            hi += 1;
        }
        t.ticks.clear();
        for (double v = lo; v <= hi; v += 1)
            t.ticks.push_back({ v, tick_label(v, 1) });
        t.lo = lo;
        t.hi = hi;
    }
    return t;
}

struct LegendEntry
{
    std::string text;
    std::string colour;
    bool line; // a line swatch (with a dot), else a dot or a square
    bool square = false;
};

// The frame of a plot: where the plot area is, and how values map onto it.
class Canvas
{
public:
    Canvas(const Figure& figure, Ticks x, Ticks y, std::vector<LegendEntry> legend,
           std::vector<std::string> notes)
        : f_(figure), x_(std::move(x)), y_(std::move(y)), legend_(std::move(legend)), notes_(std::move(notes))
    {
        double widest = 0;
        for (const Tick& t : y_.ticks)
            widest = std::max(widest, text_width(t.label, tick_size));
        left_ = 14 + (f_.y.label.empty() ? 0 : label_size + 8) + widest + 8;
        right_ = f_.width - 18.0;
        // Title, then legend rows, then notes, each laid out from the top.
        double top = f_.title.empty() ? 14 : 34;
        legend_rows_.clear();
        if (!legend_.empty())
        {
            double x = left_, row_top = top + 4;
            legend_rows_.push_back(row_top);
            for (LegendEntry& e : legend_)
            {
                const double w = 26 + text_width(e.text, legend_size) + 18;
                if (x + w > right_ && x > left_)
                {
                    x = left_;
                    row_top += 18;
                    legend_rows_.push_back(row_top);
                }
                placed_.push_back({ x, row_top });
                x += w;
            }
            top = row_top + 20;
        }
        notes_top_ = top + 2;
        top += 16.0 * static_cast<double>(notes_.size());
        top_ = top + 10;
        bottom_ = f_.height - (f_.x.label.empty() ? 30.0 : 50.0);
    }

    double px(double v) const { return map(v, x_, f_.x.scale, left_ + inner_pad, right_ - inner_pad); }
    double py(double v) const { return map(v, y_, f_.y.scale, bottom_ - inner_pad, top_ + inner_pad); }
    double left() const { return left_; }
    double right() const { return right_; }
    double top() const { return top_; }
    double bottom() const { return bottom_; }

    // The opening: the svg element, its background, the grid.
    std::string begin() const
    {
        std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(f_.width) +
                        "\" height=\"" + std::to_string(f_.height) + "\" viewBox=\"0 0 " +
                        std::to_string(f_.width) + " " + std::to_string(f_.height) +
                        "\" role=\"img\" aria-label=\"" + xml_escape(f_.title) + "\" font-family=\"" + font +
                        "\">\n";
        if (!f_.title.empty())
            s += "<title>" + xml_escape(f_.title) + "</title>\n";
        s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
        s += "<g class=\"grid\" stroke-width=\"1\">\n";
        for (const Tick& t : x_.ticks)
            s += "<line x1=\"" + num(px(t.value)) + "\" x2=\"" + num(px(t.value)) + "\" y1=\"" + num(top_) +
                 "\" y2=\"" + num(bottom_) + "\" stroke=\"" + (t.label.empty() ? "#f3f3f3" : "#e4e4e4") +
                 "\"/>\n";
        for (const Tick& t : y_.ticks)
            s += "<line x1=\"" + num(left_) + "\" x2=\"" + num(right_) + "\" y1=\"" + num(py(t.value)) +
                 "\" y2=\"" + num(py(t.value)) + "\" stroke=\"" + (t.label.empty() ? "#f3f3f3" : "#e4e4e4") +
                 "\"/>\n";
        s += "</g>\n";
        return s;
    }

    // The closing: axes, tick labels, axis labels, title, legend, notes.
    std::string end() const
    {
        std::string s;
        s += "<path d=\"M" + num(left_) + " " + num(top_) + "V" + num(bottom_) + "H" + num(right_) +
             "\" fill=\"none\" stroke=\"#777777\" stroke-width=\"1\"/>\n";
        s += axis("x", x_, f_.x);
        s += axis("y", y_, f_.y);
        if (!f_.title.empty())
            s += "<text class=\"title\" x=\"" + num(left_) + "\" y=\"24\" font-size=\"" + num(title_size) +
                 "\" font-weight=\"bold\" fill=\"#222222\">" + xml_escape(f_.title) + "</text>\n";
        if (!legend_.empty())
        {
            s += "<g class=\"legend\" font-size=\"" + num(legend_size) + "\" fill=\"#333333\">\n";
            for (size_t i = 0; i < legend_.size(); ++i)
            {
                const LegendEntry& e = legend_[i];
                const double x = placed_[i].first, y = placed_[i].second + 6;
                if (e.line)
                    s += "<line x1=\"" + num(x) + "\" x2=\"" + num(x + 20) + "\" y1=\"" + num(y) +
                         "\" y2=\"" + num(y) + "\" stroke=\"" + e.colour + "\" stroke-width=\"2.5\"/>\n";
                if (e.square)
                    s += "<rect x=\"" + num(x + 4) + "\" y=\"" + num(y - 6) +
                         "\" width=\"12\" height=\"12\" fill=\"" + e.colour + "\"/>\n";
                else
                    s += "<circle cx=\"" + num(x + 10) + "\" cy=\"" + num(y) + "\" r=\"3.5\" fill=\"" +
                         e.colour + "\"/>\n";
                s += "<text class=\"legend-entry\" x=\"" + num(x + 26) + "\" y=\"" + num(y) +
                     "\" dy=\"0.35em\">" + xml_escape(e.text) + "</text>\n";
            }
            s += "</g>\n";
        }
        for (size_t i = 0; i < notes_.size(); ++i)
            s += "<text class=\"note\" x=\"" + num(left_) + "\" y=\"" +
                 num(notes_top_ + 16.0 * static_cast<double>(i) + 6) + "\" dy=\"0.35em\" font-size=\"" +
                 num(note_size) + "\" font-style=\"italic\" fill=\"#a0522d\">" + xml_escape(notes_[i]) +
                 "</text>\n";
        return s + "</svg>\n";
    }

    // A sentence in the middle of the plot area, when there is nothing to draw.
    std::string nothing(const std::string& what) const
    {
        return "<text class=\"empty\" x=\"" + num((left_ + right_) / 2) + "\" y=\"" +
               num((top_ + bottom_) / 2) + "\" text-anchor=\"middle\" font-size=\"" + num(label_size) +
               "\" fill=\"#888888\">" + xml_escape(what) + "</text>\n";
    }

private:
    static double map(double v, const Ticks& t, Scale scale, double a, double b)
    {
        double u;
        if (scale == Scale::log)
            u = (std::log10(v) - std::log10(t.lo)) / (std::log10(t.hi) - std::log10(t.lo));
        else // halves first: hi - lo may overflow near the largest doubles
            u = (v / 2 - t.lo / 2) / (t.hi / 2 - t.lo / 2);
        if (!std::isfinite(u))
            u = 0.5;
        return a + u * (b - a);
    }

    std::string axis(const char* which, const Ticks& t, const Axis& a) const
    {
        const bool is_x = which[0] == 'x';
        std::string s = std::string("<g class=\"axis ") + which + "\" data-lo=\"" + exact(t.lo) +
                        "\" data-hi=\"" + exact(t.hi) + "\" data-scale=\"" +
                        (a.scale == Scale::log ? "log" : "linear") + "\" font-size=\"" + num(tick_size) +
                        "\" fill=\"#555555\">\n";
        for (const Tick& tick : t.ticks)
        {
            if (tick.label.empty())
                continue;
            if (is_x)
            {
                const double x = px(tick.value);
                s += "<line x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(bottom_) + "\" y2=\"" +
                     num(bottom_ + 4) + "\" stroke=\"#777777\"/>\n";
                s += "<text class=\"tick\" data-value=\"" + exact(tick.value) + "\" x=\"" + num(x) +
                     "\" y=\"" + num(bottom_ + 17) + "\" text-anchor=\"middle\">" + xml_escape(tick.label) +
                     "</text>\n";
            }
            else
            {
                const double y = py(tick.value);
                s += "<line x1=\"" + num(left_ - 4) + "\" x2=\"" + num(left_) + "\" y1=\"" + num(y) +
                     "\" y2=\"" + num(y) + "\" stroke=\"#777777\"/>\n";
                s += "<text class=\"tick\" data-value=\"" + exact(tick.value) + "\" x=\"" + num(left_ - 7) +
                     "\" y=\"" + num(y) + "\" dy=\"0.35em\" text-anchor=\"end\">" + xml_escape(tick.label) +
                     "</text>\n";
            }
        }
        if (!a.label.empty())
        {
            if (is_x)
                s += "<text class=\"label\" x=\"" + num((left_ + right_) / 2) + "\" y=\"" +
                     num(bottom_ + 38) + "\" text-anchor=\"middle\" font-size=\"" + num(label_size) +
                     "\" fill=\"#333333\">" + xml_escape(a.label) + "</text>\n";
            else
            {
                const double x = 14 + label_size / 2, y = (top_ + bottom_) / 2;
                s += "<text class=\"label\" transform=\"translate(" + num(x) + " " + num(y) +
                     ") rotate(-90)\" dy=\"0.35em\" text-anchor=\"middle\" font-size=\"" + num(label_size) +
                     "\" fill=\"#333333\">" + xml_escape(a.label) + "</text>\n";
            }
        }
        return s + "</g>\n";
    }

    const Figure& f_;
    Ticks x_, y_;
    std::vector<LegendEntry> legend_;
    std::vector<std::string> notes_;
    std::vector<double> legend_rows_;
    std::vector<std::pair<double, double>> placed_; // legend entries' top-left corners
    double left_ = 0, right_ = 0, top_ = 0, bottom_ = 0, notes_top_ = 0;
};

// A series as drawable runs (a skipped value breaks the line), with errors where given.
struct Point
{
    double x, y, error; // error: NaN when none
};

std::vector<std::vector<Point>> runs_of(const Series& s, const Figure& f, Skipped& skipped)
{
    std::vector<std::vector<Point>> runs(1);
    const size_t n = std::min(s.x.size(), s.y.size());
    for (size_t i = 0; i < n; ++i)
    {
        if (!drawable(s.x[i], s.y[i], f, skipped))
        {
            if (!runs.back().empty())
                runs.emplace_back();
            continue;
        }
        const double e = i < s.error.size() && std::isfinite(s.error[i]) && s.error[i] > 0 ? s.error[i] : NAN;
        runs.back().push_back({ s.x[i], s.y[i], e });
    }
    if (runs.back().empty())
        runs.pop_back();
    return runs;
}

// Many more points than pixels: keep the first, the lowest, the highest and the last point of each
// pixel column, in order, so the line looks the same.
std::vector<Point> thinned(const std::vector<Point>& run, const Canvas& c)
{
    const double width = c.right() - c.left();
    if (static_cast<double>(run.size()) <= 4 * width)
        return run;
    std::vector<Point> out;
    size_t i = 0;
    while (i < run.size())
    {
        const long column = std::lround(c.px(run[i].x));
        size_t j = i, lo = i, hi = i;
        while (j < run.size() && std::lround(c.px(run[j].x)) == column)
        {
            if (run[j].y < run[lo].y)
                lo = j;
            if (run[j].y > run[hi].y)
                hi = j;
            ++j;
        }
        std::vector<size_t> keep = { i, lo, hi, j - 1 };
        std::sort(keep.begin(), keep.end());
        keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
        for (size_t k : keep)
            out.push_back(run[k]);
        i = j;
    }
    return out;
}

} // namespace

std::string xml_escape(const std::string& text)
{
    std::string out;
    out.reserve(text.size());
    for (char c : text)
    {
        switch (c)
        {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            if (static_cast<unsigned char>(c) >= 0x20 || c == '\n' || c == '\t' || c == '\r')
                out += c;
        }
    }
    return out;
}

std::string svg_file(const std::string& svg)
{
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg;
}

std::string line_plot(const Figure& figure, const std::vector<Series>& series)
{
    Skipped skipped;
    std::vector<std::vector<std::vector<Point>>> all;
    Range xr, yr;
    for (const Series& s : series)
    {
        all.push_back(runs_of(s, figure, skipped));
        for (const auto& run : all.back())
            for (const Point& p : run)
            {
                xr.add(p.x);
                yr.add(p.y);
                if (std::isfinite(p.error))
                {
                    if (std::isfinite(p.y + p.error))
                        yr.add(p.y + p.error);
                    if (std::isfinite(p.y - p.error) &&
                        (figure.y.scale == Scale::linear || p.y - p.error > 0))
                        yr.add(p.y - p.error);
                }
            }
    }
    std::vector<LegendEntry> legend;
    if (series.size() > 1)
        for (size_t i = 0; i < series.size(); ++i)
            legend.push_back({ series[i].name, palette[i % palette_size], series[i].line });
    const Canvas c(figure, axis_ticks(figure.x, xr, 8), axis_ticks(figure.y, yr, 5), legend, skipped.notes());
    std::string s = c.begin();
    if (xr.empty())
        s += c.nothing("no finite values to show");
    const auto clamp_y = [&](double v) {
        if (figure.y.scale == Scale::log && v <= 0)
            return c.bottom();
        return c.py(v);
    };
    // Bands first, under every line.
    for (size_t k = 0; k < series.size(); ++k)
    {
        if (series[k].error_style != ErrorStyle::band)
            continue;
        for (const auto& run : all[k])
        {
            std::string upper, lower;
            size_t count = 0;
            for (const Point& p : run)
                if (std::isfinite(p.error))
                {
                    upper += (count ? "L" : "M") + num(c.px(p.x)) + " " + num(clamp_y(p.y + p.error));
                    ++count;
                }
            if (count < 2)
                continue;
            for (auto p = run.rbegin(); p != run.rend(); ++p)
                if (std::isfinite(p->error))
                    lower += "L" + num(c.px(p->x)) + " " + num(clamp_y(p->y - p->error));
            s += "<path class=\"band\" d=\"" + upper + lower + "Z\" fill=\"" + palette[k % palette_size] +
                 "\" fill-opacity=\"0.18\" stroke=\"none\"/>\n";
        }
    }
    for (size_t k = 0; k < series.size(); ++k)
    {
        const std::string colour = palette[k % palette_size];
        size_t points = 0;
        for (const auto& run : all[k])
            points += run.size();
        const bool markers = points <= 60;
        std::string line, dots, bars;
        for (const auto& full : all[k])
        {
            const std::vector<Point> run = thinned(full, c);
            if (series[k].line && run.size() > 1)
                for (size_t i = 0; i < run.size(); ++i)
                    line += (i ? "L" : "M") + num(c.px(run[i].x)) + " " + num(c.py(run[i].y));
            for (const Point& p : run)
            {
                const double x = c.px(p.x), y = c.py(p.y);
                if (markers || run.size() == 1 || !series[k].line)
                    dots += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"" +
                            (markers || run.size() == 1 ? "3.2" : "1.8") + "\"/>";
                if (series[k].error_style == ErrorStyle::bars && std::isfinite(p.error))
                {
                    const double y0 = clamp_y(p.y - p.error), y1 = clamp_y(p.y + p.error);
                    bars += "M" + num(x) + " " + num(y0) + "V" + num(y1) + "M" + num(x - 4) + " " + num(y0) +
                            "h8M" + num(x - 4) + " " + num(y1) + "h8";
                }
            }
        }
        s += "<g class=\"series\" data-name=\"" + xml_escape(series[k].name) + "\">\n";
        if (!line.empty())
            s += "<path d=\"" + line + "\" fill=\"none\" stroke=\"" + colour +
                 "\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n";
        if (!bars.empty())
            s += "<path class=\"error-bars\" d=\"" + bars + "\" fill=\"none\" stroke=\"" + colour +
                 "\" stroke-width=\"1.3\"/>\n";
        if (!dots.empty())
            s += "<g fill=\"" + colour + "\" stroke=\"#ffffff\" stroke-width=\"1\">" + dots + "</g>\n";
        s += "</g>\n";
    }
    return s + c.end();
}

std::string scatter_plot(const Figure& figure, const Points& points)
{
    Skipped skipped;
    Range xr, yr;
    const size_t n = std::min(points.x.size(), points.y.size());
    std::vector<char> shown(n, 0);
    std::map<int, size_t> counts; // class -> points shown
    for (size_t i = 0; i < n; ++i)
    {
        if (!drawable(points.x[i], points.y[i], figure, skipped))
            continue;
        shown[i] = 1;
        xr.add(points.x[i]);
        yr.add(points.y[i]);
        ++counts[i < points.label.size() ? std::max(points.label[i], -1) : 0];
    }
    const auto colour = [](int label) {
        return label < 0 ? std::string("#999999") : palette[label % palette_size];
    };
    const auto name = [&](int label) {
        if (label < 0)
            return std::string("unlabelled");
        if (static_cast<size_t>(label) < points.class_names.size())
            return points.class_names[static_cast<size_t>(label)];
        return "class " + std::to_string(label);
    };
    std::vector<LegendEntry> legend;
    if (!points.label.empty())
        for (const auto& [label, count] : counts)
            legend.push_back({ name(label) + " (" + std::to_string(count) + ")", colour(label), false });
    const Canvas c(figure, axis_ticks(figure.x, xr, 8), axis_ticks(figure.y, yr, 5), legend, skipped.notes());
    std::string s = c.begin();
    if (xr.empty())
        s += c.nothing("no finite values to show");
    const std::string r = n <= 500 ? "3.5" : n <= 5000 ? "2.2" : "1.5";
    std::map<int, std::string> dots;
    for (size_t i = 0; i < n; ++i)
        if (shown[i])
            dots[i < points.label.size() ? std::max(points.label[i], -1) : 0] +=
                "<circle cx=\"" + num(c.px(points.x[i])) + "\" cy=\"" + num(c.py(points.y[i])) + "\" r=\"" +
                r + "\"/>";
    for (const auto& [label, d] : dots)
        s += "<g class=\"class\" data-name=\"" + xml_escape(name(label)) + "\" fill=\"" + colour(label) +
             "\" fill-opacity=\"0.8\">" + d + "</g>\n";
    return s + c.end();
}

std::string histogram(const Figure& figure, const std::vector<double>& values, int bins)
{
    Figure f = figure;
    f.x.scale = Scale::linear;
    f.y.scale = Scale::linear;
    f.y.integer = true;
    if (f.y.label.empty())
        f.y.label = "count";
    Skipped skipped;
    Range r;
    std::vector<double> finite;
    for (double v : values)
        if (drawable(v, 0, f, skipped))
        {
            finite.push_back(v);
            r.add(v);
        }
    std::vector<size_t> counts;
    double start = 0, width = 1;
    if (!finite.empty())
    {
        const int k =
            bins > 0
                ? bins
                : std::clamp(static_cast<int>(std::ceil(std::log2(static_cast<double>(finite.size())))) + 1,
                             1, 50);
        if (r.lo == r.hi)
        {
            width = nice_number(r.lo == 0 ? 1 : std::abs(r.lo) * 0.1, true);
            start = r.lo - width / 2;
            counts.assign(1, finite.size());
        }
        else
        {
            // Each divided first: hi - lo may overflow near the largest doubles.
            width = nice_number(r.hi / k - r.lo / k, true);
            if (!std::isfinite(width))
                width = std::numeric_limits<double>::max() / 4;
            start = std::floor(r.lo / width) * width;
            const double span = (r.hi / 2 - start / 2) / (width / 2);
            const size_t count = std::max<size_t>(1, static_cast<size_t>(std::ceil(span)));
            counts.assign(std::min<size_t>(count, 1000), 0);
            for (double v : finite)
            {
                const double at = (v / 2 - start / 2) / (width / 2);
                const size_t bin =
                    std::min(counts.size() - 1, static_cast<size_t>(std::max(0.0, std::floor(at))));
                ++counts[bin];
            }
        }
    }
    Range xr, yr;
    yr.add(0);
    if (!counts.empty())
    {
        xr.add(start);
        xr.add(start + width * static_cast<double>(counts.size()));
        yr.add(static_cast<double>(*std::max_element(counts.begin(), counts.end())));
    }
    const Canvas c(f, axis_ticks(f.x, xr, 8), axis_ticks(f.y, yr, 5), {}, skipped.notes());
    std::string s = c.begin();
    if (counts.empty())
        s += c.nothing("no finite values to show");
    s += "<g class=\"bars\" fill=\"" + std::string(palette[0]) + "\" stroke=\"#ffffff\" stroke-width=\"1\">";
    for (size_t i = 0; i < counts.size(); ++i)
    {
        if (counts[i] == 0)
            continue;
        const double x0 = c.px(start + width * static_cast<double>(i));
        const double x1 = c.px(start + width * static_cast<double>(i + 1));
        const double y = c.py(static_cast<double>(counts[i])), y0 = c.py(0);
        s += "<rect data-count=\"" + std::to_string(counts[i]) + "\" x=\"" + num(x0) + "\" y=\"" + num(y) +
             "\" width=\"" + num(std::max(x1 - x0, 1.0)) + "\" height=\"" + num(std::max(y0 - y, 0.0)) +
             "\"/>";
    }
    s += "</g>\n";
    return s + c.end();
}

} // namespace ansatz::engine::plot

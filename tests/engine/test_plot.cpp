// The plotting module (engine/src/outputs/plot): nice-number ticks, and SVG that is well-formed and
// shows what the data implies -- ranges, ticks, legends and notes -- for ordinary and awkward data:
// one point, a constant series, NaN, negative and huge values, logarithmic axes with values <= 0.
#include "outputs/plot/plot.hpp"
#include "outputs/plot/ticks.hpp"
#include "support/xml_check.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <regex>

using namespace ansatz::engine::plot;
using ansatz::test::xml_problem;

namespace
{

struct AxisSeen
{
    double lo = NAN, hi = NAN;
    std::string scale;
    std::vector<double> ticks;
    std::vector<std::string> labels;
};

// The <g class="axis x|y"> group of an SVG, as the tests read it.
AxisSeen axis_of(const std::string& svg, const std::string& which)
{
    AxisSeen a;
    const size_t start = svg.find("<g class=\"axis " + which + "\"");
    REQUIRE(start != std::string::npos);
    const std::string group = svg.substr(start, svg.find("</g>", start) - start);
    std::smatch m;
    REQUIRE(std::regex_search(group, m,
                              std::regex("data-lo=\"([^\"]+)\" data-hi=\"([^\"]+)\" data-scale=\"(\\w+)\"")));
    a.lo = std::stod(m[1]);
    a.hi = std::stod(m[2]);
    a.scale = m[3];
    const std::regex tick("<text class=\"tick\" data-value=\"([^\"]+)\"[^>]*>([^<]*)</text>");
    for (auto it = std::sregex_iterator(group.begin(), group.end(), tick); it != std::sregex_iterator(); ++it)
    {
        a.ticks.push_back(std::stod((*it)[1]));
        a.labels.push_back((*it)[2]);
    }
    return a;
}

std::vector<std::string> texts_of(const std::string& svg, const std::string& cls)
{
    std::vector<std::string> out;
    const std::regex text("<text class=\"" + cls + "\"[^>]*>([^<]*)</text>");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), text); it != std::sregex_iterator(); ++it)
        out.push_back((*it)[1]);
    return out;
}

size_t count_of(const std::string& text, const std::string& what)
{
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

Series series(std::string name, std::vector<double> x, std::vector<double> y)
{
    Series s;
    s.name = std::move(name);
    s.x = std::move(x);
    s.y = std::move(y);
    return s;
}

Figure figure(Scale y = Scale::linear)
{
    Figure f;
    f.title = "loss";
    f.x = { "epoch", Scale::linear, true };
    f.y = { "loss", y, false };
    return f;
}

void check_well_formed(const std::string& svg)
{
    INFO(svg);
    CHECK(xml_problem(svg).empty());
    CHECK(xml_problem(svg_file(svg)).empty());
    CHECK(svg.find("NaN\"") == std::string::npos); // no NaN coordinate
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("inf\"") == std::string::npos);
}

} // namespace

TEST_CASE("Heckbert's nice numbers", "[plot]")
{
    CHECK(nice_number(10, false) == 10);
    CHECK(nice_number(2.5, true) == 2);
    CHECK(nice_number(3.2, false) == 5);
    CHECK(nice_number(0.3, true) == Approx(0.5));
    CHECK(nice_number(0.13, true) == Approx(0.1));
    CHECK(nice_number(7.5, false) == 10);
    CHECK(nice_number(1.4, true) == 1);
    CHECK(nice_number(6.9e29, true) == Approx(5e29));
}

TEST_CASE("linear ticks are loose nice labels: whole steps of 1, 2 or 5 x 10^k around the data", "[plot]")
{
    const auto values = [](const Ticks& t) {
        std::vector<double> v;
        for (const Tick& tick : t.ticks)
            v.push_back(tick.value);
        return v;
    };
    const auto labels = [](const Ticks& t) {
        std::vector<std::string> v;
        for (const Tick& tick : t.ticks)
            v.push_back(tick.label);
        return v;
    };
    CHECK(values(linear_ticks(0, 10)) == std::vector<double>{ 0, 2, 4, 6, 8, 10 });
    CHECK(values(linear_ticks(0.3, 9.7)) == std::vector<double>{ 0, 2, 4, 6, 8, 10 });
    CHECK(labels(linear_ticks(-3.7, 12.1)) == std::vector<std::string>{ "-5", "0", "5", "10", "15" });
    // Decimal steps are exact decimals: 0.6, not 0.6000000000000001.
    const Ticks small = linear_ticks(0.1, 0.7);
    CHECK(values(small) == std::vector<double>{ 0, 0.2, 0.4, 0.6, 0.8 });
    CHECK(labels(small) == std::vector<std::string>{ "0", "0.2", "0.4", "0.6", "0.8" });
    CHECK(small.lo == 0);
    CHECK(small.hi == 0.8);
    // A single value is widened around it, never a zero-width axis.
    const Ticks one = linear_ticks(5, 5);
    CHECK(one.lo < 5);
    CHECK(one.hi > 5);
    CHECK(one.ticks.size() >= 2);
    const Ticks zero = linear_ticks(0, 0);
    CHECK(zero.lo <= -1);
    CHECK(zero.hi >= 1);
    // Huge and negative.
    const Ticks huge = linear_ticks(-5, 1e30);
    CHECK(huge.lo <= -5);
    CHECK(huge.hi >= 1e30);
    CHECK(huge.hi <= 2e30);
    CHECK(labels(huge).back() == "1e30");
    CHECK(huge.ticks.size() <= 12);
    const Ticks largest = linear_ticks(-1.7e308, 1.7e308);
    CHECK(std::isfinite(largest.lo));
    CHECK(std::isfinite(largest.hi));
    CHECK(largest.ticks.size() >= 2);
    CHECK(labels(linear_ticks(0, 3e-6)) == std::vector<std::string>{ "0", "1e-6", "2e-6", "3e-6" });
    CHECK(labels(linear_ticks(1e-6, 2.2e-6)) ==
          std::vector<std::string>{ "1e-6", "1.5e-6", "2e-6", "2.5e-6" });
    CHECK(labels(linear_ticks(1, 1.000001)) == std::vector<std::string>{ "1.0000000", "1.0000002",
                                                                         "1.0000004", "1.0000006",
                                                                         "1.0000008", "1.0000010" });
}

TEST_CASE("log ticks sit on decades, with 2 and 5 between when the decades are few", "[plot]")
{
    const auto labelled = [](const Ticks& t) {
        std::vector<std::string> out;
        for (const Tick& tick : t.ticks)
            if (!tick.label.empty())
                out.push_back(tick.label);
        return out;
    };
    const Ticks two = log_ticks(3, 70);
    CHECK(two.lo == 1);
    CHECK(two.hi == 100);
    CHECK(labelled(two) == std::vector<std::string>{ "1", "2", "5", "10", "20", "50", "100" });
    const Ticks three = log_ticks(3, 700);
    CHECK(three.lo == 1);
    CHECK(three.hi == 1000);
    CHECK(labelled(three) == std::vector<std::string>{ "1", "10", "100", "1000" });
    CHECK(three.ticks.size() == 4 + 3 * 8); // 2..9 of each decade as grid lines
    CHECK(labelled(log_ticks(2e-7, 3e-5)) == std::vector<std::string>{ "1e-7", "1e-6", "1e-5", "1e-4" });
    const Ticks wide = log_ticks(1e-12, 1e30);
    CHECK(wide.lo <= 1e-12);
    CHECK(wide.hi >= 1e30);
    size_t labelled_wide = 0;
    for (const Tick& tick : wide.ticks)
        labelled_wide += !tick.label.empty();
    CHECK(labelled_wide <= 9);
    const Ticks single = log_ticks(10, 10);
    CHECK(single.lo < 10);
    CHECK(single.hi > 10);
}

TEST_CASE("a line plot of one point: a marker inside both axes, no legend, no note", "[plot]")
{
    const std::string svg = line_plot(figure(), { series("loss", { 3 }, { 5 }) });
    check_well_formed(svg);
    const AxisSeen x = axis_of(svg, "x"), y = axis_of(svg, "y");
    CHECK(x.lo < 3);
    CHECK(x.hi > 3);
    CHECK(y.lo < 5);
    CHECK(y.hi > 5);
    for (double v : x.ticks) // epochs: whole numbers only
        CHECK(v == std::round(v));
    CHECK(count_of(svg, "<circle") == 1);
    CHECK(svg.find("class=\"legend\"") == std::string::npos);
    CHECK(texts_of(svg, "note").empty());
    CHECK(svg.find("width=\"640\" height=\"400\"") != std::string::npos);
    CHECK(texts_of(svg, "title") == std::vector<std::string>{ "loss" });
    CHECK(texts_of(svg, "label") == std::vector<std::string>{ "epoch", "loss" });
}

TEST_CASE("a constant series gets a y axis around its value", "[plot]")
{
    const std::string svg = line_plot(figure(), { series("c", { 1, 2, 3, 4, 5 }, { 7, 7, 7, 7, 7 }) });
    check_well_formed(svg);
    const AxisSeen y = axis_of(svg, "y");
    CHECK(y.lo < 7);
    CHECK(y.hi > 7);
    CHECK(y.ticks.size() >= 2);
    const AxisSeen x = axis_of(svg, "x");
    CHECK(x.lo == 1);
    CHECK(x.hi == 5);
    CHECK(x.ticks == std::vector<double>{ 1, 2, 3, 4, 5 });
}

TEST_CASE("NaN values are skipped, said in a note, and break the line", "[plot]")
{
    const std::string svg =
        line_plot(figure(), { series("loss", { 1, 2, 3, 4, 5, 6 }, { 1, NAN, 3, 4, NAN, 2 }) });
    check_well_formed(svg);
    CHECK(texts_of(svg, "note") == std::vector<std::string>{ "2 NaN values not shown" });
    const AxisSeen y = axis_of(svg, "y");
    CHECK(y.lo <= 1);
    CHECK(y.hi >= 4);
    CHECK(y.hi < 10);
    // Runs [1], [3, 4], [2]: one line of one segment, and markers for every point.
    std::smatch m;
    const std::string series_group = svg.substr(svg.find("<g class=\"series\""));
    REQUIRE(std::regex_search(series_group, m, std::regex("<path d=\"([^\"]+)\"")));
    CHECK(count_of(m[1], "M") == 1);
    CHECK(count_of(series_group, "<circle") == 4);

    const std::string infinite =
        line_plot(figure(), { series("x", { 1, 2, 3 }, { 1, INFINITY, -INFINITY }) });
    check_well_formed(infinite);
    CHECK(texts_of(infinite, "note") == std::vector<std::string>{ "2 infinite values not shown" });
}

TEST_CASE("negative and huge values: the axis spans them and reads them", "[plot]")
{
    const std::string svg = line_plot(figure(), { series("big", { 1, 2, 3 }, { -5, 1e30, 3e29 }) });
    check_well_formed(svg);
    const AxisSeen y = axis_of(svg, "y");
    CHECK(y.lo <= -5);
    CHECK(y.lo > -1e30);
    CHECK(y.hi >= 1e30);
    CHECK(y.hi <= 2e30);
    CHECK(std::find(y.labels.begin(), y.labels.end(), "1e30") != y.labels.end());
    CHECK(std::find(y.ticks.begin(), y.ticks.end(), 0.0) != y.ticks.end());

    const std::string negative = line_plot(figure(), { series("neg", { 1, 2 }, { -43.5, -34 }) });
    check_well_formed(negative);
    const AxisSeen n = axis_of(negative, "y");
    CHECK(n.lo <= -43.5);
    CHECK(n.hi >= -34);
    CHECK(n.hi <= -30);
}

TEST_CASE("a log axis skips values <= 0 with a note and ticks at decades", "[plot]")
{
    const std::string svg =
        line_plot(figure(Scale::log), { series("p", { 1, 2, 3, 4 }, { 0, -1, 10, 1000 }) });
    check_well_formed(svg);
    CHECK(texts_of(svg, "note") ==
          std::vector<std::string>{ "2 values \xe2\x89\xa4 0 not shown on the logarithmic y axis" });
    const AxisSeen y = axis_of(svg, "y");
    CHECK(y.scale == "log");
    CHECK(y.lo == 10);
    CHECK(y.hi == 1000);
    CHECK(y.labels == std::vector<std::string>{ "10", "20", "50", "100", "200", "500", "1000" });
    Figure fx = figure();
    fx.x.scale = Scale::log;
    fx.x.integer = false;
    const std::string logx = line_plot(fx, { series("p", { 0, 1, 10 }, { 1, 2, 3 }) });
    CHECK(texts_of(logx, "note") ==
          std::vector<std::string>{ "1 value \xe2\x89\xa4 0 not shown on the logarithmic x axis" });
}

TEST_CASE("the legend names every series, escaped", "[plot]")
{
    const std::string svg =
        line_plot(figure(), { series("loss", { 1, 2, 3 }, { 3, 2, 1 }),
                              series("eval_loss <a & \"b\">", { 1, 2, 3 }, { 3.5, 2.5, 2 }) });
    check_well_formed(svg);
    CHECK(texts_of(svg, "legend-entry") ==
          std::vector<std::string>{ "loss", "eval_loss &lt;a &amp; &quot;b&quot;&gt;" });
    const AxisSeen y = axis_of(svg, "y");
    CHECK(y.lo <= 1);
    CHECK(y.hi >= 3.5);
    CHECK(svg.find("<a &") == std::string::npos);
}

TEST_CASE("error bars and bands widen the range to y +- error", "[plot]")
{
    Series bars = series("m", { 1, 2, 3 }, { 1, 2, 3 });
    bars.error = { 0.5, NAN, 4 };
    const std::string a = line_plot(figure(), { bars });
    check_well_formed(a);
    CHECK(a.find("class=\"error-bars\"") != std::string::npos);
    CHECK(axis_of(a, "y").hi >= 7);
    CHECK(axis_of(a, "y").lo <= -1);
    Series band = bars;
    band.error = { 0.5, 0.5, 0.5 };
    band.error_style = ErrorStyle::band;
    const std::string b = line_plot(figure(), { band });
    check_well_formed(b);
    CHECK(b.find("class=\"band\"") != std::string::npos);
    CHECK(axis_of(b, "y").lo <= 0.5);
    CHECK(axis_of(b, "y").hi >= 3.5);
}

TEST_CASE("a plot with nothing to draw says so and is still well-formed", "[plot]")
{
    const std::string svg = line_plot(figure(), { series("x", { 1, 2 }, { NAN, NAN }) });
    check_well_formed(svg);
    CHECK(svg.find("no finite values to show") != std::string::npos);
    CHECK(texts_of(svg, "note") == std::vector<std::string>{ "2 NaN values not shown" });
    check_well_formed(line_plot(figure(), {}));
    check_well_formed(histogram(figure(), {}));
    check_well_formed(scatter_plot(figure(), {}));
}

TEST_CASE("many points are thinned to the pixels but keep their extremes", "[plot]")
{
    Series s;
    s.name = "long";
    for (int i = 1; i <= 100000; ++i)
    {
        s.x.push_back(i);
        s.y.push_back(i == 5000 ? 100 : std::sin(i * 0.01));
    }
    const std::string svg = line_plot(figure(), { s });
    check_well_formed(svg);
    CHECK(svg.size() < 200000);
    CHECK(axis_of(svg, "y").hi >= 100);
    CHECK(axis_of(svg, "x").hi >= 100000);
}

TEST_CASE("a scatter plot colours points by class and its legend names the classes present", "[plot]")
{
    Points p;
    p.x = { 0, 1, 2, 3, 4, NAN };
    p.y = { 0, 1, 4, 9, 16, 1 };
    p.label = { 0, 0, 2, 7, 2, 0 };
    p.class_names = { "T-shirt/top", "Trouser", "Pullover" };
    Figure f = figure();
    f.x.integer = false;
    const std::string svg = scatter_plot(f, p);
    check_well_formed(svg);
    CHECK(texts_of(svg, "legend-entry") ==
          std::vector<std::string>{ "T-shirt/top (2)", "Pullover (2)", "class 7 (1)" });
    CHECK(texts_of(svg, "note") == std::vector<std::string>{ "1 NaN value not shown" });
    CHECK(count_of(svg, "<circle") == 5 + 3); // the points, and a dot per legend entry
    const AxisSeen y = axis_of(svg, "y");
    CHECK(y.lo <= 0);
    CHECK(y.hi >= 16);
}

TEST_CASE("a histogram bins at nice widths and counts every finite value", "[plot]")
{
    std::vector<double> values;
    for (int i = 0; i < 100; ++i)
        values.push_back(i);
    values.push_back(NAN);
    Figure f = figure();
    f.x = { "value", Scale::linear, false };
    f.y = {};
    const std::string svg = histogram(f, values);
    check_well_formed(svg);
    std::vector<int> counts;
    const std::regex bar("data-count=\"(\\d+)\"");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), bar); it != std::sregex_iterator(); ++it)
        counts.push_back(std::stoi((*it)[1]));
    CHECK(counts == std::vector<int>(10, 10)); // Sturges: 8 bins of 12.4 -> 10 of nice width 10
    CHECK(texts_of(svg, "note") == std::vector<std::string>{ "1 NaN value not shown" });
    CHECK(axis_of(svg, "y").lo == 0);
    CHECK(axis_of(svg, "y").hi >= 10);
    CHECK(axis_of(svg, "x").lo <= 0);
    CHECK(axis_of(svg, "x").hi >= 100);
    CHECK(texts_of(svg, "label") == std::vector<std::string>{ "value", "count" });

    const std::string constant = histogram(f, { 3, 3, 3 });
    check_well_formed(constant);
    CHECK(constant.find("data-count=\"3\"") != std::string::npos);
    CHECK(axis_of(constant, "x").lo < 3);
    CHECK(axis_of(constant, "x").hi > 3);
    check_well_formed(histogram(f, { -1e30, 1e30, 0 }));
}

TEST_CASE("text is XML-escaped and control characters are dropped", "[plot]")
{
    CHECK(xml_escape("a<b & c>\"d\" 'e'") == "a&lt;b &amp; c&gt;&quot;d&quot; &#39;e&#39;");
    CHECK(xml_escape(std::string("x\x01y\x1fz")) == "xyz");
    CHECK(xml_escape("tab\tand\nnewline") == "tab\tand\nnewline");
    Figure f = figure();
    f.title = "<script>alert('x')</script> & more";
    const std::string svg = line_plot(f, { series("a", { 1 }, { 1 }) });
    check_well_formed(svg);
    CHECK(svg.find("<script") == std::string::npos);
}

TEST_CASE("the checker refuses XML that is not well-formed", "[plot]")
{
    CHECK(xml_problem("<a><b></a></b>") != "");
    CHECK(xml_problem("<a x=1/>") != "");
    CHECK(xml_problem("<a>&nbsp;</a>") != "");
    CHECK(xml_problem("<a>1 < 2</a>") != "");
    CHECK(xml_problem("<a x=\"1\" x=\"2\"/>") != "");
    CHECK(xml_problem("<a/><b/>") != "");
    CHECK(xml_problem("<a>") != "");
    CHECK(xml_problem("<!DOCTYPE html>\n<html><!-- c --><p>&amp;&#160;&#x41;</p></html>\n") == "");
}

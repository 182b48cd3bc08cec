#include "outputs/report.hpp"

#include "outputs/comparison.hpp"
#include "outputs/files.hpp"
#include "outputs/metrics_csv.hpp"
#include "outputs/plot/plot.hpp"
#include "outputs/report_data.hpp"
#include "outputs/run_info.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <stdexcept>
#include <unistd.h>

namespace ansatz::engine
{

namespace fs = std::filesystem;
using report::Column;
using report::RunData;
using report::StageInfo;

namespace
{

std::string esc(const std::string& s)
{
    return plot::xml_escape(s);
}

// A relative path as a URL: '/' kept, everything outside the unreserved set percent-encoded.
std::string url(const std::string& path)
{
    static const char* const hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : path)
        if (std::isalnum(c) || c == '/' || c == '.' || c == '-' || c == '_' || c == '~')
            out += static_cast<char>(c);
        else
        {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    return out;
}

std::string format(const char* f, double v)
{
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, f, v);
    return buffer;
}

std::string value_text(double v)
{
    if (std::isnan(v))
        return "NaN";
    if (std::isinf(v))
        return v > 0 ? "inf" : "\xe2\x88\x92inf";
    std::string s = format("%.5g", v);
    if (!s.empty() && s[0] == '-')
        s = "\xe2\x88\x92" + s.substr(1); // a real minus sign
    return s;
}

std::string duration_text(double seconds)
{
    if (!std::isfinite(seconds) || seconds < 0)
        return "\xe2\x80\x94";
    if (seconds < 10)
        return format("%.2f s", seconds);
    if (seconds < 60)
        return format("%.1f s", seconds);
    const long total = std::lround(seconds);
    if (total < 3600)
        return std::to_string(total / 60) + " min " + std::to_string(total % 60) + " s";
    return std::to_string(total / 3600) + " h " + std::to_string(total % 3600 / 60) + " min";
}

std::string bytes_text(uintmax_t bytes)
{
    const char* units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4)
    {
        v /= 1024;
        ++u;
    }
    return u == 0 ? std::to_string(bytes) + " B" : format(v < 10 ? "%.1f " : "%.0f ", v) + units[u];
}

std::string rate_text(double v, const std::string& column)
{
    // "samples_per_second" -> "12,345 samples/s"
    std::string unit = column.substr(0, column.find("_per_second"));
    std::string digits;
    if (v < 100)
        digits = format("%.3g", v);
    else
    {
        // Thousands separated: built forwards (an insert() here trips a false -Wrestrict in GCC 12).
        const std::string plain = format("%.0f", v);
        for (size_t i = 0; i < plain.size(); ++i)
        {
            digits += plain[i];
            const size_t left = plain.size() - i - 1;
            if (left > 0 && left % 3 == 0 && std::isdigit(static_cast<unsigned char>(plain[i])))
                digits += ',';
        }
    }
    return digits + " " + unit + "/s";
}

std::string shell_quote(const std::string& word)
{
    if (!word.empty() &&
        word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,+-@%") ==
            std::string::npos)
        return word;
    std::string out = "'";
    for (char c : word)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// A scalar of run.yaml by path, or "".
std::string info_at(const YAML::Node& node, const char* const* key, const char* const* end)
{
    if (key == end)
        return node.IsScalar() ? node.Scalar() : std::string();
    if (!node.IsMap())
        return {};
    const YAML::Node child = node[*key];
    return child ? info_at(child, key + 1, end) : std::string();
}

std::string info(const RunData& r, std::initializer_list<const char*> path)
{
    return r.info.IsMap() ? info_at(r.info, path.begin(), path.end()) : std::string();
}

std::string file_stem(const std::string& name)
{
    std::string out;
    for (char c : name)
        out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
    return out;
}

bool is_evaluation(const std::string& type)
{
    return type.rfind("eval", 0) == 0;
}

struct Plot
{
    std::string file; // under plots/
    std::string svg;
    std::string caption;
};

struct Stats
{
    double first = NAN, last = NAN, min = INFINITY, max = -INFINITY;
};

Stats stats_of(const Column& c)
{
    Stats s;
    if (!c.values.empty())
    {
        s.first = c.values.front();
        s.last = c.values.back();
    }
    for (double v : c.values)
        if (!std::isnan(v))
        {
            s.min = std::min(s.min, v);
            s.max = std::max(s.max, v);
        }
    return s;
}

plot::Scale scale_for(const std::vector<plot::Series>& series)
{
    double lo = INFINITY, hi = -INFINITY;
    for (const plot::Series& s : series)
        for (double v : s.y)
            if (std::isfinite(v))
            {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
    // Positive values over three decades or more read better on a logarithmic axis.
    return lo > 0 && hi / lo >= 1000 ? plot::Scale::log : plot::Scale::linear;
}

const Column* find_column(const std::vector<Column>& columns, const std::string& name)
{
    for (const Column& c : columns)
        if (c.name == name)
            return &c;
    return nullptr;
}

// The standard errors of `metric` at its epochs, when a column "metric_stderr" (...) has them.
std::vector<double> errors_for(const std::vector<Column>& columns, const Column& metric)
{
    for (const Column& e : columns)
        if (report::error_of(e.name) == metric.name)
        {
            std::vector<double> out;
            for (double epoch : metric.epochs)
            {
                double v = NAN;
                for (size_t i = 0; i < e.epochs.size(); ++i)
                    if (e.epochs[i] == epoch)
                        v = e.values[i];
                out.push_back(v);
            }
            return out;
        }
    return {};
}

bool plotted_per_epoch(const RunData& r, const StageInfo& s)
{
    if (s.type == "train")
        return s.rows > 0;
    std::vector<int64_t> epochs;
    for (const report::MetricRow& row : r.rows)
        if (row.stage == s.index)
            epochs.push_back(row.epoch);
    std::sort(epochs.begin(), epochs.end());
    return std::unique(epochs.begin(), epochs.end()) - epochs.begin() > 1;
}

// One plot per metric of the stage against epoch (timing columns apart), a train metric and its
// evaluations together.
std::vector<Plot> stage_plots(const RunData& r, const StageInfo& s)
{
    std::vector<Plot> out;
    if (!plotted_per_epoch(r, s))
        return out;
    const std::vector<Column> columns = report::stage_columns(r, s.index);
    std::vector<std::string> bases;
    std::map<std::string, std::vector<const Column*>> groups;
    for (const Column& c : columns)
    {
        if (MetricsCsv::is_timing(c.name))
            continue;
        const std::string owner = report::error_of(c.name);
        if (!owner.empty() && find_column(columns, owner))
            continue; // drawn as the errors of its metric
        const std::string base = report::metric_base(c.name);
        if (!groups.count(base))
            bases.push_back(base);
        groups[base].push_back(&c);
    }
    // Later evaluation stages (up to the next train stage) add their values at this stage's last epoch.
    std::map<std::string, std::vector<plot::Series>> evaluations;
    for (const StageInfo& later : r.stages)
    {
        if (later.index <= s.index)
            continue;
        if (later.type == "train")
            break;
        if (!is_evaluation(later.type))
            continue;
        const std::vector<Column> theirs = report::stage_columns(r, later.index);
        for (const Column& c : theirs)
        {
            const std::string base = report::metric_base(c.name);
            if (MetricsCsv::is_timing(c.name) || !groups.count(base) || c.values.empty())
                continue;
            plot::Series e;
            e.name = "stage " + std::to_string(later.index) + " (" + later.type + "): " + c.name;
            e.x = { static_cast<double>(s.epochs_done) };
            e.y = { c.values.back() };
            const std::vector<double> err = errors_for(theirs, c);
            if (!err.empty())
                e.error = { err.back() };
            e.line = false;
            evaluations[base].push_back(e);
        }
    }
    for (const std::string& base : bases)
    {
        std::vector<plot::Series> series;
        for (const Column* c : groups[base])
        {
            plot::Series line;
            line.name = c->name;
            line.x = c->epochs;
            line.y = c->values;
            line.error = errors_for(columns, *c);
            line.error_style = c->values.size() >= 8 ? plot::ErrorStyle::band : plot::ErrorStyle::bars;
            series.push_back(std::move(line));
        }
        for (const plot::Series& e : evaluations[base])
            series.push_back(e);
        plot::Figure f;
        f.title = base;
        f.x = { "epoch", plot::Scale::linear, true };
        f.y = { base, scale_for(series), false };
        std::string caption = "<b>" + esc(base) + "</b> against epoch";
        if (series.size() > 1)
        {
            std::string names;
            for (const plot::Series& x : series)
                names += (names.empty() ? "" : ", ") + ("<code>" + esc(x.name) + "</code>");
            caption += ": " + names;
        }
        if (f.y.scale == plot::Scale::log)
            caption += " (logarithmic axis)";
        for (const plot::Series& x : series)
            if (!x.error.empty())
            {
                caption += "; shaded or barred: \xc2\xb1 one standard error";
                break;
            }
        out.push_back({ "stage" + std::to_string(s.index) + "_" + file_stem(base) + ".svg",
                        plot::line_plot(f, series), caption });
    }
    return out;
}

// Timing curves of a stage with more than one epoch: seconds and each throughput column.
std::vector<Plot> timing_plots(const RunData& r, const StageInfo& s)
{
    std::vector<Plot> out;
    if (!plotted_per_epoch(r, s) || s.rows < 2)
        return out;
    for (const Column& c : report::stage_columns(r, s.index))
    {
        if (!MetricsCsv::is_timing(c.name))
            continue;
        plot::Figure f;
        f.title = "stage " + std::to_string(s.index) + " (" + s.type + "): " + c.name;
        f.x = { "epoch", plot::Scale::linear, true };
        f.y = { c.name, plot::Scale::linear, false };
        plot::Series line{ c.name, c.epochs, c.values, {}, plot::ErrorStyle::bars, true };
        out.push_back({ "stage" + std::to_string(s.index) + "_time_" + file_stem(c.name) + ".svg",
                        plot::line_plot(f, { line }),
                        "<b>" + esc(c.name) + "</b> per epoch of stage " + std::to_string(s.index) });
    }
    return out;
}

// pipeline.yaml with its keys and comments coloured.
std::string highlighted_yaml(const std::string& text)
{
    std::string out;
    size_t start = 0;
    while (start <= text.size())
    {
        size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        std::string line = text.substr(start, end - start);
        std::string comment;
        // A comment starts at '#' at the line's start or after a blank, outside quotes.
        char quote = 0;
        for (size_t i = 0; i < line.size(); ++i)
        {
            const char c = line[i];
            if (quote)
                quote = c == quote ? 0 : quote;
            else if (c == '"' || c == '\'')
                quote = c;
            else if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t'))
            {
                comment = line.substr(i);
                line.resize(i);
                break;
            }
        }
        // "  - key: value" / "key: value": the key coloured.
        size_t k = line.find_first_not_of(' ');
        if (k != std::string::npos && line.compare(k, 2, "- ") == 0)
            k = line.find_first_not_of(' ', k + 2);
        const size_t colon = line.find(':', k == std::string::npos ? 0 : k);
        if (k != std::string::npos && colon != std::string::npos && line[k] != '{' && line[k] != '[' &&
            line[k] != '"' && line[k] != '\'' && (colon + 1 == line.size() || line[colon + 1] == ' ') &&
            line.substr(k, colon - k).find_first_of(" {}[],") == std::string::npos)
            out += esc(line.substr(0, k)) + "<span class=\"k\">" + esc(line.substr(k, colon - k)) +
                   "</span>:" + "<span class=\"v\">" + esc(line.substr(colon + 1)) + "</span>";
        else
            out += esc(line);
        if (!comment.empty())
            out += "<span class=\"c\">" + esc(comment) + "</span>";
        if (end >= text.size())
            break;
        out += "\n";
        start = end + 1;
    }
    return out;
}

const char* const style = R"(
:root { --ink: #1d2433; --muted: #5f6b7f; --line: #e3e7ee; --bg: #f3f5f8; --card: #ffffff;
        --accent: #4e79a7; --accent-dark: #27476e; }
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--ink); font: 15px/1.55 "DejaVu Sans", system-ui, -apple-system, "Segoe UI", Roboto,
       Helvetica, Arial, sans-serif; }
a { color: var(--accent-dark); }
code, pre, .mono { font-family: "DejaVu Sans Mono", ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
       font-size: 0.9em; }
.top { background: linear-gradient(120deg, #1f3150 0%, #2f5382 55%, #4e79a7 100%); color: #ffffff; }
.top .inner, main, footer { max-width: 1240px; margin: 0 auto; padding-left: 32px; padding-right: 32px; }
.top .inner { padding-top: 26px; padding-bottom: 0; }
.kicker { font-size: 12px; letter-spacing: 0.12em; text-transform: uppercase; opacity: 0.75; }
h1 { margin: 4px 0 6px; font-size: 30px; line-height: 1.2; font-weight: 700; }
h1 .stamp { font-weight: 400; opacity: 0.7; font-size: 20px; margin-left: 8px; }
.status { display: inline-block; vertical-align: middle; margin-left: 12px; padding: 3px 12px; border-radius: 999px;
          font-size: 13px; font-weight: 700; letter-spacing: 0.02em; }
.status.ok { background: #dff3e2; color: #1b5e20; }
.status.warn { background: #fff1cc; color: #7a4b00; }
.status.none { background: #e9edf3; color: #3d4756; }
.lede { margin: 0 0 18px; opacity: 0.9; max-width: 900px; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 10px; margin: 0 0 20px; }
dl.facts div { background: rgba(255, 255, 255, 0.11); border: 1px solid rgba(255, 255, 255, 0.16); border-radius: 10px;
               padding: 9px 14px; }
dl.facts dt { font-size: 11px; letter-spacing: 0.08em; text-transform: uppercase; opacity: 0.75; }
dl.facts dd { margin: 2px 0 0; font-size: 15px; font-weight: 600; overflow-wrap: anywhere; }
nav { display: flex; flex-wrap: wrap; gap: 4px; padding-bottom: 12px; }
nav a { color: #ffffff; text-decoration: none; padding: 5px 12px; border-radius: 8px; font-size: 14px;
        background: rgba(255, 255, 255, 0.08); }
nav a:hover { background: rgba(255, 255, 255, 0.2); }
main { padding-top: 8px; padding-bottom: 24px; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 14px; padding: 20px 26px 22px;
               margin-top: 22px; box-shadow: 0 1px 2px rgba(16, 24, 40, 0.05); }
h2 { margin: 0 0 4px; font-size: 21px; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
h2 .n { display: inline-flex; align-items: center; justify-content: center; min-width: 30px; height: 30px;
        border-radius: 8px; background: var(--accent); color: #ffffff; font-size: 15px; }
h2 .status { margin-left: 4px; }
h3 { font-size: 15px; margin: 20px 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.06em; }
.settings { display: flex; flex-wrap: wrap; gap: 6px; margin: 10px 0 14px; padding: 0; list-style: none; }
.settings li { background: #f1f4f8; border: 1px solid var(--line); border-radius: 7px; padding: 2px 9px; font-size: 13px; }
.settings li b { color: var(--muted); font-weight: 400; margin-right: 5px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase;
     letter-spacing: 0.05em; border-bottom: 2px solid var(--line); padding: 6px 10px; }
td { border-bottom: 1px solid var(--line); padding: 6px 10px; vertical-align: top; }
tbody tr:nth-child(even) td { background: #fafbfd; }
table.kv tr td { background: none; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.wrap { word-break: break-all; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(470px, 1fr)); gap: 18px; margin-top: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 12px; padding: 8px 8px 4px; background: #ffffff; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { font-size: 13px; color: var(--muted); padding: 6px 8px 4px; }
.pictures { display: flex; flex-wrap: wrap; gap: 18px; margin-top: 16px; }
.pictures figure { width: fit-content; max-width: 100%; }
.pictures figcaption { width: 0; min-width: 100%; }
.pictures figure.chart { flex: 1 1 420px; max-width: 640px; }
.pictures img { display: block; max-width: 100%; height: auto; border-radius: 8px; image-rendering: pixelated; }
.pictures img.missing { min-width: 240px; min-height: 60px; border: 2px dashed #d08770; }
.empty { color: var(--muted); font-style: italic; margin: 12px 0 0; }
.notes { background: #fff8e6; border: 1px solid #f3d79b; color: #5c4000; border-radius: 12px; padding: 12px 18px;
         margin-top: 22px; }
.notes p { margin: 2px 0; }
.bar { width: 160px; height: 9px; background: #e9edf3; border-radius: 5px; overflow: hidden; display: inline-block;
       vertical-align: middle; margin-right: 8px; }
.bar span { display: block; height: 100%; background: var(--accent); }
pre.yaml { background: #111a2b; color: #dfe6ee; padding: 16px 20px; border-radius: 10px; overflow: auto;
           line-height: 1.5; font-size: 13px; margin: 10px 0 0; }
pre.yaml .k { color: #8fc7ff; }
pre.yaml .v { color: #e7d8a8; }
pre.yaml .c { color: #8592a6; font-style: italic; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 10px 28px; }
table.kv th { width: 150px; text-transform: none; letter-spacing: 0; font-size: 13px; border-bottom: 1px solid var(--line);
              vertical-align: top; }
.small { font-size: 12px; color: var(--muted); }
footer { color: var(--muted); font-size: 13px; padding-top: 6px; padding-bottom: 36px; }
)";

class Page
{
public:
    explicit Page(const RunData& r) : r_(r) {}

    ReportFiles build()
    {
        std::string body;
        body += header();
        body += "<main>\n";
        if (!r_.problems.empty() || !r_.has_pipeline || !r_.info.IsMap())
        {
            body += "<div class=\"notes\">\n";
            if (!r_.has_pipeline)
                body += "<p>This folder has no pipeline.yaml: it does not look like a run folder.</p>\n";
            if (!r_.info.IsMap())
                body +=
                    "<p>run.yaml is missing, so the command line, the versions and the machine are not known "
                    "(a run made by an older ansatz, or one that stopped before it began).</p>\n";
            for (const std::string& p : r_.problems)
                body += "<p>" + esc(p) + "</p>\n";
            body += "</div>\n";
        }
        if (!r_.has_metrics)
            body +=
                "<section class=\"card\"><h2>No metrics yet</h2><p class=\"empty\">metrics.csv is not in the "
                "folder: the run has not finished its first epoch or stage, or it stopped "
                "before.</p></section>\n";
        body += comparison_section();
        for (const StageInfo& s : r_.stages)
            body += stage_section(s);
        body += other_pictures();
        body += timing_section();
        body += pipeline_section();
        body += environment_section();
        body += files_section();
        body += "</main>\n";
        body += footer();

        const std::string title = (r_.name.empty() ? std::string("run") : r_.name) + " \xc2\xb7 " +
                                  r_.folder.filename().string() + " \xc2\xb7 Ansatz run report";
        ReportFiles out;
        out.html = "<!DOCTYPE html>\n<html lang=\"en\" xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n"
                   "<meta charset=\"utf-8\"/>\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
                   "<meta name=\"generator\" content=\"ansatz " +
                   esc(ansatz_version()) + "\"/>\n<title>" + esc(title) + "</title>\n<style>" + style +
                   "</style>\n</head>\n<body>\n" + body + "</body>\n</html>\n";
        out.plots = std::move(plots_);
        out.files = std::move(files_);
        return out;
    }

private:
    double stage_seconds(size_t stage) const
    {
        double total = 0;
        for (const report::MetricRow& row : r_.rows)
            if (row.stage == stage)
            {
                const auto found = row.values.find("seconds");
                if (found != row.values.end() && std::isfinite(found->second))
                    total += found->second;
            }
        return total;
    }

    std::string status_pill(bool large) const
    {
        (void)large;
        if (!r_.has_metrics && r_.pictures.empty())
            return "<span class=\"status none\">no metrics yet</span>";
        size_t done = 0;
        for (const StageInfo& s : r_.stages)
            done += s.complete;
        if (!r_.stages.empty() && done == r_.stages.size())
            return "<span class=\"status ok\">finished</span>";
        return "<span class=\"status warn\">incomplete: " + std::to_string(done) + " of " +
               std::to_string(r_.stages.size()) + " stages</span>";
    }

    std::string header() const
    {
        std::string h =
            "<header class=\"top\"><div class=\"inner\">\n<div class=\"kicker\">Ansatz run report</div>\n";
        h += "<h1>" + esc(r_.name.empty() ? std::string("(unnamed pipeline)") : r_.name) +
             "<span class=\"stamp\">" + esc(r_.folder.filename().string()) + "</span>" + status_pill(true) +
             "</h1>\n";
        // One line of what ran.
        std::string lede;
        for (const StageInfo& s : r_.stages)
        {
            std::string part = s.type;
            if (s.type == "train")
                part += " (" + std::to_string(s.epochs_done) + " of " + std::to_string(s.epochs_planned) +
                        " epochs)";
            else if (s.type == "sample" && s.keys.count("count"))
                part += " (" + s.keys.at("count") + " chains" +
                        (s.keys.count("steps") ? ", " + s.keys.at("steps") + " sweeps" : std::string()) + ")";
            lede += (lede.empty() ? "" : " \xe2\x86\x92 ") + part;
        }
        if (!lede.empty())
            h += "<p class=\"lede\">" +
                 esc(std::to_string(r_.stages.size()) + (r_.stages.size() == 1 ? " stage: " : " stages: ") +
                     lede) +
                 "</p>\n";
        double total = 0;
        for (const StageInfo& s : r_.stages)
            total += stage_seconds(s.index);
        std::string seed = info(r_, { "seed" }), threads = info(r_, { "threads" });
        if (seed.empty() && r_.pipeline.IsMap() && r_.pipeline["seed"])
            seed = r_.pipeline["seed"].Scalar();
        if (threads.empty() && r_.pipeline.IsMap() && r_.pipeline["threads"])
            threads = r_.pipeline["threads"].Scalar();
        std::string started = info(r_, { "started" });
        if (started.size() >= 19)
            started = started.substr(0, 10) + " " + started.substr(11, 5);
        const auto fact = [](const std::string& name, const std::string& value) {
            return "<div><dt>" + esc(name) + "</dt><dd title=\"" + esc(value) + "\">" +
                   esc(value.empty() ? std::string("\xe2\x80\x94") : value) + "</dd></div>\n";
        };
        h += "<dl class=\"facts\">\n";
        h += fact("started", started);
        h += fact("time in stages", r_.has_metrics ? duration_text(total) : "");
        h += fact("seed", seed);
        h += fact("threads", threads);
        h += fact("last checkpoint", r_.checkpoints.empty() ? "none" : r_.checkpoints.back());
        const std::string version = info(r_, { "ansatz", "version" });
        h += fact("ansatz", version.empty() ? "" : version + " (ABI " + info(r_, { "ansatz", "abi" }) + ")");
        h += "</dl>\n<nav>\n";
        for (const StageInfo& s : r_.stages)
            h += "<a href=\"#stage-" + std::to_string(s.index) + "\">" + std::to_string(s.index) +
                 " \xc2\xb7 " + esc(s.type) + "</a>\n";
        if (!report::comparison_of(r_).empty())
            h += "<a href=\"#comparison\">comparison</a>\n";
        h += "<a href=\"#timing\">timing</a>\n<a href=\"#pipeline\">pipeline</a>\n"
             "<a href=\"#environment\">environment</a>\n<a "
             "href=\"#files\">files</a>\n</nav>\n</div></header>\n";
        return h;
    }

    std::string figure_of(const Plot& p, const std::string& cls = "")
    {
        plots_.push_back({ p.file, plot::svg_file(p.svg) });
        return (cls.empty() ? "<figure>\n" : "<figure class=\"" + cls + "\">\n") + p.svg + "<figcaption>" +
               p.caption + " \xc2\xb7 <a href=\"plots/" + url(p.file) + "\">plots/" + esc(p.file) +
               "</a></figcaption>\n</figure>\n";
    }

    std::string picture_caption(const report::Picture& p) const
    {
        std::string caption;
        const StageInfo* s = nullptr;
        for (const StageInfo& x : r_.stages)
            if (x.index == p.stage)
                s = &x;
        const std::string name = fs::path(p.path).filename().string();
        if (s && s->type == "sample" && name.find("_samples.") != std::string::npos &&
            !s->keys.count("sampler"))
            caption = "Samples of stage " + std::to_string(s->index) + " (sample): decode_mean of " +
                      (s->keys.count("count") ? s->keys.at("count") + " " : std::string()) +
                      "draws h ~ N(0, I) from the prior of latent model " +
                      (s->keys.count("model") ? s->keys.at("model") : std::string("?")) +
                      ", one image per draw.";
        else if (s && s->type == "latent" && name.find("_reconstructions.") != std::string::npos)
            caption = "Reconstructions (stage " + std::to_string(s->index) +
                      ", latent): rows of originals, each above the row of their reconstructions "
                      "decode_mean(mu(x)).";
        else if (s && s->type == "latent" && name.find("_manifold.") != std::string::npos)
            caption =
                "The decoded manifold (stage " + std::to_string(s->index) +
                ", latent): decode_mean over a grid of the prior's quantiles, z1 from left to right, z2 from "
                "bottom to top.";
        else if (s && s->type == "latent" && name.find("_latent_scatter.") != std::string::npos)
            caption = "Posterior means mu(x) of the data of stage " + std::to_string(s->index) +
                      " (latent), coloured by label.";
        else if (s && s->type == "sample" && name.find("_samples.") != std::string::npos)
        {
            caption = "The final states of the " +
                      (s->keys.count("count") ? s->keys.at("count") + " " : std::string()) +
                      "chains of stage " + std::to_string(s->index) + " (sample)";
            if (s->keys.count("steps"))
                caption += " after " + s->keys.at("steps") + " sweeps";
            if (s->keys.count("sampler"))
                caption += " of " + s->keys.at("sampler");
            caption += ", one image per chain.";
        }
        else if (s)
            caption = "Written by stage " + std::to_string(s->index) + " (" + s->type + ").";
        std::string out = esc(caption);
        out +=
            (out.empty() ? "" : " ") + std::string("<a href=\"") + url(p.path) + "\">" + esc(p.path) + "</a>";
        if (p.width > 0)
            out += " \xc2\xb7 " + std::to_string(p.width) + " \xc3\x97 " + std::to_string(p.height) + " px";
        return out;
    }

    std::string picture_figure(const report::Picture& p) const
    {
        return "<figure><a href=\"" + url(p.path) + "\"><img src=\"" + url(p.path) + "\" alt=\"" +
               esc(p.path) + "\"" +
               (p.width > 0 ? " width=\"" + std::to_string(std::min(p.width, 520)) + "\"" : std::string()) +
               " onerror=\"this.className='missing'; console.error('report.html: picture not found: ' + "
               "this.getAttribute('src'))\"/></a>\n<figcaption>" +
               picture_caption(p) + "</figcaption></figure>\n";
    }

    std::string metrics_table(const StageInfo& s) const
    {
        const std::vector<Column> columns = report::stage_columns(r_, s.index);
        std::string rows;
        const bool per_epoch = plotted_per_epoch(r_, s);
        for (const Column& c : columns)
        {
            if (MetricsCsv::is_timing(c.name))
                continue;
            const std::string owner = report::error_of(c.name);
            if (!owner.empty() && find_column(columns, owner))
                continue;
            const Stats st = stats_of(c);
            const std::vector<double> err = errors_for(columns, c);
            std::string last = value_text(st.last);
            if (!err.empty() && std::isfinite(err.back()))
                last += " \xc2\xb1 " + value_text(err.back());
            rows += "<tr><td><code>" + esc(c.name) + "</code></td>";
            if (per_epoch)
                rows += "<td class=\"num\">" + value_text(st.first) + "</td><td class=\"num\"><b>" + last +
                        "</b></td><td class=\"num\">" + (st.min <= st.max ? value_text(st.min) : "NaN") +
                        "</td><td class=\"num\">" + (st.min <= st.max ? value_text(st.max) : "NaN") + "</td>";
            else
                rows += "<td class=\"num\"><b>" + last + "</b></td>";
            rows += "</tr>\n";
        }
        if (rows.empty())
            return {};
        std::string head =
            per_epoch ? "<tr><th>metric</th><th class=\"num\">first epoch</th><th class=\"num\">last "
                        "epoch</th><th class=\"num\">min</th><th class=\"num\">max</th></tr>"
                      : "<tr><th>metric</th><th class=\"num\">value</th></tr>";
        return "<table class=\"metrics\">\n<thead>" + head + "</thead>\n<tbody>\n" + rows +
               "</tbody>\n</table>\n";
    }

    std::string stage_section(const StageInfo& s)
    {
        std::string h = "<section class=\"card\" id=\"stage-" + std::to_string(s.index) +
                        "\">\n<h2><span class=\"n\">" + std::to_string(s.index) + "</span>" + esc(s.type);
        if (s.type == "train")
            h += std::string("<span class=\"status ") +
                 (s.complete ? "ok"
                  : s.rows   ? "warn"
                             : "none") +
                 "\">" + std::to_string(s.epochs_done) + " of " + std::to_string(s.epochs_planned) +
                 " epochs</span>";
        else
            h += std::string("<span class=\"status ") + (s.complete ? "ok\">done" : "none\">not run yet") +
                 "</span>";
        h += "</h2>\n";
        if (!s.keys.empty())
        {
            h += "<ul class=\"settings\">\n";
            for (const auto& [key, value] : s.keys)
                h += "<li><b>" + esc(key) + "</b>" + esc(value) + "</li>\n";
            h += "</ul>\n";
        }
        if (s.rows == 0)
            h += "<p class=\"empty\">No metrics from this stage yet.</p>\n";
        else
        {
            h += metrics_table(s);
            const std::vector<Plot> plots = stage_plots(r_, s);
            if (!plots.empty())
            {
                h += "<div class=\"plots\">\n";
                for (const Plot& p : plots)
                    h += figure_of(p);
                h += "</div>\n";
            }
        }
        std::string pictures;
        for (const report::Picture& p : r_.pictures)
            if (p.stage == s.index)
                pictures += picture_figure(p);
        pictures += samples_histogram(s);
        if (!pictures.empty())
            h += "<div class=\"pictures\">\n" + pictures + "</div>\n";
        return h + "</section>\n";
    }

    // The evaluate stages with an `x`, side by side: one plot per metric against x, a line per series
    // with its standard errors as bars, and the table (also written as comparison.csv).
    std::string comparison_section()
    {
        const report::Comparison c = report::comparison_of(r_);
        if (c.empty())
            return {};
        files_.push_back({ "comparison.csv", report::comparison_csv(c) });
        std::string h = "<section class=\"card\" id=\"comparison\">\n<h2>Comparison</h2>\n<p>" +
                        esc(std::to_string(c.rows.size()) + " evaluate stages measured at " + c.x_label +
                            " = x, " + std::to_string(c.series.size()) + " series" + "; the table is ") +
                        "<a href=\"comparison.csv\">comparison.csv</a>.</p>\n<div class=\"plots\">\n";
        const auto is_error = [&](const std::string& column) {
            const std::string owner = report::error_of(column);
            return !owner.empty() && std::find(c.columns.begin(), c.columns.end(), owner) != c.columns.end();
        };
        std::string table_head = "<tr><th>" + esc(c.x_label) + "</th><th>series</th>";
        for (const std::string& column : c.columns)
        {
            if (is_error(column))
                continue;
            table_head += "<th class=\"num\">" + esc(column) + "</th>";
            std::string error_column;
            for (const std::string& e : c.columns)
                if (report::error_of(e) == column)
                    error_column = e;
            std::vector<plot::Series> series;
            for (const std::string& name : c.series)
            {
                plot::Series line;
                line.name = name;
                for (const report::ComparisonRow& row : c.rows)
                {
                    const auto v = row.values.find(column);
                    if (row.series != name || v == row.values.end())
                        continue;
                    line.x.push_back(row.x);
                    line.y.push_back(v->second);
                    const auto e = error_column.empty() ? row.values.end() : row.values.find(error_column);
                    line.error.push_back(e == row.values.end() ? NAN : e->second);
                }
                if (error_column.empty())
                    line.error.clear();
                if (!line.x.empty())
                    series.push_back(std::move(line));
            }
            plot::Figure f;
            f.title = column + " against " + c.x_label;
            f.x = { c.x_label, plot::Scale::linear, false };
            f.y = { column, scale_for(series), false };
            h += figure_of(Plot{ "comparison_" + file_stem(column) + ".svg", plot::line_plot(f, series),
                                 esc(column) + (error_column.empty() ? "" : " \xc2\xb1 one standard error") +
                                     " of each series against " + esc(c.x_label) });
        }
        h += "</div>\n<table class=\"metrics\">\n<thead>" + table_head + "</tr></thead>\n<tbody>\n";
        for (const report::ComparisonRow& row : c.rows)
        {
            h += "<tr><td class=\"num\">" + value_text(row.x) + "</td><td>" + esc(row.series) + "</td>";
            for (const std::string& column : c.columns)
            {
                if (is_error(column))
                    continue;
                const auto v = row.values.find(column);
                std::string cell = v == row.values.end() ? std::string() : value_text(v->second);
                for (const std::string& e : c.columns)
                    if (report::error_of(e) == column && row.values.count(e))
                        cell += " \xc2\xb1 " + value_text(row.values.at(e));
                h += "<td class=\"num\">" + cell + "</td>";
            }
            h += "</tr>\n";
        }
        return h + "</tbody>\n</table>\n</section>\n";
    }

    // How the chains of a sample stage differ: a histogram of each chain's mean value.
    std::string samples_histogram(const StageInfo& s)
    {
        const std::string name = "stage" + std::to_string(s.index) + "_samples.npy";
        if (!fs::exists(r_.folder / name))
            return {};
        std::string problem;
        const std::vector<double> means = report::npy_row_means(r_.folder / name, problem);
        if (means.empty())
            return problem.empty() ? std::string() : "<p class=\"empty\">" + esc(problem) + ".</p>\n";
        plot::Figure f;
        f.title = "stage " + std::to_string(s.index) + ": the mean value of each chain";
        f.x = { "mean of a chain's values", plot::Scale::linear, false };
        f.y = { "chains", plot::Scale::linear, true };
        const Plot p{ "stage" + std::to_string(s.index) + "_chain_means.svg", plot::histogram(f, means),
                      "How the " + std::to_string(means.size()) +
                          " chains differ: the mean of each one's values, from <a href=\"" + url(name) +
                          "\">" + esc(name) + "</a>" };
        return figure_of(p, "chart");
    }

    std::string other_pictures() const
    {
        std::string pictures;
        for (const report::Picture& p : r_.pictures)
            if (!std::any_of(r_.stages.begin(), r_.stages.end(),
                             [&](const StageInfo& s) { return s.index == p.stage; }))
                pictures += picture_figure(p);
        if (pictures.empty())
            return {};
        return "<section class=\"card\" id=\"pictures\">\n<h2>Other pictures</h2>\n<div "
               "class=\"pictures\">\n" +
               pictures + "</div>\n</section>\n";
    }

    std::string timing_section()
    {
        std::string h = "<section class=\"card\" id=\"timing\">\n<h2>Timing</h2>\n";
        double total = 0;
        for (const StageInfo& s : r_.stages)
            total += stage_seconds(s.index);
        if (!r_.has_metrics)
            return h + "<p class=\"empty\">No timings yet.</p>\n</section>\n";
        h += "<table>\n<thead><tr><th>stage</th><th class=\"num\">rows</th><th class=\"num\">time</th><th "
             "class=\"num\">per row</th><th>throughput (mean)</th><th>share of the "
             "run</th></tr></thead>\n<tbody>\n";
        std::vector<Plot> plots;
        for (const StageInfo& s : r_.stages)
        {
            const double seconds = stage_seconds(s.index);
            std::string rates;
            for (const Column& c : report::stage_columns(r_, s.index))
                if (c.name.find("per_second") != std::string::npos)
                {
                    double sum = 0;
                    size_t n = 0;
                    for (double v : c.values)
                        if (std::isfinite(v))
                        {
                            sum += v;
                            ++n;
                        }
                    if (n)
                        rates += (rates.empty() ? "" : "<br/>") +
                                 esc(rate_text(sum / static_cast<double>(n), c.name));
                }
            const double share = total > 0 ? seconds / total : 0;
            h += "<tr><td>" + std::to_string(s.index) + " \xc2\xb7 " + esc(s.type) +
                 "</td><td class=\"num\">" + std::to_string(s.rows) + "</td><td class=\"num\">" +
                 (s.rows ? duration_text(seconds) : "\xe2\x80\x94") + "</td><td class=\"num\">" +
                 (s.rows ? duration_text(seconds / static_cast<double>(s.rows)) : "\xe2\x80\x94") +
                 "</td><td>" + rates +
                 "</td><td><span class=\"bar\"><span style=\"width:" + format("%.1f", 100 * share) +
                 "%\"></span></span>" + format("%.0f%%", 100 * share) + "</td></tr>\n";
            for (Plot& p : timing_plots(r_, s))
                plots.push_back(std::move(p));
        }
        h += "<tr><td><b>all stages</b></td><td></td><td class=\"num\"><b>" + duration_text(total) +
             "</b></td><td></td><td></td><td></td></tr>\n</tbody>\n</table>\n";
        h += "<p class=\"small\">From the <code>seconds</code> and <code>*_per_second</code> columns of "
             "metrics.csv; "
             "a row is an epoch of a train stage, or a whole stage.</p>\n";
        if (!plots.empty())
        {
            h += "<div class=\"plots\">\n";
            for (const Plot& p : plots)
                h += figure_of(p);
            h += "</div>\n";
        }
        return h + "</section>\n";
    }

    std::string pipeline_section() const
    {
        std::string h = "<section class=\"card\" id=\"pipeline\">\n<h2>The pipeline as it ran</h2>\n";
        if (!r_.has_pipeline)
            return h + "<p class=\"empty\">pipeline.yaml is missing.</p>\n</section>\n";
        h += "<p class=\"small\"><a href=\"pipeline.yaml\">pipeline.yaml</a>: every default filled in, every "
             "path "
             "resolved";
        const std::string source = info(r_, { "pipeline_file" });
        if (!source.empty())
            h += "; from <code>" + esc(source) + "</code>";
        h += ".</p>\n<pre class=\"yaml\">" + highlighted_yaml(r_.pipeline_text) + "</pre>\n";
        return h + "</section>\n";
    }

    static std::string kv(const std::string& key, const std::string& value_html)
    {
        return "<tr><th>" + esc(key) + "</th><td class=\"wrap\">" + value_html + "</td></tr>\n";
    }

    std::string environment_section() const
    {
        std::string h = "<section class=\"card\" id=\"environment\">\n<h2>Environment</h2>\n";
        if (!r_.info.IsMap())
            return h + "<p class=\"empty\">Not known: run.yaml is missing.</p>\n</section>\n";
        std::string command;
        if (r_.info["command"] && r_.info["command"].IsSequence())
            for (const YAML::Node& w : r_.info["command"])
                if (w.IsScalar())
                    command += (command.empty() ? "" : " ") + shell_quote(w.Scalar());
        h += "<div class=\"grid2\">\n<div>\n<h3>Run</h3>\n<table class=\"kv\">\n";
        h += kv("command line", "<code>" + esc(command) + "</code>");
        h += kv("working folder", "<code>" + esc(info(r_, { "working_directory" })) + "</code>");
        h += kv("started", esc(info(r_, { "started" })));
        h += kv("seed", esc(info(r_, { "seed" })));
        h += kv("threads", esc(info(r_, { "threads" })) + " (one budget for BLAS and the engine)");
        h += kv("ansatz", esc(info(r_, { "ansatz", "version" })) + ", plugin ABI " +
                              esc(info(r_, { "ansatz", "abi" })) + "<br/><span class=\"small\">" +
                              esc(info(r_, { "ansatz", "build" })) + "</span>");
        h += "</table>\n</div>\n<div>\n<h3>Machine and libraries</h3>\n<table class=\"kv\">\n";
        h += kv("CPU", esc(info(r_, { "machine", "cpu" })));
        h += kv("cores", esc(info(r_, { "machine", "cores" })));
        const std::string memory = info(r_, { "machine", "memory_bytes" });
        h += kv("memory", memory.empty() ? "" : esc(bytes_text(std::strtoull(memory.c_str(), nullptr, 10))));
        h += kv("system", esc(info(r_, { "machine", "os" })) +
                              (info(r_, { "machine", "hostname" }).empty()
                                   ? ""
                                   : " on <code>" + esc(info(r_, { "machine", "hostname" })) + "</code>"));
        const std::string blas = info(r_, { "blas", "library" });
        h += kv("BLAS", esc(blas + " " + info(r_, { "blas", "version" })) + ", core <b>" +
                            esc(info(r_, { "blas", "core" })) + "</b>, " +
                            esc(info(r_, { "blas", "parallel" })) + ", " +
                            esc(info(r_, { "blas", "threads" })) + " threads<br/><span class=\"small\">" +
                            esc(info(r_, { "blas", "config" })) + "<br/>" +
                            esc(info(r_, { "blas", "file" })) + "</span>");
        h += "</table>\n</div>\n</div>\n<h3>Plugins</h3>\n";
        const YAML::Node plugins = r_.info["plugins"];
        if (!plugins || !plugins.IsSequence() || plugins.size() == 0)
            return h + "<p class=\"empty\">No plugin is named in run.yaml.</p>\n</section>\n";
        h += "<table>\n<thead><tr><th>plugin</th><th>version</th><th>ABI</th><th>used "
             "as</th><th>file</th></tr></thead>\n"
             "<tbody>\n";
        for (const YAML::Node& p : plugins)
        {
            if (!p.IsMap())
                continue;
            const auto text = [&](const char* key) {
                return p[key] && p[key].IsScalar() ? p[key].Scalar() : std::string();
            };
            std::string used;
            if (p["components"] && p["components"].IsSequence())
                for (const YAML::Node& c : p["components"])
                    if (c.IsMap() && c["instance"] && c["component"])
                        used += (used.empty() ? "" : "<br/>") +
                                ("<code>" + esc(c["instance"].Scalar()) + "</code>") +
                                (c["instance"].Scalar() == c["component"].Scalar()
                                     ? std::string()
                                     : " = " + esc(c["component"].Scalar())) +
                                (c["kind"] ? " <span class=\"small\">(" + esc(c["kind"].Scalar()) + ")</span>"
                                           : std::string());
            h += "<tr><td><b>" + esc(text("name")) + "</b>" +
                 (text("license").empty() ? ""
                                          : " <span class=\"small\">" + esc(text("license")) + "</span>") +
                 "</td><td>" + esc(text("version")) + "</td><td>" + esc(text("abi")) + "</td><td>" + used +
                 "</td><td class=\"wrap\"><code>" + esc(text("file")) + "</code><br/><span class=\"small\">" +
                 esc(text("build")) + "</span></td></tr>\n";
        }
        return h + "</tbody>\n</table>\n</section>\n";
    }

    std::string files_section() const
    {
        std::string h =
            "<section class=\"card\" id=\"files\">\n<h2>Files</h2>\n<table>\n<thead><tr><th>file</th><th "
            "class=\"num\">size</th><th>what</th></tr></thead>\n<tbody>\n";
        const auto what = [&](const std::string& path) -> std::string {
            if (path == "pipeline.yaml")
                return "the pipeline as it ran";
            if (path == "run.yaml")
                return "command line, versions, machine";
            if (path == "metrics.csv")
                return "one row per epoch or stage";
            if (path == "report.html")
                return "this page";
            if (path == "plots/")
                return "this page's plots as SVG files";
            if (path == "checkpoints/")
                return r_.checkpoints.empty() ? "no complete checkpoint" : "last: " + r_.checkpoints.back();
            if (path.size() > 4 && path.compare(path.size() - 4, 4, ".npy") == 0)
                return "NumPy array";
            return {};
        };
        for (const report::FileEntry& f : r_.files)
            h += "<tr><td><a href=\"" + url(f.path) + "\"><code>" + esc(f.path) +
                 "</code></a></td><td class=\"num\">" + bytes_text(f.bytes) + "</td><td>" +
                 esc(what(f.path)) + "</td></tr>\n";
        return h + "</tbody>\n</table>\n</section>\n";
    }

    std::string footer() const
    {
        const std::time_t now = std::time(nullptr);
        char stamp[40];
        std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
        return "<footer>Written " + std::string(stamp) + " by ansatz " + esc(ansatz_version()) +
               ". It is rewritten after every epoch and stage; <code>ansatz report " +
               esc(r_.folder.string()) + "</code> rebuilds it.</footer>\n";
    }

    const RunData& r_;
    std::vector<std::pair<std::string, std::string>> plots_;
    std::vector<std::pair<std::string, std::string>> files_;
};

} // namespace

ReportFiles build_report(const fs::path& run_folder)
{
    const RunData data = report::read_run(run_folder);
    return Page(data).build();
}

namespace
{

// As write_file_atomic (a temporary file in the same folder, renamed over the final one), with a
// temporary name of this process's own: `ansatz report` on the folder of a run that is still going
// must not rename the run's temporary file from under it (the last rename wins, and both succeed).
void write_own_atomic(const fs::path& file, const std::string& bytes)
{
    const fs::path own =
        file.parent_path() / ("." + file.filename().string() + "." + std::to_string(::getpid()));
    write_file_atomic(own, bytes); // "..<name>.<pid>.tmp" renamed to ".<name>.<pid>", both hidden
    std::error_code ec;
    fs::rename(own, file, ec);
    if (ec)
    {
        fs::remove(own, ec);
        throw std::runtime_error("cannot write " + file.string());
    }
}

} // namespace

void write_report(const fs::path& run_folder, ReportUpdate when)
{
    // When this process last wrote each folder's report, and how long that took.
    struct Last
    {
        std::chrono::steady_clock::time_point at;
        double seconds;
    };
    static std::mutex mutex;
    static std::map<std::string, Last> last;
    const auto start = std::chrono::steady_clock::now();
    const std::string key = fs::absolute(run_folder).lexically_normal().string();
    {
        const std::lock_guard<std::mutex> lock(mutex);
        const auto found = last.find(key);
        if (when == ReportUpdate::when_cheap && found != last.end() &&
            std::chrono::duration<double>(start - found->second.at).count() < 9 * found->second.seconds)
            return;
    }
    const ReportFiles files = build_report(run_folder);
    if (!files.plots.empty())
    {
        fs::create_directories(run_folder / "plots");
        for (const auto& [name, svg] : files.plots)
            write_own_atomic(run_folder / "plots" / name, svg);
    }
    for (const auto& [name, bytes] : files.files)
        write_own_atomic(run_folder / name, bytes);
    write_own_atomic(run_folder / "report.html", files.html);
    const auto end = std::chrono::steady_clock::now();
    const std::lock_guard<std::mutex> lock(mutex);
    last[key] = Last{ end, std::chrono::duration<double>(end - start).count() };
}

} // namespace ansatz::engine

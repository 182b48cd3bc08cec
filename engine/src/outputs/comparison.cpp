#include "outputs/comparison.hpp"

#include "outputs/metrics_csv.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ansatz::engine::report
{

namespace
{

bool parse_double(const std::string& text, double& out)
{
    if (text.empty())
        return false;
    char* end = nullptr;
    out = std::strtod(text.c_str(), &end);
    return end && *end == '\0' && std::isfinite(out);
}

std::string key_or(const StageInfo& s, const std::string& key, const std::string& otherwise)
{
    const auto found = s.keys.find(key);
    return found == s.keys.end() || found->second.empty() ? otherwise : found->second;
}

std::string csv_cell(const std::string& text)
{
    if (text.find_first_of(",\"\r\n") == std::string::npos)
        return text;
    std::string out = "\"";
    for (char c : text)
        out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string number(double v)
{
    if (std::isnan(v))
        return "nan";
    if (std::isinf(v))
        return v > 0 ? "inf" : "-inf";
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.17g", v);
    return buffer;
}

} // namespace

Comparison comparison_of(const RunData& run)
{
    Comparison out;
    for (const StageInfo& s : run.stages)
    {
        double x = 0;
        if (s.type != "evaluate" || !parse_double(key_or(s, "x", ""), x))
            continue;
        const MetricRow* found = nullptr;
        for (const MetricRow& row : run.rows)
            if (row.stage == s.index)
                found = &row; // the last row of the stage (an evaluate stage writes one)
        if (!found)
            continue;
        if (out.x_label.empty())
            out.x_label = key_or(s, "x_label", "x");
        ComparisonRow row{
            x, key_or(s, "series", key_or(s, "model", "stage " + std::to_string(s.index))), s.index, {}
        };
        for (const auto& [name, value] : found->values)
            if (!MetricsCsv::is_timing(name))
                row.values[name] = value;
        if (std::find(out.series.begin(), out.series.end(), row.series) == out.series.end())
            out.series.push_back(row.series);
        out.rows.push_back(std::move(row));
    }
    for (const std::string& column : run.columns)
        for (const ComparisonRow& row : out.rows)
            if (row.values.count(column))
            {
                out.columns.push_back(column);
                break;
            }
    const auto rank = [&](const std::string& series) {
        return std::find(out.series.begin(), out.series.end(), series) - out.series.begin();
    };
    std::stable_sort(out.rows.begin(), out.rows.end(), [&](const ComparisonRow& a, const ComparisonRow& b) {
        if (rank(a.series) != rank(b.series))
            return rank(a.series) < rank(b.series);
        if (a.x != b.x)
            return a.x < b.x;
        return a.stage < b.stage;
    });
    return out;
}

std::string comparison_csv(const Comparison& c)
{
    std::string out = csv_cell(c.x_label) + ",series,stage";
    for (const std::string& column : c.columns)
        out += "," + csv_cell(column);
    out += "\n";
    for (const ComparisonRow& row : c.rows)
    {
        out += number(row.x) + "," + csv_cell(row.series) + "," + std::to_string(row.stage);
        for (const std::string& column : c.columns)
        {
            const auto found = row.values.find(column);
            out += "," + (found == row.values.end() ? std::string() : number(found->second));
        }
        out += "\n";
    }
    return out;
}

} // namespace ansatz::engine::report

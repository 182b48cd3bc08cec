#include "outputs/metrics_csv.hpp"

#include "outputs/files.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace ansatz::engine
{

bool MetricsCsv::is_timing(const std::string& column)
{
    const auto ends_with = [&](const std::string& suffix) {
        return column.size() >= suffix.size() &&
               column.compare(column.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return column == "seconds" || column == "time" || ends_with("_seconds") || ends_with("per_second") ||
           ends_with("_time");
}

void MetricsCsv::add(size_t stage, const std::string& type, int64_t epoch,
                     const std::vector<std::pair<std::string, double>>& values)
{
    for (const auto& [name, value] : values)
        if (std::find(columns_.begin(), columns_.end(), name) == columns_.end())
            columns_.push_back(name);
    std::stable_partition(columns_.begin(), columns_.end(),
                          [](const std::string& c) { return !is_timing(c); });
    rows_.push_back(Row{ stage, type, epoch, values });
    write();
}

void MetricsCsv::restore(const std::string& text)
{
    columns_.clear();
    rows_.clear();
    const auto cells = [](const std::string& line) {
        std::vector<std::string> out;
        size_t at = 0;
        for (size_t comma; (comma = line.find(',', at)) != std::string::npos; at = comma + 1)
            out.push_back(line.substr(at, comma - at));
        out.push_back(line.substr(at));
        return out;
    };
    size_t at = 0;
    bool header = true;
    for (size_t end; (end = text.find('\n', at)) != std::string::npos; at = end + 1)
    {
        const std::vector<std::string> row = cells(text.substr(at, end - at));
        if (header)
        {
            if (row.size() < 3 || row[0] != "stage" || row[1] != "type" || row[2] != "epoch")
                throw std::runtime_error("the saved metrics.csv has no 'stage,type,epoch' header");
            columns_.assign(row.begin() + 3, row.end());
            header = false;
            continue;
        }
        if (row.size() != columns_.size() + 3)
            throw std::runtime_error("a saved metrics.csv row has " + std::to_string(row.size()) +
                                     " cells, expected " + std::to_string(columns_.size() + 3));
        Row r{ std::stoul(row[0]), row[1], std::stoll(row[2]), {} };
        for (size_t i = 0; i < columns_.size(); ++i)
            if (!row[i + 3].empty())
                r.values.emplace_back(columns_[i], std::strtod(row[i + 3].c_str(), nullptr));
        rows_.push_back(std::move(r));
    }
    write();
}

void MetricsCsv::write() const
{
    write_file_atomic(file_, text());
}

std::string MetricsCsv::text() const
{
    std::string out = "stage,type,epoch";
    for (const std::string& c : columns_)
        out += "," + c;
    out += "\n";
    for (const Row& row : rows_)
    {
        out += std::to_string(row.stage) + "," + row.type + "," + std::to_string(row.epoch);
        for (const std::string& c : columns_)
        {
            out += ",";
            const auto found = std::find_if(row.values.begin(), row.values.end(),
                                            [&](const auto& v) { return v.first == c; });
            if (found != row.values.end())
            {
                char buffer[32];
                std::snprintf(buffer, sizeof buffer, "%.9g", found->second);
                out += buffer;
            }
        }
        out += "\n";
    }
    return out;
}

} // namespace ansatz::engine

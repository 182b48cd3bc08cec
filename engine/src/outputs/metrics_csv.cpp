#include "outputs/metrics_csv.hpp"

#include "outputs/files.hpp"

#include <algorithm>
#include <cstdio>

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

void MetricsCsv::write() const
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
    write_file_atomic(file_, out);
}

} // namespace ansatz::engine

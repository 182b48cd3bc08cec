// metrics_csv.hpp -- metrics.csv: one row per epoch (train) or per stage (sample), one column per
// metric. Timing columns (seconds, *_per_second) come last, so that two runs with the same seed agree
// on every other column. The file is rewritten whole (atomically) when a new column appears.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace ansatz::engine
{

class MetricsCsv
{
public:
    explicit MetricsCsv(std::filesystem::path file) : file_(std::move(file)) {}

    // A row: the stage index and type, the epoch (0 when none), then named values in order.
    void add(size_t stage, const std::string& type, int64_t epoch,
             const std::vector<std::pair<std::string, double>>& values);

    static bool is_timing(const std::string& column);

    // The file's text as it stands (what a checkpoint saves).
    std::string text() const;
    // Goes back to the rows of `text` (a checkpoint's copy) and rewrites the file.
    void restore(const std::string& text);

private:
    void write() const;

    struct Row
    {
        size_t stage;
        std::string type;
        int64_t epoch;
        std::vector<std::pair<std::string, double>> values;
    };
    std::filesystem::path file_;
    std::vector<std::string> columns_;
    std::vector<Row> rows_;
};

} // namespace ansatz::engine

// outputs/report_data.hpp -- what report.html shows, read back from a run folder's files alone:
// pipeline.yaml, run.yaml, metrics.csv, the pictures and the checkpoints. Every file may be missing
// or unreadable (an interrupted run, an older version, a folder copied by hand); what could not be
// read is said in `problems`, and the rest is still there.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ansatz::engine::report
{

struct MetricRow
{
    size_t stage = 0;
    std::string type;
    int64_t epoch = 0;
    std::map<std::string, double> values; // an empty cell is absent; "nan" is NaN
};

struct StageInfo
{
    size_t index = 0;                        // 1-based, as in metrics.csv and the file names
    std::string type;                        // train, sample, ...
    std::map<std::string, std::string> keys; // its scalar keys, as written in pipeline.yaml
    int64_t epochs_planned = 0;              // train: `epochs`
    int64_t epochs_done = 0;                 // train: the last epoch with a row
    size_t rows = 0;                         // rows of metrics.csv
    bool complete = false;                   // its work is in the folder (or a later stage began)
};

struct Picture
{
    std::string path; // relative to the run folder, '/'-separated
    size_t stage = 0; // from a name "stage<i>_...", else 0
    int width = 0;    // a PNG's size in pixels, when known
    int height = 0;
    uintmax_t bytes = 0;
};

struct FileEntry
{
    std::string path; // relative, a folder ends with '/'
    uintmax_t bytes = 0;
    bool folder = false;
};

struct RunData
{
    std::filesystem::path folder;
    bool has_pipeline = false;
    std::string pipeline_text; // pipeline.yaml as it is
    std::string name;          // `pipeline:`
    YAML::Node pipeline;       // null when unreadable
    YAML::Node info;           // run.yaml; null when missing or unreadable
    bool has_metrics = false;
    std::vector<std::string> columns; // metrics.csv's value columns, in order (after stage,type,epoch)
    std::vector<MetricRow> rows;
    std::vector<StageInfo> stages;
    std::vector<Picture> pictures;
    std::vector<std::string> checkpoints; // "stage1-epoch2", complete ones only, in order
    std::vector<FileEntry> files;
    std::vector<std::string> problems; // "metrics.csv line 4 has 3 cells, the header 5"
};

RunData read_run(const std::filesystem::path& folder);

// The mean of each row of a float32 .npy file (format 1.0 or 2.0, '<f4', C order, rank >= 1), e.g. the
// mean value of each chain of stage<i>_samples.npy. Empty (with `problem` set) when the file is
// missing, not such a file, or larger than `max_bytes`.
std::vector<double> npy_row_means(const std::filesystem::path& file, std::string& problem,
                                  uintmax_t max_bytes = 256u << 20);

// Whether the stage has any rows (and so any metrics).
bool has_rows(const RunData& run, size_t stage);

// The metrics of one stage's rows, in column order, each as its epochs and values (a row without the
// column is left out).
struct Column
{
    std::string name;
    std::vector<double> epochs;
    std::vector<double> values;
};
std::vector<Column> stage_columns(const RunData& run, size_t stage);

// The name a metric is plotted under: "eval_loss", "test_loss", "loss_val" all give "loss", so a train
// stage's curve and an evaluation's share one plot. `role` is set to "eval", "test", ... or "".
std::string metric_base(const std::string& column, std::string* role = nullptr);

// The standard-error column a metric may have beside it ("x_stderr", "x_se", "x_sem"); returns the
// metric it belongs to, or "" when `column` is not one.
std::string error_of(const std::string& column);

} // namespace ansatz::engine::report

// outputs/report.hpp -- report.html: a run folder as a page a person wants to read.
//
// Rebuilt from the folder's files alone (pipeline.yaml, run.yaml, metrics.csv, pictures,
// checkpoints/; see report_data.hpp), so it works for a finished run, a running or interrupted one,
// and an old one. The page is self-contained and readable offline: inline CSS, the plots as inline
// SVG (also written as plots/stage<i>_<metric>.svg for use elsewhere), pictures by relative path, no
// script but an onerror note on each picture, nothing fetched from the network. It is XHTML-style
// HTML5 (every element closed), so it is also well-formed XML.
//
// What it shows: the status (finished, incomplete, no metrics yet), seed, threads, time; per stage
// its settings, a table of its metrics and one plot per metric against epoch (a train stage's "x"
// and an evaluation's "eval_x" on one plot, with standard errors as bands or bars when an "x_stderr"
// column exists), and its pictures with captions; timing per stage (the `seconds` columns); the
// pipeline as it ran; the command line, versions of Ansatz, the plugins and OpenBLAS, the machine;
// the files of the folder.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace ansatz::engine
{

enum class ReportUpdate
{
    always,    // the end of a stage, `ansatz report`
    when_cheap // the end of an epoch: skipped while the time since this process last wrote this folder's
               // report is under 9 times what that took, so the report costs at most about 10% of a run
               // of very short epochs (its cost grows with the epochs); epochs of a second or more
               // always get theirs, and the next `always` catches up
};

// Rebuilds run_folder/report.html (and its plots/*.svg), each file written atomically. Missing or
// unreadable inputs are said in the page, never thrown; only a failure to write throws.
void write_report(const std::filesystem::path& run_folder, ReportUpdate when = ReportUpdate::always);

// The page and its plots (file name under plots/, SVG text), without writing anything.
struct ReportFiles
{
    std::string html;
    std::vector<std::pair<std::string, std::string>> plots;
    std::vector<std::pair<std::string, std::string>> files; // beside report.html: comparison.csv
};
ReportFiles build_report(const std::filesystem::path& run_folder);

} // namespace ansatz::engine

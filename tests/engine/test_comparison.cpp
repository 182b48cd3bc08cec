// The comparison of evaluate stages with an `x` (a temperature, a layer size): comparison.csv, one plot
// per metric against x with a line per series and its error bars, and the table in report.html. The
// evaluator is the `probe` fixture (tests/fixtures/plugins/probe_evaluator.cpp): it reports rows,
// data_mean, free_energy with free_energy_stderr, and draw.
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <sstream>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

// Series a at x = 3, 1, 2 (given out of order), series rbm_b (its model's name) at x = 2, and one
// evaluate stage outside the comparison.
const std::string pipeline = R"(pipeline: compared
seed: 5
threads: 1
plugin_paths: [plugins]
components:
  data:  {plugin: idx, images: images.idx}
  rbm_a: {plugin: rbm, hidden: 5, init_std: 0.1}
  rbm_b: {plugin: rbm, hidden: 3, init_std: 0.5}
  probe: {plugin: probe}
stages:
  - evaluate: {model: rbm_a, data: data, evaluators: [probe], x: 3, series: a, x_label: temperature}
  - evaluate: {model: rbm_a, data: data, evaluators: [probe], x: 1, series: a}
  - evaluate: {model: rbm_b, data: data, evaluators: [probe], x: 2}
  - evaluate: {model: rbm_a, data: data, evaluators: [probe], x: 2, series: a, x_label: temperature}
  - evaluate: {model: rbm_b, data: data, evaluators: [probe]}
)";

fs::path folder(const std::string& name, const std::string& text = pipeline)
{
    const fs::path dir = ansatz::test::fresh_folder("comparison/" + name);
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_probe.so",
                  dir / "plugins" / "libansatz_fixture_probe.so");
    write_text(dir / "pipeline.yaml", text);
    write_text(dir / "images.idx", ansatz::test::square_images(230, 20));
    return dir;
}

using Table = std::vector<std::map<std::string, std::string>>;

Table csv(const std::string& text, std::vector<std::string>* header_out = nullptr)
{
    std::istringstream in(text);
    std::string line;
    std::vector<std::string> header;
    Table rows;
    while (std::getline(in, line))
    {
        std::vector<std::string> cells;
        std::stringstream cs(line);
        for (std::string c; std::getline(cs, c, ',');)
            cells.push_back(c);
        if (!line.empty() && line.back() == ',')
            cells.emplace_back();
        if (header.empty())
        {
            header = cells;
            continue;
        }
        std::map<std::string, std::string> row;
        for (size_t i = 0; i < header.size(); ++i)
            row[header[i]] = i < cells.size() ? cells[i] : "";
        rows.push_back(row);
    }
    if (header_out)
        *header_out = header;
    return rows;
}

fs::path only_run(const fs::path& dir)
{
    return *fs::directory_iterator(dir / "runs" / "compared");
}

size_t count(const std::string& text, const std::string& what)
{
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("comparison: evaluate stages with x make comparison.csv by series then x", "[comparison]")
{
    const fs::path dir = folder("table");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path run = only_run(dir);
    const Table metrics = csv(read_text(run / "metrics.csv"));
    REQUIRE(metrics.size() == 5);
    std::vector<std::string> header;
    const Table rows = csv(read_text(run / "comparison.csv"), &header);
    REQUIRE(header.size() >= 4);
    CHECK(header[0] == "temperature");
    CHECK(header[1] == "series");
    CHECK(header[2] == "stage");
    // The metric columns in metrics.csv's order, timing columns left out.
    std::vector<std::string> metric_columns(header.begin() + 3, header.end());
    CHECK(std::find(metric_columns.begin(), metric_columns.end(), "free_energy") != metric_columns.end());
    CHECK(std::find(metric_columns.begin(), metric_columns.end(), "free_energy_stderr") !=
          metric_columns.end());
    CHECK(std::find(metric_columns.begin(), metric_columns.end(), "seconds") == metric_columns.end());
    // Series a at 1, 2, 3 (stages 2, 4, 1), then rbm_b at 2 (stage 3); stage 5 has no x.
    REQUIRE(rows.size() == 4);
    const std::vector<std::tuple<std::string, std::string, std::string>> want = {
        { "1", "a", "2" }, { "2", "a", "4" }, { "3", "a", "1" }, { "2", "rbm_b", "3" }
    };
    for (size_t i = 0; i < rows.size(); ++i)
    {
        INFO("row " << i);
        CHECK(rows[i].at("temperature") == std::get<0>(want[i]));
        CHECK(rows[i].at("series") == std::get<1>(want[i]));
        CHECK(rows[i].at("stage") == std::get<2>(want[i]));
        // The values are the stage's row of metrics.csv.
        const auto& m = metrics[std::stoul(rows[i].at("stage")) - 1];
        for (const std::string& column : metric_columns)
            CHECK(std::stod(rows[i].at(column)) == Approx(std::stod(m.at(column))).epsilon(1e-6));
    }
    // rbm_a and rbm_b differ, so the series differ where they share an x.
    CHECK(rows[1].at("free_energy") != rows[3].at("free_energy"));
}

TEST_CASE("comparison: report.html plots each metric against x with a line per series and error bars",
          "[comparison][report]")
{
    const fs::path dir = folder("plots");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path run = only_run(dir);
    const std::string html = read_text(run / "report.html");
    CHECK(html.find("id=\"comparison\"") != std::string::npos);
    CHECK(html.find("href=\"comparison.csv\"") != std::string::npos);
    REQUIRE(fs::exists(run / "plots" / "comparison_free_energy.svg"));
    const std::string svg = read_text(run / "plots" / "comparison_free_energy.svg");
    CHECK(svg.find("free_energy against temperature") != std::string::npos);
    CHECK(svg.find("<g class=\"series\" data-name=\"a\">") != std::string::npos);
    CHECK(svg.find("<g class=\"series\" data-name=\"rbm_b\">") != std::string::npos);
    CHECK(count(svg, "class=\"legend-entry\"") == 2);
    CHECK(svg.find("class=\"error-bars\"") != std::string::npos);
    // A standard-error column is drawn as bars, not as a plot of its own.
    CHECK(!fs::exists(run / "plots" / "comparison_free_energy_stderr.svg"));
    CHECK(fs::exists(run / "plots" / "comparison_data_mean.svg"));
    // `ansatz report` rebuilds the same table from the folder alone.
    const std::string before = read_text(run / "comparison.csv");
    fs::remove(run / "comparison.csv");
    const auto again = run_ansatz({ "report", run.string() }, dir);
    INFO(again.err);
    REQUIRE(again.status == 0);
    CHECK(read_text(run / "comparison.csv") == before);
}

TEST_CASE("comparison: a run without x writes no comparison", "[comparison]")
{
    std::string text = pipeline;
    for (const std::string& key : { ", x: 3, series: a, x_label: temperature", ", x: 1, series: a", ", x: 2",
                                    ", x: 2, series: a, x_label: temperature" })
        text.replace(text.find(key), key.size(), "");
    const fs::path dir = folder("none", text);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(!fs::exists(only_run(dir) / "comparison.csv"));
    CHECK(read_text(only_run(dir) / "report.html").find("id=\"comparison\"") == std::string::npos);
}

namespace
{

void expect_refusal(const std::string& name, const std::string& from, const std::string& to,
                    const std::string& message)
{
    std::string text = pipeline;
    REQUIRE(text.find(from) != std::string::npos);
    text.replace(text.find(from), from.size(), to);
    const fs::path dir = folder("bad/" + name, text);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    CHECK(r.status == 2);
    std::string want = message;
    for (size_t at = want.find("{DIR}"); at != std::string::npos; at = want.find("{DIR}"))
        want.replace(at, 5, dir.string());
    CHECK(r.err == want + "\n");
    CHECK(!fs::exists(dir / "runs"));
}

} // namespace

TEST_CASE("bad input: the comparison's keys", "[comparison][bad-input]")
{
    expect_refusal("series_without_x", "evaluators: [probe], x: 1, series: a",
                   "evaluators: [probe], series: a",
                   "pipeline.yaml:12:71: stage 2 (evaluate): key series needs key x, this measurement's "
                   "place on the comparison's x axis (e.g. x: 2.269)");
    expect_refusal("x_label_without_x", "evaluators: [probe]}\n", "evaluators: [probe], x_label: T}\n",
                   "pipeline.yaml:15:72: stage 5 (evaluate): key x_label needs key x, this measurement's "
                   "place on the comparison's x axis (e.g. x: 2.269)");
    expect_refusal("x_label_differs", "x: 2, series: a, x_label: temperature", "x: 2, series: a, x_label: T",
                   "pipeline.yaml:14:89: stage 4 (evaluate): x_label 'T' differs from stage 1 "
                   "(evaluate)'s 'temperature'; the comparison has one x axis");
    expect_refusal("x_not_finite", "x: 1, series: a", "x: .nan, series: a",
                   "pipeline.yaml:12:66: key 'x' of stage 2 (evaluate) expects a float, got '.nan'");
    expect_refusal("series_empty", "x: 1, series: a", "x: 1, series: ''",
                   "pipeline.yaml:12:77: stage 2 (evaluate): series is empty; give it a name or leave the "
                   "key out");
    expect_refusal("x_not_a_number", "x: 1, series: a", "x: warm, series: a",
                   "pipeline.yaml:12:66: key 'x' of stage 2 (evaluate) expects a float, got 'warm'");
}

// report.html and run.yaml (engine/src/outputs/report*, run_info*): the report rebuilt from a run
// folder's files alone -- finished, interrupted, without metrics, without run.yaml, with a damaged
// metrics.csv -- is well-formed, self-contained and shows what the files hold; `ansatz report`
// rebuilds it and refuses a folder that is not a run folder; a real run writes both files.
#include "outputs/files.hpp"
#include "outputs/report.hpp"
#include "outputs/report_data.hpp"
#include "support/cli.hpp"
#include "support/xml_check.hpp"

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include <regex>

namespace fs = std::filesystem;
using namespace ansatz::engine;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;
using ansatz::test::xml_problem;

namespace
{

const std::string pipeline_yaml = R"(pipeline: demo
seed: 7
threads: 1
components:
  data: {plugin: idx, images: /data/a&b.idx}
  rbm: {plugin: rbm, hidden: 8}
stages:
  - train: {model: rbm, data: data, loss: cd, optimizer: sgd, epochs: 4, batch_size: 8}
  - evaluate: {model: rbm, data: data}
  - sample: {model: rbm, sampler: gibbs, count: 4, steps: 10}
)";

const std::string run_yaml = R"(format: 1
ansatz: {version: 0.1.0, abi: "1.0", build: g++ 12}
command: [/bin/ansatz, run, "my pipeline.yaml", --set, seed=7]
working_directory: /home/me
pipeline_file: my pipeline.yaml
started: 2026-11-27T13:15:02+0100
seed: 7
threads: 1
plugins:
  - {name: rbm, version: 0.2.0, file: /lib/libansatz_rbm.so, abi: "1.0", license: MIT, build: g++,
     components: [{instance: rbm, component: rbm, kind: model}]}
blas: {library: OpenBLAS, version: 0.3.21, config: OpenBLAS 0.3.21 Zen, core: Zen, parallel: pthreads, threads: 1,
       file: /usr/lib/libopenblas.so.0}
machine: {hostname: box, cpu: AMD EPYC 7B13, cores: 2, memory_bytes: 25276063744, os: Linux 6.1 x86_64}
)";

const std::string finished_metrics =
    "stage,type,epoch,loss,eval_loss,eval_loss_stderr,seconds,samples_per_second\n"
    "1,train,1,4.5,5,0.5,1.5,1000\n"
    "1,train,2,3.25,,,1.25,1200\n"
    "1,train,3,nan,4,0.25,1.25,1200\n"
    "1,train,4,2.5,3.5,0.25,1,1500\n"
    "2,evaluate,0,,3.75,0.5,2,\n"
    "3,sample,0,,,,0.5,\n";

fs::path make_run(const std::string& name, const std::string& metrics, bool with_info = true,
                  bool with_picture = true)
{
    const fs::path dir = ansatz::test::fresh_folder("report/" + name);
    write_text(dir / "pipeline.yaml", pipeline_yaml);
    if (with_info)
        write_text(dir / "run.yaml", run_yaml);
    if (!metrics.empty())
        write_text(dir / "metrics.csv", metrics);
    if (with_picture)
    {
        std::vector<uint8_t> pixels(12 * 10);
        for (size_t i = 0; i < pixels.size(); ++i)
            pixels[i] = static_cast<uint8_t>(i * 2);
        write_text(dir / "stage3_samples.png", png_bytes(pixels, 12, 10));
        const std::vector<float> chains = { 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1 }; // 4 chains of 3 values
        write_text(dir / "stage3_samples.npy", npy_bytes(chains.data(), { 4, 3 }));
    }
    return dir;
}

bool has(const std::string& text, const std::string& what)
{
    return text.find(what) != std::string::npos;
}

// The inline <svg> whose title is `title`.
std::string svg_titled(const std::string& html, const std::string& title)
{
    const size_t at = html.find("<title>" + title + "</title>");
    if (at == std::string::npos)
        return {};
    const size_t start = html.rfind("<svg", at);
    return html.substr(start, html.find("</svg>", at) + 6 - start);
}

std::vector<std::string> legend_of(const std::string& svg)
{
    std::vector<std::string> out;
    const std::regex entry("<text class=\"legend-entry\"[^>]*>([^<]*)</text>");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), entry); it != std::sregex_iterator(); ++it)
        out.push_back((*it)[1]);
    return out;
}

} // namespace

TEST_CASE("metric names pair a train curve with its evaluations, and find standard errors", "[report]")
{
    std::string role;
    CHECK(report::metric_base("eval_loss", &role) == "loss");
    CHECK(role == "eval");
    CHECK(report::metric_base("test_loglik", &role) == "loglik");
    CHECK(role == "test");
    CHECK(report::metric_base("loglik_val", &role) == "loglik");
    CHECK(role == "validation");
    CHECK(report::metric_base("loss", &role) == "loss");
    CHECK(role.empty());
    CHECK(report::metric_base("eval_") == "eval_");
    CHECK(report::error_of("eval_loss_stderr") == "eval_loss");
    CHECK(report::error_of("loglik_se") == "loglik");
    CHECK(report::error_of("reconstruction_error").empty());
}

TEST_CASE("npy_row_means reads a float32 .npy file row by row and refuses anything else", "[report]")
{
    const fs::path dir = ansatz::test::fresh_folder("report/npy");
    const std::vector<float> values = { 1, 2, 3, 4, 5, 6 };
    write_text(dir / "a.npy", npy_bytes(values.data(), { 2, 3 }));
    std::string problem;
    CHECK(report::npy_row_means(dir / "a.npy", problem) == std::vector<double>{ 2, 5 });
    CHECK(problem.empty());
    write_text(dir / "b.npy", npy_bytes(values.data(), { 2, 3 }).substr(0, 130));
    CHECK(report::npy_row_means(dir / "b.npy", problem).empty());
    CHECK(problem == "b.npy holds fewer values than its shape says");
    write_text(dir / "c.npy", "not numpy at all");
    CHECK(report::npy_row_means(dir / "c.npy", problem).empty());
    CHECK(problem == "c.npy is not a .npy file");
    CHECK(report::npy_row_means(dir / "a.npy", problem, 10).empty());
    CHECK(problem == "a.npy is larger than 0 MiB");
}

TEST_CASE("the report of a finished run: well-formed, self-contained, every part there", "[report]")
{
    const fs::path dir = make_run("finished", finished_metrics);
    const ReportFiles r = build_report(dir);
    INFO(xml_problem(r.html));
    REQUIRE(xml_problem(r.html).empty());
    const std::string& html = r.html;
    CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(has(html, "<style>"));
    // Self-contained: no external stylesheet, script file or web address.
    CHECK_FALSE(has(html, "<link"));
    CHECK_FALSE(has(html, "<script"));
    CHECK_FALSE(std::regex_search(html, std::regex("(src|href)=\"(https?:)?//")));

    CHECK(has(html, "<span class=\"status ok\">finished</span>"));
    CHECK(has(html, "4 of 4 epochs"));
    // The pipeline as it ran, escaped.
    CHECK(has(html, "/data/a&amp;b.idx"));
    // Command line (quoted as a shell would need), seed, versions, BLAS, machine.
    CHECK(has(html, "/bin/ansatz run &#39;my pipeline.yaml&#39; --set seed=7"));
    CHECK(has(html, "0.1.0 (ABI 1.0)"));
    CHECK(has(html, "<b>rbm</b>"));
    CHECK(has(html, "/lib/libansatz_rbm.so"));
    CHECK(has(html, "OpenBLAS 0.3.21"));
    CHECK(has(html, "core <b>Zen</b>"));
    CHECK(has(html, "AMD EPYC 7B13"));
    CHECK(has(html, "24 GiB"));

    // One plot per metric: loss of the train stage with its evaluation curve and the evaluate stage's value.
    const std::string loss = svg_titled(html, "loss");
    REQUIRE_FALSE(loss.empty());
    CHECK(legend_of(loss) ==
          std::vector<std::string>{ "loss", "eval_loss", "stage 2 (evaluate): eval_loss" });
    CHECK(has(loss, "class=\"error-bars\""));
    CHECK(has(loss, "1 NaN value not shown"));
    // Timing: one plot per timing column of the train stage, and the table.
    CHECK_FALSE(svg_titled(html, "stage 1 (train): seconds").empty());
    CHECK_FALSE(svg_titled(html, "stage 1 (train): samples_per_second").empty());
    CHECK(has(html, "5.00 s")); // 1.5 + 1.25 + 1.25 + 1 in the train stage
    CHECK(has(html, "1,225 samples/s"));
    CHECK(has(html, "7.50 s")); // the whole run
    // The picture, by relative path, with a caption.
    CHECK(has(html, "<img src=\"stage3_samples.png\""));
    CHECK(has(html, "The final states of the 4 chains of stage 3 (sample) after 10 sweeps of gibbs"));
    CHECK(has(html, "12 \xc3\x97 10 px"));

    // The plots are also files.
    std::vector<std::string> names;
    for (const auto& [name, svg] : r.plots)
    {
        names.push_back(name);
        CHECK(xml_problem(svg).empty());
    }
    CHECK(names == std::vector<std::string>{ "stage1_loss.svg", "stage3_chain_means.svg",
                                             "stage1_time_seconds.svg",
                                             "stage1_time_samples_per_second.svg" });
    // The sample stage's chains: a histogram of their means (1/3, 2/3, 0, 1/3).
    const std::string means = svg_titled(html, "stage 3: the mean value of each chain");
    REQUIRE_FALSE(means.empty());
    CHECK(has(means, "data-count=\"2\""));
    CHECK(has(html, "How the 4 chains differ"));
}

TEST_CASE("write_report writes report.html and plots/ atomically and can run again", "[report]")
{
    const fs::path dir = make_run("write", finished_metrics);
    write_report(dir);
    write_report(dir); // the second time sees the first's files
    CHECK(xml_problem(read_text(dir / "report.html")).empty());
    CHECK(xml_problem(read_text(dir / "plots" / "stage1_loss.svg")).empty());
    CHECK(read_text(dir / "plots" / "stage1_loss.svg").rfind("<?xml", 0) == 0);
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        CHECK(entry.path().filename().string()[0] != '.'); // no temporary file left
    const std::string html = read_text(dir / "report.html");
    CHECK(has(html, "<a href=\"report.html\"><code>report.html</code></a>"));
    CHECK(has(html, "<img src=\"stage3_samples.png\""));
    CHECK_FALSE(has(html, "<img src=\"plots/")); // its own plots are inline, not repeated as pictures
}

TEST_CASE("after an epoch the report is rebuilt only while that is cheap, and `always` always rebuilds",
          "[report]")
{
    const fs::path dir = make_run("when_cheap", "stage,type,epoch,loss\n1,train,1,4\n", true, false);
    write_report(dir, ReportUpdate::when_cheap); // never written by this process: written
    CHECK(has(read_text(dir / "report.html"), "1 of 4 epochs"));
    write_text(dir / "metrics.csv", "stage,type,epoch,loss\n1,train,1,4\n1,train,2,3\n");
    write_report(dir); // always
    CHECK(has(read_text(dir / "report.html"), "2 of 4 epochs"));
    // Right after a rebuild, an epoch's call is skipped (tried a few times: the machine may stall).
    bool skipped = false;
    for (int attempt = 0; attempt < 5 && !skipped; ++attempt)
    {
        write_text(dir / "metrics.csv", "stage,type,epoch,loss\n1,train,1,4\n1,train,2,3\n");
        write_report(dir);
        write_text(dir / "metrics.csv", "stage,type,epoch,loss\n1,train,1,4\n1,train,2,3\n1,train,3,2\n");
        write_report(dir, ReportUpdate::when_cheap);
        skipped = has(read_text(dir / "report.html"), "2 of 4 epochs");
    }
    CHECK(skipped);
    write_report(dir); // the end of the stage catches up
    CHECK(has(read_text(dir / "report.html"), "3 of 4 epochs"));
}

TEST_CASE("the report of an interrupted run says how far it got", "[report]")
{
    const fs::path dir = make_run(
        "interrupted", "stage,type,epoch,loss,seconds\n1,train,1,4.5,1.5\n1,train,2,3.5,1.5\n", true, false);
    const std::string html = build_report(dir).html;
    REQUIRE(xml_problem(html).empty());
    CHECK(has(html, "incomplete: 0 of 3 stages"));
    CHECK(has(html, "2 of 4 epochs"));
    CHECK(has(html, "not run yet"));
    CHECK(has(html, "No metrics from this stage yet."));
    CHECK_FALSE(svg_titled(html, "loss").empty());
}

TEST_CASE("the report of a run without metrics yet says so", "[report]")
{
    const fs::path dir = make_run("no_metrics", "", true, false);
    const std::string html = build_report(dir).html;
    REQUIRE(xml_problem(html).empty());
    CHECK(has(html, "no metrics yet"));
    CHECK(has(html, "metrics.csv is not in the folder"));
    CHECK(has(html, "No timings yet."));
    CHECK(has(html, "0 of 4 epochs"));
}

TEST_CASE("the report says what it could not read, and shows the rest", "[report]")
{
    const fs::path dir =
        make_run("damaged", "stage,type,epoch,loss\n1,train,1,4\n1,train,2\n1,train,3,2\n", false);
    const std::string html = build_report(dir).html;
    REQUIRE(xml_problem(html).empty());
    CHECK(has(html, "run.yaml is missing"));
    CHECK(has(html, "metrics.csv line 3 has 3 cells where the header has 4; the line is left out."));
    CHECK(has(html, "Not known: run.yaml is missing."));
    CHECK_FALSE(svg_titled(html, "loss").empty());

    write_text(dir / "pipeline.yaml", "pipeline: [unclosed\n");
    const std::string broken = build_report(dir).html;
    CHECK(xml_problem(broken).empty());
    CHECK(has(broken, "pipeline.yaml could not be read"));
}

TEST_CASE("`ansatz report` rebuilds a run folder's report and refuses any other folder", "[report][cli]")
{
    const fs::path dir = make_run("cli", finished_metrics);
    const auto ok = run_ansatz({ "report", dir.string() }, dir.parent_path());
    CHECK(ok.status == 0);
    CHECK(ok.out == (dir / "report.html").string() + "\n");
    CHECK(xml_problem(read_text(dir / "report.html")).empty());

    const fs::path not_a_run = ansatz::test::fresh_folder("report/not_a_run");
    const auto refused = run_ansatz({ "report", not_a_run.string() }, not_a_run);
    CHECK(refused.status == 2);
    CHECK(refused.err ==
          "ansatz report: " + not_a_run.string() +
              " is not a run folder (it has no pipeline.yaml); give a folder that `ansatz run` "
              "made, e.g. runs/quickstart/20261127-131502.\n");
    CHECK_FALSE(fs::exists(not_a_run / "report.html"));
    CHECK(run_ansatz({ "report" }, not_a_run).status == 2);
    CHECK(run_ansatz({ "report", "/nowhere/at/all" }, not_a_run).status == 2);
    CHECK(has(run_ansatz({ "--help" }, not_a_run).out, "report RUN_DIR"));
}

TEST_CASE("a run writes run.yaml at its start and report.html as it goes", "[report][cli][run]")
{
    const fs::path dir = ansatz::test::fresh_folder("report/real_run");
    std::string images("\x00\x00\x08\x03\x00\x00\x00\x20\x00\x00\x00\x04\x00\x00\x00\x04", 16);
    for (int i = 0; i < 32 * 16; ++i)
        images += static_cast<char>((i * 37) % 256);
    write_text(dir / "images.idx", images);
    write_text(dir / "pipeline.yaml", R"(pipeline: tiny
seed: 3
threads: 1
components:
  data:  {plugin: idx, images: images.idx, binarize: 0.5}
  rbm:   {plugin: rbm, hidden: 4}
  gibbs: {plugin: gibbs}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 0.05}
stages:
  - train:  {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 3, batch_size: 8}
  - sample: {model: rbm, sampler: gibbs, count: 4, steps: 5}
)");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path run = dir / r.out.substr(0, r.out.find('\n'));

    const YAML::Node info = YAML::LoadFile((run / "run.yaml").string());
    CHECK(info["format"].as<int>() == 1);
    CHECK(info["ansatz"]["version"].as<std::string>() == "0.1.0");
    CHECK(info["seed"].as<int>() == 3);
    CHECK(info["threads"].as<int>() == 1);
    REQUIRE(info["command"].IsSequence());
    CHECK(info["command"][1].as<std::string>() == "run");
    CHECK(info["command"][2].as<std::string>() == "pipeline.yaml");
    CHECK(info["pipeline_file"].as<std::string>() == (dir / "pipeline.yaml").string());
    CHECK(info["working_directory"].as<std::string>() == dir.string());
    CHECK(info["plugins"].size() == 5);
    CHECK(info["plugins"][0]["name"].as<std::string>() == "idx");
    CHECK(info["plugins"][0]["components"][0]["instance"].as<std::string>() == "data");
    CHECK(info["plugins"][0]["file"].as<std::string>().find("libansatz_idx.so") != std::string::npos);
    CHECK(info["blas"]["library"].as<std::string>() == "OpenBLAS");
    CHECK_FALSE(info["blas"]["core"].as<std::string>().empty());
    CHECK(info["blas"]["threads"].as<int>() == 1);
    CHECK(info["machine"]["cores"].as<int>() >= 1);
    CHECK(info["machine"]["memory_bytes"].as<uint64_t>() > 0);

    const std::string html = read_text(run / "report.html");
    REQUIRE(xml_problem(html).empty());
    CHECK(has(html, "<span class=\"status ok\">finished</span>"));
    CHECK(has(html, "3 of 3 epochs"));
    CHECK(has(html, "reconstruction_error"));
    CHECK_FALSE(svg_titled(html, "reconstruction_error").empty());
    CHECK(has(html, "<img src=\"stage2_samples.png\""));
    CHECK(fs::exists(run / "plots" / "stage1_reconstruction_error.svg"));
}

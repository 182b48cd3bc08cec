// The evaluate stage and a train stage's evaluators (ABI 2.1): rows in metrics.csv with the
// evaluators' metric names, evaluation every N epochs that survives a resume, and validation of the
// keys. The evaluator is the `probe` fixture (tests/fixtures/plugins/probe_evaluator.cpp), which
// reports what it was given; the real evaluators have tests of their own.
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <sstream>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

const std::string pipeline = R"(pipeline: evaluated
seed: 5
threads: 1
plugin_paths: [plugins]
components:
  data:  {plugin: idx, images: images.idx}
  held:  {plugin: idx, images: held.idx}
  rbm:   {plugin: rbm, hidden: 5, init_std: 0.1}
  gibbs: {plugin: gibbs}
  pcd:   {plugin: contrastive_divergence, persistent: true, chains: 4}
  sgd:   {plugin: sgd, learning_rate: 0.1}
  probe: {plugin: probe}
stages:
  - train:    {model: rbm, data: data, loss: pcd, sampler: gibbs, optimizer: sgd, epochs: 5, batch_size: 8,
               evaluators: [probe], evaluate_data: held, evaluate_every: 2}
  - evaluate: {model: rbm, data: held, evaluators: [probe]}
)";

fs::path folder(const std::string& name, const std::string& text = pipeline)
{
    const fs::path dir = ansatz::test::fresh_folder("evaluate/" + name);
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_probe.so",
                  dir / "plugins" / "libansatz_fixture_probe.so");
    write_text(dir / "pipeline.yaml", text);
    write_text(dir / "images.idx", ansatz::test::square_images(230, 20));
    write_text(dir / "held.idx", ansatz::test::square_images(200, 40));
    return dir;
}

using Table = std::vector<std::map<std::string, std::string>>;

Table csv(const fs::path& file)
{
    std::istringstream in(read_text(file));
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
    return rows;
}

fs::path only_run(const fs::path& dir)
{
    return *fs::directory_iterator(dir / "runs" / "evaluated");
}

} // namespace

TEST_CASE("evaluate: evaluators run every N epochs and after the last and as a stage", "[evaluate]")
{
    const fs::path dir = folder("rows");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const Table rows = csv(only_run(dir) / "metrics.csv");
    REQUIRE(rows.size() == 6); // 5 epochs, then the evaluate stage
    for (int epoch = 1; epoch <= 5; ++epoch)
    {
        const auto& row = rows[static_cast<size_t>(epoch - 1)];
        INFO("epoch " << epoch);
        CHECK(row.at("stage") == "1");
        const bool evaluated = epoch == 2 || epoch == 4 || epoch == 5;
        CHECK(row.at("rows").empty() == !evaluated);
        if (evaluated)
        {
            CHECK(row.at("rows") == "48"); // every row of held.idx
            // held.idx: 9 pixels of 200/255 and 27 of 40/255 per image, as grey levels.
            CHECK(std::stod(row.at("data_mean")) == Approx((9 * 200 + 27 * 40) / (255.0 * 36)).epsilon(1e-5));
            CHECK(std::stod(row.at("free_energy_stderr")) >= 0);
        }
    }
    const auto& last = rows.back();
    CHECK(last.at("stage") == "2");
    CHECK(last.at("type") == "evaluate");
    CHECK(last.at("rows") == "48");
    // The model did not change between the last epoch's evaluation and the stage: same free energy.
    CHECK(last.at("free_energy") == rows[4].at("free_energy"));
    // Each evaluation draws from a stream of its own.
    CHECK(last.at("draw") != rows[4].at("draw"));
    CHECK(rows[1].at("draw") != rows[3].at("draw"));
    CHECK(r.err.find(
              "evaluate [stage 2] model 'rbm' on 'held': rows = 48, data_mean = 0.313725, free_energy = ") !=
          std::string::npos);
    CHECK(r.err.find("free_energy = ") != std::string::npos);
    CHECK(r.err.find(" +- ") != std::string::npos);
}

TEST_CASE("evaluate: rows of evaluate_every survive a resume and equal an uninterrupted run",
          "[evaluate][resume]")
{
    const fs::path whole = folder("whole");
    const auto a = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, whole);
    INFO(a.err);
    REQUIRE(a.status == 0);

    const fs::path cut = folder("cut");
    // Killed in epoch 5, after epochs 2 and 4 were evaluated and checkpointed.
    auto b = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, cut, { "ANSATZ_FAULT=batch:27" });
    REQUIRE(b.status == 128 + 9);
    b = run_ansatz({ "run", "--resume", only_run(cut).string(), "--plugin-path", "plugins" }, cut);
    INFO(b.err);
    REQUIRE(b.status == 0);

    const Table want = csv(only_run(whole) / "metrics.csv");
    const Table got = csv(only_run(cut) / "metrics.csv");
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i)
        for (const char* column :
             { "epoch", "loss", "rows", "data_mean", "free_energy", "free_energy_stderr", "draw" })
        {
            INFO("row " << i << ", column " << column);
            CHECK(got[i].at(column) == want[i].at(column));
        }
}

TEST_CASE("evaluate: a name an evaluator shares with the loss's metrics is prefixed with the evaluator's",
          "[evaluate]")
{
    // The CD loss reports free_energy_gap and reconstruction_error; the probe reports free_energy. A
    // second probe in the same list reports the same names as the first: its columns get "probe2.".
    std::string text = pipeline;
    text.replace(text.find("  probe: {plugin: probe}"), 24,
                 "  probe: {plugin: probe}\n  probe2: {plugin: probe}");
    text.replace(text.find("evaluators: [probe], evaluate_data"), 19, "evaluators: [probe, probe2]");
    const fs::path dir = folder("prefixed", text);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const Table rows = csv(only_run(dir) / "metrics.csv");
    CHECK(rows[1].at("probe2.rows") == "48");
    CHECK(rows[1].at("probe2.free_energy") == rows[1].at("free_energy"));
    CHECK(rows[1].at("probe2.draw") != rows[1].at("draw"));
}

namespace
{

struct Refusal
{
    std::string from, to, message;
};

void expect_refusal(const std::string& name, const Refusal& c)
{
    std::string text = pipeline;
    REQUIRE(text.find(c.from) != std::string::npos);
    text.replace(text.find(c.from), c.from.size(), c.to);
    const fs::path dir = folder("bad/" + name, text);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    CHECK(r.status == 2);
    std::string want = c.message;
    for (size_t at = want.find("{DIR}"); at != std::string::npos; at = want.find("{DIR}"))
        want.replace(at, 5, dir.string());
    CHECK(r.err == want + "\n");
    CHECK(!fs::exists(dir / "runs"));
}

} // namespace

TEST_CASE("bad input: evaluators", "[evaluate][bad-input]")
{
    expect_refusal("not_an_evaluator",
                   { "evaluators: [probe], evaluate_data", "evaluators: [sgd], evaluate_data",
                     "pipeline.yaml:15:29: stage 1 (train): key 'evaluators' needs an evaluator, but 'sgd' "
                     "is an optimizer (plugin 'sgd')" });
    expect_refusal("unknown",
                   { "- evaluate: {model: rbm, data: held, evaluators: [probe]}",
                     "- evaluate: {model: rbm, data: held, evaluators: [prob]}",
                     "pipeline.yaml:16:53: stage 2 (evaluate): key 'evaluators' names 'prob', which "
                     "is not a component of this pipeline (did you mean 'probe'?); components: data, "
                     "held, rbm, gibbs, pcd, sgd, probe" });
    expect_refusal("twice", { "evaluators: [probe]}", "evaluators: [probe, probe]}",
                              "pipeline.yaml:16:53: stage 2 (evaluate): key 'evaluators' names 'probe' more "
                              "than once" });
    expect_refusal("empty",
                   { "evaluators: [probe]}", "evaluators: []}",
                     "pipeline.yaml:16:52: key 'evaluators' of stage 2 (evaluate) has 0 items, but it "
                     "must have at least 1 item" });
    expect_refusal("no_data",
                   { ", evaluate_data: held, evaluate_every: 2", "",
                     "pipeline.yaml:15:28: stage 1 (train): evaluators need an 'evaluate_data' key "
                     "naming the dataset to measure the model on" });
    expect_refusal("no_evaluators",
                   { "evaluators: [probe], evaluate_data: held, evaluate_every: 2", "evaluate_every: 2",
                     "pipeline.yaml:15:32: stage 1 (train): key 'evaluate_every' has no use "
                     "without an 'evaluators' key listing what to run" });
    expect_refusal("every_zero",
                   { "evaluate_every: 2", "evaluate_every: 0",
                     "pipeline.yaml:15:74: key 'evaluate_every' of stage 1 (train) is 0, out of "
                     "range: it must be [1, 1000000000]" });
    expect_refusal("refused_by_bind", { "probe: {plugin: probe}", "probe: {plugin: probe, refuse_above: 10}",
                                        "component 'probe' (evaluator 'probe' from "
                                        "{DIR}/plugins/libansatz_fixture_probe.so): evaluator 'probe': the "
                                        "model's samples have 36 values, more than refuse_above = 10" });
}

TEST_CASE("bad input: an evaluator needing tempered functions paired with a model lacking them",
          "[evaluate][bad-input]")
{
    std::string text = pipeline;
    text.replace(text.find("  probe: {plugin: probe}"), 24,
                 "  probe: {plugin: probe}\n  hot: {plugin: probe_tempered}\n  flat: {plugin: energy_only}");
    text.replace(text.find("- evaluate: {model: rbm, data: held, evaluators: [probe]}"), 57,
                 "- evaluate: {model: flat, data: held, evaluators: [hot]}");
    const fs::path dir = folder("bad/tempered", text);
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_energy_only.so",
                  dir / "plugins" / "libansatz_fixture_energy_only.so");
    const auto r = run_ansatz({ "validate", "pipeline.yaml" }, dir);
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("pipeline.yaml:18:54: stage 2 (evaluate): evaluator 'hot' needs the model's "
                     "tempered_free_energy + "
                     "base_log_partition + tempered_conditional, but "
                     "model 'flat' (plugin 'energy_only' from ") != std::string::npos);
}

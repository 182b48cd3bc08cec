// Keys that are lists and keys that name another component, through the real binary, with the fixture
// sampler `repeat` (tests/fixtures/plugins/nested.cpp), which wraps the sampler its `inner:` key names.
// Bad input: the whole of stderr, checked exactly ({DIR} is the test's folder, {PLUGINS} the in-tree
// plugin folder), and exit status 2.
#include "loading/registry.hpp"
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <sstream>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

const std::string base_pipeline = R"(pipeline: nested
seed: 1
components:
  rbm:   {plugin: rbm, visible: 16, hidden: 4}
  gibbs: {plugin: gibbs, steps: 1}
  rep:   {plugin: repeat, inner: gibbs, times: 3, ladder: [0.5, 1], shape: [2, 3], tags: [hot, cold]}
stages:
  - sample: {model: rbm, sampler: rep, count: 4, steps: 10}
  - sample: {model: rbm, sampler: rep, count: 4, steps: 5}
)";

const std::string fixture_dir = ANSATZ_TEST_FIXTURE_DIR;

std::string replace_all(std::string s, const std::string& from, const std::string& to)
{
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

// IDX header for `count` unsigned-byte images of rows x cols, then the pixels.
std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols)
{
    std::string s("\x00\x00\x08\x03", 4);
    for (uint32_t v : { count, rows, cols })
        for (int shift = 24; shift >= 0; shift -= 8)
            s += static_cast<char>((v >> shift) & 0xff);
    for (size_t i = 0; i < size_t{ count } * rows * cols; ++i)
        s += static_cast<char>(i * 37 % 256);
    return s;
}

struct Outcome
{
    int status;
    std::string out;
    std::string err;
    fs::path dir;
};

// A folder of its own for the test, with plugins/ holding only the nested fixture (and energy_only when
// asked): the fixture folder also holds plugins broken on purpose. The in-tree plugins are found next
// to the binary.
fs::path test_folder(const std::string& name, bool energy_only = false)
{
    const fs::path dir = ansatz::test::fresh_folder("nested_keys/" + name);
    fs::create_directories(dir / "plugins");
    std::vector<std::string> files{ "libansatz_fixture_nested.so" };
    if (energy_only)
        files.push_back("libansatz_fixture_energy_only.so");
    for (const std::string& f : files)
        fs::copy_file(fs::path(fixture_dir) / f, dir / "plugins" / f);
    return dir;
}

// Writes the pipeline and an images.idx (8 images of 2 x 3), then runs `ansatz run` on it.
Outcome run_pipeline(const std::string& name, const std::string& pipeline,
                     std::vector<std::string> extra = {}, bool energy_only = false)
{
    const fs::path dir = test_folder(name, energy_only);
    write_text(dir / "pipeline.yaml", pipeline);
    write_text(dir / "images.idx", idx_images(8, 2, 3));
    std::vector<std::string> args = { "run", "pipeline.yaml", "--plugin-path", "plugins", "--runs", "runs" };
    args.insert(args.end(), extra.begin(), extra.end());
    const ansatz::test::CliResult r = run_ansatz(args, dir);
    return { r.status, r.out, r.err, dir };
}

Outcome with_change(const std::string& name, const std::string& from, const std::string& to)
{
    REQUIRE(base_pipeline.find(from) != std::string::npos);
    return run_pipeline(name, replace_all(base_pipeline, from, to));
}

void expect(const Outcome& o, const std::string& expected)
{
    std::string want = replace_all(expected, "{DIR}", o.dir.string());
    want = replace_all(want, "{PLUGINS}", ANSATZ_TEST_PLUGIN_DIR);
    CHECK(o.status == 2);
    CHECK(o.err == want + "\n");
    CHECK_FALSE(fs::exists(o.dir / "runs")); // refused before a run folder is made
}

const std::string while_rep =
    "\n  while validating component 'rep' (plugin file {DIR}/plugins/libansatz_fixture_nested.so)";

fs::path only_run(const Outcome& o)
{
    return *fs::directory_iterator(o.dir / "runs" / "nested");
}

// metrics.csv as one map from column to value per row.
std::vector<std::map<std::string, std::string>> metrics_rows(const fs::path& run)
{
    std::istringstream in(read_text(run / "metrics.csv"));
    const auto split = [](const std::string& line) {
        std::vector<std::string> cells;
        std::stringstream s(line);
        for (std::string cell; std::getline(s, cell, ',');)
            cells.push_back(cell);
        return cells;
    };
    std::string line;
    std::getline(in, line);
    const std::vector<std::string> header = split(line);
    std::vector<std::map<std::string, std::string>> rows;
    while (std::getline(in, line))
    {
        const std::vector<std::string> cells = split(line);
        std::map<std::string, std::string>& row = rows.emplace_back();
        for (size_t i = 0; i < header.size() && i < cells.size(); ++i)
            row[header[i]] = cells[i];
    }
    return rows;
}

} // namespace

TEST_CASE("a sampler wrapping another advances it `times` per sweep and reads the host's progress",
          "[keys][cli]")
{
    const Outcome o = run_pipeline("runs", base_pipeline);
    INFO(o.err);
    REQUIRE(o.status == 0);
    const auto rows = metrics_rows(only_run(o));
    REQUIRE(rows.size() == 2);
    // 10 sweeps, then 5, each 3 advances of gibbs with one sweep each.
    CHECK(rows[0].at("repeat_inner_calls") == "30");
    CHECK(rows[0].at("inner.gibbs_sweeps") == "30");
    CHECK(rows[1].at("repeat_inner_calls") == "15");
    CHECK(rows[1].at("inner.gibbs_sweeps") == "15");
    // The list keys arrived as lists; tags are 2 strings.
    CHECK(rows[0].at("ladder_count") == "2");
    CHECK(rows[0].at("ladder_sum") == "1.5");
    CHECK(rows[0].at("shape_product") == "6");
    CHECK(rows[0].at("tags_count") == "2");
    // Progress: the stage's 1-based index; a sample stage has no epoch, and its step counts the sweeps
    // done before the call: the last of 5 one-sweep slices sees 4.
    CHECK(rows[0].at("progress_stage") == "1");
    CHECK(rows[1].at("progress_stage") == "2");
    CHECK(rows[1].at("progress_epoch") == "0");
    CHECK(rows[1].at("progress_step") == "4");
    // The resolved pipeline writes lists in flow style and the inner sampler by name.
    const std::string resolved = read_text(only_run(o) / "pipeline.yaml");
    CHECK(resolved.find("  rep:\n    plugin: repeat\n    inner: gibbs\n    times: 3\n    ladder: [0.5, 1]\n"
                        "    shape: [2, 3]\n    tags: [hot, cold]\n") != std::string::npos);
}

TEST_CASE("a wrapped sampler in a train stage sees the epoch and the batches done", "[keys][cli]")
{
    const std::string pipeline = R"(pipeline: nested
seed: 1
components:
  data:  {plugin: idx, images: images.idx}
  rbm:   {plugin: rbm, hidden: 4}
  gibbs: {plugin: gibbs}
  rep:   {plugin: repeat, inner: gibbs, times: 2}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 0.1}
stages:
  - train: {model: rbm, data: data, loss: cd, sampler: rep, optimizer: sgd, epochs: 2, batch_size: 4}
)";
    const Outcome o = run_pipeline("train_progress", pipeline);
    INFO(o.err);
    REQUIRE(o.status == 0);
    const auto rows = metrics_rows(only_run(o));
    REQUIRE(rows.size() == 2);
    // 8 images in batches of 4: 2 batches an epoch, each advancing the inner sampler twice. Progress as
    // read in the epoch's last advance, during its second batch: 1, then 3 batches done.
    CHECK(rows[0].at("inner.gibbs_sweeps") == "4");
    CHECK(rows[0].at("progress_stage") == "1");
    CHECK(rows[0].at("progress_epoch") == "1");
    CHECK(rows[0].at("progress_step") == "1");
    CHECK(rows[1].at("progress_epoch") == "2");
    CHECK(rows[1].at("progress_step") == "3");
    // Defaults of list keys, and an optional list that was not given.
    CHECK(rows[0].at("ladder_sum") == "1");
    CHECK(rows[0].at("shape_product") == "1");
    CHECK(rows[0].at("tags_count") == "-1");
}

TEST_CASE("a component's extension is found by name through the registry", "[keys][registry]")
{
    ansatz::engine::Registry r;
    r.scan({ test_folder("extension") / "plugins" });
    REQUIRE(r.refusals().empty());
    const ansatz::engine::PluginComponent* repeat = r.find("repeat", ANSATZ_KIND_SAMPLER);
    REQUIRE(repeat != nullptr);
    REQUIRE(repeat->desc->extension != nullptr);
    const ansatz_function f = repeat->desc->extension("fixture.answer");
    REQUIRE(f != nullptr);
    CHECK(reinterpret_cast<int32_t (*)()>(f)() == 42);
    CHECK(repeat->desc->extension("fixture.question") == nullptr);
    CHECK(repeat->desc->extension("") == nullptr);
    CHECK(repeat->desc->extension(nullptr) == nullptr);
}

TEST_CASE("`ansatz describe` shows list keys and component keys", "[keys][cli]")
{
    const fs::path dir = test_folder("describe");
    const auto r = run_ansatz({ "describe", "repeat", "--plugin-path", "plugins" }, dir);
    CHECK(r.status == 0);
    const std::string keys = r.out.substr(r.out.find("keys:\n"));
    CHECK(keys == "keys:\n"
                  "  inner      sampler, required\n"
                  "             the sampler advanced `times` times per advance\n"
                  "  times      int >= 1, default 2\n"
                  "             advances of the inner sampler per advance of this one\n"
                  "  ladder     list of floats with items > 0, 1 to 16 items, default [1]\n"
                  "             a temperature ladder (reported as ladder_count and ladder_sum)\n"
                  "  shape      list of ints with items >= 1, 1 to 3 items, default [1]\n"
                  "             a lattice shape (reported as shape_product)\n"
                  "  tags       list of strings, optional\n"
                  "             labels (reported as tags_count)\n"
                  "  reference  model with energy_delta, optional\n"
                  "             a model with local energy differences (only validated)\n");
}

TEST_CASE("a list key set by --set: the whole list, or one item", "[keys][cli]")
{
    const Outcome whole = run_pipeline("set_list", base_pipeline, { "--set", "components.rep.ladder=[1,2]" });
    INFO(whole.err);
    REQUIRE(whole.status == 0);
    CHECK(read_text(only_run(whole) / "pipeline.yaml").find("    ladder: [1, 2]\n") != std::string::npos);
    CHECK(metrics_rows(only_run(whole))[0].at("ladder_sum") == "3");

    const Outcome item = run_pipeline("set_item", base_pipeline, { "--set", "components.rep.ladder.1=3" });
    INFO(item.err);
    REQUIRE(item.status == 0);
    CHECK(read_text(only_run(item) / "pipeline.yaml").find("    ladder: [0.5, 3]\n") != std::string::npos);

    expect(
        run_pipeline("set_bad_item", base_pipeline, { "--set", "components.rep.ladder=[1,x]" }),
        "--set components.rep.ladder=[1,x]: item 1 of key 'ladder' of sampler 'repeat' expects a float, got "
        "'x'" +
            while_rep);
    expect(run_pipeline("set_past_end", base_pipeline, { "--set", "components.rep.ladder.2=3" }),
           "--set components.rep.ladder.2=3: 'components.rep.ladder.2' is past the end of a list of 2.");
}

TEST_CASE("bad input: a list key given a scalar", "[keys][bad-input]")
{
    expect(
        with_change("list_scalar", "ladder: [0.5, 1]", "ladder: 0.5"),
        "pipeline.yaml:6:59: key 'ladder' of sampler 'repeat' expects a list of floats such as [1, 2], got "
        "'0.5'" +
            while_rep);
    expect(
        with_change("list_mapping", "tags: [hot, cold]", "tags: {hot: 1}"),
        "pipeline.yaml:6:90: key 'tags' of sampler 'repeat' expects a list of strings such as [a, b], got a "
        "mapping" +
            while_rep);
}

TEST_CASE("bad input: a list item of the wrong type, pointed at", "[keys][bad-input]")
{
    expect(with_change("item_type", "shape: [2, 3]", "shape: [2, x]"),
           "pipeline.yaml:6:80: item 1 of key 'shape' of sampler 'repeat' expects an int, got 'x'" +
               while_rep);
    expect(with_change("item_float", "shape: [2, 3]", "shape: [2.5, 3]"),
           "pipeline.yaml:6:77: item 0 of key 'shape' of sampler 'repeat' expects an int, got '2.5'" +
               while_rep);
    expect(with_change("item_nested", "tags: [hot, cold]", "tags: [hot, [cold]]"),
           "pipeline.yaml:6:96: item 1 of key 'tags' of sampler 'repeat' expects a string, got a list" +
               while_rep);
    // A list in block style: the item's own line.
    const std::string rep_line = "  rep:   {plugin: repeat, inner: gibbs, times: 3, ladder: [0.5, 1], shape: "
                                 "[2, 3], tags: [hot, cold]}\n";
    expect(
        with_change("item_block", rep_line,
                    "  rep:\n    plugin: repeat\n    inner: gibbs\n    ladder:\n      - 0.5\n      - hot\n"),
        "pipeline.yaml:11:9: item 1 of key 'ladder' of sampler 'repeat' expects a float, got 'hot'" +
            while_rep);
}

TEST_CASE("bad input: a list item out of range", "[keys][bad-input]")
{
    expect(
        with_change("item_range", "ladder: [0.5, 1]", "ladder: [0.5, 0]"),
        "pipeline.yaml:6:65: item 1 of key 'ladder' of sampler 'repeat' is 0, out of range: it must be > 0" +
            while_rep);
    expect(
        with_change("item_range_int", "shape: [2, 3]", "shape: [0, 3]"),
        "pipeline.yaml:6:77: item 0 of key 'shape' of sampler 'repeat' is 0, out of range: it must be >= 1" +
            while_rep);
}

TEST_CASE("bad input: a list with too few or too many items", "[keys][bad-input]")
{
    expect(with_change("too_few", "shape: [2, 3]", "shape: []"),
           "pipeline.yaml:6:76: key 'shape' of sampler 'repeat' has 0 items, but it must have 1 to 3 items" +
               while_rep);
    expect(with_change("too_many", "shape: [2, 3]", "shape: [1, 2, 3, 4]"),
           "pipeline.yaml:6:76: key 'shape' of sampler 'repeat' has 4 items, but it must have 1 to 3 items" +
               while_rep);
    expect(
        with_change("too_many_ladder", "ladder: [0.5, 1]",
                    "ladder: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"),
        "pipeline.yaml:6:59: key 'ladder' of sampler 'repeat' has 17 items, but it must have 1 to 16 items" +
            while_rep);
}

TEST_CASE("bad input: a float that a float32 cannot hold", "[keys][bad-input]")
{
    expect(with_change("item_float32", "ladder: [0.5, 1]", "ladder: [0.5, 1e39]"),
           "pipeline.yaml:6:65: item 1 of key 'ladder' of sampler 'repeat' is 1e39, which does not fit the "
           "float32 the component keeps (at most 3.4e38 in magnitude)" +
               while_rep);
    expect(with_change("item_underflow", "ladder: [0.5, 1]", "ladder: [0.5, 1e-50]"),
           "pipeline.yaml:6:65: item 1 of key 'ladder' of sampler 'repeat' is 1e-50, which the float32 the "
           "component keeps rounds to 0 (the smallest is 1.4e-45 in magnitude)" +
               while_rep);
    const std::string sgd = "  sgd:   {plugin: sgd, learning_rate: 1e300}\nstages:";
    const std::string while_sgd =
        "\n  while validating component 'sgd' (plugin file {PLUGINS}/libansatz_sgd.so)";
    expect(
        with_change("plain_float32", "stages:", sgd),
        "pipeline.yaml:7:39: key 'learning_rate' of optimizer 'sgd' is 1e300, which does not fit the float32 "
        "the component keeps (at most 3.4e38 in magnitude)" +
            while_sgd);
    expect(with_change("plain_underflow", "stages:", replace_all(sgd, "1e300", "1e-50")),
           "pipeline.yaml:7:39: key 'learning_rate' of optimizer 'sgd' is 1e-50, which the float32 the "
           "component "
           "keeps rounds to 0 (the smallest is 1.4e-45 in magnitude)" +
               while_sgd);
    // Within [0, 1) as a double, but the float32 the optimizer keeps is 1.
    expect(with_change("rounds_out_of_range",
                       "stages:", replace_all(sgd, "learning_rate: 1e300", "momentum: 0.99999999")),
           "pipeline.yaml:7:34: key 'momentum' of optimizer 'sgd' is 0.99999999, which the float32 the "
           "component "
           "keeps rounds to 1, out of range: it must be [0, 1)" +
               while_sgd);
}

TEST_CASE("bad input: a component key naming a missing component, with a suggestion", "[keys][bad-input]")
{
    expect(with_change("missing", "inner: gibbs", "inner: gibs"),
           "pipeline.yaml:6:34: component 'rep': key 'inner' names 'gibs', which is not a component of this "
           "pipeline (did you mean 'gibbs'?); components: rbm, gibbs, rep");
    expect(with_change("not_a_name", "inner: gibbs", "inner: [gibbs]"),
           "pipeline.yaml:6:34: key 'inner' of sampler 'repeat' expects the name of a sampler, got a list" +
               while_rep);
    expect(
        with_change("absent", "inner: gibbs, ", ""),
        "pipeline.yaml:6:10: missing required key 'inner' for sampler 'repeat' (the sampler advanced `times` "
        "times per advance)\n"
        "  valid keys: inner (sampler, required), times (int >= 1, default 2), ladder (list of floats with "
        "items "
        "> 0, 1 to 16 items, default [1]), shape (list of ints with items >= 1, 1 to 3 items, default [1]), "
        "tags "
        "(list of strings, optional), reference (model with energy_delta, optional)" +
            while_rep);
}

TEST_CASE("bad input: a component key naming a component of the wrong kind", "[keys][bad-input]")
{
    expect(with_change("wrong_kind", "inner: gibbs", "inner: rbm"),
           "pipeline.yaml:6:34: component 'rep': key 'inner' needs a sampler, but 'rbm' is a model (plugin "
           "'rbm')");
}

TEST_CASE("bad input: a component key naming its own component", "[keys][bad-input]")
{
    expect(with_change("itself", "inner: gibbs", "inner: rep"),
           "pipeline.yaml:6:34: component 'rep': key 'inner' names the component itself");
}

TEST_CASE("bad input: components naming each other in a circle", "[keys][bad-input]")
{
    std::string pipeline = replace_all(base_pipeline, "inner: gibbs", "inner: rep2");
    pipeline = replace_all(pipeline, "stages:", "  rep2:  {plugin: repeat, inner: rep}\nstages:");
    expect(run_pipeline("circle", pipeline),
           "pipeline.yaml:7:34: components name each other in a circle: rep -> rep2 -> rep; none could be "
           "created first");
}

TEST_CASE("bad input: a component key whose model lacks the functions it needs", "[keys][bad-input]")
{
    const std::string pipeline =
        replace_all(base_pipeline, "tags: [hot, cold]}",
                    "tags: [hot, cold], reference: flat}\n  flat:  {plugin: energy_only}");
    expect(run_pipeline("reference_needs", pipeline, {}, true),
           "pipeline.yaml:6:114: component 'rep': key 'reference' needs a model with energy_delta, but model "
           "'flat' (plugin 'energy_only') has only: free_energy");
    // A model with it is accepted.
    const Outcome ok =
        with_change("reference_ok", "tags: [hot, cold]}", "tags: [hot, cold], reference: rbm}");
    INFO(ok.err);
    CHECK(ok.status == 0);
}

TEST_CASE("bad input: a wrapped sampler that needs a function the stage's model lacks", "[keys][bad-input]")
{
    // gibbs needs conditionals; repeat needs nothing itself but binds gibbs to its own model.
    const std::string pipeline = R"(pipeline: nested
seed: 1
components:
  data:  {plugin: idx, images: images.idx}
  flat:  {plugin: energy_only}
  gibbs: {plugin: gibbs}
  rep:   {plugin: repeat, inner: gibbs}
stages:
  - sample: {model: flat, sampler: rep, data: data, count: 4, steps: 10}
)";
    const Outcome o = run_pipeline("inner_needs", pipeline, {}, true);
    expect(o, "pipeline.yaml:9:36: stage 1 (sample): sampler 'gibbs', named by key 'inner' of sampler 'rep', "
              "needs the model's conditional, but model 'flat' (plugin 'energy_only' from "
              "{DIR}/plugins/libansatz_fixture_energy_only.so) has only: free_energy");
}

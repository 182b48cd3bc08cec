// Bad input never crashes: each case is one message that says what and where, and exit status 2.
// The expected messages are the whole of stderr, checked exactly ({DIR} is the test's folder,
// {PLUGINS} the in-tree plugin folder).
#include "support/cli.hpp"

#include <catch2/catch.hpp>
#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <sys/stat.h>

namespace fs = std::filesystem;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

const std::string valid_pipeline = R"(pipeline: bad-input
seed: 1
components:
  data:  {plugin: idx, images: images.idx}
  rbm:   {plugin: rbm, hidden: 4}
  gibbs: {plugin: gibbs, steps: 1}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 0.1}
stages:
  - train:  {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 1, batch_size: 4}
  - sample: {model: rbm, sampler: gibbs, count: 4, steps: 10}
)";

// IDX header for `count` unsigned-byte images of rows x cols, then the pixels (or fewer bytes).
std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols, size_t pixel_bytes)
{
    std::string s("\x00\x00\x08\x03", 4);
    for (uint32_t v : { count, rows, cols })
        for (int shift = 24; shift >= 0; shift -= 8)
            s += static_cast<char>((v >> shift) & 0xff);
    for (size_t i = 0; i < pixel_bytes; ++i)
        s += static_cast<char>(i * 37 % 256);
    return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to)
{
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

struct Outcome
{
    int status;
    std::string err;
    fs::path dir;
};

// Writes the pipeline (with `from` replaced by `to`) and a valid images.idx, then runs it.
Outcome run_pipeline(const std::string& name, const std::string& pipeline,
                     std::vector<std::string> extra = {}, const std::string& images = idx_images(8, 2, 3, 48))
{
    const fs::path dir = ansatz::test::fresh_folder("bad_inputs/" + name);
    write_text(dir / "pipeline.yaml", pipeline);
    write_text(dir / "images.idx", images);
    std::vector<std::string> args = { "run", "pipeline.yaml", "--runs", "runs" };
    args.insert(args.end(), extra.begin(), extra.end());
    const ansatz::test::CliResult r = run_ansatz(args, dir);
    return { r.status, r.err, dir };
}

Outcome with_change(const std::string& name, const std::string& from, const std::string& to)
{
    REQUIRE(valid_pipeline.find(from) != std::string::npos);
    return run_pipeline(name, replace_all(valid_pipeline, from, to));
}

void expect(const Outcome& o, const std::string& expected)
{
    std::string want = replace_all(expected, "{DIR}", o.dir.string());
    want = replace_all(want, "{PLUGINS}", ANSATZ_TEST_PLUGIN_DIR);
    CHECK(o.status == 2);
    CHECK(o.err == want + "\n");
}

const std::string rbm_keys =
    "  valid keys: hidden (int >= 1, default 64), init_std (float >= 0, default 0.01), visible (int [0, "
    "2147483647], default 0), visible_units (choice of {bernoulli gaussian}, default bernoulli), sigma "
    "(float > "
    "0, default 1), learn_sigma (bool, default false), init_data (dataset, optional), init_rows (int >= 0, "
    "default 0), centered (bool, default false)\n";

} // namespace

TEST_CASE("the valid base pipeline of the bad-input tests runs", "[cli][bad-input]")
{
    const Outcome o = run_pipeline("valid", valid_pipeline);
    INFO(o.err);
    CHECK(o.status == 0);
}

TEST_CASE("bad input: YAML syntax error", "[cli][bad-input]")
{
    expect(with_change("syntax", "  rbm:   {plugin: rbm, hidden: 4}", "  rbm:   {plugin: rbm, hidden: 4"),
           "pipeline.yaml:6:8: YAML syntax error: end of map flow not found.");
}

TEST_CASE("bad input: unknown plugin, with the list of known ones", "[cli][bad-input]")
{
    expect(with_change("unknown_plugin", "{plugin: rbm,", "{plugin: rmb,"),
           "pipeline.yaml:5:19: unknown plugin 'rmb' for component 'rbm' (did you mean 'rbm'?)\n"
           "  known plugins: adam (optimizer), ais (evaluator), contrastive_divergence (loss), elbo (loss), "
           "elbo_estimate (evaluator), energy_auroc (evaluator), exact_likelihood (evaluator), free_energy "
           "(evaluator), gibbs (sampler), idx (dataset), ising (model), ising_observables (evaluator), iwae "
           "(evaluator), langevin (sampler), metropolis_hastings (sampler), neural_energy (model), npy "
           "(dataset), parallel_tempering (sampler), pseudo_likelihood (evaluator), rbm (model), "
           "reconstruction_error (evaluator), sgd (optimizer), vae (model)");
}

TEST_CASE("bad input: unknown key, with a suggestion", "[cli][bad-input]")
{
    expect(with_change("unknown_key", "hidden: 4", "hiden: 4"),
           "pipeline.yaml:5:24: unknown key 'hiden' for model 'rbm' (did you mean 'hidden'?)\n" + rbm_keys +
               "  while validating component 'rbm' (plugin file {PLUGINS}/libansatz_rbm.so)");
}

TEST_CASE("bad input: wrong type", "[cli][bad-input]")
{
    expect(with_change("wrong_type", "hidden: 4", "hidden: many"),
           "pipeline.yaml:5:32: key 'hidden' of model 'rbm' expects an int, got 'many'\n"
           "  while validating component 'rbm' (plugin file {PLUGINS}/libansatz_rbm.so)");
}

TEST_CASE("bad input: a float where an int is expected", "[cli][bad-input]")
{
    expect(with_change("float_for_int", "epochs: 1", "epochs: 1.5"),
           "pipeline.yaml:10:88: key 'epochs' of stage 1 (train) expects an int, got '1.5'");
}

TEST_CASE("bad input: out of range", "[cli][bad-input]")
{
    expect(
        with_change("out_of_range", "learning_rate: 0.1", "learning_rate: -0.1"),
        "pipeline.yaml:8:39: key 'learning_rate' of optimizer 'sgd' is -0.1, out of range: it must be > 0\n"
        "  while validating component 'sgd' (plugin file {PLUGINS}/libansatz_sgd.so)");
}

TEST_CASE("bad input: bad choice", "[cli][bad-input]")
{
    expect(
        with_change("bad_choice", "count: 4,", "count: 4, init: dat,"),
        "pipeline.yaml:11:58: key 'init' of stage 2 (sample) is 'dat', which is not one of: random,data (did "
        "you mean 'data'?)");
}

TEST_CASE("bad input: an rbm sigma that is not positive", "[cli][bad-input]")
{
    expect(with_change("rbm_sigma", "{plugin: rbm, hidden: 4}",
                       "{plugin: rbm, hidden: 4, visible_units: gaussian, sigma: 0}"),
           "pipeline.yaml:5:67: key 'sigma' of model 'rbm' is 0, out of range: it must be > 0\n"
           "  while validating component 'rbm' (plugin file {PLUGINS}/libansatz_rbm.so)");
    expect(with_change("rbm_sigma_negative", "{plugin: rbm, hidden: 4}",
                       "{plugin: rbm, hidden: 4, visible_units: gaussian, sigma: -0.5}"),
           "pipeline.yaml:5:67: key 'sigma' of model 'rbm' is -0.5, out of range: it must be > 0\n"
           "  while validating component 'rbm' (plugin file {PLUGINS}/libansatz_rbm.so)");
}

TEST_CASE("bad input: unknown rbm visible units, with a suggestion", "[cli][bad-input]")
{
    expect(with_change("rbm_units", "{plugin: rbm, hidden: 4}",
                       "{plugin: rbm, hidden: 4, visible_units: gausian}"),
           "pipeline.yaml:5:50: key 'visible_units' of model 'rbm' is 'gausian', which is not one of: "
           "bernoulli,gaussian (did you mean 'gaussian'?)\n"
           "  while validating component 'rbm' (plugin file {PLUGINS}/libansatz_rbm.so)");
}

TEST_CASE("bad input: learn_sigma for bernoulli visible units is refused by the rbm", "[cli][bad-input]")
{
    expect(with_change("rbm_learn_sigma", "{plugin: rbm, hidden: 4}",
                       "{plugin: rbm, hidden: 4, learn_sigma: true}"),
           "component 'rbm' (model 'rbm' from " + std::string(ANSATZ_TEST_PLUGIN_DIR) +
               "/libansatz_rbm.so): learn_sigma: true needs visible_units: gaussian (bernoulli visible units "
               "have no sigma)");
}

TEST_CASE("bad input: an rbm init_data that names no dataset, and init_rows without init_data",
          "[cli][bad-input]")
{
    expect(with_change("rbm_init_data_kind", "{plugin: rbm, hidden: 4}",
                       "{plugin: rbm, hidden: 4, init_data: gibbs}"),
           "pipeline.yaml:5:46: component 'rbm': key 'init_data' needs a dataset, but 'gibbs' is a sampler "
           "(plugin 'gibbs')");
    expect(with_change("rbm_init_rows", "{plugin: rbm, hidden: 4}", "{plugin: rbm, hidden: 4, init_rows: 3}"),
           "component 'rbm' (model 'rbm' from " + std::string(ANSATZ_TEST_PLUGIN_DIR) +
               "/libansatz_rbm.so): init_rows is 3, but no init_data names a dataset to read them from");
}

TEST_CASE("bad input: a centered rbm without init_data, or with gaussian units", "[cli][bad-input]")
{
    const std::string where =
        "component 'rbm' (model 'rbm' from " + std::string(ANSATZ_TEST_PLUGIN_DIR) + "/libansatz_rbm.so): ";
    expect(with_change("rbm_centered_no_data", "{plugin: rbm, hidden: 4}",
                       "{plugin: rbm, hidden: 4, centered: true}"),
           where + "centered: true needs init_data: the visible offsets mu are the means of its samples");
    expect(with_change("rbm_centered_gaussian", "{plugin: rbm, hidden: 4}",
                       "{plugin: rbm, hidden: 4, centered: true, visible_units: gaussian}"),
           where + "centered: true needs visible_units: bernoulli (the centred parametrisation is built "
                   "here for binary units only)");
}

TEST_CASE("bad input: missing required key", "[cli][bad-input]")
{
    expect(with_change("missing_required", "{plugin: idx, images: images.idx}", "{plugin: idx}"),
           "pipeline.yaml:4:10: missing required key 'images' for dataset 'idx' (IDX file of the samples "
           "(unsigned "
           "bytes, plain or gzip), first dimension the count)\n"
           "  valid keys: images (path (must exist), required), labels (path (must exist), optional), "
           "binarize (float [0, 1], "
           "optional), binarize_sampling (bool, default false), limit (int >= 0, default 0), range (list of "
           "floats, 2 items, optional), pad (int [0, 4096], default 0), label_names (list of strings, at "
           "least 1 "
           "item, optional)\n"
           "  while validating component 'data' (plugin file {PLUGINS}/libansatz_idx.so)");
}

TEST_CASE("bad input: a stage references a missing component", "[cli][bad-input]")
{
    expect(with_change("missing_component", "optimizer: sgd,", "optimizer: adam,"),
           "pipeline.yaml:10:75: stage 1 (train): key 'optimizer' names 'adam', which is not a component of "
           "this "
           "pipeline; components: data, rbm, gibbs, cd, sgd");
}

TEST_CASE("bad input: a component of the wrong kind in a stage slot", "[cli][bad-input]")
{
    expect(with_change("wrong_kind", "sampler: gibbs, optimizer", "sampler: sgd, optimizer"),
           "pipeline.yaml:10:57: stage 1 (train): key 'sampler' needs a sampler, but 'sgd' is an optimizer "
           "(plugin 'sgd')");
}

TEST_CASE("bad input: a sampler that needs a function the model lacks", "[cli][bad-input]")
{
    const std::string pipeline =
        replace_all(valid_pipeline, "{plugin: rbm, hidden: 4}", "{plugin: energy_only}");
    // A folder with only the energy-only model (the fixture folder also holds broken plugins).
    const fs::path extra = ansatz::test::fresh_folder("bad_inputs/energy_only_plugin");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_energy_only.so",
                  extra / "libansatz_fixture_energy_only.so");
    const Outcome o = run_pipeline("missing_capability", pipeline, { "--plugin-path", extra.string() });
    expect(o, "pipeline.yaml:10:57: stage 1 (train): sampler 'gibbs' needs the model's conditional, but "
              "model 'rbm' (plugin 'energy_only' from " +
                  (extra / "libansatz_fixture_energy_only.so").string() + ") has only: free_energy");
}

TEST_CASE("bad input: a loss that needs a sampler gets none", "[cli][bad-input]")
{
    expect(with_change("no_sampler", "sampler: gibbs, optimizer", "optimizer"),
           "pipeline.yaml:10:13: stage 1 (train): loss 'cd' estimates its negative phase by sampling and "
           "needs a "
           "'sampler' key");
}

TEST_CASE("bad input: a plugin's own refusal names the component once, through the engine's prefix",
          "[cli][bad-input]")
{
    expect(
        with_change("named_once", "{plugin: idx, images: images.idx}",
                    "{plugin: idx, images: images.idx, binarize: 0.5, binarize_sampling: true}"),
        "component 'data' (dataset 'idx' from " + std::string(ANSATZ_TEST_PLUGIN_DIR) +
            "/libansatz_idx.so): keys binarize and binarize_sampling exclude each other; give one of them");
}

TEST_CASE("bad input: a missing data file", "[cli][bad-input]")
{
    expect(with_change("missing_data", "images: images.idx", "images: nowhere.idx"),
           "pipeline.yaml:4:32: key 'images' of dataset 'idx' names nowhere.idx, which does not exist "
           "(resolved to "
           "{DIR}/nowhere.idx)\n"
           "  while validating component 'data' (plugin file {PLUGINS}/libansatz_idx.so)");
}

TEST_CASE("bad input: a truncated IDX header", "[cli][bad-input]")
{
    const Outcome o =
        run_pipeline("truncated_idx", valid_pipeline, {}, idx_images(8, 2, 3, 48).substr(0, 10));
    expect(o, "component 'data' (dataset 'idx' from {PLUGINS}/libansatz_idx.so): {DIR}/images.idx: truncated "
              "header: a rank-3 IDX header has 16 bytes, but the file has only 10");
}

TEST_CASE("bad input: an IDX header that claims more data than the file holds", "[cli][bad-input]")
{
    const Outcome o = run_pipeline("short_idx", valid_pipeline, {}, idx_images(8, 2, 3, 40));
    expect(
        o,
        "component 'data' (dataset 'idx' from {PLUGINS}/libansatz_idx.so): {DIR}/images.idx: header claims 8 "
        "x 2 x 3 = 48 bytes of data from byte offset 16, but the data ends at byte offset 56");
    CHECK_FALSE(fs::exists(o.dir / "runs")); // bad data is found before a run folder is made
}

TEST_CASE("bad input: an empty IDX file", "[cli][bad-input]")
{
    expect(run_pipeline("empty_idx", valid_pipeline, {}, ""),
           "component 'data' (dataset 'idx' from {PLUGINS}/libansatz_idx.so): {DIR}/images.idx: the file is "
           "empty (0 "
           "bytes), so it is not an IDX file");
}

TEST_CASE("bad input: an empty pipeline file", "[cli][bad-input]")
{
    expect(run_pipeline("empty_pipeline", "\n  \n"), "pipeline.yaml: the pipeline file is empty; it needs at "
                                                     "least 'pipeline:', 'components:' and 'stages:'.");
}

TEST_CASE("bad input: a pipeline file that is not UTF-8", "[cli][bad-input]")
{
    expect(run_pipeline("latin1", replace_all(valid_pipeline, "seed: 1", "seed: 1 # caf\xe9")),
           "pipeline.yaml:2:14: byte offset 33 (0xe9) is not valid UTF-8; pipelines are UTF-8 text.");
}

TEST_CASE("bad input: a pipeline file that does not exist", "[cli][bad-input]")
{
    const fs::path dir = ansatz::test::fresh_folder("bad_inputs/no_file");
    const auto r = run_ansatz({ "run", "absent.yaml" }, dir);
    CHECK(r.status == 2);
    CHECK(r.err == "absent.yaml: no such pipeline file.\n");
}

TEST_CASE("bad input: unknown top-level key", "[cli][bad-input]")
{
    expect(with_change("top_level", "seed: 1", "sead: 1"),
           "pipeline.yaml:2:1: unknown top-level key 'sead' (did you mean 'seed'?)\n"
           "  valid keys: pipeline, seed, threads, plugin_paths, components, stages");
}

TEST_CASE("bad input: unknown stage type", "[cli][bad-input]")
{
    expect(with_change("stage_type", "- sample:", "- sampel:"),
           "pipeline.yaml:11:5: unknown stage type 'sampel' (did you mean 'sample'?); stage types: train, "
           "sample, generate, evaluate, load, latent");
}

TEST_CASE("bad input: a component without a plugin key", "[cli][bad-input]")
{
    expect(with_change("no_plugin", "{plugin: gibbs, steps: 1}", "{steps: 1}"),
           "pipeline.yaml:6:10: component 'gibbs' has no 'plugin' key; known plugins: adam (optimizer), ais "
           "(evaluator), contrastive_divergence (loss), elbo (loss), elbo_estimate (evaluator), "
           "energy_auroc (evaluator), exact_likelihood (evaluator), free_energy (evaluator), gibbs "
           "(sampler), idx (dataset), ising (model), ising_observables (evaluator), iwae (evaluator), "
           "langevin (sampler), metropolis_hastings (sampler), neural_energy (model), npy (dataset), "
           "parallel_tempering (sampler), pseudo_likelihood (evaluator), rbm (model), reconstruction_error "
           "(evaluator), sgd (optimizer), vae (model)");
}

TEST_CASE("bad input: --set with a key path the pipeline does not have", "[cli][bad-input]")
{
    const Outcome o = run_pipeline("set_path", valid_pipeline, { "--set", "components.rbn.hidden=8" });
    CHECK(o.status == 2);
    CHECK(o.err == "--set components.rbn.hidden=8: the pipeline has no 'components.rbn'.\n");
}

TEST_CASE("bad input: --set with a value of the wrong type", "[cli][bad-input]")
{
    const Outcome o = run_pipeline("set_type", valid_pipeline, { "--set", "components.rbm.hidden=lots" });
    CHECK(o.status == 2);
    CHECK(o.err ==
          "--set components.rbm.hidden=lots: key 'hidden' of model 'rbm' expects an int, got 'lots'\n"
          "  while validating component 'rbm' (plugin file " ANSATZ_TEST_PLUGIN_DIR "/libansatz_rbm.so)\n");
}

TEST_CASE("bad input: a negative seed", "[cli][bad-input]")
{
    expect(with_change("negative_seed", "seed: 1", "seed: -1"),
           "pipeline.yaml:2:7: key 'seed' of the pipeline is -1, out of range: it must be >= 0");
}

TEST_CASE("bad input: stages is not a list", "[cli][bad-input]")
{
    const std::string pipeline =
        valid_pipeline.substr(0, valid_pipeline.find("stages:")) + "stages: {train: {}}\n";
    expect(run_pipeline("stages_map", pipeline),
           "pipeline.yaml:9:9: 'stages' must be a non-empty list, e.g. - train: {model: rbm, ...}");
}

TEST_CASE("bad input: an unknown command-line option", "[cli][bad-input]")
{
    const auto r = run_ansatz({ "run", "x.yaml", "--sett", "a=b" }, ANSATZ_TEST_WORK_DIR);
    CHECK(r.status == 2);
    CHECK(r.err == "unknown option '--sett'; see ansatz --help.\n");
}

TEST_CASE("bad input: a model set up for one data shape, then given another", "[cli][bad-input]")
{
    std::string pipeline =
        replace_all(valid_pipeline, "  rbm:", "  other: {plugin: idx, images: other.idx}\n  rbm:");
    pipeline = replace_all(pipeline, "count: 4,", "data: other, count: 4,");
    const fs::path dir = ansatz::test::fresh_folder("bad_inputs/shape");
    write_text(dir / "pipeline.yaml", pipeline);
    write_text(dir / "images.idx", idx_images(8, 2, 3, 48));
    write_text(dir / "other.idx", idx_images(8, 3, 3, 72));
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    CHECK(r.status == 2);
    // The train stage ran (its line is on stderr) before the sample stage found the mismatch.
    const std::string last = r.err.substr(r.err.rfind("\n", r.err.size() - 2) + 1);
    CHECK(last ==
          "pipeline.yaml:12:13: stage 2 (sample): dataset 'other' has samples of 9 values, but model 'rbm' "
          "was set up for dataset 'data' with 6.\n");
}

TEST_CASE("bad input: a train stage whose model has no parameters is refused before its first batch",
          "[cli][bad-input]")
{
    // `frozen` (tests/fixtures/plugins/energy_only.cpp) has every function a loss and a sampler call, but
    // no parameter: there is nothing to train.
    const std::string pipeline = replace_all(valid_pipeline, "{plugin: rbm, hidden: 4}", "{plugin: frozen}");
    const fs::path extra = ansatz::test::fresh_folder("bad_inputs/frozen_plugin");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_energy_only.so",
                  extra / "libansatz_fixture_energy_only.so");
    const Outcome o = run_pipeline("no_parameters", pipeline, { "--plugin-path", extra.string() });
    CHECK(o.status == 2);
    const std::string last = o.err.substr(o.err.rfind("\n", o.err.size() - 2) + 1);
    CHECK(last == "pipeline.yaml:10:21: stage 1 (train): model 'rbm' (plugin 'frozen') has no trainable "
                  "parameters, so there is nothing to train; use it in sample or evaluate stages\n");
}

TEST_CASE("bad input: two components with one name", "[cli][bad-input]")
{
    expect(with_change("duplicate_component", "  cd:    {plugin: contrastive_divergence}",
                       "  rbm:   {plugin: rbm, hidden: 9}"),
           "pipeline.yaml:7:3: duplicate key 'rbm' (first at pipeline.yaml:5:3).");
}

TEST_CASE("bad input: a key given twice in one mapping", "[cli][bad-input]")
{
    expect(with_change("duplicate_key", "hidden: 4}", "hidden: 8, hidden: 9}"),
           "pipeline.yaml:5:35: duplicate key 'hidden' (first at pipeline.yaml:5:24).");
}

TEST_CASE("bad input: a pipeline file with two YAML documents", "[cli][bad-input]")
{
    expect(run_pipeline("two_documents", valid_pipeline + "---\npipeline: other\n"),
           "pipeline.yaml:13:1: a pipeline file holds one YAML document; a second one starts here.");
}

TEST_CASE("bad input: YAML nested deeper than the parser allows", "[cli][bad-input]")
{
    const std::string deep =
        "pipeline: deep\nstages: " + std::string(3000, '[') + std::string(3000, ']') + "\n";
    expect(run_pipeline("deep", deep), "pipeline.yaml:2:6009: YAML syntax error: bad file.");
}

TEST_CASE("bad input: a component name with a '.', which --set could not address", "[cli][bad-input]")
{
    expect(with_change("dotted_name", "  cd:    {", "  c.d:   {"),
           "pipeline.yaml:7:3: component name 'c.d' must be letters, digits, '_' or '-'");
}

TEST_CASE("bad input: --set through a YAML alias is refused, and through the anchor it sets both",
          "[cli][bad-input]")
{
    const std::string aliased = replace_all(valid_pipeline, "  rbm:   {plugin: rbm, hidden: 4}",
                                            "  rbm:   &R {plugin: rbm, hidden: 4}\n  rbm2:  *R");
    const Outcome refused = run_pipeline("set_alias", aliased, { "--set", "components.rbm2.hidden=5" });
    CHECK(refused.status == 2);
    CHECK(refused.err == "--set components.rbm2.hidden=5: 'components.rbm2' is shared with 'components.rbm' "
                         "through a YAML alias; override the anchor's key instead: components.rbm.hidden.\n");
    CHECK_FALSE(fs::exists(refused.dir / "runs"));

    // The anchor's own place: as if the file were edited there, so the alias follows.
    const Outcome anchor = run_pipeline("set_anchor", aliased, { "--set", "components.rbm.hidden=5" });
    INFO(anchor.err);
    REQUIRE(anchor.status == 0);
    const fs::path run = *fs::directory_iterator(anchor.dir / "runs" / "bad-input");
    const std::string resolved = ansatz::test::read_text(run / "pipeline.yaml");
    CHECK(resolved.find("  rbm:\n    plugin: rbm\n    hidden: 5\n") != std::string::npos);
    CHECK(resolved.find("  rbm2:\n    plugin: rbm\n    hidden: 5\n") != std::string::npos);
}

TEST_CASE("bad input: a key set twice by --set is blamed on the last --set", "[cli][bad-input]")
{
    expect(run_pipeline("set_twice", valid_pipeline,
                        { "--set", "components.rbm.hidden=many", "--set", "components.rbm.hidden=lots" }),
           "--set components.rbm.hidden=lots: key 'hidden' of model 'rbm' expects an int, got 'lots'\n"
           "  while validating component 'rbm' (plugin file {PLUGINS}/libansatz_rbm.so)");
}

TEST_CASE("bad input: --set with an empty part or a list index that is not a number", "[cli][bad-input]")
{
    expect(run_pipeline("set_trailing_dot", valid_pipeline, { "--set", "components.rbm.=5" }),
           "--set components.rbm.=5: the key path 'components.rbm.' has an empty part.");
    expect(run_pipeline("set_double_dot", valid_pipeline, { "--set", "components..rbm=5" }),
           "--set components..rbm=5: the key path 'components..rbm' has an empty part.");
    expect(run_pipeline("set_index", valid_pipeline, { "--set", "stages.0abc.train.epochs=2" }),
           "--set stages.0abc.train.epochs=2: 'stages' is a list; index it with a number, not '0abc'.");
}

TEST_CASE("bad input: --set with a value that has a key twice", "[cli][bad-input]")
{
    expect(
        run_pipeline("set_duplicate", valid_pipeline,
                     { "--set", "components.gibbs={plugin: gibbs, steps: 1, steps: 2}" }),
        "--set components.gibbs={plugin: gibbs, steps: 1, steps: 2}: the value has a duplicate key 'steps'.");
}

TEST_CASE("bad input: more chains than the sample stage allows", "[cli][bad-input]")
{
    expect(with_change("count_max", "count: 4,", "count: 99999999999,"),
           "pipeline.yaml:11:49: key 'count' of stage 2 (sample) is 99999999999, out of range: it must be "
           "[1, 1000000]");
}

TEST_CASE("bad input: a thread budget beyond the maximum", "[cli][bad-input]")
{
    expect(with_change("threads_max", "seed: 1", "seed: 1\nthreads: 2147483648"),
           "pipeline.yaml:3:10: key 'threads' of the pipeline is 2147483648, out of range: it must be [1, "
           "1024]");
}

TEST_CASE("bad input: a seed beyond int64", "[cli][bad-input]")
{
    expect(with_change("seed_huge", "seed: 1", "seed: 99999999999999999999"),
           "pipeline.yaml:2:7: key 'seed' of the pipeline expects an int, got '99999999999999999999'");
}

TEST_CASE("bad input: --runs under a regular file is refused before anything is made", "[cli][bad-input]")
{
    const fs::path dir = ansatz::test::fresh_folder("bad_inputs/runs_under_file");
    write_text(dir / "pipeline.yaml", valid_pipeline);
    write_text(dir / "images.idx", idx_images(8, 2, 3, 48));
    write_text(dir / "afile", "not a folder\n");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "afile/x" }, dir);
    expect({ r.status, r.err, dir },
           "cannot create the run folder afile/x/bad-input: afile is not a folder.");
    CHECK(ansatz::test::read_text(dir / "afile") == "not a folder\n");
    CHECK_FALSE(fs::exists(dir / "runs"));
}

TEST_CASE("bad input: a pipeline file that is a FIFO is refused without waiting for a writer",
          "[cli][bad-input]")
{
    const fs::path dir = ansatz::test::fresh_folder("bad_inputs/pipeline_fifo");
    REQUIRE(::mkfifo((dir / "pipeline.yaml").c_str(), 0600) == 0);
    for (const std::string command : { "validate", "run" })
    {
        const auto r = run_ansatz({ command, "pipeline.yaml" }, dir, 60);
        CHECK(r.status == 2);
        CHECK(r.err == "pipeline.yaml: is a named pipe (FIFO), not a pipeline file.\n");
    }
}

TEST_CASE("bad input: /dev/zero as the pipeline file is refused, not read", "[cli][bad-input]")
{
    const auto r = run_ansatz({ "validate", "/dev/zero" }, ANSATZ_TEST_WORK_DIR, 60);
    CHECK(r.status == 2);
    CHECK(r.err == "/dev/zero: is a character device, not a pipeline file.\n");
}

TEST_CASE("bad input: a pipeline file larger than 16 MiB is refused, naming its size", "[cli][bad-input]")
{
    // Valid YAML all through (comments), so only its size is wrong.
    std::string big = valid_pipeline;
    while (big.size() <= (16u << 20))
        big += "# " + std::string(1000, 'x') + "\n";
    const Outcome o = run_pipeline("pipeline_big", big);
    expect(o, "pipeline.yaml: is " + std::to_string(big.size()) +
                  " bytes, more than the 16777216 bytes (16 MiB) a pipeline file may have.");
}

TEST_CASE("bad input: an IDX images or labels file that is a FIFO or a device is refused without blocking",
          "[cli][bad-input]")
{
    const std::string prefix = "component 'data' (dataset 'idx' from {PLUGINS}/libansatz_idx.so): ";
    const std::string not_regular = ", not a regular file; IDX data is read from regular files only";
    {
        const fs::path dir = ansatz::test::fresh_folder("bad_inputs/idx_fifo");
        write_text(dir / "pipeline.yaml", valid_pipeline);
        REQUIRE(::mkfifo((dir / "images.idx").c_str(), 0600) == 0);
        const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, 60);
        expect({ r.status, r.err, dir }, prefix + "{DIR}/images.idx: is a named pipe (FIFO)" + not_regular);
        CHECK_FALSE(fs::exists(dir / "runs"));
    }
    {
        const fs::path dir = ansatz::test::fresh_folder("bad_inputs/idx_labels_fifo");
        write_text(dir / "pipeline.yaml", replace_all(valid_pipeline, "images: images.idx}",
                                                      "images: images.idx, labels: labels.idx}"));
        write_text(dir / "images.idx", idx_images(8, 2, 3, 48));
        REQUIRE(::mkfifo((dir / "labels.idx").c_str(), 0600) == 0);
        const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, 60);
        expect({ r.status, r.err, dir }, prefix + "{DIR}/labels.idx: is a named pipe (FIFO)" + not_regular);
    }
    {
        const Outcome o =
            run_pipeline("idx_dev_zero", replace_all(valid_pipeline, "images.idx", "/dev/zero"));
        expect(o, prefix + "/dev/zero: is a character device" + not_regular);
    }
}

TEST_CASE("bad input: an empty --plugin-path or --runs is refused, naming the option", "[cli][bad-input]")
{
    for (const std::vector<std::string> args :
         { std::vector<std::string>{ "plugins", "--plugin-path", "" }, { "plugins", "--plugin-path=" } })
    {
        const auto r = run_ansatz(args, ANSATZ_TEST_WORK_DIR);
        CHECK(r.status == 2);
        CHECK(r.err == "option --plugin-path needs a folder, not an empty string.\n");
    }
    const Outcome o = run_pipeline("runs_empty", valid_pipeline, { "--runs", "" });
    expect(o, "option --runs needs a folder, not an empty string.");
    CHECK_FALSE(fs::exists(o.dir / "bad-input"));
}

TEST_CASE("bad input: an unknown key given by --set is blamed on that --set", "[cli][bad-input]")
{
    expect(run_pipeline("set_unknown_key", valid_pipeline, { "--set", "components.rbm.hiden=3" }),
           "--set components.rbm.hiden=3: unknown key 'hiden' for model 'rbm' (did you mean 'hidden'?)\n" +
               rbm_keys + "  while validating component 'rbm' (plugin file {PLUGINS}/libansatz_rbm.so)");
    expect(run_pipeline("set_unknown_top_level", valid_pipeline, { "--set", "sead=3" }),
           "--set sead=3: unknown top-level key 'sead' (did you mean 'seed'?)\n"
           "  valid keys: pipeline, seed, threads, plugin_paths, components, stages");
}

TEST_CASE("bad input: contrastive_divergence's reconstruction_every below 0 or not an int",
          "[cli][bad-input]")
{
    const std::string where =
        "pipeline.yaml:7:65: key 'reconstruction_every' of loss 'contrastive_divergence' ";
    const std::string component =
        "\n  while validating component 'cd' (plugin file {PLUGINS}/libansatz_contrastive_divergence.so)";
    expect(with_change("reconstruction_every_negative", "{plugin: contrastive_divergence}",
                       "{plugin: contrastive_divergence, reconstruction_every: -1}"),
           where + "is -1, out of range: it must be >= 0" + component);
    expect(with_change("reconstruction_every_word", "{plugin: contrastive_divergence}",
                       "{plugin: contrastive_divergence, reconstruction_every: often}"),
           where + "expects an int, got 'often'" + component);
    expect(with_change("reconstruction_every_float", "{plugin: contrastive_divergence}",
                       "{plugin: contrastive_divergence, reconstruction_every: 2.5}"),
           where + "expects an int, got '2.5'" + component);
}

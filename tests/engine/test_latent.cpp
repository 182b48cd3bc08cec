// A latent-variable model through the engine, on the linear-Gaussian VAE fixture
// (tests/fixtures/plugins/linear_vae.cpp): trained by the elbo loss, measured by elbo_estimate and
// iwae, sampled without a sampler (decode_mean of h ~ N(0, I)), and drawn by the latent stage
// (reconstructions, manifold, the scatter of posterior means with a legend of the class names); and
// the bad inputs of the new keys, each one sentence and exit status 2.
#include "support/cli.hpp"
#include "support/xml_check.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

const std::string pipeline = R"(pipeline: vae
seed: 3
threads: 1
plugin_paths: [plugins]
components:
  data:     {plugin: idx, images: images.idx, labels: labels.idx, label_names: [left, middle, right]}
  vae:      {plugin: linear_vae, latent: 2}
  loss:     {plugin: elbo, samples: 2, warmup_epochs: 1}
  adam:     {plugin: adam, learning_rate: 0.01}
  estimate: {plugin: elbo_estimate, samples: 2}
  iw:       {plugin: iwae, samples: 50}
stages:
  - train:    {model: vae, data: data, loss: loss, optimizer: adam, epochs: 3, batch_size: 8,
               evaluators: [estimate], evaluate_data: data}
  - evaluate: {model: vae, data: data, evaluators: [estimate, iw]}
  - sample:   {model: vae, count: 16}
  - latent:   {model: vae, data: data, reconstructions: 10, manifold: 5}
)";

// An IDX file of one unsigned-byte label per sample.
std::string idx_labels(const std::vector<uint8_t>& labels)
{
    std::string s("\x00\x00\x08\x01", 4);
    const uint32_t n = static_cast<uint32_t>(labels.size());
    for (int shift = 24; shift >= 0; shift -= 8)
        s += static_cast<char>((n >> shift) & 0xff);
    s.append(labels.begin(), labels.end());
    return s;
}

// The 48 square images' labels: 0, 1, 2, 0, 1, 2, ...
std::vector<uint8_t> three_classes()
{
    std::vector<uint8_t> out(48);
    for (size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<uint8_t>(i % 3);
    return out;
}

fs::path folder(const std::string& name, const std::string& text = pipeline,
                const std::string& labels_file = "labels.idx")
{
    const fs::path dir = ansatz::test::fresh_folder("latent/" + name);
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_linear_vae.so",
                  dir / "plugins" / "libansatz_fixture_linear_vae.so");
    write_text(dir / "pipeline.yaml", text);
    write_text(dir / "images.idx", ansatz::test::square_images(230, 20));
    fs::create_directories((dir / labels_file).parent_path());
    write_text(dir / labels_file, idx_labels(three_classes()));
    return dir;
}

fs::path only_run(const fs::path& dir)
{
    std::vector<fs::path> runs;
    for (const auto& e : fs::recursive_directory_iterator(dir / "runs"))
        if (e.is_regular_file() && e.path().filename() == "pipeline.yaml")
            runs.push_back(e.path().parent_path());
    REQUIRE(runs.size() == 1);
    return runs.front();
}

// The shape in a .npy header: "(16,6,6)".
std::string npy_shape(const fs::path& file)
{
    const std::string text = read_text(file);
    const size_t at = text.find("'shape': ");
    REQUIRE(at != std::string::npos);
    return text.substr(at + 9, text.find(')', at) - at - 8);
}

std::pair<int, int> png_size(const fs::path& file)
{
    const std::string s = read_text(file);
    REQUIRE(s.size() > 24);
    REQUIRE(s.substr(12, 4) == "IHDR");
    const auto u32 = [&](size_t at) {
        return (int(uint8_t(s[at])) << 24) | (int(uint8_t(s[at + 1])) << 16) |
               (int(uint8_t(s[at + 2])) << 8) | int(uint8_t(s[at + 3]));
    };
    return { u32(16), u32(20) };
}

std::vector<std::string> legend_entries(const std::string& svg)
{
    std::vector<std::string> out;
    const std::regex entry("<text class=\"legend-entry\"[^>]*>([^<]*)</text>");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), entry); it != std::sregex_iterator(); ++it)
        out.push_back((*it)[1]);
    return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to)
{
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

} // namespace

TEST_CASE(
    "latent model: trained on the ELBO, evaluated, sampled from the prior and drawn by the latent stage",
    "[latent][cli]")
{
    const fs::path dir = folder("full");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, 300);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path run = only_run(dir);

    // metrics.csv: the loss's terms, the evaluators' metrics (prefixed where a name repeats), the latent
    // stage's row.
    const std::string metrics = read_text(run / "metrics.csv");
    const std::string header = metrics.substr(0, metrics.find('\n'));
    for (const char* column :
         { ",elbo,", ",reconstruction,", ",kl,", ",beta,", ",active_units,", ",estimate.elbo,",
           ",log_likelihood,", ",log_likelihood_stderr,", ",latent_units," })
        CHECK_THAT(header, Catch::Contains(column));

    // sample: decode_mean of 16 draws h ~ N(0, I), no sampler.
    CHECK(npy_shape(run / "stage3_samples.npy") == "(16,6,6)");
    CHECK(npy_shape(run / "stage3_latent.npy") == "(16,2)");
    // 16 images of 6 x 6 in a 4 x 4 grid with 1-pixel borders (29 pixels), scaled 17 times.
    CHECK(png_size(run / "stage3_samples.png") == std::pair<int, int>{ 493, 493 });

    // latent: 10 reconstructions, 8 per row: two pairs of rows, 4 rows of 6 x 6 images (57 x 29), x 8.
    CHECK(png_size(run / "stage4_reconstructions.png") == std::pair<int, int>{ 456, 232 });
    // manifold: 5 x 5 images (36 x 36 pixels), x 14.
    CHECK(png_size(run / "stage4_manifold.png") == std::pair<int, int>{ 504, 504 });
    // the scatter: one legend entry per class present, with the label_names and counts.
    const std::string svg = read_text(run / "stage4_latent_scatter.svg");
    CHECK(ansatz::test::xml_problem(svg) == "");
    CHECK(legend_entries(svg) == std::vector<std::string>{ "left (16)", "middle (16)", "right (16)" });
    CHECK(svg.find("<circle") != std::string::npos);

    // report.html shows all four pictures, with their captions.
    const std::string report = read_text(run / "report.html");
    for (const char* file : { "stage3_samples.png", "stage4_reconstructions.png", "stage4_manifold.png",
                              "stage4_latent_scatter.svg" })
        CHECK_THAT(report, Catch::Contains(std::string("<img src=\"") + file + "\""));
    CHECK_THAT(report, Catch::Contains("draws h ~ N(0, I) from the prior of latent model vae"));
    CHECK_THAT(report, Catch::Contains("rows of originals, each above the row of their reconstructions"));
    CHECK_THAT(report, Catch::Contains("decode_mean over a grid of the prior&#39;s quantiles"));
    CHECK_THAT(report, Catch::Contains("coloured by label"));
}

TEST_CASE(
    "latent stage: Fashion-MNIST's class names when the labels file's path says fashion-mnist and without "
    "labels no scatter",
    "[latent][cli]")
{
    const std::string text = replace_all(replace_all(pipeline, ", label_names: [left, middle, right]", ""),
                                         "labels.idx", "fashion-mnist/t10k-labels-idx1-ubyte");
    const fs::path dir = folder("fashion", text, "fashion-mnist/t10k-labels-idx1-ubyte");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, 300);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const std::string svg = read_text(only_run(dir) / "stage4_latent_scatter.svg");
    CHECK(legend_entries(svg) ==
          std::vector<std::string>{ "T-shirt/top (16)", "Trouser (16)", "Pullover (16)" });

    // A dataset without labels: the latent stage draws no scatter (scatter absent: automatic).
    const std::string unlabelled =
        replace_all(pipeline, ", labels: labels.idx, label_names: [left, middle, right]", "");
    const fs::path plain = folder("unlabelled", unlabelled);
    const auto u = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, plain, 300);
    INFO(u.err);
    REQUIRE(u.status == 0);
    CHECK_FALSE(fs::exists(only_run(plain) / "stage4_latent_scatter.svg"));
    CHECK(fs::exists(only_run(plain) / "stage4_manifold.png"));
}

namespace
{

// Runs `text` in a fresh folder and expects exit status 2 with exactly this stderr ({DIR}: the folder,
// {PLUGINS}: the in-tree plugins, {FIXTURE}: the fixture plugin's copy).
void expect_refusal(const std::string& name, const std::string& text, const std::string& expected)
{
    const fs::path dir = folder("bad/" + name, text);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, 120);
    std::string want = replace_all(expected, "{DIR}", dir.string());
    want = replace_all(want, "{PLUGINS}", ANSATZ_TEST_PLUGIN_DIR);
    want = replace_all(want, "{FIXTURE}", (dir / "plugins" / "libansatz_fixture_linear_vae.so").string());
    CHECK(r.status == 2);
    CHECK(r.err == want + "\n");
    CHECK_FALSE(fs::exists(dir / "runs"));
}

std::string with(const std::string& from, const std::string& to)
{
    REQUIRE(pipeline.find(from) != std::string::npos);
    return replace_all(pipeline, from, to);
}

} // namespace

TEST_CASE("bad input: the elbo loss's keys", "[latent][cli][bad-input]")
{
    expect_refusal(
        "samples_0", with("samples: 2, warmup", "samples: 0, warmup"),
        "pipeline.yaml:8:37: key 'samples' of loss 'elbo' is 0, out of range: it must be [1, 100000]\n"
        "  while validating component 'loss' (plugin file {PLUGINS}/libansatz_elbo.so)");
    expect_refusal(
        "warmup_negative", with("warmup_epochs: 1", "warmup_epochs: -1"),
        "pipeline.yaml:8:55: key 'warmup_epochs' of loss 'elbo' is -1, out of range: it must be >= 0\n"
        "  while validating component 'loss' (plugin file {PLUGINS}/libansatz_elbo.so)");
    expect_refusal("beta_negative", with("warmup_epochs: 1", "beta: -0.5"),
                   "pipeline.yaml:8:46: key 'beta' of loss 'elbo' is -0.5, out of range: it must be >= 0\n"
                   "  while validating component 'loss' (plugin file {PLUGINS}/libansatz_elbo.so)");
    expect_refusal(
        "bound", with("warmup_epochs: 1", "bound: iwea"),
        "pipeline.yaml:8:47: key 'bound' of loss 'elbo' is 'iwea', which is not one of: elbo,iwae (did "
        "you mean 'iwae'?)\n"
        "  while validating component 'loss' (plugin file {PLUGINS}/libansatz_elbo.so)");
    expect_refusal("beta_start_alone", with("warmup_epochs: 1", "beta_start: 0.1"),
                   "component 'loss' (loss 'elbo' from {PLUGINS}/libansatz_elbo.so): key beta_start needs "
                   "warmup_epochs > 0: without a warm-up beta is 1 from the first batch");
    expect_refusal(
        "iwae_beta", with("warmup_epochs: 1", "bound: iwae, beta: 0.5"),
        "component 'loss' (loss 'elbo' from {PLUGINS}/libansatz_elbo.so): bound: iwae has no KL term to "
        "weigh; keys beta and warmup_epochs belong to bound: elbo (leave beta at 1 and warmup_epochs at 0)");
    expect_refusal(
        "active_threshold", with("warmup_epochs: 1", "active_threshold: 0"),
        "pipeline.yaml:8:58: key 'active_threshold' of loss 'elbo' is 0, out of range: it must be > 0\n"
        "  while validating component 'loss' (plugin file {PLUGINS}/libansatz_elbo.so)");
}

TEST_CASE("bad input: the evaluators' keys", "[latent][cli][bad-input]")
{
    expect_refusal(
        "iwae_samples_0",
        with("iw:       {plugin: iwae, samples: 50}", "iw:       {plugin: iwae, samples: 0}"),
        "pipeline.yaml:11:37: key 'samples' of evaluator 'iwae' is 0, out of range: it must be [1, "
        "1000000]\n"
        "  while validating component 'iw' (plugin file {PLUGINS}/libansatz_iwae.so)");
    expect_refusal("iwae_batch_0",
                   with("{plugin: iwae, samples: 50}", "{plugin: iwae, samples: 50, batch: 0}"),
                   "pipeline.yaml:11:48: key 'batch' of evaluator 'iwae' is 0, out of range: it must be [1, "
                   "16777216]\n"
                   "  while validating component 'iw' (plugin file {PLUGINS}/libansatz_iwae.so)");
    expect_refusal(
        "estimate_samples_0",
        with("{plugin: elbo_estimate, samples: 2}", "{plugin: elbo_estimate, samples: 0}"),
        "pipeline.yaml:10:46: key 'samples' of evaluator 'elbo_estimate' is 0, out of range: it must be "
        "[1, 100000]\n"
        "  while validating component 'estimate' (plugin file {PLUGINS}/libansatz_elbo_estimate.so)");
}

TEST_CASE("bad input: a latent model missing, for the loss, an evaluator, the latent and the sample stage",
          "[latent][cli][bad-input]")
{
    const std::string rbm =
        with("vae:      {plugin: linear_vae, latent: 2}", "vae:      {plugin: rbm, hidden: 3}");
    expect_refusal(
        "loss_rbm", replace_all(rbm, ",\n               evaluators: [estimate], evaluate_data: data}", "}"),
        "pipeline.yaml:13:46: stage 1 (train): loss 'loss' needs the model's latent, but model 'vae' "
        "(plugin 'rbm' from {PLUGINS}/libansatz_rbm.so) has only: free_energy, free_energy_grad, "
        "energy_delta, conditional, tempered_free_energy + base_log_partition + tempered_conditional, "
        "block_free_energy, free_energy_grad_weighted, local_begin + local_commit + local_end, "
        "free_energy_grad_state, local_step");
    const std::string no_train =
        replace_all(rbm,
                    "  - train:    {model: vae, data: data, loss: loss, optimizer: adam, "
                    "epochs: 3, batch_size: 8,\n               evaluators: [estimate], "
                    "evaluate_data: data}\n",
                    "");
    REQUIRE(no_train != rbm);
    expect_refusal(
        "evaluator_rbm", no_train,
        "pipeline.yaml:13:53: stage 1 (evaluate): evaluator 'estimate' needs the model's latent, but "
        "model 'vae' (plugin 'rbm' from {PLUGINS}/libansatz_rbm.so) has only: free_energy, "
        "free_energy_grad, energy_delta, conditional, tempered_free_energy + base_log_partition + "
        "tempered_conditional, block_free_energy, free_energy_grad_weighted, local_begin + local_commit + "
        "local_end, free_energy_grad_state, local_step");
    const std::string only_late =
        replace_all(no_train, "  - evaluate: {model: vae, data: data, evaluators: [estimate, iw]}\n", "");
    expect_refusal(
        "sample_rbm", only_late,
        "pipeline.yaml:13:23: stage 1 (sample): key 'sampler' is missing: model 'vae' (plugin 'rbm') is "
        "sampled by a Markov chain; name a sampler (only a latent-variable model is sampled without one, "
        "by decoding h ~ N(0, I))");
    const std::string latent_only = replace_all(only_late, "  - sample:   {model: vae, count: 16}\n", "");
    expect_refusal(
        "latent_rbm", latent_only,
        "pipeline.yaml:13:23: stage 1 (latent): key 'model' needs a model with latent, but model 'vae' "
        "(plugin 'rbm') has only: free_energy, free_energy_grad, energy_delta, conditional, "
        "tempered_free_energy + base_log_partition + tempered_conditional, block_free_energy, "
        "free_energy_grad_weighted, local_begin + local_commit + local_end, free_energy_grad_state, "
        "local_step");
}

TEST_CASE("bad input: the sample stage of a latent model without a sampler", "[latent][cli][bad-input]")
{
    expect_refusal(
        "sample_init_data",
        with("{model: vae, count: 16}", "{model: vae, count: 16, init: data, data: data}"),
        "pipeline.yaml:16:45: stage 3 (sample): init: data starts a sampler's chains at data rows, but "
        "this stage has no sampler: the samples of latent model 'vae' are decoded from h ~ N(0, I)");
    expect_refusal(
        "sample_burn_in", with("{model: vae, count: 16}", "{model: vae, count: 16, burn_in: 5}"),
        "pipeline.yaml:16:48: stage 3 (sample): burn_in counts a sampler's sweeps, but this stage has no "
        "sampler: the samples of latent model 'vae' are exact draws, decoded from h ~ N(0, I)");
    expect_refusal(
        "sample_states", with("{model: vae, count: 16}", "{model: vae, count: 16, picture: states}"),
        "pipeline.yaml:16:48: stage 3 (sample): picture: states shows a sampler's chains, but this stage "
        "has no sampler: the picture of latent model 'vae' shows its decoded means E[x | h]");
}

TEST_CASE("bad input: the latent stage's keys", "[latent][cli][bad-input]")
{
    expect_refusal(
        "manifold_3d", with("{plugin: linear_vae, latent: 2}", "{plugin: linear_vae, latent: 3}"),
        "pipeline.yaml:17:71: stage 4 (latent): manifold: 5 decodes a grid over a 2-D latent space, but "
        "model 'vae' has 3 latent units (give manifold: 0, or leave it out)");
    expect_refusal(
        "scatter_3d",
        replace_all(with("{plugin: linear_vae, latent: 2}", "{plugin: linear_vae, latent: 3}"),
                    "manifold: 5}", "scatter: true}"),
        "pipeline.yaml:17:70: stage 4 (latent): scatter: true draws the data's 2-D posterior means, but "
        "model 'vae' has 3 latent units (leave scatter out)");
    expect_refusal(
        "manifold_101", with("manifold: 5}", "manifold: 101}"),
        "pipeline.yaml:17:71: key 'manifold' of stage 4 (latent) is 101, out of range: it must be [0, 100]");
    expect_refusal(
        "reconstructions_negative", with("reconstructions: 10", "reconstructions: -1"),
        "pipeline.yaml:17:57: key 'reconstructions' of stage 4 (latent) is -1, out of range: it must be "
        "[0, 1000000]");
    expect_refusal("label_names_no_scatter",
                   with("manifold: 5}", "manifold: 5, scatter: false, label_names: [a, b]}"),
                   "pipeline.yaml:17:103: stage 4 (latent): key label_names names the scatter's classes, but "
                   "scatter is false");
    expect_refusal("label_names_bar", with("manifold: 5}", "manifold: 5, label_names: [a|b]}"),
                   "pipeline.yaml:17:87: stage 4 (latent): key label_names: the name 'a|b' has a '|', which "
                   "separates names");
    // The data's labels are known once the dataset exists: here it is the first stage's, created before
    // any output.
    expect_refusal(
        "scatter_unlabelled",
        replace_all(with("manifold: 5}", "manifold: 5, scatter: true}"),
                    ", labels: labels.idx, label_names: [left, middle, right]", ""),
        "pipeline.yaml:17:83: stage 4 (latent): scatter: true colours the points by label, but dataset "
        "'data' has no labels (give it a labels file, or leave scatter out)");
}

TEST_CASE("bad input: the idx dataset's label_names", "[latent][cli][bad-input]")
{
    expect_refusal(
        "idx_names_unlabelled", with(", labels: labels.idx, label_names", ", label_names"),
        "component 'data' (dataset 'idx' from {PLUGINS}/libansatz_idx.so): key label_names names the "
        "label values, but the dataset has no labels (give the labels file in key labels)");
    expect_refusal(
        "idx_names_bar", with("label_names: [left, middle, right]", "label_names: [left, mid|dle]"),
        "component 'data' (dataset 'idx' from {PLUGINS}/libansatz_idx.so): key label_names: the name "
        "'mid|dle' has a '|', which separates names");
    expect_refusal(
        "idx_names_empty", with("label_names: [left, middle, right]", "label_names: []"),
        "pipeline.yaml:6:80: key 'label_names' of dataset 'idx' has 0 items, but it must have at least 1 "
        "item\n"
        "  while validating component 'data' (plugin file {PLUGINS}/libansatz_idx.so)");
}

// The vae model through the engine: trained on the ELBO, evaluated, sampled and drawn on small square
// images; killed in the middle of an epoch and resumed, it ends with the same files byte for byte as a
// run that never stopped; and its keys' bad values, each one sentence and exit status 2, found before
// any output where the sizes are known.
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::untimed;
using ansatz::test::write_text;

namespace
{

// 48 images of 6 x 6 grey levels; a 3 x 3 square at one of 9 places. Batches of 8: 6 per epoch.
const std::string pipeline = R"(pipeline: vae
seed: 5
threads: 1
components:
  data:     {plugin: idx, images: images.idx}
  vae:      {plugin: vae, hidden: [8], latent: 2}
  loss:     {plugin: elbo}
  adam:     {plugin: adam, learning_rate: 0.01}
  estimate: {plugin: elbo_estimate, samples: 2}
  iw:       {plugin: iwae, samples: 20}
stages:
  - train:    {model: vae, data: data, loss: loss, optimizer: adam, epochs: 4, batch_size: 8}
  - evaluate: {model: vae, data: data, evaluators: [estimate, iw]}
  - sample:   {model: vae, count: 4}
  - latent:   {model: vae, data: data, reconstructions: 4, manifold: 3}
)";

std::string replace_all(std::string s, const std::string& from, const std::string& to)
{
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

std::string with(const std::string& from, const std::string& to)
{
    REQUIRE(pipeline.find(from) != std::string::npos);
    return replace_all(pipeline, from, to);
}

// A float32 .npy of `rows` x `cols` values i * step.
std::string npy(int64_t rows, int64_t cols, float step)
{
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                         std::to_string(cols) + "), }";
    while ((10 + header.size() + 1) % 64 != 0)
        header += ' ';
    header += '\n';
    std::string s("\x93NUMPY\x01\x00", 8);
    s += static_cast<char>(header.size() & 0xff);
    s += static_cast<char>(header.size() >> 8);
    s += header;
    for (int64_t i = 0; i < rows * cols; ++i)
    {
        const float v = static_cast<float>(i) * step;
        s.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    return s;
}

fs::path folder(const std::string& name, const std::string& text = pipeline)
{
    const fs::path dir = ansatz::test::fresh_folder("vae/" + name);
    write_text(dir / "pipeline.yaml", text);
    write_text(dir / "images.idx", ansatz::test::square_images(230, 20));
    write_text(dir / "rows.npy", npy(8, 6, 0.1f)); // values 0 .. 4.7
    return dir;
}

fs::path only_run(const fs::path& dir)
{
    return *fs::directory_iterator(dir / "runs" / "vae");
}

// Every file of the final checkpoint, the samples, the latent pictures' data, metrics.csv untimed.
std::map<std::string, std::string> outputs(const fs::path& run)
{
    std::map<std::string, std::string> files = ansatz::test::checkpoint_files(run);
    for (const char* file :
         { "stage3_samples.npy", "stage3_samples.png", "stage4_reconstructions.png", "stage4_manifold.png" })
        files[file] = read_text(run / file);
    files["metrics.csv"] = untimed(read_text(run / "metrics.csv"));
    return files;
}

const std::map<std::string, std::string>& reference()
{
    // One per test process: ctest runs the test cases of this file in parallel processes.
    static const std::map<std::string, std::string> r = [] {
        const fs::path dir = folder("reference-" + std::to_string(::getpid()));
        const auto result = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, 120);
        INFO(result.err);
        REQUIRE(result.status == 0);
        return outputs(only_run(dir));
    }();
    return r;
}

// Runs `text` in a fresh folder and expects exit status 2 with exactly this stderr ({PLUGINS}: the
// in-tree plugins), and, when `before_output`, no run folder.
void expect_refusal(const std::string& name, const std::string& text, const std::string& expected,
                    bool before_output = true)
{
    const fs::path dir = folder("bad/" + name, text);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, 120);
    const std::string want = replace_all(expected, "{PLUGINS}", ANSATZ_TEST_PLUGIN_DIR);
    CHECK(r.status == 2);
    if (before_output)
    {
        CHECK(r.err == want + "\n");
        CHECK_FALSE(fs::exists(dir / "runs"));
    }
    else // after the line naming the run folder
        CHECK(r.err == "run folder: " + fs::relative(only_run(dir), dir).string() + "\n" + want + "\n");
}

const std::string component = "component 'vae' (model 'vae' from {PLUGINS}/libansatz_vae.so): ";

} // namespace

TEST_CASE("vae: trained, evaluated, sampled and drawn, with the ELBO's terms in metrics.csv", "[vae][cli]")
{
    const auto& files = reference();
    const std::string& metrics = files.at("metrics.csv");
    const std::string header = metrics.substr(0, metrics.find('\n'));
    for (const char* column : { ",elbo,", ",reconstruction,", ",kl,", ",active_units,", ",elbo_stderr,",
                                ",log_likelihood,", ",log_likelihood_stderr," })
        CHECK_THAT(header, Catch::Contains(column));
    for (const char* piece : { "stage1-epoch4/vae.encoder.0.weight.npy",
                               "stage1-epoch4/vae.decoder.2.bias.npy", "stage1-epoch4/adam.state.step.npy" })
        CHECK(files.count(piece) == 1);
}

TEST_CASE("vae: killed in the middle of an epoch and resumed, the run ends byte-equal", "[vae][cli][resume]")
{
    const std::map<std::string, std::string>& want = reference();
    const fs::path dir = folder("killed");
    // Epoch 3, batch 2 (after epoch 2's checkpoint); then while the resumed run writes epoch 3's.
    const std::vector<std::string> faults = { "batch:14", "checkpoint-write:1" };
    auto r =
        run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir, { "ANSATZ_FAULT=" + faults[0] }, 120);
    REQUIRE(r.status == 128 + 9); // SIGKILL
    const fs::path run = only_run(dir);
    for (size_t k = 1; k <= faults.size(); ++k)
    {
        const std::vector<std::string> env = k < faults.size()
                                                 ? std::vector<std::string>{ "ANSATZ_FAULT=" + faults[k] }
                                                 : std::vector<std::string>{};
        r = run_ansatz({ "run", "--resume", run.string() }, dir, env, 120);
        INFO("after " << faults[k - 1] << ": " << r.err);
        REQUIRE(r.status == (k < faults.size() ? 128 + 9 : 0));
    }
    const std::map<std::string, std::string> got = outputs(run);
    REQUIRE(got.size() == want.size());
    for (const auto& [file, bytes] : want)
    {
        INFO(file);
        REQUIRE(got.count(file) == 1);
        CHECK(got.at(file) == bytes);
    }
}

TEST_CASE("bad input: the vae's keys", "[vae][cli][bad-input]")
{
    const std::string vae = "vae:      {plugin: vae, hidden: [8], latent: 2}";
    expect_refusal(
        "latent_0", with(vae, "vae:      {plugin: vae, hidden: [8], latent: 0}"),
        "pipeline.yaml:6:48: key 'latent' of model 'vae' is 0, out of range: it must be [1, 65536]\n"
        "  while validating component 'vae' (plugin file {PLUGINS}/libansatz_vae.so)");
    expect_refusal(
        "hidden_0", with(vae, "vae:      {plugin: vae, hidden: [8, 0], latent: 2}"),
        "pipeline.yaml:6:39: item 1 of key 'hidden' of model 'vae' is 0, out of range: it must be [1, "
        "16777216]\n"
        "  while validating component 'vae' (plugin file {PLUGINS}/libansatz_vae.so)");
    expect_refusal(
        "architecture", with(vae, "vae:      {plugin: vae, architecture: cnn, latent: 2}"),
        "pipeline.yaml:6:41: key 'architecture' of model 'vae' is 'cnn', which is not one of: mlp,conv "
        "(did you mean 'conv'?)\n"
        "  while validating component 'vae' (plugin file {PLUGINS}/libansatz_vae.so)");
    expect_refusal("decoder", with(vae, "vae:      {plugin: vae, decoder: gauss, latent: 2}"),
                   "pipeline.yaml:6:36: key 'decoder' of model 'vae' is 'gauss', which is not one of: "
                   "bernoulli,gaussian\n"
                   "  while validating component 'vae' (plugin file {PLUGINS}/libansatz_vae.so)");
    expect_refusal("filters_mlp", with(vae, "vae:      {plugin: vae, filters: [8], latent: 2}"),
                   component + "key filters belongs to architecture: conv, but this vae is architecture: mlp "
                               "(its layers are hidden)");
    expect_refusal("hidden_conv", with(vae, "vae:      {plugin: vae, architecture: conv, hidden: [8]}"),
                   component + "key hidden belongs to architecture: mlp, but this vae is architecture: conv "
                               "(its layers are filters, kernel, stride and dense)");
    expect_refusal(
        "kernel_list",
        with(vae, "vae:      {plugin: vae, architecture: conv, filters: [4, 4], kernel: [3, 3, 3]}"),
        component + "key kernel has 3 items, but filters has 2: give one per convolution, or one for all");
    expect_refusal("sigma_bernoulli", with(vae, "vae:      {plugin: vae, sigma: 0.1}"),
                   component + "key sigma belongs to decoder: gaussian (a bernoulli decoder has no sigma)");
    // Found in validation, where the data's shape is known: 6 x 6 images through one stride-4 convolution
    // (6 -> 2) come back as 8 x 8; and a conv vae on rows that are not images.
    expect_refusal(
        "strides",
        with(vae, "vae:      {plugin: vae, architecture: conv, filters: [4], stride: [4], latent: 2}"),
        component +
            "architecture: conv: the decoder's transposed convolutions give images of 1x8x8, but the "
            "data's are 1x6x6: with 'same' padding the product of the strides (4) must divide the images' "
            "height and width");
    expect_refusal(
        "not_images",
        replace_all(with(vae, "vae:      {plugin: vae, architecture: conv, latent: 2}"),
                    "{plugin: idx, images: images.idx}", "{plugin: npy, samples: rows.npy}"),
        component + "architecture: conv needs images, samples of shape {H, W} or {C, H, W}, but the data's "
                    "samples have shape {6}");
    // A bernoulli decoder on values outside [0, 1]: refused at the first batch (exit 2).
    expect_refusal(
        "outside_0_1", with("{plugin: idx, images: images.idx}", "{plugin: npy, samples: rows.npy}"),
        "component 'loss' (loss 'elbo' from {PLUGINS}/libansatz_elbo.so): decoder: bernoulli models "
        "values in [0, 1] (binary or grey levels), but the data has a value 3; use decoder: gaussian "
        "for real-valued data",
        false);
}

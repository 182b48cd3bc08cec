// What stops a run on purpose: a non-finite loss, gradient or parameter (exit 1, the last good
// checkpoint kept) and sizes the machine cannot hold (exit 2, naming the keys); and a model that
// needs no data: a sample stage on an rbm with `visible:` and nothing else.
#include "ansatz/component.hpp"
#include "outputs/npy.hpp"
#include "run/host_services.hpp"
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <cmath>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

// Two train stages: a gentle one, then one whose step overflows float32 at once (lr 3e38 times a
// weight decay term of order 1).
const std::string diverging = R"(pipeline: diverge
seed: 5
threads: 1
components:
  data:   {plugin: idx, images: images.idx, binarize: 0.5}
  rbm:    {plugin: rbm, hidden: 8, init_std: 1}
  gibbs:  {plugin: gibbs}
  cd:     {plugin: contrastive_divergence}
  gentle: {plugin: sgd, learning_rate: 0.05}
  wild:   {plugin: sgd, learning_rate: 3e38, weight_decay: 1}
stages:
  - train: {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: gentle, epochs: 2, batch_size: 8}
  - train: {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: wild, epochs: 3, batch_size: 8}
)";

fs::path setup(const std::string& name, const std::string& pipeline)
{
    const fs::path dir = ansatz::test::fresh_folder("guards/" + name);
    write_text(dir / "pipeline.yaml", pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images());
    return dir;
}

std::string last_line(std::string text)
{
    while (!text.empty() && text.back() == '\n')
        text.pop_back();
    return text.substr(text.rfind('\n') + 1);
}

} // namespace

TEST_CASE("non-finite guard: a parameter that overflows stops the run, naming stage, epoch, batch and "
          "parameter, and the last good checkpoint is kept",
          "[guard]")
{
    const fs::path dir = setup("diverge", diverging);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    CHECK(r.status == 1);
    CHECK(
        last_line(r.err) ==
        "error: stage 2 (train), epoch 1, batch 1: parameter 'weights' of model 'rbm', after the optimizer's "
        "step, is +Inf at index 1; the run stops, keeping the last good checkpoint stage1-epoch2. Lower the "
        "learning rate or check the data.");
    const fs::path run = *fs::directory_iterator(dir / "runs" / "diverge");
    std::vector<std::string> kept;
    for (const auto& entry : fs::directory_iterator(run / "checkpoints"))
        kept.push_back(entry.path().filename().string());
    CHECK(kept == std::vector<std::string>{ "stage1-epoch2" });
    // The kept checkpoint is good: every weight finite.
    ansatz::engine::NpyArray w =
        ansatz::engine::read_npy(run / "checkpoints" / "stage1-epoch2" / "rbm.weights.npy");
    const float* x = reinterpret_cast<const float*>(w.bytes.data());
    for (size_t i = 0; i < w.bytes.size() / 4; ++i)
        REQUIRE(std::isfinite(x[i]));
    // No row of the diverging stage reached metrics.csv, and the run is not marked finished.
    CHECK(read_text(run / "metrics.csv").find("\n2,train,") == std::string::npos);
    CHECK_FALSE(fs::exists(run / "finished"));
}

TEST_CASE("non-finite guard: a run that diverges in its first epoch leaves no checkpoint and exits 1",
          "[guard]")
{
    std::string one_stage = diverging;
    one_stage.erase(
        one_stage.find("  - train: {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: gentle"),
        one_stage.find("  - train: {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: wild") -
            one_stage.find(
                "  - train: {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: gentle"));
    const fs::path dir = setup("diverge_first", one_stage);
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    CHECK(r.status == 1);
    CHECK(
        last_line(r.err) ==
        "error: stage 1 (train), epoch 1, batch 1: parameter 'weights' of model 'rbm', after the optimizer's "
        "step, is +Inf at index 0; the run stops (no checkpoint was written yet). Lower the learning rate or "
        "check the data.");
    const fs::path run = *fs::directory_iterator(dir / "runs" / "diverge");
    CHECK_FALSE(fs::exists(run / "checkpoints"));
}

TEST_CASE("sizes the machine cannot hold are refused with exit 2, naming the keys and the memory",
          "[guard][bad-input]")
{
    const fs::path dir = setup("sizes", diverging);
    const std::string have =
        ansatz::Host::format_bytes(static_cast<double>(ansatz::engine::physical_memory()));
    const std::string plugins = ANSATZ_TEST_PLUGIN_DIR;

    auto r = run_ansatz(
        { "run", "pipeline.yaml", "--runs", "runs", "--set", "components.rbm.hidden=2000000000" }, dir);
    CHECK(r.status == 2);
    // 4 bytes x (36 + 1) x (2e9 + 1): the weights and both biases.
    CHECK(last_line(r.err) ==
          "component 'rbm' (model 'rbm' from " + plugins +
              "/libansatz_rbm.so): hidden: 2000000000 with the data's 36 values per sample needs "
              "275.7 GiB of memory, more than the " +
              have + " this machine has");
    CHECK_FALSE(fs::exists(dir / "runs")); // refused before the run folder was made

    r = run_ansatz(
        { "run", "pipeline.yaml", "--runs", "runs", "--set", "components.rbm.visible=1099511627776" }, dir);
    CHECK(r.status == 2);
    CHECK(
        r.err.find(
            "--set components.rbm.visible=1099511627776: key 'visible' of model 'rbm' is 1099511627776, out "
            "of range: it must be [0, 2147483647]") == 0);

    r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs", "--set", "components.rbm.visible=1000000000",
                     "--set", "components.rbm.hidden=1000" },
                   dir);
    CHECK(r.status == 2);
    CHECK(last_line(r.err) ==
          "component 'rbm' (model 'rbm' from " + plugins +
              "/libansatz_rbm.so): hidden: 1000 with visible: 1000000000 needs 3.6 TiB of memory, "
              "more than the " +
              have + " this machine has");

    r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs", "--set", "components.cd.persistent=true",
                     "--set", "components.cd.chains=1099511627776" },
                   dir);
    CHECK(r.status == 2);
    CHECK(last_line(r.err) ==
          "component 'cd' (loss 'contrastive_divergence' from " + plugins +
              "/libansatz_contrastive_divergence.so): chains: 1099511627776 persistent chains of "
              "36 values needs 176.0 TiB of memory, more than the " +
              have + " this machine has");
}

TEST_CASE("a sample stage runs an rbm with visible: 16 and no dataset and no train stage", "[guard][sample]")
{
    const fs::path dir = ansatz::test::fresh_folder("guards/no_data");
    write_text(dir / "pipeline.yaml", R"(pipeline: free
seed: 3
components:
  rbm:   {plugin: rbm, visible: 16, hidden: 4, init_std: 1.0}
  gibbs: {plugin: gibbs}
stages:
  - sample: {model: rbm, sampler: gibbs, count: 10, steps: 50}
)");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path run = *fs::directory_iterator(dir / "runs" / "free");
    ansatz::engine::NpyArray samples = ansatz::engine::read_npy(run / "stage1_samples.npy");
    CHECK(samples.shape == std::vector<int64_t>{ 10, 16 });
    const float* x = reinterpret_cast<const float*>(samples.bytes.data());
    int ones = 0;
    for (int i = 0; i < 160; ++i)
    {
        REQUIRE((x[i] == 0.0f || x[i] == 1.0f));
        ones += x[i] == 1.0f;
    }
    CHECK(ones > 0);
    CHECK(ones < 160);
    CHECK(read_text(run / "metrics.csv").find("1,sample,0,") != std::string::npos);
    CHECK_FALSE(fs::exists(run / "stage1_samples.png")); // a vector of 16 is not a picture

    // Without `visible:` the model has no shape: refused before any run folder exists.
    write_text(dir / "shapeless.yaml",
               "pipeline: shapeless\ncomponents:\n  rbm: {plugin: rbm}\n  gibbs: {plugin: gibbs}\n"
               "stages:\n  - sample: {model: rbm, sampler: gibbs}\n");
    const auto s = run_ansatz({ "run", "shapeless.yaml", "--runs", "runs" }, dir);
    CHECK(s.status == 2);
    CHECK(s.err ==
          "shapeless.yaml:6:13: stage 1 (sample): model 'rbm' has no sample shape: give it one in its "
          "configuration (e.g. an rbm's visible:), run a train stage with data before this one, or give "
          "this stage a 'data' key\n");
    CHECK_FALSE(fs::exists(dir / "runs" / "shapeless"));
    const auto v = run_ansatz({ "validate", "shapeless.yaml" }, dir);
    CHECK(v.status == 2);
    CHECK(v.err == s.err);
}

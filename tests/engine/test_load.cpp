// The load stage: a model's parameters from .npy files, plain (<name>.npy, as numpy.save writes them)
// or from a checkpoint folder (<model>.<name>.npy); what does not fit is refused naming the file.
#include "ansatz/tensor.hpp"
#include "outputs/npy.hpp"
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <cstring>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

const std::string pipeline = R"(pipeline: loaded
seed: 3
threads: 1
components:
  data:  {plugin: idx, images: images.idx}
  rbm:   {plugin: rbm, hidden: 3}
  gibbs: {plugin: gibbs}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 1.0e-30}
stages:
  - load:  {model: rbm, from: params, data: data}
  - train: {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 1, batch_size: 8}
)";

template <class T>
void save(const fs::path& file, std::vector<T> values, std::vector<int64_t> shape)
{
    ansatz_tensor view = ansatz::make_view(values.data(), {});
    view.rank = static_cast<int32_t>(shape.size());
    for (size_t i = 0; i < shape.size(); ++i)
        view.shape[i] = shape[i];
    write_text(file, ansatz::engine::npy_bytes(view));
}

std::vector<float> ramp(size_t n, float scale)
{
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = scale * (static_cast<float>(i % 7) - 3.5f); // never 0: see the learning rate
    return v;
}

fs::path folder(const std::string& name)
{
    const fs::path dir = ansatz::test::fresh_folder("load/" + name);
    write_text(dir / "pipeline.yaml", pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images()); // 6 x 6 images: 36 visible units
    fs::create_directories(dir / "params");
    save(dir / "params" / "weights.npy", ramp(36 * 3, 0.25f), { 36, 3 });
    save(dir / "params" / "visible_bias.npy", ramp(36, 0.5f), { 36 });
    save(dir / "params" / "hidden_bias.npy", ramp(3, 1.0f), { 3 });
    return dir;
}

std::vector<float> floats(const fs::path& file)
{
    ansatz::engine::NpyArray a = ansatz::engine::read_npy(file);
    std::vector<float> out(a.bytes.size() / sizeof(float));
    std::memcpy(out.data(), a.bytes.data(), a.bytes.size());
    return out;
}

fs::path checkpoint_of(const fs::path& dir)
{
    return fs::directory_iterator(dir / "runs" / "loaded")->path() / "checkpoints" / "stage2-epoch1";
}

} // namespace

TEST_CASE("load: plain .npy files set the parameters, and a checkpoint folder sets them again", "[load]")
{
    const fs::path dir = folder("plain");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.find("load [stage 1]: model 'rbm' from " + (dir / "params").string() +
                     ": weights {36, 3}, visible_bias {36}, hidden_bias {3}") != std::string::npos);
    // Learning rate 1e-30: steps vanish beside values of at least 0.125 in magnitude, so the checkpoint
    // after one epoch holds exactly what was loaded.
    const fs::path checkpoint = checkpoint_of(dir);
    CHECK(floats(checkpoint / "rbm.weights.npy") == ramp(36 * 3, 0.25f));
    CHECK(floats(checkpoint / "rbm.visible_bias.npy") == ramp(36, 0.5f));
    CHECK(floats(checkpoint / "rbm.hidden_bias.npy") == ramp(3, 1.0f));

    // The checkpoint folder of that run as `from:` (files named <model>.<parameter>.npy).
    const fs::path again = folder("from_checkpoint");
    fs::remove_all(again / "params");
    fs::create_directories(again / "params");
    for (const char* name : { "rbm.weights.npy", "rbm.visible_bias.npy", "rbm.hidden_bias.npy" })
        fs::copy_file(checkpoint / name, again / "params" / name);
    const auto r2 = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, again);
    INFO(r2.err);
    REQUIRE(r2.status == 0);
    CHECK(floats(checkpoint_of(again) / "rbm.weights.npy") == ramp(36 * 3, 0.25f));
}

TEST_CASE("bad input: load", "[load][bad-input]")
{
    SECTION("a missing parameter file")
    {
        const fs::path dir = folder("missing");
        fs::remove(dir / "params" / "hidden_bias.npy");
        const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        CHECK(r.status == 2);
        CHECK(r.err.find("stage 1 (load): parameter 'hidden_bias' of model 'rbm' has no file in " +
                         (dir / "params").string() +
                         " (looked for rbm.hidden_bias.npy and hidden_bias.npy).\n") != std::string::npos);
    }
    SECTION("a parameter of another shape")
    {
        const fs::path dir = folder("shape");
        save(dir / "params" / "weights.npy", ramp(3 * 36, 0.25f), { 3, 36 });
        const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        CHECK(r.status == 2);
        CHECK(r.err.find(
                  "stage 1 (load): " + (dir / "params" / "weights.npy").string() +
                  " holds float32 {3, 36}, but parameter 'weights' of model 'rbm' is float32 {36, 3}.\n") !=
              std::string::npos);
    }
    SECTION("a parameter of another dtype")
    {
        const fs::path dir = folder("dtype");
        save(dir / "params" / "hidden_bias.npy", std::vector<double>{ 1, 2, 3 }, { 3 });
        const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        CHECK(r.status == 2);
        CHECK(
            r.err.find("stage 1 (load): " + (dir / "params" / "hidden_bias.npy").string() +
                       " holds float64 {3}, but parameter 'hidden_bias' of model 'rbm' is float32 {3}.\n") !=
            std::string::npos);
    }
    SECTION("a damaged file")
    {
        const fs::path dir = folder("damaged");
        write_text(dir / "params" / "weights.npy", "\x93NUMPY garbage");
        const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        CHECK(r.status == 2);
        CHECK(r.err.find("stage 1 (load): " + (dir / "params" / "weights.npy").string() + ": ") !=
              std::string::npos);
        CHECK(r.err.find("Aborted") == std::string::npos);
    }
    SECTION("a file where a folder belongs, and a path that does not exist")
    {
        const fs::path dir = folder("not_folder");
        std::string text = pipeline;
        text.replace(text.find("from: params"), 12, "from: images.idx");
        write_text(dir / "pipeline.yaml", text);
        auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        CHECK(r.status == 2);
        CHECK(r.err ==
              "pipeline.yaml:11:31: stage 1 (load): key 'from' names " + (dir / "images.idx").string() +
                  ", which is not a folder; give the folder that holds one .npy file per parameter\n");
        text.replace(text.find("from: images.idx"), 16, "from: nowhere");
        write_text(dir / "pipeline.yaml", text);
        r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
        CHECK(r.status == 2);
        INFO(r.err);
        CHECK(r.err.find(
                  "pipeline.yaml:11:31: key 'from' of stage 1 (load) names nowhere, which does not exist") ==
              0);
        CHECK(!fs::exists(dir / "runs"));
    }
}

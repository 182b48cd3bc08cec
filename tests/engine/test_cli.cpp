// The `ansatz` program end to end: listing, describing, running, and the run folder it leaves.
#include "run/host_services.hpp"
#include "support/cli.hpp"

#include <catch2/catch.hpp>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

const std::string plugins = ANSATZ_TEST_PLUGIN_DIR;

// A small run on generated data (6x6 images with a bright square, 48 of them).
const std::string small_pipeline = R"(pipeline: small
seed: 42
threads: 1
components:
  data:  {plugin: idx, images: images.idx, binarize: 0.5}
  rbm:   {plugin: rbm, hidden: 8}
  gibbs: {plugin: gibbs}
  cd:    {plugin: contrastive_divergence}
  sgd:   {plugin: sgd, learning_rate: 0.05, momentum: 0.5}
stages:
  - train:  {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 3, batch_size: 8}
  - sample: {model: rbm, sampler: gibbs, count: 9, steps: 50}
)";

fs::path run_small(const std::string& name, std::vector<std::string> extra = {})
{
    const fs::path dir = ansatz::test::fresh_folder("cli/" + name);
    write_text(dir / "pipeline.yaml", small_pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images());
    std::vector<std::string> args = { "run", "pipeline.yaml", "--runs", "runs" };
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_ansatz(args, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    std::string folder = r.out;
    while (!folder.empty() && folder.back() == '\n')
        folder.pop_back();
    return dir / folder;
}

// metrics.csv without its timing columns (seconds, *_per_second).
std::string without_timing(const std::string& csv)
{
    std::vector<std::vector<std::string>> rows;
    std::stringstream lines(csv);
    for (std::string line; std::getline(lines, line);)
    {
        std::vector<std::string> cells;
        std::stringstream cs(line);
        for (std::string c; std::getline(cs, c, ',');)
            cells.push_back(c);
        if (!line.empty() && line.back() == ',')
            cells.emplace_back();
        rows.push_back(cells);
    }
    std::string out;
    for (const auto& row : rows)
    {
        for (size_t i = 0; i < row.size(); ++i)
        {
            const std::string& header = rows[0][i];
            const bool timing = header == "seconds" || header.find("per_second") != std::string::npos;
            if (!timing)
                out += row[i] + ",";
        }
        out += "\n";
    }
    return out;
}

} // namespace

TEST_CASE("`ansatz plugins` lists every in-tree plugin with kind, name, version and file", "[cli]")
{
    const auto r = run_ansatz({ "plugins" }, ANSATZ_TEST_WORK_DIR);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK(r.out.rfind("KIND       NAME                     VERSION   FILE\n", 0) == 0);
    for (const std::string& line :
         { "loss       contrastive_divergence   0.1.0     " + plugins +
               "/libansatz_contrastive_divergence.so",
           "dataset    idx                      0.1.0     " + plugins + "/libansatz_idx.so",
           "model      rbm                      0.1.0     " + plugins + "/libansatz_rbm.so",
           "sampler    gibbs                    0.1.0     " + plugins + "/libansatz_gibbs.so",
           "optimizer  sgd                      0.1.0     " + plugins + "/libansatz_sgd.so",
           "optimizer  adam                     0.1.0     " + plugins + "/libansatz_adam.so" })
        CHECK(r.out.find(line + "\n") != std::string::npos);
}

TEST_CASE("`ansatz describe` prints every key with type, default or range, and its doc", "[cli]")
{
    const auto r = run_ansatz({ "describe", "sgd" }, ANSATZ_TEST_WORK_DIR);
    CHECK(r.status == 0);
    CHECK(r.out.find("sgd (optimizer)\n  stochastic gradient descent with momentum and weight decay\n") == 0);
    CHECK(r.out.find("file:    " + plugins + "/libansatz_sgd.so\n") != std::string::npos);
    CHECK(r.out.find("keys:\n"
                     "  learning_rate        float > 0, default 0.01\n"
                     "                       step size\n"
                     "  momentum             float [0, 1), default 0\n"
                     "                       heavy-ball momentum factor\n") != std::string::npos);
    CHECK(r.out.find("  nesterov             bool, default false\n") != std::string::npos);
    // The schedule keys (ansatz/schedule.hpp), an optional one among them.
    CHECK(r.out.find(
              "  schedule             choice of {constant step exponential cosine}, default constant\n") !=
          std::string::npos);
    CHECK(r.out.find("  step_size            int >= 1, optional\n") != std::string::npos);

    const auto rbm = run_ansatz({ "describe", "rbm" }, ANSATZ_TEST_WORK_DIR);
    CHECK(rbm.status == 0);
    CHECK(rbm.out.find(
              "provides: free_energy, free_energy_grad, energy_delta, conditional, tempered_free_energy "
              "+ base_log_partition + tempered_conditional, block_free_energy, "
              "free_energy_grad_weighted, local_begin + local_commit + local_end, free_energy_grad_state, "
              "local_step\n") != std::string::npos);
    CHECK(rbm.out.find("  hidden         int >= 1, default 64\n") != std::string::npos);

    const auto gibbs = run_ansatz({ "describe", "gibbs" }, ANSATZ_TEST_WORK_DIR);
    CHECK(gibbs.out.find("needs of the model: conditional\n") != std::string::npos);
    CHECK(gibbs.out.find("tempered advance: yes (advance_tempered)\n") != std::string::npos);
    const auto mh = run_ansatz({ "describe", "metropolis_hastings" }, ANSATZ_TEST_WORK_DIR);
    CHECK(mh.out.find("needs of the model: energy_delta\n") != std::string::npos);
    CHECK(mh.out.find("tempered advance: yes (advance_tempered)\n") != std::string::npos);
    CHECK(mh.out.find("  proposal           choice of {auto flip category gaussian mala}, default auto\n") !=
          std::string::npos);

    const auto stage = run_ansatz({ "describe", "sample" }, ANSATZ_TEST_WORK_DIR);
    CHECK(stage.out.find("  init         choice of {random data}, default random\n") != std::string::npos);
    CHECK(stage.out.find("  burn_in      int >= 0, optional\n") != std::string::npos);

    const auto unknown = run_ansatz({ "describe", "rbn" }, ANSATZ_TEST_WORK_DIR);
    CHECK(unknown.status == 2);
    CHECK(unknown.err ==
          "ansatz describe: no plugin component or stage type named 'rbn' (did you mean 'rbm'?); "
          "known: adam, ais, contrastive_divergence, elbo, elbo_estimate, energy_auroc, exact_likelihood, "
          "free_energy, gibbs, idx, ising, ising_observables, iwae, langevin, metropolis_hastings, "
          "neural_energy, npy, parallel_tempering, pseudo_likelihood, rbm, reconstruction_error, sgd, vae, "
          "and the stages train, sample, generate, evaluate, load, latent.\n");
}

TEST_CASE("a run leaves the resolved pipeline, metrics, a checkpoint, samples and their picture",
          "[cli][run]")
{
    const fs::path run = run_small("outputs");
    const std::string resolved = read_text(run / "pipeline.yaml");
    // Defaults filled in, paths resolved.
    CHECK(resolved.find("init_std: 0.01") != std::string::npos);
    CHECK(resolved.find("persistent: false") != std::string::npos);
    CHECK(resolved.find("shuffle: true") != std::string::npos);
    CHECK(
        resolved.find("images: " + (run.parent_path().parent_path().parent_path() / "images.idx").string()) !=
        std::string::npos);

    const std::string metrics = read_text(run / "metrics.csv");
    std::stringstream lines(metrics);
    std::string header;
    std::getline(lines, header);
    CHECK(header.rfind("stage,type,epoch,", 0) == 0);
    CHECK(header.find("reconstruction_error") != std::string::npos);
    CHECK(
        header.substr(header.size() - std::string(",seconds,samples_per_second,sweeps_per_second").size()) ==
        ",seconds,samples_per_second,sweeps_per_second");
    int rows = 0;
    for (std::string line; std::getline(lines, line);)
        ++rows;
    CHECK(rows == 4);

    const fs::path checkpoint = run / "checkpoints" / "stage1-epoch3";
    CHECK(fs::exists(checkpoint / "manifest.yaml"));
    CHECK(fs::file_size(checkpoint / "rbm.weights.npy") == 128 + 36 * 8 * 4);
    CHECK(fs::exists(checkpoint / "sgd.state.momentum.weights.npy"));
    CHECK_FALSE(fs::exists(run / "checkpoints" / "stage1-epoch2")); // only the last one is kept

    CHECK(fs::file_size(run / "stage2_samples.npy") == 128 + 9 * 36 * 4);
    const std::string png = read_text(run / "stage2_samples.png");
    REQUIRE(png.size() > 33);
    CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
    CHECK(png.substr(12, 4) == "IHDR");
    // 3 x 3 grid of 6 x 6 images with 1-pixel borders: 22 x 22, each pixel shown as 23 x 23 (506 = 0x1fa).
    CHECK(png.substr(16, 8) == std::string("\x00\x00\x01\xfa\x00\x00\x01\xfa", 8));
}

TEST_CASE("the same pipeline and seed give the same checkpoint bytes, samples and metrics.csv apart from "
          "timing columns",
          "[cli][run]")
{
    for (const std::string threads : { "1", "2" }) // BLAS with one thread, and with the machine's two
    {
        INFO("threads " << threads);
        const std::vector<std::string> set = { "--set", "threads=" + threads };
        const fs::path a = run_small("determinism_a" + threads, set);
        const fs::path b = run_small("determinism_b" + threads, set);
        const std::string first = read_text(a / "metrics.csv");
        CHECK(without_timing(first) == without_timing(read_text(b / "metrics.csv")));
        CHECK(without_timing(first).find("reconstruction_error") != std::string::npos); // metrics are there
        // Every file of the checkpoint, byte for byte (its copy of metrics.csv has timing columns).
        int compared = 0;
        for (const auto& entry : fs::directory_iterator(a / "checkpoints" / "stage1-epoch3"))
        {
            const std::string name = entry.path().filename().string();
            if (name == "metrics.csv")
                continue;
            INFO(name);
            CHECK(read_text(entry.path()) == read_text(b / "checkpoints" / "stage1-epoch3" / name));
            ++compared;
        }
        CHECK(compared >= 10); // parameters, momentum, first-step flag, engine state, manifest
        CHECK(read_text(a / "stage2_samples.npy") == read_text(b / "stage2_samples.npy"));
    }
    // ...and another seed gives other numbers.
    const std::string first = read_text(run_small("determinism_seed42") / "metrics.csv");
    const std::string other =
        read_text(run_small("determinism_seed43", { "--set", "seed=43" }) / "metrics.csv");
    CHECK(without_timing(other) != without_timing(first));
}

TEST_CASE(
    "shuffle: false keeps the file order, checkpoint_every picks the epochs, init: data starts from the "
    "data",
    "[cli][run]")
{
    // The data order a checkpoint saves: the file's with shuffle: false, another one by default.
    const auto order_of = [](const fs::path& run) {
        const std::string npy = read_text(run / "checkpoints" / "stage1-epoch3" / "engine.state.order.npy");
        std::vector<int64_t> order((npy.size() - 128) / 8);
        std::memcpy(order.data(), npy.data() + 128, order.size() * 8);
        return order;
    };
    std::vector<int64_t> file_order(48);
    for (int64_t i = 0; i < 48; ++i)
        file_order[static_cast<size_t>(i)] = i;
    CHECK(order_of(run_small("shuffle_off", { "--set", "stages.0.train.shuffle=false" })) == file_order);
    CHECK(order_of(run_small("shuffle_on")) != file_order);

    // checkpoint_every: 0 writes none; 2 of 3 epochs writes epoch 2, then the last one replaces it.
    const fs::path none = run_small("no_checkpoint", { "--set", "stages.0.train.checkpoint_every=0" });
    CHECK_FALSE(fs::exists(none / "checkpoints"));
    const fs::path every2 = run_small("every_2", { "--set", "stages.0.train.checkpoint_every=2" });
    std::vector<std::string> kept;
    for (const auto& entry : fs::directory_iterator(every2 / "checkpoints"))
        kept.push_back(entry.path().filename().string());
    CHECK(kept == std::vector<std::string>{ "stage1-epoch3" });

    // init: data with one sweep: the chains start from data rows, so they differ from random starts.
    const std::vector<std::string> one_sweep = { "--set", "stages.1.sample.steps=1" };
    std::vector<std::string> from_data = one_sweep;
    for (const char* extra : { "--set", "stages.1.sample.init=data", "--set", "stages.1.sample.data=data" })
        from_data.push_back(extra);
    const std::string random_start = read_text(run_small("init_random", one_sweep) / "stage2_samples.npy");
    const std::string data_start = read_text(run_small("init_data", from_data) / "stage2_samples.npy");
    CHECK(random_start.size() == data_start.size());
    CHECK(random_start != data_start);
}

TEST_CASE("an override (--set) changes a component's key and shows in the resolved pipeline", "[cli][run]")
{
    const fs::path run =
        run_small("override", { "--set", "components.rbm.hidden=5", "--set", "stages.0.train.epochs=1" });
    const std::string resolved = read_text(run / "pipeline.yaml");
    CHECK(resolved.find("hidden: 5") != std::string::npos);
    CHECK(fs::file_size(run / "checkpoints" / "stage1-epoch1" / "rbm.weights.npy") == 128 + 36 * 5 * 4);
}

TEST_CASE("every chain has its own stream: the first chains do not change when more run beside them",
          "[cli][run]")
{
    // stage2_samples.npy: 128 header bytes, then count x 6 x 6 float32 values.
    const std::string four =
        read_text(run_small("chains_4", { "--set", "stages.1.sample.count=4" }) / "stage2_samples.npy");
    const std::string nine = read_text(run_small("chains_9") / "stage2_samples.npy");
    REQUIRE(four.size() == 128 + 4 * 36 * 4);
    REQUIRE(nine.size() == 128 + 9 * 36 * 4);
    CHECK(four.substr(128) == nine.substr(128, 4 * 36 * 4));
    CHECK(nine.substr(128, 36 * 4) != nine.substr(128 + 36 * 4, 36 * 4)); // and chains differ from each other
}

namespace
{

// Runs the small pipeline for very many epochs, sends `signal` (INT or TERM) once the first
// checkpoint is there (polling for up to 60 s), and checks status 130, the message with `word`, and
// that exactly one complete checkpoint, and no half-written one, is left.
void check_stop_by_signal(const std::string& name, const std::string& signal, const std::string& word)
{
    const fs::path dir = ansatz::test::fresh_folder("cli/" + name);
    write_text(dir / "pipeline.yaml", small_pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images());
    const std::string script =
        "cd '" + dir.string() +
        "' && (" ANSATZ_TEST_BINARY
        " run pipeline.yaml --runs runs --set stages.0.train.epochs=100000 >out.txt 2>err.txt & pid=$!; "
        "for i in $(seq 600); do ls runs/small/*/checkpoints/stage1-epoch* >/dev/null 2>&1 && break; "
        "sleep 0.1; done; kill -" +
        signal + " $pid; wait $pid; echo $? >status.txt)";
    REQUIRE(std::system(script.c_str()) == 0);
    CHECK(read_text(dir / "status.txt") == "130\n");
    const std::string err = read_text(dir / "err.txt");
    CHECK(err.find("error: " + word + " during stage 1 (train), epoch ") != std::string::npos);
    CHECK(err.find("; the checkpoint of the last finished epoch is kept\n") != std::string::npos);
    const fs::path run = *fs::directory_iterator(dir / "runs" / "small");
    int complete = 0;
    for (const auto& entry : fs::directory_iterator(run / "checkpoints"))
    {
        CHECK(entry.path().filename().string().rfind("stage1-epoch", 0) == 0); // no ".tmp" folder
        complete +=
            fs::exists(entry.path() / "manifest.yaml") && fs::exists(entry.path() / "rbm.weights.npy");
    }
    CHECK(complete == 1);
}

} // namespace

TEST_CASE("an interrupt stops a run with status 130 and keeps the last finished checkpoint", "[cli][run]")
{
    check_stop_by_signal("interrupt", "INT", "interrupted");
}

TEST_CASE("SIGTERM stops a run like an interrupt, says so, and keeps the last finished checkpoint",
          "[cli][run]")
{
    check_stop_by_signal("terminate", "TERM", "terminated");
}

TEST_CASE("an interrupt that reaches the sampler between its sweeps inside a batch stops the run with the "
          "same sentence and status 130",
          "[cli][run]")
{
    // One Gibbs step of the loss is 10^9 sweeps: the signal comes while gibbs advances (it returns
    // ANSATZ_STATUS_CANCELLED between sweeps), not between batches.
    const fs::path dir = ansatz::test::fresh_folder("cli/interrupt_in_sampler");
    write_text(dir / "pipeline.yaml", small_pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images());
    const std::string script = "cd '" + dir.string() +
                               "' && (" ANSATZ_TEST_BINARY
                               " run pipeline.yaml --runs runs --set components.gibbs.steps=1000000000 "
                               ">out.txt 2>err.txt & pid=$!; sleep 1; kill -INT $pid; wait $pid; "
                               "echo $? >status.txt)";
    REQUIRE(std::system(script.c_str()) == 0);
    CHECK(read_text(dir / "status.txt") == "130\n");
    const std::string err = read_text(dir / "err.txt");
    INFO(err);
    CHECK(err.find("error: interrupted during stage 1 (train), epoch 1; the checkpoint of the last finished "
                   "epoch is kept\n") != std::string::npos);
    CHECK(err.find("was cancelled") == std::string::npos);
}

TEST_CASE("`ansatz validate` checks without running", "[cli]")
{
    const fs::path dir = ansatz::test::fresh_folder("cli/validate");
    write_text(dir / "pipeline.yaml", small_pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images());
    const auto r = run_ansatz({ "validate", "pipeline.yaml" }, dir);
    CHECK(r.status == 0);
    CHECK(r.out == "pipeline.yaml: valid pipeline 'small': 5 components, 2 stages\n");
    CHECK_FALSE(fs::exists(dir / "runs"));
}

TEST_CASE("`ansatz validate` accepts a sample stage of more sweeps than an int32 holds", "[cli]")
{
    // The stage advances its chains in slices of at most 1000 sweeps, so steps needs no maximum.
    const fs::path dir = ansatz::test::fresh_folder("cli/validate_steps");
    write_text(dir / "pipeline.yaml", small_pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images());
    const auto r =
        run_ansatz({ "validate", "pipeline.yaml", "--set", "stages.1.sample.steps=3000000000" }, dir);
    CHECK(r.status == 0);
    CHECK(r.out == "pipeline.yaml: valid pipeline 'small': 5 components, 2 stages\n");
}

TEST_CASE("a thread budget above the machine's cores is cut to them, with a warning, and recorded",
          "[cli][run]")
{
    const int cores = ansatz::engine::available_cores();
    if (cores >= 1024)
        return; // nothing to cut
    const fs::path dir = ansatz::test::fresh_folder("cli/threads_1024");
    write_text(dir / "pipeline.yaml", small_pipeline);
    write_text(dir / "images.idx", ansatz::test::square_images());
    const auto start = std::chrono::steady_clock::now();
    // With 1024 BLAS threads on 2 cores this ran for half an hour; it takes a second.
    const auto r =
        run_ansatz({ "run", "pipeline.yaml", "--runs", "runs", "--set", "threads=1024" }, dir, 300);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(seconds < 60);
    const std::string n = std::to_string(cores);
    CHECK(r.err.rfind("warning: threads: 1024 is more than the " + n + " core" + (cores == 1 ? "" : "s") +
                          " of this machine; using " + n + ".\n",
                      0) == 0);
    std::string folder = r.out;
    while (!folder.empty() && folder.back() == '\n')
        folder.pop_back();
    CHECK(read_text(dir / folder / "pipeline.yaml").find("\nthreads: " + n + "\n") != std::string::npos);
}

namespace
{

// The distinct grey levels of a PNG the engine wrote (8-bit grey, one IDAT, filter 0 on every row).
std::set<int> grey_levels(const std::string& png)
{
    const auto be32 = [&](size_t at) {
        return (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
               (uint32_t(uint8_t(png[at + 2])) << 8) | uint32_t(uint8_t(png[at + 3]));
    };
    const uint32_t width = be32(16), height = be32(20);
    const size_t idat = png.find("IDAT");
    REQUIRE(idat != std::string::npos);
    const uint32_t length = be32(idat - 4);
    std::string raw(size_t{ height } * (width + 1), '\0');
    uLongf size = static_cast<uLongf>(raw.size());
    REQUIRE(uncompress(reinterpret_cast<Bytef*>(raw.data()), &size,
                       reinterpret_cast<const Bytef*>(png.data() + idat + 4), length) == Z_OK);
    std::set<int> levels;
    for (uint32_t r = 0; r < height; ++r)
        for (uint32_t c = 0; c < width; ++c)
            levels.insert(uint8_t(raw[size_t{ r } * (width + 1) + 1 + c]));
    return levels;
}

} // namespace

TEST_CASE("the sample picture shows the visible means by default and the states with picture: states",
          "[cli][run]")
{
    const fs::path dir = ansatz::test::fresh_folder("picture");
    write_text(dir / "images.idx", ansatz::test::square_images());
    write_text(dir / "pipeline.yaml", R"(pipeline: picture
seed: 3
threads: 1
components:
  data:  {plugin: idx, images: images.idx, binarize: 0.5}
  rbm:   {plugin: rbm, hidden: 4, init_std: 0.5}
  gibbs: {plugin: gibbs}
stages:
  - sample: {model: rbm, sampler: gibbs, data: data, count: 16, steps: 5}
)");
    const auto means = run_ansatz({ "run", "pipeline.yaml", "--runs", "means" }, dir);
    const auto states = run_ansatz(
        { "run", "pipeline.yaml", "--runs", "states", "--set", "stages.0.sample.picture=states" }, dir);
    INFO(means.err << states.err);
    REQUIRE(means.status == 0);
    REQUIRE(states.status == 0);
    const fs::path a = fs::directory_iterator(dir / "means" / "picture")->path();
    const fs::path b = fs::directory_iterator(dir / "states" / "picture")->path();
    // States are 0 or 1: black, white and the grid's grey. Means take many levels in between.
    CHECK(grey_levels(read_text(b / "stage1_samples.png")).size() <= 3);
    CHECK(grey_levels(read_text(a / "stage1_samples.png")).size() > 10);
    // The samples are the same states either way: the picture draws from copies of the streams.
    CHECK(read_text(a / "stage1_samples.npy") == read_text(b / "stage1_samples.npy"));
}

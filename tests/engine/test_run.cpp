// A run and its stages against components that misbehave on purpose: what a plugin reports is
// checked before the engine sizes anything by it, components are destroyed in reverse creation
// order, and SIGINT/SIGTERM only ask a run to stop (a second one stops the program).
#include "ansatz/error.hpp"
#include "pipeline/pipeline.hpp"
#include "run/run.hpp"
#include "stages/stages.hpp"
#include "support/cli.hpp"
#include "support/plugins.hpp"
#include "user_error.hpp"

#include <catch2/catch.hpp>

#include <climits>
#include <csignal>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace ansatz::engine;

namespace
{

// ---- a fake dataset whose info() reports `reported_info`, and which logs its destruction
ansatz_dataset_info reported_info{};
std::vector<std::string> destroyed;

struct FakeDataset
{
    std::string name;
};

void* fake_create(const ansatz_config* config, const ansatz_host*, ansatz_status*)
{
    return new FakeDataset{ config->instance_name };
}

void fake_destroy(void* self)
{
    destroyed.push_back(static_cast<FakeDataset*>(self)->name);
    delete static_cast<FakeDataset*>(self);
}

int32_t fake_info(void*, ansatz_dataset_info* out, ansatz_status*)
{
    *out = reported_info;
    return ANSATZ_STATUS_OK;
}

int32_t fake_read(void*, const int64_t*, int64_t, ansatz_tensor* out, float*, ansatz_rng*, ansatz_status*)
{
    std::memset(out->data, 0, static_cast<size_t>(ansatz::element_count(*out)) * sizeof(float));
    return ANSATZ_STATUS_OK;
}

// ---- a fake optimizer that steps fine but cannot report its state
int32_t fake_bind(void*, const ansatz_named_tensor*, int32_t, ansatz_status*)
{
    return ANSATZ_STATUS_OK;
}

int32_t fake_step(void*, ansatz_named_tensor*, const ansatz_tensor*, int32_t, ansatz_status*)
{
    return ANSATZ_STATUS_OK;
}

int32_t fake_state(void*, ansatz_named_tensor*, int32_t, ansatz_status* st)
{
    ansatz::set_status(st, ANSATZ_STATUS_FAILURE, "its buffers are gone");
    return -1;
}

int32_t fake_set_state(void*, const ansatz_named_tensor*, int32_t, ansatz_status*)
{
    return ANSATZ_STATUS_OK;
}

ansatz_dataset_table make_dataset_table()
{
    ansatz_dataset_table t{};
    t.struct_size = sizeof t;
    t.info = fake_info;
    t.read = fake_read;
    return t;
}

ansatz_optimizer_table make_optimizer_table()
{
    ansatz_optimizer_table t{};
    t.struct_size = sizeof t;
    t.bind = fake_bind;
    t.step = fake_step;
    t.state = fake_state;
    t.set_state = fake_set_state;
    return t;
}

const ansatz_dataset_table dataset_table = make_dataset_table();
const ansatz_optimizer_table optimizer_table = make_optimizer_table();

ansatz_component make_component(int32_t kind, const char* name, const void* table)
{
    ansatz_component c{};
    c.struct_size = sizeof c;
    c.kind = kind;
    c.name = name;
    c.summary = "misbehaves on purpose";
    c.create = fake_create;
    c.destroy = fake_destroy;
    c.table = table;
    return c;
}

const ansatz_component dataset_desc = make_component(ANSATZ_KIND_DATASET, "fake_dataset", &dataset_table);
const ansatz_component optimizer_desc =
    make_component(ANSATZ_KIND_OPTIMIZER, "fake_optimizer", &optimizer_table);
const PluginComponent fake_dataset{ &dataset_desc, nullptr, "/fake/libfake.so", nullptr };
const PluginComponent fake_optimizer{ &optimizer_desc, nullptr, "/fake/libfake.so", nullptr };

ansatz_dataset_info info_of(std::vector<int64_t> shape, int64_t count)
{
    ansatz_dataset_info info{};
    info.struct_size = sizeof info;
    info.sample_rank = static_cast<int32_t>(shape.size());
    for (size_t i = 0; i < shape.size() && i < ANSATZ_MAX_RANK; ++i)
        info.sample_shape[i] = shape[i];
    info.count = count;
    return info;
}

// The message of the ansatz::Error (not a UserError: a plugin bug is a failure, exit 1) `body` throws.
template <class Body>
std::string error_of(Body&& body)
{
    try
    {
        body();
    }
    catch (const UserError& e)
    {
        return std::string("UserError: ") + e.what();
    }
    catch (const ansatz::Error& e)
    {
        return e.what();
    }
    return "nothing thrown";
}

// 8 images of 2 x 3 (unsigned bytes).
std::string idx_images()
{
    std::string s("\x00\x00\x08\x03\x00\x00\x00\x08\x00\x00\x00\x02\x00\x00\x00\x03", 16);
    for (int i = 0; i < 48; ++i)
        s += static_cast<char>(i * 37 % 256);
    return s;
}

// A validated pipeline of in-tree plugins (a train stage of rbm on `data`), in a fresh folder.
struct TestPipeline
{
    fs::path dir;
    Pipeline pipeline;
};

TestPipeline train_pipeline(const std::string& name)
{
    const fs::path dir = ansatz::test::fresh_folder("run/" + name);
    ansatz::test::write_text(dir / "images.idx", idx_images());
    const std::string text =
        "pipeline: " + name +
        "\ncomponents:\n  data: {plugin: idx, images: " + (dir / "images.idx").string() + "}\n" +
        "  rbm: {plugin: rbm, hidden: 3}\n"
        "  gibbs: {plugin: gibbs}\n"
        "  cd: {plugin: contrastive_divergence}\n"
        "  sgd: {plugin: sgd}\n"
        "stages:\n"
        "  - train: {model: rbm, data: data, loss: cd, sampler: gibbs, optimizer: sgd}\n";
    return { dir, validate_pipeline(Source::parse(text, "p.yaml"), ansatz::test::in_tree_plugins()) };
}

void use_plugin(Pipeline& p, const std::string& component, const PluginComponent& plugin)
{
    for (ComponentDecl& c : p.components)
        if (c.name == component)
            c.plugin = &plugin;
}

} // namespace

TEST_CASE("a dataset's info is checked before the engine sizes anything by it", "[run]")
{
    ConfigValues config;
    const Instance data(fake_dataset, config.c("data"), ansatz::test::test_host().table());
    const std::string who =
        "component 'data' (dataset 'fake_dataset' from /fake/libfake.so): its info() reported ";

    reported_info = info_of({ 2, 3 }, 8);
    CHECK(dataset_info(data).count == 8);
    reported_info = info_of({}, 0); // a dataset of scalars, empty: valid as info
    CHECK(dataset_info(data).count == 0);

    reported_info = info_of({ 2, 3 }, 8);
    reported_info.sample_rank = 100; // would overrun sample_shape[6]
    CHECK(error_of([&] { dataset_info(data); }) ==
          who + "a sample rank of 100, outside [0, 6] (a bug in the plugin).");
    reported_info.sample_rank = -1;
    CHECK(error_of([&] { dataset_info(data); }) ==
          who + "a sample rank of -1, outside [0, 6] (a bug in the plugin).");
    reported_info = info_of({ 2, 0 }, 8);
    CHECK(error_of([&] { dataset_info(data); }) ==
          who + "sample_shape[1] = 0; every extent must be > 0 (a bug in the plugin).");
    reported_info = info_of({ 1 << 16, 1 << 16 }, 8); // 2^32 values: overflows an int32 row
    CHECK(error_of([&] { dataset_info(data); }) ==
          who + "a sample shape of more than 2^31 - 1 values (a bug in the plugin).");
    reported_info = info_of({ INT64_MAX, INT64_MAX, 2 }, 8); // the product overflows int64
    CHECK(error_of([&] { dataset_info(data); }) ==
          who + "a sample shape of more than 2^31 - 1 values (a bug in the plugin).");
    reported_info = info_of({ 2, 3 }, -1);
    CHECK(error_of([&] { dataset_info(data); }) == who + "a count of -1 samples (a bug in the plugin).");
}

TEST_CASE("a train stage on an empty dataset is a user error naming the stage and the dataset", "[run]")
{
    TestPipeline t = train_pipeline("empty_dataset");
    use_plugin(t.pipeline, "data", fake_dataset);
    reported_info = info_of({ 2, 3 }, 0);
    HostServices host(1, 1);
    Run run(t.pipeline, host);
    run.preflight(true);
    CHECK(error_of([&] { run.execute(t.dir); }) ==
          "UserError: p.yaml:9:12: stage 1 (train): dataset 'data' is empty.");
}

TEST_CASE("a run destroys its components in reverse creation order", "[run]")
{
    // Named so that name order (a map's) and creation order disagree: b is created first.
    const fs::path dir = ansatz::test::fresh_folder("run/destroy_order");
    ansatz::test::write_text(dir / "images.idx", idx_images());
    const std::string idx = "{plugin: idx, images: " + (dir / "images.idx").string() + "}\n";
    Pipeline p = validate_pipeline(
        Source::parse("pipeline: order\ncomponents:\n  b: " + idx + "  a: " + idx + "  c: " + idx +
                          "  rbm: {plugin: rbm}\n  gibbs: {plugin: gibbs}\n"
                          "stages:\n  - sample: {model: rbm, sampler: gibbs, data: a}\n",
                      "p.yaml"),
        ansatz::test::in_tree_plugins());
    for (const std::string name : { "a", "b", "c" })
        use_plugin(p, name, fake_dataset);
    destroyed.clear();
    {
        HostServices host(1, 1);
        Run run(p, host);
        // Created when first asked for, in this order; never-used components are never created.
        run.instance("b");
        run.instance("a");
        run.instance("c");
    }
    CHECK(destroyed == std::vector<std::string>{ "c", "a", "b" });
}

TEST_CASE("the metrics sink copies each name and refuses bad names and more than 64 per call", "[run]")
{
    MetricsSink sink;
    const ansatz_metrics& m = *sink.c();
    {
        std::string temporary = "loss";
        CHECK(m.add(m.context, temporary.c_str(), 0.5) == 0);
        temporary = "overwritten"; // the host copied the name during the call
    }
    CHECK(m.add(m.context, "reconstruction_error.mean", 0.25) == 0);
    CHECK(sink.take() == std::vector<std::pair<std::string, double>>{
                             { "loss", 0.5 }, { "reconstruction_error.mean", 0.25 } });
    CHECK(sink.take().empty());
    CHECK(m.add(m.context, "", 1) == -1);
    CHECK(m.add(m.context, nullptr, 1) == -1);
    CHECK(m.add(m.context, "has space", 1) == -1);
    CHECK(m.add(m.context, "comma,breaks,csv", 1) == -1);
    CHECK(m.add(m.context, std::string(63, 'x').c_str(), 1) == 0);
    CHECK(m.add(m.context, std::string(64, 'x').c_str(), 1) == -1);
    sink.take();
    for (int i = 0; i < ANSATZ_MAX_METRICS; ++i)
        CHECK(m.add(m.context, ("m" + std::to_string(i)).c_str(), i) == 0);
    CHECK(m.add(m.context, "one_too_many", 1) == -1);
    CHECK(sink.take().size() == 64);
}

TEST_CASE("an optimizer that cannot give its state fails the checkpoint, naming the optimizer", "[run]")
{
    TestPipeline t = train_pipeline("optimizer_state");
    use_plugin(t.pipeline, "sgd", fake_optimizer);
    HostServices host(1, 1);
    Run run(t.pipeline, host);
    run.preflight(true);
    CHECK(error_of([&] { run.execute(t.dir); }) == "component 'sgd' (optimizer 'fake_optimizer' from "
                                                   "/fake/libfake.so): its buffers are gone");
    CHECK_FALSE(fs::exists(t.dir / "checkpoints" / "stage1-epoch1"));
}

TEST_CASE("the sample stage advances its chains in slices that fit advance()'s int32", "[run]")
{
    CHECK(sample_slice(1) == 1);
    CHECK(sample_slice(50) == 1);
    CHECK(sample_slice(1000) == 10);
    CHECK(sample_slice(100000) == 1000);
    // 429496729600 / 100 = 2^32: a plain int32 cast gave 0, "the sampler's configured steps".
    CHECK(sample_slice(429496729600) == 1000);
    CHECK(sample_slice(INT64_MAX) == 1000);
}

TEST_CASE("a stop signal is recorded, passed to the host, named, and the old handlers come back", "[run]")
{
    struct sigaction before_int = {};
    struct sigaction before_term = {};
    sigaction(SIGINT, nullptr, &before_int);
    sigaction(SIGTERM, nullptr, &before_term);
    Pipeline p;
    HostServices host(1, 1);
    Run run(p, host);
    {
        const StopSignals signals;
        CHECK(StopSignals::received() == 0);
        CHECK_FALSE(run.stop_requested());
        std::raise(SIGTERM); // handled: recorded, the test goes on
        CHECK(StopSignals::received() == SIGTERM);
        CHECK_FALSE(host.cancelled()); // seen by the run when it polls...
        CHECK(run.stop_requested());
        CHECK(host.cancelled()); // ...and passed on to the components' host
        CHECK(run.stop_word() == "terminated");
    }
    struct sigaction after_int = {};
    struct sigaction after_term = {};
    sigaction(SIGINT, nullptr, &after_int);
    sigaction(SIGTERM, nullptr, &after_term);
    CHECK(after_int.sa_handler == before_int.sa_handler);
    CHECK(after_term.sa_handler == before_term.sa_handler);
    {
        const StopSignals signals; // a new run forgets the earlier signal
        CHECK(StopSignals::received() == 0);
        CHECK(run.stop_word() == "interrupted");
    }
}

TEST_CASE("a second stop signal ends the program at once, by that signal", "[run]")
{
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0)
    {
        const StopSignals signals;
        std::raise(SIGINT);
        if (StopSignals::received() != SIGINT)
            _exit(3);
        std::raise(SIGINT);
        _exit(4); // not reached: the second SIGINT takes the default action
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGINT);
}

TEST_CASE("plugins see a signal through the host's cancelled() in the middle of a call", "[run][signals]")
{
    ansatz::engine::HostServices host(1, 1);
    std::atomic<int> flag{ 0 };
    host.watch(&flag);
    const ansatz_host* table = host.table();
    CHECK(table->cancelled(table->context) == 0);
    flag.store(SIGINT);
    CHECK(table->cancelled(table->context) == 1);
}

// run.hpp -- one run of a validated pipeline: its components, its folder and its metrics.
//
// Components are created when first used (what a component names first), so a later stage can read
// what an earlier one wrote, and destroyed in the reverse order (a sampler holds its model). A
// model's parameters are set up by the first stage that uses it, for the shape the model declares
// or, failing that, the shape of the stage's data.
#pragma once

#include "loading/instance.hpp"
#include "outputs/checkpoint.hpp"
#include "outputs/metrics_csv.hpp"
#include "pipeline/config_values.hpp"
#include "pipeline/pipeline.hpp"
#include "run/host_services.hpp"

#include <atomic>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <signal.h>
#include <string>
#include <vector>

namespace ansatz::engine
{

struct ModelState
{
    std::vector<int64_t> sample_shape;
    bool is_image = false;
    std::string shaped_by; // the dataset component that fixed the shape ("" for the model itself)
    int32_t domain = ANSATZ_DOMAIN_BINARY;
    int32_t categories = 0;
};

// SIGINT and SIGTERM ask a run to stop while they are installed: the handler only records the
// signal, and the stages see it between batches and slices (Run::stop_requested), so the last
// finished checkpoint is kept. A second signal stops the program at once, as if none were installed.
class StopSignals
{
public:
    // Installs the handlers and forgets any earlier signal.
    StopSignals();
    // Puts back the handlers that were there before.
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    // The first signal received while installed (SIGINT, SIGTERM), or 0.
    static int received();
    // The flag itself, for HostServices::watch.
    static const std::atomic<int>& flag();

private:
    // Filled by the constructor's sigaction().
    struct sigaction previous_interrupt_;
    struct sigaction previous_terminate_;
};

class Run
{
public:
    Run(const Pipeline& pipeline, HostServices& host);
    ~Run();
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;

    // Before the run folder exists: creates what the first stage uses (so bad data files are found
    // before any output exists, when `create_first_stage`), and checks that every stage's model has a
    // sample shape (its own, from a stage's data, or from an earlier stage's).
    void preflight(bool create_first_stage);
    // Runs every stage in order, writing into `folder`; with `resume`, goes on from that checkpoint.
    void execute(const std::filesystem::path& folder, const Checkpoint* resume = nullptr);

    const Pipeline& pipeline() const { return pipeline_; }
    // A hash of the resolved pipeline: a checkpoint records it, and --resume compares.
    const std::string& fingerprint() const { return fingerprint_; }
    HostServices& host() { return host_; }
    const std::filesystem::path& folder() const { return folder_; }
    MetricsCsv& metrics() { return *metrics_; }
    // The component `name`, created the first time it is asked for (after what it names).
    Instance& instance(const std::string& name);
    // Whether `name` has been created already.
    bool created(const std::string& name) const { return instance_index_.count(name) != 0; }

    // Sets up `model` (the first time) for the shape it declares or, failing that, for the samples of
    // `dataset` ("" for none); later calls check that the dataset agrees.
    void prepare_model(const std::string& model, const std::string& dataset, const StageDecl& stage);
    const ModelState& model_state(const std::string& model) const;

    // A checkpoint of everything: every set-up model's parameters, every created component's state,
    // the metrics so far, and `engine` (the running stage's own state).
    Checkpoint snapshot(size_t stage, int64_t epoch, const std::vector<ansatz_named_tensor>& engine);
    // While a resumed stage starts: the checkpoint it goes on from (nullptr otherwise).
    const Checkpoint* resuming(size_t stage) const;
    // When `stage` is the resumed one: applies the saved state of every component it uses (those its
    // keys name and those they name in turn), after the stage has bound them (abi.h lifecycle).
    void restore_bound_state(const StageDecl& stage);

    // True once the run should stop: a signal arrived (see StopSignals) or a cancel was requested.
    // A signal is passed on to the host, so that components see it too.
    bool stop_requested();
    // How a stop is reported: "terminated" after SIGTERM, "interrupted" otherwise.
    std::string stop_word() const;

private:
    void restore(const Checkpoint& checkpoint);
    void restore_state(const std::string& component);
    void setup_model(const std::string& model, const ModelState& state);

    const Pipeline& pipeline_;
    HostServices& host_;
    std::filesystem::path folder_;
    std::unique_ptr<MetricsCsv> metrics_;
    std::deque<ConfigValues> configs_;
    std::vector<std::unique_ptr<Instance>> instances_; // in creation order
    std::map<std::string, size_t> instance_index_;
    std::vector<std::string> creating_; // guards against a circle of references
    std::map<std::string, ModelState> models_;
    const Checkpoint* resume_ = nullptr;
    std::string fingerprint_;
    std::map<std::string, std::vector<ansatz_named_tensor>> pending_state_;
};

// Shared by the stages.

// The dataset's info, checked: a rank outside [0, ANSATZ_MAX_RANK], an extent <= 0, a sample of
// more than 2^31 - 1 values or a negative count is a bug in the plugin (an Error naming it).
ansatz_dataset_info dataset_info(const Instance& dataset);
std::vector<ansatz_named_tensor> model_parameters(const Instance& model);
int64_t flat_size(const std::vector<int64_t>& shape);

} // namespace ansatz::engine

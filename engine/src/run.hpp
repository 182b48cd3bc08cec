// run.hpp -- one run of a validated pipeline: its components, its folder and its metrics.
//
// Components are created in the order the pipeline declares them, after validation, and destroyed
// in the reverse order (a sampler holds its model); a model's parameters are set up by the first
// stage that gives it data (the sample shape comes from there).
#pragma once

#include "config_values.hpp"
#include "host_services.hpp"
#include "instance.hpp"
#include "outputs/metrics_csv.hpp"
#include "pipeline.hpp"

#include <atomic>
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
    bool set_up = false;
    std::vector<int64_t> sample_shape;
    bool is_image = false;
    std::string shaped_by; // the dataset component that fixed the shape
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

    // Creates every component (bad data files are found here, before any output exists).
    void create_components();
    // Runs every stage in order, writing into `folder`.
    void execute(const std::filesystem::path& folder);

    const Pipeline& pipeline() const { return pipeline_; }
    HostServices& host() { return host_; }
    const std::filesystem::path& folder() const { return folder_; }
    MetricsCsv& metrics() { return *metrics_; }
    Instance& instance(const std::string& name);

    // Sets up `model` for the samples of `dataset` (the first time) or checks that they agree.
    void prepare_model(const std::string& model, const std::string& dataset, const StageDecl& stage);
    const ModelState& model_state(const std::string& model) const;

    // True once the run should stop: a signal arrived (see StopSignals) or a cancel was requested.
    // A signal is passed on to the host, so that components see it too.
    bool stop_requested();
    // How a stop is reported: "terminated" after SIGTERM, "interrupted" otherwise.
    std::string stop_word() const;

private:
    const Pipeline& pipeline_;
    HostServices& host_;
    std::filesystem::path folder_;
    std::unique_ptr<MetricsCsv> metrics_;
    std::vector<ConfigValues> configs_;
    std::vector<std::unique_ptr<Instance>> instances_; // in creation order
    std::map<std::string, size_t> instance_index_;
    std::map<std::string, ModelState> models_;
};

// Shared by the stages.

// The dataset's info, checked: a rank outside [0, ANSATZ_MAX_RANK], an extent <= 0, a sample of
// more than 2^31 - 1 values or a negative count is a bug in the plugin (an Error naming it).
ansatz_dataset_info dataset_info(const Instance& dataset);
// The metrics a component reported, checked: a count outside [0, ANSATZ_MAX_METRICS] or an item
// without a name is a bug in the plugin (an Error naming it).
std::vector<std::pair<std::string, double>> checked_metrics(const Instance& from, const ansatz_metrics& m);
std::vector<ansatz_named_tensor> model_parameters(const Instance& model);
int64_t flat_size(const std::vector<int64_t>& shape);

} // namespace ansatz::engine

// run.hpp -- one run of a validated pipeline: its components, its folder and its metrics.
//
// Components are created in the order the pipeline declares them, after validation; a model's
// parameters are set up by the first stage that gives it data (the sample shape comes from there).
#pragma once

#include "config_values.hpp"
#include "host_services.hpp"
#include "instance.hpp"
#include "outputs/metrics_csv.hpp"
#include "pipeline.hpp"

#include <filesystem>
#include <map>
#include <memory>
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

class Run
{
public:
    Run(const Pipeline& pipeline, HostServices& host);

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

private:
    const Pipeline& pipeline_;
    HostServices& host_;
    std::filesystem::path folder_;
    std::unique_ptr<MetricsCsv> metrics_;
    std::vector<ConfigValues> configs_;
    std::map<std::string, std::unique_ptr<Instance>> instances_;
    std::map<std::string, ModelState> models_;
};

// Shared by the stages.
ansatz_dataset_info dataset_info(const Instance& dataset);
std::vector<ansatz_named_tensor> model_parameters(const Instance& model);
int64_t flat_size(const std::vector<int64_t>& shape);

} // namespace ansatz::engine

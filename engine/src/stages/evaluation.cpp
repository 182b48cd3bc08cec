// Evaluators measure a model on every row of a dataset (abi.h, evaluators). The rows are read once
// per stage, so every evaluation of a train stage sees the same binarisation of the same images.
#include "stages/evaluation.hpp"

#include "ansatz/component.hpp"
#include "run/host_services.hpp"
#include "run/run.hpp"
#include "user_error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace ansatz::engine
{

Evaluation::Evaluation(Run& run, const StageDecl& stage, const std::string& model, const std::string& data,
                       std::vector<std::string> evaluators, std::string stream_prefix)
    : run_(run), stage_(stage), model_(model), evaluators_(std::move(evaluators)),
      prefix_(std::move(stream_prefix))
{
    Instance& dataset = run.instance(data);
    const int64_t count = dataset_info(dataset).count;
    const int64_t dim = flat_size(run.model_state(model).sample_shape);
    if (count == 0)
        throw UserError(run.pipeline().source.where(stage.node) + ": " + stage.label() + ": dataset '" +
                        data + "' is empty, so there is nothing to evaluate the model on.");
    // The evaluators get the data whole: refuse what the machine cannot hold, naming the dataset.
    Host(run.host().table())
        .require_memory(4.0 * static_cast<double>(count) * static_cast<double>(dim),
                        stage.label() + ": evaluating on dataset '" + data + "' (" + std::to_string(count) +
                            " samples of " + std::to_string(dim) + " values)");
    rows_.resize(static_cast<size_t>(count * dim));
    data_ = make_view(rows_.data(), { count, dim });
    std::vector<int64_t> indices(static_cast<size_t>(count));
    std::iota(indices.begin(), indices.end(), 0);
    Rng rng = run.host().stream(prefix_ + ".data");
    ansatz_status st{};
    dataset.check(
        dataset.dataset().read(dataset.self(), indices.data(), count, &data_, nullptr, &rng.state(), &st),
        st);

    const ansatz_model_handle handle = run.instance(model).model();
    for (const std::string& name : evaluators_)
    {
        Instance& evaluator = run.instance(name);
        evaluator.check(evaluator.evaluator().bind(evaluator.self(), &handle, &st), st);
    }
}

std::vector<std::pair<std::string, double>> Evaluation::run(
    const std::string& suffix, const std::vector<std::pair<std::string, double>>& taken)
{
    std::vector<std::pair<std::string, double>> out;
    const auto used = [&](const std::string& name) {
        const auto same = [&](const auto& m) { return m.first == name; };
        return std::any_of(taken.begin(), taken.end(), same) || std::any_of(out.begin(), out.end(), same);
    };
    MetricsSink sink;
    for (const std::string& name : evaluators_)
    {
        if (run_.stop_requested())
            throw Error(run_.stop_word() + " during " + stage_.label(), ANSATZ_STATUS_CANCELLED);
        Instance& evaluator = run_.instance(name);
        Rng rng = run_.host().stream(prefix_ + "." + name + suffix);
        ansatz_status st{};
        evaluator.check(evaluator.evaluator().evaluate(evaluator.self(), &data_, &rng.state(), sink.c(), &st),
                        st);
        // A name already in the row gets the evaluator's prefix, and so does the standard error of a
        // prefixed metric (x_stderr stays beside its x: "ais.log_likelihood", "ais.log_likelihood_stderr").
        const auto metrics = sink.take();
        std::vector<std::string> prefixed;
        for (const auto& [metric, value] : metrics)
            if (used(metric))
                prefixed.push_back(metric);
        const auto prefix = [&](const std::string& metric) {
            const auto is = [&](const std::string& m) {
                return std::find(prefixed.begin(), prefixed.end(), m) != prefixed.end();
            };
            const size_t n = metric.size();
            return is(metric) ||
                   (n > 7 && metric.compare(n - 7, 7, "_stderr") == 0 && is(metric.substr(0, n - 7)));
        };
        for (const auto& [metric, value] : metrics)
            out.emplace_back(prefix(metric) ? name + "." + metric : metric, value);
    }
    return out;
}

std::string Evaluation::summary(const std::vector<std::pair<std::string, double>>& metrics)
{
    const auto stderr_of = [&](const std::string& name) -> const double* {
        for (const auto& [n, v] : metrics)
            if (n == name + "_stderr")
                return &v;
        return nullptr;
    };
    std::string out;
    for (const auto& [name, value] : metrics)
    {
        if (name.size() > 7 && name.compare(name.size() - 7, 7, "_stderr") == 0 &&
            std::any_of(metrics.begin(), metrics.end(),
                        [&](const auto& m) { return m.first == name.substr(0, name.size() - 7); }))
            continue; // shown as "+-" beside its metric
        char buffer[160];
        if (const double* err = stderr_of(name))
            std::snprintf(buffer, sizeof buffer, "%s = %.6g +- %.2g", name.c_str(), value, *err);
        else
            std::snprintf(buffer, sizeof buffer, "%s = %.6g", name.c_str(), value);
        out += (out.empty() ? "" : ", ") + std::string(buffer);
    }
    return out;
}

} // namespace ansatz::engine

// The evaluate stage: evaluators measure a model on every row of a dataset; one row of metrics.csv.
#include "pipeline/pipeline.hpp"
#include "run/run.hpp"
#include "stages/evaluation.hpp"
#include "stages/stages.hpp"

#include <cstdio>

namespace ansatz::engine
{

void check_evaluate_stage(const Pipeline&, const StageDecl&)
{
    // The keys' own checks (kinds, what each evaluator needs of the model) say it all.
}

void run_evaluate_stage(Run& run, const StageDecl& stage)
{
    const std::string model = stage.text("model");
    const std::string data = stage.text("data");
    run.prepare_model(model, data, stage);
    const std::string prefix = "stages." + std::to_string(stage.index) + ".evaluate";
    Evaluation evaluation(run, stage, model, data, stage.values.at("evaluators").texts, prefix);
    const auto metrics = evaluation.run("");
    run.metrics().add(stage.index, stage.type, 0, metrics);
    std::fprintf(stderr, "evaluate [stage %zu] model '%s' on '%s': %s\n", stage.index, model.c_str(),
                 data.c_str(), Evaluation::summary(metrics).c_str());
}

} // namespace ansatz::engine

// The evaluate stage: evaluators measure a model on every row of a dataset; one row of metrics.csv.
#include "pipeline/pipeline.hpp"
#include "run/run.hpp"
#include "stages/evaluation.hpp"
#include "stages/stages.hpp"
#include "user_error.hpp"

#include <cstdio>

namespace ansatz::engine
{

// Beyond the keys' own checks (kinds, what each evaluator needs of the model): the comparison's keys.
void check_evaluate_stage(const Pipeline& p, const StageDecl& s)
{
    const auto where = [&](const std::string& key) {
        const Value& v = s.values.at(key);
        return p.source.where(v.node.IsDefined() && !v.node.IsNull() ? v.node : s.node) + ": " + s.label();
    };
    for (const char* key : { "series", "x_label" })
        if (s.has(key) && !s.has("x"))
            throw UserError(
                where(key) + ": key " + key +
                " needs key x, this measurement's place on the comparison's x axis (e.g. x: 2.269)");
    if (!s.has("x"))
        return;
    for (const char* key : { "series", "x_label" })
        if (s.has(key) && s.text(key).empty())
            throw UserError(where(key) + ": " + key + " is empty; give it a name or leave the key out");
    // One comparison has one x axis: every stage that names it names it alike.
    if (!s.has("x_label"))
        return;
    for (const StageDecl& other : p.stages)
        if (other.index < s.index && other.type == "evaluate" && other.has("x_label") &&
            other.text("x_label") != s.text("x_label"))
            throw UserError(where("x_label") + ": x_label '" + s.text("x_label") + "' differs from " +
                            other.label() + "'s '" + other.text("x_label") +
                            "'; the comparison has one x axis");
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

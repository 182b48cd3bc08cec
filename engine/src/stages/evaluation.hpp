// evaluation.hpp -- runs evaluators on a model and a dataset: the `evaluate` stage and a train stage's
// `evaluate_every` share it.
#pragma once

#include "ansatz/abi.h"

#include <string>
#include <utility>
#include <vector>

namespace ansatz::engine
{

class Run;
struct StageDecl;

class Evaluation
{
public:
    // Reads every row of `data` once (from the stream "<stream_prefix>.data"), for a model already
    // set up, and binds each evaluator to it.
    Evaluation(Run& run, const StageDecl& stage, const std::string& model, const std::string& data,
               std::vector<std::string> evaluators, std::string stream_prefix);

    // Runs every evaluator; evaluator `e` draws from "<stream_prefix>.<e><suffix>", so a resumed run
    // evaluates as one that never stopped. Returns the metrics in the order reported; a name already
    // in `taken` (or reported by an earlier evaluator) is prefixed "<evaluator>.".
    std::vector<std::pair<std::string, double>> run(
        const std::string& suffix, const std::vector<std::pair<std::string, double>>& taken = {});

    // "ais: log_likelihood = -219.31 +- 0.42, log_z = 412.7 +- 0.4" for the console.
    static std::string summary(const std::vector<std::pair<std::string, double>>& metrics);

private:
    Run& run_;
    const StageDecl& stage_;
    std::string model_;
    std::vector<std::string> evaluators_;
    std::string prefix_;
    std::vector<float> rows_;
    ansatz_tensor data_{};
};

} // namespace ansatz::engine

// stages.hpp -- the checks and runners of the engine's stages (listed in stage_types.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ansatz::engine
{

class Run;
struct Pipeline;
struct StageDecl;

// Each stage type's own validation rules and its runner.
void check_train_stage(const Pipeline& pipeline, const StageDecl& stage);
void run_train_stage(Run& run, const StageDecl& stage);
void check_sample_stage(const Pipeline& pipeline, const StageDecl& stage);
void run_sample_stage(Run& run, const StageDecl& stage);
// stage<i>_samples.npy: a later component may read it as $run/stage<i>_samples.npy.
std::vector<std::string> sample_writes(const StageDecl& stage);
// The sweeps before the sample stage records its traces (its burn_in key, or half its steps).
int64_t sample_burn_in(const StageDecl& stage);
void check_generate_stage(const Pipeline& pipeline, const StageDecl& stage);
void run_generate_stage(Run& run, const StageDecl& stage);
// <to>.npy and <to>.beta.npy.
std::vector<std::string> generate_writes(const StageDecl& stage);
void check_evaluate_stage(const Pipeline& pipeline, const StageDecl& stage);
void run_evaluate_stage(Run& run, const StageDecl& stage);
void check_load_stage(const Pipeline& pipeline, const StageDecl& stage);
void run_load_stage(Run& run, const StageDecl& stage);
void check_latent_stage(const Pipeline& pipeline, const StageDecl& stage);
void run_latent_stage(Run& run, const StageDecl& stage);
// With the model created (before any output): keys that need a 2-D latent (manifold, scatter).
void check_latent_model(Run& run, const StageDecl& stage);

// The sweeps the sample stage asks of one advance() call, for `steps` in all (at least 1, at most
// 1000: an int32 whatever `steps` is, and a stop request is seen between calls).
int64_t sample_slice(int64_t steps);

} // namespace ansatz::engine

// stages.hpp -- the runners of the engine's stages (declared in stage_types.cpp).
#pragma once

#include <cstdint>

namespace ansatz::engine
{

class Run;
struct StageDecl;

void run_train_stage(Run& run, const StageDecl& stage);
void run_sample_stage(Run& run, const StageDecl& stage);

// The sweeps the sample stage asks of one advance() call, for `steps` in all (at least 1, at most
// 1000: an int32 whatever `steps` is, and a stop request is seen between calls).
int64_t sample_slice(int64_t steps);

} // namespace ansatz::engine

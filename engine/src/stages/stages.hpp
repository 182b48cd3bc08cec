// stages.hpp -- the runners of the engine's stages (declared in stage_types.cpp).
#pragma once

namespace ansatz::engine
{

class Run;
struct StageDecl;

void run_train_stage(Run& run, const StageDecl& stage);
void run_sample_stage(Run& run, const StageDecl& stage);

} // namespace ansatz::engine

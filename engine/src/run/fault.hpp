// fault.hpp -- named points where a test can have the engine killed (SIGKILL) to prove that no
// moment of a crash loses finished work. ANSATZ_FAULT=NAME:N kills the process at the N-th time
// NAME is reached (1-based). Unset (always, outside tests), a point costs one comparison.
#pragma once

namespace ansatz::engine
{

// Points: "batch" (after a train batch's step), "checkpoint-write" (after the first file of a
// checkpoint), "checkpoint-swap" (the new checkpoint in place, the old not yet removed),
// "checkpoint-remove" (the old one renamed away, not yet deleted).
void fault_point(const char* name);

} // namespace ansatz::engine

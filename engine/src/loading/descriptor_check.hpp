// descriptor_check.hpp -- everything the engine checks of a plugin's descriptor before it trusts it:
// versions and sizes, every component's table (no NULL function where the kind needs one, capability
// bits that match the sub-tables) and every parameter spec. A plugin that fails gets one sentence.
#pragma once

#include "ansatz/abi.h"

#include <string>

namespace ansatz::engine
{

// The reason to refuse the descriptor, or "" if it is fit to load.
std::string descriptor_refusal(const ansatz_plugin_desc* desc);

// Arrays are stepped through by the element size the plugin was built with (abi.h: a newer minor's
// structs may be larger than this engine's).
const ansatz_component& component_at(const ansatz_plugin_desc& desc, int32_t i);
const ansatz_param_spec& param_at(const ansatz_component& component, int32_t i);

} // namespace ansatz::engine

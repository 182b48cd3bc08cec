// stage_types.hpp -- the engine's own stages: their keys (validated like a plugin's) and their runners.
#pragma once

#include "pipeline/keys.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ansatz::engine
{

class Run;
struct Pipeline;
struct StageDecl;

struct StageType
{
    std::string name;
    std::string summary;
    std::vector<KeySpec> keys;
    // The stage's own rules, beyond its keys' types and references (UserError at the stage's node);
    // called while validating, before any component exists.
    void (*check)(const Pipeline& pipeline, const StageDecl& stage);
    void (*run)(Run& run, const StageDecl& stage);
    // The files (relative to the run folder) the stage writes that a later component may read as
    // "$run/FILE"; nullptr: none.
    std::vector<std::string> (*writes)(const StageDecl& stage) = nullptr;
};

const std::vector<StageType>& stage_types();
const StageType* find_stage_type(const std::string& name);

// Builders for the engine's key declarations.
KeySpec component_key(const std::string& name, int32_t kind, bool required, const std::string& doc);
// A list of names of components of `kind` (at least one item).
KeySpec component_list_key(const std::string& name, int32_t kind, bool required, const std::string& doc);
// An int >= min and, with a max, <= max.
KeySpec int_key(const std::string& name, int64_t default_value, int64_t min, const std::string& doc,
                std::optional<int64_t> max = std::nullopt);
// An int >= min (and <= max, with a max) that may be absent (no default written into the resolved
// pipeline).
KeySpec optional_int_key(const std::string& name, int64_t min, const std::string& doc,
                         std::optional<int64_t> max = std::nullopt);
// A required path that must exist, relative to the pipeline file.
KeySpec path_key(const std::string& name, const std::string& doc);
// An optional list (at least one item) of doubles >= min (> min if min_exclusive).
KeySpec reals_key(const std::string& name, double min, bool min_exclusive, const std::string& doc);
// A required string.
KeySpec string_key(const std::string& name, const std::string& doc);
// A string or a double that may be absent.
KeySpec optional_text_key(const std::string& name, const std::string& doc);
KeySpec optional_real_key(const std::string& name, const std::string& doc);
KeySpec bool_key(const std::string& name, bool default_value, const std::string& doc);
KeySpec choice_key(const std::string& name, const std::string& choices, const std::string& default_value,
                   const std::string& doc);

} // namespace ansatz::engine

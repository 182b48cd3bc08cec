// keys.hpp -- validates a YAML mapping against declared keys: unknown keys (with "did you mean"),
// types, ranges, choices and missing keys, each reported with file:line:column. One mechanism for
// plugins' parameters and the engine's own stage keys.
#pragma once

#include "ansatz/abi.h"
#include "pipeline/config_values.hpp"
#include "pipeline/source.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ansatz::engine
{

struct KeySpec
{
    std::string name;
    int32_t type = ANSATZ_PARAM_STRING;
    uint32_t flags = 0;
    std::string default_value; // YAML text; meaningful unless REQUIRED or OPTIONAL
    std::string choices;       // '|' separated
    double min = 0, max = 0;
    std::string doc;
    int32_t component_kind = 0;             // COMPONENT: the kind it names
    uint64_t component_needs = 0;           // COMPONENT naming a model: the functions it must have
    int64_t min_length = 0, max_length = 0; // lists; 0: no bound

    static KeySpec from(const ansatz_param_spec& spec);
    bool required() const { return flags & ANSATZ_PARAM_REQUIRED; }
    bool optional() const { return flags & ANSATZ_PARAM_OPTIONAL; }
    // "int >= 1, default 64", for messages and `ansatz describe`.
    std::string summary() const;
    std::string type_name() const;
    bool is_list() const
    {
        return type == ANSATZ_PARAM_INT_LIST || type == ANSATZ_PARAM_FLOAT_LIST ||
               type == ANSATZ_PARAM_STRING_LIST;
    }
};

std::vector<KeySpec> key_specs(const ansatz_component& component);

struct Value
{
    bool present = false;
    int32_t type = 0;
    int64_t integer = 0;
    double real = 0;
    std::string text;               // also a COMPONENT's name
    std::vector<int64_t> integers;  // INT_LIST
    std::vector<double> reals;      // FLOAT_LIST
    std::vector<std::string> texts; // STRING_LIST
    YAML::Node node;                // where it came from (null for a default)
};

using Values = std::map<std::string, Value>;

// A PATH value that begins with "$run/" names a file of the run folder (written by an earlier stage,
// e.g. a generate stage's dataset): it is kept as written while validating and resolved when the
// run creates the component.
inline constexpr const char* run_folder_prefix = "$run/";
inline bool is_run_path(const std::string& text)
{
    return text.size() > 5 && text.compare(0, 5, run_folder_prefix) == 0;
}

// Validates `map` (a YAML mapping) against specs; keys in `ignored` are skipped (e.g. "plugin").
// `what` names the owner ("sampler 'gibbs'"), `context` is the trailing "while ..." line.
Values validate_keys(const Source& source, const YAML::Node& map, const std::vector<KeySpec>& specs,
                     const std::string& what, const std::string& context,
                     const std::vector<std::string>& ignored = {});

// The C configuration of the values (paths already resolved); `handle` gives the created component a
// COMPONENT key names.
ConfigValues to_config(const std::vector<KeySpec>& specs, const Values& values,
                       const std::function<ansatz_handle(const std::string&)>& handle = {});

// The value as YAML text (for the resolved pipeline).
YAML::Node to_yaml(const Value& value);

// The closest of candidates within a small edit distance, or "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

// Builds a component's configuration from `key: value` YAML text (tests and tools): the same
// validation and defaults as a pipeline.
ConfigValues config_from_yaml(const ansatz_component& component, const std::string& yaml_text);

} // namespace ansatz::engine

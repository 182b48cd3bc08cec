// pipeline.hpp -- a pipeline file validated against the plugins that were found (DESIGN.md §4-5).
//
// Everything is checked before any component exists: top-level keys, each component's keys against
// its plugin's schema (defaults filled in), each stage's keys, the references between stages and
// components, their kinds and the model functions a sampler or loss needs. The first
// problem is thrown as a UserError with file:line:column.
#pragma once

#include "loading/registry.hpp"
#include "pipeline/keys.hpp"
#include "pipeline/source.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace ansatz::engine
{

struct ComponentDecl
{
    std::string name;
    const PluginComponent* plugin = nullptr;
    std::vector<KeySpec> specs;
    Values values;
    YAML::Node node;
};

struct StageDecl
{
    std::string type;
    size_t index = 0; // 1-based position in `stages:`
    Values values;
    YAML::Node node;

    const std::string& text(const std::string& key) const { return values.at(key).text; }
    int64_t integer(const std::string& key) const { return values.at(key).integer; }
    bool has(const std::string& key) const { return values.at(key).present; }
    // "stage 2 (sample)"
    std::string label() const { return "stage " + std::to_string(index) + " (" + type + ")"; }
};

struct Pipeline
{
    Source source;
    std::string name;
    uint64_t seed = 0;
    int threads = 1;
    std::vector<ComponentDecl> components;
    std::vector<StageDecl> stages;

    const ComponentDecl& component(const std::string& name) const;
    bool has_component(const std::string& name) const;
    // The pipeline as it will run: every default filled in, paths resolved.
    YAML::Node resolved() const;
};

// The pipeline's own plugin folders (plugin_paths:, relative to the file), checked.
std::vector<std::filesystem::path> pipeline_plugin_paths(const Source& source);

Pipeline validate_pipeline(Source source, const Registry& registry);

// The ansatz_model_function bits a model component's static table fills (0 for other kinds).
uint64_t model_functions_of(const ansatz_component& model);
// Refuses (UserError at the key) a stage whose component under `key` needs functions `model_name` lacks.
void require_model_functions(const Pipeline& p, const StageDecl& s, const std::string& key,
                             const std::string& model_name);
// The same for the component `user` (an item of a list key such as `evaluators`), blamed at `node`.
void require_model_functions(const Pipeline& p, const StageDecl& s, const std::string& user_name,
                             const YAML::Node& node, const std::string& model_name);

// The components a stage's keys name (a list key's items too).
std::vector<std::string> stage_components(const StageDecl& stage);
// The components a stage uses: those its keys name and, through their component keys, those they
// name (a wrapping sampler's inner one), each once.
std::vector<std::string> stage_closure(const Pipeline& p, const StageDecl& stage);

// "a sampler", "an optimizer": for messages that name a kind.
std::string with_article(const std::string& word);

} // namespace ansatz::engine

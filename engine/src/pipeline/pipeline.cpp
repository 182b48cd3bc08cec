#include "pipeline/pipeline.hpp"

#include "ansatz/refs.hpp"
#include "run/host_services.hpp"
#include "stages/stage_types.hpp"
#include "user_error.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace ansatz::engine
{

namespace fs = std::filesystem;

namespace
{

const std::vector<std::string> top_level_keys = { "pipeline",     "seed",       "threads",
                                                  "plugin_paths", "components", "stages" };

// Letters, digits, '_', '-' (and '.' if allowed), not starting with '.': a pipeline's name names a
// folder, so neither '.' nor '..' nor a '/'.
bool is_name(const std::string& s, bool allow_dot)
{
    if (s.empty() || s.size() > 100 || s[0] == '.')
        return false;
    return std::all_of(s.begin(), s.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || (allow_dot && c == '.');
    });
}

// Thread budgets above this are surely typos (and would overflow OpenBLAS's int).
constexpr int64_t max_threads = 1024;

class Validator
{
public:
    Validator(Pipeline& p, const Registry& r) : p_(p), registry_(r) {}

    void run()
    {
        const YAML::Node& root = p_.source.root();
        for (const auto& item : root)
        {
            const std::string key = item.first.Scalar();
            if (std::find(top_level_keys.begin(), top_level_keys.end(), key) == top_level_keys.end())
            {
                const std::string guess = closest(key, top_level_keys);
                fail(item.first,
                     "unknown top-level key '" + key + "'" +
                         (guess.empty() ? "" : " (did you mean '" + guess + "'?)") +
                         "\n  valid keys: pipeline, seed, threads, plugin_paths, components, stages");
            }
        }
        top_level();
        components();
        component_references();
        stages();
        run_folder_paths();
    }

private:
    [[noreturn]] void fail(const YAML::Node& at, const std::string& message) const
    {
        throw UserError(p_.source.where(at) + ": " + message);
    }

    void top_level()
    {
        const YAML::Node& root = p_.source.root();
        const YAML::Node name = root["pipeline"];
        if (!name)
            fail(root,
                 "missing required key 'pipeline' (the run's name, which names its folder under runs/)");
        if (!name.IsScalar() || !is_name(name.Scalar(), true))
            fail(name, "key 'pipeline' must be a name of letters, digits, '_', '-' or '.', got " +
                           (name.IsScalar() ? "'" + name.Scalar() + "'" : std::string("a mapping or list")));
        p_.name = name.Scalar();

        const std::vector<KeySpec> numbers = {
            int_key("seed", 0, 0, "seed of every random stream of the run"),
            int_key("threads", std::min<int64_t>(available_cores(), max_threads), 1,
                    "thread budget shared by BLAS and the engine", max_threads)
        };
        const Values values = validate_keys(p_.source, root, numbers, "the pipeline", "",
                                            { "pipeline", "plugin_paths", "components", "stages" });
        p_.seed = static_cast<uint64_t>(values.at("seed").integer);
        p_.threads = static_cast<int>(values.at("threads").integer);

        if (!root["components"])
            fail(root, "missing required key 'components' (a mapping from names to plugin instances)");
        if (!root["components"].IsMap() || root["components"].size() == 0)
            fail(root["components"],
                 "'components' must be a non-empty mapping from names to plugin instances, "
                 "e.g. rbm: {plugin: rbm, hidden: 64}");
        if (!root["stages"])
            fail(root,
                 "missing required key 'stages' (a list of stages to run in order, e.g. - train: {...})");
        if (!root["stages"].IsSequence() || root["stages"].size() == 0)
            fail(root["stages"], "'stages' must be a non-empty list, e.g. - train: {model: rbm, ...}");
    }

    void components()
    {
        for (const auto& item : p_.source.root()["components"])
        {
            ComponentDecl c;
            c.name = item.first.Scalar();
            c.node = item.second;
            // No '.': it separates the parts of a --set key path, so components.a.b could not be set.
            if (!is_name(c.name, false))
                fail(item.first, "component name '" + c.name + "' must be letters, digits, '_' or '-'");
            if (!c.node.IsMap())
                fail(c.node,
                     "component '" + c.name + "' must be a mapping with a 'plugin' key, e.g. {plugin: rbm}");
            const YAML::Node plugin = c.node["plugin"];
            if (!plugin)
                fail(c.node,
                     "component '" + c.name + "' has no 'plugin' key; known plugins: " + known_plugins());
            if (!plugin.IsScalar())
                fail(plugin, "key 'plugin' of component '" + c.name + "' must be a plugin name");
            c.plugin = registry_.find(plugin.Scalar());
            if (!c.plugin)
            {
                const std::string guess = closest(plugin.Scalar(), registry_.names());
                fail(plugin, "unknown plugin '" + plugin.Scalar() + "' for component '" + c.name + "'" +
                                 (guess.empty() ? "" : " (did you mean '" + guess + "'?)") +
                                 "\n  known plugins: " + known_plugins());
            }
            c.specs = key_specs(*c.plugin->desc);
            const std::string what =
                std::string(kind_name(c.plugin->desc->kind)) + " '" + c.plugin->desc->name + "'";
            c.values = validate_keys(p_.source, c.node, c.specs, what,
                                     "while validating component '" + c.name + "' (plugin file " +
                                         c.plugin->file.string() + ")",
                                     { "plugin" });
            p_.components.push_back(std::move(c));
        }
    }

    // Keys of a plugin that name another component: it exists, has the kind and the functions the key
    // asks for, and no chain of references comes back to where it started.
    void component_references() const
    {
        for (const ComponentDecl& c : p_.components)
            for (const KeySpec& key : c.specs)
                if (key.type == ANSATZ_PARAM_COMPONENT && c.values.at(key.name).present)
                {
                    const std::string owner = "component '" + c.name + "'";
                    const ComponentDecl& target = referenced(c.values.at(key.name), key, owner);
                    if (target.name == c.name)
                        fail(c.values.at(key.name).node,
                             owner + ": key '" + key.name + "' names the component itself");
                }
        for (const ComponentDecl& c : p_.components)
        {
            std::vector<std::string> path{ c.name };
            follow(c, path);
        }
    }

    void follow(const ComponentDecl& c, std::vector<std::string>& path) const
    {
        for (const KeySpec& key : c.specs)
        {
            if (key.type != ANSATZ_PARAM_COMPONENT || !c.values.at(key.name).present)
                continue;
            const std::string& next = c.values.at(key.name).text;
            if (next == path.front())
            {
                std::string cycle;
                for (const std::string& n : path)
                    cycle += n + " -> ";
                fail(c.values.at(key.name).node, "components name each other in a circle: " + cycle + next +
                                                     "; none could be created first");
            }
            if (std::find(path.begin(), path.end(), next) != path.end())
                continue; // a circle that does not pass through the start is reported from its own start
            path.push_back(next);
            follow(p_.component(next), path);
            path.pop_back();
        }
    }

    // The component a COMPONENT key names, checked against the key's kind and needs.
    const ComponentDecl& referenced(const Value& v, const KeySpec& key, const std::string& owner) const
    {
        const auto found = std::find_if(p_.components.begin(), p_.components.end(),
                                        [&](const ComponentDecl& c) { return c.name == v.text; });
        if (found == p_.components.end())
        {
            std::vector<std::string> names;
            std::string list;
            for (const ComponentDecl& c : p_.components)
                names.push_back(c.name), list += (list.empty() ? "" : ", ") + c.name;
            const std::string guess = closest(v.text, names);
            fail(v.node, owner + ": key '" + key.name + "' names '" + v.text +
                             "', which is not a component of this pipeline" +
                             (guess.empty() ? "" : " (did you mean '" + guess + "'?)") +
                             "; components: " + list);
        }
        if (found->plugin->desc->kind != key.component_kind)
            fail(v.node, owner + ": key '" + key.name + "' needs " +
                             with_article(kind_name(key.component_kind)) + ", but '" + v.text + "' is " +
                             with_article(kind_name(found->plugin->desc->kind)) + " (plugin '" +
                             found->plugin->desc->name + "')");
        if (key.component_needs)
        {
            const uint64_t offered = model_functions_of(*found->plugin->desc);
            if ((key.component_needs & offered) != key.component_needs)
                fail(v.node, owner + ": key '" + key.name + "' needs a model with " +
                                 model_function_names(key.component_needs & ~offered) + ", but model '" +
                                 found->name + "' (plugin '" + found->plugin->desc->name +
                                 "') has only: " + model_function_names(offered));
        }
        return *found;
    }

    std::string known_plugins() const
    {
        std::vector<std::string> items;
        for (const PluginComponent& c : registry_.components())
            items.push_back(std::string(c.desc->name) + " (" + kind_name(c.desc->kind) + ")");
        std::sort(items.begin(), items.end());
        std::string out;
        for (const std::string& s : items)
            out += (out.empty() ? "" : ", ") + s;
        return out.empty() ? "none were found (see `ansatz plugins`)" : out;
    }

    void stages()
    {
        size_t index = 0;
        for (const YAML::Node& node : p_.source.root()["stages"])
        {
            ++index;
            if (!node.IsMap() || node.size() != 1)
                fail(node,
                     "stage " + std::to_string(index) +
                         " must be a mapping with one key, the stage type, e.g. - train: {model: rbm, ...}");
            const auto entry = *node.begin();
            StageDecl s;
            s.type = entry.first.Scalar();
            s.index = index;
            s.node = entry.second;
            const StageType* type = find_stage_type(s.type);
            if (!type)
            {
                std::vector<std::string> names;
                std::string list;
                for (const StageType& t : stage_types())
                    names.push_back(t.name), list += (list.empty() ? "" : ", ") + t.name;
                const std::string guess = closest(s.type, names);
                fail(entry.first, "unknown stage type '" + s.type + "'" +
                                      (guess.empty() ? "" : " (did you mean '" + guess + "'?)") +
                                      "; stage types: " + list);
            }
            s.values = validate_keys(p_.source, s.node, type->keys, s.label(), "");
            for (const KeySpec& key : type->keys)
            {
                const Value& v = s.values.at(key.name);
                if (key.type == ANSATZ_PARAM_COMPONENT && v.present)
                    referenced(v, key, s.label());
                if (key.type == ANSATZ_PARAM_STRING_LIST && key.component_kind && v.present)
                    for (size_t i = 0; i < v.texts.size(); ++i)
                    {
                        Value item;
                        item.text = v.texts[i];
                        item.node = v.node.IsSequence() && i < v.node.size() ? v.node[i] : v.node;
                        referenced(item, key, s.label());
                        if (std::count(v.texts.begin(), v.texts.end(), v.texts[i]) > 1)
                            fail(item.node, s.label() + ": key '" + key.name + "' names '" + v.texts[i] +
                                                "' more than once");
                        if (s.values.count("model") && s.has("model"))
                            require_model_functions(p_, s, v.texts[i], item.node, s.text("model"));
                    }
            }
            if (s.values.count("sampler") && s.has("sampler") && s.values.count("model"))
                require_model_functions(p_, s, "sampler", s.text("model"));
            if (type->check)
                type->check(p_, s);
            p_.stages.push_back(std::move(s));
        }
    }

    // A path "$run/FILE" that must exist names a file an earlier stage writes into the run folder:
    // some stage writes FILE, before the first stage that uses the component.
    void run_folder_paths() const
    {
        std::map<std::string, size_t> written; // file -> the first stage that writes it
        std::string list;
        for (const StageDecl& s : p_.stages)
            if (const StageType* type = find_stage_type(s.type); type->writes)
                for (const std::string& file : type->writes(s))
                {
                    written.emplace(file, s.index);
                    list += (list.empty() ? "" : ", ") + std::string(run_folder_prefix) + file + " (stage " +
                            std::to_string(s.index) + ")";
                }
        for (const ComponentDecl& c : p_.components)
            for (const KeySpec& key : c.specs)
            {
                const Value& v = c.values.at(key.name);
                if (key.type != ANSATZ_PARAM_PATH || !v.present || !is_run_path(v.text) ||
                    !(key.flags & ANSATZ_PARAM_MUST_EXIST))
                    continue;
                const std::string file = fs::path(v.text.substr(std::string(run_folder_prefix).size()))
                                             .lexically_normal()
                                             .string();
                const std::string owner =
                    "key '" + key.name + "' of component '" + c.name + "' names " + v.text;
                const auto found = written.find(file);
                if (found == written.end())
                    fail(v.node,
                         owner + ", a file of the run folder, but no stage writes it (" +
                             (list.empty() ? std::string("no stage of this pipeline writes files there")
                                           : "the stages write: " + list) +
                             "; a generate stage with to: NAME writes $run/NAME.npy and "
                             "$run/NAME.beta.npy)");
                for (const StageDecl& s : p_.stages)
                {
                    const std::vector<std::string> used = stage_closure(p_, s);
                    if (std::find(used.begin(), used.end(), c.name) == used.end())
                        continue;
                    if (s.index <= found->second)
                        fail(v.node, owner + ", which stage " + std::to_string(found->second) + " (" +
                                         p_.stages[found->second - 1].type + ") writes, but " + s.label() +
                                         " uses component '" + c.name + "' " +
                                         (s.index == found->second ? "in that same stage" : "before that"));
                    break;
                }
            }
    }

    Pipeline& p_;
    const Registry& registry_;
};

} // namespace

std::vector<std::string> stage_components(const StageDecl& stage)
{
    std::vector<std::string> out;
    for (const KeySpec& key : find_stage_type(stage.type)->keys)
    {
        const Value& v = stage.values.at(key.name);
        if (key.type == ANSATZ_PARAM_COMPONENT && v.present)
            out.push_back(v.text);
        if (key.type == ANSATZ_PARAM_STRING_LIST && key.component_kind && v.present)
            out.insert(out.end(), v.texts.begin(), v.texts.end()); // evaluators: [a, b]
    }
    return out;
}

std::vector<std::string> stage_closure(const Pipeline& p, const StageDecl& stage)
{
    std::vector<std::string> out;
    std::vector<std::string> todo = stage_components(stage);
    while (!todo.empty())
    {
        const std::string name = todo.back();
        todo.pop_back();
        if (std::find(out.begin(), out.end(), name) != out.end())
            continue;
        out.push_back(name);
        const ComponentDecl& c = p.component(name);
        for (const KeySpec& key : c.specs)
            if (key.type == ANSATZ_PARAM_COMPONENT && c.values.at(key.name).present)
                todo.push_back(c.values.at(key.name).text);
    }
    return out;
}

uint64_t model_functions_of(const ansatz_component& model)
{
    return model.kind == ANSATZ_KIND_MODEL
               ? model_functions(static_cast<const ansatz_model_table*>(model.table))
               : 0;
}

void require_model_functions(const Pipeline& p, const StageDecl& s, const std::string& key,
                             const std::string& model_name)
{
    require_model_functions(p, s, s.text(key), s.values.at(key).node, model_name);
}

void require_model_functions(const Pipeline& p, const StageDecl& s, const std::string& user_name,
                             const YAML::Node& node, const std::string& model_name)
{
    const ComponentDecl& model = p.component(model_name);
    const uint64_t offered = model_functions_of(*model.plugin->desc);
    // The component `user_name`, then the samplers it names (a wrapper's inner sampler, which it binds
    // to the same model), and theirs: each must find what it needs in the model.
    std::vector<std::pair<const ComponentDecl*, std::string>> users{ { &p.component(user_name), "" } };
    for (size_t i = 0; i < users.size(); ++i)
    {
        const ComponentDecl& user = *users[i].first;
        const uint64_t needed = user.plugin->desc->needs;
        if ((needed & offered) != needed)
            throw UserError(p.source.where(node) + ": " + s.label() + ": " +
                            kind_name(user.plugin->desc->kind) + " '" + user.name + "'" + users[i].second +
                            " needs the model's " + model_function_names(needed & ~offered) +
                            ", but model '" + model.name + "' (plugin '" + model.plugin->desc->name +
                            "' from " + model.plugin->file.string() +
                            ") has only: " + model_function_names(offered));
        for (const KeySpec& k : user.specs)
            if (k.type == ANSATZ_PARAM_COMPONENT && k.component_kind == ANSATZ_KIND_SAMPLER &&
                user.values.at(k.name).present)
            {
                const ComponentDecl* inner = &p.component(user.values.at(k.name).text);
                if (std::none_of(users.begin(), users.end(), [&](const auto& u) { return u.first == inner; }))
                    users.emplace_back(inner, ", named by key '" + k.name + "' of " +
                                                  kind_name(user.plugin->desc->kind) + " '" + user.name +
                                                  "',");
            }
    }
}

std::string with_article(const std::string& word)
{
    const bool vowel = !word.empty() && std::string("aeiou").find(word[0]) != std::string::npos;
    return (vowel ? "an " : "a ") + word;
}

bool Pipeline::has_component(const std::string& name) const
{
    return std::any_of(components.begin(), components.end(),
                       [&](const ComponentDecl& c) { return c.name == name; });
}

const ComponentDecl& Pipeline::component(const std::string& name) const
{
    for (const ComponentDecl& c : components)
        if (c.name == name)
            return c;
    throw UserError("the pipeline has no component '" + name + "'");
}

YAML::Node Pipeline::resolved() const
{
    YAML::Node out;
    out["pipeline"] = name;
    out["seed"] = seed;
    out["threads"] = threads;
    // Absolute, so the resolved file works from the run folder (ansatz run --resume).
    for (const fs::path& folder : pipeline_plugin_paths(source))
        out["plugin_paths"].push_back(folder.string());
    for (const ComponentDecl& c : components)
    {
        YAML::Node node;
        node["plugin"] = std::string(c.plugin->desc->name);
        for (const KeySpec& spec : c.specs)
            if (c.values.at(spec.name).present)
                node[spec.name] = to_yaml(c.values.at(spec.name));
        out["components"][c.name] = node;
    }
    for (const StageDecl& s : stages)
    {
        YAML::Node keys;
        for (const KeySpec& spec : find_stage_type(s.type)->keys)
            if (s.values.at(spec.name).present)
                keys[spec.name] = to_yaml(s.values.at(spec.name));
        YAML::Node stage;
        stage[s.type] = keys;
        out["stages"].push_back(stage);
    }
    return out;
}

std::vector<fs::path> pipeline_plugin_paths(const Source& source)
{
    std::vector<fs::path> out;
    const YAML::Node node = source.root()["plugin_paths"];
    if (!node)
        return out;
    if (!node.IsSequence())
        throw UserError(source.where(node) +
                        ": 'plugin_paths' must be a list of folders, e.g. [plugins, /opt/ansatz]");
    for (const YAML::Node& item : node)
    {
        if (!item.IsScalar() || item.Scalar().empty())
            throw UserError(source.where(item) + ": each item of 'plugin_paths' must be a folder name");
        fs::path p(item.Scalar());
        out.push_back(p.is_relative() ? (source.folder() / p).lexically_normal() : p);
    }
    return out;
}

Pipeline validate_pipeline(Source source, const Registry& registry)
{
    Pipeline p;
    p.source = std::move(source);
    Validator(p, registry).run();
    return p;
}

} // namespace ansatz::engine

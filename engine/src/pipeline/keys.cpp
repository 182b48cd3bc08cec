#include "pipeline/keys.hpp"

#include "ansatz/refs.hpp"
#include "loading/descriptor_check.hpp"
#include "loading/registry.hpp"
#include "user_error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace ansatz::engine
{

namespace fs = std::filesystem;

namespace
{

std::vector<std::string> split_choices(const std::string& choices)
{
    std::vector<std::string> out;
    std::stringstream in(choices);
    for (std::string item; std::getline(in, item, '|');)
        out.push_back(item);
    return out;
}

std::string format_number(double v)
{
    char buffer[32];
    // Whole numbers exactly (1000000, not 1e+06); others in the short form.
    if (v == std::floor(v) && std::abs(v) < 1e15)
        std::snprintf(buffer, sizeof buffer, "%.0f", v);
    else
        std::snprintf(buffer, sizeof buffer, "%g", v);
    return buffer;
}

size_t edit_distance(const std::string& a, const std::string& b)
{
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
    {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j)
        {
            const size_t up = row[j];
            row[j] = std::min({ row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1) });
            diagonal = up;
        }
    }
    return row[b.size()];
}

bool parse_bool(const std::string& s, bool& out)
{
    static const char* const yes[] = { "true", "True", "TRUE", "yes", "Yes", "on", "On" };
    static const char* const no[] = { "false", "False", "FALSE", "no", "No", "off", "Off" };
    for (const char* y : yes)
        if (s == y)
            return out = true, true;
    for (const char* n : no)
        if (s == n)
            return out = false, true;
    return false;
}

bool parse_int(const std::string& s, int64_t& out)
{
    if (s.empty())
        return false;
    size_t used = 0;
    try
    {
        out = std::stoll(s, &used, 10);
    }
    catch (...)
    {
        return false;
    }
    return used == s.size();
}

bool parse_real(const std::string& s, double& out)
{
    if (s.empty())
        return false;
    if (s == ".inf" || s == ".Inf" || s == "-.inf" || s == ".nan" || s == ".NaN")
        return false; // not meaningful for a parameter
    size_t used = 0;
    try
    {
        out = std::stod(s, &used);
    }
    catch (...)
    {
        return false;
    }
    return used == s.size() && std::isfinite(out);
}

std::string describe_node(const YAML::Node& node)
{
    if (node.IsMap())
        return "a mapping";
    if (node.IsSequence())
        return "a list";
    if (node.IsNull())
        return "nothing (null)";
    return "'" + node.Scalar() + "'";
}

// "a float", "an int", "an optimizer".
std::string with_article(const std::string& word)
{
    const bool vowel = !word.empty() && std::string("aeiou").find(word[0]) != std::string::npos;
    return (vowel ? "an " : "a ") + word;
}

bool in_range(const KeySpec& spec, double v)
{
    if (spec.flags & ANSATZ_PARAM_HAS_MIN)
        if ((spec.flags & ANSATZ_PARAM_MIN_EXCLUSIVE) ? !(v > spec.min) : !(v >= spec.min))
            return false;
    if (spec.flags & ANSATZ_PARAM_HAS_MAX)
        if ((spec.flags & ANSATZ_PARAM_MAX_EXCLUSIVE) ? !(v < spec.max) : !(v <= spec.max))
            return false;
    return true;
}

std::string length_text(const KeySpec& spec)
{
    if (spec.min_length > 0 && spec.max_length > 0)
        return spec.min_length == spec.max_length
                   ? std::to_string(spec.min_length) + " items"
                   : std::to_string(spec.min_length) + " to " + std::to_string(spec.max_length) + " items";
    if (spec.min_length > 0)
        return "at least " + std::to_string(spec.min_length) + " item" + (spec.min_length == 1 ? "" : "s");
    return "at most " + std::to_string(spec.max_length) + " item" + (spec.max_length == 1 ? "" : "s");
}

std::string range_text(const KeySpec& spec)
{
    std::string out;
    const bool lo = spec.flags & ANSATZ_PARAM_HAS_MIN, hi = spec.flags & ANSATZ_PARAM_HAS_MAX;
    if (lo && hi)
        return std::string(spec.flags & ANSATZ_PARAM_MIN_EXCLUSIVE ? "(" : "[") + format_number(spec.min) +
               ", " + format_number(spec.max) + (spec.flags & ANSATZ_PARAM_MAX_EXCLUSIVE ? ")" : "]");
    if (lo)
        return std::string(spec.flags & ANSATZ_PARAM_MIN_EXCLUSIVE ? "> " : ">= ") + format_number(spec.min);
    if (hi)
        return std::string(spec.flags & ANSATZ_PARAM_MAX_EXCLUSIVE ? "< " : "<= ") + format_number(spec.max);
    return out;
}

} // namespace

KeySpec KeySpec::from(const ansatz_param_spec& spec)
{
    KeySpec k;
    k.name = spec.name ? spec.name : "";
    k.type = spec.type;
    k.flags = spec.flags;
    k.default_value = spec.default_value ? spec.default_value : "";
    k.choices = spec.choices ? spec.choices : "";
    k.min = spec.min;
    k.max = spec.max;
    k.doc = spec.doc ? spec.doc : "";
    k.component_kind = spec.component_kind;
    k.component_needs = spec.component_needs;
    k.min_length = spec.min_length;
    k.max_length = spec.max_length;
    return k;
}

std::vector<KeySpec> key_specs(const ansatz_component& component)
{
    std::vector<KeySpec> out;
    for (int32_t i = 0; i < component.n_params; ++i)
        out.push_back(KeySpec::from(param_at(component, i)));
    return out;
}

std::string KeySpec::type_name() const
{
    switch (type)
    {
    case ANSATZ_PARAM_BOOL:
        return "bool";
    case ANSATZ_PARAM_INT:
        return "int";
    case ANSATZ_PARAM_FLOAT:
        return "float";
    case ANSATZ_PARAM_STRING:
        return "string";
    case ANSATZ_PARAM_PATH:
        return "path";
    case ANSATZ_PARAM_CHOICE:
        return "choice";
    case ANSATZ_PARAM_INT_LIST:
        return "list of ints";
    case ANSATZ_PARAM_FLOAT_LIST:
        return "list of floats";
    case ANSATZ_PARAM_STRING_LIST:
        return component_kind ? "list of " + std::string(kind_name(component_kind)) + "s" : "list of strings";
    case ANSATZ_PARAM_COMPONENT:
        return std::string(kind_name(component_kind));
    default:
        return "unknown type";
    }
}

std::string KeySpec::summary() const
{
    std::string s = type_name();
    if (!choices.empty())
    {
        std::string list = choices;
        std::replace(list.begin(), list.end(), '|', ' ');
        s += " of {" + list + "}";
    }
    if (const std::string r = range_text(*this); !r.empty())
        s += (is_list() ? " with items " : " ") + r;
    if (is_list() && (min_length > 0 || max_length > 0))
        s += ", " + length_text(*this);
    if (type == ANSATZ_PARAM_COMPONENT && component_needs)
        s += " with " + model_function_names(component_needs);
    if (flags & ANSATZ_PARAM_MUST_EXIST)
        s += " (must exist)";
    if (required())
        s += ", required";
    else if (optional())
        s += ", optional";
    else
        s += ", default " + (default_value.empty() ? std::string("''") : default_value);
    return s;
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates)
{
    std::string best;
    size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
    for (const std::string& c : candidates)
    {
        const size_t d = edit_distance(word, c);
        if (d < best_distance)
            best = c, best_distance = d;
    }
    return best;
}

namespace
{

std::string convert_scalar(const KeySpec& spec, const YAML::Node& node, const Source& source, Value& out);

// The type of a list's items, as a scalar key.
KeySpec item_spec(const KeySpec& list)
{
    KeySpec item = list;
    item.type = list.type == ANSATZ_PARAM_INT_LIST     ? ANSATZ_PARAM_INT
                : list.type == ANSATZ_PARAM_FLOAT_LIST ? ANSATZ_PARAM_FLOAT
                                                       : ANSATZ_PARAM_STRING;
    return item;
}

// Converts a YAML list item by item; returns "" or the complaint (a sentence about `subject`, "key 'x'
// of model 'm'") and sets `at` to the node it is about: the list, or the item at fault.
std::string convert_list(const KeySpec& spec, const YAML::Node& node, const Source& source, Value& out,
                         YAML::Node& at, const std::string& subject)
{
    if (!node.IsSequence())
        return subject + " expects a " + spec.type_name() + " such as [" +
               (spec.type == ANSATZ_PARAM_STRING_LIST ? "a, b" : "1, 2") + "], got " + describe_node(node);
    const KeySpec item = item_spec(spec);
    const int64_t count = static_cast<int64_t>(node.size());
    if ((spec.min_length > 0 && count < spec.min_length) || (spec.max_length > 0 && count > spec.max_length))
        return subject + " has " + std::to_string(count) + " item" + (count == 1 ? "" : "s") +
               ", but it must have " + length_text(spec);
    int64_t index = 0;
    for (const YAML::Node& element : node)
    {
        Value v;
        if (std::string complaint = convert_scalar(item, element, source, v); !complaint.empty())
        {
            at = element;
            return "item " + std::to_string(index) + " of " + subject + " " + complaint;
        }
        if (spec.type == ANSATZ_PARAM_INT_LIST)
            out.integers.push_back(v.integer);
        else if (spec.type == ANSATZ_PARAM_FLOAT_LIST)
            out.reals.push_back(v.real);
        else
            out.texts.push_back(v.text);
        ++index;
    }
    return "";
}

// Converts one node to the key's type; returns "" or the complaint (a sentence about `subject`) and
// sets `at` to the node it is about.
std::string convert(const KeySpec& spec, const YAML::Node& node, const Source& source, Value& out,
                    YAML::Node& at, const std::string& subject)
{
    out.present = true;
    out.type = spec.type;
    out.node = node;
    at = node;
    if (spec.is_list())
        return convert_list(spec, node, source, out, at, subject);
    const std::string complaint = convert_scalar(spec, node, source, out);
    return complaint.empty() ? "" : subject + " " + complaint;
}

std::string convert_scalar(const KeySpec& spec, const YAML::Node& node, const Source& source, Value& out)
{
    out.present = true;
    if (!node.IsScalar() && spec.type == ANSATZ_PARAM_COMPONENT)
        return "expects the name of " + with_article(spec.type_name()) + ", got " + describe_node(node);
    if (!node.IsScalar())
        return "expects " + with_article(spec.type_name()) + ", got " + describe_node(node);
    const std::string& text = node.Scalar();
    switch (spec.type)
    {
    case ANSATZ_PARAM_BOOL:
    {
        bool b = false;
        if (!parse_bool(text, b))
            return "expects a bool (true or false), got '" + text + "'";
        out.integer = b;
        return "";
    }
    case ANSATZ_PARAM_INT:
        if (!parse_int(text, out.integer))
            return "expects an int, got '" + text + "'";
        if (!in_range(spec, static_cast<double>(out.integer)))
            return "is " + text + ", out of range: it must be " + range_text(spec);
        return "";
    case ANSATZ_PARAM_FLOAT:
        if (!parse_real(text, out.real))
            return "expects a float, got '" + text + "'";
        if (!in_range(spec, out.real))
            return "is " + text + ", out of range: it must be " + range_text(spec);
        // The plugin keeps it as a float32 unless it said otherwise: 1e300 would become inf there,
        // 1e-50 zero, and 0.99999999 would become 1, out of a range < 1.
        if (!(spec.flags & ANSATZ_PARAM_DOUBLE))
        {
            if (std::abs(out.real) > std::numeric_limits<float>::max())
                return "is " + text +
                       ", which does not fit the float32 the component keeps (at most 3.4e38 in magnitude)";
            const float kept = static_cast<float>(out.real);
            if (kept == 0 && out.real != 0)
                return "is " + text +
                       ", which the float32 the component keeps rounds to 0 (the smallest is 1.4e-45 in "
                       "magnitude)";
            if (!in_range(spec, kept))
                return "is " + text + ", which the float32 the component keeps rounds to " +
                       format_number(kept) + ", out of range: it must be " + range_text(spec);
        }
        return "";
    case ANSATZ_PARAM_CHOICE:
    {
        const std::vector<std::string> allowed = split_choices(spec.choices);
        if (std::find(allowed.begin(), allowed.end(), text) == allowed.end())
        {
            std::string list = spec.choices;
            std::replace(list.begin(), list.end(), '|', ',');
            const std::string guess = closest(text, allowed);
            return "is '" + text + "', which is not one of: " + list +
                   (guess.empty() ? std::string() : " (did you mean '" + guess + "'?)");
        }
        out.text = text;
        return "";
    }
    case ANSATZ_PARAM_PATH:
    {
        if (text.empty())
            return "expects a file path, got an empty string";
        if (text == "$run" || text == run_folder_prefix)
            return "names the run folder itself; give a file in it, e.g. $run/samples.npy";
        if (is_run_path(text))
        {
            // A file of the run folder, which does not exist yet: the pipeline's validation checks that
            // an earlier stage writes it, and the run resolves it when it creates the component.
            out.text = text;
            return "";
        }
        fs::path p(text);
        if (p.is_relative())
            p = source.folder() / p;
        out.text = p.lexically_normal().string();
        std::error_code ec;
        if ((spec.flags & ANSATZ_PARAM_MUST_EXIST) && !fs::exists(out.text, ec))
            return "names " + text + ", which does not exist" +
                   (text == out.text ? std::string() : " (resolved to " + out.text + ")");
        return "";
    }
    default:
        out.text = text;
        return "";
    }
}

} // namespace

Values validate_keys(const Source& source, const YAML::Node& map, const std::vector<KeySpec>& specs,
                     const std::string& what, const std::string& context,
                     const std::vector<std::string>& ignored)
{
    const auto valid_keys = [&] {
        std::string s = "  valid keys: ";
        for (size_t i = 0; i < specs.size(); ++i)
            s += (i ? ", " : "") + specs[i].name + " (" + specs[i].summary() + ")";
        return s + (specs.empty() ? "none" : "");
    };
    const auto fail = [&](const YAML::Node& at, const std::string& sentence, bool list_keys) {
        throw UserError(source.where(at) + ": " + sentence + (list_keys ? "\n" + valid_keys() : "") +
                        (context.empty() ? "" : "\n  " + context));
    };
    if (!map.IsMap() && !map.IsNull())
        fail(map, what + " expects a mapping of keys, got " + describe_node(map), false);

    std::vector<std::string> names;
    for (const KeySpec& s : specs)
        names.push_back(s.name);

    Values values;
    if (map.IsMap())
        for (const auto& item : map)
        {
            const std::string key = item.first.Scalar();
            if (std::find(ignored.begin(), ignored.end(), key) != ignored.end())
                continue;
            const auto spec =
                std::find_if(specs.begin(), specs.end(), [&](const KeySpec& s) { return s.name == key; });
            if (spec == specs.end())
            {
                const std::string guess = closest(key, names);
                fail(item.first,
                     "unknown key '" + key + "' for " + what +
                         (guess.empty() ? std::string() : " (did you mean '" + guess + "'?)"),
                     true);
            }
            Value v;
            YAML::Node at;
            if (const std::string complaint =
                    convert(*spec, item.second, source, v, at, "key '" + key + "' of " + what);
                !complaint.empty())
                fail(at, complaint, false);
            values[key] = v;
        }

    for (const KeySpec& spec : specs)
    {
        if (values.count(spec.name))
            continue;
        if (spec.required())
            fail(map, "missing required key '" + spec.name + "' for " + what + " (" + spec.doc + ")", true);
        Value v;
        v.type = spec.type;
        if (!spec.optional())
        {
            // Defaults go through the same conversion, so a plugin's bad default is caught here too.
            YAML::Node node = YAML::Load(spec.default_value.empty() ? "''" : spec.default_value);
            YAML::Node at;
            if (const std::string complaint =
                    convert(spec, node, source, v, at, "the default of key '" + spec.name + "' of " + what);
                !complaint.empty())
                throw UserError(complaint + " (a bug in the plugin's describe())");
            v.node = YAML::Node();
        }
        values[spec.name] = v;
    }
    return values;
}

ConfigValues to_config(const std::vector<KeySpec>& specs, const Values& values,
                       const std::function<ansatz_handle(const std::string&)>& handle)
{
    ConfigValues config;
    for (const KeySpec& spec : specs)
    {
        const Value& v = values.at(spec.name);
        if (!v.present)
        {
            config.set_absent(spec.name, spec.type);
            continue;
        }
        switch (spec.type)
        {
        case ANSATZ_PARAM_BOOL:
            config.set_bool(spec.name, v.integer != 0);
            break;
        case ANSATZ_PARAM_INT:
            config.set_int(spec.name, v.integer);
            break;
        case ANSATZ_PARAM_FLOAT:
            config.set_real(spec.name, v.real);
            break;
        case ANSATZ_PARAM_INT_LIST:
            config.set_integers(spec.name, v.integers);
            break;
        case ANSATZ_PARAM_FLOAT_LIST:
            config.set_reals(spec.name, v.reals);
            break;
        case ANSATZ_PARAM_STRING_LIST:
            config.set_texts(spec.name, v.texts);
            break;
        case ANSATZ_PARAM_COMPONENT:
            config.set_component(spec.name, v.text, handle ? handle(v.text) : ansatz_handle{});
            break;
        default:
            config.set_text(spec.name, spec.type, v.text);
            break;
        }
    }
    return config;
}

YAML::Node to_yaml(const Value& value)
{
    switch (value.type)
    {
    case ANSATZ_PARAM_BOOL:
        return YAML::Node(value.integer != 0);
    case ANSATZ_PARAM_INT:
        return YAML::Node(value.integer);
    case ANSATZ_PARAM_FLOAT:
        return YAML::Node(value.real);
    case ANSATZ_PARAM_INT_LIST:
    case ANSATZ_PARAM_FLOAT_LIST:
    case ANSATZ_PARAM_STRING_LIST:
    {
        YAML::Node list(YAML::NodeType::Sequence);
        for (int64_t i : value.integers)
            list.push_back(i);
        for (double r : value.reals)
            list.push_back(r);
        for (const std::string& t : value.texts)
            list.push_back(t);
        list.SetStyle(YAML::EmitterStyle::Flow);
        return list;
    }
    default:
        return YAML::Node(value.text);
    }
}

ConfigValues config_from_yaml(const ansatz_component& component, const std::string& yaml_text)
{
    Source source =
        Source::parse(yaml_text.empty() ? "{}" : yaml_text, std::string("<") + component.name + ">");
    const std::vector<KeySpec> specs = key_specs(component);
    return to_config(specs,
                     validate_keys(source, source.root(), specs,
                                   std::string(kind_name(component.kind)) + " '" + component.name + "'", ""));
}

} // namespace ansatz::engine

#include "source.hpp"

#include "user_error.hpp"

#include <fstream>
#include <sstream>

namespace ansatz::engine
{

namespace fs = std::filesystem;

namespace
{

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not valid UTF-8 (RFC 3629).
size_t utf8_sequence(const std::string& s, size_t i)
{
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    if (c < 0x80)
        return 1;
    size_t n = 0;
    uint32_t min = 0;
    if ((c & 0xe0) == 0xc0)
        n = 2, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        n = 3, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        n = 4, min = 0x10000;
    else
        return 0;
    if (i + n > s.size())
        return 0;
    uint32_t cp = c & (0x7f >> n);
    for (size_t k = 1; k < n; ++k)
    {
        if ((byte(i + k) & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

YAML::Node parse_yaml(const std::string& text, const std::string& name)
{
    try
    {
        return YAML::Load(text);
    }
    catch (const YAML::Exception& e)
    {
        std::string what = e.msg;
        if (!what.empty())
            what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
        throw UserError(name + ":" + std::to_string(e.mark.line + 1) + ":" +
                        std::to_string(e.mark.column + 1) + ": YAML syntax error: " + what + ".");
    }
}

} // namespace

void check_utf8(const std::string& text, const std::string& name)
{
    size_t line = 1, column = 1;
    for (size_t i = 0; i < text.size();)
    {
        const size_t n = utf8_sequence(text, i);
        if (n == 0)
        {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(text[i]));
            throw UserError(name + ":" + std::to_string(line) + ":" + std::to_string(column) +
                            ": byte offset " + std::to_string(i) + " (" + hex +
                            ") is not valid UTF-8; pipelines are UTF-8 text.");
        }
        if (text[i] == '\n')
            ++line, column = 1;
        else
            ++column;
        i += n;
    }
}

Source Source::load(const fs::path& file)
{
    std::error_code ec;
    if (!fs::exists(file, ec))
        throw UserError(file.string() + ": no such pipeline file.");
    if (fs::is_directory(file, ec))
        throw UserError(file.string() + ": is a folder, not a pipeline file.");
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw UserError(file.string() + ": cannot be read (permission denied?).");
    std::stringstream buffer;
    buffer << in.rdbuf();
    Source s = parse(buffer.str(), file.string());
    s.folder_ = fs::absolute(file).parent_path();
    return s;
}

Source Source::parse(const std::string& text, const std::string& name)
{
    Source s;
    s.name_ = name;
    s.folder_ = fs::current_path();
    check_utf8(text, name);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        throw UserError(name +
                        ": the pipeline file is empty; it needs at least 'pipeline:', 'components:' and "
                        "'stages:'.");
    s.root_ = parse_yaml(text, name);
    if (!s.root_.IsMap())
        throw UserError(s.where(s.root_) + ": a pipeline is a mapping with the keys 'pipeline', 'components' "
                                           "and 'stages'.");
    return s;
}

void Source::apply_override(const std::string& assignment)
{
    const std::string label = "--set " + assignment;
    const size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
        throw UserError(label + ": an override is KEY.PATH=VALUE, e.g. components.rbm.hidden=128.");
    const std::string path = assignment.substr(0, eq);
    YAML::Node value;
    try
    {
        value = YAML::Load(assignment.substr(eq + 1));
    }
    catch (const YAML::Exception& e)
    {
        throw UserError(label + ": the value is not valid YAML (" + e.msg + ").");
    }
    std::vector<std::string> keys;
    std::stringstream parts(path);
    for (std::string key; std::getline(parts, key, '.');)
    {
        if (key.empty())
            throw UserError(label + ": the key path '" + path + "' has an empty part.");
        keys.push_back(key);
    }
    // Walk with reset() (not assignment): YAML::Node's operator= would overwrite the node it refers to.
    YAML::Node node;
    node.reset(root_);
    std::string walked;
    for (size_t i = 0; i + 1 < keys.size(); ++i)
    {
        walked += (walked.empty() ? "" : ".") + keys[i];
        YAML::Node next;
        if (node.IsSequence())
        {
            size_t index = 0;
            try
            {
                index = std::stoul(keys[i]);
            }
            catch (...)
            {
                throw UserError(label + ": '" + walked + "' is a list; index it with a number.");
            }
            if (index >= node.size())
                throw UserError(label + ": '" + walked + "' is past the end of a list of " +
                                std::to_string(node.size()) + ".");
            next.reset(node[index]);
        }
        else if (node.IsMap())
        {
            if (!node[keys[i]])
                throw UserError(label + ": the pipeline has no '" + walked + "'.");
            next.reset(node[keys[i]]);
        }
        else
            throw UserError(label + ": '" + walked + "' is a value, not a mapping.");
        node.reset(next);
    }
    if (!node.IsMap())
        throw UserError(label + ": '" + path.substr(0, path.rfind('.')) + "' is not a mapping.");
    node[keys.back()] = value;
    overrides_.emplace_back(node[keys.back()], label);
}

std::string Source::where(const YAML::Node& node) const
{
    for (const auto& [overridden, label] : overrides_)
        if (overridden.is(node))
            return label;
    const YAML::Mark mark = node.Mark();
    if (mark.is_null() || mark.line < 0)
        return name_;
    return name_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

} // namespace ansatz::engine

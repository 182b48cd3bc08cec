#include "pipeline/source.hpp"

#include "user_error.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <utility>

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

std::string syntax_error(const YAML::Exception& e, const std::string& name)
{
    std::string what = e.msg;
    if (!what.empty())
        what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
    return name + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
           ": YAML syntax error: " + what + ".";
}

// Every document of the text: YAML::Load would read the first and silently drop the others.
std::vector<YAML::Node> parse_yaml(const std::string& text, const std::string& name)
{
    try
    {
        return YAML::LoadAll(text);
    }
    catch (const YAML::Exception& e)
    {
        throw UserError(syntax_error(e, name));
    }
}

// The distinct nodes met so far. An alias makes one node reachable from several places (yaml-cpp
// even builds a cycle from `&a [*a]`), so a walk over a tree visits each node once by identity.
// Nodes are bucketed by their position in the text, so that is() only compares near candidates.
class SeenNodes
{
public:
    // True the first time `node` is offered.
    bool first_visit(const YAML::Node& node)
    {
        std::vector<YAML::Node>& bucket = buckets_[node.Mark().pos];
        for (const YAML::Node& seen : bucket)
            if (seen.is(node))
                return false;
        bucket.push_back(node);
        return true;
    }

private:
    std::unordered_map<int, std::vector<YAML::Node>> buckets_;
};

// A key that repeats in a mapping, with the first one: yaml-cpp keeps both entries and a lookup
// finds only the first, so the second would be silently ignored.
struct DuplicateKey
{
    YAML::Node repeated, first;
};

// The first duplicate key under `node`, in the order of the text.
std::optional<DuplicateKey> find_duplicate_key(const YAML::Node& node, SeenNodes& seen)
{
    if (!(node.IsMap() || node.IsSequence()) || !seen.first_visit(node))
        return std::nullopt;
    if (node.IsSequence())
    {
        for (const YAML::Node& item : node)
            if (auto found = find_duplicate_key(item, seen))
                return found;
        return std::nullopt;
    }
    std::unordered_map<std::string, YAML::Node> keys;
    for (const auto& item : node)
    {
        if (item.first.IsScalar())
        {
            const auto [first, inserted] = keys.emplace(item.first.Scalar(), item.first);
            if (!inserted)
                return DuplicateKey{ item.first, first->second };
        }
        if (auto found = find_duplicate_key(item.second, seen))
            return found;
    }
    return std::nullopt;
}

std::optional<DuplicateKey> find_duplicate_key(const YAML::Node& root)
{
    SeenNodes seen;
    return find_duplicate_key(root, seen);
}

// Calls visit(node, path) for each distinct node under `node`, in the order of the text, at the
// first place it is reached ("components.rbm", "stages.0"). An alias can only follow its anchor, so
// that first place is the anchor's.
template <class Visit>
void walk_places(const YAML::Node& node, const std::string& path, SeenNodes& seen, Visit&& visit)
{
    if (!seen.first_visit(node))
        return;
    visit(node, path);
    const std::string prefix = path.empty() ? "" : path + ".";
    if (node.IsMap())
    {
        for (const auto& item : node)
            if (item.first.IsScalar())
                walk_places(item.second, prefix + item.first.Scalar(), seen, visit);
    }
    else if (node.IsSequence())
    {
        size_t index = 0;
        for (const YAML::Node& item : node)
            walk_places(item, prefix + std::to_string(index++), seen, visit);
    }
}

// True if `node` is `root` or lies under it (as a key or a value).
bool contains(const YAML::Node& root, const YAML::Node& node, SeenNodes& seen)
{
    if (root.is(node))
        return true;
    if (!seen.first_visit(root))
        return false;
    if (root.IsMap())
    {
        for (const auto& item : root)
            if (contains(item.first, node, seen) || contains(item.second, node, seen))
                return true;
    }
    else if (root.IsSequence())
    {
        for (const YAML::Node& item : root)
            if (contains(item, node, seen))
                return true;
    }
    return false;
}

bool contains(const YAML::Node& root, const YAML::Node& node)
{
    SeenNodes seen;
    return contains(root, node, seen);
}

// The dotted path at which each node of a tree is first reached (see walk_places).
class FirstPlaces
{
public:
    explicit FirstPlaces(const YAML::Node& root)
    {
        SeenNodes seen;
        walk_places(root, "", seen, [&](const YAML::Node& node, const std::string& path) {
            places_[node.Mark().pos].emplace_back(node, path);
        });
    }
    const std::string& of(const YAML::Node& node) const
    {
        static const std::string none;
        const auto bucket = places_.find(node.Mark().pos);
        if (bucket != places_.end())
            for (const auto& [n, path] : bucket->second)
                if (n.is(node))
                    return path;
        return none;
    }

private:
    std::unordered_map<int, std::vector<std::pair<YAML::Node, std::string>>> places_;
};

// The parts of a --set key path; an empty part (.a, a..b, a.b.) is refused.
std::vector<std::string> split_key_path(const std::string& path, const std::string& label)
{
    std::vector<std::string> keys;
    for (size_t start = 0;;)
    {
        const size_t dot = path.find('.', start);
        keys.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (keys.back().empty())
            throw UserError(label + ": the key path '" + path + "' has an empty part.");
        if (dot == std::string::npos)
            return keys;
        start = dot + 1;
    }
}

// A list index is all digits: std::stoul would read "0abc" as 0. An index too large for size_t is
// past the end of any list.
bool parse_index(const std::string& text, size_t& index)
{
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
        return false;
    index = 0;
    for (char c : text)
    {
        const size_t digit = static_cast<size_t>(c - '0');
        if (index > (SIZE_MAX - digit) / 10)
            return index = SIZE_MAX, true;
        index = index * 10 + digit;
    }
    return true;
}

// strerror(), in the lower case of the middle of a sentence: "permission denied".
std::string reason(int error)
{
    std::string text = std::strerror(error);
    if (!text.empty())
        text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
    return text;
}

// "a named pipe (FIFO)", "a character device", ...: what a path that is not a regular file is.
std::string file_kind(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "a named pipe (FIFO)";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

// The whole of a pipeline file, which must be a regular file of at most max_pipeline_bytes. Opened
// without blocking (a FIFO would block open() until a writer came) and read no further than the limit
// (the file may grow while it is read).
std::string read_pipeline_file(const fs::path& file)
{
    const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        throw UserError(file.string() + ": cannot be read (" + reason(errno) + ").");
    struct Closer
    {
        int fd;
        ~Closer() { ::close(fd); }
    } const closer{ fd };
    struct stat st
    {
    };
    if (::fstat(fd, &st) != 0)
        throw UserError(file.string() + ": cannot be read (" + reason(errno) + ").");
    if (!S_ISREG(st.st_mode))
        throw UserError(file.string() + ": is " + file_kind(st.st_mode) + ", not a pipeline file.");
    const auto too_large = [&](uint64_t size) {
        return UserError(file.string() + ": is " + std::to_string(size) + " bytes, more than the " +
                         std::to_string(max_pipeline_bytes) + " bytes (16 MiB) a pipeline file may have.");
    };
    if (static_cast<uint64_t>(st.st_size) > max_pipeline_bytes)
        throw too_large(static_cast<uint64_t>(st.st_size));
    std::string text(static_cast<size_t>(st.st_size) + 1, '\0');
    size_t got = 0;
    while (got <= max_pipeline_bytes)
    {
        if (got == text.size())
            text.resize(std::min<size_t>(2 * text.size(), max_pipeline_bytes + 1));
        const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw UserError(file.string() + ": cannot be read (" + reason(errno) + ").");
        if (n == 0)
            break;
        got += static_cast<size_t>(n);
    }
    if (got > max_pipeline_bytes) // it grew while it was read
        throw too_large(got);
    text.resize(got);
    return text;
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
    Source s = parse(read_pipeline_file(file), file.string());
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
    const std::vector<YAML::Node> documents = parse_yaml(text, name);
    if (documents.size() > 1)
        throw UserError(s.where(documents[1]) +
                        ": a pipeline file holds one YAML document; a second one starts here.");
    if (!documents.empty())
        s.root_ = documents.front();
    if (!s.root_.IsMap())
        throw UserError(s.where(s.root_) + ": a pipeline is a mapping with the keys 'pipeline', 'components' "
                                           "and 'stages'.");
    if (const auto duplicate = find_duplicate_key(s.root_))
        throw UserError(s.where(duplicate->repeated) + ": duplicate key '" + duplicate->repeated.Scalar() +
                        "' (first at " + s.where(duplicate->first) + ").");
    return s;
}

namespace
{

// The item `key` of the mapping or list at `path` (the part of a --set key path walked so far).
YAML::Node child(const YAML::Node& node, const std::string& key, const std::string& path,
                 const std::string& label)
{
    const std::string walked = (path.empty() ? "" : path + ".") + key;
    if (node.IsSequence())
    {
        size_t index = 0;
        if (!parse_index(key, index))
            throw UserError(label + ": '" + path + "' is a list; index it with a number, not '" + key + "'.");
        if (index >= node.size())
            throw UserError(label + ": '" + walked + "' is past the end of a list of " +
                            std::to_string(node.size()) + ".");
        return node[index];
    }
    if (!node.IsMap())
        throw UserError(label + ": '" + path + "' is a value, not a mapping.");
    const YAML::Node found = node[key]; // const: a lookup that never inserts
    if (!found)
        throw UserError(label + ": the pipeline has no '" + walked + "'.");
    return found;
}

// Refuses to change a node through an alias: it is the anchor's node, so the change would also
// reach the anchor and every other alias of it. Through the anchor's own place it is allowed, as
// editing the file there would be.
void refuse_alias(const FirstPlaces& places, const YAML::Node& node, const std::vector<std::string>& keys,
                  size_t i, const std::string& label)
{
    std::string walked;
    for (size_t k = 0; k <= i; ++k)
        walked += (k ? "." : "") + keys[k];
    const std::string& first = places.of(node);
    if (first.empty() || first == walked)
        return;
    std::string instead = first;
    for (size_t k = i + 1; k < keys.size(); ++k)
        instead += "." + keys[k];
    throw UserError(label + ": '" + walked + "' is shared with '" + first +
                    "' through a YAML alias; override the anchor's key instead: " + instead + ".");
}

} // namespace

void Source::apply_override(const std::string& assignment)
{
    const std::string label = "--set " + assignment;
    const size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
        throw UserError(label + ": an override is KEY.PATH=VALUE, e.g. components.rbm.hidden=128.");
    const std::string path = assignment.substr(0, eq);
    const std::vector<std::string> keys = split_key_path(path, label);
    YAML::Node value;
    try
    {
        value = YAML::Load(assignment.substr(eq + 1));
    }
    catch (const YAML::Exception& e)
    {
        throw UserError(label + ": the value is not valid YAML (" + e.msg + ").");
    }
    // Checked here, as the file is in parse(); the value's marks are positions in the --set text.
    if (const auto duplicate = find_duplicate_key(value))
        throw UserError(label + ": the value has a duplicate key '" + duplicate->repeated.Scalar() + "'.");
    const FirstPlaces places(root_);
    // Walk with reset() (not assignment): YAML::Node's operator= would overwrite the node it refers to.
    YAML::Node node;
    node.reset(root_);
    std::string walked;
    for (size_t i = 0; i + 1 < keys.size(); ++i)
    {
        const YAML::Node next = child(node, keys[i], walked, label);
        walked += (walked.empty() ? "" : ".") + keys[i];
        refuse_alias(places, next, keys, i, label);
        node.reset(next);
    }
    if (node.IsSequence())
    {
        // An item of a list (ladder.1=0.5) is replaced in place; a list never grows by --set.
        refuse_alias(places, child(node, keys.back(), walked, label), keys, keys.size() - 1, label);
        size_t index = 0;
        parse_index(keys.back(), index);
        node[index] = value;
        overrides_.emplace_back(node[index], label);
        return;
    }
    if (!node.IsMap())
        throw UserError(label + ": '" + walked + "' is a value, not a mapping.");
    const YAML::Node old = std::as_const(node)[keys.back()];
    if (old)
        refuse_alias(places, old, keys, keys.size() - 1, label);
    node[keys.back()] = value;
    overrides_.emplace_back(node[keys.back()], label);
    // A key the file does not have is the override's too: an unknown key is blamed on its key node.
    if (!old)
        for (const auto& item : node)
            if (item.first.IsScalar() && item.first.Scalar() == keys.back())
            {
                overrides_.emplace_back(item.first, label);
                break;
            }
}

std::string Source::where(const YAML::Node& node) const
{
    if (!node.IsDefined())
        return name_;
    // The last --set wins: a key set twice is blamed on the later one. A node inside a value given
    // by --set is blamed on it too (its mark is a position in the --set text, not in the file).
    for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it)
        if (contains(it->first, node))
            return it->second;
    const YAML::Mark mark = node.Mark();
    if (mark.is_null() || mark.line < 0)
        return name_;
    return name_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

} // namespace ansatz::engine

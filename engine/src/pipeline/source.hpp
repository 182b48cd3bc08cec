// source.hpp -- a pipeline file as YAML nodes that remember where they came from.
//
// Every message about the pipeline starts with where(node): "file:line:column" (1-based), or the
// --set override the node came from.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ansatz::engine
{

// The largest pipeline file read (16 MiB): a pipeline is a page of YAML, not a data set.
constexpr uint64_t max_pipeline_bytes = uint64_t(16) << 20;

class Source
{
public:
    // Reads and parses the file; a missing, empty, non-UTF-8 or malformed file is a UserError, and so
    // is one that is not a regular file (a FIFO, /dev/zero) or is larger than max_pipeline_bytes.
    static Source load(const std::filesystem::path& file);
    // Parses text as if it were the file `name` (tests, --set values).
    static Source parse(const std::string& text, const std::string& name);

    YAML::Node& root() { return root_; }
    const YAML::Node& root() const { return root_; }
    const std::string& name() const { return name_; }
    // The folder relative paths in the pipeline are resolved against.
    const std::filesystem::path& folder() const { return folder_; }

    // Applies `dotted.path=value` (the value parsed as YAML); list items by index: stages.0.train.epochs.
    void apply_override(const std::string& assignment);

    std::string where(const YAML::Node& node) const;

private:
    std::string name_;
    std::filesystem::path folder_;
    YAML::Node root_;
    std::vector<std::pair<YAML::Node, std::string>> overrides_;
};

// Reports the first byte that is not UTF-8 as "name: byte offset N (line L, column C) is not UTF-8".
void check_utf8(const std::string& text, const std::string& name);

} // namespace ansatz::engine

#include "outputs/checkpoint.hpp"

#include "outputs/files.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>

namespace ansatz::engine
{

namespace fs = std::filesystem;

namespace
{

std::vector<int64_t> shape_of(const ansatz_tensor& t)
{
    return std::vector<int64_t>(t.shape, t.shape + t.rank);
}

void write_tensors(const fs::path& folder, const std::string& prefix,
                   const std::vector<ansatz_named_tensor>& tensors, YAML::Node& manifest_list)
{
    for (const ansatz_named_tensor& t : tensors)
    {
        const std::string file = prefix + t.name + ".npy";
        const std::string bytes = npy_bytes(t.tensor.data, shape_of(t.tensor));
        std::ofstream out(folder / file, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out)
            throw std::runtime_error("cannot write " + (folder / file).string());
        YAML::Node entry;
        entry["name"] = t.name;
        entry["file"] = file;
        entry["shape"] = shape_of(t.tensor);
        manifest_list.push_back(entry);
    }
}

} // namespace

fs::path write_checkpoint(const fs::path& run_folder, const CheckpointContent& c, const fs::path& previous)
{
    const fs::path root = run_folder / "checkpoints";
    fs::create_directories(root);
    const std::string name = "stage" + std::to_string(c.stage) + "-epoch" + std::to_string(c.epoch);
    const fs::path temporary = root / ("." + name + ".tmp");
    const fs::path final_folder = root / name;
    fs::remove_all(temporary);
    fs::create_directories(temporary);

    YAML::Node manifest;
    manifest["pipeline"] = c.pipeline;
    manifest["stage"] = c.stage;
    manifest["epoch"] = c.epoch;
    manifest["model"] = c.model;
    YAML::Node params(YAML::NodeType::Sequence), state(YAML::NodeType::Sequence);
    write_tensors(temporary, "", c.parameters, params);
    manifest["parameters"] = params;
    if (!c.optimizer.empty())
    {
        manifest["optimizer"] = c.optimizer;
        write_tensors(temporary, "optimizer.", c.optimizer_state, state);
        manifest["optimizer_state"] = state;
    }
    YAML::Emitter emitter;
    emitter << manifest;
    write_file_atomic(temporary / "manifest.yaml", std::string(emitter.c_str()) + "\n");

    fs::remove_all(final_folder);
    fs::rename(temporary, final_folder);
    if (!previous.empty() && previous != final_folder)
        fs::remove_all(previous);
    return final_folder;
}

} // namespace ansatz::engine

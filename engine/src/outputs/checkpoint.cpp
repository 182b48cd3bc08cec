#include "outputs/checkpoint.hpp"

#include "ansatz/component.hpp"
#include "ansatz/tensor.hpp"
#include "outputs/files.hpp"
#include "outputs/npy.hpp"
#include "run/fault.hpp"
#include "run/host_services.hpp"
#include "user_error.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <regex>

namespace ansatz::engine
{

namespace fs = std::filesystem;

namespace
{

std::string file_name(const CheckpointPiece& p)
{
    return p.owner + (p.part == "state" ? ".state." : ".") + p.name + ".npy";
}

void write_bytes(const fs::path& file, const std::string& bytes)
{
    std::ofstream out(file, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out)
        throw std::runtime_error("cannot write " + file.string());
}

// Removes a folder so that no kill leaves part of it under its own name: rename, then delete.
void remove_folder(const fs::path& folder)
{
    if (!fs::exists(folder))
        return;
    // Appended piecewise: "." + name + ".old" trips a false -Wrestrict in GCC 12 (bug 105329).
    std::string hidden = ".";
    hidden += folder.filename().string();
    hidden += ".old";
    const fs::path trash = folder.parent_path() / hidden;
    fs::remove_all(trash);
    fs::rename(folder, trash);
    fault_point("checkpoint-remove");
    fs::remove_all(trash);
}

// "stage3-epoch12" -> (3, 12)
std::optional<std::pair<size_t, int64_t>> parse_name(const std::string& name)
{
    static const std::regex pattern("stage([0-9]{1,9})-epoch([0-9]{1,18})");
    std::smatch m;
    if (!std::regex_match(name, m, pattern))
        return std::nullopt;
    return std::make_pair(static_cast<size_t>(std::stoull(m[1])), static_cast<int64_t>(std::stoll(m[2])));
}

} // namespace

std::vector<ansatz_named_tensor> Checkpoint::named(const std::string& owner, const std::string& part) const
{
    std::vector<ansatz_named_tensor> out;
    for (const CheckpointPiece& p : pieces)
        if (p.owner == owner && p.part == part)
            out.push_back({ p.name.c_str(), p.view });
    return out;
}

fs::path write_checkpoint(const fs::path& run_folder, const Checkpoint& c, const fs::path& previous)
{
    const fs::path root = run_folder / "checkpoints";
    fs::create_directories(root);
    const std::string name = "stage" + std::to_string(c.stage) + "-epoch" + std::to_string(c.epoch);
    const fs::path temporary = root / ("." + name + ".tmp");
    const fs::path final_folder = root / name;
    fs::remove_all(temporary);
    fs::create_directories(temporary);

    YAML::Node manifest;
    manifest["format"] = "ansatz checkpoint 2";
    manifest["pipeline"] = c.pipeline;
    manifest["stage"] = c.stage;
    manifest["epoch"] = c.epoch;
    YAML::Node models(YAML::NodeType::Sequence);
    for (const ModelShape& m : c.models)
    {
        YAML::Node entry;
        entry["model"] = m.model;
        entry["sample_shape"] = m.sample_shape;
        entry["sample_shape"].SetStyle(YAML::EmitterStyle::Flow);
        entry["shaped_by"] = m.shaped_by;
        entry["is_image"] = m.is_image;
        entry["domain"] = m.domain;
        entry["categories"] = m.categories;
        models.push_back(entry);
    }
    manifest["models"] = models;
    YAML::Node list(YAML::NodeType::Sequence);
    bool first = true;
    for (const CheckpointPiece& p : c.pieces)
    {
        write_bytes(temporary / file_name(p), npy_bytes(p.view));
        if (first)
            fault_point("checkpoint-write"); // a kill with the checkpoint half written
        first = false;
        YAML::Node entry;
        entry["owner"] = p.owner;
        entry["part"] = p.part;
        entry["name"] = p.name;
        entry["file"] = file_name(p);
        entry["dtype"] = dtype_name(p.view.dtype);
        entry["shape"] = std::vector<int64_t>(p.view.shape, p.view.shape + p.view.rank);
        entry["shape"].SetStyle(YAML::EmitterStyle::Flow);
        list.push_back(entry);
    }
    manifest["tensors"] = list;
    write_bytes(temporary / "metrics.csv", c.metrics_csv);
    YAML::Emitter emitter;
    emitter << manifest;
    // The manifest last: a folder with a manifest has every file it names.
    write_bytes(temporary / "manifest.yaml", std::string(emitter.c_str()) + "\n");

    remove_folder(final_folder);
    fs::rename(temporary, final_folder);
    fault_point("checkpoint-swap"); // a kill with the new and the old checkpoint both complete
    // Only the last is kept: the previous one, and any that a kill at this point left before.
    std::vector<fs::path> older;
    for (const auto& entry : fs::directory_iterator(root))
        if (entry.path() != final_folder && parse_name(entry.path().filename().string()))
            older.push_back(entry.path());
    if (!previous.empty() && previous != final_folder && fs::exists(previous) &&
        std::find(older.begin(), older.end(), previous) == older.end())
        older.push_back(previous);
    for (const fs::path& folder : older)
        remove_folder(folder);
    return final_folder;
}

std::string fingerprint(const std::string& text)
{
    uint64_t h = 1469598103934665603ull; // FNV-1a, 64 bits
    for (unsigned char c : text)
        h = (h ^ c) * 1099511628211ull;
    char buffer[17];
    std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(h));
    return buffer;
}

std::optional<fs::path> last_checkpoint(const fs::path& run_folder)
{
    std::optional<fs::path> best;
    std::pair<size_t, int64_t> best_key{ 0, -1 };
    std::error_code ec;
    const fs::path root = run_folder / "checkpoints";
    const fs::file_status status = fs::symlink_status(root, ec);
    if (status.type() == fs::file_type::not_found)
        return best;
    if (status.type() != fs::file_type::directory)
        throw UserError("the run's checkpoints folder " + root.string() + " is not a folder.");
    fs::directory_iterator entries(root, ec);
    if (ec)
        throw UserError("the run's checkpoints folder " + root.string() + " cannot be read (" + ec.message() +
                        ").");
    for (const auto& entry : entries)
    {
        const auto key = parse_name(entry.path().filename().string());
        if (key && entry.is_directory(ec) && *key > best_key)
            best = entry.path(), best_key = *key;
    }
    return best;
}

Checkpoint read_checkpoint(const fs::path& folder)
{
    const auto damaged = [&](const std::string& why) {
        return UserError("checkpoint " + folder.string() + " is damaged: " + why + ".");
    };
    Checkpoint c;
    YAML::Node manifest;
    try
    {
        std::string text;
        if (const std::string why = read_regular_file(folder / "manifest.yaml", uint64_t{ 16 } << 20, text);
            !why.empty())
            throw damaged("its manifest.yaml " + why);
        manifest = YAML::Load(text);
        if (manifest["format"].as<std::string>() != "ansatz checkpoint 2")
            throw damaged("it is not a checkpoint of this engine's format (" +
                          manifest["format"].as<std::string>() + ")");
        c.pipeline = manifest["pipeline"].as<std::string>();
        c.stage = manifest["stage"].as<size_t>();
        c.epoch = manifest["epoch"].as<int64_t>();
        for (const YAML::Node& m : manifest["models"])
            c.models.push_back(ModelShape{ m["model"].as<std::string>(),
                                           m["sample_shape"].as<std::vector<int64_t>>(),
                                           m["shaped_by"].as<std::string>(), m["is_image"].as<bool>(),
                                           m["domain"].as<int32_t>(), m["categories"].as<int32_t>() });
        // What the manifest asks for, before anything is read: a self-consistent but huge tensor is
        // refused here instead of running the machine out of memory.
        double total = 0;
        for (const YAML::Node& t : manifest["tensors"])
        {
            double bytes = 8;
            for (int64_t extent : t["shape"].as<std::vector<int64_t>>())
                bytes *= static_cast<double>(std::max<int64_t>(extent, 0));
            total += bytes;
        }
        if (const int64_t memory = physical_memory(); memory > 0 && total > static_cast<double>(memory))
            throw damaged("its tensors would need " + ansatz::Host::format_bytes(total) + ", more than the " +
                          ansatz::Host::format_bytes(static_cast<double>(memory)) + " this machine has");
        for (const YAML::Node& t : manifest["tensors"])
        {
            CheckpointPiece p;
            p.owner = t["owner"].as<std::string>();
            p.part = t["part"].as<std::string>();
            p.name = t["name"].as<std::string>();
            const std::string file = t["file"].as<std::string>();
            if (file.find('/') != std::string::npos || file != file_name(p))
                throw damaged("its manifest names the file '" + file + "' for " + p.owner + "." + p.name);
            NpyArray array;
            try
            {
                uint64_t bytes = 8;
                for (int64_t extent : t["shape"].as<std::vector<int64_t>>())
                    bytes *= static_cast<uint64_t>(std::max<int64_t>(extent, 0));
                array = read_npy(folder / file, bytes + (uint64_t{ 1 } << 16)); // elements + a header
            }
            catch (const std::runtime_error& e)
            {
                throw damaged(file + ": " + e.what());
            }
            if (dtype_name(array.dtype) != t["dtype"].as<std::string>() ||
                array.shape != t["shape"].as<std::vector<int64_t>>())
                throw damaged(file + " holds another dtype or shape than its manifest says");
            p.view = array.view();
            p.bytes = std::move(array.bytes);
            c.pieces.push_back(std::move(p));
        }
        // Only now: moving a short std::string (8 bytes) moves its characters too.
        for (CheckpointPiece& p : c.pieces)
            p.view.data = p.bytes.data();
    }
    catch (const UserError&)
    {
        throw;
    }
    catch (const YAML::Exception& e)
    {
        throw damaged("its manifest.yaml cannot be read (" + e.msg + ")");
    }
    if (const std::string why =
            read_regular_file(folder / "metrics.csv", uint64_t{ 64 } << 20, c.metrics_csv);
        !why.empty())
        throw damaged("its metrics.csv " + why);
    return c;
}

} // namespace ansatz::engine

// checkpoint.hpp -- everything a bit-exact resume needs after an epoch: every model's parameters,
// every component's state, the engine's own state of the running stage (data order, random streams)
// and the metrics rows so far. One .npy per tensor plus manifest.yaml and metrics.csv.
//
// No moment of a kill leaves a folder that does not load: a checkpoint is written into a hidden
// temporary folder and renamed into place; the previous one is renamed to a hidden name before it is
// deleted. Hidden folders (".name") are never read and are removed by the next writer.
#pragma once

#include "ansatz/abi.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ansatz::engine
{

// How a model was set up: what a resumed run sets it up with again.
struct ModelShape
{
    std::string model;
    std::vector<int64_t> sample_shape;
    std::string shaped_by; // the dataset that fixed it, or "" when the model's own configuration did
    bool is_image = false;
    int32_t domain = 0;
    int32_t categories = 0;
};

// One saved tensor: `owner` is a component's name or "engine"; `part` is "parameters" or "state".
struct CheckpointPiece
{
    std::string owner;
    std::string part;
    std::string name;
    ansatz_tensor view{}; // writing: the live tensor; reading: points into `bytes`
    std::string bytes;
};

struct Checkpoint
{
    std::string pipeline;
    size_t stage = 0;
    int64_t epoch = 0;
    std::vector<ModelShape> models;
    std::vector<CheckpointPiece> pieces;
    std::string metrics_csv;

    // The pieces of one owner and part, in the order saved (views into this checkpoint).
    std::vector<ansatz_named_tensor> named(const std::string& owner, const std::string& part) const;
};

// Writes <run>/checkpoints/stage<S>-epoch<E>/ and removes `previous` (if not empty) once it is there.
std::filesystem::path write_checkpoint(const std::filesystem::path& run_folder, const Checkpoint& content,
                                       const std::filesystem::path& previous);

// A short hash of a text (the resolved pipeline), for the manifest.
std::string fingerprint(const std::string& text);

// The newest checkpoint folder of a run (highest stage, then epoch), if any; a checkpoints folder
// that cannot be listed is a UserError (never "no checkpoint": that would start the run afresh).
std::optional<std::filesystem::path> last_checkpoint(const std::filesystem::path& run_folder);

// Reads a checkpoint folder; a damaged one throws a UserError naming the folder and what is wrong.
Checkpoint read_checkpoint(const std::filesystem::path& folder);

} // namespace ansatz::engine

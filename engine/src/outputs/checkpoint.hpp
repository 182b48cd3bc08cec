// checkpoint.hpp -- a model's parameters (and its optimizer's state) after an epoch, one .npy per
// tensor plus manifest.yaml, written to a temporary folder and renamed: a crash never leaves half a
// checkpoint, and the previous one is removed only after the new one is complete.
#pragma once

#include "ansatz/abi.h"

#include <filesystem>
#include <string>
#include <vector>

namespace ansatz::engine
{

struct CheckpointContent
{
    std::string pipeline;
    size_t stage = 0;
    int64_t epoch = 0;
    std::string model;
    std::vector<ansatz_named_tensor> parameters;
    std::string optimizer;
    std::vector<ansatz_named_tensor> optimizer_state;
};

// Writes <run>/checkpoints/stage<S>-epoch<E>/ and removes `previous` (if not empty) once it is there.
std::filesystem::path write_checkpoint(const std::filesystem::path& run_folder,
                                       const CheckpointContent& content,
                                       const std::filesystem::path& previous);

} // namespace ansatz::engine

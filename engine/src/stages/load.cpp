// The load stage: sets a model's parameters from .npy files, one per parameter, as
// torch.nn.Module.load_state_dict does: from a checkpoint folder of any run (`<model>.<name>.npy`) or
// from a folder of plain `<name>.npy` files written by another tool (numpy.save of a float32,
// C-order array of the parameter's shape), e.g. weights trained by scikit-learn, to be evaluated by
// the same evaluators as the model's own.
#include "ansatz/tensor.hpp"
#include "outputs/npy.hpp"
#include "run/run.hpp"
#include "stages/stages.hpp"
#include "user_error.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>

namespace ansatz::engine
{

namespace fs = std::filesystem;

void check_load_stage(const Pipeline& p, const StageDecl& s)
{
    const Value& from = s.values.at("from");
    if (!fs::is_directory(from.text))
        throw UserError(p.source.where(from.node) + ": " + s.label() + ": key 'from' names " + from.text +
                        ", which is not a folder; give the folder that holds one .npy file per parameter");
}

void run_load_stage(Run& run, const StageDecl& stage)
{
    const std::string model = stage.text("model");
    run.prepare_model(model, stage.has("data") ? stage.text("data") : "", stage);
    const fs::path from = stage.text("from");
    std::string loaded;
    for (const ansatz_named_tensor& live : model_parameters(run.instance(model)))
    {
        const fs::path prefixed = from / (model + "." + live.name + ".npy");
        const fs::path plain = from / (std::string(live.name) + ".npy");
        std::error_code ec;
        const fs::path file = fs::exists(prefixed, ec) ? prefixed : plain;
        if (!fs::exists(file, ec))
            throw UserError(stage.label() + ": parameter '" + live.name + "' of model '" + model +
                            "' has no file in " + from.string() + " (looked for " +
                            prefixed.filename().string() + " and " + plain.filename().string() + ").");
        NpyArray array;
        try
        {
            array = read_npy(file, 4 * static_cast<uint64_t>(element_count(live.tensor)) + (1u << 20));
        }
        catch (const std::exception& e)
        {
            throw UserError(stage.label() + ": " + file.string() + ": " + e.what() + ".");
        }
        const ansatz_tensor saved = array.view();
        bool same = saved.dtype == live.tensor.dtype && saved.rank == live.tensor.rank;
        for (int32_t i = 0; same && i < saved.rank; ++i)
            same = saved.shape[i] == live.tensor.shape[i];
        if (!same)
            throw UserError(stage.label() + ": " + file.string() + " holds " + dtype_name(saved.dtype) + " " +
                            shape_string(saved) + ", but parameter '" + live.name + "' of model '" + model +
                            "' is " + dtype_name(live.tensor.dtype) + " " + shape_string(live.tensor) + ".");
        std::memcpy(live.tensor.data, saved.data,
                    static_cast<size_t>(element_count(live.tensor)) * dtype_size(live.tensor.dtype));
        loaded += (loaded.empty() ? "" : ", ") + std::string(live.name) + " " + shape_string(live.tensor);
    }
    run.instance(model).parameters_changed();
    std::fprintf(stderr, "load [stage %zu]: model '%s' from %s: %s\n", stage.index, model.c_str(),
                 from.string().c_str(), loaded.c_str());
}

} // namespace ansatz::engine

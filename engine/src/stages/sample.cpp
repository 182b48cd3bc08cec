// The sample stage: `count` chains started from the model's random states (or from data), advanced
// `steps` sweeps by the sampler; the final states are written as .npy and, for images, a PNG grid.
#include "ansatz/refs.hpp"
#include "outputs/files.hpp"
#include "outputs/progress.hpp"
#include "run.hpp"
#include "stages/stages.hpp"

#include <algorithm>
#include <cstdio>

namespace ansatz::engine
{

void run_sample_stage(Run& run, const StageDecl& stage)
{
    const std::string model_name = stage.text("model");
    if (stage.has("data"))
        run.prepare_model(model_name, stage.text("data"), stage);
    const ModelState& state = run.model_state(model_name);
    Instance& model = run.instance(model_name);
    Instance& sampler = run.instance(stage.text("sampler"));
    const ModelRef model_ref(model.model());
    const SamplerRef sampler_ref(sampler.sampler());
    ansatz_status st{};
    sampler.check(sampler.sampler().table->bind(sampler.self(), &model_ref.handle(), &st), st);

    const int64_t count = stage.integer("count");
    const int64_t steps = stage.integer("steps");
    const int64_t dim = flat_size(state.sample_shape);
    const std::string prefix = "stages." + std::to_string(stage.index) + ".sample";
    Rng init_rng = run.host().stream(prefix + ".init");
    // One stream per chain: chain i's trajectory is the same whatever `count` is.
    Rng chain_parent = run.host().stream(prefix + ".chains");
    StreamArray chain_streams;
    const Streams streams = chain_streams.split_from(chain_parent, count);

    std::vector<float> chains(static_cast<size_t>(count * dim));
    ansatz_tensor view = make_view(chains.data(), { count, dim });
    if (stage.text("init") == "data")
    {
        Instance& data = run.instance(stage.text("data"));
        const int64_t available = dataset_info(data).count;
        std::vector<int64_t> rows(static_cast<size_t>(count));
        for (int64_t& r : rows)
            r = static_cast<int64_t>(init_rng.below(static_cast<uint64_t>(available)));
        data.check(
            data.dataset().read(data.self(), rows.data(), count, &view, nullptr, &init_rng.state(), &st), st);
    }
    else
        model.check(model.model().table->random_state(model.self(), &view, c_states(streams), &st), st);

    char label[96];
    std::snprintf(label, sizeof label, "sample [stage %zu]", stage.index);
    Progress progress(label, steps, "sweeps");
    // Advance in slices so the progress bar moves and an interrupt is seen; the chains do not care.
    const int64_t slice = std::max<int64_t>(1, steps / 100);
    for (int64_t done = 0; done < steps;)
    {
        if (run.host().cancelled())
            throw Error("interrupted during " + stage.label(), ANSATZ_STATUS_CANCELLED);
        const int64_t now = std::min(slice, steps - done);
        sampler.check(sampler.sampler().table->advance(sampler.self(), &view, static_cast<int32_t>(now),
                                                       c_states(streams), &st),
                      st);
        done += now;
        progress.update(done);
    }
    const double seconds = progress.seconds();
    progress.finish();

    std::vector<std::pair<std::string, double>> row;
    if (model_ref.has_energy())
    {
        std::vector<float> energies(static_cast<size_t>(count));
        ansatz_tensor out = make_view(energies.data(), { count });
        model_ref.free_energy(view, out);
        double sum = 0;
        for (float e : energies)
            sum += e;
        row.emplace_back("mean_free_energy", sum / static_cast<double>(count));
    }
    ansatz_metrics sm{};
    sampler.check(sampler.sampler().table->metrics(sampler.self(), &sm, &st), st);
    for (int32_t i = 0; i < sm.count; ++i)
        row.emplace_back(sm.items[i].name, sm.items[i].value);
    row.emplace_back("seconds", seconds);
    row.emplace_back("sweeps_per_second", seconds > 0 ? static_cast<double>(steps * count) / seconds : 0.0);
    run.metrics().add(stage.index, stage.type, 0, row);

    const std::string base = "stage" + std::to_string(stage.index) + "_samples";
    std::vector<int64_t> shape{ count };
    shape.insert(shape.end(), state.sample_shape.begin(), state.sample_shape.end());
    write_file_atomic(run.folder() / (base + ".npy"), npy_bytes(chains.data(), shape));
    std::string written = base + ".npy";
    if (stage.values.at("image").integer && state.is_image && state.sample_shape.size() == 2)
    {
        int width = 0, height = 0;
        const std::vector<uint8_t> pixels =
            image_grid(chains.data(), count, state.sample_shape[0], state.sample_shape[1], width, height);
        // Nearest-neighbour upscaling to about 512 pixels: a grid of 28 x 28 images is otherwise tiny.
        const int scale = std::max(1, 512 / std::max(width, height));
        write_file_atomic(run.folder() / (base + ".png"),
                          png_bytes(upscale(pixels, width, height, scale), width * scale, height * scale));
        written += ", " + base + ".png";
    }
    std::fprintf(stderr, "%s: %lld chains x %lld sweeps in %.1f s -> %s\n", label,
                 static_cast<long long>(count), static_cast<long long>(steps), seconds, written.c_str());
}

} // namespace ansatz::engine

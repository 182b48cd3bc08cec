// The sample stage: `count` chains started from the model's random states (or from data), advanced
// `steps` sweeps by the sampler; the final states are written as .npy and, for images, a PNG grid.
// Every `trace_every` sweeps after `burn_in`, the chains' traces are recorded (stages/traces.hpp) and
// their diagnostics reported.
#include "ansatz/refs.hpp"
#include "outputs/files.hpp"
#include "outputs/progress.hpp"
#include "pipeline/pipeline.hpp"
#include "run/run.hpp"
#include "stages/stages.hpp"
#include "stages/traces.hpp"
#include "user_error.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace ansatz::engine
{

namespace
{

// The rows of `data` the chains start from, drawn at random.
void start_from_data(Run& run, const StageDecl& stage, Rng& rng, ansatz_tensor& chains)
{
    Instance& data = run.instance(stage.text("data"));
    const int64_t available = dataset_info(data).count;
    if (available == 0)
        throw UserError(run.pipeline().source.where(stage.node) + ": " + stage.label() + ": dataset '" +
                        stage.text("data") + "' is empty, so init: data has no sample to start from.");
    const int64_t count = chains.shape[0];
    std::vector<int64_t> rows(static_cast<size_t>(count));
    for (int64_t& r : rows)
        r = static_cast<int64_t>(rng.below(static_cast<uint64_t>(available)));
    ansatz_status st{};
    data.check(data.dataset().read(data.self(), rows.data(), count, &chains, nullptr, &rng.state(), &st), st);
}

// Values of the domain mapped to [0, 1] for a picture: a REAL model's box (2.5) when it states a
// finite one, else the values' own range.
void to_grey(std::vector<float>& values, int32_t domain, int32_t categories, std::pair<double, double> box)
{
    if (values.empty())
        return;
    float lo = 0, hi = 1;
    if (domain == ANSATZ_DOMAIN_SPIN)
        lo = -1;
    else if (domain == ANSATZ_DOMAIN_CATEGORICAL)
        hi = static_cast<float>(std::max(1, categories - 1));
    else if (domain == ANSATZ_DOMAIN_REAL && std::isfinite(box.first) && std::isfinite(box.second))
        lo = static_cast<float>(box.first), hi = static_cast<float>(box.second);
    else if (domain == ANSATZ_DOMAIN_REAL)
    {
        const auto [min, max] = std::minmax_element(values.begin(), values.end());
        lo = *min, hi = *max > *min ? *max : *min + 1;
    }
    for (float& v : values)
        v = std::clamp((v - lo) / (hi - lo), 0.0f, 1.0f);
}

// E[v | h] with h ~ p(h | v) drawn from each chain's final state: the picture of an RBM's sample that
// its users expect (the states themselves are salt-and-pepper). The chains' streams are copied, so
// the samples written to .npy do not depend on whether a picture is drawn.
std::vector<float> visible_means(const ModelRef& model, const ansatz_tensor& chains, Streams streams)
{
    const int64_t count = chains.shape[0], dim = chains.shape[1];
    const int64_t hidden = model.block_size(ANSATZ_BLOCK_HIDDEN);
    std::vector<Rng> copies(streams.begin(), streams.end());
    std::vector<float> h_mean(static_cast<size_t>(count * hidden)), h(h_mean.size());
    std::vector<float> v_mean(static_cast<size_t>(count * dim));
    ansatz_tensor hm = make_view(h_mean.data(), { count, hidden }),
                  hs = make_view(h.data(), { count, hidden });
    ansatz_tensor vm = make_view(v_mean.data(), { count, dim });
    model.conditional(ANSATZ_BLOCK_HIDDEN, chains, hm, &hs, Streams(copies.data(), copies.size()));
    model.conditional(ANSATZ_BLOCK_VISIBLE, hs, vm, nullptr);
    return v_mean;
}

} // namespace

int64_t sample_slice(int64_t steps)
{
    // At most 1% of the steps, so the progress bar moves; at most max_slice, so a stop request is
    // seen soon and the count fits advance()'s int32 (a plain cast of steps / 100 wrapped around, and
    // 0 means "the sampler's configured steps"). The chains do not care how their sweeps are sliced.
    constexpr int64_t max_slice = 1000;
    return std::clamp<int64_t>(steps / 100, 1, max_slice);
}

int64_t sample_burn_in(const StageDecl& s)
{
    return s.has("burn_in") ? s.integer("burn_in") : s.integer("steps") / 2;
}

std::vector<std::string> sample_writes(const StageDecl& s)
{
    std::vector<std::string> out{ "stage" + std::to_string(s.index) + "_samples.npy" };
    if (!s.has("sampler")) // a latent model's draws h ~ N(0, I) beside their decoded means
        out.push_back("stage" + std::to_string(s.index) + "_latent.npy");
    return out;
}

void check_sample_stage(const Pipeline& p, const StageDecl& s)
{
    if (s.has("burn_in") && s.integer("burn_in") >= s.integer("steps"))
        throw UserError(p.source.where(s.values.at("burn_in").node) + ": " + s.label() + ": burn_in (" +
                        std::to_string(s.integer("burn_in")) + ") must be below steps (" +
                        std::to_string(s.integer("steps")) +
                        "): the diagnostics' traces are recorded after the burn-in");
    if (!s.has("sampler"))
    {
        const ComponentDecl& model = p.component(s.text("model"));
        const auto at = [&](const std::string& key) {
            const Value& v = s.values.at(key);
            return p.source.where(v.node.IsDefined() && !v.node.IsNull() ? v.node : s.node) + ": " +
                   s.label();
        };
        if (!(model_functions_of(*model.plugin->desc) & ANSATZ_FN_LATENT))
            throw UserError(
                at("model") + ": key 'sampler' is missing: model '" + model.name + "' (plugin '" +
                model.plugin->desc->name +
                "') is sampled by a Markov chain; name a sampler (only a latent-variable model is "
                "sampled without one, by decoding h ~ N(0, I))");
        if (s.text("init") == "data")
            throw UserError(at("init") +
                            ": init: data starts a sampler's chains at data rows, but this stage has "
                            "no sampler: the samples of latent model '" +
                            model.name + "' are decoded from h ~ N(0, I)");
        if (s.has("burn_in"))
            throw UserError(at("burn_in") +
                            ": burn_in counts a sampler's sweeps, but this stage has no sampler: "
                            "the samples of latent model '" +
                            model.name + "' are exact draws, decoded from h ~ N(0, I)");
        if (s.text("picture") == "states")
            throw UserError(at("picture") +
                            ": picture: states shows a sampler's chains, but this stage has no "
                            "sampler: the picture of latent model '" +
                            model.name + "' shows its decoded means E[x | h]");
        return;
    }
    if (s.text("init") == "data" && !s.has("data"))
    {
        const Value& init = s.values.at("init");
        throw UserError(p.source.where(init.node.IsDefined() && !init.node.IsNull() ? init.node : s.node) +
                        ": " + s.label() +
                        ": init: data needs a 'data' key naming a dataset to start the chains from");
    }
}

namespace
{

// A latent-variable model's ancestral samples: h ~ N(0, I) (abi.h: the prior), chain n's from the n-th
// stream of "stages.<i>.sample.chains", decoded to E[x | h]. The means are the samples VAE users look at
// (as the PyTorch and Keras examples); stage<i>_samples.npy holds them and stage<i>_latent.npy the h.
void run_latent_samples(Run& run, const StageDecl& stage)
{
    const std::string model_name = stage.text("model");
    run.prepare_model(model_name, stage.has("data") ? stage.text("data") : "", stage);
    const ModelState& state = run.model_state(model_name);
    const ModelRef model(run.instance(model_name).model());
    const auto start = std::chrono::steady_clock::now();
    const int64_t count = stage.integer("count");
    const int64_t dim = flat_size(state.sample_shape);
    const int64_t l = model.latent_size();
    Rng chain_parent = run.host().stream("stages." + std::to_string(stage.index) + ".sample.chains");
    StreamArray chain_streams;
    const Streams streams = chain_streams.split_from(chain_parent, count);
    std::vector<float> h(static_cast<size_t>(count * l)), x(static_cast<size_t>(count * dim));
    for (int64_t n = 0; n < count; ++n)
        for (int64_t j = 0; j < l; ++j)
            h[static_cast<size_t>(n * l + j)] = static_cast<float>(streams[static_cast<size_t>(n)].normal());
    const ansatz_tensor hv = make_view(h.data(), { count, l });
    ansatz_tensor xv = make_view(x.data(), { count, dim });
    model.decode_mean(hv, xv);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run.metrics().add(stage.index, stage.type, 0,
                      { { "seconds", seconds },
                        { "samples_per_second", seconds > 0 ? static_cast<double>(count) / seconds : 0.0 } });

    const std::string base = "stage" + std::to_string(stage.index) + "_";
    std::vector<int64_t> shape{ count };
    shape.insert(shape.end(), state.sample_shape.begin(), state.sample_shape.end());
    write_file_atomic(run.folder() / (base + "samples.npy"), npy_bytes(x.data(), shape));
    write_file_atomic(run.folder() / (base + "latent.npy"), npy_bytes(h.data(), { count, l }));
    std::string written = base + "samples.npy, " + base + "latent.npy";
    if (stage.values.at("image").integer && state.is_image && state.sample_shape.size() == 2)
    {
        std::vector<float> grey = x; // the data's range [0, 1]
        for (float& v : grey)
            v = std::clamp(v, 0.0f, 1.0f);
        int width = 0, height = 0;
        const std::vector<uint8_t> pixels =
            image_grid(grey.data(), count, state.sample_shape[0], state.sample_shape[1], width, height);
        const int scale = std::max(1, 512 / std::max(width, height));
        write_file_atomic(run.folder() / (base + "samples.png"),
                          png_bytes(upscale(pixels, width, height, scale), width * scale, height * scale));
        written += ", " + base + "samples.png";
    }
    std::fprintf(stderr,
                 "sample [stage %zu]: %lld samples of latent model '%s' (decode_mean of h ~ N(0, I)) -> %s\n",
                 stage.index, static_cast<long long>(count), model_name.c_str(), written.c_str());
}

} // namespace

void run_sample_stage(Run& run, const StageDecl& stage)
{
    if (!stage.has("sampler"))
        return run_latent_samples(run, stage);
    const std::string model_name = stage.text("model");
    run.prepare_model(model_name, stage.has("data") ? stage.text("data") : "", stage);
    const ModelState& state = run.model_state(model_name);
    Instance& model = run.instance(model_name);
    Instance& sampler = run.instance(stage.text("sampler"));
    const ModelRef model_ref(model.model());
    const SamplerRef sampler_ref(sampler.sampler());
    const ansatz_sampler_handle sampler_handle = sampler.sampler();
    ansatz_status st{};
    // Through the instance, so a refusal names the component (as in a train stage).
    sampler.check(sampler_handle.table->bind(sampler_handle.self, &model_ref.handle(), &st), st);
    run.restore_bound_state(stage);

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
        start_from_data(run, stage, init_rng, view);
    else
        model_ref.random_state(view, streams);

    char label[96];
    std::snprintf(label, sizeof label, "sample [stage %zu]", stage.index);
    // The traces: after sweep burn_in + k * trace_every, k = 1, 2, ... (none with trace_every: 0).
    const int64_t trace_every = stage.integer("trace_every");
    const int64_t burn_in = sample_burn_in(stage);
    ChainTraces traces(model_ref, count, dim);
    int64_t next_record = trace_every > 0 ? burn_in + trace_every : steps + 1;
    Progress progress(label, steps, "sweeps");
    const int64_t slice = sample_slice(steps);
    if (steps == 0) // one call of the sampler's own steps (abi.h: advance's 0), e.g. a draw from a buffer
        sampler.check(sampler_handle.table->advance(sampler_handle.self, &view, 0, c_states(streams), &st),
                      st);
    for (int64_t done = 0; done < steps;)
    {
        if (run.stop_requested())
            throw Error(run.stop_word() + " during " + stage.label(), ANSATZ_STATUS_CANCELLED);
        const int64_t now = std::min({ slice, steps - done, next_record - done });
        sampler.check(sampler_handle.table->advance(sampler_handle.self, &view, static_cast<int32_t>(now),
                                                    c_states(streams), &st),
                      st);
        done += now;
        if (done == next_record)
        {
            traces.record(view);
            next_record += trace_every;
        }
        run.host().progress().step = done;
        progress.update(done);
    }
    const double seconds = progress.seconds();
    progress.finish();

    std::vector<std::pair<std::string, double>> row;
    if (model_ref.has(ANSATZ_FN_FREE_ENERGY))
    {
        std::vector<float> energies(static_cast<size_t>(count));
        ansatz_tensor out = make_view(energies.data(), { count });
        model_ref.free_energy(view, out);
        double sum = 0;
        for (float e : energies)
            sum += e;
        row.emplace_back("mean_free_energy", sum / static_cast<double>(count));
    }
    MetricsSink sink;
    sampler_ref.metrics(*sink.c());
    for (const auto& metric : sink.take())
        row.push_back(metric);
    for (const auto& metric : traces.metrics())
        row.push_back(metric);
    row.emplace_back("seconds", seconds);
    // In double: steps x count may not fit in int64.
    row.emplace_back("sweeps_per_second",
                     seconds > 0 ? static_cast<double>(steps) * static_cast<double>(count) / seconds : 0.0);
    run.metrics().add(stage.index, stage.type, 0, row);

    const std::string base = "stage" + std::to_string(stage.index) + "_samples";
    std::vector<int64_t> shape{ count };
    shape.insert(shape.end(), state.sample_shape.begin(), state.sample_shape.end());
    write_file_atomic(run.folder() / (base + ".npy"), npy_bytes(chains.data(), shape));
    std::string written = base + ".npy";
    if (stage.values.at("image").integer && state.is_image && state.sample_shape.size() == 2)
    {
        int width = 0, height = 0;
        // Grey levels from the model's domain: {0,1} and {-1,+1} to black and white, K categories evenly.
        std::vector<float> grey = stage.text("picture") == "means" && model_ref.has_conditionals()
                                      ? visible_means(model_ref, view, streams)
                                      : chains;
        to_grey(grey, state.domain, state.categories, model_ref.bounds());
        const std::vector<uint8_t> pixels =
            image_grid(grey.data(), count, state.sample_shape[0], state.sample_shape[1], width, height);
        // Nearest-neighbour upscaling to about 512 pixels: a grid of 28 x 28 images is otherwise tiny.
        const int scale = std::max(1, 512 / std::max(width, height));
        write_file_atomic(run.folder() / (base + ".png"),
                          png_bytes(upscale(pixels, width, height, scale), width * scale, height * scale));
        written += ", " + base + ".png";
    }
    std::fprintf(stderr, "%s: %lld chains x %lld sweeps in %.1f s -> %s\n", label,
                 static_cast<long long>(count), static_cast<long long>(steps), seconds, written.c_str());
    if (trace_every > 0)
        std::fprintf(stderr, "%s: %lld draws per chain after %lld sweeps of burn-in, every %lld: %s\n", label,
                     static_cast<long long>(traces.draws()), static_cast<long long>(burn_in),
                     static_cast<long long>(trace_every), traces.summary().c_str());
}

} // namespace ansatz::engine

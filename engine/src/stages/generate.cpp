// The generate stage: draws a dataset from a model with a sampler, at one or several inverse
// temperatures. For each temperature, `chains` chains start from the model's random states (or from
// rows of `data`), run `burn_in` sweeps, then keep their states every `thin` sweeps until each chain
// has given `samples` rows. The rows go to <to>.npy {rows, D} (float32, in the model's domain) and the
// inverse temperature of each row to <to>.beta.npy {rows} (float64), in the run folder, temperature
// after temperature, then sample after sample, then chain after chain. metrics.csv gets one row per
// temperature (its epoch column is the temperature's number, 1 for the first): beta, the sampler's
// metrics and the diagnostics of the kept rows' traces (stages/traces.hpp).
#include "ansatz/error.hpp"
#include "ansatz/refs.hpp"
#include "outputs/files.hpp"
#include "outputs/npy.hpp"
#include "outputs/progress.hpp"
#include "run/run.hpp"
#include "stages/stages.hpp"
#include "stages/traces.hpp"
#include "user_error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace ansatz::engine
{

namespace
{

// The inverse temperatures of the stage: `betas`, 1 / `temperatures`, or {1}.
std::vector<double> stage_betas(const StageDecl& s)
{
    if (s.has("betas"))
        return s.values.at("betas").reals;
    if (s.has("temperatures"))
    {
        std::vector<double> out;
        for (double t : s.values.at("temperatures").reals)
            out.push_back(1.0 / t);
        return out;
    }
    return { 1.0 };
}

// Whether a sampler component can advance chains at inverse temperatures other than 1: ABI 2.2's
// advance_tempered (what was reserved room before, so zero in a 2.0 or 2.1 plugin's table).
bool can_temper(const ansatz_component& sampler)
{
    return static_cast<const ansatz_sampler_table*>(sampler.table)->advance_tempered != nullptr;
}

// "0.44", "1": the shortest text that reads back as the value.
std::string number(double v)
{
    char buffer[32];
    for (int precision = 1; precision <= 17; ++precision)
    {
        std::snprintf(buffer, sizeof buffer, "%.*g", precision, v);
        if (std::strtod(buffer, nullptr) == v)
            break;
    }
    return buffer;
}

bool is_file_name(const std::string& s)
{
    if (s.empty() || s.size() > 100)
        return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

} // namespace

std::vector<std::string> generate_writes(const StageDecl& s)
{
    return { s.text("to") + ".npy", s.text("to") + ".beta.npy" };
}

void check_generate_stage(const Pipeline& p, const StageDecl& s)
{
    const auto fail = [&](const std::string& key, const std::string& what) {
        const Value& v = s.values.at(key);
        throw UserError(p.source.where(v.node.IsDefined() && !v.node.IsNull() ? v.node : s.node) + ": " +
                        s.label() + ": " + what);
    };
    const std::string& to = s.text("to");
    if (!is_file_name(to))
        fail("to",
             "to: '" + to +
                 "' names the dataset's files (<to>.npy, <to>.beta.npy in the run folder): use 1 to 100 "
                 "letters, digits, '_' or '-'");
    for (const StageDecl& earlier : p.stages)
        if (earlier.type == "generate" && earlier.text("to") == to)
            fail("to", "to: '" + to + "' is also written by " + earlier.label() +
                           "; give each generate stage a name of its own");
    if (s.has("betas") && s.has("temperatures"))
        fail("temperatures", "keys betas and temperatures exclude each other; give one of them");
    if (s.text("init") == "data" && !s.has("data"))
        fail("init", "init: data needs a 'data' key naming a dataset to start the chains from");
    const std::vector<double> betas = stage_betas(s);
    for (size_t i = 0; i < betas.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (betas[i] == betas[j])
                fail(s.has("betas") ? "betas" : "temperatures",
                     "inverse temperature " + number(betas[i]) + " is given twice (items " +
                         std::to_string(j) + " and " + std::to_string(i) + "); give each once");
    const ComponentDecl& sampler = p.component(s.text("sampler"));
    const bool other_than_one = std::any_of(betas.begin(), betas.end(), [](double b) { return b != 1.0; });
    if (other_than_one && !can_temper(*sampler.plugin->desc))
        fail(
            s.has("betas") ? "betas" : "temperatures",
            "sampler '" + sampler.name + "' (plugin '" + sampler.plugin->desc->name + "' from " +
                sampler.plugin->file.string() +
                ") has no advance_tempered (plugin ABI 2.2), so it samples only at beta = 1; give betas: [1] "
                "or a sampler that runs chains at an inverse temperature");
    if (s.integer("burn_in") > (int64_t{ 1 } << 62) - s.integer("samples") * s.integer("thin"))
        fail("burn_in", "burn_in + samples x thin is " + std::to_string(s.integer("burn_in")) + " + " +
                            std::to_string(s.integer("samples")) + " x " + std::to_string(s.integer("thin")) +
                            " sweeps, more than 2^62");
    // Rows * values per row must fit memory; the stage refuses that when it knows the sample size.
    const int64_t per_temperature = s.integer("chains") * s.integer("samples");
    if (per_temperature > (int64_t{ 1 } << 40) / static_cast<int64_t>(betas.size()))
        fail("samples", "chains x samples x temperatures is " + std::to_string(s.integer("chains")) + " x " +
                            std::to_string(s.integer("samples")) + " x " + std::to_string(betas.size()) +
                            " rows, more than 2^40");
}

void run_generate_stage(Run& run, const StageDecl& stage)
{
    const std::string model_name = stage.text("model");
    run.prepare_model(model_name, stage.has("data") ? stage.text("data") : "", stage);
    const ModelState& state = run.model_state(model_name);
    Instance& model = run.instance(model_name);
    Instance& sampler = run.instance(stage.text("sampler"));
    const ModelRef model_ref(model.model());
    const SamplerRef sampler_ref(sampler.sampler());
    sampler_ref.bind(model_ref);
    run.restore_bound_state(stage);

    const std::vector<double> betas = stage_betas(stage);
    const int64_t dim = flat_size(state.sample_shape);
    if (std::any_of(betas.begin(), betas.end(), [](double b) { return b != 1.0; }))
        try
        {
            // The sampler says now, before any sweep, if it cannot temper this model.
            sampler_ref.require_tempering(dim);
        }
        catch (const InputError& e)
        {
            throw UserError(run.pipeline().source.where(stage.node) + ": " + stage.label() + ": " + e.what() +
                            ".");
        }
    const int64_t chains = stage.integer("chains");
    const int64_t burn_in = stage.integer("burn_in");
    const int64_t thin = stage.integer("thin");
    const int64_t samples = stage.integer("samples");
    const int64_t per_temperature = chains * samples;
    const int64_t rows = per_temperature * static_cast<int64_t>(betas.size());
    const double bytes =
        4.0 * static_cast<double>(rows) * static_cast<double>(dim) + 8.0 * static_cast<double>(rows);
    if (const int64_t memory = physical_memory(); memory > 0 && bytes > static_cast<double>(memory))
        throw UserError(run.pipeline().source.where(stage.node) + ": " + stage.label() + ": " +
                        std::to_string(rows) + " rows (chains x samples x temperatures) of " +
                        std::to_string(dim) + " values need " +
                        std::to_string(static_cast<int64_t>(bytes / (1 << 20))) + " MiB, more than the " +
                        std::to_string(memory >> 20) + " MiB of memory this machine has.");
    std::vector<float> out(static_cast<size_t>(rows * dim));
    std::vector<double> out_beta(static_cast<size_t>(rows));
    const std::string prefix = "stages." + std::to_string(stage.index) + ".generate";

    char label[96];
    std::snprintf(label, sizeof label, "generate [stage %zu]", stage.index);
    const int64_t sweeps = burn_in + samples * thin;
    double total_seconds = 0;
    for (size_t t = 0; t < betas.size(); ++t)
    {
        const double beta = betas[t];
        // One stream per chain, derived from a name of the temperature: chain n at beta b draws the
        // same numbers whatever the other temperatures and the chain count are.
        const std::string name = prefix + ".beta" + number(beta);
        Rng init_rng = run.host().stream(name + ".init");
        Rng chain_parent = run.host().stream(name + ".chains");
        StreamArray chain_streams;
        const Streams streams = chain_streams.split_from(chain_parent, chains);
        std::vector<float> states(static_cast<size_t>(chains * dim));
        ansatz_tensor view = make_view(states.data(), { chains, dim });
        if (stage.text("init") == "data")
        {
            Instance& data = run.instance(stage.text("data"));
            const int64_t available = dataset_info(data).count;
            if (available == 0)
                throw UserError(run.pipeline().source.where(stage.node) + ": " + stage.label() +
                                ": dataset '" + stage.text("data") +
                                "' is empty, so init: data has no sample to start from.");
            std::vector<int64_t> picked(static_cast<size_t>(chains));
            for (int64_t& r : picked)
                r = static_cast<int64_t>(init_rng.below(static_cast<uint64_t>(available)));
            ansatz_status st{};
            data.check(data.dataset().read(data.self(), picked.data(), chains, &view, nullptr,
                                           &init_rng.state(), &st),
                       st);
        }
        else
            model_ref.random_state(view, streams);
        // The sampler's metrics from here on are this temperature's.
        {
            MetricsSink discard;
            sampler_ref.metrics(*discard.c());
        }

        char temperature_label[160];
        std::snprintf(temperature_label, sizeof temperature_label, "%s beta %s (%zu of %zu)", label,
                      number(beta).c_str(), t + 1, betas.size());
        Progress progress(temperature_label, sweeps, "sweeps");
        ChainTraces traces(model_ref, chains, dim);
        const std::vector<double> chain_betas(static_cast<size_t>(chains), beta);
        const int64_t slice = sample_slice(sweeps);
        int64_t done = 0, kept = 0;
        const int64_t first_row = static_cast<int64_t>(t) * per_temperature;
        while (done < sweeps)
        {
            if (run.stop_requested())
                throw Error(run.stop_word() + " during " + stage.label(), ANSATZ_STATUS_CANCELLED);
            const int64_t next_keep = burn_in + (kept + 1) * thin;
            const int64_t now = std::min({ slice, next_keep - done });
            // Beta 1 is the model itself: advance, which every sampler has (and a 2.0 one only).
            if (beta == 1.0)
                sampler_ref.advance(view, static_cast<int32_t>(now), streams);
            else
                sampler_ref.advance_tempered(view, static_cast<int32_t>(now), chain_betas.data(), streams);
            done += now;
            if (done == next_keep)
            {
                std::copy(states.begin(), states.end(),
                          out.begin() + static_cast<std::ptrdiff_t>((first_row + kept * chains) * dim));
                traces.record(view);
                ++kept;
            }
            run.host().progress().step = done;
            progress.update(done);
        }
        const double seconds = progress.seconds();
        total_seconds += seconds;
        progress.finish();
        std::fill(out_beta.begin() + first_row, out_beta.begin() + first_row + per_temperature, beta);

        std::vector<std::pair<std::string, double>> row{ { "beta", beta },
                                                         { "rows", static_cast<double>(per_temperature) } };
        MetricsSink sink;
        sampler_ref.metrics(*sink.c());
        for (const auto& metric : sink.take())
            row.push_back(metric);
        for (const auto& metric : traces.metrics())
            row.push_back(metric);
        row.emplace_back("seconds", seconds);
        row.emplace_back("sweeps_per_second",
                         seconds > 0 ? static_cast<double>(sweeps) * static_cast<double>(chains) / seconds
                                     : 0.0);
        run.metrics().add(stage.index, stage.type, static_cast<int64_t>(t) + 1, row);
        std::fprintf(stderr, "%s: beta %s: %lld chains x %lld rows (burn-in %lld, thin %lld) in %.1f s: %s\n",
                     label, number(beta).c_str(), static_cast<long long>(chains),
                     static_cast<long long>(samples), static_cast<long long>(burn_in),
                     static_cast<long long>(thin), seconds, traces.summary().c_str());
    }

    const std::string to = stage.text("to");
    write_file_atomic(run.folder() / (to + ".npy"), npy_bytes(make_view(out.data(), { rows, dim })));
    write_file_atomic(run.folder() / (to + ".beta.npy"), npy_bytes(make_view(out_beta.data(), { rows })));
    std::fprintf(stderr, "%s: %zu temperature%s x %lld rows in %.1f s -> %s.npy, %s.beta.npy\n", label,
                 betas.size(), betas.size() == 1 ? "" : "s", static_cast<long long>(per_temperature),
                 total_seconds, to.c_str(), to.c_str());
}

} // namespace ansatz::engine

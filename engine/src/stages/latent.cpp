// The latent stage: pictures of a latent-variable model (abi.h, ansatz_latent_table) on a dataset,
// written by the engine (no plugin draws them):
//   stage<i>_reconstructions.png   the first `reconstructions` rows of the data (a row of originals, then
//                                  the row of their reconstructions decode_mean(mu(x)), 8 per row)
//   stage<i>_manifold.png          a 2-D latent: decode_mean over an n x n grid of the prior's quantiles,
//                                  z = Phi^-1((k + 1/2) / n), z1 left to right, z2 bottom to top
//   stage<i>_latent_scatter.svg    a 2-D latent: mu(x) of the data's rows coloured by label, the legend
//                                  naming the classes (the stage's label_names, else the dataset's)
// and one row of metrics.csv: active_units over the data (Burda et al. 2016), and seconds.
#include "ansatz/latent.hpp"

#include "ansatz/component.hpp"
#include "ansatz/refs.hpp"
#include "outputs/files.hpp"
#include "outputs/plot/plot.hpp"
#include "run/run.hpp"
#include "stages/stages.hpp"
#include "user_error.hpp"

#include <boost/math/special_functions/erf.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace ansatz::engine
{

namespace
{

std::string where(const Pipeline& p, const StageDecl& s, const std::string& key)
{
    const Value& v = s.values.at(key);
    return p.source.where(v.node.IsDefined() && !v.node.IsNull() ? v.node : s.node) + ": " + s.label();
}

// Whether the pipeline gave `key` itself (not a default).
bool given(const StageDecl& s, const std::string& key)
{
    const Value& v = s.values.at(key);
    return v.present && v.node.IsDefined() && !v.node.IsNull();
}

// The manifold's side: the key, or 20 for a 2-D latent when absent; 0 = none.
int64_t manifold_side(const StageDecl& s, int64_t latent)
{
    if (s.has("manifold"))
        return s.integer("manifold");
    return latent == 2 ? 20 : 0;
}

// Grey levels of decoded means for a picture: the data's range [0, 1] for images, else the values'
// own range.
void to_grey(std::vector<float>& values, bool image)
{
    if (values.empty())
        return;
    float lo = 0, hi = 1;
    if (!image)
    {
        const auto [min, max] = std::minmax_element(values.begin(), values.end());
        lo = *min, hi = *max > *min ? *max : *min + 1;
    }
    for (float& v : values)
        v = std::clamp((v - lo) / (hi - lo), 0.0f, 1.0f);
}

void write_png(const std::filesystem::path& file, const std::vector<float>& images, int64_t count,
               int64_t height, int64_t width, int64_t columns)
{
    int w = 0, h = 0;
    const std::vector<uint8_t> pixels = image_grid(images.data(), count, height, width, columns, w, h);
    const int scale = std::max(1, 512 / std::max(w, h));
    write_file_atomic(file, png_bytes(upscale(pixels, w, h, scale), w * scale, h * scale));
}

} // namespace

void check_latent_stage(const Pipeline& p, const StageDecl& s)
{
    if (s.has("label_names") && s.has("scatter") && !s.values.at("scatter").integer)
        throw UserError(where(p, s, "label_names") +
                        ": key label_names names the scatter's classes, but scatter is false");
    for (const std::string& name :
         s.has("label_names") ? s.values.at("label_names").texts : std::vector<std::string>{})
        if (name.find('|') != std::string::npos)
            throw UserError(where(p, s, "label_names") + ": key label_names: the name '" + name +
                            "' has a '|', which separates names");
}

void check_latent_model(Run& run, const StageDecl& s)
{
    const Pipeline& p = run.pipeline();
    const ModelRef model(run.instance(s.text("model")).model());
    const int64_t latent = model.latent_size();
    if (latent == 2)
    {
        // The data's labels, when the dataset exists already (else when the stage starts).
        const std::string& data = s.text("data");
        if (s.has("scatter") && s.values.at("scatter").integer && run.created(data) &&
            !dataset_info(run.instance(data)).has_labels)
            throw UserError(where(p, s, "scatter") +
                            ": scatter: true colours the points by label, but dataset '" + data +
                            "' has no labels (give it a labels file, or leave scatter out)");
        return;
    }
    const std::string size =
        "model '" + s.text("model") + "' has " + std::to_string(latent) + " latent units";
    if (s.has("manifold") && s.integer("manifold") > 0)
        throw UserError(where(p, s, "manifold") + ": manifold: " + std::to_string(s.integer("manifold")) +
                        " decodes a grid over a 2-D latent space, but " + size +
                        " (give manifold: 0, or leave it out)");
    if (s.has("scatter") && s.values.at("scatter").integer)
        throw UserError(where(p, s, "scatter") +
                        ": scatter: true draws the data's 2-D posterior means, but " + size +
                        " (leave scatter out)");
    if (s.has("label_names") && !s.has("scatter"))
        throw UserError(where(p, s, "label_names") + ": key label_names names the scatter's classes, but " +
                        size + ", so there is no scatter");
}

void run_latent_stage(Run& run, const StageDecl& stage)
{
    const auto start = std::chrono::steady_clock::now();
    const Pipeline& p = run.pipeline();
    const std::string model_name = stage.text("model"), data_name = stage.text("data");
    run.prepare_model(model_name, data_name, stage);
    check_latent_model(run, stage);
    const ModelState& state = run.model_state(model_name);
    const ModelRef model(run.instance(model_name).model());
    Instance& dataset = run.instance(data_name);
    const ansatz_dataset_info info = dataset_info(dataset);
    const int64_t count = info.count, dim = flat_size(state.sample_shape), l = model.latent_size();
    if (count == 0)
        throw UserError(p.source.where(stage.node) + ": " + stage.label() + ": dataset '" + data_name +
                        "' is empty, so there is nothing to encode.");
    const bool images = state.is_image && state.sample_shape.size() == 2;
    if (given(stage, "reconstructions") && stage.integer("reconstructions") > 0 && !images)
        throw UserError(where(p, stage, "reconstructions") + ": reconstructions: " +
                        std::to_string(stage.integer("reconstructions")) + " draws images, but dataset '" +
                        data_name + "' does not hold 2-D images (give reconstructions: 0)");
    const bool scatter =
        l == 2 && (stage.has("scatter") ? stage.values.at("scatter").integer != 0 : info.has_labels != 0);
    if (scatter && !info.has_labels)
        throw UserError(where(p, stage, "scatter") +
                        ": scatter: true colours the points by label, but dataset '" + data_name +
                        "' has no labels (give it a labels file, or leave scatter out)");

    // ---- every row (and its label), encoded
    Host(run.host().table())
        .require_memory(4.0 * static_cast<double>(count) * static_cast<double>(dim + 2 * l + 1),
                        stage.label() + ": encoding dataset '" + data_name + "' (" + std::to_string(count) +
                            " samples of " + std::to_string(dim) + " values)");
    std::vector<float> rows(static_cast<size_t>(count * dim)),
        labels(scatter ? static_cast<size_t>(count) : 0);
    std::vector<int64_t> indices(static_cast<size_t>(count));
    std::iota(indices.begin(), indices.end(), 0);
    ansatz_tensor data = make_view(rows.data(), { count, dim });
    Rng rng = run.host().stream("stages." + std::to_string(stage.index) + ".latent.data");
    ansatz_status st{};
    dataset.check(dataset.dataset().read(dataset.self(), indices.data(), count, &data,
                                         scatter ? labels.data() : nullptr, &rng.state(), &st),
                  st);
    std::vector<float> mu(static_cast<size_t>(count * l)), log_var(mu.size());
    constexpr int64_t chunk = 1024;
    for (int64_t first = 0; first < count; first += chunk)
    {
        if (run.stop_requested())
            throw Error(run.stop_word() + " during " + stage.label(), ANSATZ_STATUS_CANCELLED);
        const int64_t n = std::min(chunk, count - first);
        const ansatz_tensor x = make_view(rows.data() + first * dim, { n, dim });
        ansatz_tensor m = make_view(mu.data() + first * l, { n, l }),
                      v = make_view(log_var.data() + first * l, { n, l });
        model.encode(x, m, v);
    }
    const std::string base = "stage" + std::to_string(stage.index) + "_";
    std::vector<std::string> written;

    // ---- reconstructions: pairs of rows, originals above their reconstructions
    const int64_t shown = images ? std::min(stage.integer("reconstructions"), count) : 0;
    if (shown > 0)
    {
        std::vector<float> recon(static_cast<size_t>(shown * dim));
        const ansatz_tensor h = make_view(mu.data(), { shown, l });
        ansatz_tensor out = make_view(recon.data(), { shown, dim });
        model.decode_mean(h, out);
        to_grey(recon, true);
        const int64_t columns = std::min<int64_t>(8, shown), pairs = (shown + columns - 1) / columns;
        std::vector<float> grid(static_cast<size_t>(2 * pairs * columns * dim), 0.5f); // grey: no image
        for (int64_t i = 0; i < shown; ++i)
        {
            const int64_t row = i / columns, col = i % columns;
            std::copy_n(rows.data() + i * dim, dim, grid.data() + ((2 * row) * columns + col) * dim);
            std::copy_n(recon.data() + i * dim, dim, grid.data() + ((2 * row + 1) * columns + col) * dim);
        }
        write_png(run.folder() / (base + "reconstructions.png"), grid, 2 * pairs * columns,
                  state.sample_shape[0], state.sample_shape[1], columns);
        written.push_back(base + "reconstructions.png");
    }

    // ---- the manifold: decode_mean over the prior's quantiles
    const int64_t side = images && l == 2 ? manifold_side(stage, l) : 0;
    if (side > 0)
    {
        std::vector<float> z(static_cast<size_t>(side * side * 2)),
            decoded(static_cast<size_t>(side * side * dim));
        const auto quantile = [&](int64_t k) {
            const double u = (static_cast<double>(k) + 0.5) / static_cast<double>(side);
            return std::sqrt(2.0) * boost::math::erf_inv(2.0 * u - 1.0);
        };
        for (int64_t row = 0; row < side; ++row)
            for (int64_t col = 0; col < side; ++col)
            {
                z[static_cast<size_t>((row * side + col) * 2)] = static_cast<float>(quantile(col));
                z[static_cast<size_t>((row * side + col) * 2 + 1)] =
                    static_cast<float>(quantile(side - 1 - row));
            }
        const ansatz_tensor h = make_view(z.data(), { side * side, int64_t(2) });
        ansatz_tensor out = make_view(decoded.data(), { side * side, dim });
        model.decode_mean(h, out);
        to_grey(decoded, true);
        write_png(run.folder() / (base + "manifold.png"), decoded, side * side, state.sample_shape[0],
                  state.sample_shape[1], side);
        written.push_back(base + "manifold.png");
    }

    // ---- the scatter of mu, coloured by label
    if (scatter)
    {
        const int64_t points = std::min(stage.integer("scatter_points"), count);
        plot::Points pts;
        for (int64_t i = 0; i < points; ++i)
        {
            pts.x.push_back(mu[static_cast<size_t>(i * 2)]);
            pts.y.push_back(mu[static_cast<size_t>(i * 2 + 1)]);
            pts.label.push_back(static_cast<int>(labels[static_cast<size_t>(i)]));
        }
        pts.class_names = stage.has("label_names") ? stage.values.at("label_names").texts : label_names(info);
        plot::Figure f;
        f.title = "Posterior means of " + std::to_string(points) + " rows of '" + data_name + "'";
        f.x.label = "mu_1";
        f.y.label = "mu_2";
        f.width = 720;
        f.height = 560;
        write_file_atomic(run.folder() / (base + "latent_scatter.svg"),
                          plot::svg_file(plot::scatter_plot(f, pts)));
        written.push_back(base + "latent_scatter.svg");
    }

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run.metrics().add(
        stage.index, stage.type, 0,
        { { "active_units", static_cast<double>(latent::active_units(mu.data(), count, l, 0.01)) },
          { "latent_units", static_cast<double>(l) },
          { "seconds", seconds } });
    std::string list;
    for (const std::string& w : written)
        list += (list.empty() ? "" : ", ") + w;
    std::fprintf(stderr,
                 "latent [stage %zu] model '%s' on '%s' (%lld rows, %lld latent units) in %.1f s -> %s\n",
                 stage.index, model_name.c_str(), data_name.c_str(), static_cast<long long>(count),
                 static_cast<long long>(l), seconds, list.empty() ? "no pictures" : list.c_str());
}

} // namespace ansatz::engine

// The train stage: for every epoch, batches of the data in a seeded random order; per batch the loss
// adds its gradient into buffers the engine owns and the optimizer steps the model's parameters.
#include "ansatz/refs.hpp"
#include "outputs/checkpoint.hpp"
#include "outputs/progress.hpp"
#include "outputs/report.hpp"
#include "run.hpp"
#include "stages/stages.hpp"
#include "user_error.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace ansatz::engine
{

namespace
{

struct GradientBuffers
{
    std::vector<std::vector<float>> storage;
    std::vector<ansatz_tensor> views;

    explicit GradientBuffers(const std::vector<ansatz_named_tensor>& params)
    {
        for (const ansatz_named_tensor& p : params)
        {
            storage.emplace_back(static_cast<size_t>(element_count(p.tensor)), 0.0f);
            ansatz_tensor view = p.tensor;
            view.data = storage.back().data();
            views.push_back(view);
        }
    }
    void zero()
    {
        for (auto& s : storage)
            std::fill(s.begin(), s.end(), 0.0f);
    }
};

// Running means of the metrics a loss reports, weighted by batch size.
class MetricMeans
{
public:
    void add(const std::vector<std::pair<std::string, double>>& metrics, int64_t weight)
    {
        for (const auto& [name, value] : metrics)
        {
            auto found = std::find_if(sums_.begin(), sums_.end(), [&](auto& s) { return s.first == name; });
            if (found == sums_.end())
                found = sums_.insert(sums_.end(), { name, 0.0 });
            found->second += value * static_cast<double>(weight);
        }
        total_ += weight;
    }
    std::vector<std::pair<std::string, double>> means() const
    {
        std::vector<std::pair<std::string, double>> out;
        for (const auto& [name, sum] : sums_)
            out.emplace_back(name, total_ ? sum / static_cast<double>(total_) : 0.0);
        return out;
    }
    double mean(const std::string& name) const
    {
        for (const auto& [n, sum] : sums_)
            if (n == name)
                return total_ ? sum / static_cast<double>(total_) : 0.0;
        return 0.0;
    }

private:
    std::vector<std::pair<std::string, double>> sums_;
    int64_t total_ = 0;
};

std::string summary(const std::vector<std::pair<std::string, double>>& values)
{
    std::string out;
    for (const auto& [name, value] : values)
    {
        char buffer[96];
        std::snprintf(buffer, sizeof buffer, "%s%s=%.5g", out.empty() ? "" : " ", name.c_str(), value);
        out += buffer;
    }
    return out;
}

// The optimizer's state (momentum buffers, ...) for a checkpoint. A failure is an Error: a checkpoint
// without it would resume differently, and the previous checkpoint is kept.
std::vector<ansatz_named_tensor> optimizer_state(const Instance& optimizer, int64_t epoch)
{
    const auto fail = [&](const std::string& what) {
        throw Error(optimizer.describe() + ": " + what + ", so the checkpoint of epoch " +
                    std::to_string(epoch) + " is not written.");
    };
    const int32_t n = optimizer.optimizer().state(optimizer.self(), nullptr, 0);
    if (n < 0)
        fail("state() failed (returned " + std::to_string(n) + ")");
    std::vector<ansatz_named_tensor> state(static_cast<size_t>(n));
    if (optimizer.optimizer().state(optimizer.self(), state.data(), n) != n)
        fail("state() gave another count of tensors the second time");
    for (const ansatz_named_tensor& t : state)
        if (t.name == nullptr || t.name[0] == '\0' || t.tensor.rank < 0 || t.tensor.rank > ANSATZ_MAX_RANK ||
            (t.tensor.data == nullptr && element_count(t.tensor) > 0))
            fail("state() gave a tensor without a name, data or valid rank");
    return state;
}

} // namespace

void run_train_stage(Run& run, const StageDecl& stage)
{
    const std::string model_name = stage.text("model");
    run.prepare_model(model_name, stage.text("data"), stage);
    Instance& model = run.instance(model_name);
    Instance& data = run.instance(stage.text("data"));
    Instance& loss = run.instance(stage.text("loss"));
    Instance& optimizer = run.instance(stage.text("optimizer"));
    Instance* sampler = stage.has("sampler") ? &run.instance(stage.text("sampler")) : nullptr;

    const ModelRef model_ref(model.model());
    std::vector<ansatz_named_tensor> params = model_parameters(model);
    GradientBuffers grads(params);
    ansatz_status st{};

    ansatz_sampler_handle sampler_handle{};
    if (sampler)
    {
        sampler_handle = sampler->sampler();
        sampler->check(sampler_handle.table->bind(sampler->self(), &model_ref.handle(), &st), st);
    }
    const bool needs_sampler = loss.desc().flags & ANSATZ_LOSS_NEEDS_SAMPLER;
    loss.check(
        loss.loss().bind(loss.self(), &model_ref.handle(), needs_sampler ? &sampler_handle : nullptr, &st),
        st);
    optimizer.check(
        optimizer.optimizer().bind(optimizer.self(), params.data(), static_cast<int32_t>(params.size()), &st),
        st);

    const ansatz_dataset_info info = dataset_info(data);
    const int64_t count = info.count;
    if (count == 0)
        throw UserError(run.pipeline().source.where(stage.node) + ": " + stage.label() + ": dataset '" +
                        stage.text("data") + "' is empty.");
    const int64_t dim = flat_size(run.model_state(model_name).sample_shape);
    const int64_t batch_size = std::min<int64_t>(stage.integer("batch_size"), std::max<int64_t>(count, 1));
    const int64_t epochs = stage.integer("epochs");
    const int64_t batches = (count + batch_size - 1) / batch_size;
    std::vector<float> batch_storage(static_cast<size_t>(batch_size * dim));
    std::vector<int64_t> order(static_cast<size_t>(count));
    std::iota(order.begin(), order.end(), 0);

    const std::string prefix = "stages." + std::to_string(stage.index) + ".train";
    Rng order_rng = run.host().stream(prefix + ".order");
    Rng data_rng = run.host().stream(prefix + ".data");
    Rng loss_rng = run.host().stream(prefix + ".loss");
    std::filesystem::path last_checkpoint;

    for (int64_t epoch = 1; epoch <= epochs; ++epoch)
    {
        if (stage.values.at("shuffle").integer)
            for (int64_t i = count - 1; i > 0; --i) // Fisher-Yates
                std::swap(order[static_cast<size_t>(i)],
                          order[static_cast<size_t>(order_rng.below(static_cast<uint64_t>(i + 1)))]);
        char label[128];
        std::snprintf(label, sizeof label, "train [stage %zu] epoch %lld/%lld", stage.index,
                      static_cast<long long>(epoch), static_cast<long long>(epochs));
        Progress progress(label, count, "samples");
        MetricMeans means;
        for (int64_t b = 0; b < batches; ++b)
        {
            if (run.stop_requested())
                throw Error(run.stop_word() + " during " + stage.label() + ", epoch " +
                                std::to_string(epoch) + "; the checkpoint of the last finished epoch is kept",
                            ANSATZ_STATUS_CANCELLED);
            const int64_t start = b * batch_size;
            const int64_t n = std::min(batch_size, count - start);
            ansatz_tensor batch = make_view(batch_storage.data(), { n, dim });
            data.check(data.dataset().read(data.self(), order.data() + start, n, &batch, nullptr,
                                           &data_rng.state(), &st),
                       st);
            grads.zero();
            ansatz_metrics metrics{};
            loss.check(loss.loss().compute(loss.self(), &batch, grads.views.data(),
                                           static_cast<int32_t>(grads.views.size()), &loss_rng.state(),
                                           &metrics, &st),
                       st);
            optimizer.check(optimizer.optimizer().step(optimizer.self(), params.data(), grads.views.data(),
                                                       static_cast<int32_t>(params.size()), &st),
                            st);
            means.add(checked_metrics(loss, metrics), n);
            char note[64];
            std::snprintf(note, sizeof note, "loss %.4g", means.mean("loss"));
            progress.update(start + n, note);
        }
        const double seconds = progress.seconds();
        progress.finish();

        std::vector<std::pair<std::string, double>> row = means.means();
        if (sampler)
        {
            ansatz_metrics sm{};
            sampler->check(sampler_handle.table->metrics(sampler->self(), &sm, &st), st);
            for (const auto& metric : checked_metrics(*sampler, sm))
                row.push_back(metric);
        }
        row.emplace_back("seconds", seconds);
        row.emplace_back("samples_per_second", seconds > 0 ? static_cast<double>(count) / seconds : 0.0);
        run.metrics().add(stage.index, stage.type, epoch, row);
        std::fprintf(stderr, "%s: %s\n", label, summary(row).c_str());

        if (stage.values.at("checkpoint").integer)
        {
            CheckpointContent content{ run.pipeline().name,
                                       stage.index,
                                       epoch,
                                       model_name,
                                       params,
                                       stage.text("optimizer"),
                                       optimizer_state(optimizer, epoch) };
            last_checkpoint = write_checkpoint(run.folder(), content, last_checkpoint);
        }
        write_report(run.folder(), ReportUpdate::when_cheap); // report.html after the epoch (issue 9)
    }
}

} // namespace ansatz::engine

// The train stage: for every epoch, batches of the data in a seeded random order; per batch the loss
// adds its gradient into the engine's gradient arena and the optimizer steps the model's parameters.
// The loop itself is stages/train_loop.hpp; this file is its body and its standard hooks.
#include "ansatz/refs.hpp"
#include "outputs/checkpoint.hpp"
#include "outputs/progress.hpp"
#include "outputs/report.hpp"
#include "run/fault.hpp"
#include "run/run.hpp"
#include "stages/evaluation.hpp"
#include "stages/stages.hpp"
#include "stages/train_loop.hpp"
#include "user_error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

namespace ansatz::engine
{

namespace
{

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

// The model's parameters, set up; a model without any (an Ising model: its couplings are keys) has
// nothing to learn, and the stage is refused before its first batch.
std::vector<ansatz_named_tensor> prepared_parameters(Run& run, const StageDecl& stage)
{
    run.prepare_model(stage.text("model"), stage.text("data"), stage);
    const Instance& model = run.instance(stage.text("model"));
    std::vector<ansatz_named_tensor> params = model_parameters(model);
    if (params.empty())
        throw UserError(run.pipeline().source.where(stage.values.at("model").node) + ": " + stage.label() +
                        ": model '" + model.name() + "' (plugin '" + model.desc().name +
                        "') has no trainable parameters, so there is nothing to train; use it in sample or "
                        "evaluate stages");
    return params;
}

// ---- the non-finite guard: a NaN or Inf in the loss, a gradient or a parameter stops the run
// (exit 1), naming the stage, epoch, batch and parameter; the last good checkpoint is kept.
class NonFiniteGuard final : public TrainHook
{
public:
    // The gradients are read only when something is already wrong: a non-finite gradient shows in the
    // parameter it updates (p - lr * NaN is NaN, for every optimizer here), so one pass over the
    // parameters per batch finds it, and the step it corrupted is never checkpointed (the run stops
    // before the epoch ends). The gradient is then named, as the better clue.
    void after_loss(TrainLoop& loop, const BatchInfo& at) override
    {
        for (const auto& [name, value] : *at.metrics)
            if (!std::isfinite(value))
            {
                // A NaN loss comes with NaN gradients, and the parameter is the better clue.
                for (size_t k = 0; k < loop.gradients().views().size(); ++k)
                    check_gradient(loop, at, k);
                stop(loop, at,
                     "the loss '" + loop.loss().name() + "' reported " + name + " = " + text(value));
            }
    }
    void after_step(TrainLoop& loop, const BatchInfo& at) override
    {
        for (size_t k = 0; k < loop.parameters().size(); ++k)
            if (!all_finite(loop.parameters()[k].tensor))
            {
                check_gradient(loop, at, k);
                check(loop, at, loop.parameters()[k].tensor,
                      "parameter '" + name_of(loop, k) + "', after the optimizer's step,");
            }
    }

private:
    static std::string name_of(TrainLoop& loop, size_t k)
    {
        return std::string(loop.parameters()[k].name) + "' of model '" + loop.model_name();
    }
    static std::string text(double v) { return std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf"; }
    static bool all_finite(const ansatz_tensor& t)
    {
        const float* x = f32(t);
        const int64_t n = element_count(t);
        // A float is NaN or Inf when its exponent bits are all ones; adding one to the exponent then
        // carries into the sign bit. Integer ops only, so the pass vectorises with plain SSE2.
        uint32_t carried = 0;
        for (int64_t i = 0; i < n; ++i)
        {
            uint32_t bits;
            std::memcpy(&bits, x + i, sizeof bits);
            carried |= (bits & 0x7f800000u) + 0x00800000u;
        }
        return !(carried & 0x80000000u);
    }
    static void check_gradient(TrainLoop& loop, const BatchInfo& at, size_t k)
    {
        check(loop, at, loop.gradients().views()[k], "the gradient of parameter '" + name_of(loop, k) + "'");
    }
    static void check(TrainLoop& loop, const BatchInfo& at, const ansatz_tensor& t, const std::string& what)
    {
        if (all_finite(t))
            return;
        const float* x = f32(t);
        for (int64_t i = 0; i < element_count(t); ++i)
            if (!std::isfinite(x[i]))
                stop(loop, at, what + " is " + text(x[i]) + " at index " + std::to_string(i));
    }
    [[noreturn]] static void stop(TrainLoop& loop, const BatchInfo& at, const std::string& what)
    {
        const std::optional<std::filesystem::path> kept = last_checkpoint(loop.run_context().folder());
        throw Error(loop.stage().label() + ", epoch " + std::to_string(at.epoch) + ", batch " +
                    std::to_string(at.batch) + ": " + what + "; the run stops" +
                    (kept ? ", keeping the last good checkpoint " + kept->filename().string()
                          : " (no checkpoint was written yet)") +
                    ". Lower the learning rate or check the data.");
    }
};

// ---- report.html after an epoch (skipped while rebuilding it would cost more than the epochs)
class ReportAfterEpoch final : public TrainHook
{
public:
    void epoch_written(TrainLoop& loop, int64_t) override
    {
        write_report(loop.run_context().folder(), ReportUpdate::when_cheap);
    }
};

// ---- checkpoints every N epochs and after the last one
class CheckpointEvery final : public TrainHook
{
public:
    explicit CheckpointEvery(int64_t every) : every_(every) {}
    void epoch_written(TrainLoop& loop, int64_t epoch) override
    {
        if (every_ == 0 || (epoch % every_ != 0 && epoch != loop.epochs()))
            return;
        Run& run = loop.run_context();
        const Checkpoint content = run.snapshot(loop.stage().index, epoch, loop.state().pieces());
        loop.last_checkpoint() = write_checkpoint(run.folder(), content, loop.last_checkpoint());
    }

private:
    int64_t every_;
};

// ---- evaluators every N epochs and after the last one; their metrics join the epoch's row
class EvaluateEvery final : public TrainHook
{
public:
    explicit EvaluateEvery(int64_t every) : every_(every) {}
    void started(TrainLoop& loop) override
    {
        const StageDecl& s = loop.stage();
        evaluation_ = std::make_unique<Evaluation>(loop.run_context(), s, loop.model_name(),
                                                   s.text("evaluate_data"), s.values.at("evaluators").texts,
                                                   "stages." + std::to_string(s.index) + ".train.evaluate");
    }
    void end_of_epoch(TrainLoop& loop, int64_t epoch,
                      std::vector<std::pair<std::string, double>>& row) override
    {
        if (epoch % every_ != 0 && epoch != loop.epochs())
            return;
        // A stream per epoch: an evaluation after a resume draws what it would have drawn anyway.
        const auto metrics = evaluation_->run(".epoch" + std::to_string(epoch), row);
        std::fprintf(stderr, "  evaluated on '%s': %s\n", loop.stage().text("evaluate_data").c_str(),
                     Evaluation::summary(metrics).c_str());
        row.insert(row.end(), metrics.begin(), metrics.end());
    }

private:
    int64_t every_;
    std::unique_ptr<Evaluation> evaluation_;
};

} // namespace

std::unique_ptr<TrainHook> non_finite_guard()
{
    return std::make_unique<NonFiniteGuard>();
}
std::unique_ptr<TrainHook> checkpoint_every(int64_t every)
{
    return std::make_unique<CheckpointEvery>(every);
}

// ---- TrainState

std::vector<ansatz_named_tensor> TrainState::pieces()
{
    const auto words = [](Rng& rng) { return make_view(rng.state().state, { 4 }); };
    return { { "epochs_done", make_view(&epochs_done, { 1 }) },
             { "steps_done", make_view(&steps_done, { 1 }) },
             { "order", make_view(order.data(), { static_cast<int64_t>(order.size()) }) },
             { "order_rng", words(order_rng) },
             { "data_rng", words(data_rng) },
             { "loss_rng", words(loss_rng) } };
}

void TrainState::restore(const Checkpoint& c)
{
    const std::vector<ansatz_named_tensor> saved = c.named("engine", "state");
    for (ansatz_named_tensor& live : pieces())
    {
        const auto found = std::find_if(saved.begin(), saved.end(), [&](const ansatz_named_tensor& s) {
            return std::string(s.name) == live.name;
        });
        if (found == saved.end() || found->tensor.dtype != live.tensor.dtype ||
            element_count(found->tensor) != element_count(live.tensor))
            throw UserError("the checkpoint's engine state has no fitting piece '" + std::string(live.name) +
                            "' (its data has another size, or it was saved by another engine).");
        std::copy_n(static_cast<const char*>(found->tensor.data),
                    static_cast<size_t>(element_count(live.tensor)) * dtype_size(live.tensor.dtype),
                    static_cast<char*>(live.tensor.data));
    }
}

// ---- GradientArena

GradientArena::GradientArena(const std::vector<ansatz_named_tensor>& params)
{
    size_t total = 0;
    for (const ansatz_named_tensor& p : params)
        total += static_cast<size_t>(element_count(p.tensor));
    storage_.assign(total, 0.0f);
    size_t at = 0;
    for (const ansatz_named_tensor& p : params)
    {
        ansatz_tensor view = p.tensor;
        view.data = storage_.data() + at;
        view.dtype = ANSATZ_DTYPE_FLOAT32;
        views_.push_back(view);
        at += static_cast<size_t>(element_count(p.tensor));
    }
}

void GradientArena::zero()
{
    std::fill(storage_.begin(), storage_.end(), 0.0f);
}

// ---- TrainLoop

TrainLoop::TrainLoop(Run& run, const StageDecl& stage)
    : run_(run), stage_(stage), model_name_(stage.text("model")), params_(prepared_parameters(run, stage)),
      grads_(params_)
{
    model_ = &run.instance(model_name_);
    data_ = &run.instance(stage.text("data"));
    loss_ = &run.instance(stage.text("loss"));
    optimizer_ = &run.instance(stage.text("optimizer"));
    sampler_ = stage.has("sampler") ? &run.instance(stage.text("sampler")) : nullptr;

    count_ = dataset_info(*data_).count;
    if (count_ == 0)
        throw UserError(run.pipeline().source.where(stage.node) + ": " + stage.label() + ": dataset '" +
                        stage.text("data") + "' is empty.");
    dim_ = flat_size(run.model_state(model_name_).sample_shape);
    batch_size_ = std::min<int64_t>(stage.integer("batch_size"), count_);
    epochs_ = stage.integer("epochs");
    batches_ = (count_ + batch_size_ - 1) / batch_size_;
    batch_storage_.resize(static_cast<size_t>(batch_size_ * dim_));

    const std::string prefix = "stages." + std::to_string(stage.index) + ".train";
    state_.order.resize(static_cast<size_t>(count_));
    std::iota(state_.order.begin(), state_.order.end(), 0);
    state_.order_rng = run.host().stream(prefix + ".order");
    state_.data_rng = run.host().stream(prefix + ".data");
    state_.loss_rng = run.host().stream(prefix + ".loss");
}

void TrainLoop::bind()
{
    const ModelRef model_ref(model_->model());
    ansatz_status st{};
    ansatz_sampler_handle sampler_handle{};
    if (sampler_)
    {
        sampler_handle = sampler_->sampler();
        sampler_->check(sampler_handle.table->bind(sampler_->self(), &model_ref.handle(), &st), st);
    }
    const bool needs_sampler = loss_->desc().flags & ANSATZ_LOSS_NEEDS_SAMPLER;
    loss_->check(loss_->loss().bind(loss_->self(), &model_ref.handle(),
                                    needs_sampler ? &sampler_handle : nullptr, &st),
                 st);
    optimizer_->check(optimizer_->optimizer().bind(optimizer_->self(), params_.data(),
                                                   static_cast<int32_t>(params_.size()), &st),
                      st);
    if (const Checkpoint* resumed = run_.resuming(stage_.index))
    {
        run_.restore_bound_state(stage_);
        state_.restore(*resumed);
        // The engine's own pieces must agree with the manifest and the pipeline, or the resumed run
        // would silently differ from one that never stopped.
        const auto damaged = [&](const std::string& why) {
            return UserError("the checkpoint of " + stage_.label() + ", epoch " +
                             std::to_string(resumed->epoch) + " is damaged: " + why + ".");
        };
        if (resumed->epoch < 1 || resumed->epoch > epochs_ || state_.epochs_done != resumed->epoch)
            throw damaged("it says epoch " + std::to_string(resumed->epoch) + " and its engine state " +
                          std::to_string(state_.epochs_done) + " epochs done, of the stage's " +
                          std::to_string(epochs_));
        if (state_.steps_done != state_.epochs_done * batches_)
            throw damaged("its engine state counts " + std::to_string(state_.steps_done) +
                          " batches done, not " + std::to_string(state_.epochs_done * batches_));
        std::vector<char> seen(static_cast<size_t>(count_), 0);
        for (int64_t i : state_.order)
            if (i < 0 || i >= count_ || seen[static_cast<size_t>(i)]++)
                throw damaged("its data order is not an order of the " + std::to_string(count_) +
                              " samples of dataset '" + stage_.text("data") + "'");
        last_checkpoint_ =
            run_.folder() / "checkpoints" /
            ("stage" + std::to_string(resumed->stage) + "-epoch" + std::to_string(resumed->epoch));
    }
}

void TrainLoop::shuffle()
{
    if (!stage_.values.at("shuffle").integer)
        return;
    std::vector<int64_t>& order = state_.order;
    for (int64_t i = count_ - 1; i > 0; --i) // Fisher-Yates
        std::swap(order[static_cast<size_t>(i)],
                  order[static_cast<size_t>(state_.order_rng.below(static_cast<uint64_t>(i + 1)))]);
}

void TrainLoop::run()
{
    bind();
    for (auto& hook : hooks_)
        hook->started(*this);
    ansatz_progress& progress = run_.host().progress();
    progress.epochs = epochs_;
    progress.steps_per_epoch = batches_;
    progress.step = state_.steps_done; // a resumed stage starts after the batches its checkpoint counts
    for (int64_t e = state_.epochs_done + 1; e <= epochs_; ++e)
        epoch(e);
}

void TrainLoop::epoch(int64_t epoch)
{
    shuffle();
    char label[128];
    std::snprintf(label, sizeof label, "train [stage %zu] epoch %lld/%lld", stage_.index,
                  static_cast<long long>(epoch), static_cast<long long>(epochs_));
    Progress bar(label, count_, "samples");
    MetricMeans means;
    MetricsSink sink;
    ansatz_status st{};
    ansatz_progress& progress = run_.host().progress();
    progress.epoch = epoch;
    // The one sentence of a stop, whether the loop sees it between batches or a component (a sampler
    // between its sweeps) returned ANSATZ_STATUS_CANCELLED for it.
    const auto stopped = [&] {
        return Error(run_.stop_word() + " during " + stage_.label() + ", epoch " + std::to_string(epoch) +
                         "; the checkpoint of the last finished epoch is kept",
                     ANSATZ_STATUS_CANCELLED);
    };
    const auto check_call = [&](const Instance& component, int32_t code) {
        if (code == ANSATZ_STATUS_CANCELLED && run_.stop_requested())
            throw stopped();
        component.check(code, st);
    };
    for (int64_t b = 0; b < batches_; ++b)
    {
        if (run_.stop_requested())
            throw stopped();
        const int64_t start = b * batch_size_;
        const int64_t n = std::min(batch_size_, count_ - start);
        ansatz_tensor batch = make_view(batch_storage_.data(), { n, dim_ });
        check_call(*data_, data_->dataset().read(data_->self(), state_.order.data() + start, n, &batch,
                                                 nullptr, &state_.data_rng.state(), &st));
        grads_.zero();
        check_call(*loss_, loss_->loss().compute(loss_->self(), &batch, grads_.views().data(),
                                                 static_cast<int32_t>(grads_.views().size()),
                                                 &state_.loss_rng.state(), sink.c(), &st));
        const std::vector<std::pair<std::string, double>> reported = sink.take();
        const BatchInfo at{ epoch, b + 1, n, &reported };
        for (auto& hook : hooks_)
            hook->after_loss(*this, at);
        for (auto& hook : hooks_)
            hook->before_step(*this, at);
        optimizer_->check(optimizer_->optimizer().step(optimizer_->self(), params_.data(),
                                                       grads_.views().data(),
                                                       static_cast<int32_t>(params_.size()), &st),
                          st);
        model_->parameters_changed();
        for (auto& hook : hooks_)
            hook->after_step(*this, at);
        means.add(reported, n);
        ++state_.steps_done;
        progress.step = state_.steps_done;
        char note[64];
        std::snprintf(note, sizeof note, "loss %.4g", means.mean("loss"));
        bar.update(start + n, note);
        fault_point("batch");
    }
    const double seconds = bar.seconds();
    bar.finish();

    std::vector<std::pair<std::string, double>> row = means.means();
    if (sampler_)
    {
        SamplerRef(sampler_->sampler()).metrics(*sink.c());
        for (const auto& metric : sink.take())
            row.push_back(metric);
    }
    for (auto& hook : hooks_)
        hook->end_of_epoch(*this, epoch, row);
    row.emplace_back("seconds", seconds);
    row.emplace_back("samples_per_second", seconds > 0 ? static_cast<double>(count_) / seconds : 0.0);
    state_.epochs_done = epoch;
    run_.metrics().add(stage_.index, stage_.type, epoch, row);
    std::fprintf(stderr, "%s: %s\n", label, summary(row).c_str());
    for (auto& hook : hooks_)
        hook->epoch_written(*this, epoch);
}

void check_train_stage(const Pipeline& p, const StageDecl& s)
{
    require_model_functions(p, s, "loss", s.text("model"));
    const ComponentDecl& loss = p.component(s.text("loss"));
    if ((loss.plugin->desc->flags & ANSATZ_LOSS_NEEDS_SAMPLER) && !s.has("sampler"))
        throw UserError(p.source.where(s.node) + ": " + s.label() + ": loss '" + loss.name +
                        "' estimates its negative phase by sampling and needs a 'sampler' key");
    const auto where = [&](const std::string& key) { return p.source.where(s.values.at(key).node); };
    if (s.has("evaluators") && !s.has("evaluate_data"))
        throw UserError(
            where("evaluators") + ": " + s.label() +
            ": evaluators need an 'evaluate_data' key naming the dataset to measure the model on");
    if (!s.has("evaluators"))
        for (const char* key : { "evaluate_data", "evaluate_every" })
            if (s.has(key))
                throw UserError(where(key) + ": " + s.label() + ": key '" + key +
                                "' has no use without an 'evaluators' key listing what to run");
}

void run_train_stage(Run& run, const StageDecl& stage)
{
    TrainLoop loop(run, stage);
    loop.add(non_finite_guard());
    if (stage.has("evaluators"))
        loop.add(std::make_unique<EvaluateEvery>(stage.has("evaluate_every") ? stage.integer("evaluate_every")
                                                                             : 1));
    loop.add(checkpoint_every(stage.integer("checkpoint_every")));
    loop.add(std::make_unique<ReportAfterEpoch>());
    loop.run();
}

} // namespace ansatz::engine

// train_loop.hpp -- the train stage as an object: every piece of resumable state in one struct, and
// hooks where evaluation, schedules, the non-finite guard, checkpoints and (later) an all-reduce plug
// in without the loop being rewritten (as ensmallen's callbacks).
#pragma once

#include "ansatz/random.hpp"
#include "loading/instance.hpp"
#include "outputs/checkpoint.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ansatz::engine
{

class Run;
struct StageDecl;

// Everything of the engine's own that a resumed train stage needs to go on bit for bit.
struct TrainState
{
    int64_t epochs_done = 0;
    int64_t steps_done = 0;     // batches over all epochs
    std::vector<int64_t> order; // the data order of the last epoch
    Rng order_rng, data_rng, loss_rng;

    // Views for a checkpoint (valid while this struct lives and is not changed).
    std::vector<ansatz_named_tensor> pieces();
    // From a checkpoint's engine pieces; a mismatch is a UserError.
    void restore(const Checkpoint& checkpoint);
};

// One contiguous, engine-owned buffer for every parameter's gradient (what an all-reduce needs),
// with one view per parameter in parameters() order.
class GradientArena
{
public:
    explicit GradientArena(const std::vector<ansatz_named_tensor>& params);
    void zero();
    std::vector<ansatz_tensor>& views() { return views_; }
    const std::vector<ansatz_tensor>& views() const { return views_; }

private:
    std::vector<float> storage_;
    std::vector<ansatz_tensor> views_;
};

// Where the loop is, for hooks.
struct BatchInfo
{
    int64_t epoch = 0; // 1-based
    int64_t batch = 0; // 1-based within the epoch
    int64_t size = 0;
    const std::vector<std::pair<std::string, double>>* metrics = nullptr; // the loss's report
};

class TrainLoop;

class TrainHook
{
public:
    virtual ~TrainHook() = default;
    // Once the stage's components are bound (and a resumed stage restored), before its first epoch.
    virtual void started(TrainLoop&) {}
    virtual void after_loss(TrainLoop&, const BatchInfo&) {}
    virtual void before_step(TrainLoop&, const BatchInfo&) {}
    virtual void after_step(TrainLoop&, const BatchInfo&) {}
    // `row` is the epoch's metrics row, before it is written: a hook may add columns.
    virtual void end_of_epoch(TrainLoop&, int64_t /*epoch*/,
                              std::vector<std::pair<std::string, double>>& /*row*/)
    {
    }
    // After the row is written.
    virtual void epoch_written(TrainLoop&, int64_t /*epoch*/) {}
};

class TrainLoop
{
public:
    TrainLoop(Run& run, const StageDecl& stage);
    void add(std::unique_ptr<TrainHook> hook) { hooks_.push_back(std::move(hook)); }
    void run();

    Run& run_context() { return run_; }
    const StageDecl& stage() const { return stage_; }
    TrainState& state() { return state_; }
    const std::string& model_name() const { return model_name_; }
    std::vector<ansatz_named_tensor>& parameters() { return params_; }
    GradientArena& gradients() { return grads_; }
    const Instance& loss() const { return *loss_; }
    // The folder of the last checkpoint written by this stage (empty before the first).
    std::filesystem::path& last_checkpoint() { return last_checkpoint_; }
    int64_t epochs() const { return epochs_; }

private:
    void bind();
    void shuffle();
    void epoch(int64_t epoch);

    Run& run_;
    const StageDecl& stage_;
    std::string model_name_;
    Instance* model_ = nullptr;
    Instance* data_ = nullptr;
    Instance* loss_ = nullptr;
    Instance* optimizer_ = nullptr;
    Instance* sampler_ = nullptr;
    std::vector<ansatz_named_tensor> params_;
    GradientArena grads_;
    TrainState state_;
    int64_t count_ = 0, dim_ = 0, batch_size_ = 0, batches_ = 0, epochs_ = 0;
    std::vector<float> batch_storage_;
    std::filesystem::path last_checkpoint_;
    std::vector<std::unique_ptr<TrainHook>> hooks_;
};

// The hooks every train stage has.
std::unique_ptr<TrainHook> non_finite_guard();
std::unique_ptr<TrainHook> checkpoint_every(int64_t every);

} // namespace ansatz::engine

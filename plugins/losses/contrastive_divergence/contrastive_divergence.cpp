// Contrastive divergence: CD-k (Hinton 2002) and persistent CD (Tieleman 2008).
//
//     L(theta) = mean_n F(v_n) - mean_m F(u_m),     v: the batch, u: the negative chains
//
// The chains are held fixed while differentiating, so dL/dtheta is the usual estimate of the gradient
// of the negative log-likelihood: <dF/dtheta>_data - <dF/dtheta>_model. The chains are a copy of the
// batch (CD) or persistent across calls (PCD), advanced by the bound sampler's configured number of
// steps: the sampler's `steps` is the k of CD-k.
//
// One pass for both phases: the chains and the batch are rows of one stacked matrix {M + N, D} (the
// chains first: PCD's persistent chains live there, so only the batch is copied), and a model with
// free_energy_grad_weighted differentiates it in one call with weights -1/M (chains) and +1/N (batch):
// the model's products have M + N rows instead of two calls' M and N, and run nearer the sgemm rate.
// The free energies of that pass give the loss. A model without the weighted gradient gets the two
// calls of free_energy_grad.
//
// PCD keeps its chains advanced, ready for the next batch: created from random_state and advanced k
// sweeps, then every call differentiates them as they stand and advances them k sweeps after the pass
// (as scikit-learn's BernoulliRBM keeps its chains' hidden states from the last pass). Between two
// gradients the chains make k sweeps, as in Tieleman (2008); a gradient sees chains advanced under the
// parameters before the last update. The sweep's first half, h ~ p(h | v) of the chains, then needs
// E[h | v] of rows the pass just differentiated, which a model may keep (the rbm does): one product
// fewer per batch. CD advances its copy of the batch first, as it must.
//
// Random streams (so a run can be replayed): every chain draws from a stream of its own (abi.h), split
// from the stream passed to compute():
//   PCD: on the first call, one stream per persistent chain (ansatz::split), kept with its chain, which
//        draws its random_state and every sweep from it;
//   CD:  on every call, one stream per row of the batch, for the sampler's advance;
//   then, on a batch that computes the reconstruction error (`reconstruction_every`), one stream per
//   row for its h ~ p(h | v).
// State (PCD): the chains "chains" {M, D} and their streams "chain_streams" {M, 4}, saved in
// checkpoints so that a resumed run goes on with the same chains. Value-only calls (grads == NULL,
// an evaluation) advance a copy of the chains and streams, so training is not disturbed.
#include <ansatz/plugin.hpp>
#include <ansatz/xtensor.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace
{

using ansatz::Workspace;

class ContrastiveDivergence final : public ansatz::Loss
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_FREE_ENERGY_GRAD;
    static constexpr bool needs_sampler = true;

    static void describe(ansatz::Schema& s)
    {
        s.boolean(
             "persistent",
             "keep the negative chains across batches (PCD) instead of restarting them at the batch (CD)")
            .default_value(false);
        s.integer("chains",
                  "number of persistent chains; 0 = the size of the first batch (needs persistent: true)")
            .default_value(0)
            .min(0);
        s.real("energy_penalty",
               "alpha: adds alpha (mean F(batch)^2 + mean F(chains)^2) to the loss, which keeps a neural "
               "energy's values near 0 (Foster's deep EBM: 0.1); needs free_energy_grad_weighted")
            .default_value(0.0)
            .min(0.0);
        s.real("data_noise",
               "std of Gaussian noise added to the batch's copy before each training pass, clamped to the "
               "model's box (Foster's deep EBM: 0.005); 0 = none; needs a model with real values")
            .default_value(0.0)
            .min(0.0);
        s.integer("reconstruction_every",
                  "report the reconstruction error, computed on every N-th batch of an epoch (two more "
                  "products on those batches); 0 = never")
            .default_value(1)
            .min(0);
    }

    ContrastiveDivergence(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), persistent_(c.boolean("persistent")), chains_key_(c.integer("chains")),
          reconstruction_every_(c.integer("reconstruction_every")), penalty_(c.real("energy_penalty")),
          data_noise_(c.real("data_noise")), host_(host)
    {
        if (chains_key_ != 0 && !persistent_)
            throw ansatz::InputError(
                "key chains is " + std::to_string(chains_key_) +
                ", but CD restarts one chain at every sample of the batch; set persistent: "
                "true to keep " +
                std::to_string(chains_key_) + " chains");
    }

    void bind(const ansatz::ModelRef& model, const ansatz::SamplerRef& sampler) override
    {
        if (!model.has(ANSATZ_FN_FREE_ENERGY_GRAD))
            throw ansatz::InputError(
                "it needs a model with a free energy gradient (function 'free_energy_grad')");
        if (!sampler.valid())
            throw ansatz::InputError("it needs a sampler for its negative phase");
        if (penalty_ > 0 && !model.has(ANSATZ_FN_WEIGHTED_GRAD))
            throw ansatz::InputError(
                "key energy_penalty needs a model with function "
                "'free_energy_grad_weighted' (each row's gradient weighted by its energy)");
        if (data_noise_ > 0 && model.sample_info().domain != ANSATZ_DOMAIN_REAL)
            throw ansatz::InputError(
                "key data_noise adds Gaussian noise, but the model's values are not real");
        box_ = model.bounds();
        model_ = model;
        sampler_ = sampler;
        chains_ready_ = false;
    }

    void compute(const ansatz_tensor& batch, ansatz_tensor* grads, int32_t n_grads, ansatz::Rng& rng,
                 ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("loss '" + name_ + "' is used before bind()");
        ansatz::require_matrix(batch, -1, -1, "contrastive_divergence: batch");
        const int64_t n = batch.shape[0];
        const int64_t d = batch.shape[1];
        if (n == 0)
            throw ansatz::Error("loss '" + name_ + "' got an empty batch");

        // ---- the stacked rows: M chains, then a copy of the batch
        float* stack = nullptr;
        int64_t m = n;
        if (persistent_)
        {
            if (!chains_ready_)
            {
                chains_rows_ = chains_key_ != 0 ? chains_key_ : n;
                chains_cols_ = d;
                host_.require_memory(4.0 * static_cast<double>(chains_rows_) * (static_cast<double>(d) + 8),
                                     "chains: " + std::to_string(chains_rows_) + " persistent chains of " +
                                         std::to_string(d) + " values");
                chains_.assign(static_cast<size_t>(chains_rows_ * d), 0.0f);
                ansatz_tensor fresh = ansatz::make_view(chains_.data(), { chains_rows_, d });
                model_.random_state(fresh, chain_streams_.split_from(rng, chains_rows_));
                // The chains are kept advanced, ready for the next batch: the first gets them after k
                // sweeps from their random start, like every later one after k more.
                sampler_.advance(fresh, 0, chain_streams_.streams());
                chains_ready_ = true;
            }
            if (d != chains_cols_)
                throw ansatz::Error("loss '" + name_ + "': the batch has " + std::to_string(d) +
                                    " values per sample, but the persistent chains have " +
                                    std::to_string(chains_cols_));
            m = chains_rows_;
            if (grads)
            {
                // The persistent chains are the first rows of chains_, which grows to hold the batch too.
                grow(chains_, (m + n) * d);
                stack = chains_.data();
            }
            else
            {
                // An evaluation: the chains as they are (advanced, ready), copied; nothing changes.
                grow(stack_copy_, (m + n) * d);
                std::copy_n(chains_.data(), m * d, stack_copy_.data());
                stack = stack_copy_.data();
            }
        }
        else
        {
            grow(stack_copy_, 2 * n * d); // CD: the chains start at the batch
            std::copy_n(ansatz::f32(batch), n * d, stack_copy_.data());
            stack = stack_copy_.data();
        }
        std::copy_n(ansatz::f32(batch), n * d, stack + m * d);
        if (grads && data_noise_ > 0)
            add_data_noise(stack + m * d, n, d, rng);
        ansatz_tensor chains = ansatz::make_view(stack, { m, d });
        if (!persistent_) // CD: the chains start at the batch, advanced now
            sampler_.advance(chains, 0, negative_streams_.split_from(rng, n));

        // ---- the loss, the free-energy gap (averaged in double), and its gradient <dF>_data - <dF>_chains,
        // each free energy computed in the same pass as its gradient
        ansatz_tensor rows = ansatz::make_view(stack, { m + n, d });
        ansatz_tensor f = f_.vector(m + n);
        ansatz_tensor f_chains = ansatz::make_view(ansatz::f32(f), { m });
        ansatz_tensor f_data = ansatz::make_view(ansatz::f32(f) + m, { n });
        if (grads && model_.has(ANSATZ_FN_WEIGHTED_GRAD))
        {
            weights_.resize(static_cast<size_t>(m + n));
            std::fill_n(weights_.begin(), m, -1.0f / static_cast<float>(m));
            std::fill(weights_.begin() + m, weights_.end(), 1.0f / static_cast<float>(n));
            if (penalty_ > 0)
            {
                // d/dF of alpha mean F^2 is 2 alpha F / rows: the weights need the energies first (one
                // forward pass more, cheap next to the sampler's).
                model_.free_energy(rows, f);
                const float* e = ansatz::f32(f);
                for (int64_t r = 0; r < m + n; ++r)
                    weights_[static_cast<size_t>(r)] +=
                        static_cast<float>(2.0 * penalty_ * e[r] / static_cast<double>(r < m ? m : n));
            }
            model_.free_energy_grad_weighted(rows, weights_.data(), grads, n_grads, &f);
        }
        else if (grads)
        {
            const ansatz_tensor data_rows = ansatz::make_view(stack + m * d, { n, d });
            model_.free_energy_grad(data_rows, 1.0f / static_cast<float>(n), grads, n_grads, &f_data);
            model_.free_energy_grad(chains, -1.0f / static_cast<float>(m), grads, n_grads, &f_chains);
        }
        else
            model_.free_energy(rows, f);
        const double mean_data = xt::mean<double>(ansatz::adapt<1>(f_data))();
        const double mean_chains = xt::mean<double>(ansatz::adapt<1>(f_chains))();
        const double gap = mean_data - mean_chains;
        if (penalty_ > 0)
        {
            const double squares =
                xt::mean<double>(xt::square(xt::cast<double>(ansatz::adapt<1>(f_data))))() +
                xt::mean<double>(xt::square(xt::cast<double>(ansatz::adapt<1>(f_chains))))();
            out.add("loss", gap + penalty_ * squares);
            out.add("energy_penalty", penalty_ * squares);
        }
        else
            out.add("loss", gap);
        out.add("free_energy_gap", gap);
        out.add("free_energy_data", mean_data);
        out.add("free_energy_samples", mean_chains);

        // ---- reconstruction error, on the batches reconstruction_every says; then PCD advances its chains
        // for the next batch. Both start with h ~ p(h | v) of rows the pass just saw (the batch's copy, the
        // chains), so a model that keeps that pass's E[h | v] (the rbm does) draws them without a product.
        if (model_.has_conditionals() && reconstruction_every_ != 0)
            reconstruction(ansatz::make_view(stack + m * d, { n, d }), grads == nullptr, rng, out);
        if (persistent_ && grads)
            sampler_.advance(chains, 0, chain_streams_.streams());
    }

    // v -> h ~ p(h|v) -> E[v|h] for the batch's rows, reported as reconstruction_error.
    void reconstruction(const ansatz_tensor& batch, bool evaluation, ansatz::Rng& rng, ansatz::Metrics& out)
    {
        const int64_t n = batch.shape[0];
        const int64_t d = batch.shape[1];
        if (due_for_reconstruction(evaluation) || !have_reconstruction_)
        {
            const int64_t hidden = model_.block_size(ANSATZ_BLOCK_HIDDEN);
            ansatz_tensor h_mean = h_mean_.view(n, hidden);
            ansatz_tensor h = h_sample_.view(n, hidden);
            ansatz_tensor v_mean = v_mean_.view(n, d);
            model_.conditional(ANSATZ_BLOCK_HIDDEN, batch, h_mean, &h, row_streams_.split_from(rng, n));
            model_.conditional(ANSATZ_BLOCK_VISIBLE, h, v_mean, nullptr);
            const float* x = ansatz::f32(batch);
            const float* r = ansatz::f32(v_mean);
            double sum = 0.0;
            for (int64_t i = 0; i < n * d; ++i)
                sum += static_cast<double>((x[i] - r[i]) * (x[i] - r[i]));
            const double error = sum / static_cast<double>(n * d);
            if (evaluation) // an evaluation reports its own and keeps nothing
            {
                out.add("reconstruction_error", error);
                return;
            }
            last_reconstruction_ = error;
            have_reconstruction_ = true;
        }
        out.add("reconstruction_error", last_reconstruction_);
    }

    // "ready" says whether the chains exist yet, so a checkpoint that lost them is refused.
    std::vector<ansatz_named_tensor> state()
    {
        ready_flag_ = chains_ready_ ? 1 : 0;
        std::vector<ansatz_named_tensor> out{ { "ready", ansatz::make_view(&ready_flag_, { 1 }) } };
        if (!persistent_ || !chains_ready_)
            return out;
        ansatz::Streams s = chain_streams_.streams();
        out.push_back({ "chains", ansatz::make_view(chains_.data(), { chains_rows_, chains_cols_ }) });
        out.push_back({ "chain_streams",
                        ansatz::make_view(reinterpret_cast<uint64_t*>(s.data()), { chains_rows_, 4 }) });
        return out;
    }

    void set_state(const ansatz::StateIn& in)
    {
        in.require_only({ "ready", "chains", "chain_streams" });
        const bool ready = *in.get<int64_t>("ready", { 1 }) != 0;
        const ansatz_tensor* saved = in.find("chains");
        if (!persistent_ || !ready)
        {
            chains_ready_ = false; // saved before the first batch: the chains start with the next one
            return;
        }
        if (!saved)
            throw ansatz::InputError(
                "the saved state has no piece 'chains', though it says the chains exist");
        if (saved->rank != 2)
            throw ansatz::InputError("the saved chains have shape " + ansatz::shape_string(*saved) +
                                     ", expected {chains, values}");
        chains_rows_ = saved->shape[0];
        chains_cols_ = saved->shape[1];
        const float* values = in.get<float>("chains", { chains_rows_, chains_cols_ });
        const uint64_t* words = in.get<uint64_t>("chain_streams", { chains_rows_, 4 });
        chains_.assign(values, values + chains_rows_ * chains_cols_);
        ansatz::Rng parent;
        ansatz::Streams s = chain_streams_.split_from(parent, chains_rows_);
        std::copy_n(words, 4 * chains_rows_, reinterpret_cast<uint64_t*>(s.data()));
        chains_ready_ = true;
    }

private:
    static void grow(std::vector<float>& v, int64_t size)
    {
        if (v.size() < static_cast<size_t>(size))
            v.resize(static_cast<size_t>(size));
    }

    // rows += data_noise * z, z ~ N(0, I) from one stream per row (split from the call's stream), each value
    // then clamped to the model's box: Foster's augmentation of the data, so that the energy does not
    // learn the exact grey levels of the data (which no Langevin sample has).
    void add_data_noise(float* rows, int64_t n, int64_t d, ansatz::Rng& rng)
    {
        ansatz::Streams s = noise_streams_.split_from(rng, n);
        const auto [low, high] = box_;
        for (int64_t r = 0; r < n; ++r)
            for (int64_t i = 0; i < d; ++i)
            {
                const double x = rows[r * d + i] + data_noise_ * s[static_cast<size_t>(r)].normal();
                rows[r * d + i] = static_cast<float>(std::clamp(x, low, high));
            }
    }

    // Every batch with reconstruction_every 1, and every evaluation; else batches 1, N + 1, 2N + 1, ... of
    // each epoch (the host's progress counts them; outside a train stage, every call). The first batch of
    // every epoch computes it, so the value reported in between never comes from an earlier epoch and a
    // resumed run (which starts at an epoch) reports what an uninterrupted one does.
    bool due_for_reconstruction(bool evaluation) const
    {
        if (reconstruction_every_ == 1 || evaluation)
            return true;
        const ansatz_progress p = host_.progress();
        if (p.steps_per_epoch <= 0 || p.step < 0)
            return true;
        return (p.step % p.steps_per_epoch) % reconstruction_every_ == 0;
    }

    std::string name_;
    bool persistent_;
    int64_t chains_key_;
    int64_t reconstruction_every_;
    double penalty_;    // alpha of energy_penalty
    double data_noise_; // std of the noise on the batch's copy
    std::pair<double, double> box_{ -HUGE_VAL, HUGE_VAL };
    ansatz::Host host_;

    bool chains_ready_ = false;
    int64_t ready_flag_ = 0; // chains_ready_ as state() shows it
    int64_t chains_rows_ = 0;
    int64_t chains_cols_ = 0;
    // The persistent chains {chains_rows_, chains_cols_}, followed by room for a copy of the batch: the
    // rows the weighted gradient differentiates in one pass.
    std::vector<float> chains_;
    std::vector<float> stack_copy_;    // CD's and an evaluation's stacked rows
    std::vector<float> weights_;       // -1/M for the chains, +1/N for the batch
    double last_reconstruction_ = 0.0; // reported again on the batches between two computations
    bool have_reconstruction_ = false;

    ansatz::StreamArray chain_streams_;    // PCD: one per persistent chain
    ansatz::StreamArray negative_streams_; // CD: one per row of the batch
    ansatz::StreamArray row_streams_;      // the reconstruction's h ~ p(h | v)
    ansatz::StreamArray noise_streams_;    // data_noise: one per row of the batch
    Workspace f_, h_mean_, h_sample_, v_mean_;
};

} // namespace

ANSATZ_PLUGIN("contrastive_divergence", "0.1.0", "MIT",
              ansatz::loss<ContrastiveDivergence>(
                  "contrastive_divergence",
                  "CD-k and persistent CD: free-energy gap between data and MCMC chains"))

// Annealed importance sampling (Neal 2001) of log Z, from a base-rate model to the model, as
// Salakhutdinov & Murray (2008) do for RBMs; with `reverse: true` also reverse AIS (Burda, Grosse &
// Salakhutdinov 2015), whose chains start at data rows and anneal from the model to the base.
//
// The path is the model's tempered family (abi.h), E_beta,phi(v, h) = E0(v) + beta E1(v, h) - phi.v,
// with the field shrinking as beta grows:
//     f_k(v) = exp(-F_k(v)),   F_k = F_{beta_k, (1 - beta_k) phi},   0 = beta_0 < ... < beta_K = 1
// so f_0 is the base-rate model (phi from the base data's marginals; log Z_0 = base_log_partition(phi))
// and f_K the model. Forward, per chain:
//     v_0 ~ p_0 (the visible conditional at beta = 0, which ignores h)
//     for k = 1..K:  log w += F_{k-1}(v_{k-1}) - F_k(v_{k-1});  v_k = T_k(v_{k-1}) for k < K
//     log Z ~ log Z_0 + log mean_m w_m
// where T_k is one block Gibbs sweep at beta_k (h ~ p_k(h|v), v ~ p_k(v|h): reversible for p_k(v)).
// Reverse, per chain, from v_{K-1} = a data row:
//     for k = K..1:  log w += F_k(v_{k-1}) - F_{k-1}(v_{k-1});  v_{k-2} = T_{k-1}(v_{k-1}) for k > 1
//     log Z ~ log Z_0 - log mean_m w_m
// Every free energy is FLOAT64 (tempered_free_energy) and the weights are summed in double.
#include <ansatz/math.hpp>
#include <ansatz/plugin.hpp>
#include <ansatz/statistics.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace
{

using ansatz::MeanAndError;

// log mean_m e^{x_m}, the delta-method standard error of it, std(w) / (sqrt(M) mean(w)), and the
// effective sample size (sum w)^2 / sum w^2; all from weights shifted by their largest log (no overflow).
struct WeightSummary
{
    double log_mean = 0;
    double log_mean_stderr = 0;
    double effective_size = 0;
};

WeightSummary summarise(const std::vector<double>& log_w)
{
    const double m = static_cast<double>(log_w.size());
    const double top = *std::max_element(log_w.begin(), log_w.end());
    double s1 = 0, s2 = 0;
    for (double x : log_w)
    {
        const double w = std::exp(x - top);
        s1 += w;
        s2 += w * w;
    }
    WeightSummary out;
    out.log_mean = top + std::log(s1 / m);
    const double mean = s1 / m;
    const double variance = log_w.size() > 1 ? std::max(0.0, (s2 - s1 * mean) / (m - 1)) : 0.0;
    out.log_mean_stderr = log_w.size() > 1 ? std::sqrt(variance) / (std::sqrt(m) * mean)
                                           : std::numeric_limits<double>::quiet_NaN();
    out.effective_size = s1 * s1 / s2;
    return out;
}

// The inverse temperatures beta_0 = 0 < ... < beta_K = 1 (K = steps) of a schedule.
std::vector<double> schedule(const std::string& kind, int64_t steps)
{
    std::vector<double> beta(static_cast<size_t>(steps + 1));
    const double k_total = static_cast<double>(steps);
    if (kind == "linear")
    {
        for (int64_t k = 0; k <= steps; ++k)
            beta[static_cast<size_t>(k)] = static_cast<double>(k) / k_total;
    }
    else if (kind == "sigmoid")
    {
        // Grosse, Maddison & Salakhutdinov (2013): sigmoid(delta (2k/K - 1)) rescaled to [0, 1], delta = 4.
        const double delta = 4.0;
        auto s = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
        const double lo = s(-delta), hi = s(delta);
        for (int64_t k = 0; k <= steps; ++k)
            beta[static_cast<size_t>(k)] =
                (s(delta * (2.0 * static_cast<double>(k) / k_total - 1.0)) - lo) / (hi - lo);
    }
    else // dense_near_one: Salakhutdinov & Murray's 500 / 4000 / 10000 steps in [0, .5] / [.5, .9] / [.9, 1]
    {
        const int64_t n1 = std::max<int64_t>(1, std::llround(k_total * 500.0 / 14500.0));
        const int64_t n2 = std::max<int64_t>(1, std::llround(k_total * 4000.0 / 14500.0));
        const int64_t n3 = steps - n1 - n2; // >= 1 for steps >= 3
        int64_t k = 0;
        auto segment = [&](double from, double to, int64_t n) {
            for (int64_t j = 1; j <= n; ++j)
                beta[static_cast<size_t>(++k)] =
                    from + (to - from) * static_cast<double>(j) / static_cast<double>(n);
        };
        segment(0.0, 0.5, n1);
        segment(0.5, 0.9, n2);
        segment(0.9, 1.0, n3);
    }
    beta.front() = 0.0;
    beta.back() = 1.0;
    return beta;
}

class Ais final : public ansatz::Evaluator
{
public:
    static constexpr uint64_t needs = ANSATZ_FN_CONDITIONAL | ANSATZ_FN_TEMPERED;

    static void describe(ansatz::Schema& s)
    {
        s.integer("chains", "number of annealing runs M (one random stream each)").default_value(100).min(2);
        s.integer("temperatures",
                  "number of annealing steps K: inverse temperatures 0 = beta_0 < ... < beta_K = 1")
            .default_value(14500)
            .min(3);
        s.choice("schedule", "sigmoid|linear|dense_near_one",
                 "spacing of the inverse temperatures: a sigmoid, denser near both ends; even; or "
                 "Salakhutdinov & "
                 "Murray's (500 : 4000 : 10000 steps in [0, 0.5] : [0.5, 0.9] : [0.9, 1])")
            .default_value("sigmoid");
        s.boolean(
             "reverse",
             "also run reverse AIS from data rows (an upper bracket of log Z when they are model samples)")
            .default_value(false);
        s.choice("reverse_start", "first|random",
                 "reverse chains start at the first `chains` rows of the data (cycled), or at rows drawn at "
                 "random")
            .default_value("first");
        s.component("base_data", ANSATZ_KIND_DATASET,
                    "dataset whose visible marginals define the base-rate model; default: the evaluated data")
            .optional();
        s.real("base_clip", "the base-rate marginals are clipped to [base_clip, 1 - base_clip]")
            .default_value(0.001)
            .min(0, true)
            .max(0.5, true);
    }

    Ais(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), chains_(c.integer("chains")), steps_(c.integer("temperatures")),
          schedule_(c.string("schedule")), reverse_(c.boolean("reverse")),
          random_start_(c.string("reverse_start") == "random"), clip_(c.real("base_clip")), host_(host)
    {
        if (c.has("base_data"))
            base_data_ = ansatz::as_dataset(c.component("base_data"));
        beta_ = schedule(schedule_, steps_);
    }

    void bind(const ansatz::ModelRef& model) override
    {
        if (!model.has(ANSATZ_FN_TEMPERED))
            throw ansatz::InputError(
                "it needs a model with the tempered functions (tempered_free_energy, base_log_partition, "
                "tempered_conditional)");
        domain_ = model.sample_info().domain;
        if (domain_ == ANSATZ_DOMAIN_CATEGORICAL)
            throw ansatz::InputError(
                "ais: the base-rate model of categorical visible units is not defined here; "
                "it supports binary, spin and real-valued visible units");
        model_ = model;
    }

    void evaluate(const ansatz_tensor& data, ansatz::Rng& rng, ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("evaluator '" + name_ + "' is used before bind()");
        ansatz::require_matrix(data, -1, -1, "ais evaluate: data");
        const int64_t n = data.shape[0];
        d_ = data.shape[1];
        h_ = model_.block_size(ANSATZ_BLOCK_HIDDEN);
        if (n == 0)
            throw ansatz::InputError("the evaluated data has no rows");
        if (h_ < 0)
            throw ansatz::Error("evaluator '" + name_ + "': the model did not report its hidden block size");
        host_.require_memory(4.0 * static_cast<double>(chains_) * (2.0 * static_cast<double>(d_ + h_) + 8.0),
                             "chains: " + std::to_string(chains_) + " with " + std::to_string(d_) +
                                 " visible and " + std::to_string(h_) + " hidden units");

        // Streams, in this order: the base data's reads, the forward chains, then the reverse chains and
        // (reverse_start: random) their starting rows.
        ansatz::Rng base_rng = rng.derive(0);
        rng.next();
        base_field(data, base_rng);
        const ansatz_tensor phi = ansatz::make_view(phi_.data(), { d_ });
        const double log_z0 = model_.base_log_partition(has_field() ? &phi : nullptr);

        // Forward: from the base to the model.
        const ansatz::Streams streams = streams_.split_from(rng, chains_);
        buffers();
        ansatz_tensor v = ansatz::make_view(v_.data(), { chains_, d_ });
        ansatz_tensor h = ansatz::make_view(h_sample_.data(), { chains_, h_ });
        std::fill(h_sample_.begin(), h_sample_.end(), 0.0f); // beta = 0: p_0(v | h) ignores h
        fill_beta(0);
        ansatz_tensor v_mean = v_mean_view();
        model_.tempered_conditional(ANSATZ_BLOCK_VISIBLE, h, beta_rows_.data(), field(0), v_mean, &v,
                                    streams);
        std::vector<double> log_w(static_cast<size_t>(chains_), 0.0);
        for (int64_t k = 1; k <= steps_; ++k)
        {
            check_cancelled(k);
            add_log_ratio(v, k - 1, k, log_w); // + F_{k-1}(v) - F_k(v)
            if (k < steps_)
                sweep(v, h, k, streams);
        }
        const WeightSummary forward = summarise(log_w);
        const double log_z = log_z0 + forward.log_mean;
        const double log_z_stderr = forward.log_mean_stderr;

        // Reverse: from data rows down to the base.
        WeightSummary backward;
        if (reverse_)
        {
            const ansatz::Streams rstreams = streams_.split_from(rng, chains_);
            const float* rows = ansatz::f32(data);
            for (int64_t m = 0; m < chains_; ++m)
            {
                const int64_t row =
                    random_start_ ? static_cast<int64_t>(rng.below(static_cast<uint64_t>(n))) : m % n;
                std::copy_n(rows + row * d_, d_, v_.data() + m * d_);
            }
            std::fill(log_w.begin(), log_w.end(), 0.0);
            for (int64_t k = steps_; k >= 1; --k)
            {
                check_cancelled(k);
                add_log_ratio(v, k, k - 1, log_w); // + F_k(v) - F_{k-1}(v)
                if (k > 1)
                    sweep(v, h, k - 1, rstreams);
            }
            backward = summarise(log_w);
        }

        // The data's free energies under the model (beta = 1, no field), in double.
        MeanAndError log_p; // -F(v_n)
        const float* rows = ansatz::f32(data);
        const int64_t batch = 1024;
        std::vector<double> ones(static_cast<size_t>(std::min(batch, n)), 1.0);
        for (int64_t first = 0; first < n; first += batch)
        {
            check_cancelled(0);
            const int64_t count = std::min(batch, n - first);
            const ansatz_tensor rows_view = ansatz::make_view(rows + first * d_, { count, d_ });
            data_f_.resize(static_cast<size_t>(count));
            ansatz_tensor f = ansatz::make_view(data_f_.data(), { count });
            model_.tempered_free_energy(rows_view, ones.data(), nullptr, f);
            for (int64_t r = 0; r < count; ++r)
                log_p.add(-data_f_[static_cast<size_t>(r)]);
        }
        const double data_stderr = log_p.standard_error();

        out.add("log_z", log_z);
        out.add("log_z_stderr", log_z_stderr);
        out.add("log_likelihood", log_p.mean() - log_z);
        out.add("log_likelihood_stderr", std::hypot(data_stderr, log_z_stderr));
        out.add("ais_ess", forward.effective_size);
        if (reverse_)
        {
            const double log_z_reverse = log_z0 - backward.log_mean;
            out.add("log_z_reverse", log_z_reverse);
            out.add("log_z_reverse_stderr", backward.log_mean_stderr);
            out.add("log_likelihood_reverse", log_p.mean() - log_z_reverse);
            out.add("log_likelihood_reverse_stderr", std::hypot(data_stderr, backward.log_mean_stderr));
            out.add("ais_ess_reverse", backward.effective_size);
        }
    }

private:
    bool has_field() const { return domain_ != ANSATZ_DOMAIN_REAL; }

    // phi from the base data's visible marginals: logit of the clipped means (binary), atanh of the
    // clipped means (spin: P(+1) clipped as a binary mean is), none for real-valued units.
    void base_field(const ansatz_tensor& data, ansatz::Rng& rng)
    {
        phi_.assign(static_cast<size_t>(d_), 0.0f);
        if (!has_field())
            return;
        std::vector<double> sum(static_cast<size_t>(d_), 0.0);
        int64_t count = 0;
        if (base_data_.valid())
        {
            const ansatz_dataset_info info = base_data_.info();
            int64_t size = 1;
            for (int32_t i = 0; i < info.sample_rank; ++i)
                size *= info.sample_shape[i];
            if (size != d_)
                throw ansatz::InputError("base_data's samples have " + std::to_string(size) +
                                         " values, but the evaluated data's have " + std::to_string(d_));
            if (info.count <= 0)
                throw ansatz::InputError("base_data has no samples");
            const int64_t batch = 1024;
            std::vector<int64_t> indices;
            std::vector<float> buffer;
            for (int64_t first = 0; first < info.count; first += batch)
            {
                check_cancelled(0);
                const int64_t rows = std::min(batch, info.count - first);
                indices.resize(static_cast<size_t>(rows));
                for (int64_t r = 0; r < rows; ++r)
                    indices[static_cast<size_t>(r)] = first + r;
                buffer.resize(static_cast<size_t>(rows * d_));
                ansatz_tensor view = ansatz::make_view(buffer.data(), { rows, d_ });
                base_data_.read(indices.data(), rows, view, nullptr, rng);
                add_columns(buffer.data(), rows, sum);
            }
            count = info.count;
        }
        else
        {
            add_columns(ansatz::f32(data), data.shape[0], sum);
            count = data.shape[0];
        }
        for (int64_t i = 0; i < d_; ++i)
        {
            double mean = sum[static_cast<size_t>(i)] / static_cast<double>(count);
            if (domain_ == ANSATZ_DOMAIN_SPIN)
                mean = (mean + 1.0) / 2.0; // P(+1)
            const double p = std::clamp(mean, clip_, 1.0 - clip_);
            // logit(p) for {0, 1}; for spins p(s) ~ e^{phi s} has P(+1) = sigmoid(2 phi): phi = atanh(2p -
            // 1).
            const double logit = std::log(p / (1.0 - p));
            phi_[static_cast<size_t>(i)] =
                static_cast<float>(domain_ == ANSATZ_DOMAIN_SPIN ? logit / 2.0 : logit);
        }
    }

    void add_columns(const float* rows, int64_t n, std::vector<double>& sum) const
    {
        for (int64_t r = 0; r < n; ++r)
            for (int64_t i = 0; i < d_; ++i)
                sum[static_cast<size_t>(i)] += rows[r * d_ + i];
    }

    void buffers()
    {
        v_.assign(static_cast<size_t>(chains_ * d_), 0.0f);
        v_mean_.assign(static_cast<size_t>(chains_ * d_), 0.0f);
        h_sample_.assign(static_cast<size_t>(chains_ * h_), 0.0f);
        h_mean_.assign(static_cast<size_t>(chains_ * h_), 0.0f);
        beta_rows_.assign(static_cast<size_t>(chains_), 0.0);
        f_a_.assign(static_cast<size_t>(chains_), 0.0);
        f_b_.assign(static_cast<size_t>(chains_), 0.0);
        field_a_.assign(static_cast<size_t>(d_), 0.0f);
        field_b_.assign(static_cast<size_t>(d_), 0.0f);
    }

    ansatz_tensor v_mean_view() { return ansatz::make_view(v_mean_.data(), { chains_, d_ }); }

    void fill_beta(int64_t k)
    {
        std::fill(beta_rows_.begin(), beta_rows_.end(), beta_[static_cast<size_t>(k)]);
    }

    // The field (1 - beta_k) phi of step k in `buffer` (nullptr for real-valued units: phi = 0). Computed
    // the same way every time, so F_k is the same function at both steps that use it.
    const ansatz_tensor* field(int64_t k, std::vector<float>* buffer = nullptr)
    {
        if (!has_field())
            return nullptr;
        std::vector<float>& b = buffer ? *buffer : field_a_;
        const float scale = static_cast<float>(1.0 - beta_[static_cast<size_t>(k)]);
        for (int64_t i = 0; i < d_; ++i)
            b[static_cast<size_t>(i)] = scale * phi_[static_cast<size_t>(i)];
        field_view_ = ansatz::make_view(b.data(), { d_ });
        return &field_view_;
    }

    // log_w[m] += F_a(v_m) - F_b(v_m), with F_k = F_{beta_k, (1 - beta_k) phi}.
    void add_log_ratio(const ansatz_tensor& v, int64_t a, int64_t b, std::vector<double>& log_w)
    {
        ansatz_tensor fa = ansatz::make_view(f_a_.data(), { chains_ });
        ansatz_tensor fb = ansatz::make_view(f_b_.data(), { chains_ });
        fill_beta(a);
        model_.tempered_free_energy(v, beta_rows_.data(), field(a, &field_a_), fa);
        fill_beta(b);
        model_.tempered_free_energy(v, beta_rows_.data(), field(b, &field_b_), fb);
        for (int64_t m = 0; m < chains_; ++m)
            log_w[static_cast<size_t>(m)] += f_a_[static_cast<size_t>(m)] - f_b_[static_cast<size_t>(m)];
    }

    // One block Gibbs sweep at beta_k: h ~ p_k(h | v), then v ~ p_k(v | h), v in place.
    void sweep(ansatz_tensor& v, ansatz_tensor& h, int64_t k, ansatz::Streams streams)
    {
        fill_beta(k);
        const ansatz_tensor* f = field(k, &field_a_);
        ansatz_tensor h_mean = ansatz::make_view(h_mean_.data(), { chains_, h_ });
        model_.tempered_conditional(ANSATZ_BLOCK_HIDDEN, v, beta_rows_.data(), f, h_mean, &h, streams);
        ansatz_tensor v_mean = v_mean_view();
        model_.tempered_conditional(ANSATZ_BLOCK_VISIBLE, h, beta_rows_.data(), f, v_mean, &v, streams);
    }

    // Asks the host every 100 temperatures (and between batches of data).
    void check_cancelled(int64_t k) const
    {
        if (k % 100 == 0 && host_.cancelled())
            throw ansatz::Error("evaluator '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
    }

    std::string name_;
    int64_t chains_;
    int64_t steps_;
    std::string schedule_;
    bool reverse_;
    bool random_start_;
    double clip_;
    ansatz::Host host_;
    ansatz::DatasetRef base_data_;
    std::vector<double> beta_;

    int32_t domain_ = ANSATZ_DOMAIN_BINARY;
    int64_t d_ = 0, h_ = 0;
    std::vector<float> phi_, field_a_, field_b_;
    ansatz_tensor field_view_{};
    std::vector<float> v_, v_mean_, h_sample_, h_mean_;
    std::vector<double> beta_rows_, f_a_, f_b_, data_f_;
    ansatz::StreamArray streams_;
};

} // namespace

ANSATZ_PLUGIN(
    "ais", "0.1.0", "MIT",
    ansatz::evaluator<Ais>("ais", "annealed importance sampling of log Z from a base-rate model (and reverse "
                                  "AIS from data, a bracket), and the log-likelihood it gives"))

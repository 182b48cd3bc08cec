// The thermodynamics of any set of Ising configurations (Monte Carlo samples, an RBM's samples, a file),
// one per row, on the lattice and at the temperature this evaluator's own keys give:
//
//     E = -J sum_<ij> s_i s_j - h sum_i s_i,   m = (1/N) sum_i s_i
//     energy            = <E> / N
//     abs_magnetisation = <|m|>
//     specific_heat     = beta^2 (<E^2> - <E>^2) / N
//     susceptibility    = beta N (<m^2> - <|m|>^2)
//     binder_cumulant   = 1 - <m^4> / (3 <m^2>^2)
//
// each with a jackknife standard error x_stderr over `blocks` contiguous blocks of rows: consecutive
// rows of a Markov chain are correlated, and blocks much longer than the correlation time make the
// leave-one-block-out estimates nearly independent, as binning does. Rows of {0, 1} (an RBM's samples)
// are read as s = 2v - 1.
#include <ansatz/lattice.hpp>
#include <ansatz/plugin.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace
{

// The sums the observables are made of, per block of rows (in double).
struct Sums
{
    static constexpr int count = 5;
    std::array<double, count> s{}; // E, E^2, |m|, m^2, m^4
    double rows = 0;

    void add(double e, double m)
    {
        const double m2 = m * m;
        s[0] += e, s[1] += e * e, s[2] += std::abs(m), s[3] += m2, s[4] += m2 * m2;
        rows += 1;
    }
    Sums operator-(const Sums& other) const
    {
        Sums out;
        for (int k = 0; k < count; ++k)
            out.s[static_cast<size_t>(k)] = s[static_cast<size_t>(k)] - other.s[static_cast<size_t>(k)];
        out.rows = rows - other.rows;
        return out;
    }
    Sums& operator+=(const Sums& other)
    {
        for (int k = 0; k < count; ++k)
            s[static_cast<size_t>(k)] += other.s[static_cast<size_t>(k)];
        rows += other.rows;
        return *this;
    }
};

constexpr int kObservables = 5;
const char* const kNames[kObservables] = { "energy", "abs_magnetisation", "specific_heat", "susceptibility",
                                           "binder_cumulant" };

class IsingObservables final : public ansatz::Evaluator
{
public:
    static constexpr uint64_t needs = 0; // it reads the rows; the model only says how to read them

    static void describe(ansatz::Schema& s)
    {
        s.integer("dimension", "1: a chain of size spins; 2: a size x size square lattice")
            .default_value(2)
            .min(1)
            .max(2);
        s.integer("size", "L, the spins along each axis").default_value(8).min(2);
        s.real("J", "the coupling of E = -J sum_<ij> s_i s_j - h sum_i s_i")
            .default_value(1.0)
            .double_precision();
        s.real("h", "the external field").default_value(0.0).double_precision();
        s.real("beta", "the inverse temperature 1/T of the specific heat and the susceptibility")
            .default_value(1.0)
            .min(0, true)
            .double_precision();
        s.choice("boundary", "periodic|open",
                 "periodic: a ring or a torus; open: edge sites have fewer neighbours")
            .default_value("periodic");
        s.choice("values", "model|spin|binary",
                 "how a row holds spins: spin (-1/+1), binary (0/1, read as s = 2v - 1), or model: as the "
                 "evaluated model's domain says")
            .default_value("model");
        s.integer("blocks", "contiguous blocks of rows for the jackknife standard errors")
            .default_value(20)
            .min(2);
    }

    IsingObservables(const ansatz::Config& c, const ansatz::Host& host)
        : name_(c.instance_name()), dimension_(c.integer("dimension")), size_(c.integer("size")),
          coupling_(c.real("J")), field_(c.real("h")), beta_(c.real("beta")), values_(c.string("values")),
          blocks_(c.integer("blocks")), host_(host)
    {
        const double sites = std::pow(static_cast<double>(size_), static_cast<double>(dimension_));
        if (sites > static_cast<double>(std::numeric_limits<int32_t>::max()))
            throw ansatz::InputError("size: " + std::to_string(size_) + " with dimension: " +
                                     std::to_string(dimension_) + " makes more spins than a sample may have");
        lattice_ = ansatz::Lattice(dimension_, size_, c.string("boundary") == "periodic");
    }

    // The model says how its rows hold spins (values: model) and, when it declares one, its sample shape.
    void bind(const ansatz::ModelRef& model) override
    {
        model_ = model;
        const ansatz_sample_info info = model.sample_info();
        binary_ = values_ == "binary";
        if (values_ == "model")
        {
            if (info.domain != ANSATZ_DOMAIN_SPIN && info.domain != ANSATZ_DOMAIN_BINARY)
                throw ansatz::InputError(
                    "values: model reads the rows as the model's domain, but its values are " +
                    std::string(info.domain == ANSATZ_DOMAIN_REAL ? "real" : "categorical") +
                    "; give values: spin or values: binary");
            binary_ = info.domain == ANSATZ_DOMAIN_BINARY;
        }
        if (info.rank >= 0)
        {
            int64_t d = 1;
            for (int32_t k = 0; k < info.rank; ++k)
                d *= info.shape[k];
            if (d != lattice_.sites())
                throw ansatz::InputError(mismatch(d, "the model's samples have"));
        }
    }

    void evaluate(const ansatz_tensor& data, ansatz::Rng&, ansatz::Metrics& out) override
    {
        if (!model_.valid())
            throw ansatz::Error("evaluator '" + name_ + "' is used before bind()");
        ansatz::require_matrix(data, -1, -1, "ising_observables evaluate: data");
        const int64_t rows = data.shape[0], n = lattice_.sites();
        if (data.shape[1] != n)
            throw ansatz::InputError(mismatch(data.shape[1], "the evaluated rows have"));
        if (rows < blocks_)
            throw ansatz::InputError("the evaluated data has " + std::to_string(rows) +
                                     " rows, fewer than blocks = " + std::to_string(blocks_) +
                                     " (the jackknife needs a row in every block)");

        // Per block: the sums of E, E^2, |m|, m^2, m^4; block b holds rows [b R / B, (b + 1) R / B).
        std::vector<Sums> block(static_cast<size_t>(blocks_));
        std::vector<float> spins(static_cast<size_t>(n));
        const float* x = ansatz::f32(data);
        for (int64_t b = 0; b < blocks_; ++b)
        {
            if (host_.cancelled())
                throw ansatz::Error("evaluator '" + name_ + "' was cancelled", ANSATZ_STATUS_CANCELLED);
            for (int64_t r = b * rows / blocks_; r < (b + 1) * rows / blocks_; ++r)
            {
                double m = 0;
                for (int64_t i = 0; i < n; ++i)
                {
                    const float v = x[r * n + i];
                    const bool ok = binary_ ? (v == 0.0f || v == 1.0f) : (v == 1.0f || v == -1.0f);
                    if (!ok)
                        throw ansatz::InputError(
                            "row " + std::to_string(r) + " has " + std::to_string(v) + " at site " +
                            std::to_string(i) +
                            (binary_ ? "; binary values are 0 or 1" : "; spin values are -1 or +1") +
                            " (values: " + values_ + ")");
                    spins[static_cast<size_t>(i)] = binary_ ? 2 * v - 1 : v;
                    m += spins[static_cast<size_t>(i)];
                }
                const double e = -coupling_ * lattice_.bond_sum(spins.data()) - field_ * m;
                block[static_cast<size_t>(b)].add(e, m / static_cast<double>(n));
            }
        }

        Sums total;
        for (const Sums& s : block)
            total += s;
        const std::array<double, kObservables> full = observables(total);
        // Leave one block out: theta_(b) from the other blocks; SE^2 = (B - 1)/B sum_b (theta_(b) - mean)^2.
        std::vector<std::array<double, kObservables>> partial;
        for (const Sums& s : block)
            partial.push_back(observables(total - s));
        const double b = static_cast<double>(blocks_);
        for (int k = 0; k < kObservables; ++k)
        {
            double mean = 0;
            for (const auto& p : partial)
                mean += p[static_cast<size_t>(k)];
            mean /= b;
            double square = 0;
            for (const auto& p : partial)
                square += (p[static_cast<size_t>(k)] - mean) * (p[static_cast<size_t>(k)] - mean);
            out.add(kNames[k], full[static_cast<size_t>(k)]);
            out.add(std::string(kNames[k]) + "_stderr", std::sqrt((b - 1) / b * square));
        }
    }

private:
    // The five observables of the rows summed in s.
    std::array<double, kObservables> observables(const Sums& s) const
    {
        const double n = static_cast<double>(lattice_.sites());
        const double e = s.s[0] / s.rows, e2 = s.s[1] / s.rows, am = s.s[2] / s.rows, m2 = s.s[3] / s.rows,
                     m4 = s.s[4] / s.rows;
        return { e / n, am, beta_ * beta_ * (e2 - e * e) / n, beta_ * n * (m2 - am * am),
                 1 - m4 / (3 * m2 * m2) };
    }

    std::string mismatch(int64_t values, const char* what) const
    {
        return std::string(what) + " " + std::to_string(values) +
               " values, but the lattice (dimension: " + std::to_string(dimension_) +
               ", size: " + std::to_string(size_) + ") has " + std::to_string(lattice_.sites()) + " spins";
    }

    std::string name_;
    int64_t dimension_, size_;
    double coupling_, field_, beta_;
    std::string values_;
    int64_t blocks_;
    ansatz::Host host_;
    ansatz::Lattice lattice_;
    bool binary_ = false;
};

} // namespace

ANSATZ_PLUGIN("ising_observables", "0.1.0", "MIT",
              ansatz::evaluator<IsingObservables>(
                  "ising_observables",
                  "energy, |m|, specific heat, susceptibility and Binder cumulant of Ising configurations, "
                  "with jackknife errors"))

// The Ising model on a chain (dimension 1) or a square lattice (dimension 2) of L^d spins s_i = +-1:
//
//     H(s) = -J sum_<ij> s_i s_j - h sum_i s_i,      p(s) = exp(-beta H(s)) / Z,      F(s) = beta H(s)
//
// The bonds <ij> join every site to its neighbour one step up each axis, wrapping around with periodic
// boundaries and stopping at the edge with open ones. No trainable parameters: J, h and beta are keys.
// energy_delta costs O(neighbours) per chain (in a local-move session, times the chain's beta'); the
// tempered family (abi.h, E0 = 0 for spins) is
// F_beta',phi(s) = beta' beta H(s) - phi.s with log Z_0,phi = sum_i log(2 cosh phi_i). No conditionals,
// so no tempered_conditional.
#include <ansatz/lattice.hpp>
#include <ansatz/math.hpp>
#include <ansatz/plugin.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

namespace
{

class Ising final : public ansatz::Model
{
public:
    static void describe(ansatz::Schema& s)
    {
        s.integer("dimension", "1: a chain of size spins; 2: a size x size square lattice")
            .default_value(2)
            .min(1)
            .max(2);
        s.integer("size", "L, the spins along each axis").default_value(8).min(2);
        s.real("J", "the coupling: H = -J sum_<ij> s_i s_j - h sum_i s_i (J > 0: ferromagnet)")
            .default_value(1.0)
            .double_precision();
        s.real("h", "the external field").default_value(0.0).double_precision();
        s.real("beta", "the inverse temperature 1/T: p(s) is proportional to exp(-beta H(s))")
            .default_value(1.0)
            .min(0, true)
            .double_precision();
        s.choice("boundary", "periodic|open",
                 "periodic: the lattice wraps around (a ring, a torus); open: sites on an edge have fewer "
                 "neighbours")
            .default_value("periodic");
    }

    Ising(const ansatz::Config& c, const ansatz::Host&)
        : name_(c.instance_name()), dimension_(c.integer("dimension")), size_(c.integer("size")),
          coupling_(c.real("J")), field_(c.real("h")), beta_(c.real("beta")),
          periodic_(c.string("boundary") == "periodic")
    {
        // One sample is a row of a batch: at most 2^31 - 1 values (the engine's limit).
        const double sites = std::pow(static_cast<double>(size_), static_cast<double>(dimension_));
        if (sites > static_cast<double>(std::numeric_limits<int32_t>::max()))
            throw ansatz::InputError("size: " + std::to_string(size_) + " with dimension: " +
                                     std::to_string(dimension_) + " makes " + whole_number(sites) +
                                     " spins, more than the 2147483647 values a sample may have");
        lattice_ = ansatz::Lattice(dimension_, size_, periodic_);
        sites_ = lattice_.sites();
    }

    // Periodic lattices: the 2d neighbours of every site (a site twice when L = 2), so energy_delta sums
    // them without the divisions of Lattice::neighbour_sum; open ones use neighbour_sum (fewer at edges).
    void build_neighbours()
    {
        neighbours_.clear();
        if (!periodic_)
            return;
        const int64_t per_site = 2 * dimension_;
        neighbours_.resize(static_cast<size_t>(sites_ * per_site));
        for (int64_t i = 0; i < sites_; ++i)
        {
            const int64_t x = i % size_, y = i / size_;
            int32_t* nb = neighbours_.data() + i * per_site;
            nb[0] = static_cast<int32_t>(y * size_ + (x + 1) % size_);
            nb[1] = static_cast<int32_t>(y * size_ + (x + size_ - 1) % size_);
            if (dimension_ == 2)
            {
                nb[2] = static_cast<int32_t>(((y + 1) % size_) * size_ + x);
                nb[3] = static_cast<int32_t>(((y + size_ - 1) % size_) * size_ + x);
            }
        }
    }

    // The sum of the spins bonded to site i of one row (exact: a sum of at most four +-1 values).
    double neighbour_sum(const float* row, int64_t i) const
    {
        if (neighbours_.empty())
            return lattice_.neighbour_sum(row, i);
        if (dimension_ == 2)
        {
            const int32_t* nb = neighbours_.data() + 4 * i;
            return static_cast<double>((row[nb[0]] + row[nb[1]]) + (row[nb[2]] + row[nb[3]]));
        }
        const int32_t* nb = neighbours_.data() + 2 * i;
        return static_cast<double>(row[nb[0]] + row[nb[1]]);
    }

    ansatz_sample_info sample_info() const override
    {
        ansatz_sample_info info = Model::sample_info();
        info.domain = ANSATZ_DOMAIN_SPIN;
        info.rank = static_cast<int32_t>(dimension_);
        info.shape[0] = size_;
        if (dimension_ == 2)
            info.shape[1] = size_;
        return info;
    }

    void setup(const std::vector<int64_t>& sample_shape, ansatz::Rng&) override
    {
        int64_t n = 1;
        for (int64_t extent : sample_shape)
            n *= extent;
        if (n != sites_)
            throw ansatz::InputError("the samples have " + std::to_string(n) +
                                     " values, but the lattice (size: " + std::to_string(size_) +
                                     ", dimension: " + std::to_string(dimension_) + ") has " +
                                     std::to_string(sites_) + " spins");
        build_neighbours();
        ready_ = true;
    }

    // J, h and beta are configuration, not parameters: there is nothing to train.
    std::vector<ansatz_named_tensor> parameters() override { return {}; }

    // Every spin +1 or -1 with probability 1/2, from 64 bits of the row's stream per 64 spins.
    void random_state(ansatz_tensor& out, ansatz::Streams rngs) override
    {
        require_ready();
        ansatz::require_matrix(out, -1, sites_, "ising random_state: out");
        float* o = ansatz::f32(out);
        for (int64_t r = 0; r < out.shape[0]; ++r)
        {
            ansatz::Rng& rng = rngs[static_cast<size_t>(r)];
            uint64_t bits = 0;
            for (int64_t i = 0; i < sites_; ++i)
            {
                if (i % 64 == 0)
                    bits = rng.next();
                o[r * sites_ + i] = (bits >> (i % 64)) & 1u ? 1.0f : -1.0f;
            }
        }
    }

    // ---- ENERGY

    // out[n] = beta H(s[n]).
    void free_energy(const ansatz_tensor& v, ansatz_tensor& out)
    {
        require_ready();
        ansatz::require_matrix(v, -1, sites_, "ising free_energy: v");
        const int64_t n = v.shape[0];
        ansatz::require_vector(out, n, "ising free_energy: out");
        float* o = ansatz::f32(out);
        for (int64_t r = 0; r < n; ++r)
            o[r] = static_cast<float>(beta_ * energy(ansatz::f32(v) + r * sites_, r, "ising free_energy"));
    }

    // out[n] = beta (H(s with s_i = u) - H(s)) = -beta (u - s_i) (J sum_{j ~ i} s_j + h), i = sites[n];
    // in a local-move session, times the session's beta'[n] (F_beta' = beta' F: spins keep no E0).
    void energy_delta(const ansatz_tensor& v, const int64_t* sites, const float* new_values,
                      ansatz_tensor& out)
    {
        require_ready();
        ansatz::require_matrix(v, -1, sites_, "ising energy_delta: v");
        const int64_t n = v.shape[0];
        ansatz::require_vector(out, n, "ising energy_delta: out");
        if (session_ && n != static_cast<int64_t>(session_beta_.size()))
            throw ansatz::Error("ising energy_delta: " + std::to_string(n) +
                                " chains in a local-move session begun on " +
                                std::to_string(session_beta_.size()));
        const float* s = ansatz::f32(v);
        float* o = ansatz::f32(out);
        for (int64_t k = 0; k < n; ++k)
        {
            const int64_t i = sites[k];
            if (i < 0 || i >= sites_)
                throw ansatz::Error("ising energy_delta: site " + std::to_string(i) + " of chain " +
                                    std::to_string(k) + " is outside [0, " + std::to_string(sites_) + ")");
            const float u = new_values[k];
            if (u != 1.0f && u != -1.0f)
                throw ansatz::Error("ising energy_delta: new value " + std::to_string(u) + " of chain " +
                                    std::to_string(k) + " is not a spin (-1 or +1)");
            const float* row = s + k * sites_;
            const float now = row[i];
            if (now != 1.0f && now != -1.0f)
                throw not_a_spin("ising energy_delta", k, i, now);
            const double scale = session_ ? beta_ * session_beta_[static_cast<size_t>(k)] : beta_;
            o[k] = static_cast<float>(-scale * (u - now) * (coupling_ * neighbour_sum(row, i) + field_));
        }
    }

    // ---- LOCAL_MOVES (abi.h, 2.2): energy_delta reads the spins themselves, so a session has nothing to
    // cache but the inverse temperature of every chain (for tempering by Metropolis-Hastings).
    void local_begin(const ansatz_tensor& v, const double* beta)
    {
        require_ready();
        ansatz::require_matrix(v, -1, sites_, "ising local_begin: v");
        const int64_t n = v.shape[0];
        session_beta_.assign(static_cast<size_t>(n), 1.0);
        if (beta)
            for (int64_t r = 0; r < n; ++r)
            {
                if (!std::isfinite(beta[r]))
                    throw ansatz::Error("ising local_begin: the inverse temperature of row " +
                                        std::to_string(r) + " is " + std::to_string(beta[r]) +
                                        "; it must be finite");
                session_beta_[static_cast<size_t>(r)] = beta[r];
            }
        // Spins now, so local_step may rely on them: in a session only energy_delta's checked new values
        // (written by the caller) and local_step's flips change v (abi.h).
        // local_step's flips read a copy as bytes (a 64 x 64 lattice in 4 KiB: it stays in L1, as in a
        // hand-written loop); every accepted change updates both.
        const float* values = ansatz::f32(v);
        session_spins_.resize(static_cast<size_t>(n * sites_));
        for (int64_t r = 0; r < n; ++r)
            for (int64_t i = 0; i < sites_; ++i)
            {
                const float x = values[r * sites_ + i];
                if (x != 1.0f && x != -1.0f)
                    throw not_a_spin("ising local_begin", r, i, x);
                session_spins_[static_cast<size_t>(r * sites_ + i)] = x > 0 ? 1 : -1;
            }
        thresholds_.clear(); // built by the first local_step of the session
        session_ = true;
    }
    void local_commit(const ansatz_tensor& v, const int64_t* sites, const float*, const uint8_t* accepted)
    {
        if (!session_)
            throw ansatz::Error("ising local_commit: no local-move session is open");
        if (v.rank != 2 || v.shape[0] != static_cast<int64_t>(session_beta_.size()) || v.shape[1] != sites_)
            throw ansatz::Error("ising local_commit: the chains are not the session's");
        const float* values = ansatz::f32(v);
        for (int64_t r = 0; r < v.shape[0]; ++r)
            if (accepted[r])
            {
                const int64_t i = sites[r];
                if (i < 0 || i >= sites_)
                    throw ansatz::Error("ising local_commit: site " + std::to_string(i) + " of chain " +
                                        std::to_string(r) + " is outside [0, " + std::to_string(sites_) +
                                        ")");
                session_spins_[static_cast<size_t>(r * sites_ + i)] = values[r * sites_ + i] > 0 ? 1 : -1;
            }
    }
    void local_end() { session_ = false; }

    // ---- LOCAL_STEP (abi.h, 2.4): rounds of the session in one call, each chain's rounds in turn (its
    // spins and the neighbour table stay in the core's cache). The change is energy_delta's expression,
    // which takes few values: a flip up or down (or none), an integer neighbour sum in [-2d, 2d], the
    // chain's beta'. So the acceptance threshold exp(min(0, -delta)) of each comes from a table built per
    // distinct beta' with the same expression and ansatz::exp: the same bits as energy_delta followed by
    // the caller's acceptance, without an exponential per proposal.
    void local_step(const ansatz_tensor& v, int64_t rounds, const int64_t* sites, const float* new_values,
                    const float* uniforms, uint8_t* accepted)
    {
        require_ready();
        if (!session_)
            throw ansatz::Error("ising local_step: no local-move session is open");
        ansatz::require_matrix(v, -1, sites_, "ising local_step: v");
        const int64_t n = v.shape[0];
        if (n != static_cast<int64_t>(session_beta_.size()))
            throw ansatz::Error("ising local_step: " + std::to_string(n) +
                                " chains in a local-move session begun on " +
                                std::to_string(session_beta_.size()));
        if (thresholds_.empty())
            build_thresholds();
        float* s = ansatz::f32(v);
        const int64_t span = 4 * dimension_ + 1, offset = 2 * dimension_;
        for (int64_t k = 0; k < n; ++k)
        {
            float* row = s + k * sites_;
            const float* tables =
                thresholds_.data() + static_cast<int64_t>(table_of_row_[static_cast<size_t>(k)]) * 4 * span;
            const int64_t* row_sites = sites + k * rounds;
            const float* row_uniforms = uniforms + k * rounds;
            uint8_t* row_accepted = accepted + k * rounds;
            if (!new_values && dimension_ == 2 && !neighbours_.empty())
                flips_2d(row, k, rounds, row_sites, row_uniforms, row_accepted, tables, span, offset);
            else
                rounds_of_row(row, k, rounds, row_sites, new_values ? new_values + k * rounds : nullptr,
                              row_uniforms, row_accepted, tables, span, offset);
        }
    }

    // ---- TEMPERED (abi.h): E0 = 0 for spins, E1 = F = beta H.

    // out[n] = beta'[n] beta H(s[n]) - phi . s[n], in double.
    void tempered_free_energy(const ansatz_tensor& v, const double* beta, const ansatz_tensor* field,
                              ansatz_tensor& out)
    {
        require_ready();
        ansatz::require_matrix(v, -1, sites_, "ising tempered_free_energy: v");
        const int64_t n = v.shape[0];
        if (out.dtype != ANSATZ_DTYPE_FLOAT64 || out.rank != 1 || out.shape[0] != n)
            throw ansatz::Error("ising tempered_free_energy: out has shape " + ansatz::shape_string(out) +
                                " of " + ansatz::dtype_name(out.dtype) + ", expected {" + std::to_string(n) +
                                "} of float64");
        const float* phi = field_values(field, "ising tempered_free_energy: field");
        double* o = ansatz::data<double>(out);
        for (int64_t r = 0; r < n; ++r)
        {
            if (!std::isfinite(beta[r]))
                throw ansatz::Error("ising tempered_free_energy: the inverse temperature of row " +
                                    std::to_string(r) + " is " + std::to_string(beta[r]) +
                                    "; it must be finite");
            const float* row = ansatz::f32(v) + r * sites_;
            double e = beta[r] * beta_ * energy(row, r, "ising tempered_free_energy");
            if (phi)
                for (int64_t i = 0; i < sites_; ++i)
                    e -= static_cast<double>(phi[i]) * row[i];
            o[r] = e;
        }
    }

    // log Z_0,phi = sum_i log(2 cosh phi_i), each term as |phi_i| + log1p(e^(-2 |phi_i|)) (no overflow);
    // N log 2 without a field.
    double base_log_partition(const ansatz_tensor* field)
    {
        require_ready();
        const float* phi = field_values(field, "ising base_log_partition: field");
        if (!phi)
            return static_cast<double>(sites_) * std::log(2.0);
        double z = 0;
        for (int64_t i = 0; i < sites_; ++i)
        {
            const double a = std::abs(static_cast<double>(phi[i]));
            z += a + std::log1p(std::exp(-2 * a));
        }
        return z;
    }

private:
    static std::string whole_number(double x)
    {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.0f", x);
        return buffer;
    }

    void require_ready() const
    {
        if (!ready_)
            throw ansatz::Error("model '" + name_ + "' is used before setup()");
    }

    static ansatz::InputError not_a_spin(const char* what, int64_t row, int64_t site, float value)
    {
        return ansatz::InputError(std::string(what) + ": row " + std::to_string(row) + " has " +
                                  std::to_string(value) + " at site " + std::to_string(site) +
                                  "; an Ising state holds spins, -1 or +1");
    }

    // H(s) = -J sum_<ij> s_i s_j - h sum_i s_i of one row, with its spins checked.
    double energy(const float* s, int64_t row, const char* what) const
    {
        double magnetisation = 0;
        for (int64_t i = 0; i < sites_; ++i)
        {
            if (s[i] != 1.0f && s[i] != -1.0f)
                throw not_a_spin(what, row, i, s[i]);
            magnetisation += s[i];
        }
        return -coupling_ * lattice_.bond_sum(s) - field_ * magnetisation;
    }

    // The field phi {N} as floats, or nullptr for none.
    const float* field_values(const ansatz_tensor* field, const char* what) const
    {
        if (!field)
            return nullptr;
        ansatz::require_vector(*field, sites_, what);
        return ansatz::f32(*field);
    }

    // local_step's rounds of chain k (its row of spins), any lattice and any new values.
    void rounds_of_row(float* row, int64_t k, int64_t rounds, const int64_t* sites, const float* new_values,
                       const float* uniforms, uint8_t* accepted, const float* tables, int64_t span,
                       int64_t offset)
    {
        for (int64_t t = 0; t < rounds; ++t)
        {
            const int64_t i = sites[t];
            check_site(i, k, t);
            const float now = row[i];
            if (now != 1.0f && now != -1.0f)
                throw not_a_spin("ising local_step", k, i, now);
            const float u = new_values ? new_values[t] : -now;
            if (u != 1.0f && u != -1.0f)
                throw ansatz::Error("ising local_step: new value " + std::to_string(u) + " of chain " +
                                    std::to_string(k) + " (round " + std::to_string(t) +
                                    ") is not a spin (-1 or +1)");
            // A sum of at most 2d spins: an integer in [-2d, 2d], exactly.
            const int64_t sum = static_cast<int64_t>(neighbour_sum(row, i));
            const int64_t kind = (now > 0 ? 2 : 0) + (u > 0 ? 1 : 0);
            const bool accept = uniforms[t] < tables[kind * span + sum + offset];
            row[i] = accept ? u : now;
            if (accept)
                session_spins_[static_cast<size_t>(k * sites_ + i)] = u > 0 ? 1 : -1;
            accepted[t] = accept ? 1 : 0;
        }
    }

    // The same for flips on a periodic square lattice, the common case: the neighbour table, the table
    // of the flip up (-1 -> +1) or down, no branch on the outcome; the spins were checked at local_begin.
    void flips_2d(float* row, int64_t k, int64_t rounds, const int64_t* sites, const float* uniforms,
                  uint8_t* accepted, const float* tables, int64_t span, int64_t offset)
    {
        const float* by_spin[2] = { tables + 1 * span + offset,   // now -1, new +1
                                    tables + 2 * span + offset }; // now +1, new -1
        const int32_t* neighbours = neighbours_.data();
        int8_t* spins = session_spins_.data() + k * sites_; // the row's spins as bytes (local_begin)
        for (int64_t t = 0; t < rounds; ++t)
        {
            const int64_t i = sites[t];
            check_site(i, k, t);
            const int8_t now = spins[i];
            const int32_t* nb = neighbours + 4 * i;
            // The neighbour sum as neighbour_sum's float sum of the same spins: an integer in [-4, 4].
            const int sum = (spins[nb[0]] + spins[nb[1]]) + (spins[nb[2]] + spins[nb[3]]);
            const bool accept = uniforms[t] < by_spin[now > 0][sum];
            if (accept)
            {
                spins[i] = static_cast<int8_t>(-now);
                row[i] = static_cast<float>(-now);
            }
            accepted[t] = accept ? 1 : 0;
        }
    }

    [[gnu::always_inline]] void check_site(int64_t i, int64_t k, int64_t t) const
    {
        if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(sites_)) [[unlikely]]
            bad_site(i, k, t);
    }
    [[noreturn, gnu::noinline]] void bad_site(int64_t i, int64_t k, int64_t t) const
    {
        throw ansatz::Error("ising local_step: site " + std::to_string(i) + " of chain " + std::to_string(k) +
                            " (round " + std::to_string(t) + ") is outside [0, " + std::to_string(sites_) +
                            ")");
    }

    // local_step's tables: for every distinct beta' of the session, for each (spin now, new spin) and
    // each neighbour sum in [-2d, 2d], exp(min(0, -delta)) with delta as energy_delta computes it.
    void build_thresholds()
    {
        const int64_t span = 4 * dimension_ + 1;
        std::unordered_map<double, int32_t> index;
        table_of_row_.resize(session_beta_.size());
        std::vector<double> betas;
        for (size_t r = 0; r < session_beta_.size(); ++r)
        {
            const auto [at, added] = index.try_emplace(session_beta_[r], static_cast<int32_t>(betas.size()));
            if (added)
                betas.push_back(session_beta_[r]);
            table_of_row_[r] = at->second;
        }
        thresholds_.resize(betas.size() * 4 * static_cast<size_t>(span));
        float* t = thresholds_.data();
        for (const double b : betas)
        {
            const double scale = beta_ * b; // as energy_delta's in a session
            for (int kind = 0; kind < 4; ++kind)
            {
                const float now = kind & 2 ? 1.0f : -1.0f, u = kind & 1 ? 1.0f : -1.0f;
                for (int64_t sum = -2 * dimension_; sum <= 2 * dimension_; ++sum)
                {
                    const float delta = static_cast<float>(-scale * (u - now) *
                                                           (coupling_ * static_cast<double>(sum) + field_));
                    const float minus = -delta; // the caller's rule: u < exp(min(0, -delta))
                    *t++ = minus >= 0.0f ? 0.0f : minus;
                }
            }
        }
        ansatz::exp(thresholds_.data(), static_cast<int64_t>(thresholds_.size()));
    }

    std::string name_;
    int64_t dimension_;
    int64_t size_;
    double coupling_; // J
    double field_;    // h
    double beta_;
    bool periodic_;
    ansatz::Lattice lattice_;         // the bonds (ansatz/lattice.hpp)
    std::vector<int32_t> neighbours_; // periodic lattices: 2 d neighbours per site (build_neighbours)
    int64_t sites_ = 0;
    bool ready_ = false;
    bool session_ = false;              // a local-move session is open
    std::vector<double> session_beta_;  // its inverse temperatures, one per chain
    std::vector<int8_t> session_spins_; // {chains, sites}: the session's spins as bytes, for local_step
    std::vector<float> thresholds_;     // local_step's tables (build_thresholds), empty until the first
    std::vector<int32_t> table_of_row_; // {chains}: the table of each chain's beta'
};

} // namespace

ANSATZ_PLUGIN("ising", "0.1.0", "MIT",
              ansatz::model<Ising>(
                  "ising", "Ising model on a chain or square lattice, p(s) ~ exp(-beta H(s)), spins -1/+1"))

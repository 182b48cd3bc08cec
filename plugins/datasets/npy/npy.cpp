// A dataset of NumPy .npy files: the rows of an array (its first axis), optionally with one value per
// row (the inverse temperature each row was generated at, as a `generate` stage writes it) to select
// rows by, and optionally with labels. Values are read as they are (no scaling) into float32.
#include "npy_file.hpp"

#include <ansatz/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace
{

using ansatz_npy::NpyFile;

// "0.44", "1", "0.30000001": the shortest text that reads back as the value.
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

class Npy final : public ansatz::Dataset
{
public:
    static void describe(ansatz::Schema& s)
    {
        s.path("samples", ".npy file of the samples: the first axis is the rows; float32, float64, uint8 or "
                          "bool, C order, format 1.0, 2.0 or 3.0")
            .required()
            .must_exist();
        s.path("betas", ".npy file of one inverse temperature per row, shape (rows,), float32 or float64 "
                        "(what a generate stage writes as <to>.beta.npy)")
            .optional()
            .must_exist();
        s.real("beta", "keep only the rows whose beta (from 'betas') is this value, within 1e-6 relative")
            .optional()
            .double_precision()
            .min(0);
        s.real("temperature", "keep only the rows generated at this temperature: beta = 1 / temperature")
            .optional()
            .double_precision()
            .min(0, true);
        s.path("labels", ".npy file of one label per row, shape (rows,), any of the four dtypes")
            .optional()
            .must_exist();
        s.choice(
             "domain", "auto|binary|spin|real",
             "the values' domain: binary {0,1}, spin {-1,+1}, real; auto: binary or spin when every value "
             "is, else real")
            .default_value("auto");
        s.boolean(
             "spins_to_bits",
             "read -1/+1 spins as 0/1 bits, v = (s + 1) / 2 (for an RBM with 0/1 visible units); a value "
             "other than -1 or +1 is refused")
            .default_value(false);
        s.choice("majority", "any|down|up",
                 "flip rows of -1/+1 spins to one side of the symmetry s -> -s: down flips each row whose "
                 "spins sum to more than 0 (so most of its spins are -1), up each row that sums to less than "
                 "0; any keeps the rows as they are. Quantities that do not change under s -> -s (energy, "
                 "|m|, C, chi, Binder U of a zero-field model) keep their distribution; a value other than "
                 "-1 or +1 is refused")
            .default_value("any");
        s.integer("limit", "use only the first `limit` rows (after the beta selection); 0 = all")
            .default_value(0)
            .min(0);
    }

    Npy(const ansatz::Config& c, const ansatz::Host& host) : name_(c.instance_name())
    {
        if (c.has("beta") && c.has("temperature"))
            throw ansatz::InputError("keys beta and temperature exclude each other; give one of them");
        const bool select = c.has("beta") || c.has("temperature");
        const bool to_bits = c.boolean("spins_to_bits");
        if (to_bits && c.string("domain") == "spin")
            throw ansatz::InputError(
                "spins_to_bits: true turns the spins into 0/1 bits, but domain: spin takes "
                "only -1 and +1; drop one of the two keys");
        if (const std::string majority = c.string("majority");
            majority != "any" && !to_bits && c.string("domain") == "binary")
            throw ansatz::InputError("majority: " + majority +
                                     " keeps the values -1/+1 spins, but domain: binary takes only 0 and 1; "
                                     "add spins_to_bits: true or drop domain");
        if (select && !c.has("betas"))
            throw ansatz::InputError(std::string("key ") + (c.has("beta") ? "beta" : "temperature") +
                                     " selects rows by their beta, which the key betas (a .npy file of "
                                     "one beta per row) gives; set betas too");
        const uint64_t memory = static_cast<uint64_t>(std::max<int64_t>(0, host.memory_bytes()));
        const NpyFile samples = ansatz_npy::load_npy(c.string("samples"), memory);
        const int64_t rows = samples.rows();
        row_size_ = samples.row_size();
        shape_.assign(samples.shape.begin() + 1, samples.shape.end());

        // The rows kept: every row, or those at the chosen beta.
        std::vector<int64_t> kept;
        std::vector<double> betas;
        if (c.has("betas"))
            betas = per_row(c.string("betas"), "betas", samples, memory, true);
        if (select)
        {
            const double target = c.has("beta") ? c.real("beta") : 1.0 / c.real("temperature");
            const double tolerance = 1e-6 * std::max(1.0, std::abs(target));
            for (int64_t r = 0; r < rows; ++r)
                if (std::abs(betas[static_cast<size_t>(r)] - target) <= tolerance)
                    kept.push_back(r);
            if (kept.empty())
                throw ansatz::InputError(c.string("betas") + " has no row at beta " + number(target) +
                                         (c.has("temperature")
                                              ? " (temperature " + number(c.real("temperature")) + ")"
                                              : std::string()) +
                                         "; its betas are " + distinct(betas));
        }
        else
            for (int64_t r = 0; r < rows; ++r)
                kept.push_back(r);
        if (const int64_t limit = c.integer("limit"); limit > 0 && limit < static_cast<int64_t>(kept.size()))
            kept.resize(static_cast<size_t>(limit));
        count_ = static_cast<int64_t>(kept.size());

        host.require_memory(4.0 * static_cast<double>(count_) * static_cast<double>(row_size_),
                            "dataset '" + name_ + "' (" + std::to_string(count_) + " rows of " +
                                std::to_string(row_size_) + " float32 values)");
        values_.resize(static_cast<size_t>(count_ * row_size_));
        for (int64_t i = 0; i < count_; ++i)
            for (int64_t j = 0; j < row_size_; ++j)
                values_[static_cast<size_t>(i * row_size_ + j)] =
                    static_cast<float>(samples.value(kept[static_cast<size_t>(i)] * row_size_ + j));

        if (const std::string majority = c.string("majority"); majority != "any")
            flip_to_majority(samples, kept, majority == "down" ? -1.0f : 1.0f);
        if (to_bits)
            spins_to_bits(samples, kept);

        if (c.has("labels"))
        {
            const std::vector<double> all = per_row(c.string("labels"), "labels", samples, memory, false);
            for (int64_t r : kept)
                labels_.push_back(static_cast<float>(all[static_cast<size_t>(r)]));
        }

        domain_ = domain_of(c.string("domain"), samples, kept);
        // A picture when a sample is H x W with values in [0, 1].
        const auto [lo, hi] = std::minmax_element(values_.begin(), values_.end());
        is_image_ = shape_.size() == 2 && *lo >= 0.0f && *hi <= 1.0f;
    }

    ansatz_dataset_info info() const override
    {
        ansatz_dataset_info out{};
        out.struct_size = sizeof out;
        out.sample_rank = static_cast<int32_t>(shape_.size());
        for (size_t i = 0; i < shape_.size(); ++i)
            out.sample_shape[i] = shape_[i];
        out.count = count_;
        out.has_labels = labels_.empty() ? 0 : 1;
        out.is_image = is_image_ ? 1 : 0;
        out.domain = domain_;
        return out;
    }

    void read(const int64_t* indices, int64_t n, ansatz_tensor& out, float* labels, ansatz::Rng&) override
    {
        ansatz::require_matrix(out, n, row_size_, "npy read: out");
        if (labels && labels_.empty())
            throw ansatz::Error("dataset '" + name_ + "' has no labels (its key labels is not set)");
        for (int64_t i = 0; i < n; ++i)
            if (indices[i] < 0 || indices[i] >= count_)
                throw ansatz::Error("dataset '" + name_ + "': index " + std::to_string(indices[i]) +
                                    " at position " + std::to_string(i) + " is outside [0, " +
                                    std::to_string(count_) + ")");
        float* to = ansatz::f32(out);
        for (int64_t i = 0; i < n; ++i)
            std::copy_n(values_.data() + indices[i] * row_size_, row_size_, to + i * row_size_);
        if (labels)
            for (int64_t i = 0; i < n; ++i)
                labels[i] = labels_[static_cast<size_t>(indices[i])];
    }

private:
    // The values of a per-row file (betas, labels): rank 1, one per row of `samples`.
    static std::vector<double> per_row(const std::string& path, const std::string& key,
                                       const NpyFile& samples, uint64_t memory, bool floats_only)
    {
        const NpyFile f = ansatz_npy::load_npy(path, memory);
        if (floats_only && f.dtype != ansatz_npy::Dtype::float32 && f.dtype != ansatz_npy::Dtype::float64)
            throw ansatz::InputError(path + ": holds " + ansatz_npy::dtype_name(f.dtype) + ", but the " +
                                     key + " file holds float32 or float64 values");
        if (f.shape.size() != 1 || f.shape[0] != samples.rows())
            throw ansatz::InputError(path + ": has shape " + f.shape_text() + ", but the " + key +
                                     " file holds one value per row of " + samples.path + ", shape (" +
                                     std::to_string(samples.rows()) + ",)");
        std::vector<double> out(static_cast<size_t>(f.rows()));
        for (int64_t i = 0; i < f.rows(); ++i)
            out[static_cast<size_t>(i)] = f.value(i);
        return out;
    }

    // "0.25, 0.5 and 1" (the distinct values, sorted; at most 12 named).
    static std::string distinct(std::vector<double> values)
    {
        std::sort(values.begin(), values.end());
        values.erase(std::unique(values.begin(), values.end()), values.end());
        std::string out;
        const size_t shown = std::min<size_t>(values.size(), 12);
        for (size_t i = 0; i < shown; ++i)
            out += (i == 0 ? "" : i + 1 == values.size() ? " and " : ", ") + number(values[i]);
        if (shown < values.size())
            out += " and " + std::to_string(values.size() - shown) + " more";
        return out;
    }

    // The value at flat position i of values_ when it is not a spin: refused, naming its byte.
    void require_spin(const NpyFile& samples, const std::vector<int64_t>& kept, size_t i,
                      const char* key) const
    {
        const float v = values_[i];
        if (v == -1.0f || v == 1.0f)
            return;
        const int64_t row = kept[i / static_cast<size_t>(row_size_)];
        const int64_t column = static_cast<int64_t>(i) % row_size_;
        throw ansatz::InputError(samples.path + ": byte " + std::to_string(byte_of(samples, row, column)) +
                                 ": row " + std::to_string(row) + ", value " + std::to_string(column) +
                                 " is " + number(samples.value(row * row_size_ + column)) + ", but " +
                                 std::string(key) + " reads only spins, -1 and +1");
    }

    // s -> -s for every row whose sum has the sign opposite to `side` (-1: down, +1: up); a row that sums
    // to 0 stays as it is. Every value must be a spin.
    void flip_to_majority(const NpyFile& samples, const std::vector<int64_t>& kept, float side)
    {
        const char* key = side < 0 ? "majority: down" : "majority: up";
        for (int64_t r = 0; r < count_; ++r)
        {
            float* row = values_.data() + r * row_size_;
            int64_t sum = 0;
            for (int64_t j = 0; j < row_size_; ++j)
            {
                require_spin(samples, kept, static_cast<size_t>(r * row_size_ + j), key);
                sum += row[j] > 0.0f ? 1 : -1;
            }
            if (static_cast<float>(sum) * side < 0.0f)
                for (int64_t j = 0; j < row_size_; ++j)
                    row[j] = -row[j];
        }
    }

    // v = (s + 1) / 2 for every value, which must be a spin (the byte of the first that is not).
    void spins_to_bits(const NpyFile& samples, const std::vector<int64_t>& kept)
    {
        for (size_t i = 0; i < values_.size(); ++i)
        {
            require_spin(samples, kept, i, "spins_to_bits: true");
            values_[i] = values_[i] > 0.0f ? 1.0f : 0.0f;
        }
    }

    size_t byte_of(const NpyFile& samples, int64_t row, int64_t column) const
    {
        return samples.data_offset +
               static_cast<size_t>(row * row_size_ + column) * ansatz_npy::item_size(samples.dtype);
    }

    int32_t domain_of(const std::string& choice, const NpyFile& samples,
                      const std::vector<int64_t>& kept) const
    {
        bool binary = true, spin = true;
        int64_t first_not_binary = -1, first_not_spin = -1;
        for (size_t i = 0; i < values_.size(); ++i)
        {
            const float v = values_[i];
            if (binary && v != 0.0f && v != 1.0f)
                binary = false, first_not_binary = static_cast<int64_t>(i);
            if (spin && v != -1.0f && v != 1.0f)
                spin = false, first_not_spin = static_cast<int64_t>(i);
        }
        if (choice == "real")
            return ANSATZ_DOMAIN_REAL;
        if (choice == "auto")
            return binary ? ANSATZ_DOMAIN_BINARY : spin ? ANSATZ_DOMAIN_SPIN : ANSATZ_DOMAIN_REAL;
        const bool is_binary = choice == "binary";
        if (is_binary ? binary : spin)
            return is_binary ? ANSATZ_DOMAIN_BINARY : ANSATZ_DOMAIN_SPIN;
        const int64_t i = is_binary ? first_not_binary : first_not_spin;
        const int64_t row = kept[static_cast<size_t>(i / row_size_)], column = i % row_size_;
        const size_t at = byte_of(samples, row, column);
        throw ansatz::InputError(samples.path + ": byte " + std::to_string(at) + ": row " +
                                 std::to_string(row) + ", value " + std::to_string(column) + " is " +
                                 number(samples.value(row * row_size_ + column)) + ", but domain: " + choice +
                                 " takes only " + (is_binary ? "0 and 1" : "-1 and +1"));
    }

    std::string name_;
    std::vector<int64_t> shape_; // one sample's
    int64_t row_size_ = 0;
    int64_t count_ = 0;
    std::vector<float> values_;
    std::vector<float> labels_;
    int32_t domain_ = ANSATZ_DOMAIN_BINARY;
    bool is_image_ = false;
};

} // namespace

ANSATZ_PLUGIN("npy", "0.1.0", "MIT",
              ansatz::dataset<Npy>("npy",
                                   "NumPy .npy arrays (versions 1.0-3.0; float32, float64, uint8, bool), "
                                   "rows selectable by the beta they were generated at"))

// A dataset of IDX files (MNIST, Fashion-MNIST): unsigned-byte samples, optionally with labels.
// Pixels stay bytes in memory and become floats in [0, 1] (byte / 255) as they are read, optionally
// binarised by a threshold or by sampling a Bernoulli variable per read, or mapped to another interval
// (`range`) and padded (`pad`), as Foster's deep EBM reads Fashion-MNIST: [-1, 1], 32 x 32.
#include "idx_file.hpp"

#include <ansatz/plugin.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace
{

class Idx final : public ansatz::Dataset
{
public:
    static void describe(ansatz::Schema& s)
    {
        s.path("images", "IDX file of the samples (unsigned bytes, plain or gzip), first dimension the count")
            .required()
            .must_exist();
        s.path("labels", "IDX file of one unsigned-byte label per sample (rank 1)").optional().must_exist();
        s.real("binarize", "threshold: a pixel becomes 1 when byte / 255 > binarize, else 0")
            .optional()
            .min(0)
            .max(1);
        s.boolean("binarize_sampling", "draw each pixel ~ Bernoulli(byte / 255) at every read")
            .default_value(false);
        s.integer("limit", "use only the first `limit` samples; 0 = all").default_value(0).min(0);
        s.reals(
             "range",
             "[low, high]: a byte b reads as low + (high - low) b / 255 (absent: [0, 1]); excludes binarize "
             "and binarize_sampling")
            .optional()
            .length(2, 2);
        s.integer("pad", "images: this many pixels added on every side, with the value of byte 0")
            .default_value(0)
            .min(0)
            .max(4096);
        s.strings(
             "label_names",
             "names of the label values 0, 1, ... for legends (absent: Fashion-MNIST's ten names when the "
             "labels file's path says fashion-mnist, else none)")
            .optional()
            .length(1);
    }

    Idx(const ansatz::Config& c, const ansatz::Host&)
        : name_(c.instance_name()), sampling_(c.boolean("binarize_sampling"))
    {
        if (sampling_ && c.has("binarize"))
            throw ansatz::InputError(
                "keys binarize and binarize_sampling exclude each other; give one of them");
        if (c.has("range") && (sampling_ || c.has("binarize")))
            throw ansatz::InputError("key range maps grey levels to an interval, but key " +
                                     std::string(sampling_ ? "binarize_sampling" : "binarize") +
                                     " makes them 0 or 1; give one of them");
        images_ = ansatz_idx::load_idx(c.string("images"));
        pad_ = c.integer("pad");
        if (pad_ > 0 && images_.dims.size() != 3)
            throw ansatz::InputError(images_.path +
                                     ": key pad adds pixels around images, but this file holds "
                                     "samples of rank " +
                                     std::to_string(images_.dims.size() - 1) + ", not images {H, W}");
        const int64_t total = images_.dims[0];
        count_ = total;
        if (const int64_t limit = c.integer("limit"); limit > 0 && limit < total)
            count_ = limit;
        file_size_ = 1;
        for (size_t i = 1; i < images_.dims.size(); ++i)
            file_size_ *= images_.dims[i];
        sample_size_ = pad_ > 0 ? (images_.dims[1] + 2 * pad_) * (images_.dims[2] + 2 * pad_) : file_size_;

        if (c.has("labels"))
        {
            labels_ = ansatz_idx::load_idx(c.string("labels"));
            has_labels_ = true;
            if (labels_.dims.size() != 1)
                throw ansatz::InputError(
                    labels_.path +
                    ": a labels file has rank 1 (one byte per sample), but this one has rank " +
                    std::to_string(labels_.dims.size()));
            if (labels_.dims[0] != total)
                throw ansatz::InputError(labels_.path + ": holds " + std::to_string(labels_.dims[0]) +
                                         " labels, but " + images_.path + " holds " + std::to_string(total) +
                                         " samples");
        }

        label_names_ = names(c);

        // byte -> float, once: intensity, the threshold's 0/1, or the range's value.
        threshold_ = c.has("binarize");
        ranged_ = c.has("range");
        const double level = threshold_ ? c.real("binarize") : 0.0;
        double low = 0, high = 1;
        if (ranged_)
        {
            const std::vector<double> r = c.reals("range");
            low = r[0], high = r[1];
            if (!(std::isfinite(low) && std::isfinite(high) && low < high))
                throw ansatz::InputError("key range is [" + number(low) + ", " + number(high) +
                                         "], which is not an interval [low, high] of finite numbers with "
                                         "low < high");
        }
        for (int value = 0; value < 256; ++value)
        {
            const float intensity = static_cast<float>(value) / 255.0f;
            table_[static_cast<size_t>(value)] =
                threshold_ ? (static_cast<double>(value) / 255.0 > level ? 1.0f : 0.0f)
                : ranged_  ? static_cast<float>(low + (high - low) * (static_cast<double>(value) / 255.0))
                           : intensity;
        }
        // The table is a step in the byte: 1 from first_on on.
        while (first_on_ < 256 && table_[static_cast<size_t>(first_on_)] == 0.0f)
            ++first_on_;
    }

    ansatz_dataset_info info() const override
    {
        ansatz_dataset_info out{};
        out.struct_size = sizeof out;
        out.sample_rank = static_cast<int32_t>(images_.dims.size() - 1);
        for (size_t i = 1; i < images_.dims.size(); ++i)
            out.sample_shape[i - 1] = images_.dims[i] + 2 * pad_;
        out.count = count_;
        out.has_labels = has_labels_ ? 1 : 0;
        out.is_image = images_.dims.size() == 3 ? 1 : 0;
        out.label_names = label_names_.empty() ? nullptr : label_names_.c_str();
        return out;
    }

    void read(const int64_t* indices, int64_t n, ansatz_tensor& out, float* labels, ansatz::Rng& rng) override
    {
        ansatz::require_matrix(out, n, sample_size_, "idx read: out");
        if (labels && !has_labels_)
            throw ansatz::Error("dataset '" + name_ + "' has no labels (its key labels is not set)");
        for (int64_t i = 0; i < n; ++i)
            if (indices[i] < 0 || indices[i] >= count_)
                throw ansatz::Error("dataset '" + name_ + "': index " + std::to_string(indices[i]) +
                                    " at position " + std::to_string(i) + " is outside [0, " +
                                    std::to_string(count_) + ")");

        const uint8_t* pixels = images_.data();
        const int64_t size = file_size_;
        const int first_on = first_on_;
        // With pad: each row is read into scratch, then copied into the middle of the padded image.
        if (pad_ > 0)
            padded_.resize(static_cast<size_t>(file_size_));
        // The rows are scattered over the whole file (a shuffled epoch): each one would miss every cache
        // and stall the loop, so the row 16 places ahead is fetched while this one converts
        // (measured on the PCD-1 bench's epoch: its reads took 0.056-0.061 s without, 0.049-0.053 s with).
        // At most the first 4 KiB of a row: a larger sample's rest streams in behind its start.
        constexpr int64_t ahead = 16;
        const int64_t fetched = std::min<int64_t>(size, 4096);
        const auto fetch = [&](int64_t row) {
            const uint8_t* p = pixels + indices[row] * file_size_;
            for (int64_t b = 0; b < fetched; b += 64)
                __builtin_prefetch(p + b);
            if (fetched > 0)
                __builtin_prefetch(p + fetched - 1); // the last line, when the row does not start on one
        };
        for (int64_t i = 0; i < std::min(n, ahead); ++i)
            fetch(i);
        for (int64_t i = 0; i < n; ++i)
        {
            if (i + ahead < n)
                fetch(i + ahead);
            const uint8_t* from = pixels + indices[i] * file_size_;
            float* to = pad_ > 0 ? padded_.data() : ansatz::f32(out) + i * sample_size_;
            // The table's values computed in place (a loop the compiler vectorises; a table lookup per
            // byte does not): the same floats.
            if (sampling_)
                for (int64_t j = 0; j < size; ++j)
                    to[j] = rng.uniform() < table_[from[j]] ? 1.0f : 0.0f;
            else if (threshold_)
                for (int64_t j = 0; j < size; ++j)
                    to[j] = from[j] >= first_on ? 1.0f : 0.0f;
            else if (ranged_)
                for (int64_t j = 0; j < size; ++j)
                    to[j] = table_[from[j]];
            else
                for (int64_t j = 0; j < size; ++j)
                    to[j] = static_cast<float>(from[j]) / 255.0f;
            if (pad_ > 0)
                place(padded_.data(), ansatz::f32(out) + i * sample_size_);
        }
        if (labels)
            for (int64_t i = 0; i < n; ++i)
                labels[i] = static_cast<float>(labels_.data()[indices[i]]);
    }

private:
    // An image {H, W} into the middle of its padded copy {H + 2 pad, W + 2 pad}, the border the value of
    // byte 0 (for Foster's deep EBM: 28 x 28 in [-1, 1] to 32 x 32, padded with -1).
    void place(const float* image, float* padded) const
    {
        const int64_t h = images_.dims[1], w = images_.dims[2], wide = w + 2 * pad_;
        std::fill(padded, padded + sample_size_, table_[0]);
        for (int64_t y = 0; y < h; ++y)
            std::copy_n(image + y * w, w, padded + (y + pad_) * wide + pad_);
    }

    static std::string number(double x)
    {
        char text[32];
        std::snprintf(text, sizeof text, "%g", x);
        return text;
    }

    // The names of the label values, '|'-separated (abi.h 2.2): the key's, or Fashion-MNIST's when the
    // labels file's path says so (its folder or name has "fashion-mnist" or "fashion_mnist", any case).
    std::string names(const ansatz::Config& c) const
    {
        if (c.has("label_names"))
        {
            if (!has_labels_)
                throw ansatz::InputError(
                    "key label_names names the label values, but the dataset has no labels "
                    "(give the labels file in key labels)");
            std::string joined;
            for (const std::string& n : c.strings("label_names"))
            {
                if (n.find('|') != std::string::npos)
                    throw ansatz::InputError("key label_names: the name '" + n +
                                             "' has a '|', which separates names");
                joined += (joined.empty() ? "" : "|") + n;
            }
            return joined;
        }
        std::string path = has_labels_ ? labels_.path : std::string();
        for (char& ch : path)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (path.find("fashion-mnist") != std::string::npos ||
            path.find("fashion_mnist") != std::string::npos)
            return "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot";
        return "";
    }

    std::string name_;
    std::string label_names_;
    bool sampling_;
    ansatz_idx::IdxFile images_;
    ansatz_idx::IdxFile labels_;
    bool has_labels_ = false;
    int64_t count_ = 0;
    int64_t sample_size_ = 1; // values of a sample as read (padded)
    int64_t file_size_ = 1;   // values of a sample in the file
    int64_t pad_ = 0;
    bool ranged_ = false;
    std::vector<float> padded_; // read's scratch for one unpadded row
    std::array<float, 256> table_{};
    bool threshold_ = false;
    int first_on_ = 0; // with binarize: the smallest byte that reads as 1 (256: none)
};

} // namespace

ANSATZ_PLUGIN("idx", "0.1.0", "MIT",
              ansatz::dataset<Idx>(
                  "idx", "MNIST-format IDX files (unsigned bytes, plain or gzip) with optional labels"))

// The bars-and-stripes dataset (MacKay 2003): n x n binary images in which every row is constant
// (stripes) or every column is constant (bars); 2^(n+1) - 2 distinct patterns. A dataset plugin built
// out of tree against the installed SDK, to prove that a plugin needs nothing but the SDK.
#include <ansatz/plugin.hpp>

#include <algorithm>
#include <vector>

namespace
{

class BarsAndStripes final : public ansatz::Dataset
{
public:
    static void describe(ansatz::Schema& s)
    {
        s.integer("size", "side n of the n x n images").default_value(3).min(2).max(5);
        s.integer("repeat", "copies of the pattern list in the dataset").default_value(10).min(1);
    }

    BarsAndStripes(const ansatz::Config& c, const ansatz::Host&)
        : n_(c.integer("size")), repeat_(c.integer("repeat"))
    {
        const int64_t d = n_ * n_;
        for (int64_t bits = 0; bits < (int64_t{ 1 } << n_); ++bits)
            for (int orientation = 0; orientation < 2; ++orientation)
            {
                std::vector<float> image(static_cast<size_t>(d));
                for (int64_t y = 0; y < n_; ++y)
                    for (int64_t x = 0; x < n_; ++x)
                        image[static_cast<size_t>(y * n_ + x)] =
                            static_cast<float>((bits >> (orientation ? x : y)) & 1);
                if (std::find(patterns_.begin(), patterns_.end(), image) == patterns_.end())
                    patterns_.push_back(image);
            }
    }

    ansatz_dataset_info info() const override
    {
        ansatz_dataset_info info{};
        info.sample_rank = 2;
        info.sample_shape[0] = n_;
        info.sample_shape[1] = n_;
        info.count = static_cast<int64_t>(patterns_.size()) * repeat_;
        info.is_image = 1;
        return info;
    }

    void read(const int64_t* indices, int64_t n, ansatz_tensor& out, float* labels, ansatz::Rng&) override
    {
        const int64_t count = static_cast<int64_t>(patterns_.size()) * repeat_;
        ansatz::require_matrix(out, n, n_ * n_, "bars_and_stripes batch");
        for (int64_t i = 0; i < n; ++i)
        {
            if (indices[i] < 0 || indices[i] >= count)
                throw ansatz::Error("bars_and_stripes: index " + std::to_string(indices[i]) +
                                    " out of range");
            const std::vector<float>& p = patterns_[static_cast<size_t>(indices[i]) % patterns_.size()];
            std::copy(p.begin(), p.end(), ansatz::f32(out) + i * n_ * n_);
            if (labels)
                labels[i] = static_cast<float>(static_cast<size_t>(indices[i]) % patterns_.size());
        }
    }

private:
    int64_t n_, repeat_;
    std::vector<std::vector<float>> patterns_;
};

} // namespace

ANSATZ_PLUGIN("bars_and_stripes", "0.1.0", "MIT",
              ansatz::dataset<BarsAndStripes>("bars_and_stripes", "n x n bars-and-stripes images"))

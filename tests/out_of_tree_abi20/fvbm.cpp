// A fully visible Boltzmann machine on binary units v in {0, 1}^D, built out of tree against the frozen
// ABI 2.0 headers: a model of the energy kind only (free_energy and energy_delta, no conditionals, no
// local-move session) that declares neither its shape nor its domain (sample_info is the SDK's default:
// the shape comes from the data, the domain is binary).
//     E(v) = -sum_{i<j} J_ij v_i v_j - sum_i h_i v_i,   p(v) = exp(-E(v)) / Z,   F = E
// J_ij from `couplings:` (the upper triangle row by row: J_01, J_02, ..., J_12, ...), h_i from `fields:`.
#include <ansatz/plugin.hpp>

static_assert(ANSATZ_ABI_MAJOR == 2 && ANSATZ_ABI_MINOR == 0, "built against the frozen ABI 2.0 headers");

#include <string>
#include <vector>

namespace
{

class Fvbm final : public ansatz::Model
{
public:
    static void describe(ansatz::Schema& s)
    {
        s.reals("couplings", "J_ij for i < j, row by row: D(D-1)/2 values").required();
        s.reals("fields", "h_i: D values").required();
    }

    Fvbm(const ansatz::Config& c, const ansatz::Host&)
    {
        for (double x : c.reals("couplings"))
            j_.push_back(static_cast<float>(x));
        for (double x : c.reals("fields"))
            h_.push_back(static_cast<float>(x));
        d_ = static_cast<int64_t>(h_.size());
        if (static_cast<int64_t>(j_.size()) != d_ * (d_ - 1) / 2)
            throw ansatz::InputError("fvbm: couplings has " + std::to_string(j_.size()) + " values; " +
                                     std::to_string(d_) + " fields need " +
                                     std::to_string(d_ * (d_ - 1) / 2));
    }

    void setup(const std::vector<int64_t>& shape, ansatz::Rng&) override
    {
        int64_t d = 1;
        for (int64_t e : shape)
            d *= e;
        if (d != d_)
            throw ansatz::InputError("fvbm: the data's samples have " + std::to_string(d) +
                                     " values, but it has " + std::to_string(d_) + " fields");
    }

    std::vector<ansatz_named_tensor> parameters() override
    {
        return { { "couplings", ansatz::make_view(j_.data(), { static_cast<int64_t>(j_.size()) }) },
                 { "fields", ansatz::make_view(h_.data(), { d_ }) } };
    }

    void random_state(ansatz_tensor& out, ansatz::Streams rngs) override
    {
        float* o = ansatz::f32(out);
        for (int64_t r = 0; r < out.shape[0]; ++r)
            for (int64_t i = 0; i < d_; ++i)
                o[r * d_ + i] = rngs[static_cast<size_t>(r)].uniform() < 0.5f ? 1.0f : 0.0f;
    }

    void free_energy(const ansatz_tensor& v, ansatz_tensor& out)
    {
        for (int64_t r = 0; r < v.shape[0]; ++r)
            ansatz::f32(out)[r] = static_cast<float>(energy(ansatz::f32(v) + r * d_));
    }

    void energy_delta(const ansatz_tensor& v, const int64_t* sites, const float* values, ansatz_tensor& out)
    {
        for (int64_t r = 0; r < v.shape[0]; ++r)
        {
            const int64_t i = sites[r];
            if (i < 0 || i >= d_ || (values[r] != 0.0f && values[r] != 1.0f))
                throw ansatz::Error("fvbm energy_delta: site " + std::to_string(i) + " or value " +
                                    std::to_string(values[r]) + " of chain " + std::to_string(r) +
                                    " is not a unit and a binary value");
            const float* x = ansatz::f32(v) + r * d_;
            double local = h_[static_cast<size_t>(i)];
            for (int64_t k = 0; k < d_; ++k)
                if (k != i)
                    local += coupling(i, k) * x[k];
            ansatz::f32(out)[r] = static_cast<float>(-(static_cast<double>(values[r]) - x[i]) * local);
        }
    }

private:
    double coupling(int64_t a, int64_t b) const
    {
        if (a > b)
            std::swap(a, b);
        return j_[static_cast<size_t>(a * d_ - a * (a + 1) / 2 + (b - a - 1))];
    }
    double energy(const float* x) const
    {
        double e = 0;
        for (int64_t a = 0; a < d_; ++a)
        {
            e -= h_[static_cast<size_t>(a)] * static_cast<double>(x[a]);
            for (int64_t b = a + 1; b < d_; ++b)
                e -= coupling(a, b) * x[a] * x[b];
        }
        return e;
    }

    int64_t d_ = 0;
    std::vector<float> j_, h_;
};

} // namespace

ANSATZ_PLUGIN("abi20_fvbm", "2.0.0", "MIT",
              ansatz::model<Fvbm>("fvbm20",
                                  "a fully visible Boltzmann machine on binary units (frozen ABI 2.0)"))

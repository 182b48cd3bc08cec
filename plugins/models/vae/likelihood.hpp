// The vae's decoder distribution p(x | h) given the decoder's outputs z(h), one row at a time:
//   bernoulli  log p(x|h) = sum_d x_d z_d - softplus(z_d)                  (z: logits; x in [0, 1])
//              dlog p/dz_d = x_d - sigmoid(z_d),           E[x|h] = sigmoid(z)
//   gaussian   log p(x|h) = sum_d -1/2 log 2 pi - s_d - (x_d - z_d)^2 / (2 e^{2 s_d})   (z: means)
//              dlog p/dz_d = (x_d - z_d) e^{-2 s_d},        dlog p/ds_d = -1 + (x_d - z_d)^2 e^{-2 s_d}
//              E[x|h] = z;  s = log sigma: fixed (key sigma), or one learned parameter per value
// Rows are independent; the sums over a row are in double.
#pragma once

#include <ansatz/plugin.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace vae
{

// The keys of the decoder distribution (decoder, sigma, learn_sigma).
void describe_likelihood(ansatz::Schema& s);

class Likelihood
{
public:
    // throws: ansatz::InputError for sigma or learn_sigma with decoder: bernoulli.
    explicit Likelihood(const ansatz::Config& c);

    bool bernoulli() const { return bernoulli_; }
    bool learns_sigma() const { return learn_sigma_; }
    // Sizes the per-value log sigma for d values, each log(sigma).
    void setup(int64_t d);
    // decoder.log_sigma {D} when it is learned; else none.
    std::vector<ansatz_named_tensor> parameters();

    // throws: ansatz::InputError when a bernoulli decoder gets a value outside [0, 1] (or NaN).
    void check_data(const float* x, int64_t count) const;
    // out[r] = log p(x_r | z_r) for rows [r0, r1) of d values; scratch: d floats.
    void log_likelihood(const float* z, const float* x, int64_t r0, int64_t r1, float* out,
                        float* scratch) const;
    // dz_r = weights[r] * dlog p(x_r | z_r)/dz_r for rows [r0, r1), and when out is not null
    // out[r] = log p(x_r | z_r); when d_log_sigma is not null (learned sigma), d_log_sigma[d] +=
    // sum_r weights[r] dlog p/ds_d, in double.
    void backward(const float* z, const float* x, const float* weights, int64_t r0, int64_t r1, float* dz,
                  float* out, double* d_log_sigma, float* scratch) const;
    // x_mean = E[x | z] for `count` values (whole rows).
    void mean(const float* z, float* x_mean, int64_t count) const;

private:
    bool bernoulli_, learn_sigma_;
    double sigma_;
    int64_t d_ = 0;
    std::vector<float> log_sigma_;
};

} // namespace vae

// Persistent contrastive divergence (Tieleman 2008) reaches a better likelihood than CD-1 on 3x3 bars
// and stripes after the same number of updates. The exact negative log-likelihood comes from
// enumerating all 2^9 visible states with the trained parameters (read from the checkpoint).
//
// Measured while choosing the settings (hidden 12, learning rate 0.02, batch 14, 600 epochs = 12000
// updates, PCD with 100 chains; seeds 11, 12, 13): CD-1 3.29, 3.31, 3.29 nats; PCD 2.93, 3.03, 2.95;
// the data's entropy, the floor, is log 14 = 2.64. At learning rate 0.1 with 14 chains PCD was worse
// (its chains cannot follow the model), so the test pins the settings; its threshold is a 0.1-nat
// margin, a third of the smallest gap measured.
#include "ansatz/tensor.hpp"
#include "outputs/npy.hpp"
#include "support/cli.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <set>
#include <vector>

namespace fs = std::filesystem;
using ansatz::test::run_ansatz;
using ansatz::test::write_text;

namespace
{

// The 14 patterns of 3x3 bars and stripes (rows or columns all on or off), 20 copies each, as IDX.
std::vector<std::vector<int>> patterns()
{
    std::set<std::vector<int>> unique;
    for (int bits = 0; bits < 8; ++bits)
    {
        std::vector<int> rows(9), cols(9);
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j)
            {
                rows[static_cast<size_t>(3 * i + j)] = (bits >> i) & 1;
                cols[static_cast<size_t>(3 * i + j)] = (bits >> j) & 1;
            }
        unique.insert(rows);
        unique.insert(cols);
    }
    return { unique.begin(), unique.end() };
}

std::string idx_file(const std::vector<std::vector<int>>& pats, int copies)
{
    const uint32_t count = static_cast<uint32_t>(pats.size() * static_cast<size_t>(copies));
    std::string s("\x00\x00\x08\x03", 4);
    for (uint32_t v : { count, 3u, 3u })
        for (int shift = 24; shift >= 0; shift -= 8)
            s += static_cast<char>((v >> shift) & 0xff);
    for (int c = 0; c < copies; ++c)
        for (const auto& p : pats)
            for (int x : p)
                s += static_cast<char>(x ? 255 : 0);
    return s;
}

std::vector<double> load(const fs::path& file)
{
    ansatz::engine::NpyArray a = ansatz::engine::read_npy(file);
    std::vector<float> f(a.bytes.size() / sizeof(float));
    std::memcpy(f.data(), a.bytes.data(), a.bytes.size());
    return { f.begin(), f.end() };
}

double free_energy(const std::vector<int>& v, const std::vector<double>& w, const std::vector<double>& a,
                   const std::vector<double>& b)
{
    const size_t hidden = b.size();
    double f = 0;
    for (size_t i = 0; i < 9; ++i)
        f -= a[i] * v[i];
    for (size_t j = 0; j < hidden; ++j)
    {
        double x = b[j];
        for (size_t i = 0; i < 9; ++i)
            x += v[i] * w[i * hidden + j];
        f -= std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
    }
    return f;
}

// Trains with the given loss settings and returns the exact mean negative log-likelihood of the data.
double trained_nll(const std::string& name, const std::string& loss)
{
    const fs::path dir = ansatz::test::fresh_folder("bars_and_stripes/" + name);
    write_text(dir / "bas.idx", idx_file(patterns(), 20));
    write_text(dir / "pipeline.yaml",
               "pipeline: bas\nseed: 11\nthreads: 1\ncomponents:\n"
               "  data:  {plugin: idx, images: bas.idx, binarize: 0.5}\n"
               "  rbm:   {plugin: rbm, hidden: 12, init_std: 0.1}\n"
               "  gibbs: {plugin: gibbs, steps: 1}\n"
               "  loss:  " +
                   loss +
                   "\n"
                   "  sgd:   {plugin: sgd, learning_rate: 0.02}\n"
                   "stages:\n  - train: {model: rbm, data: data, loss: loss, sampler: gibbs, "
                   "optimizer: sgd, epochs: 600, batch_size: 14, checkpoint_every: 600}\n");
    const auto r = run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const fs::path checkpoint =
        fs::directory_iterator(dir / "runs" / "bas")->path() / "checkpoints" / "stage1-epoch600";
    const auto w = load(checkpoint / "rbm.weights.npy");
    const auto a = load(checkpoint / "rbm.visible_bias.npy");
    const auto b = load(checkpoint / "rbm.hidden_bias.npy");
    std::vector<double> minus_f;
    for (int s = 0; s < 512; ++s)
    {
        std::vector<int> v(9);
        for (int i = 0; i < 9; ++i)
            v[static_cast<size_t>(i)] = (s >> i) & 1;
        minus_f.push_back(-free_energy(v, w, a, b));
    }
    const double top = *std::max_element(minus_f.begin(), minus_f.end());
    double sum = 0;
    for (double x : minus_f)
        sum += std::exp(x - top);
    const double log_z = top + std::log(sum);
    double nll = 0;
    const auto pats = patterns();
    for (const auto& p : pats) // every pattern appears equally often
        nll += free_energy(p, w, a, b) + log_z;
    return nll / static_cast<double>(pats.size());
}

} // namespace

TEST_CASE("PCD reaches a lower exact NLL than CD-1 on 3x3 bars and stripes after the same updates",
          "[cd][pcd]")
{
    const double cd = trained_nll("cd1", "{plugin: contrastive_divergence}");
    const double pcd = trained_nll("pcd", "{plugin: contrastive_divergence, persistent: true, chains: 100}");
    INFO("CD-1 " << cd << " nats, PCD " << pcd << " nats, floor log 14 = " << std::log(14.0));
    CHECK(pcd >= std::log(14.0) - 1e-9); // no model beats the data's own entropy
    CHECK(pcd < cd - 0.1);
}

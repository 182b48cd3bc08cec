// models/ising/transfer_matrix.hpp -- the exact 1D Ising chain by its transfer matrix, for any length.
// Header only; needs xtensor-blas (eigh, LAPACK's dsyevd through OpenBLAS): link Ansatz::numerics.
// Used by the tests and the ising_exact tool, never by the plugin.
//
// With T_ss' = exp(beta J s s' + beta h (s + s') / 2) (s, s' = +-1), symmetric, eigenpairs (lambda_k, u_k):
//     periodic:  Z = tr T^L                 = sum_k lambda_k^L
//     open:      Z = w^T T^(L-1) w           = sum_k lambda_k^(L-1) (u_k . w)^2,   w_s = exp(beta h s / 2)
// Derivatives of log Z give the moments: <E> = -d log Z / d beta, Var E = d^2 log Z / d beta^2,
// <M> = (1 / beta) d log Z / dh, Var M = (1 / beta^2) d^2 log Z / dh^2. The derivatives of f(T) = T^n
// are exact from the eigenpairs (Daleckii-Krein): in the eigenbasis, with A = U^T T' U, B = U^T T'' U,
//     (f(T))'  = U [f[l_i, l_j] A_ij] U^T
//     (f(T))'' = U [f[l_i, l_j] B_ij + 2 sum_m f[l_i, l_m, l_j] A_im A_mj] U^T
// where f[.,.] and f[.,.,.] are divided differences of f(x) = x^n (confluent ones are derivatives). The
// matrix is scaled by its largest eigenvalue first, so nothing overflows at any length.
//
// |m| is not a derivative: its moments come from the same transfer matrix resolved by magnetisation, the
// weights W_k(s, M) of the first k sites ending in spin s with magnetisation M, O(L^2) in all.
#pragma once

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xtensor.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace ansatz::ising
{

// Thermal averages of a chain of L spins; per site where the name says so, m = M / L.
struct ChainObservables
{
    double log_z = 0;
    double energy = 0;                // <E> / L
    double specific_heat = 0;         // beta^2 Var(E) / L
    double magnetisation = 0;         // <m>
    double signed_susceptibility = 0; // beta L Var(m)
    // From the magnetisation-resolved transfer matrix:
    double abs_magnetisation = 0; // <|m|>
    double m2 = 0, m4 = 0;
    double susceptibility = 0; // beta L (<m^2> - <|m|>^2)
    double binder = 0;         // 1 - <m^4> / (3 <m^2>^2)
    double log_z_resolved = 0; // log Z again, from the resolved matrix (a check)
};

// The infinite chain (L -> infinity, from the largest eigenvalue alone), per site.
struct ChainLimit
{
    double free_energy = 0; // -log(lambda_max) / beta
    double energy = 0;
    double specific_heat = 0;
    double magnetisation = 0;
    double susceptibility = 0; // (1 / beta) d^2 log lambda_max / dh^2
};

namespace detail
{

struct Eigen2
{
    std::array<double, 2> lambda;           // increasing
    std::array<std::array<double, 2>, 2> u; // u[k] = eigenvector k, components (s = -1, s = +1)
};

inline Eigen2 eigh2(const std::array<std::array<double, 2>, 2>& t)
{
    xt::xtensor<double, 2> m = { { t[0][0], t[0][1] }, { t[1][0], t[1][1] } };
    const auto [values, vectors] = xt::linalg::eigh(m);
    Eigen2 e;
    for (int k = 0; k < 2; ++k)
    {
        e.lambda[static_cast<size_t>(k)] = values(k);
        for (int s = 0; s < 2; ++s)
            e.u[static_cast<size_t>(k)][static_cast<size_t>(s)] = vectors(s, k);
    }
    return e;
}

// Divided differences of f(x) = (x / c)^n.
struct Power
{
    double n, c;
    double f(double x) const { return std::pow(x / c, n); }
    double d1(double x) const { return n == 0 ? 0 : n / c * std::pow(x / c, n - 1); }
    double d2(double x) const { return n < 2 ? 0 : n * (n - 1) / (c * c) * std::pow(x / c, n - 2); }
    double dd(double a, double b) const { return a == b ? d1(a) : (f(a) - f(b)) / (a - b); }
    double dd(double a, double b, double d) const
    {
        // Sort so that equal arguments are adjacent, then the confluent forms.
        std::array<double, 3> x = { a, b, d };
        std::sort(x.begin(), x.end());
        if (x[0] == x[2])
            return d2(x[0]) / 2;
        if (x[0] == x[1])
            return (d1(x[0]) - dd(x[0], x[2])) / (x[0] - x[2]);
        if (x[1] == x[2])
            return (dd(x[0], x[2]) - d1(x[2])) / (x[0] - x[2]);
        return (dd(x[0], x[1]) - dd(x[1], x[2])) / (x[0] - x[2]);
    }
};

using Mat = std::array<std::array<double, 2>, 2>;
using Vec = std::array<double, 2>;

// log Z and its first two derivatives along one direction x, given T(x), T', T'' and (open chains)
// w(x), w', w''.
struct Jet
{
    double log_z, d1, d2; // log Z, d log Z / dx, d^2 log Z / dx^2
};

inline Jet chain_jet(int64_t length, bool periodic, const Mat& t, const Mat& t1, const Mat& t2, const Vec& w,
                     const Vec& w1, const Vec& w2)
{
    const Eigen2 e = eigh2(t);
    const double c = std::max(std::abs(e.lambda[0]), std::abs(e.lambda[1]));
    const Power f{ static_cast<double>(periodic ? length : length - 1), c };
    // In the eigenbasis: A = U^T T' U, B = U^T T'' U, and the vectors.
    Mat a{}, b{};
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
            for (int s = 0; s < 2; ++s)
                for (int r = 0; r < 2; ++r)
                {
                    a[i][j] += e.u[i][s] * t1[s][r] * e.u[j][r];
                    b[i][j] += e.u[i][s] * t2[s][r] * e.u[j][r];
                }
    // F0 = f(T), F1 = f(T)', F2 = f(T)'' in the eigenbasis.
    Mat f0{}, f1{}, f2{};
    for (int i = 0; i < 2; ++i)
    {
        f0[i][i] = f.f(e.lambda[i]);
        for (int j = 0; j < 2; ++j)
        {
            f1[i][j] = f.dd(e.lambda[i], e.lambda[j]) * a[i][j];
            double second = 0;
            for (int m = 0; m < 2; ++m)
                second += f.dd(e.lambda[i], e.lambda[m], e.lambda[j]) * a[i][m] * a[m][j];
            f2[i][j] = f.dd(e.lambda[i], e.lambda[j]) * b[i][j] + 2 * second;
        }
    }
    double z = 0, z1 = 0, z2 = 0; // of the scaled Z = Z / c^n
    if (periodic)
        for (int i = 0; i < 2; ++i)
            z += f0[i][i], z1 += f1[i][i], z2 += f2[i][i];
    else
    {
        Vec o{}, o1{}, o2{};
        for (int k = 0; k < 2; ++k)
            for (int s = 0; s < 2; ++s)
                o[k] += e.u[k][s] * w[s], o1[k] += e.u[k][s] * w1[s], o2[k] += e.u[k][s] * w2[s];
        const auto form = [](const Vec& x, const Mat& m, const Vec& y) {
            double sum = 0;
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 2; ++j)
                    sum += x[i] * m[i][j] * y[j];
            return sum;
        };
        // Z = w f w;  Z' = 2 w' f w + w f' w;  Z'' = 2 w'' f w + 2 w' f w' + 4 w' f' w + w f'' w.
        z = form(o, f0, o);
        z1 = 2 * form(o1, f0, o) + form(o, f1, o);
        z2 = 2 * form(o2, f0, o) + 2 * form(o1, f0, o1) + 4 * form(o1, f1, o) + form(o, f2, o);
    }
    return { f.n * std::log(c) + std::log(z), z1 / z, z2 / z - (z1 / z) * (z1 / z) };
}

// T and its derivatives along beta (x = beta) or along h (x = h); w likewise.
struct Direction
{
    Mat t, t1, t2;
    Vec w, w1, w2;
};

inline Direction direction(double J, double h, double beta, bool along_beta)
{
    Direction d{};
    const double spin[2] = { -1.0, 1.0 };
    for (int i = 0; i < 2; ++i)
    {
        const double s = spin[i];
        for (int j = 0; j < 2; ++j)
        {
            const double r = spin[j];
            const double exponent = J * s * r + h * (s + r) / 2; // times beta
            const double slope = along_beta ? exponent : beta * (s + r) / 2;
            d.t[i][j] = std::exp(beta * exponent);
            d.t1[i][j] = slope * d.t[i][j];
            d.t2[i][j] = slope * slope * d.t[i][j];
        }
        const double slope = along_beta ? h * s / 2 : beta * s / 2;
        d.w[i] = std::exp(beta * h * s / 2);
        d.w1[i] = slope * d.w[i];
        d.w2[i] = slope * slope * d.w[i];
    }
    return d;
}

} // namespace detail

inline ChainObservables transfer_matrix_chain(int64_t length, bool periodic, double J, double h, double beta)
{
    if (length < 2)
        throw std::invalid_argument("ising transfer matrix: a chain needs at least 2 spins");
    const double n = static_cast<double>(length);
    ChainObservables o;
    {
        const detail::Direction d = detail::direction(J, h, beta, true);
        const detail::Jet jet = detail::chain_jet(length, periodic, d.t, d.t1, d.t2, d.w, d.w1, d.w2);
        o.log_z = jet.log_z;
        o.energy = -jet.d1 / n;
        o.specific_heat = beta * beta * jet.d2 / n;
    }
    {
        const detail::Direction d = detail::direction(J, h, beta, false);
        const detail::Jet jet = detail::chain_jet(length, periodic, d.t, d.t1, d.t2, d.w, d.w1, d.w2);
        o.magnetisation = jet.d1 / beta / n;
        o.signed_susceptibility = jet.d2 / beta / n; // beta L Var(m) = Var(M) beta / L
    }

    // The resolved transfer matrix: W(s, M) over the sites so far, rescaled to a maximum of 1 after
    // each site (the scale kept as a log). Periodic chains fix the first spin and close the last bond.
    const int64_t span = 2 * length + 1;                   // M in [-L, L], index M + L
    std::vector<double> p(static_cast<size_t>(span), 0.0); // P(M), unnormalised, summed over the first spin
    std::vector<std::vector<double>> per_first;
    std::vector<double> per_first_scale;
    const int firsts = periodic ? 2 : 1;
    for (int first = 0; first < firsts; ++first)
    {
        // w[s][M + L]
        std::vector<double> w[2] = { std::vector<double>(static_cast<size_t>(span), 0.0),
                                     std::vector<double>(static_cast<size_t>(span), 0.0) };
        double log_scale = 0;
        for (int s = 0; s < 2; ++s)
            if (!periodic || s == first)
                w[s][static_cast<size_t>(length + (s ? 1 : -1))] = std::exp(beta * h * (s ? 1 : -1));
        for (int64_t site = 1; site < length; ++site)
        {
            std::vector<double> next[2] = { std::vector<double>(static_cast<size_t>(span), 0.0),
                                            std::vector<double>(static_cast<size_t>(span), 0.0) };
            double top = 0;
            for (int r = 0; r < 2; ++r)
            {
                const double sr = r ? 1.0 : -1.0;
                for (int s = 0; s < 2; ++s)
                {
                    const double ss = s ? 1.0 : -1.0;
                    const double factor = std::exp(beta * (J * ss * sr + h * sr));
                    for (int64_t m = 0; m < span; ++m)
                    {
                        const int64_t to = m + (r ? 1 : -1);
                        if (w[s][static_cast<size_t>(m)] == 0 || to < 0 || to >= span)
                            continue;
                        next[r][static_cast<size_t>(to)] += factor * w[s][static_cast<size_t>(m)];
                    }
                }
                for (double x : next[r])
                    top = std::max(top, x);
            }
            for (int r = 0; r < 2; ++r)
                for (double& x : next[r])
                    x /= top;
            log_scale += std::log(top);
            w[0].swap(next[0]);
            w[1].swap(next[1]);
        }
        std::vector<double> q(static_cast<size_t>(span), 0.0);
        for (int s = 0; s < 2; ++s)
        {
            const double closing =
                periodic ? std::exp(beta * J * (s ? 1.0 : -1.0) * (first ? 1.0 : -1.0)) : 1.0;
            for (int64_t m = 0; m < span; ++m)
                q[static_cast<size_t>(m)] += closing * w[s][static_cast<size_t>(m)];
        }
        per_first.push_back(q);
        per_first_scale.push_back(log_scale);
    }
    // Combine the first spins' weights on one scale.
    const double shift = *std::max_element(per_first_scale.begin(), per_first_scale.end());
    for (size_t k = 0; k < per_first.size(); ++k)
        for (int64_t m = 0; m < span; ++m)
            p[static_cast<size_t>(m)] +=
                per_first[k][static_cast<size_t>(m)] * std::exp(per_first_scale[k] - shift);
    double z = 0, am = 0, m2 = 0, m4 = 0;
    for (int64_t k = 0; k < span; ++k)
    {
        const double x = p[static_cast<size_t>(k)];
        const double m = static_cast<double>(k - length) / n;
        z += x, am += x * std::abs(m), m2 += x * m * m, m4 += x * m * m * m * m;
    }
    o.log_z_resolved = shift + std::log(z);
    o.abs_magnetisation = am / z;
    o.m2 = m2 / z;
    o.m4 = m4 / z;
    o.susceptibility = beta * n * (o.m2 - o.abs_magnetisation * o.abs_magnetisation);
    o.binder = 1 - o.m4 / (3 * o.m2 * o.m2);
    return o;
}

// The chain's limit per site: log lambda_max and its derivatives (first- and second-order perturbation
// theory of the largest eigenvalue, from the eigenpairs).
inline ChainLimit transfer_matrix_limit(double J, double h, double beta)
{
    ChainLimit out;
    for (int along_beta = 1; along_beta >= 0; --along_beta)
    {
        const detail::Direction d = detail::direction(J, h, beta, along_beta != 0);
        const detail::Eigen2 e = detail::eigh2(d.t);
        const auto form = [&](int i, const detail::Mat& m, int j) {
            double sum = 0;
            for (int s = 0; s < 2; ++s)
                for (int r = 0; r < 2; ++r)
                    sum += e.u[i][s] * m[s][r] * e.u[j][r];
            return sum;
        };
        const double l = e.lambda[1];
        const double l1 = form(1, d.t1, 1);
        const double a01 = form(0, d.t1, 1);
        const double l2 = form(1, d.t2, 1) + 2 * a01 * a01 / (e.lambda[1] - e.lambda[0]);
        const double g1 = l1 / l, g2 = l2 / l - g1 * g1; // derivatives of log lambda_max
        if (along_beta)
        {
            out.free_energy = -std::log(l) / beta;
            out.energy = -g1;
            out.specific_heat = beta * beta * g2;
        }
        else
        {
            out.magnetisation = g1 / beta;
            out.susceptibility = g2 / beta;
        }
    }
    return out;
}

} // namespace ansatz::ising

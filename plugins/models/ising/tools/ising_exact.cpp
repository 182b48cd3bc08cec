// ising_exact: the exact values the ising model's README quotes, as Markdown tables.
//
//     cmake --build build --target ising_exact && build/bin/ising_exact
//
// 1. Small periodic lattices by enumeration (exact.hpp): energy, |m|, C, chi, Binder cumulant.
// 2. The 1D chain by its transfer matrix (transfer_matrix.hpp), finite and infinite.
// 3. Onsager's infinite square lattice: energy per site and spontaneous magnetisation.
#include "exact.hpp"
#include "transfer_matrix.hpp"

#include <cmath>
#include <cstdio>
#include <numbers>

namespace
{

using namespace ansatz::ising;

const double temperatures[] = { 1.5, 2.269, 3.0 };

void enumeration_table(int64_t size)
{
    const DensityOfStates dos(Lattice{ 2, size, true });
    std::printf("\n%lldx%lld periodic lattice, J = 1, h = 0, by enumeration of the %lld states:\n\n",
                static_cast<long long>(size), static_cast<long long>(size),
                static_cast<long long>(int64_t{ 1 } << (size * size)));
    std::printf("| T | energy per site | \\|m\\| per site | C | chi | Binder U | log Z |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    for (double t : temperatures)
    {
        const Observables o = dos.at(1.0, 0.0, 1.0 / t);
        std::printf("| %g | %.6f | %.6f | %.6f | %.6f | %.6f | %.6f |\n", t, o.energy, o.abs_magnetisation,
                    o.specific_heat, o.susceptibility, o.binder, o.log_z);
    }
}

void chain_tables()
{
    std::printf("\nChain of L = 12 spins, J = 1, h = 0.1, by the transfer matrix (|m| from the matrix "
                "resolved by magnetisation):\n\n");
    std::printf("| boundary | T | energy per site | <m> | \\|m\\| per site | C | chi (with \\|m\\|) | "
                "beta L Var(m) |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (bool periodic : { true, false })
        for (double t : { 0.5, 1.0, 2.0 })
        {
            const ChainObservables o = transfer_matrix_chain(12, periodic, 1.0, 0.1, 1.0 / t);
            std::printf("| %s | %g | %.6f | %.6f | %.6f | %.6f | %.6f | %.6f |\n",
                        periodic ? "periodic" : "open", t, o.energy, o.magnetisation, o.abs_magnetisation,
                        o.specific_heat, o.susceptibility, o.signed_susceptibility);
        }
    std::printf("\nThe infinite chain (largest eigenvalue), J = 1, h = 0, beside the closed forms "
                "-tanh(beta), (beta / cosh beta)^2, beta e^(2 beta):\n\n");
    std::printf("| T | energy per site | closed form | C | closed form | chi | closed form |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    for (double t : { 0.5, 1.0, 2.0 })
    {
        const double b = 1.0 / t;
        const ChainLimit l = transfer_matrix_limit(1.0, 0.0, b);
        std::printf("| %g | %.6f | %.6f | %.6f | %.6f | %.6f | %.6f |\n", t, l.energy, -std::tanh(b),
                    l.specific_heat, std::pow(b / std::cosh(b), 2), l.susceptibility, b * std::exp(2 * b));
    }
}

void onsager_table()
{
    const double tc = 2.0 / std::log(1.0 + std::sqrt(2.0));
    std::printf("\nOnsager's infinite square lattice, J = 1, h = 0 (T_c = 2 / ln(1 + sqrt 2) = %.6f):\n\n",
                tc);
    std::printf("| T | energy per site | spontaneous \\|m\\| |\n| --- | --- | --- |\n");
    for (double t : temperatures)
    {
        const double k2 = 2.0 / t; // 2 beta J
        const double modulus = 2 * std::sinh(k2) / (std::cosh(k2) * std::cosh(k2));
        const double tanh2 = std::tanh(k2) * std::tanh(k2);
        const double energy =
            -1.0 / std::tanh(k2) * (1 + 2 / std::numbers::pi * (2 * tanh2 - 1) * std::comp_ellint_1(modulus));
        const double m = t < tc ? std::pow(1 - std::pow(std::sinh(k2), -4), 0.125) : 0.0;
        std::printf("| %g | %.6f | %.6f |\n", t, energy, m);
    }
}

} // namespace

int main()
{
    enumeration_table(3);
    enumeration_table(4);
    chain_tables();
    onsager_table();
    return 0;
}

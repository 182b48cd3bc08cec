// ansatz/lattice.hpp -- a chain or square lattice of sites, row-major, and its nearest-neighbour sums:
// what an Ising model and the evaluators of its observables share (header only, no dependency).
//
//     ansatz::Lattice lattice(2, 8, true);            // an 8 x 8 torus
//     double b = lattice.bond_sum(spins);              // sum over bonds <ij> of s_i s_j
//     double n = lattice.neighbour_sum(spins, site);   // sum of the values bonded to one site
//
// The bonds join every site to its neighbour one step up each axis, wrapping around with periodic
// boundaries and stopping at the edge with open ones: a periodic chain (a ring) has L bonds, an open
// one L - 1, a periodic square (a torus) 2 L^2, an open one 2 L (L - 1). With periodic boundaries and
// L = 2 both neighbours of a site along an axis are one site, and that pair is bonded twice.
#pragma once

#include <cstdint>

namespace ansatz
{

class Lattice
{
public:
    Lattice() = default;
    // requires: dimension 1 or 2, size >= 2, size^dimension fits int64.
    Lattice(int64_t dimension, int64_t size, bool periodic)
        : dimension_(dimension), size_(size), periodic_(periodic), sites_(dimension == 1 ? size : size * size)
    {
    }

    int64_t dimension() const { return dimension_; }
    int64_t size() const { return size_; }
    bool periodic() const { return periodic_; }
    int64_t sites() const { return sites_; }
    // Bonds of the whole lattice (see the top of this file).
    int64_t bonds() const
    {
        const int64_t per_axis = periodic_ ? size_ : size_ - 1; // bonds along one line of one axis
        return dimension_ == 1 ? per_axis : 2 * size_ * per_axis;
    }

    // sum over bonds <ij> of s_i s_j, in double; s has sites() values.
    template <class T>
    double bond_sum(const T* s) const
    {
        double sum = 0;
        for (int64_t i = 0; i < sites_; ++i)
            sum += static_cast<double>(s[i]) * up_sum(s, i);
        return sum;
    }

    // The sum of the values at the sites bonded to site i (a site bonded twice counts twice).
    template <class T>
    double neighbour_sum(const T* s, int64_t i) const
    {
        const int64_t x = i % size_, y = i / size_;
        double sum = up_sum(s, i);
        if (x > 0)
            sum += s[i - 1];
        else if (periodic_)
            sum += s[i + size_ - 1];
        if (dimension_ == 2)
        {
            if (y > 0)
                sum += s[i - size_];
            else if (periodic_)
                sum += s[sites_ - size_ + x];
        }
        return sum;
    }

private:
    // The values one step up each axis from site i.
    template <class T>
    double up_sum(const T* s, int64_t i) const
    {
        const int64_t x = i % size_, y = i / size_;
        double sum = 0;
        if (x + 1 < size_)
            sum += s[i + 1];
        else if (periodic_)
            sum += s[i + 1 - size_];
        if (dimension_ == 2)
        {
            if (y + 1 < size_)
                sum += s[i + size_];
            else if (periodic_)
                sum += s[x];
        }
        return sum;
    }

    int64_t dimension_ = 1;
    int64_t size_ = 2;
    bool periodic_ = true;
    int64_t sites_ = 2;
};

} // namespace ansatz

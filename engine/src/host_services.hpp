// host_services.hpp -- the ansatz_host table the engine lends every component: logging, cancellation,
// the thread budget and the run's random streams (one seed, one stream per name).
#pragma once

#include "ansatz/abi.h"
#include "ansatz/random.hpp"

#include <atomic>
#include <cstdint>
#include <string>

namespace ansatz::engine
{

class HostServices
{
public:
    HostServices(uint64_t seed, int threads);
    HostServices(const HostServices&) = delete;
    HostServices& operator=(const HostServices&) = delete;

    const ansatz_host* table() const { return &table_; }
    uint64_t seed() const { return seed_; }
    int threads() const { return threads_; }
    Rng stream(const std::string& name) const { return Rng::stream(seed_, name); }

    void request_cancel() { cancelled_.store(true); }
    // Also cancelled once *flag is non-zero (the engine's signal flag), so a plugin in the middle of a
    // long call sees a Ctrl-C through ansatz_host.cancelled without waiting for the engine.
    void watch(const std::atomic<int>* flag) { watched_ = flag; }
    bool cancelled() const { return cancelled_.load() || (watched_ && watched_->load() != 0); }

private:
    uint64_t seed_;
    int threads_;
    std::atomic<bool> cancelled_{ false };
    const std::atomic<int>* watched_ = nullptr;
    ansatz_host table_{};
};

// Sets OpenBLAS's thread count: one budget for BLAS and the engine, so they never oversubscribe.
void set_blas_threads(int threads);
int available_cores();

} // namespace ansatz::engine

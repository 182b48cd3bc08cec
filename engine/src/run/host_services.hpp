// host_services.hpp -- the ansatz_host table the engine lends every component: logging, cancellation,
// the thread budget, the run's random streams (one seed, one stream per name), where the run is
// (progress, for schedules) and the machine's memory; and the sink that collects reported metrics.
#pragma once

#include "ansatz/abi.h"
#include "ansatz/random.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

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

    // What host->progress reports; the stages keep it current.
    ansatz_progress& progress() { return progress_; }

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
    ansatz_progress progress_{};
    ansatz_host table_{};
};

// Collects the metrics one call reports (abi.h: the host copies each name).
class MetricsSink
{
public:
    MetricsSink();
    MetricsSink(const MetricsSink&) = delete;
    MetricsSink& operator=(const MetricsSink&) = delete;

    const ansatz_metrics* c() const { return &sink_; }
    // The (name, value) pairs since the last take(), in the order reported.
    std::vector<std::pair<std::string, double>> take() { return std::exchange(items_, {}); }

    // A metric name: 1 to 63 letters, digits, '_' or '.'.
    static bool valid_name(const char* name);

private:
    static int32_t add(void* context, const char* name, double value) noexcept;

    std::vector<std::pair<std::string, double>> items_;
    ansatz_metrics sink_{};
};

// Sets OpenBLAS's thread count: one budget for BLAS and the engine, so they never oversubscribe.
void set_blas_threads(int threads);
int available_cores();
// Bytes of physical memory, 0 if unknown.
int64_t physical_memory();

} // namespace ansatz::engine

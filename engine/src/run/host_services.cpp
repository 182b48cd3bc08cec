#include "run/host_services.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <sched.h>
#include <thread>
#include <unistd.h>

extern "C" void openblas_set_num_threads(int);

namespace ansatz::engine
{

namespace
{

// The host's callbacks are called from C: they never throw, and take NULL arguments in their stride.
void log_message(void*, int32_t level, const char* message) noexcept
{
    static const char* const names[] = { "debug", "info", "warning", "error" };
    const char* name = level >= 0 && level <= 3 ? names[level] : "log";
    if (level >= ANSATZ_LOG_INFO)
        std::fprintf(stderr, "%s: %s\n", name, message ? message : "(null)");
}

int32_t is_cancelled(void* context) noexcept
{
    return static_cast<HostServices*>(context)->cancelled() ? 1 : 0;
}

void make_stream(void* context, const char* name, ansatz_rng* out) noexcept
{
    if (!out)
        return;
    // Rng::stream hashes a string_view: no allocation, nothing to throw.
    *out = Rng::stream(static_cast<HostServices*>(context)->seed(), name ? name : "").state();
}

void report_progress(void* context, ansatz_progress* out) noexcept
{
    if (!out || out->struct_size < sizeof(uint32_t))
        return;
    const ansatz_progress& p = static_cast<HostServices*>(context)->progress();
    // Copy no more than the caller's struct holds (an older 2.x plugin's is smaller).
    const uint32_t size = std::min<uint32_t>(out->struct_size, sizeof(ansatz_progress));
    const uint32_t caller_size = out->struct_size;
    std::memcpy(out, &p, size);
    out->struct_size = caller_size;
}

} // namespace

MetricsSink::MetricsSink()
{
    sink_.context = this;
    sink_.add = add;
}

bool MetricsSink::valid_name(const char* name)
{
    if (!name || !name[0])
        return false;
    size_t n = 0;
    for (; name[n]; ++n)
        if (n >= ANSATZ_METRIC_NAME_SIZE - 1 ||
            !(std::isalnum(static_cast<unsigned char>(name[n])) || name[n] == '_' || name[n] == '.'))
            return false;
    return true;
}

int32_t MetricsSink::add(void* context, const char* name, double value) noexcept
{
    auto* self = static_cast<MetricsSink*>(context);
    if (!valid_name(name) || self->items_.size() >= ANSATZ_MAX_METRICS)
        return -1;
    try
    {
        self->items_.emplace_back(name, value);
        return 0;
    }
    catch (...)
    {
        return -1;
    }
}

HostServices::HostServices(uint64_t seed, int threads) : seed_(seed), threads_(threads)
{
    table_.struct_size = sizeof(ansatz_host);
    table_.threads = threads;
    table_.context = this;
    table_.log = log_message;
    table_.cancelled = is_cancelled;
    table_.stream = make_stream;
    table_.progress = report_progress;
    table_.memory_bytes = physical_memory();
    progress_.struct_size = sizeof(ansatz_progress);
}

int64_t physical_memory()
{
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page_size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page_size > 0 ? static_cast<int64_t>(pages) * page_size : 0;
}

void set_blas_threads(int threads)
{
    openblas_set_num_threads(threads);
}

int available_cores()
{
    // The cores this process may run on (taskset, cgroup cpusets), else the machine's.
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

} // namespace ansatz::engine

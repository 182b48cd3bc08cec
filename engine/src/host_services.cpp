#include "host_services.hpp"

#include <cstdio>
#include <sched.h>
#include <thread>

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

} // namespace

HostServices::HostServices(uint64_t seed, int threads) : seed_(seed), threads_(threads)
{
    table_.struct_size = sizeof(ansatz_host);
    table_.threads = threads;
    table_.context = this;
    table_.log = log_message;
    table_.cancelled = is_cancelled;
    table_.stream = make_stream;
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

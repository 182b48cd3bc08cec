#include "run/fault.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ansatz::engine
{

namespace
{

const char* const points[] = { "batch", "checkpoint-write", "checkpoint-swap", "checkpoint-remove" };

// The point and count ANSATZ_FAULT asks for; a malformed value is reported once and ignored, so a
// misspelled kill in a test shows instead of silently not happening.
struct Fault
{
    std::string point;
    long at = 0;
};

Fault parse(const char* spec)
{
    Fault f;
    if (!spec)
        return f;
    const char* colon = std::strchr(spec, ':');
    char* end = nullptr;
    const long at = colon ? std::strtol(colon + 1, &end, 10) : 0;
    const std::string point = colon ? std::string(spec, colon) : std::string();
    bool known = false;
    for (const char* p : points)
        known = known || point == p;
    if (!known || at < 1 || !end || *end != '\0')
    {
        std::fprintf(stderr,
                     "warning: ANSATZ_FAULT=%s is not POINT:N (N >= 1; points: batch, checkpoint-write, "
                     "checkpoint-swap, checkpoint-remove); ignored.\n",
                     spec);
        return f;
    }
    f.point = point;
    f.at = at;
    return f;
}

} // namespace

void fault_point(const char* name)
{
    static const Fault fault = parse(std::getenv("ANSATZ_FAULT"));
    if (fault.at == 0 || fault.point != name)
        return;
    static long count = 0;
    if (++count == fault.at)
        std::raise(SIGKILL);
}

} // namespace ansatz::engine

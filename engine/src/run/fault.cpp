#include "run/fault.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ansatz::engine
{

void fault_point(const char* name)
{
    static const char* const spec = std::getenv("ANSATZ_FAULT");
    if (!spec)
        return;
    static long count = 0;
    const char* colon = std::strchr(spec, ':');
    if (!colon || std::strncmp(spec, name, static_cast<size_t>(colon - spec)) != 0 ||
        std::strlen(name) != static_cast<size_t>(colon - spec))
        return;
    if (++count == std::atol(colon + 1))
        std::raise(SIGKILL);
}

} // namespace ansatz::engine

#include "outputs/progress.hpp"

#include <cstdio>
#include <unistd.h>

namespace ansatz::engine
{

using clock_type = std::chrono::steady_clock;

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), total_(total > 0 ? total : 1), unit_(std::move(unit)),
      terminal_(isatty(2) != 0), start_(clock_type::now()), last_draw_(start_)
{
}

Progress::~Progress()
{
    if (terminal_ && !finished_)
        std::fputs("\n", stderr);
}

double Progress::seconds() const
{
    return std::chrono::duration<double>(clock_type::now() - start_).count();
}

namespace
{
std::string clock_text(double seconds)
{
    const long s = static_cast<long>(seconds + 0.5);
    char buffer[32];
    if (s >= 3600)
        std::snprintf(buffer, sizeof buffer, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        std::snprintf(buffer, sizeof buffer, "%ld:%02ld", s / 60, s % 60);
    return buffer;
}
} // namespace

void Progress::update(int64_t done, const std::string& note)
{
    const auto now = clock_type::now();
    const double since = std::chrono::duration<double>(now - last_draw_).count();
    if (since < (terminal_ ? 0.1 : 10.0))
        return;
    last_draw_ = now;
    draw(done, note);
}

void Progress::finish()
{
    if (terminal_ && !finished_)
    {
        std::fputs("\r\033[K", stderr);
        std::fflush(stderr);
    }
    finished_ = true;
}

void Progress::draw(int64_t done, const std::string& note)
{
    const double elapsed = seconds();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    const double fraction = static_cast<double>(done) / static_cast<double>(total_);
    char line[512];
    if (terminal_)
    {
        const int width = 30, filled = static_cast<int>(fraction * width);
        std::string bar(static_cast<size_t>(filled), '=');
        if (filled < width)
            bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
        std::snprintf(line, sizeof line, "\r\033[K%s [%s] %3.0f%% %lld/%lld %s, %.0f %s/s, ETA %s %s",
                      label_.c_str(), bar.c_str(), 100 * fraction, static_cast<long long>(done),
                      static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str(),
                      clock_text(eta).c_str(), note.c_str());
        std::fputs(line, stderr);
    }
    else
    {
        std::snprintf(line, sizeof line, "%s: %.0f%% (%lld/%lld %s, %.0f %s/s, ETA %s) %s\n", label_.c_str(),
                      100 * fraction, static_cast<long long>(done), static_cast<long long>(total_),
                      unit_.c_str(), rate, unit_.c_str(), clock_text(eta).c_str(), note.c_str());
        std::fputs(line, stderr);
    }
    std::fflush(stderr);
}

} // namespace ansatz::engine

// progress.hpp -- a progress bar with rate and ETA on a terminal; plain lines (at most one every
// ten seconds) otherwise, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ansatz::engine
{

class Progress
{
public:
    Progress(std::string label, int64_t total, std::string unit);
    ~Progress();
    // `done` of `total` units are finished; `note` is appended (e.g. the running loss).
    void update(int64_t done, const std::string& note = "");
    void finish();
    double seconds() const;

private:
    void draw(int64_t done, const std::string& note);

    std::string label_;
    int64_t total_;
    std::string unit_;
    bool terminal_;
    bool finished_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

} // namespace ansatz::engine

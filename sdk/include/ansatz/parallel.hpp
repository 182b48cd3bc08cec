// ansatz/parallel.hpp -- a small persistent team of threads for a component's batch work.
//
// WHAT THIS FILE PROVIDES
//     ThreadTeam: `threads - 1` worker threads that live as long as the team, and run(parts, f),
//     which calls f(part) once for every part in [0, parts) and returns when all are done: the caller
//     runs part 0, then every part no worker has claimed yet; idle workers claim the others. A
//     component sizes its team from the host's budget (Host::threads()) and splits its element-wise
//     work, its random draws (by rows: row r still draws only from rngs[r], in its own order) and its
//     matrix products (by blocks of the output, each a single-threaded BLAS call: see
//     blas::SingleThreaded) over the parts.
//
// WHY A TEAM OF ITS OWN
//     Between two matrix products, OpenBLAS's threads wait (spinning, then yielding) while the caller
//     does the element-wise work alone; with a batch of 64 rows that work is a large share of an RBM
//     step. A team that does both -- each member its block of a product, then its rows of the
//     element-wise work -- keeps every core of the budget busy, with exactly `threads` threads
//     running.
//
// WHEN THE MACHINE IS BUSY
//     Parts are claimed, not assigned: a worker that has lost its core (another process runs there)
//     does not hold the caller up, which runs the parts nobody claimed and only waits for parts a worker
//     has started. So a team on a loaded machine degrades towards one thread's speed, instead of
//     waiting a scheduler time slice at every run().
//
// CONVENTIONS
//     - Part k is the same work whichever thread runs it, so results never depend on timing: split by
//       a deterministic range per part (range() below), every output element written by one part.
//       Row-wise functions and per-row draws are then bit-identical for any split; a matrix product
//       split in blocks agrees with the single call to rounding (see ansatz/blas.hpp). A run is
//       reproducible bit for bit for a given thread count.
//     - Workers spin for a short while after a run (50 us: the next one usually follows within
//       microseconds), then sleep on a futex (std::atomic::wait) until the next run(). A component whose next
//       run() is far away calls rest() when its call ends, so its workers sleep at once: every component has
//       a team of its own, and a worker spinning while another component's team works takes a core from it
//       (an optimizer runs once per step, between the model's products: measured on the PCD-1 bench, sgd's
//       spinning worker made the rbm's epoch 18 % longer: median 2.13 s against 1.74 s).
//     - run() is not reentrant and not thread-safe: one caller at a time (the host never calls a
//       component concurrently). An exception thrown by a part is rethrown by run() once every part
//       has finished (the first one, if several parts throw).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ansatz
{

// A hint to the core that this thread is busy-waiting.
inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

class ThreadTeam
{
public:
    // requires: threads >= 1 (values below 1 act as 1). One thread means no worker: run() calls every
    // part on the caller, in order.
    explicit ThreadTeam(int threads = 1) { resize(threads); }
    ~ThreadTeam() { stop(); }
    ThreadTeam(const ThreadTeam&) = delete;
    ThreadTeam& operator=(const ThreadTeam&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Changes the number of threads (joins the old workers first).
    void resize(int threads)
    {
        threads = std::clamp(threads, 1, 65535); // a part count fits 16 bits of a claim
        if (threads == size())
            return;
        stop();
        stopping_.store(false, std::memory_order_relaxed);
        // A worker starts from the generation of now: a run() that follows before the thread is
        // scheduled is the next generation, which it will not miss.
        const uint32_t start = generation_.load(std::memory_order_relaxed);
        for (int i = 1; i < threads; ++i)
            workers_.emplace_back([this, start] { work(start); });
    }

    // Calls f(part) once for every part in [0, parts) (parts is cut to size()): part 0 here, the others
    // on whichever thread claims them first, this one included. Returns when every part has returned;
    // rethrows the first exception a part threw.
    template <class F>
    void run(int parts, F&& f)
    {
        parts = std::clamp(parts, 1, size());
        if (parts == 1)
        {
            f(0);
            return;
        }
        job_ = &f;
        call_ = [](void* job, int part) { (*static_cast<std::remove_reference_t<F>*>(job))(part); };
        error_ = nullptr;
        resting_.store(false, std::memory_order_relaxed);
        const uint32_t generation = generation_.load(std::memory_order_relaxed) + 1;
        pending_.store(parts - 1, std::memory_order_relaxed);
        // Parts 1 .. parts - 1 are up for claims, tagged with this run's generation and part count, all in
        // one word (a worker that wakes late for an earlier run claims nothing of this one).
        claims_.store(claim_word(generation, parts, 1), std::memory_order_release);
        generation_.store(generation, std::memory_order_seq_cst);
        if (sleeping_.load(std::memory_order_seq_cst) > 0)
            generation_.notify_all();
        try
        {
            f(0);
        }
        catch (...)
        {
            keep(std::current_exception());
        }
        run_claimed(generation); // what no worker has claimed yet
        for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins)
        {
            if (spins < 4096)
                cpu_relax();
            else
                std::this_thread::yield(); // a worker lost its core mid-part: do not burn the one it needs
        }
        job_ = nullptr;
        if (error_)
            std::rethrow_exception(std::exchange(error_, nullptr));
    }

    // The workers stop spinning and sleep until the next run() (which wakes them, as after a long
    // pause): for a component that is done with its team for a while, so its workers leave the cores
    // to the other components' teams. Cheap; call it after run() has returned.
    void rest() noexcept
    {
        if (!workers_.empty())
            resting_.store(true, std::memory_order_release);
    }

    // The half-open range [begin, end) of part `part` of `parts` over n items, in blocks of `align`
    // items (the last part takes the partial block), as even as the blocks allow.
    static std::pair<int64_t, int64_t> range(int64_t n, int part, int parts, int64_t align = 1)
    {
        align = std::max<int64_t>(align, 1);
        const int64_t blocks = (n + align - 1) / align;
        // Part p starts at block ceil(blocks p / parts): the first parts get the larger shares (part 0
        // is the caller's, which starts first), the last part the partial block.
        const auto start = [&](int p) { return std::min(n, (blocks * p + parts - 1) / parts * align); };
        return { start(part), start(part + 1) };
    }

    // How many parts work of `items` units deserves, at least `min_items` each: small calls (a test's
    // 4 hidden units) stay on the caller, whose cache has the data.
    int parts_for(int64_t items, int64_t min_items) const
    {
        const int64_t by_size = min_items > 0 ? items / min_items : items;
        return static_cast<int>(std::clamp<int64_t>(by_size, 1, size()));
    }

private:
    static uint64_t claim_word(uint32_t generation, int parts, int next)
    {
        return static_cast<uint64_t>(generation) << 32 | static_cast<uint64_t>(parts) << 16 |
               static_cast<uint64_t>(next);
    }

    void keep(std::exception_ptr e)
    {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_)
            error_ = e;
    }

    // Claims and runs parts of run `generation` until none is left.
    void run_claimed(uint32_t generation)
    {
        uint64_t claim = claims_.load(std::memory_order_acquire);
        for (;;)
        {
            if (static_cast<uint32_t>(claim >> 32) != generation)
                return;
            const int parts = static_cast<int>((claim >> 16) & 0xffffu);
            const int part = static_cast<int>(claim & 0xffffu);
            if (part >= parts)
                return;
            if (!claims_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel,
                                               std::memory_order_acquire))
                continue; // claim now holds the current value
            try
            {
                call_(job_, part);
            }
            catch (...)
            {
                keep(std::current_exception());
            }
            pending_.fetch_sub(1, std::memory_order_release);
            claim = claims_.load(std::memory_order_acquire);
        }
    }

    void work(uint32_t seen)
    {
        for (;;)
        {
            uint32_t now = generation_.load(std::memory_order_acquire);
            if (now == seen)
            {
                // Spin for about spin_time (or until rest()), then sleep until the next run().
                const auto until = std::chrono::steady_clock::now() + spin_time;
                for (int spins = 0; now == seen; ++spins)
                {
                    cpu_relax();
                    now = generation_.load(std::memory_order_acquire);
                    if (now != seen || (!resting_.load(std::memory_order_acquire) &&
                                        ((spins & 255) != 255 || std::chrono::steady_clock::now() < until)))
                        continue;
                    sleeping_.fetch_add(1, std::memory_order_seq_cst);
                    now = generation_.load(std::memory_order_seq_cst);
                    if (now == seen)
                    {
                        generation_.wait(seen, std::memory_order_seq_cst);
                        now = generation_.load(std::memory_order_acquire);
                    }
                    sleeping_.fetch_sub(1, std::memory_order_seq_cst);
                }
            }
            seen = now;
            if (stopping_.load(std::memory_order_acquire))
                return;
            run_claimed(now);
        }
    }

    void stop()
    {
        if (workers_.empty())
            return;
        stopping_.store(true, std::memory_order_release);
        generation_.fetch_add(1, std::memory_order_seq_cst);
        generation_.notify_all();
        for (std::thread& t : workers_)
            t.join();
        workers_.clear();
    }

    // Long enough for the gaps between one component's runs within a call (microseconds), short enough
    // that a worker sleeps through the host's and the other components' work between two calls: with
    // 500 us the rbm's worker spun through sgd's step on the PCD-1 bench, taking the core sgd's own
    // worker needed (epoch median 1.51 s against 1.41 s with 50 us, 15 alternating runs; 20 us: no
    // better than 50).
    static constexpr std::chrono::microseconds spin_time{ 50 };

    std::vector<std::thread> workers_;
    std::atomic<uint32_t> generation_{ 0 };
    std::atomic<uint64_t> claims_{ 0 }; // generation << 32 | parts << 16 | the next unclaimed part
    std::atomic<int> pending_{ 0 };     // parts 1 .. parts - 1 not finished yet
    std::atomic<int> sleeping_{ 0 };
    std::atomic<bool> stopping_{ false };
    std::atomic<bool> resting_{ false }; // rest() was called after the last run()
    void* job_ = nullptr;
    void (*call_)(void*, int) = nullptr;
    std::exception_ptr error_;
    std::mutex error_mutex_;
};

} // namespace ansatz

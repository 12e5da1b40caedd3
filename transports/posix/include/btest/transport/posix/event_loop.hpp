// A small epoll reactor (Linux): file-descriptor watches (level-triggered), one-shot timers on
// the steady clock through one timerfd, and posted tasks. It is what the POSIX transport's
// server and client run on; an embedder with its own loop drives the sessions directly instead
// (README, "Embedding the kit").
//
// Handlers run on the thread that calls run()/run_once(), never from inside another call of
// the loop's API. A handler may watch/unwatch, arm/cancel timers and post freely; it may even
// destroy the object that registered it (the loop calls a copy of the handler, so keep the
// captures small: a pointer, not a shared_ptr).
//
// Thread safety: one thread runs the loop and calls everything else, except post() and stop(),
// which any thread may call.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "btest/core/time.hpp"

namespace btest::posix {

class event_loop;

/// A registration of a file descriptor (see event_loop::watch). Default: none.
struct watch_id {
    std::uint32_t slot = 0;
    std::uint32_t gen = 0;  ///< 0: invalid
    bool valid() const noexcept { return gen != 0; }
};

/// A one-shot timer on a loop with a fixed handler; arm() again to move it. Cancelled when
/// destroyed. Not copyable or movable (the loop refers to it).
class timer {
public:
    timer(event_loop& loop, std::function<void()> handler);
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    ~timer();

    /// Fires once at or after `at` (at once, in the next round, when `at` is past).
    void arm(time_point at);
    void cancel() noexcept;
    bool armed() const noexcept { return at_.has_value(); }
    std::optional<time_point> expiry() const noexcept { return at_; }

private:
    friend class event_loop;
    event_loop& loop_;
    std::function<void()> handler_;
    std::uint32_t slot_;
    std::optional<time_point> at_;
};

class event_loop {
public:
    using io_handler = std::function<void(std::uint32_t events)>;

    /// Throws std::system_error when the kernel refuses epoll, timerfd or eventfd.
    event_loop() {
        epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
        tfd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (tfd_ < 0 || efd_ < 0) {
            const int e = errno;
            close_all();
            throw std::system_error(e, std::system_category(), "timerfd/eventfd");
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = timer_key;
        ::epoll_ctl(epfd_, EPOLL_CTL_ADD, tfd_, &ev);
        ev.data.u64 = wake_key;
        ::epoll_ctl(epfd_, EPOLL_CTL_ADD, efd_, &ev);
    }
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;
    ~event_loop() { close_all(); }

    // ---- file descriptors ------------------------------------------------------------------

    /// Calls `h(events)` whenever `fd` is ready for `events` (EPOLLIN / EPOLLOUT; EPOLLERR and
    /// EPOLLHUP are always reported). Unwatch before closing the descriptor. An invalid id when
    /// epoll refuses the descriptor.
    watch_id watch(int fd, std::uint32_t events, io_handler h) {
        std::uint32_t slot;
        if (!free_watch_.empty()) {
            slot = free_watch_.back();
            free_watch_.pop_back();
        } else {
            slot = static_cast<std::uint32_t>(watches_.size());
            watches_.emplace_back();
        }
        auto& w = watches_[slot];
        if (++w.gen == 0) w.gen = 1;
        w.fd = fd;
        w.events = events;
        w.handler = std::move(h);
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = key(slot, w.gen);
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            release_watch(slot);
            return {};
        }
        w.live = true;
        ++live_watches_;
        return {slot, w.gen};
    }

    /// Changes the events of a watch (no system call when they are the same).
    void modify(watch_id id, std::uint32_t events) {
        auto* w = find(id);
        if (!w || w->events == events) return;
        w->events = events;
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = key(id.slot, id.gen);
        ::epoll_ctl(epfd_, EPOLL_CTL_MOD, w->fd, &ev);
    }

    /// Forgets a watch; events already collected for it are not delivered. Idempotent.
    void unwatch(watch_id& id) noexcept {
        if (auto* w = find(id)) {
            ::epoll_ctl(epfd_, EPOLL_CTL_DEL, w->fd, nullptr);
            release_watch(id.slot);
            --live_watches_;
        }
        id = {};
    }

    // ---- tasks -----------------------------------------------------------------------------

    /// Runs `task` on the loop's thread in its next round. Any thread may call this.
    void post(std::function<void()> task) {
        bool wake = false;
        {
            std::lock_guard lock(post_mutex_);
            posted_.push_back(std::move(task));
            wake = std::this_thread::get_id() != runner_.load(std::memory_order_relaxed);
        }
        if (wake) signal();
    }

    /// Makes run() return after the current round. Any thread may call this.
    void stop() {
        stop_.store(true, std::memory_order_relaxed);
        signal();
    }
    /// Clears a stop() so that run() can run again.
    void restart() noexcept { stop_.store(false, std::memory_order_relaxed); }
    bool stopped() const noexcept { return stop_.load(std::memory_order_relaxed); }

    // ---- running ---------------------------------------------------------------------------

    /// Runs rounds until stop(), or until nothing is left that could run a handler (no watch,
    /// no armed timer, no posted task).
    void run() {
        while (!stopped() && has_work()) run_once(std::nullopt);
    }

    /// One round: waits for readiness, a timer or a posted task (at most `max_wait`; nullopt:
    /// as long as it takes, 0: not at all), then runs the handlers that are due. Returns how
    /// many ran.
    std::size_t run_once(std::optional<duration> max_wait) {
        runner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        std::size_t ran = 0;
        int timeout = -1;
        if (has_posted() || due_now()) timeout = 0;
        else if (max_wait) timeout = static_cast<int>(std::clamp<std::int64_t>(
                               (std::chrono::ceil<std::chrono::milliseconds>(*max_wait)).count(), 0, 1 << 30));
        if (stopped()) timeout = 0;
        arm_timerfd();
        std::array<epoll_event, 64> evs{};
        const int n = ::epoll_wait(epfd_, evs.data(), static_cast<int>(evs.size()), timeout);
        for (int i = 0; i < n; ++i) {
            const auto k = evs[static_cast<std::size_t>(i)].data.u64;
            if (k == timer_key) {
                std::uint64_t expirations = 0;
                [[maybe_unused]] const auto r = ::read(tfd_, &expirations, sizeof expirations);
                timerfd_at_.reset();
                continue;
            }
            if (k == wake_key) {
                std::uint64_t v = 0;
                [[maybe_unused]] const auto r = ::read(efd_, &v, sizeof v);
                continue;
            }
            const auto slot = static_cast<std::uint32_t>(k & 0xffffffffu);
            const auto gen = static_cast<std::uint32_t>(k >> 32);
            auto* w = find({slot, gen});
            if (!w) continue;  // unwatched by an earlier handler of this round
            auto h = w->handler;
            h(evs[static_cast<std::size_t>(i)].events);
            ++ran;
        }
        ran += run_timers();
        ran += run_posted();
        return ran;
    }

    /// Rounds until `done()` holds (checked after every round) or `limit` passes; true if done.
    template <class Done>
    bool run_until(Done&& done, duration limit) {
        const auto end = clock::now() + limit;
        while (!done()) {
            const auto now = clock::now();
            if (now >= end || stopped()) return done();
            run_once(std::min<duration>(end - now, std::chrono::milliseconds(50)));
        }
        return true;
    }

    /// Watches, armed timers and posted tasks (what keeps run() going).
    bool has_work() const {
        return live_watches_ > 0 || armed_timers_ > 0 || has_posted();
    }

private:
    friend class timer;
    static constexpr std::uint64_t timer_key = ~std::uint64_t{0};
    static constexpr std::uint64_t wake_key = ~std::uint64_t{0} - 1;

    struct watch_slot {
        int fd = -1;
        std::uint32_t gen = 0;
        std::uint32_t events = 0;
        bool live = false;
        io_handler handler;
    };
    struct timer_slot {
        timer* t = nullptr;
        std::uint32_t gen = 0;
    };
    struct timer_entry {
        time_point at;
        std::uint32_t slot;
        std::uint32_t gen;
        bool operator>(const timer_entry& o) const noexcept { return at > o.at; }
    };

    static std::uint64_t key(std::uint32_t slot, std::uint32_t gen) noexcept {
        return std::uint64_t{gen} << 32 | slot;
    }
    watch_slot* find(watch_id id) noexcept {
        if (!id.valid() || id.slot >= watches_.size()) return nullptr;
        auto& w = watches_[id.slot];
        return w.live && w.gen == id.gen ? &w : nullptr;
    }
    void release_watch(std::uint32_t slot) noexcept {
        auto& w = watches_[slot];
        w.live = false;
        w.fd = -1;
        w.handler = nullptr;
        free_watch_.push_back(slot);
    }

    void signal() noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto r = ::write(efd_, &one, sizeof one);
    }
    bool has_posted() const {
        std::lock_guard lock(post_mutex_);
        return !posted_.empty();
    }
    std::size_t run_posted() {
        {
            std::lock_guard lock(post_mutex_);
            if (posted_.empty()) return 0;
            running_tasks_.swap(posted_);
        }
        // Tasks posted by these tasks run in the next round.
        for (auto& t : running_tasks_) t();
        const auto n = running_tasks_.size();
        running_tasks_.clear();
        return n;
    }

    // ---- timers ----------------------------------------------------------------------------

    std::uint32_t add_timer(timer* t) {
        std::uint32_t slot;
        if (!free_timer_.empty()) {
            slot = free_timer_.back();
            free_timer_.pop_back();
        } else {
            slot = static_cast<std::uint32_t>(timers_.size());
            timers_.emplace_back();
        }
        timers_[slot].t = t;
        return slot;
    }
    void remove_timer(std::uint32_t slot) noexcept {
        ++timers_[slot].gen;
        timers_[slot].t = nullptr;
        free_timer_.push_back(slot);
    }
    void arm_timer(std::uint32_t slot, time_point at) {
        const auto gen = ++timers_[slot].gen;  // older entries of this timer go stale
        heap_.push_back({at, slot, gen});
        std::push_heap(heap_.begin(), heap_.end(), std::greater<>{});
        // Stale entries wait in the heap until their time; rebuild when they dominate.
        if (heap_.size() > 1024 && heap_.size() > 8 * (armed_timers_ + 1)) compact();
    }
    void cancel_timer(std::uint32_t slot) noexcept { ++timers_[slot].gen; }
    bool stale(const timer_entry& e) const noexcept {
        return timers_[e.slot].t == nullptr || timers_[e.slot].gen != e.gen;
    }
    void drop_stale_top() {
        while (!heap_.empty() && stale(heap_.front())) {
            std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
            heap_.pop_back();
        }
    }
    void compact() {
        std::erase_if(heap_, [&](const timer_entry& e) { return stale(e); });
        std::make_heap(heap_.begin(), heap_.end(), std::greater<>{});
    }
    bool due_now() {
        drop_stale_top();
        return !heap_.empty() && heap_.front().at <= clock::now();
    }
    std::size_t run_timers() {
        std::size_t ran = 0;
        const auto now = clock::now();
        // Only what is due now: a handler that re-arms for the past runs in the next round.
        std::size_t budget = heap_.size();
        while (budget-- > 0) {
            drop_stale_top();
            if (heap_.empty() || heap_.front().at > now) break;
            const auto e = heap_.front();
            std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
            heap_.pop_back();
            timer* t = timers_[e.slot].t;
            ++timers_[e.slot].gen;
            t->at_.reset();
            --armed_timers_;
            auto h = t->handler_;
            h();
            ++ran;
        }
        return ran;
    }
    /// The timerfd follows the earliest live timer.
    void arm_timerfd() {
        drop_stale_top();
        if (heap_.empty()) {
            if (timerfd_at_) {
                itimerspec off{};
                ::timerfd_settime(tfd_, 0, &off, nullptr);
                timerfd_at_.reset();
            }
            return;
        }
        const auto at = heap_.front().at;
        if (timerfd_at_ && *timerfd_at_ == at) return;
        // steady_clock is CLOCK_MONOTONIC on Linux: its time_since_epoch is the timerfd's clock.
        const auto ns = std::max<std::int64_t>(1, at.time_since_epoch().count());
        itimerspec its{};
        its.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        its.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        ::timerfd_settime(tfd_, TFD_TIMER_ABSTIME, &its, nullptr);
        timerfd_at_ = at;
    }

    void close_all() noexcept {
        for (int* fd : {&tfd_, &efd_, &epfd_})
            if (*fd >= 0) {
                ::close(*fd);
                *fd = -1;
            }
    }

    int epfd_ = -1;
    int tfd_ = -1;
    int efd_ = -1;
    std::deque<watch_slot> watches_;
    std::vector<std::uint32_t> free_watch_;
    std::size_t live_watches_ = 0;
    std::vector<timer_slot> timers_;
    std::vector<std::uint32_t> free_timer_;
    std::vector<timer_entry> heap_;
    std::size_t armed_timers_ = 0;
    std::optional<time_point> timerfd_at_;
    mutable std::mutex post_mutex_;
    std::vector<std::function<void()>> posted_;
    std::vector<std::function<void()>> running_tasks_;
    std::atomic<std::thread::id> runner_{};
    std::atomic<bool> stop_{false};
};

// ---- timer ---------------------------------------------------------------------------------

inline timer::timer(event_loop& loop, std::function<void()> handler)
    : loop_(loop), handler_(std::move(handler)), slot_(loop.add_timer(this)) {}

inline timer::~timer() {
    cancel();
    loop_.remove_timer(slot_);
}

inline void timer::arm(time_point at) {
    if (!at_) ++loop_.armed_timers_;
    at_ = at;
    loop_.arm_timer(slot_, at);
}

inline void timer::cancel() noexcept {
    if (!at_) return;
    at_.reset();
    --loop_.armed_timers_;
    loop_.cancel_timer(slot_);
}

} // namespace btest::posix

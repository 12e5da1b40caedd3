// The epoll adapter of the shared data plane's Reactor (btest/transport/reactor.hpp): watches
// are the event_loop's (level-triggered), timers its one-shot timers, post() its task queue.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include <sys/epoll.h>

#include "btest/core/time.hpp"
#include "btest/transport/posix/event_loop.hpp"
#include "btest/transport/reactor.hpp"

namespace btest::posix {

class reactor {
public:
    /// Runs on `loop` (the app's).
    explicit reactor(event_loop& loop) : loop_(&loop) {}
    /// With a loop of its own (a server's extra io thread).
    reactor() : own_(std::make_unique<event_loop>()), loop_(own_.get()) {}
    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    static std::unique_ptr<reactor> owned() { return std::make_unique<reactor>(); }
    event_loop& loop() noexcept { return *loop_; }

    /// Runs the loop until stop(), idle or not (an owned reactor's thread).
    void run() {
        loop_->restart();
        while (!loop_->stopped()) loop_->run_once(std::nullopt);
    }
    void stop() { loop_->stop(); }
    void post(std::function<void()> fn) { loop_->post(std::move(fn)); }

    struct watch {
        watch_id id;
    };
    watch watch_fd(int fd, std::function<void(std::uint8_t)> on_ready) {
        return {loop_->watch(fd, 0, [cb = std::move(on_ready)](std::uint32_t ev) {
            std::uint8_t r = 0;
            if (ev & EPOLLIN) r |= transport::ready_read;
            if (ev & EPOLLOUT) r |= transport::ready_write;
            if (ev & (EPOLLERR | EPOLLHUP)) r |= transport::ready_read | transport::ready_error;
            cb(r);
        })};
    }
    void want(watch& w, bool read, bool write) {
        loop_->modify(w.id, (read ? std::uint32_t{EPOLLIN} : 0u) | (write ? std::uint32_t{EPOLLOUT} : 0u));
    }
    void unwatch(watch& w) { loop_->unwatch(w.id); }

    class timer {
    public:
        timer(reactor& r, std::function<void()> fn) : t_(*r.loop_, std::move(fn)) {}
        void arm(time_point at) { t_.arm(at); }
        void cancel() noexcept { t_.cancel(); }

    private:
        posix::timer t_;
    };

private:
    std::unique_ptr<event_loop> own_;
    event_loop* loop_;
};

static_assert(transport::reactor<reactor>);

// The shared data plane's names (options, observers, addresses, counters) are this
// transport's too: btest::posix::server_options is btest::transport::server_options.
using namespace btest::transport;

namespace detail {
/// The reactor of a server or client, constructed before it (base-from-member).
struct with_reactor {
    explicit with_reactor(event_loop& loop) : reactor_(loop) {}
    reactor reactor_;
};
} // namespace detail

} // namespace btest::posix

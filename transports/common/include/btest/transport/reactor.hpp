// What the shared data plane (driver.hpp, server.hpp, client.hpp) needs from an event loop: a
// Reactor. Asio (transports/asio/reactor.hpp) and a plain epoll loop (transports/posix/
// reactor.hpp) are adapters of it, each a short file; a new event loop (io_uring, libuv, a
// router daemon's own loop) is one more.
//
// The data plane does its own system calls on non-blocking descriptors (recv, send, sendmmsg,
// recvmmsg) and asks the reactor only to say when a descriptor may have become ready:
//
//   R::watch w = r.watch_fd(fd, cb)     register; cb(ready_flags) runs on the reactor's
//                                        thread, never from inside another of its calls
//   r.want(w, read, write)               the readiness it wants reported from now on
//   r.unwatch(w)                         no callback after this returns (pending ones dropped);
//                                        the caller closes the descriptor afterwards
//   R::timer t(r, callback)              a one-shot timer: t.arm(time_point), t.cancel();
//                                        no callback after cancel() or destruction
//   r.post(fn)                           run fn soon, after the handlers already due; any thread
//
// The data plane only waits for readiness after a call returned EAGAIN (and posts a
// continuation when it stops early with work left), so edge-triggered reactors (Asio's epoll)
// and level-triggered ones (epoll, poll, libuv) both fit. A reported readiness may be
// spurious; the next call then just returns EAGAIN.
//
// For several io threads a server also needs: `R::owned()` → std::unique_ptr<R> with a loop of
// its own, `r.run()` (blocks until stop()) and `r.stop()` (any thread).
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>

#include "btest/core/time.hpp"

namespace btest::transport {

/// What a watch callback is told.
enum ready : std::uint8_t {
    ready_read = 1,   ///< readable, or the peer closed or reset the connection
    ready_write = 2,  ///< writable
    ready_error = 4,  ///< the descriptor has an error or a hang-up pending
};

template <class R>
concept reactor = requires(R& r, typename R::watch& w, int fd, std::function<void(std::uint8_t)> on_ready,
                           std::function<void()> fn, time_point at) {
    { r.watch_fd(fd, on_ready) } -> std::same_as<typename R::watch>;
    r.want(w, true, false);
    r.unwatch(w);
    r.post(fn);
    requires std::constructible_from<typename R::timer, R&, std::function<void()>>;
    requires requires(typename R::timer& t) {
        t.arm(at);
        t.cancel();
    };
    { R::owned() } -> std::same_as<std::unique_ptr<R>>;
    r.run();
    r.stop();
};

} // namespace btest::transport

// The Boost.Asio adapter of the shared data plane's Reactor (btest/transport/reactor.hpp):
// descriptors are watched with async_wait on a posix::stream_descriptor that does not own
// them, timers are steady_timers, post() is asio::post. Everything runs on one io_context,
// one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/core/time.hpp"
#include "btest/transport/reactor.hpp"

namespace btest::asio {

namespace net = boost::asio;

class reactor {
public:
    /// Runs on `ioc` (the app's io_context).
    explicit reactor(net::io_context& ioc) : ioc_(&ioc) {}
    /// With an io_context of its own (a server's extra io thread).
    reactor() : own_(std::make_unique<net::io_context>(1)), ioc_(own_.get()) {}
    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    static std::unique_ptr<reactor> owned() { return std::make_unique<reactor>(); }
    net::io_context& context() noexcept { return *ioc_; }

    /// Runs the io_context until stop() (an owned reactor's thread).
    void run() {
        ioc_->restart();
        auto guard = net::make_work_guard(*ioc_);
        ioc_->run();
    }
    void stop() { ioc_->stop(); }
    void post(std::function<void()> fn) { net::post(*ioc_, std::move(fn)); }

    // ---- descriptors -----------------------------------------------------------------------

    class watch {
    public:
        watch() = default;

    private:
        friend class reactor;
        struct state {
            explicit state(net::io_context& ioc) : desc(ioc) {}
            net::posix::stream_descriptor desc;
            std::function<void(std::uint8_t)> on_ready;
            bool want_read = false, want_write = false;
            bool waiting_read = false, waiting_write = false;
            bool dead = false;
        };
        std::shared_ptr<state> s_;
    };

    watch watch_fd(int fd, std::function<void(std::uint8_t)> on_ready) {
        watch w;
        w.s_ = std::make_shared<watch::state>(*ioc_);
        boost::system::error_code ec;
        w.s_->desc.assign(fd, ec);
        w.s_->on_ready = std::move(on_ready);
        if (ec) w.s_->dead = true;
        return w;
    }

    void want(watch& w, bool read, bool write) {
        if (!w.s_ || w.s_->dead) return;
        w.s_->want_read = read;
        w.s_->want_write = write;
        arm(w.s_);
    }

    void unwatch(watch& w) {
        if (!w.s_) return;
        auto s = std::move(w.s_);
        if (s->dead) return;
        s->dead = true;
        s->on_ready = nullptr;
        // Pending waits complete as aborted; the descriptor stays open (the caller owns it).
        (void)s->desc.release();
    }

    // ---- timers ----------------------------------------------------------------------------

    class timer {
    public:
        timer(reactor& r, std::function<void()> fn) : t_(*r.ioc_), s_(std::make_shared<state>()) { s_->fn = std::move(fn); }
        timer(const timer&) = delete;
        timer& operator=(const timer&) = delete;
        ~timer() {
            s_->alive = false;
            t_.cancel();
        }
        void arm(time_point at) {
            const auto gen = ++s_->gen;
            t_.expires_at(at);
            t_.async_wait([s = s_, gen](const boost::system::error_code& ec) {
                if (ec || !s->alive || gen != s->gen) return;
                s->fn();
            });
        }
        void cancel() noexcept {
            ++s_->gen;
            t_.cancel();
        }

    private:
        struct state {
            std::function<void()> fn;
            std::uint64_t gen = 0;
            bool alive = true;
        };
        net::steady_timer t_;
        std::shared_ptr<state> s_;
    };

private:
    /// Starts the waits that are wanted and not running. A completed wait reports readiness
    /// and, while it is still wanted, waits again (Asio reports edges: the data plane reads
    /// until EAGAIN before it relies on a wait).
    static void arm(const std::shared_ptr<watch::state>& s) {
        if (s->want_read && !s->waiting_read) {
            s->waiting_read = true;
            s->desc.async_wait(net::posix::stream_descriptor::wait_read, [s](const boost::system::error_code& ec) {
                s->waiting_read = false;
                if (ec || s->dead) return;
                if (s->want_read) {
                    auto cb = s->on_ready;  // the callback may unwatch (and so clear it)
                    cb(transport::ready_read);
                }
                if (!s->dead) arm(s);
            });
        }
        if (s->want_write && !s->waiting_write) {
            s->waiting_write = true;
            s->desc.async_wait(net::posix::stream_descriptor::wait_write, [s](const boost::system::error_code& ec) {
                s->waiting_write = false;
                if (ec || s->dead) return;
                if (s->want_write) {
                    auto cb = s->on_ready;
                    cb(transport::ready_write);
                }
                if (!s->dead) arm(s);
            });
        }
    }

    std::unique_ptr<net::io_context> own_;
    net::io_context* ioc_;
};

static_assert(transport::reactor<reactor>);

// The shared data plane's names (options, observers, addresses, counters) are this
// transport's too: btest::asio::server_options is btest::transport::server_options.
using namespace btest::transport;

namespace detail {
/// The reactor of a server or client, constructed before it (base-from-member).
struct with_reactor {
    explicit with_reactor(net::io_context& ioc) : reactor_(ioc) {}
    reactor reactor_;
};
} // namespace detail

} // namespace btest::asio

#include "common/http_server.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace btest_app::http {

namespace {

using clock = std::chrono::steady_clock;

std::string status_response(std::string_view status, std::string_view text) {
    std::string r = "HTTP/1.1 ";
    r += status;
    r += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ";
    r += std::to_string(text.size());
    r += "\r\nConnection: close\r\n";
    if (status.starts_with("503")) r += "Retry-After: 1\r\n";
    r += "\r\n";
    r += text;
    return r;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

enum class head_verdict { ok, bad, too_large };

thread_local clock::time_point serving_since{};   // accept time of the request this worker serves

/// Framing of a complete head (request line and headers, CRLF-terminated): the body length it
/// announces. Chunked bodies and contradictory lengths are refused.
head_verdict body_length(std::string_view head, std::size_t max_body, std::size_t& length) {
    length = 0;
    std::optional<std::size_t> seen;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
        const auto start = pos + 2;
        const auto end = head.find("\r\n", start);
        if (end == std::string_view::npos || end == start) break;
        const auto line = head.substr(start, end - start);
        pos = end;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        const auto name = trim(line.substr(0, colon));
        const auto value = trim(line.substr(colon + 1));
        if (iequals(name, "transfer-encoding")) return head_verdict::bad;
        if (!iequals(name, "content-length")) continue;
        if (value.empty() || value.size() > 12 || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return head_verdict::bad;
        const auto n = static_cast<std::size_t>(std::stoull(std::string(value)));
        if (seen && *seen != n) return head_verdict::bad;
        seen = n;
    }
    length = seen.value_or(0);
    return length > max_body ? head_verdict::too_large : head_verdict::ok;
}

} // namespace

// ---- the httplib server: serves sockets the gate hands it ---------------------------------

class server::engine final : public httplib::Server {
public:
    /// One request from a stream whose whole request is already buffered: parse, dispatch,
    /// write the answer (with Connection: close).
    void serve(httplib::Stream& strm) {
        bool closed = false;
        process_request(strm, true, closed, nullptr);
    }
};

/// httplib's view of an accepted socket. Reads wait at most `read_timeout` (the request is in
/// the kernel's buffer already, so they do not wait at all); the whole response must be
/// written within `write_timeout` of its first byte, so a client that reads slowly or not at
/// all cannot hold a worker longer than that.
class fd_stream final : public httplib::Stream {
public:
    fd_stream(int fd, std::chrono::milliseconds read_timeout, std::chrono::milliseconds write_timeout)
        : fd_(fd), read_timeout_(read_timeout), write_timeout_(write_timeout) {}

    bool is_readable() const override { return wait(POLLIN, read_timeout_); }
    bool is_writable() const override {
        const auto left = write_left();
        return left.count() > 0 && wait(POLLOUT, left);
    }
    ssize_t read(char* ptr, size_t size) override {
        if (!is_readable()) return -1;
        for (;;) {
            const auto n = ::recv(fd_, ptr, size, 0);
            if (n < 0 && errno == EINTR) continue;
            return n;
        }
    }
    ssize_t write(const char* ptr, size_t size) override {
        if (!write_deadline_) write_deadline_ = clock::now() + write_timeout_;
        size_t done = 0;
        while (done < size) {
            if (!is_writable()) return done ? static_cast<ssize_t>(done) : -1;
            const auto n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
                return done ? static_cast<ssize_t>(done) : -1;
            }
            done += static_cast<size_t>(n);
        }
        return static_cast<ssize_t>(done);
    }
    void get_remote_ip_and_port(std::string& ip, int& port) const override { name_of(::getpeername, ip, port); }
    void get_local_ip_and_port(std::string& ip, int& port) const override { name_of(::getsockname, ip, port); }
    socket_t socket() const override { return fd_; }

private:
    std::chrono::milliseconds write_left() const {
        if (!write_deadline_) return write_timeout_;
        return std::chrono::duration_cast<std::chrono::milliseconds>(*write_deadline_ - clock::now());
    }
    bool wait(short events, std::chrono::milliseconds timeout) const {
        pollfd p{fd_, events, 0};
        for (;;) {
            const int r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(timeout.count(), 0)));
            if (r < 0 && errno == EINTR) continue;
            return r > 0 && (p.revents & (events | POLLHUP | POLLERR));
        }
    }
    void name_of(int (*get)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        ip.clear();
        port = 0;
        if (get(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
        char host[INET6_ADDRSTRLEN] = {};
        if (a.ss_family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
            ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (a.ss_family == AF_INET6) {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
            ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
        ip = host;
    }

    int fd_;
    std::chrono::milliseconds read_timeout_;
    std::chrono::milliseconds write_timeout_;
    std::optional<clock::time_point> write_deadline_;
};

// ---- the gate: waits for whole requests, caps connections, feeds the workers --------------

class server::gate {
public:
    gate(const server_options& opt, engine& http) : opt_(opt), http_(http), peek_(opt.max_header_bytes + opt.max_body_bytes + 1) {}
    ~gate() { stop(); }

    bool start(std::string& error) {
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ep_ < 0 || wake_ < 0) {
            error = std::string("epoll/eventfd: ") + std::strerror(errno);
            return false;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = wake_;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &ev);
        reader_ = std::thread([this] { reader_loop(); });
        for (std::size_t i = 0; i < std::max<std::size_t>(opt_.threads, 1); ++i)
            workers_.emplace_back([this] { worker_loop(); });
        return true;
    }

    /// A socket just accepted (accept thread).
    void admit(int fd) {
        accepted_.fetch_add(1, std::memory_order_relaxed);
        {
            std::lock_guard lock(m_);
            if (stopping_ || live_ >= opt_.max_connections) {
                refused_busy_.fetch_add(1, std::memory_order_relaxed);
                send_and_close(fd, status_response("503 Service Unavailable", "too many connections\n"));
                return;
            }
            ++live_;
            const auto now = clock::now();
            waiting_[fd] = {now + opt_.request_timeout, now};
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLRDHUP;
            ev.data.fd = fd;
            ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
        }
        wake();
    }

    void stop() {
        {
            std::lock_guard lock(m_);
            if (stopped_) return;
            stopped_ = stopping_ = true;
        }
        wake();
        cv_.notify_all();
        if (reader_.joinable()) reader_.join();
        for (auto& w : workers_) w.join();
        workers_.clear();
        std::lock_guard lock(m_);
        for (auto& [fd, w] : waiting_) ::close(fd);
        waiting_.clear();
        for (const auto& [fd, since] : ready_) ::close(fd);
        ready_.clear();
        if (ep_ >= 0) ::close(ep_);
        if (wake_ >= 0) ::close(wake_);
        ep_ = wake_ = -1;
    }

    server_counters counters() const noexcept {
        server_counters c;
        c.accepted = accepted_.load(std::memory_order_relaxed);
        c.served = served_.load(std::memory_order_relaxed);
        c.refused_busy = refused_busy_.load(std::memory_order_relaxed);
        c.timed_out = timed_out_.load(std::memory_order_relaxed);
        c.too_large = too_large_.load(std::memory_order_relaxed);
        c.bad_request = bad_request_.load(std::memory_order_relaxed);
        return c;
    }

private:
    void wake() {
        const std::uint64_t one = 1;
        if (wake_ >= 0) (void)!::write(wake_, &one, sizeof one);
    }

    /// Answers a request we will not serve, then closes. Whatever the client already sent is
    /// read first: closing a socket with unread input sends a reset that can overtake the answer.
    static void send_and_close(int fd, const std::string& response) {
        char sink[4096];
        for (int i = 0; i < 16 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
        }
        (void)!::send(fd, response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_WR);
        ::close(fd);
    }

    /// Leaves the waiting set (lock held).
    void forget(int fd) {
        ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
        waiting_.erase(fd);
    }

    void drop(int fd, const std::string& response) {
        forget(fd);
        --live_;
        if (response.empty()) ::close(fd);
        else send_and_close(fd, response);
    }

    /// Wake up only when more than `n` bytes are queued (or on EOF/error).
    static void wait_for_more_than(int fd, std::size_t n) {
        int v = static_cast<int>(std::min<std::size_t>(n + 1, 1u << 20));
        ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v);
    }

    /// The socket is readable (or closed: `hangup`): is its whole request there yet? (lock held)
    void check(int fd, bool hangup) {
        const auto n = ::recv(fd, peek_.data(), peek_.size(), MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) return drop(fd, {});   // the client went away
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            return drop(fd, {});
        }
        const std::string_view got(peek_.data(), static_cast<std::size_t>(n));
        const auto end = got.find("\r\n\r\n");
        if (end == std::string_view::npos || end + 4 > opt_.max_header_bytes) {
            if (got.size() >= opt_.max_header_bytes) {
                too_large_.fetch_add(1, std::memory_order_relaxed);
                return drop(fd, status_response("431 Request Header Fields Too Large", "request head too large\n"));
            }
            if (hangup) return drop(fd, {});   // the client stopped sending before the end of its request
            return wait_for_more_than(fd, got.size());
        }
        const auto head_len = end + 4;
        std::size_t body = 0;
        switch (body_length(got.substr(0, head_len), opt_.max_body_bytes, body)) {
        case head_verdict::bad:
            bad_request_.fetch_add(1, std::memory_order_relaxed);
            return drop(fd, status_response("400 Bad Request", "chunked or malformed request body framing\n"));
        case head_verdict::too_large:
            too_large_.fetch_add(1, std::memory_order_relaxed);
            return drop(fd, status_response("413 Content Too Large", "request body too large\n"));
        case head_verdict::ok: break;
        }
        if (got.size() < head_len + body) {
            if (hangup) return drop(fd, {});
            return wait_for_more_than(fd, got.size());
        }
        // The whole request is buffered: httplib's reads will not wait on this client.
        const auto accepted = waiting_[fd].accepted;
        forget(fd);
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
        ready_.emplace_back(fd, accepted);
        cv_.notify_one();
    }

    void reader_loop() {
        std::vector<epoll_event> events(64);
        std::unique_lock lock(m_);
        while (!stopping_) {
            int timeout = -1;
            const auto now = clock::now();
            for (const auto& [fd, w] : waiting_) {
                const auto ms = std::chrono::ceil<std::chrono::milliseconds>(w.deadline - now).count();
                const int t = static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
                timeout = timeout < 0 ? t : std::min(timeout, t);
            }
            lock.unlock();
            const int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), timeout);
            lock.lock();
            if (stopping_) break;
            for (int i = 0; i < n; ++i) {
                const int fd = events[static_cast<std::size_t>(i)].data.fd;
                const bool hangup = events[static_cast<std::size_t>(i)].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
                if (fd == wake_) {
                    std::uint64_t v;
                    (void)!::read(wake_, &v, sizeof v);
                } else if (waiting_.count(fd)) {
                    check(fd, hangup);
                }
            }
            const auto later = clock::now();
            std::vector<int> expired;
            for (const auto& [fd, w] : waiting_)
                if (w.deadline <= later) expired.push_back(fd);
            for (int fd : expired) {
                timed_out_.fetch_add(1, std::memory_order_relaxed);
                drop(fd, status_response("408 Request Timeout", "request not received in time\n"));
            }
        }
    }

    void worker_loop() {
        std::unique_lock lock(m_);
        for (;;) {
            cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
            if (stopping_) return;
            const auto [fd, accepted] = ready_.front();
            ready_.pop_front();
            lock.unlock();
            serving_since = accepted;
            served_.fetch_add(1, std::memory_order_relaxed);
            {
                fd_stream strm(fd, std::chrono::milliseconds(100), opt_.write_timeout);
                http_.serve(strm);
            }
            ::shutdown(fd, SHUT_RDWR);
            ::close(fd);
            lock.lock();
            --live_;
        }
    }

    const server_options& opt_;
    engine& http_;
    std::vector<char> peek_;            // reader thread only
    int ep_ = -1;
    int wake_ = -1;
    std::mutex m_;
    std::condition_variable cv_;
    struct waiting {
        clock::time_point deadline;
        clock::time_point accepted;
    };
    std::map<int, waiting> waiting_;
    std::deque<std::pair<int, clock::time_point>> ready_;   // fd, accept time
    std::size_t live_ = 0;
    bool stopping_ = false;
    bool stopped_ = false;
    std::thread reader_;
    std::vector<std::thread> workers_;
    std::atomic<std::uint64_t> accepted_{0}, served_{0}, refused_busy_{0}, timed_out_{0}, too_large_{0}, bad_request_{0};
};

// ---- server -------------------------------------------------------------------------------

server::server(server_options opt) : opt_(std::move(opt)), http_(std::make_unique<engine>()) {
    gate_ = std::make_unique<gate>(opt_, *http_);
    http_->set_payload_max_length(opt_.max_body_bytes);
    http_->set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"Cache-Control", "no-store"}});
    // A handler that throws is a bug: answer 500 without its message (which may hold details).
    http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content("internal error\n", "text/plain; charset=utf-8");
    });
}

server::~server() { stop(); }

void server::get(const std::string& pattern, handler h) { http_->Get(pattern, std::move(h)); }

bool server::start(std::string& error) {
    if (started_) return true;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const auto service = std::to_string(opt_.port);
    if (const int rc = ::getaddrinfo(opt_.host.empty() ? nullptr : opt_.host.c_str(), service.c_str(), &hints, &res); rc != 0) {
        error = "cannot resolve " + opt_.host + ": " + ::gai_strerror(rc);
        return false;
    }
    int fd = -1;
    int last_errno = 0;
    for (auto* a = res; a && fd < 0; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        const int on = 1, off = 0;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (a->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);   // "::" takes IPv4 too
        if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
            last_errno = errno;
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(res);
    if (fd < 0) {
        error = "cannot listen on " + opt_.host + " port " + service + ": " + std::strerror(last_errno);
        return false;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                             : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0 || !gate_->start(error)) {
        if (error.empty()) error = std::string("eventfd: ") + std::strerror(errno);
        ::close(fd);
        return false;
    }
    listen_fd_ = fd;
    listener_ = std::thread([this] { accept_loop(); });
    started_ = true;
    return true;
}

void server::accept_loop() {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    for (;;) {
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (p[1].revents) return;
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
            gate_->admit(fd);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));   // out of descriptors: let some close
        }
    }
}

void server::stop() {
    if (!started_) return;
    started_ = false;
    const std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    if (listener_.joinable()) listener_.join();
    ::close(listen_fd_);
    ::close(stop_fd_);
    listen_fd_ = stop_fd_ = -1;
    gate_->stop();
}

server_counters server::counters() const noexcept { return gate_->counters(); }

std::chrono::steady_clock::time_point request_arrival() noexcept {
    return serving_since == clock::time_point{} ? clock::now() : serving_since;
}

bool split_listen(const std::string& s, std::string& host, std::uint16_t& port, bool allow_port_0) {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    host = s.substr(0, colon);
    const auto p = s.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
    const auto v = std::stoul(p);
    if ((v == 0 && !allow_port_0) || v > 65535) return false;
    port = static_cast<std::uint16_t>(v);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string::npos) return false;  // IPv6 needs brackets
    if (host.empty()) host = "::";
    return true;
}

} // namespace btest_app::http

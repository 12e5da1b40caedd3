// A btest client session inside an event loop this program owns: plain epoll, one timerfd and
// stdin commands — no Asio, no threads. It shows every call an embedder makes:
//   feed bytes (feed), feed time (on_timer), drain outputs (poll_event, write_to), arm the one
//   timer (next_deadline).
// Usage: foreign_loop [HOST [PORT [SECONDS]]]   (a TCP test, server transmits)
// stdin: "s" stops the test (summary follows), "p" prints the totals so far.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <botan/system_rng.h>
#include <btest/btest.hpp>

using namespace btest;

namespace {

int connect_to(const char* host, std::uint16_t port, endpoint& server) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) return -1;
    const auto* b = reinterpret_cast<const std::uint8_t*>(&a.sin_addr);
    server = {ip_address::v4(b[0], b[1], b[2], b[3]), port};
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    return fd;
}

// Writes everything or fails: write_to()'s bytes must all go out before the next call.
bool write_all(int fd, const std::byte* p, std::size_t n) {
    while (n > 0) {
        const auto w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

void arm(int tfd, std::optional<time_point> deadline) {
    itimerspec its{};  // all zero: disarmed
    if (deadline) {
        const auto ns = deadline->time_since_epoch().count();  // steady_clock = CLOCK_MONOTONIC
        its.it_value.tv_sec = std::max<long>(0, static_cast<long>(ns / 1'000'000'000));
        its.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);
}

void print(const event& ev) {
    if (auto* r = std::get_if<interval_report>(&ev); r && r->rx.active)
        std::printf("%5.1fs  RX %8.2f Mbit/s\n", std::chrono::duration<double>(r->end).count(),
                    double(r->rx.bits_per_second) / 1e6);
    if (auto* c = std::get_if<session_closed>(&ev))
        std::printf("test ended: %s %s\n", to_string(c->reason), c->error ? c->error.message().c_str() : "");
}

} // namespace

int main(int argc, char** argv) {
    const char* host = argc > 1 ? argv[1] : "127.0.0.1";
    const auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 2000);
    client_config cfg;
    cfg.dir = direction::receive;
    cfg.test_duration = std::chrono::seconds(argc > 3 ? std::atoi(argv[3]) : 5);

    endpoint server;
    const int sock = connect_to(host, port, server);
    if (sock < 0) {
        std::fprintf(stderr, "cannot connect to %s:%u: %s\n", host, port, std::strerror(errno));
        return 2;
    }
    Botan::System_RNG system_rng;                  // a CSPRNG for EC-SRP5's secrets
    auth::botan_entropy rng(system_rng);
    client_services svc{rng};                      // all it borrows; a TCP test requests nothing
    client_session session(cfg, svc, server, clock::now());

    const int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    const int ep = epoll_create1(0);
    for (int fd : {sock, tfd, STDIN_FILENO}) {
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }

    std::vector<std::byte> buf(256 * 1024);
    while (!session.finished()) {
        // Outputs: events, then bytes (written in full), then the one timer.
        while (auto ev = session.poll_event()) print(*ev);
        while (const auto n = session.write_to(0, clock::now(), buf))
            if (!write_all(sock, buf.data(), n)) session.on_connection_closed(0, clock::now(), {});
        if (session.finished()) break;
        arm(tfd, session.next_deadline());

        epoll_event ready[3];
        const int k = epoll_wait(ep, ready, 3, -1);
        for (int i = 0; i < k; ++i) {
            const int fd = ready[i].data.fd;
            if (fd == sock) {                          // feed bytes
                const auto r = ::read(sock, buf.data(), buf.size());
                if (r > 0) session.feed(0, clock::now(), std::span(buf).first(static_cast<std::size_t>(r)));
                else session.on_connection_closed(0, clock::now(), {});
            } else if (fd == tfd) {                    // feed time
                std::uint64_t expirations;
                (void)::read(tfd, &expirations, sizeof expirations);
                session.on_timer(clock::now());
            } else {                                   // our own commands
                char cmd[64] = {};
                if (::read(STDIN_FILENO, cmd, sizeof cmd - 1) <= 0) cmd[0] = 's';
                if (cmd[0] == 's') session.stop(clock::now());
                if (cmd[0] == 'p') std::printf("received %llu bytes so far\n",
                                               static_cast<unsigned long long>(session.summary(clock::now()).rx.bytes));
            }
        }
    }
    while (auto ev = session.poll_event()) print(*ev);
    const auto s = session.summary();
    std::printf("summary: %llu bytes, %.2f Mbit/s average\n", static_cast<unsigned long long>(s.rx.bytes),
                double(s.rx.average_bps) / 1e6);
    close(sock);
    return s.error ? 2 : 0;
}

// Which way of moving a btest TCP stream through the kernel is cheapest here? One sender and
// one receiver over a real TCP connection, each way of sending against each way of receiving,
// printing Gbit/s and the CPU seconds per GB of each side (getrusage of its own thread), so
// that the data plane keeps what wins on this kernel (benchmarks/zerocopy/zc_probe.sh runs the
// matrix on loopback and over a veth pair between two network namespaces).
//
//   zc_probe recv PORT [copy|trunc] [SECONDS]          listen on PORT, count bytes
//   zc_probe send ADDR PORT METHOD [SECONDS] [CHUNK]   METHOD: copy | sendfile | splice |
//                                                      vmsplice | zerocopy
//   zc_probe local METHOD RECV [SECONDS]                both ends in this process, on 127.0.0.1
//                                                      (RECV also grid:S:K, see receive())
//
// Send methods (the content is zeros, as in a zero-fill btest stream):
//   copy      send() from a 256 KiB buffer (what every tester does)
//   sendfile  sendfile() from a memfd filled once (iperf3 -Z does this from a file)
//   splice    splice() from the memfd through a pipe into the socket
//   vmsplice  vmsplice() of the buffer's pages into a pipe, then splice() into the socket
//   zerocopy  send(MSG_ZEROCOPY) with the error queue drained for completions
// Receive: copy (recv() into 256 KiB) or trunc (recv(MSG_TRUNC): the kernel discards the
// bytes without copying them).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace {

constexpr std::size_t buf_size = 256 * 1024;
using steady = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
    std::perror(what);
    std::exit(2);
}

double thread_cpu() {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct result {
    std::uint64_t bytes = 0;
    double seconds = 0, cpu = 0;
    std::uint64_t calls = 0, copied_completions = 0;
};

void print(const char* who, const char* method, const result& r) {
    const double gb = double(r.bytes) / 1e9;
    std::printf("%-4s %-9s %8.2f Gbit/s  %6.3f CPU s/GB  %8.0f calls/s", who, method, gb * 8 / r.seconds,
                gb > 0 ? r.cpu / gb : 0.0, double(r.calls) / r.seconds);
    if (r.copied_completions) std::printf("  (%llu completions said: copied)", (unsigned long long)r.copied_completions);
    std::printf("\n");
    std::fflush(stdout);
}

int listen_on(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) die("bind");
    if (listen(s, 4) < 0) die("listen");
    return s;
}

int connect_to(const char* addr, int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) die("address");
    for (int i = 0; i < 100; ++i) {
        if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return s;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    die("connect");
}

// `grid` > 0: what a btest receiver does on a chunk grid of that many bytes per `span` chunks
// dropped: a 64-byte head read (copied), then the rest of the span dropped with MSG_TRUNC.
result receive(int s, bool trunc, std::size_t grid = 0, std::size_t span = 1) {
    std::vector<char> buf(buf_size);
    result r;
    const auto t0 = steady::now();
    const double c0 = thread_cpu();
    for (;;) {
        ssize_t n;
        if (grid) {
            n = recv(s, buf.data(), 64, MSG_WAITALL);
            if (n <= 0) break;
            r.bytes += std::uint64_t(n);
            ++r.calls;
            n = recv(s, nullptr, grid * span - 64, MSG_TRUNC | MSG_WAITALL);
        } else {
            n = recv(s, trunc ? nullptr : buf.data(), buf_size, trunc ? MSG_TRUNC : 0);
        }
        if (n <= 0) break;
        r.bytes += std::uint64_t(n);
        ++r.calls;
    }
    r.cpu = thread_cpu() - c0;
    r.seconds = std::chrono::duration<double>(steady::now() - t0).count();
    return r;
}

// Completions of MSG_ZEROCOPY sends: ranges of send calls whose pages the kernel released.
std::uint64_t drain_completions(int s, std::uint64_t& copied) {
    std::uint64_t done = 0;
    for (;;) {
        char control[128];
        msghdr m{};
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        if (recvmsg(s, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            auto* e = reinterpret_cast<sock_extended_err*>(CMSG_DATA(c));
            if (e->ee_origin != SO_EE_ORIGIN_ZEROCOPY) continue;
            done += std::uint64_t(e->ee_data - e->ee_info + 1);
            if (e->ee_code & SO_EE_CODE_ZEROCOPY_COPIED) ++copied;
        }
    }
    return done;
}

result send_for(int s, const std::string& method, double seconds, std::size_t chunk) {
    result r;
    auto* buf = static_cast<char*>(mmap(nullptr, buf_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    std::memset(buf, 0, buf_size);  // touched: real pages, not the shared zero page
    int memfd = memfd_create("btest-zeros", 0);
    if (ftruncate(memfd, off_t(buf_size)) < 0) die("ftruncate");
    if (write(memfd, buf, buf_size) != ssize_t(buf_size)) die("write memfd");
    int p[2];
    if (pipe(p) < 0) die("pipe");
    fcntl(p[1], F_SETPIPE_SZ, int(buf_size));
    if (method == "zerocopy") {
        int one = 1;
        if (setsockopt(s, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) < 0) die("SO_ZEROCOPY");
    }
    std::uint64_t outstanding = 0, sends = 0;
    const auto t0 = steady::now();
    const auto end = t0 + std::chrono::duration<double>(seconds);
    const double c0 = thread_cpu();
    std::size_t in_pipe = 0;
    while (steady::now() < end) {
        for (int i = 0; i < 64; ++i) {
            ssize_t n = -1;
            if (method == "copy") {
                n = send(s, buf, chunk, 0);
            } else if (method == "sendfile") {
                off_t off = 0;
                n = sendfile(s, memfd, &off, chunk);
            } else if (method == "splice") {
                if (in_pipe == 0) {
                    loff_t off = 0;
                    const ssize_t k = splice(memfd, &off, p[1], nullptr, chunk, SPLICE_F_MOVE);
                    if (k <= 0) die("splice in");
                    in_pipe = std::size_t(k);
                    ++r.calls;
                }
                n = splice(p[0], nullptr, s, nullptr, in_pipe, SPLICE_F_MOVE | SPLICE_F_MORE);
                if (n > 0) in_pipe -= std::size_t(n);
            } else if (method == "vmsplice") {
                if (in_pipe == 0) {
                    iovec v{buf, chunk};
                    const ssize_t k = vmsplice(p[1], &v, 1, 0);
                    if (k <= 0) die("vmsplice");
                    in_pipe = std::size_t(k);
                    ++r.calls;
                }
                n = splice(p[0], nullptr, s, nullptr, in_pipe, SPLICE_F_MOVE | SPLICE_F_MORE);
                if (n > 0) in_pipe -= std::size_t(n);
            } else if (method == "zerocopy") {
                // The buffer is never written again, so pages in flight need no guarding; the
                // completions are still drained so the error queue (and its memory) stays small.
                n = send(s, buf, chunk, MSG_ZEROCOPY);
                if (n > 0) ++outstanding, ++sends;
                if (outstanding > 256) {
                    pollfd pf{s, 0, 0};
                    poll(&pf, 1, 1);
                    outstanding -= std::min(outstanding, drain_completions(s, r.copied_completions));
                }
            } else {
                std::fprintf(stderr, "unknown method %s\n", method.c_str());
                std::exit(2);
            }
            if (n <= 0) die(method.c_str());
            r.bytes += std::uint64_t(n);
            ++r.calls;
        }
    }
    shutdown(s, SHUT_WR);
    if (method == "zerocopy") {
        for (int i = 0; i < 100 && outstanding; ++i) {
            pollfd pf{s, 0, 0};
            poll(&pf, 1, 10);
            outstanding -= std::min(outstanding, drain_completions(s, r.copied_completions));
        }
    }
    r.cpu = thread_cpu() - c0;
    r.seconds = std::chrono::duration<double>(steady::now() - t0).count();
    close(memfd);
    close(p[0]);
    close(p[1]);
    munmap(buf, buf_size);
    return r;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: zc_probe recv PORT [copy|trunc] | send ADDR PORT METHOD [SECONDS] [CHUNK] | local METHOD RECV [SECONDS]\n");
        return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "recv") {
        const int l = listen_on(std::atoi(argv[2]));
        const bool trunc = argc > 3 && std::string(argv[3]) == "trunc";
        const int s = accept(l, nullptr, nullptr);
        print("recv", trunc ? "trunc" : "copy", receive(s, trunc));
        return 0;
    }
    if (cmd == "send" && argc >= 5) {
        const int s = connect_to(argv[2], std::atoi(argv[3]));
        const double secs = argc > 5 ? std::atof(argv[5]) : 5;
        const std::size_t chunk = argc > 6 ? std::size_t(std::atol(argv[6])) : buf_size;
        print("send", argv[4], send_for(s, argv[4], secs, std::min(chunk, buf_size)));
        close(s);
        return 0;
    }
    if (cmd == "local" && argc >= 4) {
        const int l = listen_on(0);
        sockaddr_in a{};
        socklen_t len = sizeof a;
        getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
        const std::string recv_mode = argv[3];
        // grid:S:K — a head read and a drop per K chunks of S bytes
        std::size_t grid = 0, span = 1;
        if (recv_mode.rfind("grid:", 0) == 0) std::sscanf(recv_mode.c_str(), "grid:%zu:%zu", &grid, &span);
        result rr;
        std::thread rx([&] {
            const int s = accept(l, nullptr, nullptr);
            rr = receive(s, recv_mode == "trunc", grid, span);
            close(s);
        });
        const int s = connect_to("127.0.0.1", ntohs(a.sin_port));
        const result sr = send_for(s, argv[2], argc > 4 ? std::atof(argv[4]) : 5, buf_size);
        close(s);
        rx.join();
        print("send", argv[2], sr);
        print("recv", recv_mode.c_str(), rr);
        return 0;
    }
    std::fprintf(stderr, "bad arguments\n");
    return 2;
}

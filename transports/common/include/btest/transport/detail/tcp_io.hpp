// The TCP data plane's ways past the copy (DESIGN "Data plane"): zero-filled chunk payload
// leaves by sendfile() from a memory file of zeros, which the kernel sends by reference; chunk
// payload a receiver does not need to see is dropped with recv(MSG_TRUNC). The session decides
// which bytes those are (session::write_parts, session::plan_read); this only moves them.
//
// Measured with benchmarks/zerocopy/zc_probe.sh: on loopback, towards a receiver dropping with
// MSG_TRUNC, sendfile from a memfd beat send() copies, splice() through a pipe, vmsplice() and
// MSG_ZEROCOPY (31 against 23, 14, 15 and 27 Gbit/s; the kernel copies MSG_ZEROCOPY pages for a
// local receiver and its completions cost on top, so it is not used); over a veth pair no
// method beat copying clearly (13-16 Gbit/s each). In whole tests (benchmarks/loopback.sh)
// sendfile won towards this host's own addresses (1.25-1.3x our copying sender) and lost over
// the veth pair (0.5-0.6x), so by default it is used only towards a peer on this host
// (peer_is_local).
#pragma once

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

namespace btest::transport::detail {

/// TCP send: zero bytes per sendfile() call at most (the size of the file of zeros), and what
/// a session may hand out as zeros per write_parts() call (bounds how long a due STATUS waits
/// behind them, as the literal write buffer does).
inline constexpr std::size_t zero_file_size = 1024 * 1024;
inline constexpr std::size_t zero_room = 512 * 1024;
/// TCP receive: a chunk rest is dropped only from this size on (below, a copy costs less than
/// the extra system call); one drop takes at most this much (whole chunks of a stream that
/// carries no STATUS: session::plan_read).
inline constexpr std::size_t min_discard = 8 * 1024;
inline constexpr std::size_t max_discard = 1024 * 1024;

/// True when `local` and `peer` (a connected socket's two ends) are on one host: the peer is a
/// loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) or the very address of our end
/// (a connection to one of this host's own addresses, which the kernel also routes over lo).
/// A connection between two different addresses of this host counts as remote.
inline bool is_local_pair(const sockaddr_storage& local, const sockaddr_storage& peer) noexcept {
    if (peer.ss_family == AF_INET) {
        const auto& p = reinterpret_cast<const sockaddr_in&>(peer);
        if ((ntohl(p.sin_addr.s_addr) >> 24) == 127) return true;
        return local.ss_family == AF_INET &&
               reinterpret_cast<const sockaddr_in&>(local).sin_addr.s_addr == p.sin_addr.s_addr;
    }
    if (peer.ss_family == AF_INET6) {
        const auto& p = reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&p)) return true;
        if (IN6_IS_ADDR_V4MAPPED(&p) && p.s6_addr[12] == 127) return true;
        return local.ss_family == AF_INET6 &&
               IN6_ARE_ADDR_EQUAL(&reinterpret_cast<const sockaddr_in6&>(local).sin6_addr, &p);
    }
    return false;
}

/// is_local_pair() for connected socket `fd`; false when either end cannot be read.
inline bool peer_is_local(int fd) noexcept {
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) return false;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) return false;
    return is_local_pair(local, peer);
}

/// A block of zeros for send() where sendfile() is not available.
inline const std::byte* zero_block() noexcept {
    alignas(64) static const std::byte block[64 * 1024] = {};
    return block;
}
inline constexpr std::size_t zero_block_size = 64 * 1024;

/// The process's file of zeros: a memfd of zero_file_size bytes, its pages filled once (so
/// every sendfile() finds them in memory), shared by every connection and thread; -1 where
/// memfd_create() is not available. Never closed (it lives as long as the process).
inline int zero_file() noexcept {
    static const int fd = [] {
        const int f = ::memfd_create("btest-zeros", MFD_CLOEXEC);
        if (f < 0) return -1;
        for (std::size_t at = 0; at < zero_file_size;) {
            const ssize_t n = ::pwrite(f, zero_block(), zero_block_size, static_cast<off_t>(at));
            if (n <= 0) {
                ::close(f);
                return -1;
            }
            at += static_cast<std::size_t>(n);
        }
        return f;
    }();
    return fd;
}

/// sendfile() has no MSG_NOSIGNAL: towards a peer that reset the connection it raises SIGPIPE
/// — also when it returns a short count, having hit the reset part way — which kills a process
/// that did not ignore it (an embedder, btest-server-pro). While this lives SIGPIPE is blocked
/// for the calling thread (the kernel sends it to the thread that made the call); one raised
/// meanwhile is taken back before the old mask returns, unless the thread had blocked SIGPIPE
/// itself (then it stays pending, as after a send() without MSG_NOSIGNAL).
class sigpipe_blocked {
public:
    sigpipe_blocked() noexcept {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        ok_ = ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
    }
    ~sigpipe_blocked() {
        if (!ok_) return;
        const int saved = errno;
        if (!sigismember(&old_, SIGPIPE)) {
            const timespec none{0, 0};
            while (::sigtimedwait(&pipe_, nullptr, &none) < 0 && errno == EINTR) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
        errno = saved;
    }
    sigpipe_blocked(const sigpipe_blocked&) = delete;
    sigpipe_blocked& operator=(const sigpipe_blocked&) = delete;

private:
    sigset_t pipe_{};
    sigset_t old_{};
    bool ok_ = false;
};

/// sendfile() of up to `n` zeros from the file of zeros to `sock`: bytes sent, or -1 with errno.
/// Never raises SIGPIPE.
inline ssize_t send_zeros_by_reference(int sock, std::size_t n) noexcept {
    const int f = zero_file();
    if (f < 0) {
        errno = ENOSYS;
        return -1;
    }
    off_t off = 0;
    const sigpipe_blocked quiet;
    return ::sendfile(sock, f, &off, n < zero_file_size ? n : zero_file_size);
}

/// True for a sendfile() error that means "not here" (copy instead), not a broken connection.
inline bool zerocopy_unsupported(int e) noexcept {
    return e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == ENOTSUP || e == EBADF || e == ESPIPE ||
           e == EOVERFLOW;
}

} // namespace btest::transport::detail

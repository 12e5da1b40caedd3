// Services a session borrows from its embedder. Like entropy, they are called synchronously
// from inside feed()/on_timer() and must not call back into the session.
#pragma once

#include <cstdint>
#include <optional>

namespace btest {

/// Server side of PROTOCOL §8.1: finds, reserves and BINDS a block of `count` consecutive
/// ports P … P+count−1 (only P is bound; the rest keep concurrent clients' ports from
/// colliding), with P + 256 + count − 1 ≤ 65535. nullopt: nothing free or the bind failed —
/// the session then closes without an OK word. The session calls release() exactly once for
/// every block it got, on every exit path.
class udp_port_pool {
public:
    virtual ~udp_port_pool() = default;
    virtual std::optional<std::uint16_t> acquire(std::uint16_t count) = 0;
    virtual void release(std::uint16_t first) = 0;
};

/// Client side of PROTOCOL §8.2: binds `count` local UDP sockets on ports first … first+count−1
/// (first = P + 256), sending to the server's port `server_port`. false: a bind failed — the
/// session ends with port_unavailable. unbind() is called exactly once after a successful
/// bind, on every exit path.
class udp_binder {
public:
    virtual ~udp_binder() = default;
    virtual bool bind(std::uint16_t first, std::uint16_t count, std::uint16_t server_port) = 0;
    virtual void unbind() = 0;
};

} // namespace btest

// What a session needs from outside and cannot do itself (STYLE §13): it says so as a request,
// carries on, and the transport answers through the session's matching input. Drain with
// poll_request() after every call, as with poll_event(); nothing is called back from inside
// the session. Until it is answered, a request holds the handshake where it is (T_hs still
// runs, so a transport that never answers ends the session with handshake_timeout).
#pragma once

#include <cstdint>
#include <string>
#include <variant>

namespace btest {

/// Server, PROTOCOL §8.1: find, reserve and bind a block of `count` consecutive UDP ports
/// P … P+count−1 (only P is bound, on the control connection's local address; the rest keep
/// concurrent clients' ports from colliding), with P + 256 + count − 1 ≤ 65535. Answer with
/// server_session::udp_port_ready(). The transport owns what it bound and releases it when the
/// session is finished.
struct udp_port_request {
    std::uint16_t count = 1;
};

/// Client, PROTOCOL §8.2: bind `count` local UDP sockets on ports first … first+count−1 (on the
/// control connection's local address), sending to the server's port `server_port`. Answer
/// with client_session::udp_bound(); the transport closes them when the session is finished.
struct udp_bind_request {
    std::uint16_t first = 0;
    std::uint16_t count = 1;
    std::uint16_t server_port = 0;
};

/// Server, with server_config::ask_admission: the client authenticated as `user` (empty
/// without auth) and asks for the test of server_session::command(). Answer with
/// server_session::admit() (and the test's byte budget) or server_session::refuse(). Nothing
/// has been sent since the authentication result was decided: no OK word yet.
struct admission_request {
    std::string user;
};

/// The byte budget granted by admit() runs low (below its refill mark): answer with
/// add_budget(), now or later. One request per refill; the session keeps spending what it has.
struct budget_request {};

using request = std::variant<admission_request, udp_port_request, udp_bind_request, budget_request>;

} // namespace btest

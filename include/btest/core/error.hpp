// btestkit error codes: one closed set for decoders, auth and sessions.
//
// Every malformed input a decoder can see has its own code (so a fuzzer or a log line can tell
// them apart), and every way a session can end badly maps to one of the codes of
// spec/PROTOCOL.md §13.16. Normal ends of a test (duration reached, local stop) are not errors;
// see btest::end_reason in session/event.hpp.
#pragma once

#include <string>
#include <system_error>

namespace btest {

enum class errc {
    // --- decoders (wire/) -------------------------------------------------------------------
    truncated = 1,            ///< the span is shorter than the message
    bad_hello,                ///< HELLO is not exactly 01 00 00 00
    bad_command_proto,        ///< COMMAND byte 0 not 00/01
    bad_command_direction,    ///< COMMAND byte 1 not 01/02/03
    bad_auth_word,            ///< a 4-byte word that is none of §2.3 in its position
    bad_status_type,          ///< STATUS byte 0 is not 07
    bad_frame_length,         ///< EC-SRP5 frame length wrong for its message
    bad_username,             ///< EC-SRP5 MSG1 username malformed (no NUL, too long)
    bad_parity,               ///< point parity byte not 00/01
    bad_point,                ///< point u ≥ p, not liftable, of small order, or identity
    frame_too_large,          ///< a buffered frame would exceed its bound

    // --- sessions (PROTOCOL §13.16) ----------------------------------------------------------
    invalid_command,          ///< server: COMMAND rejected
    protocol_error,           ///< unexpected bytes in a state
    not_a_btest_server,       ///< client: first 4 bytes are not HELLO
    auth_required,            ///< client: server asks for auth and no credentials are set
    auth_failed,              ///< wrong user or password, proof mismatch
    auth_unsupported_method,  ///< auth method not supported by this side
    bad_server_key,           ///< client: EC-SRP5 server key does not decode
    handshake_timeout,        ///< T_hs expired
    peer_silent,              ///< T_idle expired during the test
    peer_closed,              ///< the peer closed or reset a connection
    port_unavailable,         ///< no UDP port block could be bound
    multi_connection_refused, ///< client: server gave no token (notice; the test continues)
    resource_limit,           ///< a server limit refused the connection
    max_duration,             ///< T_max expired
    transport_error,          ///< the transport reported a write/read error
    quota_exhausted,          ///< server: the test was refused because a byte quota is spent
    quota_unavailable,        ///< server: the quota store cannot be reached
    address_denied,           ///< server: the peer's address is not allowed
    test_refused,             ///< client: the server closed after a proven login (a limit or quota)
};

namespace detail {
class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "btest"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::truncated: return "message truncated";
        case errc::bad_hello: return "bad hello";
        case errc::bad_command_proto: return "bad command: unknown protocol";
        case errc::bad_command_direction: return "bad command: unknown direction";
        case errc::bad_auth_word: return "bad authentication word";
        case errc::bad_status_type: return "bad status message type";
        case errc::bad_frame_length: return "bad frame length";
        case errc::bad_username: return "bad username field";
        case errc::bad_parity: return "bad point parity byte";
        case errc::bad_point: return "bad curve point";
        case errc::frame_too_large: return "frame too large";
        case errc::invalid_command: return "invalid command";
        case errc::protocol_error: return "protocol error";
        case errc::not_a_btest_server: return "not a btest server";
        case errc::auth_required: return "server requires authentication";
        case errc::auth_failed: return "authentication failed: wrong user or password";
        case errc::auth_unsupported_method: return "unsupported authentication method";
        case errc::bad_server_key: return "authentication failed: bad server key";
        case errc::handshake_timeout: return "handshake timeout";
        case errc::peer_silent: return "peer silent";
        case errc::peer_closed: return "connection closed by peer";
        case errc::port_unavailable: return "no UDP port available";
        case errc::multi_connection_refused: return "server refused multi-connection; using 1";
        case errc::resource_limit: return "server resource limit reached";
        case errc::max_duration: return "maximum duration reached";
        case errc::transport_error: return "transport error";
        case errc::quota_exhausted: return "quota exhausted";
        case errc::quota_unavailable: return "quota store unavailable";
        case errc::address_denied: return "address not allowed";
        case errc::test_refused: return "the server refused the test after the login (a server limit or a spent quota)";
        }
        return "unknown btest error";
    }
};
} // namespace detail

/// The "btest" error category: a function-local static of an immutable, stateless object, as
/// std::generic_category() is in the library. The kit keeps no mutable static state.
inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

} // namespace btest

template <>
struct std::is_error_code_enum<btest::errc> : std::true_type {};

// What a session is configured with: set once, before the session starts (the `_config`
// suffix). Timeouts default to PROTOCOL §12.3.
#pragma once

#include <cstdint>
#include <string>

#include "btest/core/time.hpp"
#include "btest/pacing/adaptation.hpp"
#include "btest/wire/command.hpp"

namespace btest {

struct timeouts {
    duration handshake = std::chrono::seconds(10);  ///< T_hs: each handshake wait
    duration join = std::chrono::seconds(10);       ///< T_join: multi-connection joining
    duration idle = std::chrono::seconds(10);       ///< T_idle: peer silent during the test
    duration max_test = duration::zero();           ///< T_max: whole test; 0 = off
    duration linger = std::chrono::seconds(2);      ///< flushing a final reply before closing
};

/// UDP sender behaviour shared by both roles (PROTOCOL §10.3).
struct udp_send_config {
    bool adapt = true;                 ///< follow the peer's STATUS (never above the cap)
    pacing::initial_rate initial{};    ///< before the first STATUS
    std::uint32_t burst_max = 64;      ///< BURST_MAX of §11
};

enum class auth_method : std::uint8_t { none, md5, ec_srp5 };

struct client_config {
    protocol proto = protocol::tcp;
    direction dir = direction::receive;
    std::uint32_t connection_count = 1;    ///< 1..255: TCP connections or UDP streams
    /// TCP: chunk size (0 → 32768). UDP: size of the datagrams the server sends, whole IP
    /// datagram (RouterOS remote-udp-tx-size).
    std::uint16_t tx_size = 0;
    /// UDP: size of the datagrams this client sends, whole IP datagram (local-udp-tx-size).
    std::uint16_t local_udp_tx_size = 1500;
    std::uint64_t remote_tx_speed = 0;     ///< server's cap, bit/s (0 = unlimited; > 2^32−1 is clamped on the wire)
    std::uint64_t local_tx_speed = 0;      ///< our own cap, bit/s (0 = unlimited)
    bool random_data = false;
    std::string user;                      ///< empty: no credentials
    std::string password;
    duration test_duration = duration::zero();  ///< 0: until stop()
    duration report_interval = std::chrono::seconds(1);
    bool nat_probe = false;                ///< one empty datagram per stream at start (§8.7)
    udp_send_config udp{};
    timeouts limits{};
};

struct server_config {
    auth_method auth = auth_method::none;
    std::uint32_t max_conn_count = 255;    ///< largest conn_count accepted (§13.3)
    duration report_interval = std::chrono::seconds(1);
    bool udp_single_destination = false;   ///< N streams: send only to P+256 (§8.6 option)
    bool udp_reply_to_source = false;      ///< send to the first datagram's source port (§8.7 option)
    std::uint64_t max_tx_rate = 0;         ///< server-side cap on what it sends, bit/s; 0 = none
    /// Ask the transport whether each authenticated test may start (an admission_request,
    /// answered with server_session::admit() and the test's byte budget, or refuse()).
    bool ask_admission = false;
    udp_send_config udp{};
    timeouts limits{};
};

} // namespace btest

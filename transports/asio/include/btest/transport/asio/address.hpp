// Translation between Asio's addresses and the kit's plain values (btest/core/address.hpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include <sys/socket.h>
#include <netinet/in.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include "btest/core/address.hpp"

namespace btest::asio {

namespace net = boost::asio;

inline ip_address to_kit(const net::ip::address& a) {
    if (a.is_v4()) {
        const auto b = a.to_v4().to_bytes();
        return ip_address::v4(b[0], b[1], b[2], b[3]);
    }
    const auto b = a.to_v6().to_bytes();
    std::array<std::uint8_t, 16> v{};
    std::memcpy(v.data(), b.data(), 16);
    return ip_address::v6(v);
}

template <class Endpoint>
endpoint to_kit(const Endpoint& ep) {
    return endpoint{to_kit(ep.address()), ep.port()};
}

inline net::ip::address to_asio(const ip_address& a) {
    if (a.family == ip_family::v4)
        return net::ip::address_v4(net::ip::address_v4::bytes_type{a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]});
    net::ip::address_v6::bytes_type b{};
    std::memcpy(b.data(), a.bytes.data(), 16);
    return net::ip::address_v6(b);
}

/// A received datagram's source, straight from the kernel's sockaddr.
inline endpoint to_kit(const sockaddr_storage& sa) {
    endpoint e;
    if (sa.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(sa);
        std::memcpy(e.address.bytes.data(), &in.sin_addr, 4);
        e.port = ntohs(in.sin_port);
    } else if (sa.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(sa);
        e.address.family = ip_family::v6;
        std::memcpy(e.address.bytes.data(), &in6.sin6_addr, 16);
        e.port = ntohs(in6.sin6_port);
    }
    return e;
}

/// "1.2.3.4:2000" / "[::1]:2000" for logs.
inline std::string to_string(const endpoint& e) {
    if (e.address.family == ip_family::v6) return "[" + e.address.to_string() + "]:" + std::to_string(e.port);
    return e.address.to_string() + ":" + std::to_string(e.port);
}

} // namespace btest::asio

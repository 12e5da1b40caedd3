// The two transports against each other over loopback: a POSIX client against an Asio server
// and an Asio client against a POSIX server (the server on its own thread), with the matrix's
// checks for TCP and UDP in both directions with MD5 and EC-SRP5, and multi-connection tests.
#include "behaviour.hpp"
#include "matrix.hpp"

using btest::auth_method;
using btest::direction;
using btest::protocol;
using loopback::asio_transport;
using loopback::posix_transport;

// "transport: cross posix client to asio server tcp both md5 ipv4"
#define BTEST_CROSS_CASE(C, S, P, D, A, F, SLOT)                                                                   \
    TEST_CASE("transport: cross " #C " client to " #S " server " #P " " #D " " #A " " #F, "[cross]") {            \
        matrix::run<S##_transport, C##_transport>(                                                                 \
            {protocol::P, direction::D, auth_method::A, std::string_view(#F) == "ipv6", SLOT});                    \
    }
#define BTEST_CROSS(C, S, SLOT)                                                                                    \
    BTEST_CROSS_CASE(C, S, tcp, both, md5, ipv4, SLOT)                                                             \
    BTEST_CROSS_CASE(C, S, tcp, both, ec_srp5, ipv6, SLOT + 1)                                                     \
    BTEST_CROSS_CASE(C, S, udp, both, ec_srp5, ipv4, SLOT + 2)                                                     \
    BTEST_CROSS_CASE(C, S, udp, both, md5, ipv6, SLOT + 3)                                                         \
    TEST_CASE("transport: cross " #C " client to " #S " server tcp with 8 connections both ways", "[cross][multi]") { \
        behaviour::multi<S##_transport, C##_transport>(SLOT + 4, true, false);                                     \
    }                                                                                                              \
    TEST_CASE("transport: cross " #C " client to " #S " server udp with 4 streams both ways", "[cross][multi]") {  \
        behaviour::multi<S##_transport, C##_transport>(SLOT + 5, false, true);                                     \
    }

BTEST_CROSS(posix, asio, 110)  // slots 110–115
BTEST_CROSS(asio, posix, 120)  // slots 120–125

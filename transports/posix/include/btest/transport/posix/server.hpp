// A btest server over plain POSIX sockets: the shared server (btest/transport/server.hpp) on an
// epoll event_loop. Listens on IPv4 and/or IPv6, routes each connection through the kit's
// front end, runs one session per test, applies the server limits; with
// server_options::threads = N it adds N − 1 io threads with loops of their own.
//
// Thread safety: call start()/stop() from the loop's thread (or before it runs); the accessors
// may be called from any thread.
#pragma once

#include "btest/transport/options.hpp"
#include "btest/transport/posix/event_loop.hpp"
#include "btest/transport/posix/reactor.hpp"
#include "btest/transport/server.hpp"
#include "btest/transport/socket.hpp"

namespace btest::posix {

class server : private detail::with_reactor, public transport::basic_server<reactor> {
public:
    /// `rng` must be a CSPRNG; `credentials` is required for md5/ec_srp5. All references must
    /// outlive the server.
    server(event_loop& loop, server_options opt, entropy& rng, const auth::credential_store* credentials,
           server_observer& observer)
        : with_reactor(loop), basic_server(reactor_, std::move(opt), rng, credentials, observer) {}
};

} // namespace btest::posix

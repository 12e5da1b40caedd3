// A btest server over Boost.Asio: the shared server (btest/transport/server.hpp) on an
// io_context. Listens on IPv4 and/or IPv6, routes each connection through the kit's front end,
// runs one session per test, applies the server limits; with server_options::threads = N it
// adds N − 1 io threads with io_contexts of their own.
//
// Thread safety: call start()/stop() from the io_context's thread (or before run()); the
// accessors may be called from any thread.
#pragma once

#include <boost/asio/io_context.hpp>

#include "btest/transport/asio/reactor.hpp"
#include "btest/transport/options.hpp"
#include "btest/transport/server.hpp"
#include "btest/transport/socket.hpp"

namespace btest::asio {

class server : private detail::with_reactor, public transport::basic_server<reactor> {
public:
    /// `rng` must be a CSPRNG; `credentials` is required for md5/ec_srp5. All references must
    /// outlive the server.
    server(net::io_context& ioc, server_options opt, entropy& rng, const auth::credential_store* credentials,
           server_observer& observer)
        : with_reactor(ioc), basic_server(reactor_, std::move(opt), rng, credentials, observer) {}
};

} // namespace btest::asio

// A btest client over Boost.Asio: the shared client (btest/transport/client.hpp) on an
// io_context. Resolves and connects, runs one client_session, opens the extra connections of a
// multi-connection TCP test and binds the UDP sockets when the session asks.
//
// Thread safety: everything runs on the io_context's thread; call start()/stop() from it (or
// before run()).
#pragma once

#include <boost/asio/io_context.hpp>

#include "btest/transport/asio/reactor.hpp"
#include "btest/transport/client.hpp"
#include "btest/transport/options.hpp"
#include "btest/transport/socket.hpp"

namespace btest::asio {

class client : private detail::with_reactor, public transport::basic_client<reactor> {
public:
    /// `rng`: a CSPRNG (EC-SRP5). All references must outlive the client.
    client(net::io_context& ioc, client_options opt, entropy& rng, client_observer& observer)
        : with_reactor(ioc), basic_client(reactor_, std::move(opt), rng, observer) {}
};

} // namespace btest::asio

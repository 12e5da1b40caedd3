#include "probe/target.hpp"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include <netdb.h>
#include <sys/socket.h>

namespace btest_probe {

namespace {

std::string printable(std::string_view s) {
    std::string out;
    for (const char c : s.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (s.size() > 80) out += "...";
    return out;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    const auto v = std::stoul(std::string(s));
    if (v == 0 || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

std::optional<address> parse_ip(std::string_view s, bool v6) {
    if (s.find('%') != std::string_view::npos) return std::nullopt;   // no zone ids
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(std::string(s), ec);
    if (ec || a.is_v6() != v6) return std::nullopt;
    return a;
}

} // namespace

bool valid_hostname(std::string_view s) {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    if (s.empty() || s.size() > 253) return false;
    std::string_view last;
    while (!s.empty()) {
        const auto dot = s.find('.');
        const auto label = s.substr(0, dot);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (const char c : label)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
        last = label;
        if (dot == std::string_view::npos) break;
        s.remove_prefix(dot + 1);
        if (s.empty()) return false;   // ".." or a trailing dot inside
    }
    return last.find_first_not_of("0123456789") != std::string_view::npos &&
           !(last.size() > 2 && (last[0] == '0') && (last[1] == 'x' || last[1] == 'X'));
}

std::string normalize_host(std::string_view s) {
    std::string out(s);
    if (!out.empty() && out.back() == '.') out.pop_back();
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::optional<target> parse_target(std::string_view s, std::string& error) {
    const std::string shown = "'" + printable(s) + "'";
    if (s.empty()) {
        error = "target is empty";
        return std::nullopt;
    }
    if (s.size() > 262) {
        error = "target is too long";
        return std::nullopt;
    }
    target t;
    std::string_view host = s;
    std::optional<std::string_view> port;
    if (s.front() == '[') {
        const auto close = s.find(']');
        if (close == std::string_view::npos) {
            error = "target " + shown + ": '[' without ']' (use [IPv6] or [IPv6]:PORT)";
            return std::nullopt;
        }
        host = s.substr(1, close - 1);
        const auto rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                error = "target " + shown + ": expected ':PORT' after ']'";
                return std::nullopt;
            }
            port = rest.substr(1);
        }
        t.literal = parse_ip(host, true);
        if (!t.literal) {
            error = "target " + shown + ": not an IPv6 address inside [ ]";
            return std::nullopt;
        }
    } else if (std::count(s.begin(), s.end(), ':') >= 2) {
        t.literal = parse_ip(s, true);   // a bare IPv6 address; a port needs the brackets
        if (!t.literal) {
            error = "target " + shown + ": not an IPv6 address (write [IPv6]:PORT for a port)";
            return std::nullopt;
        }
    } else {
        if (const auto colon = s.find(':'); colon != std::string_view::npos) {
            host = s.substr(0, colon);
            port = s.substr(colon + 1);
        }
        if (host.find_first_not_of("0123456789.") == std::string_view::npos) {
            t.literal = parse_ip(host, false);
            if (!t.literal) {
                error = "target " + shown + ": not a valid IPv4 address";
                return std::nullopt;
            }
        } else if (!valid_hostname(host)) {
            error = "target " + shown + ": not a valid host name or address";
            return std::nullopt;
        }
    }
    if (port) {
        const auto p = parse_port(*port);
        if (!p) {
            error = "target " + shown + ": port must be 1..65535";
            return std::nullopt;
        }
        t.port = *p;
    }
    if (t.literal) {
        t.literal = normalize(*t.literal);
        t.host = t.literal->to_string();
    } else {
        t.host = normalize_host(host);
    }
    return t;
}

address normalize(const address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
    return a;
}

address masked(const address& a, unsigned prefix) {
    auto mask_bytes = [prefix](auto bytes) {
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            const unsigned bit = static_cast<unsigned>(i) * 8;
            if (bit >= prefix) bytes[i] = 0;
            else if (prefix - bit < 8) bytes[i] = static_cast<unsigned char>(bytes[i] & (0xff << (8 - (prefix - bit))));
        }
        return bytes;
    };
    if (a.is_v4()) return boost::asio::ip::address_v4(mask_bytes(a.to_v4().to_bytes()));
    return boost::asio::ip::address_v6(mask_bytes(a.to_v6().to_bytes()));
}

bool in_network(const address& a, const address& net, unsigned prefix) {
    const auto x = normalize(a);
    const auto n = normalize(net);
    if (x.is_v4() != n.is_v4()) return false;
    return masked(x, prefix) == masked(n, prefix);
}

bool address_allowed(const std::vector<allow_entry>& allow, const address& a) {
    return std::any_of(allow.begin(), allow.end(), [&](const allow_entry& e) { return e.network && in_network(a, *e.network, e.prefix); });
}

bool host_listed(const std::vector<allow_entry>& allow, std::string_view host) {
    const auto h = normalize_host(host);
    return std::any_of(allow.begin(), allow.end(), [&](const allow_entry& e) { return !e.host.empty() && e.host == h; });
}

resolution resolve(const std::string& host, std::chrono::milliseconds timeout) {
    // Shared with the helper thread, which may outlive this call.
    struct state {
        std::mutex m;
        std::condition_variable cv;
        bool done = false;
        resolution r;
    };
    auto st = std::make_shared<state>();
    std::thread([st, host] {
        resolution r;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0) {
            r.error = ::gai_strerror(rc);
        } else {
            for (auto* p = res; p; p = p->ai_next) {
                address a;
                if (p->ai_family == AF_INET) {
                    const auto* sin = reinterpret_cast<const sockaddr_in*>(p->ai_addr);
                    boost::asio::ip::address_v4::bytes_type b;
                    std::memcpy(b.data(), &sin->sin_addr, 4);
                    a = boost::asio::ip::address_v4(b);
                } else if (p->ai_family == AF_INET6) {
                    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(p->ai_addr);
                    boost::asio::ip::address_v6::bytes_type b;
                    std::memcpy(b.data(), &sin6->sin6_addr, 16);
                    a = boost::asio::ip::address_v6(b, sin6->sin6_scope_id);
                } else {
                    continue;
                }
                a = normalize(a);
                if (std::find(r.addresses.begin(), r.addresses.end(), a) == r.addresses.end()) r.addresses.push_back(a);
            }
            ::freeaddrinfo(res);
            if (r.addresses.empty()) r.error = "no IPv4 or IPv6 address";
        }
        std::lock_guard lock(st->m);
        st->r = std::move(r);
        st->done = true;
        st->cv.notify_all();
    }).detach();
    std::unique_lock lock(st->m);
    if (!st->cv.wait_for(lock, timeout, [&] { return st->done; })) {
        resolution r;
        r.timed_out = true;
        r.error = "name resolution timed out";
        return r;
    }
    return st->r;
}

} // namespace btest_probe

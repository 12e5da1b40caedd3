// Output formats of the btest CLI: JSON lines, CSV rows, syslog messages and hex dumps. Field
// names are part of the CLI's interface (README "Output formats"); keep them stable.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include <fmt/format.h>

#include "btest/core/error.hpp"
#include "btest/session/event.hpp"
#include "btest/wire/command.hpp"

namespace btest_cli {

namespace net = boost::asio;

// ---- names -------------------------------------------------------------------------------

inline const char* name(btest::protocol p) { return p == btest::protocol::udp ? "udp" : "tcp"; }
inline const char* name(btest::direction d) {
    switch (d) {
    case btest::direction::transmit: return "transmit";
    case btest::direction::receive: return "receive";
    case btest::direction::both: return "both";
    }
    return "?";
}

/// Stable machine names of the kit's error codes (JSON `error_code`).
inline const char* error_name(const std::error_code& ec) {
    if (!ec) return "";
    if (ec.category() != btest::error_category()) return "system";
    switch (static_cast<btest::errc>(ec.value())) {
    case btest::errc::invalid_command: return "invalid_command";
    case btest::errc::protocol_error: return "protocol_error";
    case btest::errc::not_a_btest_server: return "not_a_btest_server";
    case btest::errc::auth_required: return "auth_required";
    case btest::errc::auth_failed: return "auth_failed";
    case btest::errc::auth_unsupported_method: return "auth_unsupported_method";
    case btest::errc::bad_server_key: return "bad_server_key";
    case btest::errc::handshake_timeout: return "handshake_timeout";
    case btest::errc::peer_silent: return "peer_silent";
    case btest::errc::peer_closed: return "peer_closed";
    case btest::errc::port_unavailable: return "port_unavailable";
    case btest::errc::multi_connection_refused: return "multi_connection_refused";
    case btest::errc::resource_limit: return "resource_limit";
    case btest::errc::max_duration: return "max_duration";
    case btest::errc::transport_error: return "transport_error";
    case btest::errc::test_refused: return "test_refused";
    default: return "protocol_error";
    }
}

inline double seconds(btest::duration d) { return std::chrono::duration<double>(d).count(); }
inline double mbit(std::uint64_t bps) { return double(bps) / 1e6; }
inline double mbytes(std::uint64_t bytes) { return double(bytes) / 1e6; }

/// "2024-05-01T12:34:56.789Z"
inline std::string utc_timestamp() {
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
}

// ---- JSON ----------------------------------------------------------------------------------

/// One JSON object on one line, fields in insertion order.
class json_line {
public:
    json_line& str(std::string_view k, std::string_view v) {
        key(k);
        quote(v);
        return *this;
    }
    json_line& num(std::string_view k, std::uint64_t v) {
        key(k);
        s_ += std::to_string(v);
        return *this;
    }
    json_line& num(std::string_view k, double v) {
        key(k);
        s_ += fmt::format("{:.3f}", v);
        return *this;
    }
    template <class T>
    json_line& opt(std::string_view k, const std::optional<T>& v) {
        if (v) return num(k, static_cast<std::uint64_t>(*v));
        key(k);
        s_ += "null";
        return *this;
    }
    json_line& opt_str(std::string_view k, std::string_view v) {
        if (!v.empty()) return str(k, v);
        key(k);
        s_ += "null";
        return *this;
    }
    json_line& boolean(std::string_view k, bool v) {
        key(k);
        s_ += v ? "true" : "false";
        return *this;
    }
    std::string done() const { return s_ + "}"; }

private:
    void key(std::string_view k) {
        s_ += s_.size() > 1 ? "," : "";
        quote(k);
        s_ += ':';
    }
    void quote(std::string_view v) {
        s_ += '"';
        for (unsigned char c : v) {
            switch (c) {
            case '"': s_ += "\\\""; break;
            case '\\': s_ += "\\\\"; break;
            case '\n': s_ += "\\n"; break;
            case '\r': s_ += "\\r"; break;
            case '\t': s_ += "\\t"; break;
            default:
                if (c < 0x20) {
                    s_ += fmt::format("\\u{:04x}", c);
                } else {
                    s_ += static_cast<char>(c);
                }
            }
        }
        s_ += '"';
    }
    std::string s_ = "{";
};

// ---- CSV -----------------------------------------------------------------------------------

/// One CSV row: the columns of csv_file::header, in that order.
struct csv_row {
    /// The last five columns, filled on summary rows only.
    struct test_columns {
        std::string_view protocol;
        std::string_view test_direction;
        std::uint32_t connections = 0;
        double duration_s = 0;
        std::string_view ended_by;
    };
    std::string_view role;
    std::uint64_t session = 0;  ///< 0: no session column (client)
    std::string_view peer;
    std::string_view type;       ///< interval | summary
    std::string_view direction;  ///< tx | rx
    double time_s = 0;
    std::uint64_t bits_per_second = 0;
    std::uint64_t bytes = 0;
    std::uint64_t packets = 0;
    std::optional<std::uint64_t> lost_packets;  ///< UDP receive rows only (empty otherwise)
    double jitter_ms = 0;
    std::optional<std::uint8_t> local_cpu;
    std::optional<std::uint8_t> remote_cpu;
    std::optional<test_columns> test;
};

/// Appends rows to a CSV file; the header goes in once, when the file is empty.
class csv_file {
public:
    static constexpr const char* header =
        "timestamp,role,session,peer,type,direction,time_s,bits_per_second,bytes,packets,lost_packets,"
        "jitter_ms,local_cpu,remote_cpu,protocol,test_direction,connections,duration_s,ended_by";

    bool open(const std::string& path, std::string& err) {
        f_ = std::fopen(path.c_str(), "a");
        if (!f_) {
            err = std::error_code(errno, std::generic_category()).message();
            return false;
        }
        std::fseek(f_, 0, SEEK_END);
        if (std::ftell(f_) == 0) line(header);
        return true;
    }
    ~csv_file() {
        if (f_) std::fclose(f_);
    }
    bool is_open() const { return f_ != nullptr; }
    void write(const csv_row& r) {
        auto opt = [](const auto& v) { return v ? std::to_string(*v) : std::string(); };
        std::string l = fmt::format("{},{},{},{},{},{},{:.3f},{},{},{},{},{:.3f},{},{},", utc_timestamp(), r.role,
                                    r.session ? std::to_string(r.session) : "", field(r.peer), r.type, r.direction,
                                    r.time_s, r.bits_per_second, r.bytes, r.packets, opt(r.lost_packets), r.jitter_ms,
                                    opt(r.local_cpu), opt(r.remote_cpu));
        if (r.test)
            l += fmt::format("{},{},{},{:.3f},{}", r.test->protocol, r.test->test_direction, r.test->connections,
                             r.test->duration_s, r.test->ended_by);
        else
            l += ",,,,";
        line(l);
    }
    void line(const std::string& l) {
        if (!f_) return;
        std::fputs(l.c_str(), f_);
        std::fputc('\n', f_);
        std::fflush(f_);
    }
    static std::string field(std::string_view v) {
        if (v.find_first_of(",\"\n") == std::string_view::npos) return std::string(v);
        std::string s = "\"";
        for (char c : v) {
            if (c == '"') s += '"';
            s += c;
        }
        return s + "\"";
    }

private:
    std::FILE* f_ = nullptr;
};

// ---- syslog --------------------------------------------------------------------------------

/// RFC 5424 messages over UDP (facility daemon): test start, test end, auth success/failure.
class syslog_sender {
public:
    explicit syslog_sender(net::io_context& ioc) : sock_(ioc) {}

    /// "host:port", "[v6]:port" or "host" (port 514).
    bool open(const std::string& target, std::string& err) {
        std::string host = target, port = "514";
        if (!target.empty() && target.front() == '[') {
            const auto close = target.find(']');
            if (close == std::string::npos) return bad(err, target);
            host = target.substr(1, close - 1);
            if (close + 1 < target.size()) {
                if (target[close + 1] != ':') return bad(err, target);
                port = target.substr(close + 2);
            }
        } else if (auto c = target.rfind(':'); c != std::string::npos && target.find(':') == c) {
            host = target.substr(0, c);
            port = target.substr(c + 1);
        }
        boost::system::error_code ec;
        net::ip::udp::resolver r(sock_.get_executor());
        auto res = r.resolve(host, port, ec);
        if (ec || res.empty()) {
            err = "cannot resolve syslog target " + target + (ec ? ": " + ec.message() : "");
            return false;
        }
        to_ = res.begin()->endpoint();
        sock_.open(to_.protocol(), ec);
        if (ec) {
            err = ec.message();
            return false;
        }
        char h[256] = {};
        host_ = gethostname(h, sizeof h - 1) == 0 && h[0] ? h : "-";
        return true;
    }
    bool is_open() const { return sock_.is_open(); }

    /// severity: 6 info, 4 warning. msgid: test-start, test-end, auth-ok, auth-fail.
    void send(int severity, std::string_view msgid, std::string_view msg) {
        if (!sock_.is_open()) return;
        const int pri = 3 * 8 + severity;  // facility 3: daemon
        std::string line = "<" + std::to_string(pri) + ">1 " + utc_timestamp() + " " + host_ + " btest " +
                           std::to_string(::getpid()) + " " + std::string(msgid) + " - " + std::string(msg);
        boost::system::error_code ec;
        sock_.send_to(net::buffer(line), to_, 0, ec);  // best effort: a log must not stop a test
    }

private:
    static bool bad(std::string& err, const std::string& t) {
        err = "bad --syslog target '" + t + "' (HOST:PORT)";
        return false;
    }
    net::ip::udp::socket sock_;
    net::ip::udp::endpoint to_;
    std::string host_;
};

// ---- hex dump (-vv) ------------------------------------------------------------------------

inline std::string hex_dump(std::string_view prefix, std::span<const std::byte> b) {
    std::string out;
    for (std::size_t i = 0; i < b.size(); i += 16) {
        out += prefix;
        out += fmt::format("{:04x} ", i);
        for (std::size_t k = i; k < i + 16 && k < b.size(); ++k) out += fmt::format(" {:02x}", std::to_integer<unsigned>(b[k]));
        out += '\n';
    }
    return out;
}

} // namespace btest_cli

// result<T>: a value or a std::error_code. Peer input never throws; decoders and feeds return
// one of these (DESIGN.md, "Results are values").
#pragma once

#include <cassert>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "btest/core/error.hpp"

namespace btest {

template <class T>
class [[nodiscard]] result {
    static_assert(!std::is_same_v<T, std::error_code>, "result<error_code> is ambiguous");

public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
    result(std::error_code ec) : v_(std::in_place_index<1>, ec) { assert(ec); }  // NOLINT
    result(errc e) : result(make_error_code(e)) {}                                 // NOLINT

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { assert(has_value()); return *std::get_if<0>(&v_); }
    const T& value() const& { assert(has_value()); return *std::get_if<0>(&v_); }
    T&& value() && { assert(has_value()); return std::move(*std::get_if<0>(&v_)); }

    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    /// The error; an empty code when a value is held.
    std::error_code error() const noexcept {
        if (auto* ec = std::get_if<1>(&v_)) return *ec;
        return {};
    }

private:
    std::variant<T, std::error_code> v_;
};

} // namespace btest

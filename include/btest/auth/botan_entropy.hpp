// Adapter: a Botan RandomNumberGenerator as a btest::entropy. The kit never opens a random
// device itself; the embedder owns the generator (e.g. Botan::System_RNG) and lends it here.
#pragma once

#include <cstdint>
#include <span>

#include <botan/rng.h>

#include "btest/core/entropy.hpp"

namespace btest::auth {

class botan_entropy final : public entropy {
public:
    explicit botan_entropy(Botan::RandomNumberGenerator& rng) noexcept : rng_(rng) {}
    void fill(std::span<std::byte> out) override {
        rng_.randomize(reinterpret_cast<std::uint8_t*>(out.data()), out.size());
    }

private:
    Botan::RandomNumberGenerator& rng_;
};

} // namespace btest::auth

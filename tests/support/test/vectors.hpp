// The known-answer vectors of spec/vectors/, loaded from the JSON files.
#pragma once

#include <string>

#include "test/json.hpp"

namespace test {

inline std::string spec_path(const std::string& rel) { return std::string(BTEST_SPEC_DIR) + "/" + rel; }
inline const json::value& md5_vectors() {
    static const json::value v = json::parse_file(spec_path("vectors/md5.json"));
    return v;
}
inline const json::value& ecsrp5_vectors() {
    static const json::value v = json::parse_file(spec_path("vectors/ecsrp5.json"));
    return v;
}

} // namespace test

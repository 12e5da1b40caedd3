// Runs Prometheus's `promtool check metrics` on a text, when Debian's prometheus package is
// installed. Exit status 0: clean; 1: the text does not parse; 3: it parses, with lint remarks.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace promtool {

inline std::string path() {
    for (const char* p : {"/usr/bin/promtool", "/usr/local/bin/promtool"})
        if (::access(p, X_OK) == 0) return p;
    return {};
}

inline bool available() { return !path().empty(); }

struct result {
    int status = -1;
    std::string output;
    /// Lint remarks, one per line, without the parse errors.
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        std::istringstream in(output);
        for (std::string l; std::getline(in, l);)
            if (!l.empty()) out.push_back(l);
        return out;
    }
};

inline result check(const std::string& text) {
    char in_name[] = "/tmp/btest-promtool-in-XXXXXX";
    const int fd = ::mkstemp(in_name);
    if (fd < 0) return {};
    (void)!::write(fd, text.data(), text.size());
    ::close(fd);
    const std::string out_name = std::string(in_name) + ".out";
    const std::string cmd = path() + " check metrics < " + in_name + " > " + out_name + " 2>&1";
    const int raw = std::system(cmd.c_str());
    result r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    std::ifstream o(out_name);
    std::stringstream ss;
    ss << o.rdbuf();
    r.output = ss.str();
    std::remove(in_name);
    std::remove(out_name.c_str());
    return r;
}

} // namespace promtool

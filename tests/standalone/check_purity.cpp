// The kit is pure (DESIGN.md, STYLE.md §11): no clock reads, sleeps, threads, sockets, files,
// environment, console output or mutable static state anywhere under include/btest. Comment
// lines are skipped; function-local `static const` objects (immutable once built, initialised
// thread-safely) are allowed. Usage: check_purity <include dir>.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: check_purity <include dir>\n";
        return 2;
    }
    const std::vector<std::pair<std::regex, const char*>> forbidden = {
        {std::regex(R"(::now\s*\()"), "reads a clock"},
        {std::regex(R"(sleep_for|sleep_until|\busleep\b|\bnanosleep\b|\bsleep\s*\()"), "sleeps"},
        {std::regex(R"(std::thread|std::jthread|<thread>|<mutex>|<atomic>|<condition_variable>|<future>|pthread)"), "threads"},
        {std::regex(R"(<sys/socket\.h>|<netinet/|<arpa/|<sys/epoll|<poll\.h>|::socket\s*\(|::bind\s*\(|::connect\s*\()"), "sockets"},
        {std::regex(R"(<fstream>|<iostream>|<cstdio>|\bfopen\b|\bgetenv\b|std::cout|std::cerr|\bprintf\s*\()"), "files/console/env"},
        {std::regex(R"(std::random_device|<random>|\brand\s*\(|\bsrand\b|clock_gettime|gettimeofday)"), "hidden randomness/time"},
        // `static T name ...` that is neither const/constexpr nor a function declaration.
        {std::regex(R"((^|[^_\w])static\s+(?!const\b|constexpr\b|inline\b)[^=;{(]*[\w>]\s+\w+\s*(=|;|\{))"), "mutable static"},
    };
    const std::regex comment(R"(^\s*(//|\*|/\*))");
    int files = 0, bad = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(std::filesystem::path(argv[1]) / "btest")) {
        if (e.path().extension() != ".hpp") continue;
        ++files;
        std::ifstream in(e.path());
        std::string line;
        for (int n = 1; std::getline(in, line); ++n) {
            if (std::regex_search(line, comment)) continue;
            for (const auto& [re, what] : forbidden) {
                if (std::regex_search(line, re)) {
                    std::cerr << e.path().string() << ":" << n << ": " << what << ": " << line << "\n";
                    ++bad;
                }
            }
        }
    }
    if (files == 0) {
        std::cerr << "no headers under " << argv[1] << "\n";
        return 1;
    }
    std::cout << files << " kit headers checked, " << bad << " violations\n";
    return bad ? 1 : 0;
}

// The README quotes example code; this keeps the quotes true. Every fenced code block preceded
// by `<!-- snippet: PATH -->` must appear in PATH line for line, in order (leading whitespace
// ignored, lines contiguous). Usage: check_snippets <source dir> <markdown file>.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {
std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    const auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}
std::vector<std::string> lines_of(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::vector<std::string> v;
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}
} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: check_snippets <source dir> <markdown>\n";
        return 2;
    }
    const std::filesystem::path root = argv[1];
    const auto md = lines_of(root / argv[2]);
    const std::string marker = "<!-- snippet: ";
    int snippets = 0, bad = 0;
    for (std::size_t i = 0; i < md.size(); ++i) {
        if (md[i].rfind(marker, 0) != 0) continue;
        const auto path = md[i].substr(marker.size(), md[i].find(" -->") - marker.size());
        std::size_t j = i + 1;
        if (j >= md.size() || md[j].rfind("```", 0) != 0) {
            std::cerr << argv[2] << ":" << i + 1 << ": marker not followed by a code block\n";
            ++bad;
            continue;
        }
        std::vector<std::string> block;
        for (++j; j < md.size() && md[j].rfind("```", 0) != 0; ++j) block.push_back(trim(md[j]));
        const auto src = lines_of(root / path);
        std::vector<std::string> trimmed;
        std::transform(src.begin(), src.end(), std::back_inserter(trimmed), trim);
        ++snippets;
        if (src.empty() || block.empty() ||
            std::search(trimmed.begin(), trimmed.end(), block.begin(), block.end()) == trimmed.end()) {
            std::cerr << argv[2] << ":" << i + 1 << ": the snippet does not match " << path << " line for line\n";
            ++bad;
        }
    }
    std::cout << snippets << " snippets checked, " << bad << " stale\n";
    return bad || snippets == 0 ? 1 : 0;
}

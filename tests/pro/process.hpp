// A child process for the pro tests: argv, optional stdin text, stdout/stderr captured in
// files, optionally run as an unprivileged user. Every wait is bounded; the destructor kills
// a child that is still running.
#pragma once

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace pro_test {

struct process_options {
    std::string stdin_text;      ///< written to the child's stdin (then EOF)
    bool unprivileged = false;   ///< as root: run as nobody (65534)
    std::string cwd;             ///< working directory (empty: inherit)
};

class process {
public:
    using options = process_options;

    process(const std::string& exe, const std::vector<std::string>& args, const options& opts = {}) {
        static int counter = 0;
        const std::string base = "/tmp/btest_pro_proc_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
        out_path_ = base + ".out";
        err_path_ = base + ".err";
        in_path_ = base + ".in";
        {
            std::ofstream in(in_path_, std::ios::binary);
            in << opts.stdin_text;
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            const int i = ::open(in_path_.c_str(), O_RDONLY);
            const int o = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            const int e = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(i, 0);
            ::dup2(o, 1);
            ::dup2(e, 2);
            if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) ::_exit(126);
            if (opts.unprivileged && ::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(125);
            std::vector<std::string> copy = args;
            std::string bin = exe;
            std::vector<char*> argv{bin.data()};
            for (auto& a : copy) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(bin.c_str(), argv.data());
            ::_exit(127);
        }
    }
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    ~process() {
        if (!exited_) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
        ::unlink(out_path_.c_str());
        ::unlink(err_path_.c_str());
        ::unlink(in_path_.c_str());
    }

    /// The exit status (128 + signal when killed), or -1 after `limit`.
    int wait(std::chrono::milliseconds limit = std::chrono::seconds{20}) {
        if (exited_) return status_;
        const auto end = std::chrono::steady_clock::now() + limit;
        for (;;) {
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                exited_ = true;
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                return status_;
            }
            if (std::chrono::steady_clock::now() >= end) return -1;
            std::this_thread::sleep_for(std::chrono::milliseconds{5});
        }
    }
    void kill(int sig) { ::kill(pid_, sig); }

    std::string out() const { return slurp(out_path_); }
    std::string err() const { return slurp(err_path_); }
    std::vector<std::string> out_lines() const {
        std::vector<std::string> lines;
        std::string cur;
        for (char c : out()) {
            if (c == '\n') {
                lines.push_back(cur);
                cur.clear();
            } else {
                cur += c;
            }
        }
        return lines;  // a trailing partial line is not a line yet
    }
    /// Waits until stdout has at least `n` complete lines; false after `limit`.
    bool wait_lines(std::size_t n, std::chrono::milliseconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (out_lines().size() < n) {
            if (std::chrono::steady_clock::now() >= end) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds{5});
        }
        return true;
    }

private:
    static std::string slurp(const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), {});
    }
    pid_t pid_ = -1;
    bool exited_ = false;
    int status_ = -1;
    std::string out_path_, err_path_, in_path_;
};

} // namespace pro_test

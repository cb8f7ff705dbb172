// Helpers for the data tests: running the Python/node reference peers and small file utilities.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace bignlp::data::testing {

/// Debian's python3 (has numpy and sentencepiece); the python3 on PATH may be a build without them.
inline const char* kPython = "/usr/bin/python3";

inline std::filesystem::path source_path(const std::string& relative) {
  return std::filesystem::path(BIGNLP_SOURCE_DIR) / relative;
}

/// Runs `command` through the shell and returns its stdout; `rc` gets the exit status.
inline std::string run_command(const std::string& command, int* rc = nullptr) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    if (rc) *rc = -1;
    return out;
  }
  std::array<char, 65536> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  if (rc) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

/// True when /usr/bin/python3 can import `module`.
inline bool python_has(const std::string& module) {
  int rc = 0;
  run_command(std::string(kPython) + " -c 'import " + module + "' 2>/dev/null", &rc);
  return rc == 0;
}

/// Runs tests/unit/data/numpy_peer.py with `args`; fails the test on a non-zero exit.
inline std::string numpy_peer(const std::string& args) {
  int rc = 0;
  const std::string out = run_command(std::string(kPython) + " " + source_path("tests/unit/data/numpy_peer.py").string() +
                                          " " + args,
                                      &rc);
  EXPECT_EQ(rc, 0) << "numpy_peer.py " << args << " failed:\n" << out;
  return out;
}

/// tests/unit/data/http_test_server.py serving `root` on 127.0.0.1 for the life of the object.
class TestHttpServer {
 public:
  explicit TestHttpServer(const std::filesystem::path& root) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      const std::string script = source_path("tests/unit/data/http_test_server.py").string();
      ::execl(kPython, kPython, script.c_str(), root.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    std::string line;
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    ::close(fds[0]);
    port_ = line.empty() ? 0 : std::stoi(line);
  }
  ~TestHttpServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;
  bool ok() const { return port_ > 0; }
  /// "http://127.0.0.1:<port>/<mode>/" (mode: ok, drop, flaky, norange, lying, short, missing).
  std::string url(const std::string& mode) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + mode + "/";
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

#define BIGNLP_REQUIRE_NUMPY()                                                                     \
  do {                                                                                             \
    if (!::bignlp::data::testing::python_has("numpy"))                                             \
      GTEST_SKIP() << "/usr/bin/python3 with numpy is not installed (apt-get install python3-numpy)"; \
  } while (0)

}  // namespace bignlp::data::testing

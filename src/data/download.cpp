#include "bignlp/data/download.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

namespace fs = std::filesystem;

namespace bignlp::data {
namespace {

void ensure_curl_initialised() {
  // curl_global_init is not thread-safe; a function-local static runs it exactly once.
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) throw RuntimeError(fmt::format("libcurl initialisation failed: {}", curl_easy_strerror(rc)));
}

struct Easy {
  CURL* h = curl_easy_init();
  ~Easy() {
    if (h) curl_easy_cleanup(h);
  }
};

// Per-attempt transfer state shared with the callbacks.
struct Transfer {
  int fd = -1;
  std::uint64_t offset = 0;        // bytes already in the .part when the request was made
  std::uint64_t written = 0;       // bytes appended by this attempt
  bool truncated_for_restart = false;
  long status = 0;                 // status of the last response header block
  std::optional<std::uint64_t> content_length;
  std::optional<std::uint64_t> range_start;
  std::optional<std::uint64_t> range_total;
  bool header_checked = false;
  std::string error_body;
  std::string io_error;
  CURL* easy = nullptr;
};

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {  // a new response (redirects and 100-continue start over)
    t->content_length.reset();
    t->range_start.reset();
    t->range_total.reset();
    const auto sp = line.find(' ');
    if (sp != std::string_view::npos) t->status = std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  const std::string name = to_lower(line.substr(0, colon));
  const std::string_view value = trim(line.substr(colon + 1));
  if (name == "content-length") {
    t->content_length = parse_u64(value);
  } else if (name == "content-range") {
    // "bytes 100-199/2000" or "bytes */2000"
    std::string_view v = value;
    if (v.starts_with("bytes ")) v.remove_prefix(6);
    const auto slash = v.find('/');
    if (slash != std::string_view::npos) {
      t->range_total = parse_u64(v.substr(slash + 1));
      const auto dash = v.find('-');
      if (dash != std::string_view::npos && dash < slash) t->range_start = parse_u64(v.substr(0, dash));
    }
  }
  return size * n;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t bytes = size * n;
  long code = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 400) {  // keep a little of the error page for the message, write nothing
    if (t->error_body.size() < 300) t->error_body.append(data, std::min<std::size_t>(bytes, 300 - t->error_body.size()));
    return bytes;
  }
  if (!t->header_checked) {
    t->header_checked = true;
    if (t->offset > 0 && code == 200) {
      // The server ignored the Range request: start the file over.
      if (::ftruncate(t->fd, 0) != 0 || ::lseek(t->fd, 0, SEEK_SET) != 0) {
        t->io_error = std::strerror(errno);
        return 0;
      }
      t->offset = 0;
      t->truncated_for_restart = true;
    } else if (t->offset > 0 && code == 206 && t->range_start && *t->range_start != t->offset) {
      t->io_error = fmt::format("the server resumed at byte {} instead of {}", *t->range_start, t->offset);
      return 0;
    }
  }
  std::size_t done = 0;
  while (done < bytes) {
    const ssize_t w = ::write(t->fd, data + done, bytes - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      t->io_error = std::strerror(errno);
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    done += static_cast<std::size_t>(w);
  }
  t->written += bytes;
  return bytes;
}

std::uint64_t size_of(const fs::path& p) {
  std::error_code ec;
  const auto s = fs::file_size(p, ec);
  return ec ? 0 : static_cast<std::uint64_t>(s);
}

void common_options(CURL* h, const std::string& url, const DownloadOptions& o) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_seconds);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o.stall_seconds);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "bignlp-preprocess");
}

// The size the server announces for `url` (HEAD), if it says.
std::optional<std::uint64_t> remote_size(const std::string& url, const DownloadOptions& o) {
  Easy e;
  if (!e.h) return std::nullopt;
  Transfer t;
  t.easy = e.h;
  common_options(e.h, url, o);
  curl_easy_setopt(e.h, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(e.h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e.h, CURLOPT_HEADERDATA, &t);
  if (curl_easy_perform(e.h) != CURLE_OK) return std::nullopt;
  curl_off_t len = -1;
  curl_easy_getinfo(e.h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
  long code = 0;
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 400 || len < 0) return std::nullopt;
  return static_cast<std::uint64_t>(len);
}

bool retryable_status(long code) { return code >= 500 || code == 408 || code == 429; }

}  // namespace

DownloadResult download_file(const std::string& url, const fs::path& dest, const DownloadOptions& o, const Logger& log) {
  ensure_curl_initialised();
  DownloadResult result;
  const fs::path part = dest.string() + ".part";
  std::error_code ec;
  // The size a finished file must have, when known; an existing file of another size is replaced.
  std::optional<std::uint64_t> want = o.expected_size;
  const bool existed = fs::is_regular_file(dest, ec);
  if (existed) {
    const std::uint64_t have = size_of(dest);
    if (!want) want = remote_size(url, o);
    if (!want || *want == have) {
      log.info("'{}' is already there ({}), not downloading it again", dest.string(), format_bytes(have));
      result.bytes = have;
      result.skipped = true;
      return result;
    }
    log.info("'{}' has {} bytes but {} has {}: downloading it", dest.string(), have, url, *want);
  }
  if (dest.has_parent_path()) {
    fs::create_directories(dest.parent_path(), ec);
    if (ec) throw IoError(fmt::format("cannot create directory '{}': {}", dest.parent_path().string(), ec.message()));
  }
  if (!o.resume) fs::remove(part, ec);
  // One writer per destination: concurrent workers fetching the same file (e.g. a vocab) wait for
  // the first, then find the finished file.
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("cannot write '{}': {}", part.string(), std::strerror(errno)));
  // Closing releases the lock; an empty .part left by a failed first attempt is removed.
  struct FdCloser {
    int fd;
    fs::path part;
    ~FdCloser() {
      struct stat st {};
      if (::fstat(fd, &st) == 0 && st.st_nlink > 0 && st.st_size == 0) ::unlink(part.c_str());
      ::close(fd);
    }
  } closer{fd, part};
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) throw IoError(fmt::format("cannot lock '{}': {}", part.string(), std::strerror(errno)));
  }
  const bool finished_meanwhile = fs::is_regular_file(dest, ec) && (want ? size_of(dest) == *want : !existed);
  if (finished_meanwhile) {
    result.bytes = size_of(dest);
    result.skipped = true;
    log.info("'{}' was downloaded by another worker meanwhile", dest.string());
    return result;
  }

  std::string last_error;
  double backoff = o.initial_backoff_seconds;
  for (int attempt = 1; attempt <= std::max(1, o.max_attempts); ++attempt) {
    if (attempt > 1) {
      log.warn("download of {} failed ({}); attempt {} of {} in {}", url, last_error, attempt, o.max_attempts,
               format_duration(backoff));
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff = std::min(backoff * 2.0, o.max_backoff_seconds);
    }
    ++result.attempts;
    Transfer t;
    t.fd = fd;
    const off_t end = ::lseek(fd, 0, SEEK_END);
    if (end < 0) throw IoError(fmt::format("cannot seek in '{}': {}", part.string(), std::strerror(errno)));
    t.offset = static_cast<std::uint64_t>(end);
    if (t.offset > 0) result.resumed = true;
    Easy e;
    if (!e.h) throw RuntimeError("libcurl: cannot create a transfer handle");
    t.easy = e.h;
    char curl_error[CURL_ERROR_SIZE] = {0};
    common_options(e.h, url, o);
    curl_easy_setopt(e.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e.h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, curl_error);
    // CURLOPT_RANGE (not RESUME_FROM): a 200 answer is then ours to handle (restart) instead of an error.
    const std::string range = fmt::format("{}-", t.offset);
    if (t.offset > 0) curl_easy_setopt(e.h, CURLOPT_RANGE, range.c_str());
    const CURLcode rc = curl_easy_perform(e.h);
    long code = 0;
    curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &code);
    const bool synced = ::fsync(fd) == 0;
    if (!t.io_error.empty() && rc == CURLE_WRITE_ERROR && t.io_error.find("resumed at byte") == std::string::npos) {
      throw IoError(fmt::format("cannot write '{}': {}", part.string(), t.io_error));
    }
    const std::uint64_t have = size_of(part);
    // A complete range: the server says there is nothing past what we have.
    if (code == 416) {
      if (t.range_total && *t.range_total == have && have > 0) {
        // fall through to the completion check below
      } else {
        if (::ftruncate(fd, 0) != 0) throw IoError(fmt::format("cannot truncate '{}': {}", part.string(), std::strerror(errno)));
        last_error = "HTTP 416 for the resumed range; starting over";
        continue;
      }
    } else if (code >= 400) {
      const std::string body = std::string(trim(t.error_body));
      last_error = fmt::format("HTTP {}{}", code, body.empty() ? "" : fmt::format(" ({})", body.substr(0, 120)));
      if (!retryable_status(code)) {
        throw IoError(fmt::format("cannot download {} to '{}': {}", url, dest.string(), last_error));
      }
      continue;
    } else if (rc != CURLE_OK) {
      last_error = t.io_error.empty() ? fmt::format("{}", curl_error[0] ? curl_error : curl_easy_strerror(rc)) : t.io_error;
      if (!t.io_error.empty() && ::ftruncate(fd, 0) != 0) {  // a resume at the wrong offset cannot be trusted
        throw IoError(fmt::format("cannot truncate '{}': {}", part.string(), std::strerror(errno)));
      }
      continue;
    }
    if (!synced) throw IoError(fmt::format("cannot sync '{}': {}", part.string(), std::strerror(errno)));
    // Completion: the announced total, then the expected size.
    std::optional<std::uint64_t> total = t.range_total;
    if (!total && t.content_length && (code == 200 || code == 0)) total = *t.content_length;
    if (!total && t.content_length && code == 206) total = t.offset + *t.content_length;
    if (total && have != *total) {
      last_error = fmt::format("the file has {} bytes but the server announced {}", have, *total);
      if (have > *total && ::ftruncate(fd, 0) != 0) {
        throw IoError(fmt::format("cannot truncate '{}': {}", part.string(), std::strerror(errno)));
      }
      continue;
    }
    if (o.expected_size && have != *o.expected_size) {
      if (::ftruncate(fd, 0) != 0) throw IoError(fmt::format("cannot truncate '{}': {}", part.string(), std::strerror(errno)));
      if (total) {
        ::unlink(part.c_str());  // the server sent all it has: its file is not the one expected, retrying cannot help
        throw IoError(fmt::format("cannot download {} to '{}': the server's file has {} bytes, {} were expected "
                                  "(truncated or a different file)",
                                  url, dest.string(), have, *o.expected_size));
      }
      last_error = fmt::format("the file has {} bytes, {} were expected", have, *o.expected_size);
      continue;
    }
    fs::rename(part, dest, ec);
    if (ec) throw IoError(fmt::format("cannot rename '{}' to '{}': {}", part.string(), dest.string(), ec.message()));
    fsync_path(dest.has_parent_path() ? dest.parent_path() : fs::path("."));
    result.bytes = have;
    log.info("downloaded {} to '{}' ({}, {} attempt(s){})", url, dest.string(), format_bytes(have), result.attempts,
             result.resumed ? ", resumed" : "");
    return result;
  }
  throw IoError(fmt::format("cannot download {} to '{}' after {} attempts: {}; the partial data is kept in '{}' and a "
                            "new run resumes it",
                            url, dest.string(), result.attempts, last_error, part.string()));
}

std::string sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot read '{}'", path.string()));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

}  // namespace bignlp::data

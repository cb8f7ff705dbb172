#include "bignlp/data/decompressing_reader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"

namespace fs = std::filesystem;

namespace bignlp::data {

Compression compression_of(const fs::path& path) {
  const std::string name = to_lower(path.filename().string());
  if (ends_with(name, ".zst") || ends_with(name, ".zstd")) return Compression::kZstd;
  if (ends_with(name, ".gz")) return Compression::kGzip;
  return Compression::kNone;
}

struct DecompressingReader::Impl {
  fs::path path;
  Compression compression = Compression::kNone;
  int fd = -1;
  std::uint64_t size = 0;
  std::uint64_t position = 0;
  std::vector<char> in;
  std::size_t in_pos = 0;
  std::size_t in_len = 0;
  bool eof = false;
  // zstd
  ZSTD_DCtx* zstd = nullptr;
  std::size_t zstd_hint = 0;  // > 0 when a frame is unfinished
  // gzip
  z_stream z{};
  bool z_init = false;
  bool z_member_done = true;  // between members
  bool z_any = false;

  ~Impl() {
    if (zstd) ZSTD_freeDCtx(zstd);
    if (z_init) inflateEnd(&z);
    if (fd >= 0) ::close(fd);
  }

  [[noreturn]] void corrupt(const std::string& why) const {
    throw DataError(fmt::format("'{}': {}", path.string(), why));
  }

  // Refills the input buffer; false at end of file.
  bool fill() {
    if (in_pos < in_len) return true;
    if (eof) return false;
    for (;;) {
      const ssize_t n = ::read(fd, in.data(), in.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw IoError(fmt::format("cannot read '{}': {}", path.string(), std::strerror(errno)));
      }
      in_pos = 0;
      in_len = static_cast<std::size_t>(n);
      position += static_cast<std::uint64_t>(n);
      if (n == 0) eof = true;
      return n > 0;
    }
  }

  std::size_t read_plain(char* out, std::size_t cap) {
    if (!fill()) return 0;
    const std::size_t n = std::min(cap, in_len - in_pos);
    std::memcpy(out, in.data() + in_pos, n);
    in_pos += n;
    return n;
  }

  std::size_t read_zstd(char* out, std::size_t cap) {
    ZSTD_outBuffer ob{out, cap, 0};
    while (ob.pos == 0) {
      const bool have = fill();
      if (!have && zstd_hint == 0) return 0;
      // Without new input the call only flushes what the decoder still holds.
      ZSTD_inBuffer ib{in.data(), have ? in_len : 0, have ? in_pos : 0};
      const std::size_t r = ZSTD_decompressStream(zstd, &ob, &ib);
      if (ZSTD_isError(r)) corrupt(fmt::format("corrupt zstd data: {}", ZSTD_getErrorName(r)));
      zstd_hint = r;
      if (have) in_pos = ib.pos;
      if (!have && ob.pos == 0) {
        corrupt(fmt::format("truncated zstd stream: the file ends inside a frame after {} bytes", position));
      }
    }
    return ob.pos;
  }

  std::size_t read_gzip(char* out, std::size_t cap) {
    z.next_out = reinterpret_cast<Bytef*>(out);
    z.avail_out = static_cast<uInt>(cap);
    while (z.avail_out == cap) {
      const bool have = in_pos < in_len || fill();
      if (!have) {
        if (z_member_done) {
          if (!z_any) corrupt("empty gzip file");
          return 0;
        }
        z.next_in = nullptr;
        z.avail_in = 0;
        const int rc = inflate(&z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
          z_member_done = true;
        } else if (z.avail_out == cap) {
          corrupt(fmt::format("truncated gzip stream: the file ends inside a member after {} bytes", position));
        }
        continue;
      }
      if (z_member_done) {
        // Skip padding zeros some writers leave after the last member.
        while (in_pos < in_len && in[in_pos] == 0) ++in_pos;
        if (in_pos == in_len) continue;
        inflateReset(&z);
        z_member_done = false;
        z_any = true;
      }
      z.next_in = reinterpret_cast<Bytef*>(in.data() + in_pos);
      z.avail_in = static_cast<uInt>(in_len - in_pos);
      const int rc = inflate(&z, Z_NO_FLUSH);
      in_pos = in_len - z.avail_in;
      if (rc == Z_STREAM_END) {
        z_member_done = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        corrupt(fmt::format("corrupt gzip data: {}", z.msg ? z.msg : zError(rc)));
      }
    }
    return cap - z.avail_out;
  }
};

DecompressingReader::DecompressingReader(const fs::path& path) : DecompressingReader(path, compression_of(path)) {}

DecompressingReader::DecompressingReader(const fs::path& path, Compression compression) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->compression = compression;
  impl_->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (impl_->fd < 0) throw IoError(fmt::format("cannot open '{}': {}", path.string(), std::strerror(errno)));
  struct stat st {};
  if (::fstat(impl_->fd, &st) == 0) impl_->size = static_cast<std::uint64_t>(st.st_size);
  ::posix_fadvise(impl_->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  impl_->in.resize(compression == Compression::kNone ? (1u << 20) : ZSTD_DStreamInSize() * 8);
  if (compression == Compression::kZstd) {
    impl_->zstd = ZSTD_createDCtx();
    if (impl_->zstd == nullptr) throw RuntimeError("zstd: cannot create a decompression context");
  } else if (compression == Compression::kGzip) {
    if (inflateInit2(&impl_->z, 15 + 32) != Z_OK) throw RuntimeError("zlib: cannot initialise inflate");
    impl_->z_init = true;
  }
}

DecompressingReader::~DecompressingReader() = default;

std::size_t DecompressingReader::read(char* out, std::size_t capacity) {
  if (capacity == 0) return 0;
  switch (impl_->compression) {
    case Compression::kNone: return impl_->read_plain(out, capacity);
    case Compression::kZstd: return impl_->read_zstd(out, capacity);
    case Compression::kGzip: return impl_->read_gzip(out, capacity);
  }
  return 0;
}

std::size_t DecompressingReader::read_append(std::string& out, std::size_t capacity) {
  const std::size_t old = out.size();
  out.resize(old + capacity);
  const std::size_t n = read(out.data() + old, capacity);
  out.resize(old + n);
  return n;
}

std::uint64_t DecompressingReader::compressed_position() const {
  return impl_->position - (impl_->in_len - impl_->in_pos);
}
std::uint64_t DecompressingReader::compressed_size() const { return impl_->size; }
const fs::path& DecompressingReader::path() const { return impl_->path; }

std::uint64_t decompress_file(const fs::path& source, const fs::path& destination) {
  DecompressingReader reader(source);
  const fs::path parent = destination.has_parent_path() ? destination.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  std::random_device rd;
  const fs::path tmp = fs::path(destination.string() + fmt::format(".tmp-{:08x}", rd()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("cannot write '{}': {}", destination.string(), std::strerror(errno)));
  std::uint64_t total = 0;
  try {
    std::vector<char> buf(4u << 20);
    for (;;) {
      const std::size_t n = reader.read(buf.data(), buf.size());
      if (n == 0) break;
      std::size_t done = 0;
      while (done < n) {
        const ssize_t w = ::write(fd, buf.data() + done, n - done);
        if (w < 0) {
          if (errno == EINTR) continue;
          throw IoError(fmt::format("cannot write '{}': {}", destination.string(), std::strerror(errno)));
        }
        done += static_cast<std::size_t>(w);
      }
      total += n;
    }
    if (::fsync(fd) != 0) throw IoError(fmt::format("cannot sync '{}': {}", destination.string(), std::strerror(errno)));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), destination.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw IoError(fmt::format("cannot rename '{}' to '{}': {}", tmp.string(), destination.string(), reason));
  }
  return total;
}

}  // namespace bignlp::data

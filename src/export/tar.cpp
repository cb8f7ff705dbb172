#include "bignlp/export/tar.h"

#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "bignlp/core/error.h"

namespace fs = std::filesystem;

namespace bignlp::exporting {
namespace {

constexpr std::size_t kBlock = 512;

void octal(char* field, std::size_t width, std::uint64_t value) {
  const std::string s = fmt::format("{:0{}o}", value, width - 1);
  std::memcpy(field, s.data(), width - 1);
  field[width - 1] = '\0';
}

std::uint64_t parse_number(const unsigned char* f, std::size_t width) {
  if (f[0] & 0x80) {  // GNU base-256
    std::uint64_t v = f[0] & 0x7F;
    for (std::size_t i = 1; i < width; ++i) v = (v << 8) | f[i];
    return v;
  }
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width && f[i] != 0 && f[i] != ' '; ++i) {
    if (f[i] < '0' || f[i] > '7') throw std::invalid_argument("bad octal");
    v = v * 8 + (f[i] - '0');
  }
  return v;
}

std::string field(const unsigned char* f, std::size_t width) {
  std::size_t n = 0;
  while (n < width && f[n] != 0) ++n;
  return std::string(reinterpret_cast<const char*>(f), n);
}

}  // namespace

TarWriter::TarWriter(const fs::path& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) throw IoError(fmt::format("cannot create '{}': {}", path.string(), std::strerror(errno)));
}

TarWriter::~TarWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TarWriter::write(const void* data, std::size_t size) {
  if (size > 0 && std::fwrite(data, 1, size, file_) != size)
    throw IoError(fmt::format("cannot write '{}': {}", path_.string(), std::strerror(errno)));
}

void TarWriter::pad(std::uint64_t size) {
  static const char zeros[kBlock] = {};
  const std::size_t rest = static_cast<std::size_t>(size % kBlock);
  if (rest != 0) write(zeros, kBlock - rest);
}

void TarWriter::header(const std::string& name, std::uint64_t size, char type) {
  char h[kBlock] = {};
  std::string base = name, prefix;
  if (base.size() > 100) {  // split at a '/' into prefix (155) and name (100)
    const auto cut = base.rfind('/', 155);
    if (cut == std::string::npos || base.size() - cut - 1 > 100)
      throw IoError(fmt::format("{}: member name '{}' is too long for a tar header", path_.string(), name));
    prefix = base.substr(0, cut);
    base = base.substr(cut + 1);
  }
  std::memcpy(h, base.data(), base.size());
  octal(h + 100, 8, type == '5' ? 0755 : 0644);
  octal(h + 108, 8, 0);
  octal(h + 116, 8, 0);
  if (size < (1ull << 33)) {
    octal(h + 124, 12, size);
  } else {
    auto* f = reinterpret_cast<unsigned char*>(h + 124);
    f[0] = 0x80;
    for (int i = 11; i >= 4; --i) {
      f[i] = static_cast<unsigned char>(size & 0xFF);
      size >>= 8;
    }
  }
  octal(h + 136, 12, 0);
  h[156] = type;
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memcpy(h + 345, prefix.data(), prefix.size());
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : std::string(h, kBlock)) sum += c;
  const std::string cs = fmt::format("{:06o}", sum);
  std::memcpy(h + 148, cs.data(), 6);
  h[154] = '\0';
  h[155] = ' ';
  write(h, kBlock);
}

void TarWriter::add_directory(const std::string& name) { header(name.ends_with('/') ? name : name + "/", 0, '5'); }

void TarWriter::add_bytes(const std::string& name, const std::string& content) {
  header(name, content.size(), '0');
  write(content.data(), content.size());
  pad(content.size());
}

void TarWriter::add_file(const std::string& name, const fs::path& source) {
  std::error_code ec;
  const std::uint64_t size = fs::file_size(source, ec);
  if (ec) throw IoError(fmt::format("cannot stat '{}': {}", source.string(), ec.message()));
  std::FILE* in = std::fopen(source.c_str(), "rb");
  if (in == nullptr) throw IoError(fmt::format("cannot open '{}': {}", source.string(), std::strerror(errno)));
  header(name, size, '0');
  std::vector<char> buf(1 << 20);
  std::uint64_t left = size;
  while (left > 0) {
    const std::size_t n = std::fread(buf.data(), 1, std::min<std::uint64_t>(left, buf.size()), in);
    if (n == 0) {
      std::fclose(in);
      throw IoError(fmt::format("cannot read '{}' (changed while archiving?)", source.string()));
    }
    write(buf.data(), n);
    left -= n;
  }
  std::fclose(in);
  pad(size);
}

void TarWriter::finish() {
  static const char zeros[2 * kBlock] = {};
  write(zeros, sizeof(zeros));
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0)
    throw IoError(fmt::format("cannot write '{}': {}", path_.string(), std::strerror(errno)));
  std::fclose(file_);
  file_ = nullptr;
}

std::vector<std::string> extract_tar(const fs::path& archive, const fs::path& dest) {
  gzFile in = gzopen(archive.c_str(), "rb");
  if (in == nullptr) throw IoError(fmt::format("cannot open '{}': {}", archive.string(), std::strerror(errno)));
  struct Closer {
    gzFile f;
    ~Closer() { gzclose(f); }
  } closer{in};
  auto bad = [&](const std::string& what) { return DataError(fmt::format("{}: {}", archive.string(), what)); };
  auto read_exact = [&](void* buf, std::size_t n) -> std::size_t {
    std::size_t got = 0;
    while (got < n) {
      const int r = gzread(in, static_cast<char*>(buf) + got, static_cast<unsigned>(std::min<std::size_t>(n - got, 1 << 30)));
      if (r < 0) {
        int err = 0;
        const char* msg = gzerror(in, &err);
        throw bad(fmt::format("corrupt archive ({})", msg != nullptr ? msg : "read error"));
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return got;
  };
  std::vector<std::string> files;
  std::string long_name;
  unsigned char h[kBlock];
  std::vector<char> buf(1 << 20);
  bool saw_end = false;
  while (true) {
    const std::size_t got = read_exact(h, kBlock);
    if (got == 0) break;
    if (got < kBlock) throw bad("truncated archive (a partial header block)");
    if (std::all_of(h, h + kBlock, [](unsigned char c) { return c == 0; })) {
      saw_end = true;
      break;
    }
    unsigned sum = 0;
    for (std::size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    std::uint64_t size = 0, stored_sum = 0;
    try {
      stored_sum = parse_number(h + 148, 8);
      size = parse_number(h + 124, 12);
    } catch (const std::invalid_argument&) {
      throw bad("corrupt archive (a header with non-numeric fields; not a tar file?)");
    }
    if (stored_sum != sum) throw bad("corrupt archive (a header checksum does not match; not a tar file?)");
    const char type = static_cast<char>(h[156]);
    std::string name = field(h, 100);
    const std::string prefix = field(h + 345, 155);
    if (!prefix.empty() && std::memcmp(h + 257, "ustar", 5) == 0) name = prefix + "/" + name;
    if (!long_name.empty()) {
      name = long_name;
      long_name.clear();
    }
    auto read_payload = [&](std::string& out) {
      out.resize(static_cast<std::size_t>(size));
      if (read_exact(out.data(), out.size()) != out.size()) throw bad(fmt::format("truncated archive in member '{}'", name));
      const std::size_t rest = static_cast<std::size_t>((kBlock - size % kBlock) % kBlock);
      if (read_exact(buf.data(), rest) != rest) throw bad(fmt::format("truncated archive in member '{}'", name));
    };
    if (type == 'L' || type == 'x' || type == 'g') {  // GNU long name, pax headers
      std::string payload;
      read_payload(payload);
      if (type == 'L') long_name = payload.c_str();
      if (type == 'x') {
        for (std::size_t p = 0; p < payload.size();) {
          const auto sp = payload.find(' ', p);
          if (sp == std::string::npos) break;
          const std::size_t len = std::stoul(payload.substr(p, sp - p));
          const std::string rec = payload.substr(sp + 1, len - (sp - p) - 2);
          if (rec.rfind("path=", 0) == 0) long_name = rec.substr(5);
          p += len;
        }
      }
      continue;
    }
    while (name.rfind("./", 0) == 0) name = name.substr(2);
    const fs::path rel = fs::path(name).lexically_normal();
    for (const auto& part : rel)
      if (part == "..") throw bad(fmt::format("member '{}' points outside the archive", name));
    if (rel.is_absolute()) throw bad(fmt::format("member '{}' has an absolute name", name));
    if (type == '5' || name.empty() || name == ".") {
      if (!name.empty() && name != ".") fs::create_directories(dest / rel);
      continue;
    }
    if (type != '0' && type != '\0' && type != '7')
      throw bad(fmt::format("member '{}' is not a regular file or directory (type '{}'); refused", name, type));
    fs::create_directories((dest / rel).parent_path());
    std::FILE* out = std::fopen((dest / rel).c_str(), "wb");
    if (out == nullptr) throw IoError(fmt::format("cannot create '{}': {}", (dest / rel).string(), std::strerror(errno)));
    std::uint64_t left = size;
    while (left > 0) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      const std::size_t n = read_exact(buf.data(), want);
      if (n < want) {
        std::fclose(out);
        throw bad(fmt::format("truncated archive in member '{}' ({} of {} bytes)", name, size - left + n, size));
      }
      if (std::fwrite(buf.data(), 1, n, out) != n) {
        std::fclose(out);
        throw IoError(fmt::format("cannot write '{}'", (dest / rel).string()));
      }
      left -= n;
    }
    std::fclose(out);
    const std::size_t rest = static_cast<std::size_t>((kBlock - size % kBlock) % kBlock);
    if (read_exact(buf.data(), rest) != rest) throw bad(fmt::format("truncated archive after member '{}'", name));
    files.push_back(rel.string());
  }
  if (!saw_end && files.empty()) throw bad("empty or truncated archive (no members)");
  return files;
}

}  // namespace bignlp::exporting

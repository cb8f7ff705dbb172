#include "bignlp/train/tensorboard.h"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "bignlp/core/error.h"

namespace bignlp::train {
namespace {

std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <typename T>
void put_le(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void put_bytes_field(std::string& out, int field, std::string_view bytes) {
  put_varint(out, static_cast<std::uint64_t>(field) << 3 | 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::atomic<int> g_file_uid{0};  // TensorBoard's per-process counter in file names; not parallel state

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t size) {
  static const std::array<std::uint32_t, 256> table = make_table();
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::uint32_t masked_crc32c(const void* data, std::size_t size) {
  const std::uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

std::string encode_file_version_event(double wall_time) {
  std::string e;
  e.push_back(0x09);
  put_le(e, wall_time);
  put_bytes_field(e, 3, "brain.Event:2");
  return e;
}

std::string encode_scalar_event(double wall_time, std::int64_t step, std::string_view tag, float value) {
  std::string v;
  put_bytes_field(v, 1, tag);
  v.push_back(0x15);
  put_le(v, value);
  std::string summary;
  put_bytes_field(summary, 1, v);
  std::string e;
  e.push_back(0x09);
  put_le(e, wall_time);
  e.push_back(0x10);
  put_varint(e, static_cast<std::uint64_t>(step));
  put_bytes_field(e, 5, summary);
  return e;
}

std::string frame_record(std::string_view payload) {
  std::string r;
  const std::uint64_t len = payload.size();
  put_le(r, len);
  put_le(r, masked_crc32c(r.data(), 8));
  r.append(payload);
  put_le(r, masked_crc32c(payload.data(), payload.size()));
  return r;
}

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("cannot create directory '{}': {}", dir.string(), ec.message()));
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  const double now = now_seconds();
  path_ = dir / fmt::format("events.out.tfevents.{:010d}.{}.{}.{}", static_cast<std::int64_t>(now), host, ::getpid(),
                            g_file_uid.fetch_add(1));
  file_ = std::fopen(path_.c_str(), "wb");
  if (file_ == nullptr) throw IoError(fmt::format("cannot write '{}': {}", path_.string(), std::strerror(errno)));
  write(frame_record(encode_file_version_event(now)));
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::add_scalar(std::string_view tag, double value, std::int64_t step) {
  write(frame_record(encode_scalar_event(now_seconds(), step, tag, static_cast<float>(value))));
}

void TensorBoardWriter::flush() {
  if (std::fflush(file_) != 0) throw IoError(fmt::format("cannot write '{}': {}", path_.string(), std::strerror(errno)));
}

void TensorBoardWriter::write(std::string_view record) {
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size())
    throw IoError(fmt::format("cannot write '{}': {}", path_.string(), std::strerror(errno)));
}

}  // namespace bignlp::train

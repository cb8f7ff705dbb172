#include "bignlp/train/wandb.h"

#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <ctime>
#include <cstring>
#include <random>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"

namespace fs = std::filesystem;

namespace bignlp::train {
namespace wandb_format {

std::uint32_t record_checksum(std::uint8_t type, std::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, &type, 1);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
  return static_cast<std::uint32_t>(crc);
}

namespace {

void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_fragment(std::string& out, std::uint8_t type, std::string_view data) {
  put_u32(out, record_checksum(type, data));
  put_u16(out, static_cast<std::uint16_t>(data.size()));
  out.push_back(static_cast<char>(type));
  out.append(data);
}

}  // namespace

std::string file_header() {
  std::string h = ":W&B";
  put_u16(h, 0xBEE1);
  h.push_back('\0');
  return h;
}

std::string frame_record(std::uint64_t offset, std::string_view payload) {
  std::string out;
  std::size_t left = kBlockSize - static_cast<std::size_t>(offset % kBlockSize);
  if (left < kHeaderSize) {
    out.append(left, '\0');
    left = kBlockSize;
  }
  if (payload.size() + kHeaderSize <= left) {
    put_fragment(out, 1, payload);
    return out;
  }
  std::size_t used = left - kHeaderSize;
  put_fragment(out, 2, payload.substr(0, used));
  while (payload.size() - used > kBlockSize - kHeaderSize) {
    put_fragment(out, 3, payload.substr(used, kBlockSize - kHeaderSize));
    used += kBlockSize - kHeaderSize;
  }
  put_fragment(out, 4, payload.substr(used));
  return out;
}

std::string json_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{:.1f}", v);
  return fmt::format("{}", v);
}

}  // namespace wandb_format

namespace {

/// Protobuf wire format, the few shapes the records need.
class Proto {
 public:
  Proto& varint_field(int field, std::uint64_t v) {
    tag(field, 0);
    varint(v);
    return *this;
  }
  Proto& bytes_field(int field, std::string_view b) {
    tag(field, 2);
    varint(b.size());
    s_.append(b);
    return *this;
  }
  /// A string field, left out when empty (proto3 default).
  Proto& string_field(int field, std::string_view b) { return b.empty() ? *this : bytes_field(field, b); }
  Proto& message_field(int field, const Proto& m) { return bytes_field(field, m.s_); }
  const std::string& str() const { return s_; }

 private:
  void tag(int field, int wire) { varint(static_cast<std::uint64_t>(field) << 3 | static_cast<std::uint64_t>(wire)); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      s_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    s_.push_back(static_cast<char>(v));
  }
  std::string s_;
};

/// ConfigItem / SummaryItem / HistoryItem: key 1, value_json 16.
Proto item(const std::string& key, const std::string& value_json) {
  Proto p;
  p.string_field(1, key).bytes_field(16, value_json);
  return p;
}

std::string random_run_id() {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::string id;
  for (int i = 0; i < 8; ++i) id += kChars[rd() % 36];
  return id;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

Proto config_record(const nlohmann::json& config) {
  Proto c;
  for (auto it = config.begin(); it != config.end(); ++it) c.message_field(1, item(it.key(), it.value().dump()));
  return c;
}

}  // namespace

WandbOfflineRun::WandbOfflineRun(const WandbOptions& o) {
  id_ = o.id.empty() ? random_run_id() : o.id;
  for (char ch : id_)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_')
      throw ConfigError(fmt::format("exp_manager.wandb_logger_kwargs.id: '{}' has a character other than letters, "
                                    "digits, '-' and '_'",
                                    id_));
  start_time_ = now_seconds();
  const std::time_t t = static_cast<std::time_t>(start_time_);
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &tm);
  dir_ = o.save_dir / "wandb" / fmt::format("offline-run-{}-{}", stamp, id_);
  std::error_code ec;
  fs::create_directories(dir_ / "files", ec);
  if (ec) throw IoError(fmt::format("cannot create the W&B run directory '{}': {}", dir_.string(), ec.message()));
  file_path_ = dir_ / fmt::format("run-{}.wandb", id_);
  file_ = std::fopen(file_path_.c_str(), "wbx");
  if (file_ == nullptr) throw IoError(fmt::format("cannot create '{}': {}", file_path_.string(), std::strerror(errno)));
  const std::string header = wandb_format::file_header();
  if (std::fwrite(header.data(), 1, header.size(), file_) != header.size())
    throw IoError(fmt::format("cannot write '{}': {}", file_path_.string(), std::strerror(errno)));
  offset_ = header.size();

  write_record(Proto().message_field(21, Proto()).str());  // header
  Proto run;
  run.string_field(1, id_).string_field(2, o.entity).string_field(3, o.project);
  run.message_field(4, config_record(o.config));
  run.string_field(6, o.group).string_field(7, o.job_type).string_field(8, o.name).string_field(9, o.notes);
  for (const auto& tag : o.tags) run.bytes_field(10, tag);
  run.string_field(13, host_name());
  Proto ts;
  ts.varint_field(1, static_cast<std::uint64_t>(t));
  ts.varint_field(2, static_cast<std::uint64_t>((start_time_ - static_cast<double>(t)) * 1e9));
  run.message_field(17, ts);
  write_record(Proto().message_field(17, run).str());
  write_record(Proto().message_field(5, config_record(o.config)).str());
}

WandbOfflineRun::~WandbOfflineRun() {
  if (!finished_) {
    try {
      finish(1);
    } catch (...) {
    }
  }
  if (file_ != nullptr) std::fclose(file_);
}

void WandbOfflineRun::write_record(const std::string& body) {
  // Record.num (field 1), then the body's field.
  Proto num;
  num.varint_field(1, static_cast<std::uint64_t>(++num_));
  const std::string bytes = wandb_format::frame_record(offset_, num.str() + body);
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size() || std::fflush(file_) != 0)
    throw IoError(fmt::format("cannot write '{}': {}", file_path_.string(), std::strerror(errno)));
  offset_ += bytes.size();
}

void WandbOfflineRun::log(std::int64_t step, const std::vector<std::pair<std::string, double>>& scalars) {
  BIGNLP_CHECK(!finished_, "W&B run {} is finished", id_);
  const double now = now_seconds();
  Proto h;
  auto add = [&](const std::string& key, const std::string& value) {
    h.message_field(1, item(key, value));
    summary_[key] = value;
  };
  for (const auto& [key, value] : scalars) add(key, wandb_format::json_number(value));
  add("_step", std::to_string(step));
  add("_runtime", wandb_format::json_number(now - start_time_));
  add("_timestamp", wandb_format::json_number(now));
  Proto st;
  st.varint_field(1, static_cast<std::uint64_t>(step));
  h.message_field(2, st);
  write_record(Proto().message_field(2, h).str());
}

void WandbOfflineRun::finish(int exit_code) {
  if (finished_) return;
  finished_ = true;
  Proto s;
  for (const auto& [key, value] : summary_) s.message_field(1, item(key, value));
  write_record(Proto().message_field(3, s).str());
  Proto e;
  if (exit_code != 0) e.varint_field(1, static_cast<std::uint64_t>(static_cast<std::int64_t>(exit_code)));
  e.varint_field(2, static_cast<std::uint64_t>(now_seconds() - start_time_));
  write_record(Proto().message_field(18, e).str());
  write_record(Proto().message_field(20, Proto()).str());
  if (std::fflush(file_) != 0 || fsync(fileno(file_)) != 0)
    throw IoError(fmt::format("cannot write '{}': {}", file_path_.string(), std::strerror(errno)));
}

std::string WandbOfflineRun::sync_command() const { return "wandb sync " + dir_.string(); }

}  // namespace bignlp::train

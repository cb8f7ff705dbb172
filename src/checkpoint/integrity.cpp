#include "bignlp/checkpoint/integrity.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"

namespace fs = std::filesystem;

namespace bignlp::checkpoint {

std::uint32_t crc32_of(const void* data, std::size_t n) {
  uLong crc = crc32_z(0L, Z_NULL, 0);
  return static_cast<std::uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), n));
}

void write_shard_file(SafetensorsWriter& w, const fs::path& path) {
  nlohmann::json crcs = nlohmann::json::object();
  for (const auto& [name, t] : w.tensors()) crcs[name] = fmt::format("{:08x}", crc32_of(t.raw(), t.nbytes()));
  w.set_metadata(kChecksumKey, crcs.dump());
  w.write(path);
}

std::map<std::string, std::uint64_t> shard_file_sizes(const fs::path& dir) {
  std::map<std::string, std::uint64_t> out;
  std::error_code ec;
  for (const auto& shard : fs::directory_iterator(dir, ec)) {
    if (!shard.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(shard.path(), ec)) {
      if (!f.is_regular_file()) continue;
      out[shard.path().filename().string() + "/" + f.path().filename().string()] = f.file_size();
    }
  }
  return out;
}

bool check_shard_file_size(const fs::path& dir, const CheckpointState& meta, const fs::path& file) {
  if (meta.file_sizes.empty()) return false;
  const std::string rel = fs::relative(file, dir).generic_string();
  auto it = meta.file_sizes.find(rel);
  if (it == meta.file_sizes.end())
    throw DataError(fmt::format("{}: not among the files {}/metadata.json records (a file added or renamed after the "
                                "save)",
                                file.string(), dir.string()));
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) throw DataError(fmt::format("{}: shard file missing or unreadable: {}", file.string(), ec.message()));
  if (size != it->second)
    throw DataError(fmt::format("{}: {} bytes, but {}/metadata.json records {} (the file is truncated or damaged)",
                                file.string(), size, dir.string(), it->second));
  return true;
}

ShardChecksums::ShardChecksums(const SafetensorsReader& reader, bool required) : reader_(&reader) {
  const auto& md = reader.metadata();
  auto it = md.find(kChecksumKey);
  if (it == md.end()) {
    if (required)
      throw DataError(fmt::format("{}: the checkpoint records tensor checksums, but this shard file has none in its "
                                  "header (the header was damaged or the file replaced)",
                                  reader.path().string()));
    return;
  }
  try {
    const auto j = nlohmann::json::parse(it->second);
    for (auto e = j.begin(); e != j.end(); ++e) {
      const std::string hex = e.value().get<std::string>();
      std::size_t used = 0;
      const unsigned long v = std::stoul(hex, &used, 16);
      if (used != hex.size() || hex.size() != 8) throw std::invalid_argument(hex);
      crc_[e.key()] = static_cast<std::uint32_t>(v);
    }
  } catch (const std::exception& e) {
    throw DataError(fmt::format("{}: malformed '{}' header metadata: {}", reader.path().string(), kChecksumKey,
                                e.what()));
  }
  present_ = true;
}

void ShardChecksums::verify(const std::string& name) const {
  if (!present_) return;
  const SafetensorsEntry* e = reader_->find(name);
  if (e == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", reader_->path().string(), name));
  auto it = crc_.find(name);
  if (it == crc_.end())
    throw DataError(fmt::format("{}: tensor '{}' has no recorded checksum (the header was damaged)",
                                reader_->path().string(), name));
  const TensorView v = reader_->view(name);
  const std::uint32_t got = crc32_of(v.raw(), v.nbytes());
  if (got != it->second)
    throw DataError(fmt::format("{}: tensor '{}' fails its checksum (CRC-32 {:08x}, recorded {:08x}): the file is "
                                "damaged",
                                reader_->path().string(), name, got, it->second));
}

void check_finite(const TensorView& t, const fs::path& file, const std::string& tensor) {
  const float* x = t.data<float>();
  const std::int64_t n = t.numel();
  std::int64_t bad = 0, first = -1;
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) {
      if (first < 0) first = i;
      ++bad;
    }
  if (bad > 0)
    throw DataError(fmt::format("{}: tensor '{}' holds {} non-finite value(s) (first at element {}: {}); refusing to "
                                "load a diverged or damaged state",
                                file.string(), tensor, bad, first, x[first]));
}

}  // namespace bignlp::checkpoint

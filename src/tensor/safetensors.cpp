#include "bignlp/tensor/safetensors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace fs = std::filesystem;

namespace bignlp {
namespace {

DType parse_dtype_name(const std::string& name, const fs::path& path, const std::string& tensor) {
  if (name == "F32") return DType::kF32;
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  if (name == "I32") return DType::kI32;
  if (name == "I64") return DType::kI64;
  if (name == "U16") return DType::kU16;
  throw DataError(fmt::format("{}: tensor '{}' has dtype '{}', which bignlp does not read (F32, BF16, F16, I32, I64, U16)",
                              path.string(), tensor, name));
}

}  // namespace

std::string safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
    case DType::kU16: return "U16";
  }
  return "?";
}

SafetensorsReader::SafetensorsReader(const fs::path& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(fmt::format("cannot read '{}': {}", path.string(), std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw IoError(fmt::format("cannot read '{}': {}", path.string(), std::strerror(errno)));
  }
  map_size_ = static_cast<std::size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    throw DataError(fmt::format("{}: not a safetensors file ({} bytes, shorter than the 8-byte header length)",
                                path.string(), map_size_));
  }
  map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw IoError(fmt::format("cannot map '{}': {}", path.string(), std::strerror(errno)));
  }
  const char* base = static_cast<const char*>(map_);
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  if (header_len > map_size_ - 8) {
    release_map();
    throw DataError(fmt::format("{}: header length {} exceeds the file size {}", path.string(), header_len, map_size_));
  }
  data_ = base + 8 + header_len;
  const std::uint64_t data_size = map_size_ - 8 - header_len;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base + 8, base + 8 + header_len);
  } catch (const std::exception& e) {
    release_map();
    throw DataError(fmt::format("{}: malformed JSON header: {}", path.string(), e.what()));
  }
  try {
    if (!header.is_object()) throw DataError("header is not a JSON object");
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        for (auto m = it.value().begin(); m != it.value().end(); ++m) metadata_[m.key()] = m.value().get<std::string>();
        continue;
      }
      SafetensorsEntry e;
      e.name = it.key();
      const auto& v = it.value();
      e.dtype = parse_dtype_name(v.at("dtype").get<std::string>(), path, e.name);
      for (const auto& d : v.at("shape")) e.shape.push_back(d.get<std::int64_t>());
      const auto& off = v.at("data_offsets");
      e.begin = off.at(0).get<std::uint64_t>();
      e.end = off.at(1).get<std::uint64_t>();
      const std::uint64_t expected = static_cast<std::uint64_t>(e.shape.numel()) * dtype_size(e.dtype);
      if (e.end < e.begin || e.end > data_size)
        throw DataError(fmt::format("tensor '{}' has data offsets [{}, {}) outside the data section of {} bytes",
                                    e.name, e.begin, e.end, data_size));
      if (e.end - e.begin != expected)
        throw DataError(fmt::format("tensor '{}' spans {} bytes, but {} {} needs {}", e.name, e.end - e.begin,
                                    dtype_name(e.dtype), e.shape.to_string(), expected));
      entries_.push_back(std::move(e));
    }
  } catch (const DataError& e) {
    release_map();
    const std::string what = e.what();
    if (what.rfind(path.string(), 0) == 0) throw;
    throw DataError(fmt::format("{}: {}", path.string(), what));
  } catch (const nlohmann::json::exception& e) {
    release_map();
    throw DataError(fmt::format("{}: malformed tensor entry in the header: {}", path.string(), e.what()));
  }
  std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) { return a.begin < b.begin; });
}

SafetensorsReader::~SafetensorsReader() { release_map(); }

void SafetensorsReader::release_map() noexcept {
  if (map_ != nullptr) ::munmap(map_, map_size_);
  map_ = nullptr;
}

const SafetensorsEntry* SafetensorsReader::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

TensorView SafetensorsReader::view(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (e == nullptr) throw DataError(fmt::format("{}: no tensor named '{}'", path_.string(), name));
  return TensorView(const_cast<char*>(data_ + e->begin), e->dtype, e->shape);
}

void SafetensorsWriter::add(const std::string& name, const TensorView& tensor) {
  BIGNLP_CHECK(tensor.device().is_cpu(), "safetensors tensor '{}' must be in host memory, got {}", name,
               tensor.to_string());
  BIGNLP_CHECK(tensor.is_contiguous(), "safetensors tensor '{}' must be contiguous, got {}", name, tensor.to_string());
  for (const auto& [n, t] : tensors_) BIGNLP_CHECK(n != name, "safetensors tensor '{}' added twice", name);
  tensors_.emplace_back(name, tensor);
}

void SafetensorsWriter::write(const fs::path& path) const {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors_) {
    nlohmann::json shape = nlohmann::json::array();
    for (std::int64_t d : t.shape()) shape.push_back(d);
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())}, {"shape", shape}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');  // keep the data section 8-byte aligned
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
    const std::uint64_t len = text.size();
    out.write(reinterpret_cast<const char*>(&len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, t] : tensors_) out.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw IoError(fmt::format("cannot write '{}': write failed (disk full?)", path.string()));
    }
  }
  fsync_path(tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError(fmt::format("cannot write '{}': rename: {}", path.string(), ec.message()));
  }
  fsync_path(path.has_parent_path() ? path.parent_path() : fs::path("."));
}

}  // namespace bignlp

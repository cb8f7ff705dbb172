#include "bignlp/data/indexed_dataset.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <random>

#include "bignlp/core/check.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace fs = std::filesystem;

namespace bignlp::data {
namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr char kLegacyMagic[8] = {'T', 'N', 'T', 'I', 'D', 'X', '\0', '\0'};
constexpr std::size_t kHeaderSize = 34;
constexpr std::size_t kWriteBuffer = 4u << 20;

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void append_pod(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

bool is_integer_dtype(TokenDType d) {
  switch (d) {
    case TokenDType::kUint8:
    case TokenDType::kInt8:
    case TokenDType::kInt16:
    case TokenDType::kInt32:
    case TokenDType::kInt64:
    case TokenDType::kUint16: return true;
    default: return false;
  }
}

std::string temp_suffix() {
  std::random_device rd;
  return fmt::format(".tmp-{:08x}{:04x}", rd(), ::getpid() & 0xffff);
}

}  // namespace

std::size_t token_dtype_size(TokenDType dtype) {
  switch (dtype) {
    case TokenDType::kUint8:
    case TokenDType::kInt8: return 1;
    case TokenDType::kInt16:
    case TokenDType::kUint16: return 2;
    case TokenDType::kInt32: return 4;
    case TokenDType::kInt64:
    case TokenDType::kFloat64:
    case TokenDType::kFloat: return 8;
  }
  return 0;
}

std::string_view token_dtype_name(TokenDType dtype) {
  switch (dtype) {
    case TokenDType::kUint8: return "uint8";
    case TokenDType::kInt8: return "int8";
    case TokenDType::kInt16: return "int16";
    case TokenDType::kInt32: return "int32";
    case TokenDType::kInt64: return "int64";
    case TokenDType::kFloat64: return "float64";
    case TokenDType::kFloat: return "float";
    case TokenDType::kUint16: return "uint16";
  }
  return "unknown";
}

TokenDType best_fitting_token_dtype(std::int64_t vocab_size) {
  return vocab_size < 65500 ? TokenDType::kUint16 : TokenDType::kInt32;
}

fs::path dataset_bin_path(const fs::path& prefix) { return fs::path(prefix.string() + ".bin"); }
fs::path dataset_idx_path(const fs::path& prefix) { return fs::path(prefix.string() + ".idx"); }

bool indexed_dataset_exists(const fs::path& prefix) {
  std::error_code ec;
  return fs::is_regular_file(dataset_idx_path(prefix), ec) && fs::is_regular_file(dataset_bin_path(prefix), ec);
}

// ---------------------------------------------------------------------------------------------
// Reader

IndexedDataset::IndexedDataset(const fs::path& prefix) : prefix_(prefix) {
  const fs::path idx_path = dataset_idx_path(prefix);
  const fs::path bin_path = dataset_bin_path(prefix);
  idx_ = MappedFile(idx_path);
  const auto corrupt = [&](const std::string& why) -> void {
    throw DataError(fmt::format("'{}': corrupt dataset index: {}", idx_path.string(), why));
  };
  const std::byte* p = idx_.data();
  const std::size_t n_bytes = idx_.size();
  if (n_bytes >= sizeof(kLegacyMagic) && std::memcmp(p, kLegacyMagic, sizeof(kLegacyMagic)) == 0) {
    corrupt("this is the legacy 'lazy'/'cached' (TNTIDX) format; re-run preprocessing with --dataset-impl mmap");
  }
  if (n_bytes < kHeaderSize) {
    corrupt(fmt::format("truncated: {} bytes, the header alone needs {}", n_bytes, kHeaderSize));
  }
  if (std::memcmp(p, kMagic, sizeof(kMagic)) != 0) corrupt("bad magic (expected \"MMIDIDX\\0\\0\")");
  const auto version = load<std::uint64_t>(p + 9);
  if (version != 1) corrupt(fmt::format("unsupported version {} (expected 1)", version));
  const auto code = static_cast<std::uint8_t>(p[17]);
  dtype_ = static_cast<TokenDType>(code);
  if (code < 1 || code > 8) corrupt(fmt::format("unknown dtype code {}", code));
  if (!is_integer_dtype(dtype_)) {
    corrupt(fmt::format("dtype code {} ({}) cannot hold token ids", code, token_dtype_name(dtype_)));
  }
  itemsize_ = token_dtype_size(dtype_);
  const auto n = load<std::uint64_t>(p + 18);
  const auto d = load<std::uint64_t>(p + 26);
  // Guard the arithmetic below against absurd counts in a corrupt header.
  if (n > n_bytes || d > n_bytes) {
    corrupt(fmt::format("header claims {} sequences and {} doc_idx entries, more than the file can hold "
                        "({} bytes): truncated or corrupt",
                        n, d, n_bytes));
  }
  const std::size_t expected = kHeaderSize + 12 * n + 8 * d;
  // Newer Megatron may append one i8 "sequence mode" per sequence (multimodal only).
  if (n_bytes != expected && n_bytes != expected + n) {
    corrupt(fmt::format("expected {} bytes for {} sequences and {} doc_idx entries, found {} ({})", expected, n, d,
                        n_bytes, n_bytes < expected ? "truncated" : "trailing bytes"));
  }
  sizes_ = UnalignedArray<std::int32_t>(p + kHeaderSize, n);
  pointers_ = UnalignedArray<std::int64_t>(p + kHeaderSize + 4 * n, n);
  doc_idx_ = UnalignedArray<std::int64_t>(p + kHeaderSize + 12 * n, d);
  if (d == 0) corrupt("doc_idx is empty (it always starts with 0)");
  if (doc_idx_[0] != 0) corrupt(fmt::format("doc_idx[0] is {} (expected 0)", doc_idx_[0]));
  std::int64_t prev = 0;
  for (std::size_t k = 1; k < d; ++k) {
    const std::int64_t v = doc_idx_[k];
    if (v < prev || v > static_cast<std::int64_t>(n)) {
      corrupt(fmt::format("doc_idx[{}] = {} is out of order or beyond the {} sequences", k, v, n));
    }
    prev = v;
  }
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t s = sizes_[i];
    if (s < 0) corrupt(fmt::format("sizes[{}] is negative ({})", i, s));
    if (pointers_[i] != offset) {
      corrupt(fmt::format("pointers[{}] = {} but the sizes before it add up to byte {}", i, pointers_[i], offset));
    }
    offset += static_cast<std::int64_t>(s) * static_cast<std::int64_t>(itemsize_);
    total_tokens_ += s;
  }
  bin_ = MappedFile(bin_path);
  if (static_cast<std::int64_t>(bin_.size()) != offset) {
    throw DataError(fmt::format("'{}': {}: the index '{}' describes {} bytes ({} tokens of {}), the file has {}",
                                bin_path.string(),
                                static_cast<std::int64_t>(bin_.size()) < offset ? "truncated data file"
                                                                                : "data file longer than its index",
                                idx_path.filename().string(), offset, total_tokens_, token_dtype_name(dtype_),
                                bin_.size()));
  }
}

template <typename Out>
void IndexedDataset::read_impl(std::size_t i, std::size_t offset, std::span<Out> out) const {
  BIGNLP_CHECK(i < num_sequences(), "sequence {} out of range ({} sequences in '{}')", i, num_sequences(),
               prefix_.string());
  const auto size = static_cast<std::size_t>(sizes_[i]);
  BIGNLP_CHECK(offset + out.size() <= size, "tokens [{}, {}) are outside sequence {} of length {} in '{}'", offset,
               offset + out.size(), i, size, prefix_.string());
  const std::byte* src = bin_.data() + pointers_[i] + offset * itemsize_;
  const std::size_t count = out.size();
  switch (dtype_) {
    case TokenDType::kUint8:
      for (std::size_t k = 0; k < count; ++k) out[k] = static_cast<Out>(load<std::uint8_t>(src + k));
      break;
    case TokenDType::kInt8:
      for (std::size_t k = 0; k < count; ++k) out[k] = static_cast<Out>(load<std::int8_t>(src + k));
      break;
    case TokenDType::kInt16:
      for (std::size_t k = 0; k < count; ++k) out[k] = static_cast<Out>(load<std::int16_t>(src + 2 * k));
      break;
    case TokenDType::kUint16:
      for (std::size_t k = 0; k < count; ++k) out[k] = static_cast<Out>(load<std::uint16_t>(src + 2 * k));
      break;
    case TokenDType::kInt32:
      for (std::size_t k = 0; k < count; ++k) out[k] = static_cast<Out>(load<std::int32_t>(src + 4 * k));
      break;
    case TokenDType::kInt64:
      for (std::size_t k = 0; k < count; ++k) out[k] = static_cast<Out>(load<std::int64_t>(src + 8 * k));
      break;
    default: BIGNLP_CHECK(false, "dtype {} cannot hold tokens", token_dtype_name(dtype_));
  }
}

void IndexedDataset::read(std::size_t i, std::size_t offset, std::span<std::int64_t> out) const {
  read_impl(i, offset, out);
}
void IndexedDataset::read(std::size_t i, std::size_t offset, std::span<std::int32_t> out) const {
  read_impl(i, offset, out);
}

std::vector<std::int64_t> IndexedDataset::get(std::size_t i, std::size_t offset) const {
  BIGNLP_CHECK(i < num_sequences(), "sequence {} out of range ({} sequences)", i, num_sequences());
  const auto size = static_cast<std::size_t>(sizes_[i]);
  BIGNLP_CHECK(offset <= size, "offset {} beyond sequence {} of length {}", offset, i, size);
  std::vector<std::int64_t> out(size - offset);
  read(i, offset, std::span<std::int64_t>(out));
  return out;
}

std::span<const std::byte> IndexedDataset::raw(std::size_t i) const {
  BIGNLP_CHECK(i < num_sequences(), "sequence {} out of range ({} sequences)", i, num_sequences());
  return {bin_.data() + pointers_[i], static_cast<std::size_t>(sizes_[i]) * itemsize_};
}

// ---------------------------------------------------------------------------------------------
// Builder

IndexedDatasetBuilder::IndexedDatasetBuilder(const fs::path& prefix, TokenDType dtype)
    : prefix_(prefix), dtype_(dtype), itemsize_(token_dtype_size(dtype)) {
  BIGNLP_CHECK(is_integer_dtype(dtype), "dtype {} cannot hold tokens", token_dtype_name(dtype));
  const fs::path bin = dataset_bin_path(prefix);
  if (bin.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(bin.parent_path(), ec);
    if (ec) throw IoError(fmt::format("cannot create directory '{}': {}", bin.parent_path().string(), ec.message()));
  }
  const std::string suffix = temp_suffix();
  bin_tmp_ = fs::path(bin.string() + suffix);
  fd_ = ::open(bin_tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(fmt::format("cannot write '{}': {}", bin.string(), std::strerror(errno)));
  buffer_.reserve(kWriteBuffer);
}

IndexedDatasetBuilder::~IndexedDatasetBuilder() {
  if (fd_ >= 0) ::close(fd_);
  if (!finalized_) {
    std::error_code ec;
    fs::remove(bin_tmp_, ec);
  }
}

void IndexedDatasetBuilder::flush() {
  std::size_t written = 0;
  while (written < buffer_.size()) {
    const ssize_t k = ::write(fd_, buffer_.data() + written, buffer_.size() - written);
    if (k < 0) {
      if (errno == EINTR) continue;
      throw IoError(fmt::format("cannot write '{}': {}", dataset_bin_path(prefix_).string(), std::strerror(errno)));
    }
    written += static_cast<std::size_t>(k);
  }
  buffer_.clear();
}

void IndexedDatasetBuilder::write_bytes(const void* data, std::size_t size) {
  const auto* p = static_cast<const std::byte*>(data);
  if (buffer_.size() + size > kWriteBuffer) flush();
  if (size >= kWriteBuffer) {
    buffer_.assign(p, p + size);
    flush();
  } else {
    buffer_.insert(buffer_.end(), p, p + size);
  }
  bin_bytes_ += static_cast<std::int64_t>(size);
}

template <typename In>
void IndexedDatasetBuilder::add_item_impl(std::span<const In> tokens) {
  BIGNLP_CHECK(!finalized_, "add_item after finalize");
  if (tokens.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    throw DataError(fmt::format("'{}': a sequence of {} tokens does not fit the index's int32 sizes",
                                dataset_bin_path(prefix_).string(), tokens.size()));
  }
  const auto store = [&]<typename T>(T) {
    constexpr auto lo = static_cast<std::int64_t>(std::numeric_limits<T>::min());
    constexpr auto hi = static_cast<std::int64_t>(std::numeric_limits<T>::max());
    std::byte chunk[4096];
    std::size_t used = 0;
    for (const In t : tokens) {
      const auto v = static_cast<std::int64_t>(t);
      if (v < lo || v > hi) {
        throw DataError(fmt::format("'{}': token id {} does not fit the dataset dtype {}",
                                    dataset_bin_path(prefix_).string(), v, token_dtype_name(dtype_)));
      }
      const T narrow = static_cast<T>(v);
      std::memcpy(chunk + used, &narrow, sizeof(T));
      used += sizeof(T);
      if (used == sizeof(chunk)) {
        write_bytes(chunk, used);
        used = 0;
      }
    }
    if (used) write_bytes(chunk, used);
  };
  switch (dtype_) {
    case TokenDType::kUint8: store(std::uint8_t{}); break;
    case TokenDType::kInt8: store(std::int8_t{}); break;
    case TokenDType::kInt16: store(std::int16_t{}); break;
    case TokenDType::kUint16: store(std::uint16_t{}); break;
    case TokenDType::kInt32: store(std::int32_t{}); break;
    case TokenDType::kInt64: store(std::int64_t{}); break;
    default: BIGNLP_CHECK(false, "unreachable dtype");
  }
  sizes_.push_back(static_cast<std::int32_t>(tokens.size()));
  tokens_ += static_cast<std::int64_t>(tokens.size());
}

void IndexedDatasetBuilder::add_item(std::span<const std::int32_t> tokens) { add_item_impl(tokens); }
void IndexedDatasetBuilder::add_item(std::span<const std::int64_t> tokens) { add_item_impl(tokens); }

void IndexedDatasetBuilder::end_document() { doc_idx_.push_back(static_cast<std::int64_t>(sizes_.size())); }

void IndexedDatasetBuilder::merge(const IndexedDataset& other) {
  BIGNLP_CHECK(!finalized_, "merge after finalize");
  if (other.dtype() != dtype_) {
    throw DataError(fmt::format("cannot merge '{}' ({}) into '{}' ({}): the dtypes differ", other.prefix().string(),
                                token_dtype_name(other.dtype()), prefix_.string(), token_dtype_name(dtype_)));
  }
  const auto offset = static_cast<std::int64_t>(sizes_.size());
  const auto sizes = other.sizes();
  for (std::size_t i = 0; i < sizes.size(); ++i) sizes_.push_back(sizes[i]);
  const auto docs = other.doc_idx();
  for (std::size_t k = 1; k < docs.size(); ++k) doc_idx_.push_back(offset + docs[k]);
  tokens_ += other.total_tokens();
  if (other.num_sequences() > 0) {
    const std::byte* begin = other.raw(0).data();
    const auto last = other.num_sequences() - 1;
    const std::byte* end = other.raw(last).data() + other.raw(last).size();
    // Copy in bounded pieces so the page cache, not our heap, holds the data.
    for (const std::byte* p = begin; p < end; p += kWriteBuffer) {
      write_bytes(p, std::min<std::size_t>(kWriteBuffer, static_cast<std::size_t>(end - p)));
    }
  }
}

void IndexedDatasetBuilder::finalize() {
  BIGNLP_CHECK(!finalized_, "finalize called twice");
  flush();
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    fd_ = -1;
    throw IoError(fmt::format("cannot write '{}': {}", dataset_bin_path(prefix_).string(), std::strerror(errno)));
  }
  fd_ = -1;
  std::string idx;
  idx.reserve(kHeaderSize + sizes_.size() * 12 + doc_idx_.size() * 8);
  idx.append(kMagic, sizeof(kMagic));
  append_pod<std::uint64_t>(idx, 1);
  append_pod<std::uint8_t>(idx, static_cast<std::uint8_t>(dtype_));
  append_pod<std::uint64_t>(idx, sizes_.size());
  append_pod<std::uint64_t>(idx, doc_idx_.size());
  idx.append(reinterpret_cast<const char*>(sizes_.data()), sizes_.size() * sizeof(std::int32_t));
  std::int64_t pointer = 0;
  for (const std::int32_t s : sizes_) {
    append_pod<std::int64_t>(idx, pointer);
    pointer += static_cast<std::int64_t>(s) * static_cast<std::int64_t>(itemsize_);
  }
  idx.append(reinterpret_cast<const char*>(doc_idx_.data()), doc_idx_.size() * sizeof(std::int64_t));
  BIGNLP_CHECK(pointer == bin_bytes_, "index describes {} bytes but {} were written", pointer, bin_bytes_);
  // The .bin goes into place first, after any stale .idx is gone: a visible .idx always has its
  // complete .bin.
  std::error_code ec;
  fs::remove(dataset_idx_path(prefix_), ec);
  fs::rename(bin_tmp_, dataset_bin_path(prefix_), ec);
  if (ec) {
    throw IoError(fmt::format("cannot rename '{}' to '{}': {}", bin_tmp_.string(), dataset_bin_path(prefix_).string(),
                              ec.message()));
  }
  write_file_atomic(dataset_idx_path(prefix_), idx);
  finalized_ = true;
}

void merge_indexed_datasets(const std::vector<fs::path>& input_prefixes, const fs::path& output_prefix) {
  if (input_prefixes.empty()) throw UsageError("merging datasets needs at least one input prefix");
  std::vector<std::unique_ptr<IndexedDataset>> inputs;
  for (const auto& prefix : input_prefixes) inputs.push_back(std::make_unique<IndexedDataset>(prefix));
  IndexedDatasetBuilder builder(output_prefix, inputs.front()->dtype());
  for (const auto& in : inputs) builder.merge(*in);
  builder.finalize();
}

}  // namespace bignlp::data

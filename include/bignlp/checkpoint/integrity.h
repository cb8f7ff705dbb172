// Checkpoint integrity: what lets a load tell an intact checkpoint from a damaged one.
//
// Every shard file a checkpoint writer produces (write_shard_file) carries, in its safetensors
// header metadata under kChecksumKey, a JSON object mapping each tensor name to the CRC-32 (zlib's
// polynomial, 8 lowercase hex digits) of that tensor's raw little-endian bytes. metadata.json
// records the byte size of every shard file ("files", see metadata.h) and "tensor_checksums":
// "crc32". A load checks the file sizes (truncation), each tensor's CRC-32 before its bytes are
// used (flipped bits, garbage) and that every weight and optimizer moment is finite (a diverged
// state saved before the run stopped, or a NaN written in place with a matching checksum).
// Checkpoints written before checksums existed carry neither key: they load with a warning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "bignlp/checkpoint/metadata.h"
#include "bignlp/tensor/safetensors.h"

namespace bignlp::checkpoint {

/// Safetensors metadata key of the per-tensor checksums.
inline constexpr const char* kChecksumKey = "bignlp.crc32";
/// The value of metadata.json's "tensor_checksums" when shards carry them.
inline constexpr const char* kChecksumAlgorithm = "crc32";

/// CRC-32 (zlib) of `n` bytes.
std::uint32_t crc32_of(const void* data, std::size_t n);

/// Sets the per-tensor checksums of `w`'s tensors and writes it to `path` (temp file + rename).
void write_shard_file(SafetensorsWriter& w, const std::filesystem::path& path);

/// The sizes of the shard files under a checkpoint directory: "<shard>/<file>" -> bytes, for every
/// regular file one level below `dir` (metadata.json itself is not a shard file).
std::map<std::string, std::uint64_t> shard_file_sizes(const std::filesystem::path& dir);

/// Checks the shard file `file` (a path below checkpoint `dir`) against the sizes `meta` records.
/// Throws DataError naming the file when it is missing from the record or its size differs.
/// Returns false (nothing checked) for a checkpoint that records no sizes (written before them).
bool check_shard_file_size(const std::filesystem::path& dir, const CheckpointState& meta,
                           const std::filesystem::path& file);

/// The recorded checksums of one opened shard file.
class ShardChecksums {
 public:
  /// Reads the checksums of `reader`'s file. Throws DataError naming the file when `required`
  /// (metadata.json says the shards carry them) and they are absent or malformed.
  ShardChecksums(const SafetensorsReader& reader, bool required);
  bool present() const { return present_; }
  /// Checks tensor `name`'s bytes against its recorded CRC-32 (no-op when none are present).
  /// Throws DataError naming the file and tensor on a mismatch or a tensor without a checksum.
  void verify(const std::string& name) const;

 private:
  const SafetensorsReader* reader_;
  bool present_ = false;
  std::map<std::string, std::uint32_t> crc_;
};

/// Throws DataError naming `file` and `tensor` when the fp32 host tensor `t` holds a NaN or an
/// infinity (the count and the first bad element are named).
void check_finite(const TensorView& t, const std::filesystem::path& file, const std::string& tensor);

}  // namespace bignlp::checkpoint

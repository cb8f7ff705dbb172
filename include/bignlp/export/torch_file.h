// torch.save files: writing the zip layout torch.load (and NeMo) reads, and reading such files
// back through a restricted pickle reader.
//
// The file (PyTorch >= 1.6 serialization, what torch.save writes by default):
//   a zip archive (stored, not compressed) whose members all lie under one folder "<archive>/":
//     <archive>/data.pkl     a pickle (protocol 2) of the saved object: here an
//                            collections.OrderedDict {name: tensor}; each tensor is
//                            torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
//                            requires_grad=False, backward_hooks=OrderedDict()) and each storage a
//                            persistent id ('storage', torch.<T>Storage, '<key>', 'cpu', numel)
//     <archive>/data/<key>   the raw little-endian bytes of storage <key>, 64-byte aligned in the
//                            file (the padding is a local-header extra field, as torch writes it)
//     <archive>/version      "3\n"
// Zip64 records are written when a member or an offset passes 4 GiB.
// TorchFileWriter streams: each tensor's bytes go to the file when added; only names, shapes and
// offsets stay in memory until finish() writes data.pkl and the central directory. The file is
// written under a temporary name and renamed by finish() (nothing half-written on failure).
//
// Reading (read_torch_file): the zip's central directory (zip64 understood), then data.pkl through
// a pickle reader that executes nothing: it understands the opcodes of protocols 2-4 that state
// dicts use (dicts, lists, tuples, strings, numbers, memo, MARK, BUILD of an OrderedDict's
// attributes) and calls no function except the allow-listed constructors
//   collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
//   torch.<Float|Half|BFloat16|Double|Long|Int|Short|Char|Byte|Bool>Storage (as storage types).
// Any other global or opcode is a DataError naming the file, the byte offset in data.pkl and the
// opcode or global. A PyTorch Lightning checkpoint (a dict with a 'state_dict' entry) gives that
// entry's tensors. Legacy (pre-1.6, non-zip) torch.save files are refused with a clear message.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bignlp/tensor/tensor.h"

namespace bignlp::exporting {

class TorchFileWriter {
 public:
  /// Starts `path` (written as "<path>.tmp-<random>" until finish()). `archive` is the folder name
  /// inside the zip (torch uses the file's stem; NeMo's files use "archive" or the stem).
  explicit TorchFileWriter(std::filesystem::path path, std::string archive = "archive");
  ~TorchFileWriter();
  TorchFileWriter(const TorchFileWriter&) = delete;
  TorchFileWriter& operator=(const TorchFileWriter&) = delete;

  /// Appends tensor `name` (contiguous host view: fp32, bf16, fp16, int32 or int64) to the file now.
  /// Throws RuntimeError for a duplicate name, IoError for a write failure.
  void add(const std::string& name, const TensorView& tensor);
  /// Saves the state dict as the value of `key` in an outer dict ({key: {name: tensor}}), the
  /// nesting of NeMo's prompt-learning weights ({'prompt_table': {...}}); the reader flattens it.
  void set_outer_key(std::string key) { outer_key_ = std::move(key); }
  /// Writes data.pkl, version and the central directory, fsyncs and renames to the path.
  void finish();
  /// Bytes written so far.
  std::uint64_t bytes_written() const { return offset_; }

 private:
  struct Member {
    std::string name;
    std::uint64_t size = 0;
    std::uint32_t crc = 0;
    std::uint64_t header_offset = 0;
  };
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
  };
  void write_member(const std::string& name, const void* data, std::uint64_t size);
  void write_raw(const void* data, std::size_t size);

  std::filesystem::path path_, tmp_;
  std::string archive_;
  std::FILE* file_ = nullptr;
  std::uint64_t offset_ = 0;
  bool finished_ = false;
  std::vector<Member> members_;
  std::vector<Entry> entries_;
  std::string outer_key_;
};

/// One tensor of a torch file, described (its bytes stay in the file until read()).
struct TorchTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::string storage_key;
  std::int64_t storage_offset = 0;  ///< elements
  std::vector<std::int64_t> stride;
};

class TorchFileReader {
 public:
  /// Reads the zip directory and data.pkl. Throws IoError (cannot open) or DataError (not a torch
  /// zip file, unsupported pickle content; naming the file and offset).
  explicit TorchFileReader(const std::filesystem::path& path);
  ~TorchFileReader();
  TorchFileReader(const TorchFileReader&) = delete;
  TorchFileReader& operator=(const TorchFileReader&) = delete;

  /// The tensors in the order data.pkl lists them.
  const std::vector<TorchTensor>& tensors() const { return tensors_; }
  const TorchTensor* find(const std::string& name) const;
  /// Tensor `name` widened to fp32 (contiguous copy). Throws DataError naming the file and tensor
  /// when absent, not a float, or when its storage is too short or fails its CRC.
  std::vector<float> read_f32(const std::string& name) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Member {
    std::uint64_t data_offset = 0;
    std::uint64_t size = 0;
    std::uint32_t crc = 0;
    bool stored = true;
  };
  std::string read_member(const std::string& name) const;

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::uint64_t file_size_ = 0;
  std::string prefix_;  // "<archive>/"
  std::map<std::string, Member> members_;
  std::vector<TorchTensor> tensors_;
};

}  // namespace bignlp::exporting

#include "bignlp/export/torch_file.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cstring>
#include <random>
#include <set>
#include <variant>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/ops/ops.h"

namespace fs = std::filesystem;

namespace bignlp::exporting {
namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                        kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;
constexpr std::uint64_t k32 = 0xFFFFFFFFull;
constexpr std::uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01

void put16(std::string& s, std::uint16_t v) {
  s.push_back(static_cast<char>(v & 0xFF));
  s.push_back(static_cast<char>(v >> 8));
}
void put32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint16_t get16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t get32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
std::uint64_t get64(const unsigned char* p) {
  return static_cast<std::uint64_t>(get32(p)) | (static_cast<std::uint64_t>(get32(p + 4)) << 32);
}

std::uint32_t crc_of(const void* data, std::uint64_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {
    const uInt n = static_cast<uInt>(std::min<std::uint64_t>(size, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    size -= n;
  }
  return static_cast<std::uint32_t>(crc);
}

const char* storage_type(DType t) {
  switch (t) {
    case DType::kF32: return "FloatStorage";
    case DType::kF16: return "HalfStorage";
    case DType::kBF16: return "BFloat16Storage";
    case DType::kI32: return "IntStorage";
    case DType::kI64: return "LongStorage";
    default: return nullptr;
  }
}

// ---- pickle emission (protocol 2) ---------------------------------------------------------------

struct PickleOut {
  std::string s;
  void op(char c) { s.push_back(c); }
  void global(const std::string& module, const std::string& name) { s += "c" + module + "\n" + name + "\n"; }
  void str(const std::string& v) {
    op('X');
    put32(s, static_cast<std::uint32_t>(v.size()));
    s += v;
  }
  void integer(std::int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      s.push_back(static_cast<char>(v));
    } else if (v >= 0 && v < 65536) {
      op('M');
      put16(s, static_cast<std::uint16_t>(v));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      put32(s, static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
    } else {  // LONG1: little-endian two's complement, 8 bytes
      op('\x8a');
      s.push_back(8);
      put64(s, static_cast<std::uint64_t>(v));
    }
  }
  void int_tuple(const std::vector<std::int64_t>& v) {
    if (v.empty()) {
      op(')');
      return;
    }
    op('(');
    for (auto x : v) integer(x);
    op('t');
  }
};

}  // namespace

// ---- writer -------------------------------------------------------------------------------------

TorchFileWriter::TorchFileWriter(fs::path path, std::string archive) : path_(std::move(path)), archive_(std::move(archive)) {
  std::random_device rd;
  tmp_ = path_;
  tmp_ += fmt::format(".tmp-{:08x}", rd());
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (file_ == nullptr) throw IoError(fmt::format("cannot create '{}': {}", tmp_.string(), std::strerror(errno)));
}

TorchFileWriter::~TorchFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) {
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
}

void TorchFileWriter::write_raw(const void* data, std::size_t size) {
  if (size > 0 && std::fwrite(data, 1, size, file_) != size)
    throw IoError(fmt::format("cannot write '{}': {}", tmp_.string(), std::strerror(errno)));
  offset_ += size;
}

void TorchFileWriter::write_member(const std::string& name, const void* data, std::uint64_t size) {
  Member m;
  m.name = archive_ + "/" + name;
  m.size = size;
  m.crc = crc_of(data, size);
  m.header_offset = offset_;
  const bool zip64 = size >= k32;
  std::string extra;
  if (zip64) {
    put16(extra, 0x0001);
    put16(extra, 16);
    put64(extra, size);
    put64(extra, size);
  }
  // Pad so the data starts on a 64-byte boundary (an extra field "FB", as torch does).
  const std::uint64_t base = offset_ + 30 + m.name.size() + extra.size() + 4;
  const std::uint64_t pad = (64 - base % 64) % 64;
  put16(extra, 0x4246);
  put16(extra, static_cast<std::uint16_t>(pad));
  extra.append(pad, 'Z');
  std::string h;
  put32(h, kLocalSig);
  put16(h, zip64 ? 45 : 20);
  put16(h, 0);
  put16(h, 0);
  put16(h, 0);
  put16(h, kDosDate);
  put32(h, m.crc);
  put32(h, zip64 ? static_cast<std::uint32_t>(k32) : static_cast<std::uint32_t>(size));
  put32(h, zip64 ? static_cast<std::uint32_t>(k32) : static_cast<std::uint32_t>(size));
  put16(h, static_cast<std::uint16_t>(m.name.size()));
  put16(h, static_cast<std::uint16_t>(extra.size()));
  h += m.name;
  h += extra;
  write_raw(h.data(), h.size());
  write_raw(data, static_cast<std::size_t>(size));
  members_.push_back(std::move(m));
}

void TorchFileWriter::add(const std::string& name, const TensorView& tensor) {
  if (finished_) throw RuntimeError(fmt::format("{}: add after finish", path_.string()));
  for (const auto& e : entries_)
    if (e.name == name) throw RuntimeError(fmt::format("{}: tensor '{}' added twice", path_.string(), name));
  if (!tensor.device().is_cpu() || !tensor.is_contiguous())
    throw RuntimeError(fmt::format("{}: tensor '{}' must be a contiguous host tensor", path_.string(), name));
  if (storage_type(tensor.dtype()) == nullptr)
    throw RuntimeError(fmt::format("{}: tensor '{}' has dtype {}, which torch files here do not take", path_.string(),
                                   name, dtype_name(tensor.dtype())));
  write_member(fmt::format("data/{}", entries_.size()), tensor.raw(), tensor.nbytes());
  entries_.push_back(Entry{name, tensor.dtype(), tensor.shape()});
}

void TorchFileWriter::finish() {
  PickleOut p;
  p.op('\x80');
  p.s.push_back(2);
  if (!outer_key_.empty()) {
    p.op('}');  // EMPTY_DICT: {outer_key_: OrderedDict(...)}
    p.str(outer_key_);
  }
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  if (!entries_.empty()) {
    p.op('(');
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const Entry& e = entries_[i];
      p.str(e.name);
      p.global("torch._utils", "_rebuild_tensor_v2");
      p.op('(');
      // storage: persistent id ('storage', torch.<T>Storage, key, 'cpu', numel)
      p.op('(');
      p.str("storage");
      p.global("torch", storage_type(e.dtype));
      p.str(std::to_string(i));
      p.str("cpu");
      p.integer(e.shape.numel());
      p.op('t');
      p.op('Q');
      p.integer(0);
      std::vector<std::int64_t> size(e.shape.begin(), e.shape.end());
      const Shape st = e.shape.contiguous_strides();
      std::vector<std::int64_t> stride(st.begin(), st.end());
      p.int_tuple(size);
      p.int_tuple(stride);
      p.op('\x89');  // requires_grad False
      p.global("collections", "OrderedDict");
      p.op(')');
      p.op('R');
      p.op('t');
      p.op('R');
    }
    p.op('u');
  }
  if (!outer_key_.empty()) p.op('s');  // SETITEM
  p.op('.');
  write_member("data.pkl", p.s.data(), p.s.size());
  const std::string version = "3\n";
  write_member("version", version.data(), version.size());
  // Central directory.
  const std::uint64_t cd_offset = offset_;
  for (const Member& m : members_) {
    const bool big_size = m.size >= k32, big_offset = m.header_offset >= k32;
    std::string extra;
    if (big_size || big_offset) {
      std::string body;
      if (big_size) {
        put64(body, m.size);
        put64(body, m.size);
      }
      if (big_offset) put64(body, m.header_offset);
      put16(extra, 0x0001);
      put16(extra, static_cast<std::uint16_t>(body.size()));
      extra += body;
    }
    std::string h;
    put32(h, kCentralSig);
    put16(h, 45);
    put16(h, extra.empty() ? 20 : 45);
    put16(h, 0);
    put16(h, 0);
    put16(h, 0);
    put16(h, kDosDate);
    put32(h, m.crc);
    put32(h, big_size ? static_cast<std::uint32_t>(k32) : static_cast<std::uint32_t>(m.size));
    put32(h, big_size ? static_cast<std::uint32_t>(k32) : static_cast<std::uint32_t>(m.size));
    put16(h, static_cast<std::uint16_t>(m.name.size()));
    put16(h, static_cast<std::uint16_t>(extra.size()));
    put16(h, 0);
    put16(h, 0);
    put16(h, 0);
    put32(h, 0);
    put32(h, big_offset ? static_cast<std::uint32_t>(k32) : static_cast<std::uint32_t>(m.header_offset));
    h += m.name;
    h += extra;
    write_raw(h.data(), h.size());
  }
  const std::uint64_t cd_size = offset_ - cd_offset;
  const std::uint64_t n = members_.size();
  const bool zip64 = cd_offset >= k32 || cd_size >= k32 || n >= 0xFFFF;
  std::string t;
  if (zip64) {
    const std::uint64_t end64 = offset_;
    put32(t, kEnd64Sig);
    put64(t, 44);
    put16(t, 45);
    put16(t, 45);
    put32(t, 0);
    put32(t, 0);
    put64(t, n);
    put64(t, n);
    put64(t, cd_size);
    put64(t, cd_offset);
    put32(t, kLocator64Sig);
    put32(t, 0);
    put64(t, end64);
    put32(t, 1);
  }
  put32(t, kEndSig);
  put16(t, 0);
  put16(t, 0);
  put16(t, zip64 ? 0xFFFF : static_cast<std::uint16_t>(n));
  put16(t, zip64 ? 0xFFFF : static_cast<std::uint16_t>(n));
  put32(t, zip64 ? static_cast<std::uint32_t>(k32) : static_cast<std::uint32_t>(cd_size));
  put32(t, zip64 ? static_cast<std::uint32_t>(k32) : static_cast<std::uint32_t>(cd_offset));
  put16(t, 0);
  write_raw(t.data(), t.size());
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0)
    throw IoError(fmt::format("cannot write '{}': {}", tmp_.string(), std::strerror(errno)));
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  fs::rename(tmp_, path_, ec);
  if (ec) throw IoError(fmt::format("cannot rename '{}' to '{}': {}", tmp_.string(), path_.string(), ec.message()));
  finished_ = true;
}

// ---- restricted pickle reader ------------------------------------------------------------------

namespace {

struct PValue;
using PPtr = std::shared_ptr<PValue>;

struct PStorage {
  DType dtype;
  std::string key;
  std::int64_t numel;
};

struct PValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kStr, kBytes, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kMark };
  Kind kind = Kind::kNone;
  std::int64_t i = 0;
  double f = 0.0;
  std::string s;              // str / bytes / global "module.name"
  std::vector<PPtr> items;    // tuple, list
  std::vector<std::pair<PPtr, PPtr>> dict;
  PStorage storage{};
  TorchTensor tensor;
};

PPtr make(PValue::Kind k) {
  auto p = std::make_shared<PValue>();
  p->kind = k;
  return p;
}

const std::set<std::string>& allowed_globals() {
  static const std::set<std::string> g = {
      "collections.OrderedDict",     "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
      "torch.FloatStorage",          "torch.HalfStorage",               "torch.BFloat16Storage",
      "torch.DoubleStorage",         "torch.LongStorage",               "torch.IntStorage",
      "torch.ShortStorage",          "torch.CharStorage",               "torch.ByteStorage",
      "torch.BoolStorage"};
  return g;
}

std::optional<DType> storage_dtype(const std::string& global) {
  if (global == "torch.FloatStorage") return DType::kF32;
  if (global == "torch.HalfStorage") return DType::kF16;
  if (global == "torch.BFloat16Storage") return DType::kBF16;
  if (global == "torch.IntStorage") return DType::kI32;
  if (global == "torch.LongStorage") return DType::kI64;
  return std::nullopt;  // allowed for reading the structure, refused when a tensor is read
}

class Unpickler {
 public:
  Unpickler(const std::string& data, std::string where) : d_(data), where_(std::move(where)) {}

  PPtr run() {
    while (true) {
      if (pos_ >= d_.size()) fail("truncated pickle (no STOP opcode)");
      op_at_ = pos_;
      const auto op = static_cast<unsigned char>(d_[pos_++]);
      switch (op) {
        case 0x80: take(1); break;  // PROTO
        case 0x95: take(8); break;  // FRAME
        case '.': {
          if (stack_.size() != 1) fail("STOP with a malformed stack");
          return stack_.back();
        }
        case '(': stack_.push_back(make(PValue::Kind::kMark)); break;
        case 'N': stack_.push_back(make(PValue::Kind::kNone)); break;
        case 0x88:
        case 0x89: {
          auto v = make(PValue::Kind::kBool);
          v->i = op == 0x88;
          stack_.push_back(v);
          break;
        }
        case 'K': push_int(static_cast<unsigned char>(take(1)[0])); break;
        case 'M': push_int(get16(bytes(2))); break;
        case 'J': push_int(static_cast<std::int32_t>(get32(bytes(4)))); break;
        case 0x8a: {  // LONG1
          const auto n = static_cast<unsigned char>(take(1)[0]);
          if (n > 8) fail("integer wider than 64 bits");
          const auto* b = bytes(n);
          std::uint64_t v = 0;
          for (unsigned k = 0; k < n; ++k) v |= static_cast<std::uint64_t>(b[k]) << (8 * k);
          if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~0ull << (8 * n);
          push_int(static_cast<std::int64_t>(v));
          break;
        }
        case 'G': {
          const auto* b = bytes(8);
          std::uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];  // big-endian
          double x;
          std::memcpy(&x, &bits, 8);
          auto v = make(PValue::Kind::kFloat);
          v->f = x;
          stack_.push_back(v);
          break;
        }
        case 'X': push_str(PValue::Kind::kStr, get32(bytes(4))); break;
        case 0x8c: push_str(PValue::Kind::kStr, static_cast<unsigned char>(take(1)[0])); break;
        case 0x8d: push_str(PValue::Kind::kStr, get64(bytes(8))); break;
        case 'U': push_str(PValue::Kind::kBytes, static_cast<unsigned char>(take(1)[0])); break;
        case 'T': push_str(PValue::Kind::kBytes, get32(bytes(4))); break;
        case 'C': push_str(PValue::Kind::kBytes, static_cast<unsigned char>(take(1)[0])); break;
        case 'B': push_str(PValue::Kind::kBytes, get32(bytes(4))); break;
        case ')': stack_.push_back(make(PValue::Kind::kTuple)); break;
        case ']': stack_.push_back(make(PValue::Kind::kList)); break;
        case '}': stack_.push_back(make(PValue::Kind::kDict)); break;
        case 't': {
          auto v = make(PValue::Kind::kTuple);
          v->items = pop_to_mark();
          stack_.push_back(v);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          const std::size_t n = op - 0x84;
          need(n);
          auto v = make(PValue::Kind::kTuple);
          v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          stack_.push_back(v);
          break;
        }
        case 'q': memo_put(static_cast<unsigned char>(take(1)[0])); break;
        case 'r': memo_put(get32(bytes(4))); break;
        case 0x94: memo_put(memo_.size()); break;
        case 'h': memo_get(static_cast<unsigned char>(take(1)[0])); break;
        case 'j': memo_get(get32(bytes(4))); break;
        case 'c': {
          const std::string module = line(), name = line();
          push_global(module + "." + name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          need(2);
          auto name = stack_.back();
          stack_.pop_back();
          auto module = stack_.back();
          stack_.pop_back();
          if (module->kind != PValue::Kind::kStr || name->kind != PValue::Kind::kStr) fail("STACK_GLOBAL of non-strings");
          push_global(module->s + "." + name->s);
          break;
        }
        case 'a': {
          need(2);
          auto v = stack_.back();
          stack_.pop_back();
          auto list = top(PValue::Kind::kList, "APPEND");
          list->items.push_back(v);
          break;
        }
        case 'e': {
          auto items = pop_to_mark();
          top(PValue::Kind::kList, "APPENDS")->items.insert(top(PValue::Kind::kList, "APPENDS")->items.end(),
                                                            items.begin(), items.end());
          break;
        }
        case 's': {
          need(3);
          auto v = stack_.back();
          stack_.pop_back();
          auto k = stack_.back();
          stack_.pop_back();
          top(PValue::Kind::kDict, "SETITEM")->dict.emplace_back(k, v);
          break;
        }
        case 'u': {
          auto items = pop_to_mark();
          if (items.size() % 2 != 0) fail("SETITEMS with an odd number of items");
          auto d = top(PValue::Kind::kDict, "SETITEMS");
          for (std::size_t k = 0; k < items.size(); k += 2) d->dict.emplace_back(items[k], items[k + 1]);
          break;
        }
        case 'Q': {  // BINPERSID
          need(1);
          auto pid = stack_.back();
          stack_.pop_back();
          stack_.push_back(persistent(pid));
          break;
        }
        case 'R': {
          need(2);
          auto args = stack_.back();
          stack_.pop_back();
          auto fn = stack_.back();
          stack_.pop_back();
          stack_.push_back(reduce(fn, args));
          break;
        }
        case 'b': {  // BUILD: only an OrderedDict's attributes (state_dict()._metadata) or a tensor's
          need(2);
          auto state = stack_.back();
          stack_.pop_back();
          auto obj = stack_.back();
          if (obj->kind != PValue::Kind::kDict && obj->kind != PValue::Kind::kTensor)
            fail("BUILD of an object that is not an OrderedDict or a tensor");
          break;
        }
        default:
          fail(fmt::format("opcode 0x{:02x} is outside the subset a state dict uses (refused, not executed)", op));
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(fmt::format("{}: at byte {}: {}", where_, op_at_, what));
  }
  const char* take(std::size_t n) {
    if (pos_ + n > d_.size()) fail("truncated pickle");
    const char* p = d_.data() + pos_;
    pos_ += n;
    return p;
  }
  const unsigned char* bytes(std::size_t n) { return reinterpret_cast<const unsigned char*>(take(n)); }
  std::string line() {
    const auto end = d_.find('\n', pos_);
    if (end == std::string::npos) fail("truncated GLOBAL");
    std::string s = d_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  void need(std::size_t n) const {
    if (stack_.size() < n) fail("stack underflow");
  }
  void push_int(std::int64_t x) {
    auto v = make(PValue::Kind::kInt);
    v->i = x;
    stack_.push_back(v);
  }
  void push_str(PValue::Kind kind, std::uint64_t n) {
    auto v = make(kind);
    v->s.assign(take(static_cast<std::size_t>(n)), static_cast<std::size_t>(n));
    stack_.push_back(v);
  }
  void push_global(const std::string& name) {
    if (allowed_globals().count(name) == 0)
      fail(fmt::format("global '{}' is not allowed (only tensors, storages and OrderedDict are; refused, not executed)",
                       name));
    auto v = make(PValue::Kind::kGlobal);
    v->s = name;
    stack_.push_back(v);
  }
  void memo_put(std::size_t idx) {
    need(1);
    if (memo_.size() <= idx) memo_.resize(idx + 1);
    memo_[idx] = stack_.back();
  }
  void memo_get(std::size_t idx) {
    if (idx >= memo_.size() || !memo_[idx]) fail(fmt::format("memo entry {} is not set", idx));
    stack_.push_back(memo_[idx]);
  }
  std::vector<PPtr> pop_to_mark() {
    for (std::size_t k = stack_.size(); k-- > 0;) {
      if (stack_[k]->kind == PValue::Kind::kMark) {
        std::vector<PPtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(k) + 1, stack_.end());
        stack_.resize(k);
        return items;
      }
    }
    fail("no MARK on the stack");
  }
  PPtr top(PValue::Kind kind, const char* op) const {
    if (stack_.empty() || stack_.back()->kind != kind) fail(fmt::format("{} on the wrong kind of object", op));
    return stack_.back();
  }
  PPtr persistent(const PPtr& pid) {
    if (pid->kind != PValue::Kind::kTuple || pid->items.size() != 5 || pid->items[0]->s != "storage" ||
        pid->items[1]->kind != PValue::Kind::kGlobal || pid->items[2]->kind != PValue::Kind::kStr ||
        pid->items[4]->kind != PValue::Kind::kInt)
      fail("persistent id is not ('storage', type, key, location, numel)");
    auto v = make(PValue::Kind::kStorage);
    const auto dt = storage_dtype(pid->items[1]->s);
    if (!dt) fail(fmt::format("storage type '{}' is not a float or int32/int64 type", pid->items[1]->s));
    v->storage = PStorage{*dt, pid->items[2]->s, pid->items[4]->i};
    return v;
  }
  std::vector<std::int64_t> ints(const PPtr& t, const char* what) const {
    if (t->kind != PValue::Kind::kTuple) fail(fmt::format("tensor {} is not a tuple", what));
    std::vector<std::int64_t> out;
    for (const auto& x : t->items) {
      if (x->kind != PValue::Kind::kInt) fail(fmt::format("tensor {} holds a non-integer", what));
      out.push_back(x->i);
    }
    return out;
  }
  PPtr reduce(const PPtr& fn, const PPtr& args) {
    if (fn->kind != PValue::Kind::kGlobal || args->kind != PValue::Kind::kTuple) fail("REDUCE of a non-callable");
    if (fn->s == "collections.OrderedDict") {
      if (!args->items.empty()) fail("OrderedDict with constructor arguments");
      return make(PValue::Kind::kDict);
    }
    if (fn->s == "torch._utils._rebuild_tensor_v2") {
      if (args->items.size() < 4 || args->items[0]->kind != PValue::Kind::kStorage ||
          args->items[1]->kind != PValue::Kind::kInt)
        fail("_rebuild_tensor_v2 with unexpected arguments");
      auto v = make(PValue::Kind::kTensor);
      const PStorage& st = args->items[0]->storage;
      v->tensor.dtype = st.dtype;
      v->tensor.storage_key = st.key;
      v->tensor.storage_offset = args->items[1]->i;
      for (auto x : ints(args->items[2], "size")) v->tensor.shape.push_back(x);
      v->tensor.stride = ints(args->items[3], "stride");
      if (v->tensor.stride.size() != static_cast<std::size_t>(v->tensor.shape.rank())) fail("tensor stride rank differs from its size");
      return v;
    }
    if (fn->s == "torch._utils._rebuild_parameter") {
      if (args->items.empty() || args->items[0]->kind != PValue::Kind::kTensor) fail("_rebuild_parameter of a non-tensor");
      return args->items[0];
    }
    fail(fmt::format("'{}' is not callable here", fn->s));
  }

  const std::string& d_;
  std::string where_;
  std::size_t pos_ = 0, op_at_ = 0;
  std::vector<PPtr> stack_;
  std::vector<PPtr> memo_;
};

}  // namespace

// ---- reader -------------------------------------------------------------------------------------

TorchFileReader::TorchFileReader(const fs::path& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) throw IoError(fmt::format("cannot open '{}': {}", path.string(), std::strerror(errno)));
  std::error_code ec;
  file_size_ = fs::file_size(path, ec);
  if (ec) throw IoError(fmt::format("cannot stat '{}': {}", path.string(), ec.message()));
  auto bad = [&](const std::string& what) { return DataError(fmt::format("{}: {}", path.string(), what)); };
  auto read_at = [&](std::uint64_t off, std::size_t n) {
    if (off + n > file_size_) throw bad(fmt::format("truncated zip archive (needs bytes up to {}, the file has {})",
                                                    off + n, file_size_));
    std::string buf(n, '\0');
    if (::fseeko(file_, static_cast<off_t>(off), SEEK_SET) != 0 || std::fread(buf.data(), 1, n, file_) != n)
      throw IoError(fmt::format("cannot read '{}'", path.string()));
    return buf;
  };
  {
    const std::string head = read_at(0, std::min<std::uint64_t>(file_size_, 4));
    if (head.size() < 4 || get32(reinterpret_cast<const unsigned char*>(head.data())) != kLocalSig) {
      if (!head.empty() && static_cast<unsigned char>(head[0]) == 0x80)
        throw bad("a legacy (PyTorch < 1.6, non-zip) torch.save file; re-save it with torch >= 1.6 "
                  "(torch.save(torch.load(f), f))");
      throw bad("not a torch.save zip file (no zip local header at offset 0)");
    }
  }
  // End of central directory: the last 22..65557 bytes.
  const std::uint64_t tail_len = std::min<std::uint64_t>(file_size_, 22 + 65535);
  const std::string tail = read_at(file_size_ - tail_len, static_cast<std::size_t>(tail_len));
  std::int64_t eocd = -1;
  for (std::int64_t k = static_cast<std::int64_t>(tail.size()) - 22; k >= 0; --k) {
    if (get32(reinterpret_cast<const unsigned char*>(tail.data() + k)) == kEndSig) {
      eocd = k;
      break;
    }
  }
  if (eocd < 0) throw bad("truncated or corrupt zip archive (no end of central directory record)");
  const auto* e = reinterpret_cast<const unsigned char*>(tail.data() + eocd);
  std::uint64_t n = get16(e + 10), cd_size = get32(e + 12), cd_offset = get32(e + 16);
  if (n == 0xFFFF || cd_size == k32 || cd_offset == k32) {
    const std::uint64_t eocd_abs = file_size_ - tail_len + static_cast<std::uint64_t>(eocd);
    if (eocd_abs < 20) throw bad("corrupt zip64 archive (no zip64 locator)");
    const std::string loc = read_at(eocd_abs - 20, 20);
    const auto* l = reinterpret_cast<const unsigned char*>(loc.data());
    if (get32(l) != kLocator64Sig) throw bad("corrupt zip64 archive (no zip64 locator)");
    const std::string rec = read_at(get64(l + 8), 56);
    const auto* r = reinterpret_cast<const unsigned char*>(rec.data());
    if (get32(r) != kEnd64Sig) throw bad("corrupt zip64 archive (no zip64 end record)");
    n = get64(r + 32);
    cd_size = get64(r + 40);
    cd_offset = get64(r + 48);
  }
  const std::string cd = read_at(cd_offset, static_cast<std::size_t>(cd_size));
  std::size_t pos = 0;
  for (std::uint64_t k = 0; k < n; ++k) {
    if (pos + 46 > cd.size()) throw bad("corrupt zip central directory");
    const auto* c = reinterpret_cast<const unsigned char*>(cd.data() + pos);
    if (get32(c) != kCentralSig) throw bad("corrupt zip central directory (bad signature)");
    Member m;
    const std::uint16_t method = get16(c + 10);
    m.crc = get32(c + 16);
    std::uint64_t csize = get32(c + 20);
    m.size = get32(c + 24);
    const std::size_t name_len = get16(c + 28), extra_len = get16(c + 30), comment_len = get16(c + 32);
    std::uint64_t local = get32(c + 42);
    if (pos + 46 + name_len + extra_len + comment_len > cd.size()) throw bad("corrupt zip central directory");
    const std::string name = cd.substr(pos + 46, name_len);
    const auto* x = c + 46 + name_len;
    for (std::size_t q = 0; q + 4 <= extra_len;) {
      const std::uint16_t id = get16(x + q), len = get16(x + q + 2);
      if (id == 0x0001) {
        std::size_t at = q + 4;
        if (m.size == k32) { m.size = get64(x + at); at += 8; }
        if (csize == k32) { csize = get64(x + at); at += 8; }
        if (local == k32) { local = get64(x + at); }
      }
      q += 4 + len;
    }
    m.stored = method == 0;
    if (!m.stored) throw bad(fmt::format("member '{}' is compressed (method {}); torch files are stored", name, method));
    const std::string lh = read_at(local, 30);
    const auto* lp = reinterpret_cast<const unsigned char*>(lh.data());
    if (get32(lp) != kLocalSig) throw bad(fmt::format("member '{}': bad local header", name));
    m.data_offset = local + 30 + get16(lp + 26) + get16(lp + 28);
    if (m.data_offset + m.size > file_size_) throw bad(fmt::format("truncated zip archive: member '{}' ends past the file", name));
    if (k == 0) {
      const auto slash = name.find('/');
      if (slash == std::string::npos) throw bad("zip members are not inside one archive folder");
      prefix_ = name.substr(0, slash + 1);
    }
    if (name.rfind(prefix_, 0) != 0) throw bad(fmt::format("member '{}' lies outside the archive folder '{}'", name, prefix_));
    members_[name.substr(prefix_.size())] = m;
    pos += 46 + name_len + extra_len + comment_len;
  }
  if (members_.count("data.pkl") == 0) throw bad("no data.pkl member (not a torch.save file)");
  const std::string pkl = read_member("data.pkl");
  Unpickler up(pkl, path.string() + ":data.pkl");
  PPtr root = up.run();
  auto str_key = [&](const PPtr& k) -> std::string {
    if (k->kind != PValue::Kind::kStr) throw bad("data.pkl: a state-dict key is not a string");
    return k->s;
  };
  if (root->kind != PValue::Kind::kDict) throw bad("data.pkl does not hold a dict");
  for (const auto& [k, v] : root->dict) {  // a Lightning checkpoint: its 'state_dict'; prompt learning: 'prompt_table'
    if (k->kind == PValue::Kind::kStr && (k->s == "state_dict" || k->s == "prompt_table") &&
        v->kind == PValue::Kind::kDict) {
      root = v;
      break;
    }
  }
  for (const auto& [k, v] : root->dict) {
    const std::string name = str_key(k);
    if (v->kind != PValue::Kind::kTensor)
      throw bad(fmt::format("data.pkl: entry '{}' is not a tensor (a state dict of tensors is expected)", name));
    TorchTensor t = v->tensor;
    t.name = name;
    tensors_.push_back(std::move(t));
  }
}

TorchFileReader::~TorchFileReader() {
  if (file_ != nullptr) std::fclose(file_);
}

std::string TorchFileReader::read_member(const std::string& name) const {
  const Member& m = members_.at(name);
  std::string buf(static_cast<std::size_t>(m.size), '\0');
  if (::fseeko(file_, static_cast<off_t>(m.data_offset), SEEK_SET) != 0 ||
      std::fread(buf.data(), 1, buf.size(), file_) != buf.size())
    throw IoError(fmt::format("cannot read member '{}' of '{}'", name, path_.string()));
  if (crc_of(buf.data(), buf.size()) != m.crc)
    throw DataError(fmt::format("{}: member '{}' fails its CRC-32 check (corrupt file)", path_.string(), name));
  return buf;
}

const TorchTensor* TorchFileReader::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<float> TorchFileReader::read_f32(const std::string& name) const {
  const TorchTensor* t = find(name);
  if (t == nullptr) throw DataError(fmt::format("{}: tensor '{}' is missing", path_.string(), name));
  if (!is_floating(t->dtype))
    throw DataError(fmt::format("{}: tensor '{}' has dtype {}, not a float", path_.string(), name, dtype_name(t->dtype)));
  const std::string key = "data/" + t->storage_key;
  if (members_.count(key) == 0)
    throw DataError(fmt::format("{}: tensor '{}': storage '{}' is missing", path_.string(), name, key));
  const std::string raw = read_member(key);
  const std::size_t es = dtype_size(t->dtype);
  // The elements the view touches must lie inside the storage.
  std::int64_t last = t->storage_offset;
  for (int d = 0; d < t->shape.rank(); ++d)
    if (t->shape[d] > 0) last += (t->shape[d] - 1) * t->stride[static_cast<std::size_t>(d)];
  const std::int64_t numel = t->shape.numel();
  if (numel > 0 && (t->storage_offset < 0 || static_cast<std::uint64_t>(last + 1) * es > raw.size()))
    throw DataError(fmt::format("{}: tensor '{}' of shape {} reaches past its storage of {} bytes", path_.string(), name,
                                t->shape.to_string(), raw.size()));
  std::vector<float> out(static_cast<std::size_t>(numel));
  const Shape strides = [&] {
    Shape s;
    for (auto x : t->stride) s.push_back(x);
    return s;
  }();
  const TensorView src(const_cast<char*>(raw.data()) + t->storage_offset * static_cast<std::int64_t>(es), t->dtype,
                       t->shape, strides, Device::cpu());
  ops::copy(ops::OpContext::cpu(), src, TensorView(out.data(), DType::kF32, t->shape));
  return out;
}

}  // namespace bignlp::exporting

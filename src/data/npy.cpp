#include "bignlp/data/npy.h"

#include <fmt/format.h>

#include <cstring>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"

namespace bignlp::data {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::size_t kAlign = 64;
// numpy >= 1.24 pads the header so the first axis can grow to 21 digits in place.
constexpr std::size_t kGrowthAxisMaxDigits = 21;

std::string shape_repr(const std::vector<std::int64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + ")";
}

std::size_t descr_itemsize(std::string_view descr) {
  if (descr.size() < 3) return 0;
  return static_cast<std::size_t>(std::atoi(std::string(descr.substr(2)).c_str()));
}

}  // namespace

std::string npy_preamble(std::string_view descr, const std::vector<std::int64_t>& shape) {
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape_repr(shape));
  if (!shape.empty()) {
    const std::size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisMaxDigits) header.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  const std::size_t hlen = header.size() + 1;  // + '\n'
  const std::size_t padlen = kAlign - ((kMagicLen + 2 + 2 + hlen) % kAlign);
  header.append(padlen == kAlign ? 0 : padlen, ' ');
  header.push_back('\n');
  std::string out(kMagic, kMagicLen);
  out.push_back('\x01');
  out.push_back('\x00');
  const auto len = static_cast<std::uint16_t>(header.size());
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(len >> 8));
  return out + header;
}

void write_npy_bytes(const std::filesystem::path& path, std::string_view descr, const std::vector<std::int64_t>& shape,
                     std::span<const std::byte> data) {
  std::string content = npy_preamble(descr, shape);
  content.append(reinterpret_cast<const char*>(data.data()), data.size());
  write_file_atomic(path, content);
}

NpyArray::NpyArray(const std::filesystem::path& path) : file_(path) {
  const auto fail = [&](const std::string& why) -> void {
    throw DataError(fmt::format("'{}': not a valid .npy file: {}", path.string(), why));
  };
  const auto* p = reinterpret_cast<const char*>(file_.data());
  if (file_.size() < 10 || std::memcmp(p, kMagic, kMagicLen) != 0) fail("bad magic or file too short");
  const auto major = static_cast<unsigned char>(p[6]);
  std::size_t header_len = 0;
  std::size_t header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(p[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(p[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (file_.size() < 12) fail("file too short");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<std::size_t>(static_cast<unsigned char>(p[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    fail(fmt::format("unsupported format version {}", major));
  }
  if (header_start + header_len > file_.size()) fail("header runs past the end of the file");
  const std::string_view header(p + header_start, header_len);
  data_offset_ = header_start + header_len;

  const auto value_of = [&](std::string_view key) -> std::string_view {
    const std::string needle = fmt::format("'{}':", key);
    const auto pos = header.find(needle);
    if (pos == std::string_view::npos) fail(fmt::format("header has no '{}'", key));
    std::string_view rest = header.substr(pos + needle.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    return rest;
  };
  std::string_view d = value_of("descr");
  if (d.empty() || d.front() != '\'') fail("descr is not a string");
  const auto dend = d.find('\'', 1);
  if (dend == std::string_view::npos) fail("unterminated descr");
  descr_ = std::string(d.substr(1, dend - 1));
  if (!value_of("fortran_order").starts_with("False")) fail("Fortran-order arrays are not supported");
  std::string_view s = value_of("shape");
  if (s.empty() || s.front() != '(') fail("shape is not a tuple");
  const auto send = s.find(')');
  if (send == std::string_view::npos) fail("unterminated shape");
  s = s.substr(1, send - 1);
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    if (i >= s.size()) break;
    std::int64_t v = 0;
    bool any = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      v = v * 10 + (s[i] - '0');
      ++i;
      any = true;
    }
    if (!any) fail("shape has a non-integer entry");
    shape_.push_back(v);
  }
  const std::size_t itemsize = descr_itemsize(descr_);
  if (itemsize == 0) fail(fmt::format("unsupported descr '{}'", descr_));
  const auto need = static_cast<std::size_t>(element_count()) * itemsize;
  if (file_.size() - data_offset_ != need) {
    fail(fmt::format("expected {} data bytes for shape {} of '{}', found {} (truncated or corrupt)", need,
                     shape_repr(shape_), descr_, file_.size() - data_offset_));
  }
}

std::int64_t NpyArray::element_count() const {
  std::int64_t n = 1;
  for (auto d : shape_) n *= d;
  return n;
}

void NpyArray::check_descr(std::string_view expected) const {
  if (descr_ != expected) {
    throw DataError(fmt::format("'{}': expected dtype '{}', found '{}'", path().string(), expected, descr_));
  }
}

}  // namespace bignlp::data

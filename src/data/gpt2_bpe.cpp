#include "bignlp/data/gpt2_bpe.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <queue>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/unicode.h"

namespace bignlp::data {
namespace {

constexpr std::uint32_t kNoRank = std::numeric_limits<std::uint32_t>::max();
constexpr std::string_view kEndOfText = "<|endoftext|>";

// Character classes of the pre-tokenizer.
enum class Cls : std::uint8_t { kLetter, kNumber, kSpace, kOther };

struct AsciiClasses {
  std::array<Cls, 128> cls{};
  AsciiClasses() {
    for (int c = 0; c < 128; ++c) {
      Cls k = Cls::kOther;
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) k = Cls::kLetter;
      else if (c >= '0' && c <= '9') k = Cls::kNumber;
      else if ((c >= 0x09 && c <= 0x0D) || c == ' ') k = Cls::kSpace;
      cls[static_cast<std::size_t>(c)] = k;
    }
  }
};
const AsciiClasses kAscii;

// Class and byte length of the character at text[i].
inline std::pair<Cls, std::uint32_t> char_at(std::string_view text, std::size_t i) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) return {kAscii.cls[b], 1};
  const Utf8Char c = decode_utf8(text, i);
  if (!c.valid) return {Cls::kOther, 1};
  const std::uint16_t f = unicode_flags(c.cp);
  if (f & kUnicodeLetter) return {Cls::kLetter, c.length};
  if (f & kUnicodeNumber) return {Cls::kNumber, c.length};
  if (f & kUnicodeSpace) return {Cls::kSpace, c.length};
  return {Cls::kOther, c.length};
}

// End of the run of characters of class `k` (kOther: anything but space/letter/number) from i.
inline std::size_t run_end(std::string_view text, std::size_t i, Cls k) {
  while (i < text.size()) {
    const auto [c, len] = char_at(text, i);
    if (c != k) break;
    i += len;
  }
  return i;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) at text[i] == '\'', or 0.
inline std::size_t contraction_at(std::string_view text, std::size_t i) {
  if (i + 1 >= text.size()) return 0;
  const char a = text[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= text.size()) return 0;
  const char b = text[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Calls f(piece) for every pre-token of `text`, in order; the pieces tile the text exactly.
template <typename F>
void for_each_piece(std::string_view text, F&& f) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const char ch = text[i];
    if (ch == '\'') {
      if (const std::size_t len = contraction_at(text, i)) {
        f(text.substr(i, len));
        i += len;
        continue;
      }
    }
    auto [cls, len] = char_at(text, i);
    if (ch == ' ' && i + 1 < n) {
      const Cls next = char_at(text, i + 1).first;
      if (next != Cls::kSpace) {
        const std::size_t end = run_end(text, i + 1, next);
        f(text.substr(i, end - i));
        i = end;
        continue;
      }
    }
    if (cls != Cls::kSpace) {
      const std::size_t end = run_end(text, i, cls);
      f(text.substr(i, end - i));
      i = end;
      continue;
    }
    // Whitespace: \s+(?!\S) keeps the run but its last character when a non-space follows.
    std::size_t end = i;
    std::size_t last_start = i;
    while (end < n) {
      const auto [c, l] = char_at(text, end);
      if (c != Cls::kSpace) break;
      last_start = end;
      end += l;
    }
    if (end < n && last_start > i) end = last_start;
    f(text.substr(i, end - i));
    i = end;
  }
}

std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

// 64-bit hash of a short byte string (pieces are mostly < 16 bytes).
inline std::uint64_t hash_bytes(std::string_view s) {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ (s.size() * 0xC2B2AE3D27D4EB4FULL);
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 32;
  }
  std::uint64_t w = 0;
  std::memcpy(&w, s.data() + i, s.size() - i);
  h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
  h ^= h >> 29;
  return h;
}

}  // namespace

char32_t gpt2_byte_to_unicode(std::uint8_t byte) {
  const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
  if (printable) return byte;
  // The 68 other bytes map to U+0100 onwards in increasing byte order.
  int k = 0;
  for (int b = 0; b < byte; ++b) {
    const bool p = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!p) ++k;
  }
  return static_cast<char32_t>(0x100 + k);
}

// ---------------------------------------------------------------------------------------------

struct Gpt2BpeTokenizer::Impl {
  struct Slot {
    std::uint64_t key = ~0ULL;
    std::uint32_t rank = kNoRank;
    std::int32_t merged = -1;
  };
  std::vector<Slot> table;
  std::uint64_t mask = 0;
  int shift = 64;
  std::array<std::int32_t, 256> byte_token{};
  bool heap_safe = true;  // every merge's parts are created by lower-ranked merges
  std::optional<std::int32_t> eod;
  bool split_special = false;
  std::size_t cache_max_bytes = 0;

  void insert(std::int32_t a, std::int32_t b, std::uint32_t rank, std::int32_t merged) {
    const std::uint64_t key = pair_key(a, b);
    std::uint64_t i = (key * 0x9E3779B97F4A7C15ULL) >> shift;
    while (table[i].key != ~0ULL && table[i].key != key) i = (i + 1) & mask;
    table[i] = Slot{key, rank, merged};  // a repeated pair takes the later rank, like Python's dict
  }
  const Slot* find(std::int32_t a, std::int32_t b) const {
    const std::uint64_t key = pair_key(a, b);
    std::uint64_t i = (key * 0x9E3779B97F4A7C15ULL) >> shift;
    for (;;) {
      const Slot& s = table[i];
      if (s.key == key) return &s;
      if (s.key == ~0ULL) return nullptr;
      i = (i + 1) & mask;
    }
  }
  std::uint32_t rank(std::int32_t a, std::int32_t b) const {
    const Slot* s = find(a, b);
    return s ? s->rank : kNoRank;
  }

  // GPT-2's loop: merge every occurrence of the lowest-ranked pair, left to right.
  void bpe_scan(std::vector<std::int32_t>& syms) const {
    std::vector<std::int32_t> next;
    while (syms.size() > 1) {
      std::uint32_t best = kNoRank;
      const Slot* best_slot = nullptr;
      for (std::size_t i = 0; i + 1 < syms.size(); ++i) {
        const Slot* s = find(syms[i], syms[i + 1]);
        if (s && s->rank < best) {
          best = s->rank;
          best_slot = s;
        }
      }
      if (best_slot == nullptr) break;
      const auto a = static_cast<std::int32_t>(best_slot->key >> 32);
      const auto b = static_cast<std::int32_t>(best_slot->key & 0xffffffffu);
      next.clear();
      for (std::size_t i = 0; i < syms.size();) {
        if (i + 1 < syms.size() && syms[i] == a && syms[i + 1] == b) {
          next.push_back(best_slot->merged);
          i += 2;
        } else {
          next.push_back(syms[i++]);
        }
      }
      syms.swap(next);
    }
  }

  // The same result in O(n log n) for long pieces: repeatedly merge the leftmost lowest-ranked
  // pair. Equivalent because a merge's result only takes part in higher-ranked merges (heap_safe).
  void bpe_heap(std::vector<std::int32_t>& syms) const {
    const std::size_t n = syms.size();
    std::vector<std::int32_t> prev(n), nxt(n);
    std::vector<std::uint32_t> version(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      prev[i] = static_cast<std::int32_t>(i) - 1;
      nxt[i] = i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1;
    }
    struct Item {
      std::uint32_t rank;
      std::int32_t pos;
      std::uint32_t version;
      bool operator>(const Item& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
    const auto push = [&](std::int32_t pos) {
      if (pos < 0 || nxt[static_cast<std::size_t>(pos)] < 0) return;
      const std::uint32_t r = rank(syms[static_cast<std::size_t>(pos)], syms[static_cast<std::size_t>(nxt[static_cast<std::size_t>(pos)])]);
      if (r != kNoRank) heap.push({r, pos, version[static_cast<std::size_t>(pos)]});
    };
    for (std::size_t i = 0; i + 1 < n; ++i) push(static_cast<std::int32_t>(i));
    std::vector<bool> alive(n, true);
    while (!heap.empty()) {
      const Item it = heap.top();
      heap.pop();
      const auto p = static_cast<std::size_t>(it.pos);
      if (!alive[p] || it.version != version[p] || nxt[p] < 0) continue;
      const auto q = static_cast<std::size_t>(nxt[p]);
      const Slot* s = find(syms[p], syms[q]);
      if (s == nullptr || s->rank != it.rank) continue;
      syms[p] = s->merged;
      alive[q] = false;
      nxt[p] = nxt[q];
      if (nxt[q] >= 0) prev[static_cast<std::size_t>(nxt[q])] = static_cast<std::int32_t>(p);
      ++version[p];
      if (prev[p] >= 0) ++version[static_cast<std::size_t>(prev[p])];
      push(prev[p]);
      push(static_cast<std::int32_t>(p));
    }
    std::vector<std::int32_t> out;
    for (std::int32_t i = 0; i >= 0; i = nxt[static_cast<std::size_t>(i)]) out.push_back(syms[static_cast<std::size_t>(i)]);
    syms.swap(out);
  }

  void bpe(std::string_view piece, std::vector<std::int32_t>& syms) const {
    syms.clear();
    for (const char c : piece) syms.push_back(byte_token[static_cast<unsigned char>(c)]);
    if (syms.size() > 48 && heap_safe) {
      bpe_heap(syms);
    } else {
      bpe_scan(syms);
    }
  }
};

namespace {

// Per-thread encoder: pieces -> ids with a cache of pieces already seen.
class Gpt2Encoder final : public TokenEncoder {
 public:
  explicit Gpt2Encoder(std::shared_ptr<const Gpt2BpeTokenizer::Impl> impl) : impl_(std::move(impl)) {
    slots_.resize(1u << 16);
  }

  void encode(std::string_view text, std::vector<std::int32_t>& out) override {
    if (!impl_->split_special) {
      encode_ordinary(text, out);
      return;
    }
    std::size_t start = 0;
    for (;;) {
      const std::size_t pos = text.find(kEndOfText, start);
      if (pos == std::string_view::npos) break;
      encode_ordinary(text.substr(start, pos - start), out);
      out.push_back(*impl_->eod);
      start = pos + kEndOfText.size();
    }
    encode_ordinary(text.substr(start), out);
  }

 private:
  struct Entry {
    std::uint64_t hash = 0;
    std::uint32_t key_offset = 0;
    std::uint32_t key_length = 0;  // 0: empty slot
    std::uint32_t ids_offset = 0;
    std::uint32_t ids_length = 0;
  };

  void encode_ordinary(std::string_view text, std::vector<std::int32_t>& out) {
    for_each_piece(text, [&](std::string_view piece) {
      if (piece.size() == 1) {
        out.push_back(impl_->byte_token[static_cast<unsigned char>(piece[0])]);
        return;
      }
      const std::uint64_t h = hash_bytes(piece);
      std::size_t i = h & (slots_.size() - 1);
      for (;;) {
        const Entry& e = slots_[i];
        if (e.key_length == 0) break;
        if (e.hash == h && e.key_length == piece.size() &&
            std::memcmp(keys_.data() + e.key_offset, piece.data(), piece.size()) == 0) {
          out.insert(out.end(), ids_.begin() + e.ids_offset, ids_.begin() + e.ids_offset + e.ids_length);
          return;
        }
        i = (i + 1) & (slots_.size() - 1);
      }
      impl_->bpe(piece, scratch_);
      out.insert(out.end(), scratch_.begin(), scratch_.end());
      remember(h, i, piece);
    });
  }

  void remember(std::uint64_t h, std::size_t slot, std::string_view piece) {
    if (keys_.size() + ids_.size() * 4 + piece.size() > impl_->cache_max_bytes ||
        keys_.size() + piece.size() > std::numeric_limits<std::uint32_t>::max()) {
      clear();
      slot = h & (slots_.size() - 1);
    } else if ((used_ + 1) * 2 > slots_.size()) {
      grow();
      slot = h & (slots_.size() - 1);
      while (slots_[slot].key_length != 0) slot = (slot + 1) & (slots_.size() - 1);
    }
    Entry& e = slots_[slot];
    e.hash = h;
    e.key_offset = static_cast<std::uint32_t>(keys_.size());
    e.key_length = static_cast<std::uint32_t>(piece.size());
    e.ids_offset = static_cast<std::uint32_t>(ids_.size());
    e.ids_length = static_cast<std::uint32_t>(scratch_.size());
    keys_.append(piece);
    ids_.insert(ids_.end(), scratch_.begin(), scratch_.end());
    ++used_;
  }

  void grow() {
    std::vector<Entry> bigger(slots_.size() * 2);
    for (const Entry& e : slots_) {
      if (e.key_length == 0) continue;
      std::size_t i = e.hash & (bigger.size() - 1);
      while (bigger[i].key_length != 0) i = (i + 1) & (bigger.size() - 1);
      bigger[i] = e;
    }
    slots_.swap(bigger);
  }

  void clear() {
    std::fill(slots_.begin(), slots_.end(), Entry{});
    keys_.clear();
    ids_.clear();
    used_ = 0;
  }

  std::shared_ptr<const Gpt2BpeTokenizer::Impl> impl_;
  std::vector<Entry> slots_;
  std::size_t used_ = 0;
  std::string keys_;
  std::vector<std::int32_t> ids_;
  std::vector<std::int32_t> scratch_;
};

}  // namespace

Gpt2BpeTokenizer::Gpt2BpeTokenizer(const std::filesystem::path& vocab_file, const std::filesystem::path& merges_file,
                                   Gpt2BpeOptions options)
    : options_(options) {
  auto impl = std::make_shared<Impl>();
  // Inverse of the byte map: code point -> byte.
  std::array<int, 0x144> unicode_to_byte{};
  unicode_to_byte.fill(-1);
  for (int b = 0; b < 256; ++b) unicode_to_byte[gpt2_byte_to_unicode(static_cast<std::uint8_t>(b))] = b;

  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_file(vocab_file));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("'{}': not a GPT-2 vocab.json: {}", vocab_file.string(), e.what()));
  }
  if (!vocab.is_object()) throw DataError(fmt::format("'{}': expected a JSON object {{token: id}}", vocab_file.string()));
  const std::size_t n = vocab.size();
  id_to_token_.assign(n, std::string());
  id_to_bytes_.assign(n, std::string());
  std::vector<bool> seen(n, false);
  token_to_id_.reserve(n);
  for (const auto& [token, id_json] : vocab.items()) {
    if (!id_json.is_number_integer()) {
      throw DataError(fmt::format("'{}': the id of '{}' is not an integer", vocab_file.string(), token));
    }
    const auto id = id_json.get<std::int64_t>();
    if (id < 0 || static_cast<std::size_t>(id) >= n || seen[static_cast<std::size_t>(id)]) {
      throw DataError(fmt::format("'{}': ids must be 0..{} without gaps or repeats; '{}' has id {}", vocab_file.string(),
                                  n - 1, token, id));
    }
    seen[static_cast<std::size_t>(id)] = true;
    id_to_token_[static_cast<std::size_t>(id)] = token;
    token_to_id_.emplace(token, static_cast<std::int32_t>(id));
    std::string bytes;
    bool byte_level = true;
    for (std::size_t i = 0; i < token.size();) {
      const Utf8Char c = decode_utf8(token, i);
      if (!c.valid || c.cp >= unicode_to_byte.size() || unicode_to_byte[c.cp] < 0) {
        byte_level = false;
        break;
      }
      bytes.push_back(static_cast<char>(unicode_to_byte[c.cp]));
      i += c.length;
    }
    id_to_bytes_[static_cast<std::size_t>(id)] = byte_level ? bytes : token;
  }
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, gpt2_byte_to_unicode(static_cast<std::uint8_t>(b)));
    const auto it = token_to_id_.find(s);
    if (it == token_to_id_.end()) {
      throw DataError(fmt::format("'{}': byte 0x{:02x} ('{}') has no token; not a byte-level BPE vocabulary",
                                  vocab_file.string(), b, s));
    }
    impl->byte_token[static_cast<std::size_t>(b)] = it->second;
  }

  const std::string merges_text = read_file(merges_file);
  std::vector<std::array<std::int32_t, 3>> merges;
  std::size_t line_no = 0;
  std::size_t start = 0;
  while (start < merges_text.size()) {
    std::size_t end = merges_text.find('\n', start);
    if (end == std::string::npos) end = merges_text.size();
    std::string_view line(merges_text.data() + start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string_view::npos) {
      throw DataError(fmt::format("{}:{}: expected two symbols separated by one space, got '{}'", merges_file.string(),
                                  line_no, line));
    }
    const std::string a(line.substr(0, sp));
    const std::string b(line.substr(sp + 1));
    const auto ia = token_to_id_.find(a);
    const auto ib = token_to_id_.find(b);
    const auto iab = token_to_id_.find(a + b);
    for (const auto& [it, what] : {std::pair{ia, a}, std::pair{ib, b}, std::pair{iab, a + b}}) {
      if (it == token_to_id_.end()) {
        throw DataError(fmt::format("{}:{}: '{}' is not in '{}'", merges_file.string(), line_no, what, vocab_file.string()));
      }
    }
    merges.push_back({ia->second, ib->second, iab->second});
  }
  std::size_t cap = 1;
  int bits = 0;
  while (cap < merges.size() * 2 + 2) {
    cap <<= 1;
    ++bits;
  }
  impl->table.assign(cap, Impl::Slot{});
  impl->mask = cap - 1;
  impl->shift = 64 - bits;
  // The heap shortcut needs every symbol a merge uses to be produced only by lower-ranked merges
  // (true of BPE as trained); otherwise the exact rescan is used for every piece.
  std::vector<std::int64_t> last_created(n, -1);
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const auto [a, b, ab] = merges[r];
    impl->insert(a, b, static_cast<std::uint32_t>(r), ab);
    last_created[static_cast<std::size_t>(ab)] = static_cast<std::int64_t>(r);
  }
  for (std::size_t r = 0; r < merges.size() && impl->heap_safe; ++r) {
    for (const std::int32_t part : {merges[r][0], merges[r][1]}) {
      if (last_created[static_cast<std::size_t>(part)] >= static_cast<std::int64_t>(r)) impl->heap_safe = false;
    }
  }
  const auto eot = token_to_id_.find(std::string(kEndOfText));
  if (eot != token_to_id_.end()) {
    special_.eod = eot->second;
    special_.bos = eot->second;
    special_.eos = eot->second;
  }
  impl->eod = special_.eod;
  impl->split_special = options.split_special_tokens && special_.eod.has_value();
  impl->cache_max_bytes = options.cache_max_bytes;
  impl_ = std::move(impl);
}

Gpt2BpeTokenizer::~Gpt2BpeTokenizer() = default;

std::unique_ptr<TokenEncoder> Gpt2BpeTokenizer::make_encoder() const { return std::make_unique<Gpt2Encoder>(impl_); }

std::string Gpt2BpeTokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  for (const std::int32_t id : ids) {
    if (id >= 0 && static_cast<std::size_t>(id) < id_to_bytes_.size()) out += id_to_bytes_[static_cast<std::size_t>(id)];
  }
  return out;
}

std::string Gpt2BpeTokenizer::id_to_token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return {};
  return id_to_token_[static_cast<std::size_t>(id)];
}

std::optional<std::int32_t> Gpt2BpeTokenizer::token_to_id(std::string_view token) const {
  const auto it = token_to_id_.find(std::string(token));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string_view> Gpt2BpeTokenizer::pretokenize(std::string_view text) {
  std::vector<std::string_view> out;
  for_each_piece(text, [&](std::string_view piece) { out.push_back(piece); });
  return out;
}

}  // namespace bignlp::data

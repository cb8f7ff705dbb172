// Encoding many texts on several threads: one TokenEncoder (and so one word cache) per thread,
// texts handed out dynamically, results in input order. The ids are identical for any thread count.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "bignlp/data/tokenizer.h"

namespace bignlp::data {

/// ids[i] = tokenizer.encode(texts[i]); `threads` <= 0 means every hardware thread.
std::vector<std::vector<std::int32_t>> encode_batch(const Tokenizer& tokenizer, std::span<const std::string_view> texts,
                                                    int threads = 0);

}  // namespace bignlp::data

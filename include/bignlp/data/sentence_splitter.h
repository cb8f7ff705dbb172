// A small rule-based English sentence splitter for `--split-sentences` (BERT-style data), standing
// in for NLTK's punkt model, which is not available as a Debian package.
//
// A sentence ends after '.', '!' or '?' (plus any closing quotes or brackets) when whitespace
// follows and the next word starts with an upper-case letter, a digit or an opening quote/bracket,
// unless the word before the period is a common abbreviation (Mr, Dr, e.g, etc, ...) or a single
// letter (an initial). Like punkt, newlines alone do not end a sentence. Sentences are returned
// without the whitespace between them; with keep_newlines the whitespace after a sentence stays
// attached to it (Megatron's --keep-newlines).
// Deliberately not handled: punkt's learned abbreviation and collocation statistics.
#pragma once

#include <string_view>
#include <vector>

namespace bignlp::data {

/// Splits `text` into sentences (views into `text`); empty or whitespace-only text gives none.
std::vector<std::string_view> split_sentences(std::string_view text, bool keep_newlines = false);

}  // namespace bignlp::data

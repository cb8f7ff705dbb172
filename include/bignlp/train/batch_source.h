// BatchSource: where the trainer takes its micro-batches from, whatever the model family.
//
// Sample k of the run is a fixed sample (a resumable sampler: the order is a function of k only),
// and a micro-batch is B consecutive samples starting at a given k. GPT pre-training reads
// GptDataLoader; fine-tuning, prompt learning and T5 bring their own sources.
#pragma once

#include <cstdint>

#include "bignlp/model/model.h"

namespace bignlp::train {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  /// The micro-batch of samples [first, first + B), host memory valid until the next call.
  /// Throws DataError past the end.
  virtual model::Batch batch(std::int64_t first) = 0;
  /// Samples available.
  virtual std::int64_t size() const = 0;
};

}  // namespace bignlp::train

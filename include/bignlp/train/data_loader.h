// GptDataLoader: micro-batches of GPT samples in the order a resumable Megatron sampler gives them.
//
// Sample k of the run (k = consumed_samples + offset) is dataset sample k; a micro-batch is B
// consecutive samples. Each sample holds T+1 tokens: tokens = sample[:-1], labels = sample[1:]
// (megatron-model.md §1.6); loss_mask = 1 except (eod_mask_loss) where the input token is EOD;
// positions = 0..T-1, or (reset_position_ids) restarting after every EOD. Host memory, owned by the
// loader and valid until the next call.
#pragma once

#include <memory>
#include <vector>

#include "bignlp/data/sample_dataset.h"
#include "bignlp/train/batch_source.h"
#include "bignlp/train/training_config.h"

namespace bignlp::train {

class GptDataLoader final : public BatchSource {
 public:
  /// Throws DataError when the dataset's samples are not seq_length + 1 tokens long.
  GptDataLoader(std::shared_ptr<const data::SampleDataset> dataset, std::int64_t micro_batch_size,
                std::int64_t seq_length, const DataConfig& config);

  /// The micro-batch of samples [first, first + B). Throws DataError past the end of the dataset.
  model::Batch batch(std::int64_t first) override;
  std::int64_t size() const override { return dataset_->size(); }

 private:
  std::shared_ptr<const data::SampleDataset> dataset_;
  std::int64_t b_, t_;
  DataConfig config_;
  std::vector<std::int32_t> sample_, tokens_, labels_, positions_;
  std::vector<float> loss_mask_;
};

}  // namespace bignlp::train

#include "bignlp/data/batch_encode.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

namespace bignlp::data {

std::vector<std::vector<std::int32_t>> encode_batch(const Tokenizer& tokenizer, std::span<const std::string_view> texts,
                                                    int threads) {
  std::vector<std::vector<std::int32_t>> out(texts.size());
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int n = std::clamp(threads <= 0 ? hw : threads, 1, std::max<int>(1, static_cast<int>(texts.size())));
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  const auto work = [&] {
    try {
      auto enc = tokenizer.make_encoder();
      for (std::size_t i; (i = next.fetch_add(1)) < texts.size();) enc->encode(texts[i], out[i]);
    } catch (...) {
      std::lock_guard lock(error_mu);
      if (!error) error = std::current_exception();
      next = texts.size();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return out;
}

}  // namespace bignlp::data

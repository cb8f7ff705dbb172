#include "bignlp/hp/model_size.h"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <vector>

#include "bignlp/core/error.h"

namespace bignlp::hp {

std::optional<Family> parse_family(std::string_view name) {
  if (name == "gpt3") return Family::kGpt3;
  if (name == "t5") return Family::kT5;
  if (name == "mt5") return Family::kMt5;
  if (name == "bert") return Family::kBert;
  return std::nullopt;
}

std::string_view to_string(Family family) {
  switch (family) {
    case Family::kGpt3: return "gpt3";
    case Family::kT5: return "t5";
    case Family::kMt5: return "mt5";
    case Family::kBert: return "bert";
  }
  return "?";
}

double round_to(double x, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::nearbyint(x * scale) / scale;  // ties to even, as Python's round()
}

namespace {

void check_budget(const Budget& b) {
  if (b.num_nodes < 1 || b.gpus_per_node < 1) {
    throw ConfigError(fmt::format("train_settings.num_nodes={} x train_settings.gpus_per_node={} must be at least 1 GPU",
                                  b.num_nodes, b.gpus_per_node));
  }
  if (!(b.tflops_per_gpu > 0)) {
    throw ConfigError(fmt::format("train_settings.tflops_per_gpu={} must be positive", b.tflops_per_gpu));
  }
  if (!(b.num_tokens_in_b > 0)) {
    throw ConfigError(fmt::format("train_settings.num_tokens_in_b={} must be positive", b.num_tokens_in_b));
  }
}

}  // namespace

std::optional<double> estimate_model_size(std::string_view model, double max_training_days, const Budget& b) {
  const auto family = parse_family(model);
  if (!family) return std::nullopt;
  check_budget(b);
  if (!(max_training_days > 0)) {
    throw ConfigError(fmt::format("train_settings.max_training_days={} must be positive", max_training_days));
  }
  const double k = *family == Family::kMt5 ? 0.87 : 1.0;
  const double gpus = double(b.num_nodes) * b.gpus_per_node;
  const double size = k * max_training_days * 86400.0 * gpus * b.tflops_per_gpu * 1e12 /
                      (8.0 * b.num_tokens_in_b * 1e9) / 1e9;
  return round_to(size, 2);
}

std::optional<double> estimate_training_days(std::string_view model, double size, const Budget& b) {
  const auto family = parse_family(model);
  if (!family) return std::nullopt;
  check_budget(b);
  if (!(size > 0)) throw ConfigError(fmt::format("train_settings.model_size_in_b={} must be positive", size));
  const double k = *family == Family::kMt5 ? 1.15 : 1.0;
  const double gpus = double(b.num_nodes) * b.gpus_per_node;
  const double days = k * size * 1e9 * 8.0 * b.num_tokens_in_b * 1e9 / (86400.0 * gpus * b.tflops_per_gpu * 1e12);
  return round_to(days, 2);
}

double calculate_model_size(Family family, double V, double s, double h, double L, double ffn, double kv,
                            double heads) {
  switch (family) {
    case Family::kGpt3:
      return 12.0 * L * h * h * (1.0 + 13.0 / (12.0 * h) + (V + s) / (12.0 * L * h)) / 1e9;
    case Family::kT5:
    case Family::kMt5: {
      const double pj = heads * kv;
      return (3.0 * L * ffn + 3.0 * L * pj + h * (2.0 + 6.0 * L * ffn + L * (21.0 + 12.0 * pj) + s + V)) / 1e9;
    }
    case Family::kBert:
      return (L * (ffn + h * (4.0 * h + 3.0 * heads + 2.0 * ffn + 6.0)) + h * (V + s + h + 5.0)) / 1e9;
  }
  return 0;
}

namespace {

struct SizeRow {
  double bound;    // size < bound (or <= when `inclusive`)
  bool inclusive;
  int hidden, heads;
  int ffn;         // 0: none
  int kv;          // 0: none
  double lr;
};

const std::vector<SizeRow>& size_rows(Family f) {
  static const std::vector<SizeRow> gpt = {
      {0.25, false, 768, 12, 0, 0, 6e-4},     {0.5, false, 1024, 16, 0, 0, 3e-4},
      {1, false, 1536, 16, 0, 0, 2.5e-4},     {2, false, 2048, 16, 0, 0, 2e-4},
      {3, false, 2560, 32, 0, 0, 1.6e-4},     {4.5, false, 3072, 32, 0, 0, 1.4e-4},
      {8, false, 4096, 32, 0, 0, 1.2e-4},     {15, false, 5120, 40, 0, 0, 1e-4},
      {25, false, 6144, 48, 0, 0, 1e-4},      {52, false, 8192, 64, 0, 0, 8e-5},
      {105, false, 10240, 80, 0, 0, 7e-5},    {205, false, 12288, 96, 0, 0, 6e-5},
      {405, false, 20480, 128, 0, 0, 5e-5},   {805, false, 20480, 128, 0, 0, 4e-5},
      {1105, false, 25600, 160, 0, 0, 3e-5}};
  static const std::vector<SizeRow> t5 = {
      {0.1, false, 512, 6, 1024, 64, 1e-4},       {0.4, false, 768, 12, 2048, 64, 1e-4},
      {1, false, 1024, 16, 2816, 64, 1e-4},       {5, false, 2048, 32, 5120, 64, 1e-4},
      {15, false, 4096, 64, 10240, 64, 1e-4},     {25.9, false, 5120, 80, 10880, 64, 1e-4},
      {43, false, 6144, 96, 10880, 64, 1e-4},     {85.5, true, 6144, 96, 16384, 64, 1e-4},
      {165.5, true, 7680, 96, 20480, 128, 1e-4},  {250, true, 12288, 96, 32768, 128, 1e-4}};
  static const std::vector<SizeRow> mt5 = {
      {0.25, false, 512, 6, 1024, 64, 1e-4},      {0.5, false, 768, 12, 2048, 64, 1e-4},
      {1.2, false, 1024, 16, 2816, 64, 1e-4},     {5, false, 2048, 32, 5120, 64, 1e-4},
      {15, false, 4096, 64, 10240, 64, 1e-4},     {25.9, false, 5120, 80, 10880, 64, 1e-4},
      {43, false, 6144, 96, 10880, 64, 1e-4},     {85.5, true, 6144, 96, 16384, 64, 1e-4},
      {165.5, true, 7680, 96, 20480, 128, 1e-4},  {250, true, 12288, 96, 32768, 128, 1e-4}};
  static const std::vector<SizeRow> bert = {
      {0.25, false, 768, 12, -1, 0, 2e-4},    {0.5, false, 1024, 16, -1, 0, 2e-4},
      {1, false, 1536, 16, -1, 0, 1e-4},      {2, false, 2048, 16, -1, 0, 1e-4},
      {3, false, 2560, 32, -1, 0, 1e-4},      {4.5, false, 2560, 32, -1, 0, 1e-4},
      {8, false, 4096, 32, -1, 0, 1e-4},      {15, false, 5120, 40, -1, 0, 1e-4},
      {25, true, 6144, 48, -1, 0, 1e-4},      {46.5, true, 7680, 48, -1, 0, 1e-4},
      {87.5, true, 9216, 96, -1, 0, 1e-4},    {165.5, true, 9216, 96, -1, 0, 1e-4},
      {250.5, true, 12288, 96, -1, 0, 1e-4}};
  switch (f) {
    case Family::kGpt3: return gpt;
    case Family::kT5: return t5;
    case Family::kMt5: return mt5;
    case Family::kBert: return bert;
  }
  return gpt;
}

}  // namespace

ModelSizeParams calculate_model_size_params(Family family, double size, double vocab, double seq) {
  const SizeRow* row = nullptr;
  for (const auto& r : size_rows(family)) {
    if (r.inclusive ? size <= r.bound : size < r.bound) {
      row = &r;
      break;
    }
  }
  if (row == nullptr) {
    throw ConfigError(fmt::format("train_settings.model_size_in_b={}: {} sizes go up to {} B", size, to_string(family),
                                  size_rows(family).back().bound));
  }
  ModelSizeParams out;
  out.hidden_size = row->hidden;
  out.num_attention_heads = row->heads;
  out.lr = row->lr;
  if (row->ffn > 0) out.ffn_hidden_size = row->ffn;
  if (row->ffn < 0) out.ffn_hidden_size = 4 * row->hidden;
  if (row->kv > 0) out.kv_channels = row->kv;
  const double ffn = out.ffn_hidden_size.value_or(4 * row->hidden);
  const double kv = out.kv_channels.value_or(0);

  struct Phase {
    int first, last, step, passes;
    bool powers_of_two;
  };
  const Phase phases[] = {{2, 512, 0, 10, true}, {16, 192, 16, 6, false}, {2, 200, 2, 6, false},
                          {5, 200, 5, 6, false}, {1, 199, 1, 10, false}};
  for (const Phase& ph : phases) {
    for (int pass = 1; pass <= ph.passes; ++pass) {
      const double margin = pass * 0.01;
      for (int L = ph.first; L <= ph.last; L = ph.powers_of_two ? L * 2 : L + ph.step) {
        const double p = calculate_model_size(family, vocab, seq, row->hidden, L, ffn, kv, row->heads);
        if (size * (1.0 - margin) < p && p < size * (1.0 + margin)) {
          out.num_layers = L;
          return out;
        }
      }
    }
  }
  throw ConfigError(fmt::format("train_settings.model_size_in_b={}: number of layers not found: no layer count gives "
                                "{} B parameters within 10% at hidden size {} (vocab {}, seq {})",
                                size, size, row->hidden, vocab, seq));
}

namespace {

struct GbsRow {
  double bound;  // size <= bound
  int gbs, tp, pp;
};

GbsTpPp pick(const std::vector<GbsRow>& rows, double size, std::string_view what) {
  for (const auto& r : rows) {
    if (size <= r.bound) return {r.gbs, r.tp, r.pp};
  }
  throw ConfigError(fmt::format("train_settings.model_size_in_b={}: {} goes up to {} B", size, what, rows.back().bound));
}

}  // namespace

GbsTpPp calculate_gbs_tp_pp(Family family, double size, int gpu_memory_gb, int seq) {
  if (gpu_memory_gb != 40 && gpu_memory_gb != 80) {
    throw ConfigError(fmt::format("train_settings.gpu_memory_gb={}: the size tables exist for 40 and 80 GB GPUs",
                                  gpu_memory_gb));
  }
  const bool big = gpu_memory_gb == 80;
  if (family == Family::kGpt3) {
    static const double cuts[] = {1, 4, 8, 13, 20.6, 45.6, 123.6, 196.6, 392.2, 735, 1100};
    auto rows = [&](std::initializer_list<std::array<int, 3>> v) {
      std::vector<GbsRow> out;
      std::size_t i = 0;
      for (const auto& x : v) out.push_back({cuts[i++], x[0], x[1], x[2]});
      return out;
    };
    if (big && seq == 2048) {
      static const auto r = rows({{256, 1, 1}, {1024, 1, 1}, {2048, 2, 1}, {2048, 4, 1}, {2048, 8, 1}, {2048, 8, 2},
                                  {2048, 8, 4}, {2048, 8, 8}, {2048, 8, 16}, {2048, 8, 32}, {2048, 8, 64}});
      return pick(r, size, "the GPT-3 80 GB table");
    }
    if (big && seq == 4096) {
      static const auto r = rows({{128, 1, 1}, {512, 1, 1}, {1024, 2, 1}, {1024, 4, 1}, {1024, 8, 1}, {1024, 8, 2}});
      return pick(r, size, "the GPT-3 table at seq_length 4096");
    }
    if (big && seq == 8192) {
      static const auto r = rows({{64, 1, 1}, {256, 1, 1}, {512, 2, 1}, {512, 4, 1}, {512, 8, 1}, {512, 8, 2}});
      return pick(r, size, "the GPT-3 table at seq_length 8192");
    }
    if (!big && seq == 2048) {
      static const auto r = rows({{256, 1, 1}, {1024, 4, 1}, {2048, 8, 1}, {2048, 8, 2}, {2048, 8, 4}, {2048, 8, 4},
                                  {2048, 8, 8}, {2048, 8, 16}, {2048, 8, 32}, {2048, 8, 64}, {2048, 8, 128}});
      return pick(r, size, "the GPT-3 40 GB table");
    }
    throw ConfigError(fmt::format("train_settings.seq_length={}: the GPT-3 global-batch table covers 2048, 4096 and "
                                  "8192 on 80 GB GPUs and 2048 on 40 GB GPUs; set train_settings.custom_config to a "
                                  "training config that gives the batch",
                                  seq));
  }
  if (is_encoder_decoder(family)) {
    if (seq != 512) {
      throw ConfigError(fmt::format("train_settings.seq_length={}: the T5 global-batch table covers 512 only; set "
                                    "train_settings.custom_config to a training config that gives the batch",
                                    seq));
    }
    // At 40 GB the reference's "<= 0.5 B" branch is unreachable (sizes <= 1 B get TP 2); the table
    // here keeps the row it meant (docs/hp_tool.md, "differences").
    static const std::vector<GbsRow> r80 = {{0.5, 2048, 1, 1},   {1, 2048, 1, 1},     {5, 1920, 2, 1},
                                            {11.5, 1920, 4, 1},  {18.5, 1920, 8, 1},  {25.9, 1920, 8, 2},
                                            {43, 1920, 8, 4},    {85.5, 1920, 8, 8},  {165.5, 1920, 8, 16},
                                            {250, 1920, 8, 32}};
    static const std::vector<GbsRow> r40 = {{0.5, 2048, 1, 1},   {1, 2048, 2, 1},     {5, 1920, 4, 1},
                                            {11.5, 1920, 8, 1},  {18.5, 1920, 8, 2},  {25.9, 1920, 8, 4},
                                            {43, 1920, 8, 8},    {85.5, 1920, 8, 16}, {165.5, 1920, 8, 32},
                                            {250, 1920, 8, 64}};
    return pick(big ? r80 : r40, size, "the T5 table");
  }
  static const std::vector<GbsRow> b80 = {{1, 256, 1, 1},      {3.2, 1024, 1, 1},   {8, 2048, 2, 1},
                                          {13, 2048, 4, 1},    {25.5, 2048, 8, 1},  {46.5, 2048, 8, 2},
                                          {87.5, 2048, 8, 4},  {165.5, 4096, 8, 8}, {250.5, 2048, 8, 16}};
  static const std::vector<GbsRow> b40 = {{1, 256, 1, 1},      {3.2, 1024, 4, 1},   {8, 2048, 8, 1},
                                          {13, 2048, 8, 2},    {25, 2048, 8, 4},    {46.5, 2048, 8, 8},
                                          {87.5, 2048, 8, 16}, {165.5, 2048, 8, 32}, {250.5, 2048, 8, 64}};
  return pick(big ? b80 : b40, size, "the BERT table");
}

}  // namespace bignlp::hp

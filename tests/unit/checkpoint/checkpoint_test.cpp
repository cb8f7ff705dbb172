// Saving and loading through the OptimizerState interface (no trainer involved), the version-2
// metadata keys next to the version-1 ones, and refusals of what this code cannot read.
#include "bignlp/model/gpt.h"
#include "bignlp/checkpoint/checkpoint.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bignlp/checkpoint/catalog.h"
#include "bignlp/checkpoint/integrity.h"
#include "bignlp/checkpoint/layout.h"
#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/ops/ops.h"

namespace bignlp::checkpoint {
namespace {

namespace fs = std::filesystem;

model::GptConfig tiny_config() {
  model::GptConfig c;
  c.vocab_size = 51;
  c.make_vocab_size_divisible_by = 8;
  c.seq_length = 8;
  c.num_layers = 2;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  return c;
}

/// A replicated Adam-like state: moments laid out like the store's gradients.
class ToyOptimizer final : public OptimizerState {
 public:
  explicit ToyOptimizer(const model::ParameterStore& store)
      : m_(static_cast<std::size_t>(store.flat_grad().numel())), v_(m_.size()) {}
  std::int64_t steps() const override { return steps_; }
  void set_steps(std::int64_t s) override { steps_ = s; }
  bool sharded() const override { return false; }
  TensorView exp_avg() const override { return flat(m_); }
  TensorView exp_avg_sq() const override { return flat(v_); }
  void gather_state(bool, std::vector<float>&, std::vector<float>&, std::vector<float>&) override {
    FAIL() << "a replicated state is never gathered";
  }
  void assign_moments(const model::Parameter& p, const TensorView& m, const TensorView& v) override {
    ops::copy(ops::OpContext::cpu(), m.reshape(Shape{p.numel()}), flat(m_).slice(0, p.offset, p.numel()));
    ops::copy(ops::OpContext::cpu(), v.reshape(Shape{p.numel()}), flat(v_).slice(0, p.offset, p.numel()));
  }
  std::vector<float> m_, v_;
  std::int64_t steps_ = 0;

 private:
  TensorView flat(const std::vector<float>& x) const {
    return TensorView(const_cast<float*>(x.data()), DType::kF32, Shape{static_cast<std::int64_t>(x.size())});
  }
};

struct Cpu {
  CpuAllocator alloc;
  ops::OpContext ctx = [this] {
    ops::OpContext c = ops::OpContext::cpu();
    c.allocator = &alloc;
    return c;
  }();
};

TEST(CheckpointTest, SavesAndLoadsWeightsMomentsAndTheVersionTwoMetadata) {
  TempDir dir("ckpt");
  Cpu cpu;
  model::GptModel a(tiny_config(), cpu.ctx);
  a.initialize(7);
  ToyOptimizer opt_a(a.parameters());
  for (std::size_t i = 0; i < opt_a.m_.size(); ++i) {
    opt_a.m_[i] = 0.5f * static_cast<float>(i);
    opt_a.v_[i] = static_cast<float>(i % 13);
  }
  opt_a.set_steps(11);
  CheckpointState st;
  st.global_step = 11;
  st.model = a.config_json();
  st.optimizer_steps = 11;
  st.model_config = nlohmann::json{{"num_layers", 2}, {"optim", {{"name", "fused_adam"}}}, {"tokenizer", nullptr}};
  st.tokenizer = {{"library", "megatron"}};
  const fs::path ckpt = dir.path() / "checkpoints" / "step11";
  save_checkpoint(ckpt, st, a.parameters(), &opt_a, cpu.ctx);
  EXPECT_EQ(list_checkpoints(dir.path() / "checkpoints"), std::vector<fs::path>{ckpt});

  model::GptModel b(tiny_config(), cpu.ctx);
  b.initialize(8);
  ToyOptimizer opt_b(b.parameters());
  load_checkpoint(ckpt, b.parameters(), &opt_b, cpu.ctx);
  EXPECT_EQ(opt_b.steps(), 11);
  EXPECT_EQ(opt_b.m_, opt_a.m_);
  EXPECT_EQ(opt_b.v_, opt_a.v_);
  const TensorView wa = a.parameters().flat_value(), wb = b.parameters().flat_value();
  EXPECT_EQ(std::memcmp(wa.raw(), wb.raw(), wa.nbytes()), 0);

  const CheckpointState back = read_checkpoint_metadata(ckpt);
  EXPECT_EQ(back.format_version, kFormatVersion);
  EXPECT_EQ(back.family, "gpt");
  EXPECT_EQ(back.model_config, st.model_config);
  EXPECT_TRUE(back.has_optimizer_state);
  // The version-1 keys are all still written, so older readers read this checkpoint.
  const auto meta = nlohmann::json::parse(read_file(ckpt / "metadata.json"));
  for (const char* key : {"format", "version", "global_step", "consumed_samples", "val_loss", "scheduler_step",
                          "optimizer_steps", "loss_scaler", "seed", "model", "precision", "tokenizer",
                          "tensor_model_parallel_size", "pipeline_model_parallel_size", "has_optimizer_state",
                          "family", "model_config", "weights_dtype", "virtual_pipeline_model_parallel_size"})
    EXPECT_TRUE(meta.contains(key)) << key;
  EXPECT_EQ(meta["version"], 2);
  EXPECT_EQ(meta["weights_dtype"], "fp32");
}

TEST(CheckpointTest, RefusesNewerVersionsAndDoesNotBuildUnknownFamilies) {
  TempDir dir("ckpt-refuse");
  Cpu cpu;
  model::GptModel a(tiny_config(), cpu.ctx);
  a.initialize(7);
  CheckpointState st;
  st.model = a.config_json();
  save_checkpoint(dir.path() / "c", st, a.parameters(), nullptr, cpu.ctx);
  auto meta = nlohmann::json::parse(read_file(dir.path() / "c" / "metadata.json"));
  auto rewrite = [&](const nlohmann::json& m) { write_file_atomic(dir.path() / "c" / "metadata.json", m.dump()); };
  auto error = [&] {
    try {
      read_checkpoint_metadata(dir.path() / "c");
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  nlohmann::json m = meta;
  m["version"] = kFormatVersion + 1;
  rewrite(m);
  EXPECT_NE(error().find("format version 3 is not readable here"), std::string::npos) << error();
  // A family this build does not know reads, but does not build.
  m = meta;
  m["family"] = "bert";
  rewrite(m);
  EXPECT_EQ(read_checkpoint_metadata(dir.path() / "c").family, "bert");
  try {
    load_model_from_checkpoint(dir.path() / "c", cpu.ctx);
    ADD_FAILURE() << "an unknown family must not load";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model family 'bert'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find((dir.path() / "c").string()), std::string::npos) << e.what();
  }
  // A checkpoint without optimizer state cannot resume an optimizer.
  rewrite(meta);
  model::GptModel b(tiny_config(), cpu.ctx);
  ToyOptimizer opt(b.parameters());
  EXPECT_THROW(load_checkpoint(dir.path() / "c", b.parameters(), &opt, cpu.ctx), DataError);
}

TEST(CheckpointTest, AFailedSaveLeavesNothingBehind) {
  TempDir dir("ckpt-fail");
  Cpu cpu;
  model::GptModel a(tiny_config(), cpu.ctx);
  a.initialize(7);
  CheckpointState st;
  st.model = a.config_json();
  ToyOptimizer opt(a.parameters());
  opt.m_.resize(3);  // the moments do not cover the parameters: the shard writer refuses
  EXPECT_ANY_THROW(save_checkpoint(dir.path() / "c", st, a.parameters(), &opt, cpu.ctx));
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

// --- Integrity: sizes and per-tensor CRC-32s in the metadata, finite values only -----------------

/// A tiny checkpoint with weights and moments at <dir>/c.
fs::path save_tiny(const fs::path& dir, Cpu& cpu) {
  model::GptModel a(tiny_config(), cpu.ctx);
  a.initialize(7);
  ToyOptimizer opt(a.parameters());
  for (std::size_t i = 0; i < opt.m_.size(); ++i) {
    opt.m_[i] = 0.001f * static_cast<float>(i % 17);
    opt.v_[i] = 0.0001f * static_cast<float>(i % 5);
  }
  CheckpointState st;
  st.model = a.config_json();
  save_checkpoint(dir / "c", st, a.parameters(), &opt, cpu.ctx);
  return dir / "c";
}

/// Byte offset in `file` of element `element` of tensor `name`.
std::uint64_t tensor_offset(const fs::path& file, const std::string& name, std::int64_t element) {
  std::uint64_t header = 0;
  std::ifstream in(file, std::ios::binary);
  in.read(reinterpret_cast<char*>(&header), 8);
  const SafetensorsReader r(file);
  return 8 + header + r.find(name)->begin + static_cast<std::uint64_t>(element) * 4;
}

void xor_byte(const fs::path& file, std::uint64_t offset, unsigned char mask) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(static_cast<unsigned char>(c) ^ mask);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

/// Rewrites `file` with element `element` of tensor `name` set to `value` and fresh checksums (the
/// size stays the same): only the finite-value check can catch it.
void write_value(const fs::path& file, const std::string& name, std::int64_t element, float value) {
  std::vector<std::vector<float>> data;
  SafetensorsWriter w;
  {
    const SafetensorsReader r(file);
    data.reserve(r.entries().size());
    for (const auto& e : r.entries()) {
      const TensorView v = r.view(e.name);
      data.emplace_back(v.data<float>(), v.data<float>() + v.numel());
      if (e.name == name) data.back()[static_cast<std::size_t>(element)] = value;
    }
    std::size_t i = 0;
    for (const auto& e : r.entries()) w.add(e.name, TensorView(data[i++].data(), DType::kF32, e.shape));
    for (const auto& [k, v] : r.metadata()) w.set_metadata(k, v);
  }
  write_shard_file(w, file);
}

std::string load_error(const fs::path& ckpt, Cpu& cpu, bool with_optimizer = true) {
  model::GptModel b(tiny_config(), cpu.ctx);
  ToyOptimizer opt(b.parameters());
  try {
    load_checkpoint(ckpt, b.parameters(), with_optimizer ? &opt : nullptr, cpu.ctx);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

constexpr const char* kWte = "model.language_model.embedding.word_embeddings.weight";

TEST(CheckpointIntegrityTest, MetadataRecordsEveryShardFileSizeAndTheShardsCarryChecksums) {
  TempDir dir("ckpt-int");
  Cpu cpu;
  const fs::path c = save_tiny(dir.path(), cpu);
  const CheckpointState meta = read_checkpoint_metadata(c);
  EXPECT_TRUE(meta.tensor_checksums);
  ASSERT_EQ(meta.file_sizes.size(), 2u);
  for (const char* f : {"tp_rank_00_pp_rank_000/model.safetensors", "tp_rank_00_pp_rank_000/optimizer.safetensors"})
    EXPECT_EQ(meta.file_sizes.at(f), fs::file_size(c / f)) << f;
  // The recorded CRC-32 is that of the tensor's bytes (crc32_of itself is checked against the
  // standard check value below).
  const SafetensorsReader r(c / "tp_rank_00_pp_rank_000/model.safetensors");
  const auto crcs = nlohmann::json::parse(r.metadata().at(kChecksumKey));
  EXPECT_EQ(crcs.size(), r.entries().size());
  const TensorView v = r.view(kWte);
  EXPECT_EQ(crcs[kWte].get<std::string>(), fmt::format("{:08x}", crc32_of(v.raw(), v.nbytes())));
  EXPECT_EQ(load_error(c, cpu), "");
}

TEST(CheckpointIntegrityTest, KnownCrc32Value) {
  // The standard check value of CRC-32 (ISO-HDLC, zlib): "123456789" -> cbf43926.
  EXPECT_EQ(crc32_of("123456789", 9), 0xcbf43926u);
}

TEST(CheckpointIntegrityTest, AFlippedExponentBitInAWeightIsRefusedNamingFileAndTensor) {
  TempDir dir("ckpt-flip");
  Cpu cpu;
  const fs::path c = save_tiny(dir.path(), cpu);
  const fs::path file = c / "tp_rank_00_pp_rank_000/model.safetensors";
  xor_byte(file, tensor_offset(file, kWte, 10) + 3, 0x01);  // low exponent bit: a finite, wrong value
  const std::string e = load_error(c, cpu);
  EXPECT_NE(e.find(file.string()), std::string::npos) << e;
  EXPECT_NE(e.find(kWte), std::string::npos) << e;
  EXPECT_NE(e.find("fails its checksum"), std::string::npos) << e;
  // The converters' reader refuses it too.
  const CheckpointTensors t(c);
  EXPECT_THROW(t.full(kWte), DataError);
}

TEST(CheckpointIntegrityTest, GarbageInTheOptimizerStateIsRefused) {
  TempDir dir("ckpt-garbage");
  Cpu cpu;
  const fs::path c = save_tiny(dir.path(), cpu);
  const fs::path file = c / "tp_rank_00_pp_rank_000/optimizer.safetensors";
  const std::string name = std::string("exp_avg_sq.") + kWte;
  for (int i = 0; i < 8; ++i) xor_byte(file, tensor_offset(file, name, 3) + static_cast<std::uint64_t>(i), 0x5a);
  const std::string e = load_error(c, cpu);
  EXPECT_NE(e.find(file.string()), std::string::npos) << e;
  EXPECT_NE(e.find(name), std::string::npos) << e;
  // The weights alone still load (inference does not read the optimizer file).
  EXPECT_EQ(load_error(c, cpu, /*with_optimizer=*/false), "");
}

TEST(CheckpointIntegrityTest, ATruncatedShardIsRefusedNamingTheFile) {
  TempDir dir("ckpt-trunc");
  Cpu cpu;
  const fs::path c = save_tiny(dir.path(), cpu);
  const fs::path file = c / "tp_rank_00_pp_rank_000/optimizer.safetensors";
  fs::resize_file(file, fs::file_size(file) - 100);
  const std::string e = load_error(c, cpu);
  EXPECT_NE(e.find(file.string()), std::string::npos) << e;
  EXPECT_NE(e.find("truncated or damaged"), std::string::npos) << e;
}

TEST(CheckpointIntegrityTest, NonFiniteWeightsAndMomentsAreRefusedEvenWithMatchingChecksums) {
  Cpu cpu;
  for (const auto& [file_name, tensor, value] :
       {std::tuple<std::string, std::string, float>{"model.safetensors", kWte, std::nanf("")},
        {"optimizer.safetensors", std::string("exp_avg.") + kWte, INFINITY}}) {
    TempDir dir("ckpt-nan");
    const fs::path c = save_tiny(dir.path(), cpu);
    const fs::path file = c / "tp_rank_00_pp_rank_000" / file_name;
    write_value(file, tensor, 5, value);
    const std::string e = load_error(c, cpu);
    EXPECT_NE(e.find(file.string()), std::string::npos) << e;
    EXPECT_NE(e.find(tensor), std::string::npos) << e;
    EXPECT_NE(e.find("1 non-finite value(s) (first at element 5"), std::string::npos) << e;
  }
}

TEST(CheckpointIntegrityTest, AShardWithoutChecksumsInACheckpointThatRecordsThemIsRefused) {
  TempDir dir("ckpt-nocrc");
  Cpu cpu;
  const fs::path c = save_tiny(dir.path(), cpu);
  const fs::path file = c / "tp_rank_00_pp_rank_000/model.safetensors";
  std::vector<std::vector<float>> data;
  SafetensorsWriter w;
  {
    const SafetensorsReader r(file);
    data.reserve(r.entries().size());
    for (const auto& e : r.entries()) {
      const TensorView v = r.view(e.name);
      data.emplace_back(v.data<float>(), v.data<float>() + v.numel());
      w.add(e.name, TensorView(data.back().data(), DType::kF32, e.shape));
    }
  }
  w.write(file);  // no checksums
  // Record the new size, so only the missing checksums are wrong.
  auto meta = nlohmann::json::parse(read_file(c / "metadata.json"));
  meta["files"]["tp_rank_00_pp_rank_000/model.safetensors"] = fs::file_size(file);
  write_file_atomic(c / "metadata.json", meta.dump());
  const std::string e = load_error(c, cpu);
  EXPECT_NE(e.find("records tensor checksums, but this shard file has none"), std::string::npos) << e;
  // Without the metadata's record it is an older checkpoint: it loads (with a warning).
  meta.erase("files");
  meta.erase("tensor_checksums");
  write_file_atomic(c / "metadata.json", meta.dump());
  model::GptModel b(tiny_config(), cpu.ctx);
  const Logger log = Logger::capturing(LogLevel::kWarn);
  load_checkpoint(c, b.parameters(), nullptr, cpu.ctx, {}, &log);
  EXPECT_NE(log.captured().find("without shard sizes and tensor checksums"), std::string::npos) << log.captured();
}

}  // namespace
}  // namespace bignlp::checkpoint

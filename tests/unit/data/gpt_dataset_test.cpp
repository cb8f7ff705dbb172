#include "bignlp/data/gpt_dataset.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <numeric>
#include <thread>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/data/blended_dataset.h"
#include "bignlp/data/dataset_split.h"
#include "bignlp/data/gpt_dataset_splits.h"
#include "bignlp/data/npy.h"
#include "bignlp/data/numpy_random.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

UnalignedArray<std::int32_t> view(const std::vector<std::int32_t>& v) {
  return UnalignedArray<std::int32_t>(reinterpret_cast<const std::byte*>(v.data()), v.size());
}

// Documents with distinct tokens: doc d has sizes[d] tokens 1000*d + 0, 1, 2, ...
std::shared_ptr<IndexedDataset> make_dataset(const fs::path& prefix, const std::vector<std::int32_t>& sizes) {
  IndexedDatasetBuilder b(prefix, TokenDType::kInt32);
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(sizes[d]));
    for (std::size_t k = 0; k < tokens.size(); ++k) tokens[k] = static_cast<std::int32_t>(1000 * d + k);
    b.add_item(std::span<const std::int32_t>(tokens));
    b.end_document();
  }
  b.finalize();
  return std::make_shared<IndexedDataset>(prefix);
}

std::vector<std::int32_t> random_sizes(std::size_t n, std::uint32_t seed, int lo, int hi) {
  std::mt19937 g(seed);
  std::vector<std::int32_t> out(n);
  for (auto& s : out) s = lo + static_cast<int>(g() % static_cast<unsigned>(hi - lo + 1));
  return out;
}

TEST(DatasetSplit, ReferenceExamples) {
  EXPECT_EQ(train_valid_test_split("99990,8,2", 1000000), (std::array<std::int64_t, 4>{0, 999900, 999980, 1000000}));
  EXPECT_EQ(train_valid_test_split("99990,8,2", 12345), (std::array<std::int64_t, 4>{0, 12344, 12345, 12345}));
  EXPECT_EQ(train_valid_test_split("969, 30, 1", 1000), (std::array<std::int64_t, 4>{0, 969, 999, 1000}));
  EXPECT_EQ(train_valid_test_split("1/0/0", 7), (std::array<std::int64_t, 4>{0, 7, 7, 7}));
  EXPECT_EQ(train_valid_test_split("1", 7), (std::array<std::int64_t, 4>{0, 7, 7, 7}));
  // Round half to even: 0.5 * 5 = 2.5 -> 2, then 2.5 -> 2 again; the shift fixes the end.
  EXPECT_EQ(train_valid_test_split("1,1", 5), (std::array<std::int64_t, 4>{0, 3, 5, 5}));
  EXPECT_THROW(train_valid_test_split("a,b", 5), ConfigError);
  EXPECT_THROW(train_valid_test_split("0,0,0", 5), ConfigError);
  EXPECT_THROW(train_valid_test_split("1,2,3,4", 5), ConfigError);
}

TEST(DatasetSplit, MatchesPythonRule) {
  BIGNLP_REQUIRE_NUMPY();
  nlohmann::json cases = nlohmann::json::array();
  std::vector<std::array<std::int64_t, 4>> ours;
  for (const char* s : {"99990,8,2", "969, 30, 1", "999982,9,9", "1,1", "2/1/1", "0.7,0.2,0.1"}) {
    for (int size : {1, 2, 3, 5, 10, 17, 101, 12345, 99999}) {
      cases.push_back({s, size});
      ours.push_back(train_valid_test_split(s, size));
    }
  }
  const auto ref = nlohmann::json::parse(testing::numpy_peer("split '" + cases.dump() + "'"));
  ASSERT_EQ(ref.size(), ours.size());
  for (std::size_t i = 0; i < ours.size(); ++i) EXPECT_EQ(nlohmann::json(ours[i]), ref[i]) << cases[i].dump();
}

TEST(GptIndexMaps, WorkedExample) {
  const std::vector<std::int32_t> sizes{5, 3, 4};
  // Unshuffled view: check sample_idx for doc order [0,1,2] by searching a seed that keeps it.
  const auto maps = build_gpt_index_maps(view(sizes), 0, 3, 2, 4, 1234);
  EXPECT_EQ(maps.num_epochs, 1);
  ASSERT_EQ(maps.sample_idx.size(), 6u);  // 2 samples + 1 row, 2 columns
  EXPECT_EQ(maps.shuffle_idx.size(), 2u);
  // Find a seed whose doc shuffle is the identity, to check the documented rows.
  for (std::uint32_t seed = 0; seed < 100; ++seed) {
    const auto m = build_gpt_index_maps(view(sizes), 0, 3, 2, 4, seed);
    if (m.doc_idx == std::vector<std::int32_t>{0, 1, 2}) {
      EXPECT_EQ(m.sample_idx, (std::vector<std::int32_t>{0, 0, 0, 4, 2, 0}));
      return;
    }
  }
  FAIL() << "no seed below 100 keeps the document order";
}

TEST(GptDataset, SamplesOverlapByOneTokenAndMatchWorkedExample) {
  TempDir dir;
  auto ds = make_dataset(dir.path() / "d", {5, 3, 4});
  for (std::uint32_t seed = 0; seed < 100; ++seed) {
    GptDatasetOptions o;
    o.num_samples = 2;
    o.seq_length = 4;
    o.seed = seed;
    o.use_cache = false;
    GptDataset g(ds, 0, 3, o);
    if (std::vector<std::int32_t>(g.doc_idx().begin(), g.doc_idx().end()) != std::vector<std::int32_t>{0, 1, 2}) continue;
    // Unshuffle: find which output sample is sample_idx row 0.
    std::vector<std::vector<std::int64_t>> rows(2);
    for (int i = 0; i < 2; ++i) rows[static_cast<std::size_t>(g.shuffle(i))] = g.sample(i);
    EXPECT_EQ(rows[0], (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(rows[1], (std::vector<std::int64_t>{4, 1000, 1001, 1002, 2000}));
    return;
  }
  FAIL() << "no seed below 100 keeps the document order";
}

struct PeerCase {
  std::vector<std::int32_t> sizes;
  std::string splits;
  std::string name;
  std::int64_t num_samples;
  std::int32_t seq_length;
  std::uint32_t seed;
  bool extra;
};

// Every array and every sample against the independent numpy implementation, including multiple
// epochs with and without a separately shuffled last epoch, and add_extra_token = 0.
TEST(GptDataset, MatchesNumpyPeer) {
  BIGNLP_REQUIRE_NUMPY();
  TempDir dir;
  const std::vector<PeerCase> cases = {
      {random_sizes(40, 1, 1, 30), "1", "train", 10, 16, 1234, true},          // one epoch
      {random_sizes(40, 2, 1, 30), "1", "train", 150, 16, 7, true},            // several epochs, last separate
      {random_sizes(40, 3, 1, 30), "1", "train", 120, 7, 99, true},            // several epochs
      {random_sizes(57, 4, 1, 90), "8,1,1", "valid", 30, 12, 1234, true},      // a split that is not the first
      {random_sizes(57, 4, 1, 90), "8,1,1", "train", 500, 32, 5, true},
      {random_sizes(33, 5, 1, 9), "1", "train", 64, 8, 3, false},              // no extra token
      {std::vector<std::int32_t>(10, 1), "1", "train", 25, 3, 11, true},       // one-token documents
  };
  int k = 0;
  for (const auto& c : cases) {
    const fs::path prefix = dir.path() / ("case" + std::to_string(k++));
    auto ds = make_dataset(prefix, c.sizes);
    const auto bounds = train_valid_test_split(c.splits, static_cast<std::int64_t>(c.sizes.size()));
    const int split = c.name == "train" ? 0 : (c.name == "valid" ? 1 : 2);
    GptDatasetOptions o;
    o.name = c.name;
    o.num_samples = c.num_samples;
    o.seq_length = c.seq_length;
    o.seed = c.seed;
    o.add_extra_token = c.extra;
    GptDataset g(ds, bounds[split], bounds[split + 1], o);
    EXPECT_FALSE(g.loaded_from_cache());
    const fs::path cache = gpt_index_cache_prefix(prefix, o);
    const auto ref = nlohmann::json::parse(testing::numpy_peer(
        "gpt " + prefix.string() + " '" + c.splits + "' " + c.name + " " + std::to_string(c.num_samples) + " " +
        std::to_string(c.seq_length) + " " + std::to_string(c.seed) + " " + (c.extra ? "1" : "0") + " " +
        cache.string()));
    SCOPED_TRACE(prefix.filename().string());
    ASSERT_EQ(nlohmann::json(std::vector<std::int32_t>(g.doc_idx().begin(), g.doc_idx().end())), ref["doc_idx"]);
    ASSERT_EQ(nlohmann::json(std::vector<std::int32_t>(g.sample_idx().begin(), g.sample_idx().end())), ref["sample_idx"]);
    std::vector<std::int64_t> shuffle;
    for (std::int64_t i = 0; i < g.size(); ++i) shuffle.push_back(g.shuffle(i));
    ASSERT_EQ(nlohmann::json(shuffle), ref["shuffle_idx"]);
    ASSERT_GE(g.size(), c.num_samples);
    for (std::int64_t i = 0; i < g.size(); ++i) {
      ASSERT_EQ(nlohmann::json(g.sample(i)), ref["samples"][static_cast<std::size_t>(i)]) << "sample " << i;
    }
    // The cache files are what numpy loads, with the same contents and dtypes as Megatron's.
    const auto& npy = ref["cache"];
    EXPECT_EQ(npy["doc"]["descr"], "<i4");
    EXPECT_EQ(npy["doc"]["values"], ref["doc_idx"]);
    EXPECT_EQ(npy["sample"]["descr"], "<i4");
    EXPECT_EQ(npy["sample"]["shape"][1], 2);
    EXPECT_EQ(npy["sample"]["values"], ref["sample_idx"]);
    EXPECT_EQ(npy["shuffle"]["descr"], ref["shuffle_dtype"]);
    EXPECT_EQ(npy["shuffle"]["values"], ref["shuffle_idx"]);
    // Reloading maps the cache and gives the same samples.
    GptDataset again(ds, bounds[split], bounds[split + 1], o);
    EXPECT_TRUE(again.loaded_from_cache());
    ASSERT_EQ(again.size(), g.size());
    for (std::int64_t i = 0; i < g.size(); ++i) ASSERT_EQ(again.sample(i), g.sample(i));
  }
}

TEST(GptDataset, SeparateLastEpochIsDetected) {
  // 100 tokens per epoch, seq 10 -> 9 samples per epoch (one token kept for the overlap).
  const std::vector<std::int32_t> sizes(10, 10);
  auto m = build_gpt_index_maps(view(sizes), 0, 10, 20, 10, 1);  // 3 epochs, last gives 1 sample: separate
  EXPECT_EQ(m.num_epochs, 3);
  EXPECT_TRUE(m.separate_last_epoch);
  // The last epoch's documents are a permutation of all documents on their own.
  std::vector<std::int32_t> last(m.doc_idx.end() - 10, m.doc_idx.end());
  std::sort(last.begin(), last.end());
  EXPECT_EQ(last, (std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  auto m2 = build_gpt_index_maps(view(sizes), 0, 10, 26, 10, 1);  // last epoch gives 8 of 9: not separate
  EXPECT_EQ(m2.num_epochs, 3);
  EXPECT_FALSE(m2.separate_last_epoch);
}

TEST(GptDataset, DeterministicAcrossThreads) {
  TempDir dir;
  auto ds = make_dataset(dir.path() / "d", random_sizes(200, 9, 1, 50));
  GptDatasetOptions o;
  o.num_samples = 300;
  o.seq_length = 32;
  o.use_cache = false;
  GptDataset g(ds, 0, 200, o);
  std::vector<std::vector<std::int64_t>> serial;
  for (std::int64_t i = 0; i < g.size(); ++i) serial.push_back(g.sample(i));
  std::vector<std::vector<std::int64_t>> parallel(serial.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::int64_t i = t; i < g.size(); i += 4) parallel[static_cast<std::size_t>(i)] = g.sample(i);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(serial, parallel);
  std::vector<std::int32_t> narrow(static_cast<std::size_t>(g.sample_length()));
  g.read_sample(5, std::span<std::int32_t>(narrow));
  EXPECT_EQ(std::vector<std::int64_t>(narrow.begin(), narrow.end()), serial[5]);
}

TEST(GptDataset, FewTokensRunOverSeveralEpochsAndNoTokensIsAnError) {
  const std::vector<std::int32_t> sizes{2, 1, 0};
  const auto m = build_gpt_index_maps(view(sizes), 0, 2, 1, 8, 1);
  EXPECT_EQ(m.num_epochs, 3);  // (3 * 3 - 1) // 8 = 1 sample
  EXPECT_EQ(m.shuffle_idx.size(), 1u);
  EXPECT_THROW(build_gpt_index_maps(view(sizes), 2, 3, 1, 8, 1), DataError);
}

TEST(GptDataset, StaleOrBrokenCachesAreRebuilt) {
  TempDir dir;
  GptDatasetOptions o;
  o.num_samples = 50;
  o.seq_length = 16;
  auto first = make_dataset(dir.path() / "d", random_sizes(60, 1, 5, 40));
  GptDataset(first, 0, 60, o);
  // The dataset is preprocessed again with other documents under the same name.
  first.reset();
  auto second = make_dataset(dir.path() / "d", random_sizes(60, 2, 5, 40));
  const Logger log = Logger::capturing();
  GptDataset again(second, 0, 60, o, &log);
  EXPECT_FALSE(again.loaded_from_cache());
  EXPECT_NE(log.captured().find("rebuilding them"), std::string::npos) << log.captured();
  o.use_cache = false;
  GptDataset fresh(second, 0, 60, o);
  ASSERT_EQ(again.size(), fresh.size());
  for (std::int64_t i = 0; i < fresh.size(); ++i) ASSERT_EQ(again.sample(i), fresh.sample(i));
  // Now the rewritten cache is used; a truncated cache file is rebuilt too.
  o.use_cache = true;
  EXPECT_TRUE(GptDataset(second, 0, 60, o).loaded_from_cache());
  const fs::path shuffle = gpt_index_cache_prefix(dir.path() / "d", o).string() + "_shuffle_idx.npy";
  fs::resize_file(shuffle, fs::file_size(shuffle) - 4);
  GptDataset repaired(second, 0, 60, o, &log);
  EXPECT_FALSE(repaired.loaded_from_cache());
  EXPECT_EQ(repaired.sample(3), fresh.sample(3));
}

// A cache file damaged in place (same shape and dtype, wrong values) is range-checked when loaded
// and rebuilt with a warning naming the file; reading it as it is would go out of bounds.
TEST(GptDataset, DamagedCacheValuesAreRebuiltWithAWarningNamingTheFile) {
  TempDir dir;
  GptDatasetOptions o;
  o.num_samples = 50;
  o.seq_length = 16;
  auto data = make_dataset(dir.path() / "d", random_sizes(60, 3, 5, 40));
  GptDataset reference(data, 0, 60, o);  // writes the cache
  const std::string prefix = gpt_index_cache_prefix(dir.path() / "d", o).string();
  const std::string pristine_shuffle = read_file(prefix + "_shuffle_idx.npy");
  const std::string pristine_sample = read_file(prefix + "_sample_idx.npy");
  struct Damage {
    const char* file;
    std::function<void()> apply;
  };
  const std::vector<Damage> damages = {
      {"_shuffle_idx.npy",
       [&] {
         NpyArray a(prefix + "_shuffle_idx.npy");
         std::vector<std::uint32_t> v(a.values<std::uint32_t>().begin(), a.values<std::uint32_t>().end());
         v[7] = 4000000000u;
         write_npy<std::uint32_t>(prefix + "_shuffle_idx.npy", v);
       }},
      {"_sample_idx.npy",
       [&] {
         NpyArray a(prefix + "_sample_idx.npy");
         std::vector<std::int32_t> v(a.values<std::int32_t>().begin(), a.values<std::int32_t>().end());
         v[2 * 5] = 1 << 30;  // a document position far beyond doc_idx
         write_npy<std::int32_t>(prefix + "_sample_idx.npy", v, a.shape());
       }},
      {"_sample_idx.npy",
       [&] {
         NpyArray a(prefix + "_sample_idx.npy");
         std::vector<std::int32_t> v(a.values<std::int32_t>().begin(), a.values<std::int32_t>().end());
         v[2 * 5 + 1] += 3;  // an offset that no longer gives a 16-token sample
         write_npy<std::int32_t>(prefix + "_sample_idx.npy", v, a.shape());
       }},
  };
  for (const auto& damage : damages) {
    write_file_atomic(prefix + "_shuffle_idx.npy", pristine_shuffle);
    write_file_atomic(prefix + "_sample_idx.npy", pristine_sample);
    damage.apply();
    const Logger log = Logger::capturing();
    GptDataset repaired(data, 0, 60, o, &log);
    EXPECT_FALSE(repaired.loaded_from_cache()) << damage.file;
    EXPECT_NE(log.captured().find(std::string("d_") ), std::string::npos);
    EXPECT_NE(log.captured().find(damage.file + std::string(": ")), std::string::npos) << log.captured();
    EXPECT_NE(log.captured().find("rebuilding them"), std::string::npos) << log.captured();
    ASSERT_EQ(repaired.size(), reference.size());
    for (std::int64_t i = 0; i < reference.size(); ++i) ASSERT_EQ(repaired.sample(i), reference.sample(i)) << i;
    EXPECT_TRUE(GptDataset(data, 0, 60, o).loaded_from_cache()) << "the rebuilt cache is not used";
  }
}

TEST(GptDatasetSplits, TokenIdsOutsideTheVocabularyStopTheStartNamingFileAndDocument) {
  TempDir dir;
  // Document d holds ids 1000*d + k: the last of 5 documents reaches 4000..4009.
  const auto data = make_dataset(dir.path() / "corpus", {10, 10, 10, 10, 10});
  EXPECT_NO_THROW(check_token_ids(*data, 4010));
  try {
    check_token_ids(*data, 4005);  // e.g. ids between the tokenizer's vocabulary and the padded one
    FAIL();
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), "'" + (dir.path() / "corpus").string() +
                                         ".bin': document 4 (sequence 4), token 5: id 4005 is outside the tokenizer's "
                                         "vocabulary [0, 4005); was the dataset preprocessed with another tokenizer "
                                         "than model.tokenizer?");
  }
  // The splits check at start, before any index map is built.
  GptDatasetSplitsConfig c;
  c.data_prefix = {WeightedPrefix{1.0, dir.path() / "corpus"}};
  c.splits_string = "1,0,0";
  c.num_samples = {4, 0, 0};
  c.seq_length = 8;
  c.vocab_size = 3000;
  EXPECT_THROW(build_gpt_dataset_splits(c), DataError);
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_NE(e.path().extension(), ".npy") << "an index map was built before the check: " << e.path();
  }
  c.vocab_size = 5000;
  EXPECT_NO_THROW(build_gpt_dataset_splits(c));
}

TEST(GptDataset, CacheNamesFollowMegatron) {
  GptDatasetOptions o;
  o.name = "train";
  o.num_samples = 5145085;
  o.seq_length = 2048;
  o.seed = 1234;
  EXPECT_EQ(gpt_index_cache_prefix("/data/my-gpt3_00_text_document", o).string(),
            "/data/my-gpt3_00_text_document_train_indexmap_5145085ns_2048sl_1234s");
  o.index_mapping_dir = "/cache";
  EXPECT_EQ(gpt_index_cache_prefix("/data/my-gpt3_00_text_document", o).string(),
            "/cache/my-gpt3_00_text_document_train_indexmap_5145085ns_2048sl_1234s");
}

TEST(Blending, ReferenceExample) {
  const std::vector<double> w{0.5, 0.3, 0.2};
  const auto b = build_blending_indices(w, 10);
  EXPECT_EQ(b.dataset_index, (std::vector<std::uint8_t>{0, 1, 2, 0, 1, 0, 2, 0, 1, 0}));
  EXPECT_EQ(b.dataset_sample_index, (std::vector<std::int64_t>{0, 0, 0, 1, 1, 2, 1, 3, 2, 4}));
}

TEST(Blending, NumpySumAndIndicesMatchNumpy) {
  BIGNLP_REQUIRE_NUMPY();
  const auto sums = nlohmann::json::parse(testing::numpy_peer("sum 3"));
  for (const auto& c : sums) {
    std::vector<double> v;
    for (const auto& s : c["values"]) v.push_back(std::stod(s.get<std::string>()));
    EXPECT_EQ(numpy_sum(v), std::stod(c["sum"].get<std::string>())) << v.size() << " values";
  }
  // 30 Pile shards at .0333 (the last .0334), as in the launcher's GPT-3 configs.
  std::vector<double> w(30, 0.0333);
  w.back() = 0.0334;
  std::string arg;
  for (double x : w) arg += (arg.empty() ? "" : ",") + fmt::format("{}", x);
  const auto ref = nlohmann::json::parse(testing::numpy_peer("blend " + arg + " 3000"));
  const double total = numpy_sum(w);
  for (double& x : w) x /= total;
  const auto b = build_blending_indices(w, 3000);
  EXPECT_EQ(nlohmann::json(std::vector<int>(b.dataset_index.begin(), b.dataset_index.end())), ref["dataset_index"]);
  EXPECT_EQ(nlohmann::json(b.dataset_sample_index), ref["dataset_sample_index"]);
}

TEST(GptDatasetSplits, SinglePrefixAndBlend) {
  TempDir dir;
  make_dataset(dir.path() / "a", random_sizes(100, 21, 5, 60));
  make_dataset(dir.path() / "b", random_sizes(80, 22, 5, 60));
  GptDatasetSplitsConfig c;
  c.data_prefix = parse_data_prefix({(dir.path() / "a").string()});
  c.splits_string = "98,1,1";
  c.num_samples = {40, 4, 2};
  c.seq_length = 16;
  c.seed = 1234;
  auto single = build_gpt_dataset_splits(c);
  ASSERT_TRUE(single.train && single.valid && single.test);
  EXPECT_GE(single.train->size(), 40);
  EXPECT_EQ(single.train->sample_length(), 17);
  EXPECT_GE(single.valid->size(), 4);  // a one-document split runs over several epochs, as in Megatron

  c.data_prefix = parse_data_prefix({"0.7", (dir.path() / "a").string(), "0.3", (dir.path() / "b").string()});
  auto blend = build_gpt_dataset_splits(c);
  ASSERT_TRUE(blend.train);
  // NeMo: size = ceil(40*0.7*1.005) + ceil(40*0.3*1.005) = 29 + 13.
  EXPECT_EQ(blend.train->size(), 42);
  // The per-dataset caches carry the inflated request in their names.
  EXPECT_TRUE(fs::exists(dir.path() / "a_train_indexmap_29ns_16sl_1234s_doc_idx.npy"));
  EXPECT_TRUE(fs::exists(dir.path() / "b_train_indexmap_13ns_16sl_1234s_shuffle_idx.npy"));
  const auto* blended = dynamic_cast<const BlendedDataset*>(blend.train.get());
  ASSERT_NE(blended, nullptr);
  // Sample i of the blend is sample dataset_sample_index[i] of its component.
  for (std::int64_t i = 0; i < blend.train->size(); ++i) {
    const auto k = blended->indices().dataset_index[static_cast<std::size_t>(i)];
    EXPECT_EQ(blend.train->sample(i),
              blended->datasets()[k]->sample(blended->indices().dataset_sample_index[static_cast<std::size_t>(i)]));
  }
  c.blend_size = BlendSizeRule::kSumOfComponents;
  auto ml = build_gpt_dataset_splits(c);
  const auto* mb = dynamic_cast<const BlendedDataset*>(ml.train.get());
  ASSERT_NE(mb, nullptr);
  EXPECT_EQ(ml.train->size(), mb->datasets()[0]->size() + mb->datasets()[1]->size());
  EXPECT_EQ(ml.train->sample(0), blend.train->sample(0));

  EXPECT_THROW(parse_data_prefix({"x", "a", "0.5"}), ConfigError);
  EXPECT_THROW(parse_data_prefix({"abc", "a"}), ConfigError);
  EXPECT_THROW(parse_data_prefix({"-1", "a"}), ConfigError);
}

TEST(GptDatasetSplits, NemoSampleCounts) {
  // 75000 steps x GBS 2048, val every 2000 steps, 50 val batches, 50 test batches.
  const auto n = nemo_gpt_num_samples(75000, 2048, 2000, 50, false, 50);
  EXPECT_EQ(n[0], 153600000);
  EXPECT_EQ(n[1], (75000 / 2000 + 1) * 50 * 2048);
  EXPECT_EQ(n[2], 50 * 2048);
  EXPECT_EQ(nemo_gpt_num_samples(10, 4, 5, 1.0, true, 0)[1], 1);
}

}  // namespace
}  // namespace bignlp::data

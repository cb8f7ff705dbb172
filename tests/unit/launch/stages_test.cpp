// Every predefined config plans (as a dry run) on every cluster type, and the stage checks catch
// the layouts that cannot work, with messages that name the keys.
#include <gtest/gtest.h>

#include <sstream>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "compose_support.h"
#include "bignlp/launch/stage_registry.h"
#include "stage_common.h"  // src/launch (private helpers under test)

namespace bignlp::launch {
namespace {

namespace fs = std::filesystem;

// Keys some presets leave for the user ("???" or null).
std::vector<std::string> required_for(const std::string& group, const std::string& option) {
  if (option.ends_with("custom_task")) {
    return {group + ".model.data.train_ds.src_file_name=/d/src.txt", group + ".model.data.train_ds.tgt_file_name=/d/tgt.txt",
            group + ".model.data.validation_ds.src_file_name=/d/vs.txt",
            group + ".model.data.validation_ds.tgt_file_name=/d/vt.txt"};
  }
  if (option == "generic/custom_dataset") {
    return {group + ".raw_dataset_files=[/d/a.jsonl]", group + ".train_tokenizer_args.input=/d/t.txt"};
  }
  return {};
}

TEST(Presets, EveryPredefinedConfigPlansOnEveryClusterType) {
  const fs::path conf = fs::path(BIGNLP_SOURCE_DIR) / "conf";
  int planned = 0;
  for (const char* group : {"data_preparation", "training", "conversion", "fine_tuning", "prompt_learning",
                            "evaluation", "export"}) {
    for (const auto& entry : fs::recursive_directory_iterator(conf / group)) {
      if (entry.path().extension() != ".yaml") continue;
      const std::string option = fs::relative(entry.path(), conf / group).replace_extension().string();
      if (option == "gpt3/demo") continue;  // the demo corpus's own config, tested in tests/unit/data
      for (const char* cluster : {"bcm", "bcp", "local"}) {
        std::vector<std::string> o = {std::string("stages=[") + group + "]", std::string(group) + "=" + option,
                                      std::string("cluster_type=") + cluster, "dry_run=true",
                                      "base_results_dir=/nonexistent/results"};
        for (auto& r : required_for(group, option)) o.push_back(r);
        const auto c = testing::compose_conf(o);
        StageSequenceOptions opt;
        opt.exists = [](const fs::path&) { return true; };
        DryRunSubmitter ids;
        opt.submitter = &ids;
        std::ostringstream out;
        TempDir tmp;
        // Writes go below base_results_dir: point it at a scratch folder.
        auto c2 = c;
        c2.config.set_path("base_results_dir", config::ConfigNode::string(tmp.path().string()));
        try {
          const StageSequenceResult r = run_stage_sequence(c2.request(), opt, Logger::capturing(), out);
          EXPECT_FALSE(r.jobs.empty()) << group << "=" << option << " on " << cluster;
          ++planned;
        } catch (const ConfigError& e) {
          const std::string m = e.what();
          // Cluster-sized jobs are refused locally, by design.
          if (std::string(cluster) == "local" && m.find("cluster_type=local runs every task") != std::string::npos) continue;
          ADD_FAILURE() << group << "=" << option << " on " << cluster << ": " << m;
        }
      }
    }
  }
  EXPECT_GT(planned, 80);
}

std::string plan_error(std::vector<std::string> overrides) {
  overrides.insert(overrides.end(), {"dry_run=true", "base_results_dir=/nonexistent"});
  const auto c = testing::compose_conf(overrides);
  StageSequenceOptions opt;
  opt.exists = [](const fs::path&) { return true; };
  std::ostringstream out;
  try {
    run_stage_sequence(c.request(), opt, Logger::capturing(), out);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(StageChecks, GptPipelineAndSequenceParallel) {
  EXPECT_NE(plan_error({"stages=[training]", "training=gpt3/20b", "training.model.num_layers=42"})
                .find("training.model.num_layers=42 is not divisible by training.model.pipeline_model_parallel_size=4"),
            std::string::npos);
  EXPECT_NE(plan_error({"stages=[training]", "training=gpt3/175b", "training.model.virtual_pipeline_model_parallel_size=5"})
                .find("training.model.num_layers=96 is not divisible by training.model.pipeline_model_parallel_size=8 x "
                      "training.model.virtual_pipeline_model_parallel_size=5 = 40 model chunks"),
            std::string::npos);
  EXPECT_NE(plan_error({"stages=[training]", "training=gpt3/5b", "training.model.pipeline_model_parallel_size=2",
                        "training.model.virtual_pipeline_model_parallel_size=2"})
                .find("needs training.model.pipeline_model_parallel_size of at least 3"),
            std::string::npos);
  EXPECT_NE(plan_error({"stages=[training]", "training=gpt3/20b", "training.model.encoder_seq_length=2047",
                        "training.model.data.seq_length=2047"})
                .find("model.sequence_parallel=true splits the sequence across tensor-parallel ranks, but "
                      "training.model.encoder_seq_length=2047 is not divisible by"),
            std::string::npos);
  EXPECT_NE(plan_error({"stages=[training]", "training=gpt3/5b", "training.trainer.devices=16"})
                .find("training.trainer.devices=16 is more than the 8 GPUs of a node"),
            std::string::npos);
  EXPECT_NE(plan_error({"stages=[training]", "training=gpt3/5b", "training.run.time_limit=7 days"})
                .find("training.run.time_limit=7 days is not a Slurm time"),
            std::string::npos);
}

TEST(StageChecks, T5SplitsLayersAtTheSplitRank) {
  EXPECT_EQ(plan_error({"stages=[training]", "training=t5/41b"}), "");
  const std::string m = plan_error({"stages=[training]", "training=t5/41b", "training.model.encoder.num_layers=35"});
  EXPECT_NE(m.find("training.model.encoder.num_layers=35 is not divisible by its 2 pipeline stages"), std::string::npos)
      << m;
  EXPECT_NE(plan_error({"stages=[training]", "training=t5/23b", "training.model.pipeline_model_parallel_split_rank=2"})
                .find("must be between 1 and training.model.pipeline_model_parallel_size=2 - 1"),
            std::string::npos);
  EXPECT_NE(plan_error({"stages=[training]", "training=mt5/170m", "training.model.tensor_model_parallel_size=4",
                        "training.model.global_batch_size=2048"})
                .find("training.model.encoder.num_attention_heads=6 is not divisible by"),
            std::string::npos);
}

TEST(StageChecks, ConversionAndEvaluationNeedOneTaskPerRank) {
  EXPECT_NE(plan_error({"stages=[conversion]", "conversion.run.ntasks_per_node=4"})
                .find("conversion.run.nodes=1 x conversion.run.ntasks_per_node=4 = 4 tasks, but the model has "
                      "conversion.model.tensor_model_parallel_size=2 x conversion.model.pipeline_model_parallel_size=1 "
                      "= 2 ranks"),
            std::string::npos);
  EXPECT_EQ(plan_error({"stages=[evaluation]", "evaluation.model.tensor_model_parallel_size=8",
                        "evaluation.model.pipeline_model_parallel_size=2"}),
            "");  // nodes and tasks follow from the sizes
}

TEST(StageChecks, DataPreparationInputs) {
  EXPECT_NE(plan_error({"stages=[data_preparation]", "data_preparation.file_numbers=3-1"})
                .find("data_preparation.file_numbers: '3-1': the range '3-1' runs backwards"),
            std::string::npos);
  EXPECT_NE(plan_error({"stages=[data_preparation]", "data_preparation=generic/custom_dataset"})
                .find("data_preparation.raw_dataset_files lists no file"),
            std::string::npos);
  EXPECT_NE(plan_error({"stages=[data_preparation]", "data_preparation=generic/custom_dataset",
                        "data_preparation.raw_dataset_files=[/a.jsonl]"})
                .find("data_preparation.train_tokenizer is true but data_preparation.train_tokenizer_args.input is null"),
            std::string::npos);
  EXPECT_NE(plan_error({"stages=[data_preparation]", "data_preparation.dataset=other"})
                .find("data_preparation.dataset=other is not pile, mc4 or custom_dataset"),
            std::string::npos);
}

TEST(StageChecks, ValuesOfTheWrongTypeNameTheKey) {
  // A key of the worker-key schema (config/worker_keys.h) names the override that set it.
  EXPECT_EQ(plan_error({"stages=[training]", "training.model.tensor_model_parallel_size=abc"}),
            "training: training.model.tensor_model_parallel_size=abc (override #2 "
            "'training.model.tensor_model_parallel_size=abc'): must be an integer >= 1\nNothing was written or "
            "submitted.");
  EXPECT_EQ(plan_error({"stages=[training]", "training.model.sequence_parallel=3"}),
            "training.model.sequence_parallel: expected bool, got 3 (int)");
  EXPECT_EQ(plan_error({"stages=[training]", "training.run.name=null"}),
            "training.run.name: expected string, got null");
  EXPECT_NE(plan_error({"stages=[conversion]", "conversion.run.nemo_file_name=x.zip"})
                .find("conversion.run.nemo_file_name=x.zip must end in .nemo"),
            std::string::npos);
}

TEST(StageChecks, StageDoesNotExistForFamily) {
  EXPECT_NE(plan_error({"stages=[fine_tuning]", "fine_tuning=t5/squad", "fine_tuning.run.name=x"}), "x");
  EXPECT_THROW(make_stage("fine_tuning", "gpt3"), ConfigError);
  try {
    make_stage("export", "t5");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("export supports: gpt3"), std::string::npos) << e.what();
  }
}

TEST(SlurmTime, AcceptsSlurmFormatsOnly) {
  for (const char* ok : {"30", "30:00", "4:00:00", "7-00:00:00", "1-12", "2-3:04", "UNLIMITED"}) {
    EXPECT_TRUE(detail::is_slurm_time(ok)) << ok;
  }
  for (const char* bad : {"", "7 days", "1:2:3:4", "a-1", "1-", "-1", "4h"}) {
    EXPECT_FALSE(detail::is_slurm_time(bad)) << bad;
  }
}

}  // namespace
}  // namespace bignlp::launch

// Worker set-up: the device request after the command line, backend and world-size errors (the
// texts bignlp-train's users see), the CUDA_DEVICE_MAX_CONNECTIONS rule, and whole sessions on the
// CPU: one process, one process of a bigger job, and two ranks (threads) meeting through files.
#include "bignlp/worker/worker_session.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "bignlp/core/error.h"

namespace bignlp::worker {
namespace {

namespace fs = std::filesystem;

/// The message of the ConfigError `f` throws ("" when it throws none).
template <typename F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

ops::DeviceRequest accelerator(const char* text) {
  ops::DeviceRequest r;
  r.kind = ops::parse_device_kind(text, "trainer.accelerator");
  r.text = text;
  r.origin = "conf.yaml:9:16: trainer.accelerator";
  r.cpu_fix = "trainer.accelerator=cpu (or --device cpu)";
  return r;
}

bool gpu_visible() { return ops::probe_devices({}).cuda_devices > 0; }

TEST(WorkerSetup, DeviceFlagOverridesTheConfig) {
  const ops::DeviceRequest configured = accelerator("gpu");
  const ops::DeviceRequest kept = device_request(configured, "");
  EXPECT_EQ(kept.kind, ops::DeviceKind::kCuda);
  EXPECT_EQ(kept.origin, "conf.yaml:9:16: trainer.accelerator");
  const ops::DeviceRequest flag = device_request(configured, "cpu");
  EXPECT_EQ(flag.kind, ops::DeviceKind::kCpu);
  EXPECT_EQ(flag.text, "cpu");
  EXPECT_EQ(flag.origin, "--device");
  EXPECT_EQ(flag.cpu_fix, "--device cpu");
  EXPECT_EQ(device_request(configured, "cuda").kind, ops::DeviceKind::kCuda);
  EXPECT_EQ(config_error([&] { device_request(configured, "tpu"); }),
            "--device: 'tpu' is not a device; expected cpu, gpu (or cuda) or auto");
}

TEST(WorkerSetup, BackendFollowsTheDeviceAndRefusesTheWrongMemory) {
  const ops::DeviceRequest cpu = device_request({}, "cpu");
  EXPECT_EQ(choose_backend(std::nullopt, Device::cpu(), 4, cpu), comm::Backend::kGloo);
  EXPECT_EQ(choose_backend(std::nullopt, Device::cuda(0), 4, accelerator("gpu")), comm::Backend::kNccl);
  EXPECT_EQ(choose_backend(std::nullopt, Device::cuda(0), 1, accelerator("gpu")), comm::Backend::kGloo);
  EXPECT_EQ(choose_backend(comm::Backend::kNccl, Device::cuda(1), 2, accelerator("gpu")), comm::Backend::kNccl);
  EXPECT_EQ(config_error([&] { choose_backend(comm::Backend::kNccl, Device::cpu(), 2, cpu); }),
            "--comm-backend nccl moves GPU memory, but this rank computes on the CPU (--device: 'cpu'); use "
            "--comm-backend gloo (or auto), or train on GPUs");
  EXPECT_EQ(config_error([&] { choose_backend(comm::Backend::kNccl, Device::cpu(), 1, accelerator("cpu")); }),
            "--comm-backend nccl moves GPU memory, but this rank computes on the CPU (conf.yaml:9:16: "
            "trainer.accelerator: 'cpu'); use --comm-backend gloo (or auto), or train on GPUs");
  EXPECT_EQ(config_error([&] { choose_backend(comm::Backend::kGloo, Device::cuda(0), 2, accelerator("gpu")); }),
            "--comm-backend gloo moves host memory, but the ranks train on GPUs; use --comm-backend nccl (or auto)");
  EXPECT_EQ(parse_comm_backend("auto"), std::nullopt);
  EXPECT_EQ(parse_comm_backend("gloo"), comm::Backend::kGloo);
  EXPECT_THROW(parse_comm_backend("mpi"), ConfigError);
  EXPECT_EQ(parse_rendezvous_kind("file"), RendezvousKind::kFile);
  EXPECT_THROW(parse_rendezvous_kind("etcd"), ConfigError);
}

TEST(WorkerSetup, WorldSizeMismatchNamesTheConfigAndTheLauncher) {
  const comm::DistributedEnv slurm = comm::parse_distributed_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}});
  EXPECT_NO_THROW(check_world_size(slurm, {2, 2}));
  EXPECT_EQ(config_error([&] { check_world_size(slurm, {1, 8}); }),
            "trainer.num_nodes x trainer.devices = 1 x 8 = 8 ranks, but the launcher started 4 (SLURM_NTASKS); start "
            "the job with that many tasks (srun --ntasks, or the launcher) or change the config");
  const comm::DistributedEnv torchrun = comm::parse_distributed_env({{"RANK", "1"}, {"WORLD_SIZE", "2"}});
  EXPECT_NE(config_error([&] { check_world_size(torchrun, {1, 1}); }).find("launcher started 2 (WORLD_SIZE)"),
            std::string::npos);
  EXPECT_NE(config_error([&] { check_world_size(comm::parse_distributed_env({}), {1, 2}); })
                .find("= 1 x 2 = 2 ranks, but the launcher started 1 (a single process)"),
            std::string::npos);
}

TEST(WorkerSetup, OverlappedTensorParallelAllReduceNeedsOneConnection) {
  const comm::ProcessGrid tp2(2, 0, 2, 1);
  const Logger log = Logger::capturing();
  EXPECT_TRUE(parallel_options(comm::Backend::kNccl, tp2, {{"CUDA_DEVICE_MAX_CONNECTIONS", "1"}}, log).async_tp_allreduce);
  EXPECT_TRUE(parallel_options(comm::Backend::kGloo, tp2, {}, log).async_tp_allreduce);
  EXPECT_TRUE(parallel_options(comm::Backend::kNccl, comm::ProcessGrid(2, 0, 1, 1), {}, log).async_tp_allreduce);
  EXPECT_EQ(log.captured(), "");
  EXPECT_FALSE(parallel_options(comm::Backend::kNccl, tp2, {{"CUDA_DEVICE_MAX_CONNECTIONS", "8"}}, log).async_tp_allreduce);
  EXPECT_NE(log.captured().find("CUDA_DEVICE_MAX_CONNECTIONS is not 1"), std::string::npos) << log.captured();
}

TEST(WorkerSession, OneProcessOnTheCpuIsAOneRankGrid) {
  WorkerOptions o;
  o.device = accelerator("cpu");
  o.cpu_threads = 1;
  o.expected_world = ExpectedWorld{1, 1};
  const Logger log = Logger::capturing();
  WorkerSession s = start_worker(o, {}, log);
  EXPECT_TRUE(s.context().device.is_cpu());
  EXPECT_NE(s.context().allocator, nullptr);
  EXPECT_EQ(s.backend(), comm::Backend::kGloo);
  EXPECT_EQ(s.world().size(), 1);
  EXPECT_EQ(s.grid().world_size(), 1);
  EXPECT_EQ(s.grid().tp_size() * s.grid().pp_size() * s.grid().dp_size(), 1);
  const parallel::ParallelContext pc = s.parallel_context();
  EXPECT_EQ(pc.tp, nullptr);
  EXPECT_EQ(pc.pp, nullptr);
  EXPECT_EQ(pc.dp, nullptr);
  EXPECT_EQ(s.env().source, "default");
  s.log().info("hello");
  EXPECT_NE(log.captured().find("[rank 0 | tp 0 pp 0 dp 0] hello"), std::string::npos) << log.captured();
  s.barrier();
  // A session moves (the program may hand it around); the groups still point at its world.
  WorkerSession moved(std::move(s));
  EXPECT_EQ(moved.groups().world, &moved.world());
  moved.barrier();
}

TEST(WorkerSession, SetUpErrorsComeBeforeAnyConnection) {
  WorkerOptions o;
  o.device = accelerator("cpu");
  o.expected_world = ExpectedWorld{1, 2};
  EXPECT_NE(config_error([&] { start_worker(o, {}, Logger::capturing()); }).find("the launcher started 1"),
            std::string::npos);
  o.expected_world.reset();
  o.comm_backend = comm::Backend::kNccl;
  EXPECT_NE(config_error([&] { start_worker(o, {}, Logger::capturing()); })
                .find("--comm-backend nccl moves GPU memory, but this rank computes on the CPU (conf.yaml:9:16: "
                      "trainer.accelerator: 'cpu')"),
            std::string::npos);
  if (gpu_visible()) GTEST_SKIP() << "a GPU is visible: the device errors below are for machines without one";
  o.comm_backend.reset();
  o.device_flag = "cuda";
  const std::string e = config_error([&] { start_worker(o, {}, Logger::capturing()); });
  EXPECT_NE(e.find("--device: 'cuda' asks for a GPU, but "), std::string::npos) << e;
  EXPECT_NE(e.find("--device cpu"), std::string::npos) << e;
}

TEST(WorkerSession, SingleProcessToolIgnoresTheJobWorld) {
  // Task 2 of a 4-task Slurm job on its node's third GPU slot: a single-process tool still works
  // alone, and keeps its log lines unprefixed.
  WorkerOptions o;
  o.world = WorldKind::kSingleProcess;
  o.device_flag = "cpu";
  const Logger log = Logger::capturing();
  const WorkerSession s = start_worker(
      o, {{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "2"}, {"SLURM_JOB_ID", "77"}}, log);
  EXPECT_EQ(s.grid().world_size(), 1);
  EXPECT_EQ(s.env().rank, 0);
  EXPECT_EQ(s.env().local_rank, 2);
  s.log().info("scored");
  EXPECT_EQ(log.captured().find("[rank"), std::string::npos) << log.captured();
}

TEST(WorkerSession, TwoRanksMeetThroughFilesAndFormTheGrid) {
  const fs::path root = fs::temp_directory_path() / fmt::format("bignlp_worker_test_{}", ::getpid());
  fs::remove_all(root);
  fs::create_directories(root);
  std::vector<int> tp_ranks(2, -1);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        WorkerOptions o;
        o.device_flag = "cpu";
        o.cpu_threads = 1;
        o.rendezvous = RendezvousKind::kFile;
        o.rendezvous_root = root;
        o.expected_world = ExpectedWorld{1, 2};
        o.tensor_model_parallel_size = 2;
        const WorkerSession s = start_worker(
            o, {{"SLURM_PROCID", std::to_string(r)}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", std::to_string(r)},
                {"SLURM_JOB_ID", "4242"}},
            Logger::capturing());
        const parallel::ParallelContext pc = s.parallel_context();
        if (pc.tp == nullptr || pc.tp->size() != 2) throw RuntimeError("no TP group of 2");
        tp_ranks[static_cast<std::size_t>(r)] = s.grid().tp_rank();
        s.barrier();
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(tp_ranks, (std::vector<int>{0, 1}));
  EXPECT_TRUE(fs::exists(root / ".rendezvous-4242"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace bignlp::worker

// GPT-2 BPE and preprocessing throughput, next to the reference encoders measured in the same run.
//
//   bench_tokenizer [--corpus FILE] [--vocab vocab.json] [--merges merges.txt] [--repeat N]
//                   [--threads N]
// Prints, for the corpus repeated N times and cut into line-aligned ~100 kB pieces:
//   ours, 1 thread (cold: a fresh word cache) and warm (the same encoder again), MB/s and tokens/s;
//   ours, all threads (one encoder per thread);
//   js-tiktoken (node, tools/peers) on the same pieces, and Python tiktoken / HF tokenizers when
//   /usr/bin/python3 has them; ratios against js-tiktoken;
//   preprocess (JSONL of the corpus' paragraphs -> .bin/.idx) MB/s with 1 worker and all workers.
// Defaults: data/demo/raw/moby_dick.txt and data/bpe/ (scripts/fetch_demo_data.sh --peers).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/logging.h"
#include "bignlp/data/gpt2_bpe.h"
#include "bignlp/data/preprocess.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string run(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

struct Result {
  std::string name;
  double seconds = 0;      // wall
  std::uint64_t tokens = 0;
  std::uint64_t bytes = 0;
  double cpu_seconds = 0;  // CPU time of the encoding threads (0: unknown)
};

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Wall-clock rates, and the rate per CPU-second (robust when other jobs share the machine); the
// ratios against js-tiktoken are taken on both.
void print(const Result& r, const Result* ref) {
  const double mbs = static_cast<double>(r.bytes) / r.seconds / 1e6;
  const double mb_cpu = r.cpu_seconds > 0 ? static_cast<double>(r.bytes) / r.cpu_seconds / 1e6 : 0.0;
  std::string ratio;
  if (ref && ref->seconds > 0 && ref->bytes > 0) {
    const double ref_mbs = static_cast<double>(ref->bytes) / ref->seconds / 1e6;
    ratio = fmt::format("  {:6.1f}x", mbs / ref_mbs);
    if (mb_cpu > 0 && ref->cpu_seconds > 0) {
      ratio += fmt::format(" {:6.1f}x", mb_cpu / (static_cast<double>(ref->bytes) / ref->cpu_seconds / 1e6));
    }
  }
  std::cout << fmt::format("  {:<36} {:8.2f} {:8.2f} {:9.2f} {:8.2f}{}\n", r.name, mbs,
                           static_cast<double>(r.tokens) / r.seconds / 1e6, r.cpu_seconds, mb_cpu, ratio);
}

// Python peers: {"tokens":..., "seconds":...} or nothing when the module is absent.
std::optional<Result> python_peer(const std::string& name, const std::string& code, const fs::path& corpus, int repeats,
                                  std::uint64_t bytes) {
  int rc = 0;
  run("/usr/bin/python3 -c 'import " + name + "' 2>/dev/null", &rc);
  if (rc != 0) return std::nullopt;
  const fs::path script = fs::temp_directory_path() / ("bignlp_bench_" + name + ".py");
  bignlp::write_file_atomic(script, code);
  const std::string out = run("/usr/bin/python3 " + script.string() + " " + corpus.string() + " " + std::to_string(repeats), &rc);
  fs::remove(script);
  if (rc != 0) return std::nullopt;
  const auto j = nlohmann::json::parse(out);
  return Result{name, j["seconds"].get<double>(), j["tokens"].get<std::uint64_t>(), bytes};
}

}  // namespace

int main(int argc, char** argv) {
  fs::path corpus = fs::path(BIGNLP_SOURCE_DIR) / "data/demo/raw/moby_dick.txt";
  fs::path vocab = fs::path(BIGNLP_SOURCE_DIR) / "data/bpe/vocab.json";
  fs::path merges = fs::path(BIGNLP_SOURCE_DIR) / "data/bpe/merges.txt";
  int repeats = 4;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--corpus") corpus = argv[i + 1];
    else if (a == "--vocab") vocab = argv[i + 1];
    else if (a == "--merges") merges = argv[i + 1];
    else if (a == "--repeat") repeats = std::stoi(argv[i + 1]);
    else if (a == "--threads") threads = std::stoi(argv[i + 1]);
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  try {
    const std::string text = bignlp::read_file(corpus);
    std::vector<std::string_view> pieces;
    for (std::size_t i = 0; i < text.size();) {
      std::size_t j = std::min(text.size(), i + 100000);
      const std::size_t nl = text.find('\n', j);
      j = nl == std::string::npos ? text.size() : nl + 1;
      pieces.emplace_back(text.data() + i, j - i);
      i = j;
    }
    const std::uint64_t bytes = static_cast<std::uint64_t>(text.size()) * static_cast<std::uint64_t>(repeats);
    std::cout << fmt::format("corpus: {} ({:.2f} MB) x {} repeats, {} pieces; {} hardware threads\n", corpus.string(),
                             static_cast<double>(text.size()) / 1e6, repeats, pieces.size(),
                             std::thread::hardware_concurrency());
    const auto t_load = Clock::now();
    const bignlp::data::Gpt2BpeTokenizer tok(vocab, merges);
    std::cout << fmt::format("GPT-2 BPE load: {:.3f} s\n", seconds_since(t_load));

    std::vector<Result> results;
    {
      auto enc = tok.make_encoder();
      std::vector<std::int32_t> ids;
      Result cold{"bignlp, 1 thread, 1 pass, cold cache"};
      const auto t0 = Clock::now();
      const double c0 = thread_cpu_seconds();
      for (auto p : pieces) {
        ids.clear();
        enc->encode(p, ids);
        cold.tokens += ids.size();
      }
      cold.seconds = seconds_since(t0);
      cold.cpu_seconds = thread_cpu_seconds() - c0;
      cold.bytes = text.size();
      results.push_back(cold);
    }
    // The corpus `repeats` times over `n` threads, one fresh encoder (word cache) per thread. Also
    // the CPU time the threads used: MB per CPU-second stays flat when scaling is linear, even on a
    // machine that other jobs share.
    double cpu_seconds_1 = 0;
    for (const int n : {1, threads}) {
      Result par{fmt::format("bignlp, {} thread{}", n, n > 1 ? "s" : "")};
      std::atomic<std::uint64_t> tokens{0};
      std::atomic<std::size_t> next{0};
      std::atomic<std::int64_t> cpu_ns{0};
      const std::size_t total = pieces.size() * static_cast<std::size_t>(repeats);
      const auto t0 = Clock::now();
      std::vector<std::thread> pool;
      for (int t = 0; t < n; ++t) {
        pool.emplace_back([&] {
          auto enc = tok.make_encoder();
          std::vector<std::int32_t> ids;
          std::uint64_t mine = 0;
          for (std::size_t k; (k = next.fetch_add(1)) < total;) {
            ids.clear();
            enc->encode(pieces[k % pieces.size()], ids);
            mine += ids.size();
          }
          tokens += mine;
          cpu_ns += static_cast<std::int64_t>(thread_cpu_seconds() * 1e9);
        });
      }
      for (auto& t : pool) t.join();
      par.seconds = seconds_since(t0);
      par.tokens = tokens.load();
      par.bytes = bytes;
      par.cpu_seconds = static_cast<double>(cpu_ns.load()) / 1e9;
      if (n == 1) cpu_seconds_1 = par.cpu_seconds;
      else par.name += fmt::format(" (CPU efficiency {:.0f}%)", 100.0 * cpu_seconds_1 / par.cpu_seconds);
      results.push_back(par);
      if (threads == 1) break;
    }
    std::optional<Result> js;
    const fs::path peer = fs::path(BIGNLP_SOURCE_DIR) / "tools/peers/tiktoken_encode.js";
    if (fs::exists(fs::path(BIGNLP_SOURCE_DIR) / "tools/peers/node_modules/js-tiktoken")) {
      int rc = 0;
      const std::string out = run("node " + peer.string() + " bench " + corpus.string() + " " + std::to_string(repeats), &rc);
      if (rc == 0) {
        const auto j = nlohmann::json::parse(out);
        js = Result{"js-tiktoken (node, 1 thread)", j["seconds"].get<double>(), j["tokens"].get<std::uint64_t>(), bytes,
                    j["cpu_seconds"].get<double>()};
      }
    }
    const std::string py_common =
        "import json,sys,time\ntext=open(sys.argv[1],encoding='utf-8').read()\nrep=int(sys.argv[2])\n"
        "pieces=[]\ni=0\nwhile i<len(text):\n j=min(len(text),i+100000)\n nl=text.find('\\n',j)\n"
        " j=len(text) if nl<0 else nl+1\n pieces.append(text[i:j])\n i=j\n";
    auto tiktoken = python_peer("tiktoken",
                                py_common + "import tiktoken\nenc=tiktoken.get_encoding('gpt2')\nenc.encode(pieces[0])\n"
                                            "t=time.time()\nn=0\nfor r in range(rep):\n for p in pieces: n+=len(enc.encode_ordinary(p))\n"
                                            "print(json.dumps({'tokens':n,'seconds':time.time()-t}))\n",
                                corpus, repeats, bytes);
    std::cout << "GPT-2 BPE encoding:            wall: MB/s  Mtok/s    CPU-s  MB/CPU-s  vs js-tiktoken: wall  CPU\n";
    for (const auto& r : results) print(r, js ? &*js : nullptr);
    if (js) {
      print(*js, &*js);
      if (js->tokens != results[1].tokens) {
        std::cout << fmt::format("  WARNING: token counts differ: bignlp {} vs js-tiktoken {}\n", results[1].tokens, js->tokens);
      } else {
        std::cout << fmt::format("  (same token count as js-tiktoken: {})\n", js->tokens);
      }
    } else {
      std::cout << "  js-tiktoken: not installed (scripts/fetch_demo_data.sh --peers)\n";
    }
    if (tiktoken) print(*tiktoken, js ? &*js : nullptr);
    else std::cout << "  Python tiktoken: not installed\n";
    std::cout << "  Hugging Face tokenizers: "
              << (python_peer("tokenizers", "print(0)\n", corpus, 1, bytes) ? "installed but not measured (needs a tokenizer.json)\n"
                                                                           : "not installed\n");

    // Preprocessing: the corpus' paragraphs as JSONL, repeated.
    bignlp::TempDir dir("bignlp-bench");
    std::string jsonl;
    for (int r = 0; r < repeats; ++r) {
      std::size_t i = 0;
      while (i < text.size()) {
        std::size_t j = text.find("\n\n", i);
        if (j == std::string::npos) j = text.size();
        if (j > i) jsonl += nlohmann::json({{"text", text.substr(i, j - i)}}).dump() + "\n";
        i = j + 2;
      }
    }
    bignlp::write_file_atomic(dir.path() / "in.jsonl", jsonl);
    std::cout << fmt::format("preprocess ({:.2f} MB of JSONL, GPT-2, --append-eod):\n", static_cast<double>(jsonl.size()) / 1e6);
    const bignlp::Logger quiet("bench", bignlp::LogLevel::kWarn);
    for (int w : {1, threads}) {
      bignlp::data::PreprocessOptions o;
      o.inputs = {dir.path() / "in.jsonl"};
      o.output_prefix = dir.path() / fmt::format("out{}", w);
      o.append_eod = true;
      o.workers = w;
      o.progress = bignlp::data::ProgressMode::kOff;
      const auto s = bignlp::data::preprocess(o, tok, quiet);
      std::cout << fmt::format("  {:<38} {:8.2f} MB/s {:10.2f} M tokens/s  ({} documents, {:.3f} s)\n",
                               fmt::format("bignlp-preprocess, {} worker(s)", w),
                               static_cast<double>(s.bytes) / s.seconds / 1e6, static_cast<double>(s.tokens) / s.seconds / 1e6,
                               s.documents, s.seconds);
      if (w == threads) break;
    }
  } catch (const bignlp::Error& e) {
    std::cerr << "bench_tokenizer: " << e.what() << "\n";
    return e.exit_code();
  }
  return 0;
}

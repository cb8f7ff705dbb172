// bignlp-serve end to end: a tiny random GPT-2 with the real GPT-2 tokenizer
// (tests/python/tiny_gpt2_bpe.py, imported with bignlp-convert) served on 127.0.0.1 and spoken to
// by real clients: curl (KServe v2 and the OpenAI-style API), the official openai npm client
// (tools/peers/openai_check.mjs), and a load generator whose answers under a few hundred
// concurrent requests must equal the single-request answers (tests/python/serve_load_test.py).
// Also: bad requests get 4xx with a message, a full queue 503, SIGTERM drains in-flight requests.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bignlp/core/file_io.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::pair<int, std::string> run(const std::string& cmd) {
  std::FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

/// A bignlp-serve child process on a free port.
class ServerProcess {
 public:
  ServerProcess(const fs::path& ckpt, const std::vector<std::string>& extra) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      std::vector<std::string> args{std::string(BIGNLP_BIN_DIR) + "/bignlp-serve", "--checkpoint", ckpt.string(),
                                    "--model-name", "tiny", "--port", "0", "--no-access-log", "--threads", "1"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    const auto colon = line.rfind(':');
    if (line.rfind("listening on ", 0) != 0 || colon == std::string::npos)
      throw std::runtime_error("bignlp-serve did not start: '" + line + "'");
    port_ = std::stoi(line.substr(colon + 1));
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }
  /// SIGTERM, then the exit status (-1 when it does not exit within `seconds`).
  int terminate_and_wait(int seconds) {
    kill(pid_, SIGTERM);
    for (int i = 0; i < seconds * 20; ++i) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

/// HTTP status and body of a curl call.
std::pair<int, std::string> curl(const std::string& args) {
  auto [rc, out] = run("curl -s -w '\\n%{http_code}' " + args);
  const auto nl = out.rfind('\n');
  return {nl == std::string::npos ? 0 : std::atoi(out.c_str() + nl + 1), out.substr(0, nl)};
}

std::string quote(const json& j) {
  std::string s = j.dump(), out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path vocab = fs::path(BIGNLP_SOURCE_DIR) / "data/bpe/vocab.json";
    const fs::path merges = fs::path(BIGNLP_SOURCE_DIR) / "data/bpe/merges.txt";
    if (!fs::exists(vocab) || !fs::exists(merges)) {
      skip_ = "GPT-2 vocab/merges not found in data/bpe: run scripts/fetch_demo_data.sh";
      return;
    }
    if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
      skip_ = "/usr/bin/python3 with torch is not installed";
      return;
    }
    if (std::system("curl --version >/dev/null 2>&1") != 0) {
      skip_ = "curl is not installed";
      return;
    }
    dir_ = new bignlp::TempDir("serve");
    const fs::path hf = dir_->path() / "hf";
    ASSERT_EQ(run(fmt::format("/usr/bin/python3 {}/tests/python/tiny_gpt2_bpe.py {} {} {}", BIGNLP_SOURCE_DIR,
                              hf.string(), vocab.string(), merges.string())).first, 0);
    ASSERT_EQ(run(fmt::format("{}/bignlp-convert --from hf-gpt2 --input {} --output {}", BIGNLP_BIN_DIR, hf.string(),
                              ckpt().string())).first, 0);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
  }
  static fs::path ckpt() { return dir_->path() / "ckpt"; }
  static inline bignlp::TempDir* dir_ = nullptr;
  static inline std::string skip_;
};

TEST_F(ServeTest, CurlSpeaksKServeV2WithFtTensors) {
  ServerProcess s(ckpt(), {});
  EXPECT_EQ(curl(s.url() + "/v2/health/live").first, 200);
  EXPECT_EQ(curl(s.url() + "/v2/health/ready").first, 200);
  auto [st, body] = curl(s.url() + "/v2/models/tiny");
  ASSERT_EQ(st, 200) << body;
  const json meta = json::parse(body);
  EXPECT_EQ(meta["name"], "tiny");
  EXPECT_EQ(meta["inputs"][0]["name"], "input_ids");
  // A ragged batch of two rows, right-padded, greedy; row 1 also samples with a seed.
  const json req{{"inputs",
                  {{{"name", "input_ids"}, {"shape", {2, 4}}, {"datatype", "UINT32"}, {"data", {{464, 2068, 7586, 21831}, {15496, 0, 0, 0}}}},
                   {{"name", "input_lengths"}, {"shape", {2, 1}}, {"datatype", "UINT32"}, {"data", {{4}, {1}}}},
                   {{"name", "request_output_len"}, {"shape", {2, 1}}, {"datatype", "UINT32"}, {"data", {{6}, {3}}}},
                   {{"name", "is_return_log_probs"}, {"shape", {2, 1}}, {"datatype", "BOOL"}, {"data", {{true}, {true}}}}}}};
  std::tie(st, body) = curl("-X POST -H 'Content-Type: application/json' " + s.url() + "/v2/models/tiny/infer -d " + quote(req));
  ASSERT_EQ(st, 200) << body;
  const json res = json::parse(body);
  std::map<std::string, json> out;
  for (const auto& o : res["outputs"]) out[o["name"]] = o;
  ASSERT_TRUE(out.contains("output_ids") && out.contains("sequence_length") && out.contains("cum_log_probs") &&
              out.contains("output_log_probs"));
  EXPECT_EQ(out["output_ids"]["shape"], json({2, 1, 10}));  // [batch, beam, max input + max output]
  const auto ids = out["output_ids"]["data"].get<std::vector<std::uint32_t>>();
  EXPECT_EQ(std::vector<std::uint32_t>(ids.begin(), ids.begin() + 4), (std::vector<std::uint32_t>{464, 2068, 7586, 21831}));
  EXPECT_EQ(ids[10], 15496u);                                      // row 1: its one prompt token, then its tokens
  EXPECT_EQ(out["sequence_length"]["data"], json({10, 4}));        // prompt + generated
  for (int i = 14; i < 20; ++i) EXPECT_EQ(ids[i], 50256u) << i;    // row 1 padded with end_id
  EXPECT_EQ(out["output_log_probs"]["shape"], json({2, 1, 6}));
  // Greedy row 0 equals bignlp-generate on the same checkpoint and prompt.
  const fs::path prompts = dir_->path() / "p.jsonl", gen = dir_->path() / "g.jsonl";
  bignlp::write_file_atomic(prompts, "{\"ids\": [464, 2068, 7586, 21831]}\n");
  ASSERT_EQ(run(fmt::format("{}/bignlp-generate --checkpoint {} --input {} --output {} --tokens-to-generate 6 --end-id -1",
                            BIGNLP_BIN_DIR, ckpt().string(), prompts.string(), gen.string())).first, 0);
  std::ifstream g(gen);
  json line;
  g >> line;
  EXPECT_EQ(line["ids"], json(std::vector<std::uint32_t>(ids.begin() + 4, ids.begin() + 10)));
}

TEST_F(ServeTest, CurlSpeaksTheOpenAiApi) {
  ServerProcess s(ckpt(), {});
  auto [st, body] = curl(s.url() + "/v1/models");
  ASSERT_EQ(st, 200);
  EXPECT_EQ(json::parse(body)["data"][0]["id"], "tiny");
  const json c{{"model", "tiny"}, {"prompt", "Hello, my name is"}, {"max_tokens", 5}, {"temperature", 0}, {"logprobs", 2}};
  std::tie(st, body) = curl(s.url() + "/v1/completions -H 'Content-Type: application/json' -d " + quote(c));
  ASSERT_EQ(st, 200) << body;
  const json r = json::parse(body);
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(r["usage"]["completion_tokens"], 5);
  ASSERT_EQ(r["choices"][0]["logprobs"]["tokens"].size(), 5u);
  std::string joined;
  for (const auto& t : r["choices"][0]["logprobs"]["tokens"]) joined += t.get<std::string>();
  EXPECT_EQ(joined, r["choices"][0]["text"].get<std::string>());
  // Greedy: each token is the most likely of its step.
  for (std::size_t i = 0; i < 5; ++i) {
    const double lp = r["choices"][0]["logprobs"]["token_logprobs"][i];
    for (const auto& [tok, alt] : r["choices"][0]["logprobs"]["top_logprobs"][i].items()) EXPECT_LE(alt.get<double>(), lp + 1e-6);
  }
  // The same request streamed: server-sent events that add up to the same text.
  json cs = c;
  cs["stream"] = true;
  cs.erase("logprobs");
  std::tie(st, body) = curl("-N " + s.url() + "/v1/completions -d " + quote(cs));
  ASSERT_EQ(st, 200);
  std::string streamed;
  int events = 0;
  bool done = false;
  std::istringstream in(body);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("data: ", 0) != 0) continue;
    if (l == "data: [DONE]") {
      done = true;
      continue;
    }
    streamed += json::parse(l.substr(6))["choices"][0]["text"].get<std::string>();
    ++events;
  }
  EXPECT_TRUE(done);
  EXPECT_GE(events, 2);
  EXPECT_EQ(streamed, r["choices"][0]["text"].get<std::string>());
  // Chat, with n = 2 seeded samples: two choices, assistant messages.
  const json chat{{"model", "tiny"}, {"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}}},
                  {"max_tokens", 4}, {"n", 2}, {"seed", 3}};
  std::tie(st, body) = curl(s.url() + "/v1/chat/completions -d " + quote(chat));
  ASSERT_EQ(st, 200) << body;
  const json cr = json::parse(body);
  ASSERT_EQ(cr["choices"].size(), 2u);
  EXPECT_EQ(cr["choices"][1]["message"]["role"], "assistant");
  EXPECT_EQ(cr["object"], "chat.completion");
  // Metrics count what was served.
  std::tie(st, body) = curl(s.url() + "/metrics");
  ASSERT_EQ(st, 200);
  EXPECT_NE(body.find("bignlp_requests_total{endpoint=\"/v1/completions\",code=\"200\"} 2"), std::string::npos) << body;
  EXPECT_NE(body.find("bignlp_kv_cache_slots_total 8"), std::string::npos);
  EXPECT_NE(body.find("bignlp_request_duration_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
}

TEST_F(ServeTest, BadRequestsGetClearClientErrors) {
  ServerProcess s(ckpt(), {});
  const auto expect = [&](const std::string& path, const std::string& data, int status, const std::string& needle) {
    const auto [st, body] = curl(s.url() + path + " -d " + quote(json::parse(data)));
    EXPECT_EQ(st, status) << path << " " << data << " -> " << body;
    EXPECT_NE(body.find(needle), std::string::npos) << body;
  };
  const auto [st, body] = curl(s.url() + "/v1/completions -d '{bad json'");
  EXPECT_EQ(st, 400);
  EXPECT_NE(body.find("malformed JSON"), std::string::npos) << body;
  expect("/v1/completions", R"({"model": "other", "prompt": "x"})", 404, "unknown model 'other'");
  expect("/v1/completions", R"({"model": "tiny", "prompt": "x", "max_tokens": 65})", 400, "'max_tokens' = 65 is outside");
  expect("/v1/completions", R"({"model": "tiny", "prompt": "x", "best_of": 3})", 400, "best_of");
  expect("/v1/completions", R"({"model": "tiny", "prompt": "x", "temprature": 1})", 400, "unsupported parameter 'temprature'");
  expect("/v1/completions", R"({"model": "tiny", "prompt": [1, 2, 99999]})", 400, "99999 is not a token id");
  expect("/v1/completions", R"({"model": "tiny", "prompt": [[1, 2, 3]], "max_tokens": 62})", 400,
         "exceeds the context of 64 positions");
  expect("/v1/chat/completions", R"({"model": "tiny", "messages": [{"role": "robot", "content": "x"}]})", 400,
         "messages[0].role 'robot'");
  const std::string ids = R"({"name": "input_ids", "shape": [1, 2], "datatype": "UINT32", "data": [1, 2]})";
  const std::string lens = R"({"name": "input_lengths", "shape": [1, 1], "datatype": "UINT32", "data": [2]})";
  const std::string out = R"({"name": "request_output_len", "shape": [1, 1], "datatype": "UINT32", "data": [3]})";
  expect("/v2/models/tiny/infer", "{\"inputs\": [" + ids + "," + lens + "]}", 400, "input request_output_len is required");
  expect("/v2/models/tiny/infer",
         "{\"inputs\": [" + ids + "," + lens + "," + out +
             R"(, {"name": "temperature", "shape": [1, 1], "datatype": "UINT32", "data": [1]}]})",
         400, "input temperature: datatype UINT32 is not FP32");
  expect("/v2/models/tiny/infer",
         R"({"inputs": [{"name": "input_ids", "shape": [1, 3], "datatype": "UINT32", "data": [1, 2]}]})", 400,
         "shape [1,3] holds 3 elements, data has 2");
  expect("/v2/models/tiny/infer",
         "{\"inputs\": [" + ids + "," + lens + "," + out +
             R"(, {"name": "runtime_top_k", "shape": [3, 1], "datatype": "UINT32", "data": [1, 1, 1]}]})",
         400, "input runtime_top_k: expected shape [1, 1]");
  expect("/v2/models/tiny/infer", "{\"inputs\": [" + ids + "," + lens + "," + out +
             R"(, {"name": "foo", "shape": [1], "datatype": "FP32", "data": [1]}]})", 400, "input foo: not an input");
  expect("/v2/models/nope/infer", "{\"inputs\": []}", 404, "unknown model 'nope'");
  // The server is still healthy.
  EXPECT_EQ(curl(s.url() + "/v2/health/ready").first, 200);
}

TEST_F(ServeTest, TheOpenAiNpmClientWorks) {
  const fs::path client = fs::path(BIGNLP_SOURCE_DIR) / "tools/peers/openai_check.mjs";
  if (!fs::exists(fs::path(BIGNLP_SOURCE_DIR) / "tools/peers/node_modules/openai/package.json"))
    GTEST_SKIP() << "the openai npm package is not installed: run scripts/fetch_demo_data.sh --peers";
  ServerProcess s(ckpt(), {});
  const auto [rc, out] = run(fmt::format("node {} {}/v1 tiny", client.string(), s.url()));
  ASSERT_EQ(rc, 0) << out;
  const json r = json::parse(out.substr(out.find('{')));
  EXPECT_EQ(r["completion"]["finish_reason"], "length");
  EXPECT_EQ(r["completion"]["usage"]["completion_tokens"], 12);
  EXPECT_FALSE(r["completion"]["text"].get<std::string>().empty());
  EXPECT_EQ(r["completion_stream"]["text"], r["completion"]["text"]);
  EXPECT_GE(r["completion_stream"]["chunks"].get<int>(), 2);
  EXPECT_EQ(r["chat_stream"]["text"], r["chat"]["text"]);  // same seed, streamed or not
  EXPECT_EQ(r["chat_stream"]["finish_reason"], "length");
  EXPECT_EQ(r["chat"]["role"], "assistant");
  EXPECT_EQ(r["models"], json({"tiny"}));
  EXPECT_EQ(r["unknown_model_status"], 404);
}

TEST_F(ServeTest, AnswersUnderConcurrentLoadEqualSingleRequestAnswers) {
  ServerProcess s(ckpt(), {"--max-batch-size", "16", "--http-threads", "128", "--max-queue", "1024", "--batch-invariant"});
  const auto [rc, out] = run(fmt::format("/usr/bin/python3 {}/tests/python/serve_load_test.py {} tiny 300 128",
                                         BIGNLP_SOURCE_DIR, s.url()));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"requests\": 300"), std::string::npos) << out;
}

TEST_F(ServeTest, AFullQueueAnswers503AndSigtermDrains) {
  ServerProcess s(ckpt(), {"--max-batch-size", "1", "--max-queue", "16", "--http-threads", "32"});
  // n = 16 sequences per request on one KV slot: while one request runs, its waiting sequences
  // leave no room in the queue of 16 for another request's 16.
  const json req{{"model", "tiny"}, {"prompt", "Once upon a time"}, {"max_tokens", 59}, {"temperature", 0}, {"n", 16}};
  const std::string cmd = "curl -s -o /dev/null -w '%{http_code}\\n' " + s.url() + "/v1/completions -d " + quote(req);
  std::string many;
  for (int i = 0; i < 24; ++i) many += cmd + " & ";
  auto [rc, codes] = run("(" + many + "wait)");
  const auto occurrences = [](const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
  };
  const std::size_t n200 = occurrences(codes, "200"), n503 = occurrences(codes, "503");
  EXPECT_GE(n503, 1u) << codes;
  EXPECT_GE(n200, 1u) << codes;
  EXPECT_EQ(n200 + n503, 24u) << codes;
  // SIGTERM while requests run: they are answered, then the server exits 0.
  const fs::path codes_file = dir_->path() / "codes.txt";
  json small = req;
  small["n"] = 4;  // three requests of 4 fit the queue
  const std::string cmd2 = "curl -s -o /dev/null -w '%{http_code}\\n' " + s.url() + "/v1/completions -d " + quote(small);
  std::thread clients([&] { run("(" + cmd2 + " & " + cmd2 + " & " + cmd2 + " & wait) > " + codes_file.string()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  const int status = s.terminate_and_wait(60);
  clients.join();
  EXPECT_EQ(status, 0);
  std::ifstream f(codes_file);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 3) << all;
  EXPECT_EQ(all, "200\n200\n200\n");  // every in-flight request answered, none dropped
}

}  // namespace

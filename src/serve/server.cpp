#include "bignlp/serve/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "bignlp/core/error.h"
#include "bignlp/infer/generation_io.h"

namespace bignlp::serve {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

/// A request error with its HTTP status.
struct HttpError : std::runtime_error {
  int status;
  std::string code;
  HttpError(int s, std::string msg, std::string c = "invalid_request_error")
      : std::runtime_error(std::move(msg)), status(s), code(std::move(c)) {}
};

/// What a handler thread waits on: tokens as they come, then the result.
struct Pending {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::int32_t> tokens;
  bool done = false;
  infer::GenerationResult result;
};

constexpr double kBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

std::int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Flattens a (nested) JSON array of scalars.
void flatten(const json& j, std::vector<json>& out) {
  if (j.is_array())
    for (const auto& e : j) flatten(e, out);
  else
    out.push_back(j);
}

/// One KServe v2 input tensor.
struct Tensor {
  std::string name, datatype;
  std::vector<std::int64_t> shape;
  std::vector<json> data;
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  bool is_int() const {
    return datatype == "UINT32" || datatype == "INT32" || datatype == "UINT64" || datatype == "INT64" ||
           datatype == "UINT8" || datatype == "INT8" || datatype == "UINT16" || datatype == "INT16";
  }
  std::int64_t as_int(std::size_t i) const {
    const json& v = data[i];
    if (!v.is_number_integer()) throw HttpError(400, fmt::format("input {}: element {} is not an integer", name, i));
    const std::int64_t x = v.get<std::int64_t>();
    if (datatype.rfind("UINT", 0) == 0 && x < 0)
      throw HttpError(400, fmt::format("input {}: element {} is negative in a {} tensor", name, i, datatype));
    return x;
  }
  double as_float(std::size_t i) const {
    const json& v = data[i];
    if (!v.is_number()) throw HttpError(400, fmt::format("input {}: element {} is not a number", name, i));
    return v.get<double>();
  }
  bool as_bool(std::size_t i) const {
    const json& v = data[i];
    if (!v.is_boolean()) throw HttpError(400, fmt::format("input {}: element {} is not a boolean", name, i));
    return v.get<bool>();
  }
};

}  // namespace

struct Server::Impl {
  model::Model& model;
  const data::Tokenizer* tok;
  std::optional<std::int32_t> end_id;
  ServerOptions opt;
  infer::Engine engine;
  httplib::Server http;
  std::thread engine_thread;
  std::mutex wake_mu;
  std::condition_variable wake_cv;
  bool stop_engine = false;
  std::atomic<bool> draining{false};
  std::atomic<int> in_flight{0};
  std::thread shutdown_thread;
  std::mutex shutdown_mu;
  // Metrics (gauges are snapshots the engine thread takes after each step).
  std::mutex metrics_mu;
  std::map<std::pair<std::string, int>, std::int64_t> requests;
  std::vector<std::int64_t> latency_counts = std::vector<std::int64_t>(std::size(kBuckets) + 1, 0);
  double latency_sum = 0.0;
  std::atomic<std::int64_t> prompt_tokens{0}, generated_tokens{0}, running{0}, slots_used{0};
  std::atomic<double> last_step_tokens_per_s{0.0};
  std::atomic<std::uint64_t> next_id{1};
  Clock::time_point started = Clock::now();

  Impl(model::Model& m, const data::Tokenizer* t, std::optional<std::int32_t> e, ServerOptions o)
      : model(m), tok(t), end_id(e), opt(std::move(o)), engine(m, opt.engine) {}

  // ------------------------------------------------------------------------------------------
  // Engine thread

  void engine_loop() {
    while (true) {
      const auto t0 = Clock::now();
      const std::int64_t before = engine.decode_tokens() + engine.prompt_tokens();
      bool ran = false;
      try {
        ran = engine.step();
      } catch (const std::exception& e) {
        std::cerr << "bignlp-serve: engine step failed: " << e.what() << "\n";
        std::terminate();
      }
      prompt_tokens = engine.prompt_tokens();
      generated_tokens = engine.decode_tokens();
      running = static_cast<std::int64_t>(engine.running());
      slots_used = engine.slots_in_use();
      if (ran) {
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (s > 0) last_step_tokens_per_s = (engine.decode_tokens() + engine.prompt_tokens() - before) / s;
        continue;
      }
      std::unique_lock<std::mutex> lk(wake_mu);
      if (stop_engine) return;
      wake_cv.wait_for(lk, std::chrono::milliseconds(20));
    }
  }

  std::shared_ptr<Pending> submit(infer::GenerationRequest r) {
    auto p = std::make_shared<Pending>();
    try {
      engine.submit(
          std::move(r),
          [p](std::int32_t token, float) {
            std::lock_guard<std::mutex> l(p->m);
            p->tokens.push_back(token);
            p->cv.notify_all();
          },
          [p](infer::GenerationResult res) {
            std::lock_guard<std::mutex> l(p->m);
            p->result = std::move(res);
            p->done = true;
            p->cv.notify_all();
          });
    } catch (const infer::QueueFull& e) {
      throw HttpError(503, fmt::format("server busy: {}; retry later", e.what()), "server_busy");
    } catch (const ConfigError& e) {
      throw HttpError(400, e.what());
    }
    wake_cv.notify_one();
    return p;
  }

  static void wait(Pending& p) {
    std::unique_lock<std::mutex> l(p.m);
    p.cv.wait(l, [&] { return p.done; });
    if (!p.result.error.empty()) throw HttpError(422, fmt::format("generation failed: {}", p.result.error), "generation_error");
  }

  /// Checks every request first so that a bad one submits nothing.
  std::vector<std::shared_ptr<Pending>> submit_all(std::vector<infer::GenerationRequest> rs) {
    for (std::size_t i = 0; i < rs.size(); ++i) {
      try {
        engine.check(rs[i]);
      } catch (const ConfigError& e) {
        throw HttpError(400, rs.size() > 1 ? fmt::format("request {}: {}", i, e.what()) : std::string(e.what()));
      }
    }
    if (engine.queued() + rs.size() > static_cast<std::size_t>(opt.engine.max_queue))
      throw HttpError(503, fmt::format("server busy: {} requests wait (the queue limit is {}); retry later",
                                       engine.queued(), opt.engine.max_queue),
                      "server_busy");
    std::vector<std::shared_ptr<Pending>> out;
    for (auto& r : rs) out.push_back(submit(std::move(r)));
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // KServe v2

  json tensor_meta(const char* name, const char* dt, std::vector<std::int64_t> shape, bool optional = true) const {
    json j{{"name", name}, {"datatype", dt}, {"shape", shape}};
    if (optional) j["optional"] = true;
    return j;
  }

  json model_metadata() const {
    json inputs = json::array({tensor_meta("input_ids", "UINT32", {-1, -1}, false),
                               tensor_meta("input_lengths", "UINT32", {-1, 1}, false),
                               tensor_meta("request_output_len", "UINT32", {-1, 1}, false),
                               tensor_meta("runtime_top_k", "UINT32", {-1, 1}), tensor_meta("runtime_top_p", "FP32", {-1, 1}),
                               tensor_meta("temperature", "FP32", {-1, 1}), tensor_meta("len_penalty", "FP32", {-1, 1}),
                               tensor_meta("repetition_penalty", "FP32", {-1, 1}),
                               tensor_meta("presence_penalty", "FP32", {-1, 1}), tensor_meta("min_length", "UINT32", {-1, 1}),
                               tensor_meta("random_seed", "UINT64", {-1, 1}),
                               tensor_meta("is_return_log_probs", "BOOL", {-1, 1}), tensor_meta("beam_width", "UINT32", {-1, 1}),
                               tensor_meta("start_id", "UINT32", {-1, 1}), tensor_meta("end_id", "UINT32", {-1, 1}),
                               tensor_meta("stop_words_list", "INT32", {-1, 2, -1}),
                               tensor_meta("bad_words_list", "INT32", {-1, 2, -1})});
    json outputs = json::array({tensor_meta("output_ids", "UINT32", {-1, -1, -1}, false),
                                tensor_meta("sequence_length", "UINT32", {-1, -1}, false),
                                tensor_meta("response_input_lengths", "INT32", {-1}, false),
                                tensor_meta("cum_log_probs", "FP32", {-1, -1}, false),
                                tensor_meta("output_log_probs", "FP32", {-1, -1, -1}, false)});
    for (auto& o : outputs) o.erase("optional");
    return json{{"name", opt.model_name}, {"versions", {"1"}}, {"platform", "bignlp_fastertransformer_gpt"},
                {"inputs", inputs}, {"outputs", outputs}};
  }

  void check_model(const std::string& name) const {
    if (name != opt.model_name)
      throw HttpError(404, fmt::format("unknown model '{}' (this server serves '{}')", name, opt.model_name),
                      "model_not_found");
  }

  json kserve_infer(const std::string& body) {
    json req;
    try {
      req = json::parse(body);
    } catch (const json::exception& e) {
      throw HttpError(400, fmt::format("malformed JSON: {}", e.what()));
    }
    if (!req.is_object() || !req.contains("inputs") || !req["inputs"].is_array())
      throw HttpError(400, "the request must be a JSON object with an \"inputs\" array");
    if (req.contains("parameters") && !req["parameters"].empty())
      throw HttpError(400, "request \"parameters\" are not supported; give the FT runtime arguments as input tensors");
    std::map<std::string, Tensor> in;
    for (const auto& t : req["inputs"]) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string())
        throw HttpError(400, "every input needs a \"name\"");
      Tensor x;
      x.name = t["name"].get<std::string>();
      if (!t.contains("shape") || !t["shape"].is_array() || !t.contains("datatype") || !t["datatype"].is_string() ||
          !t.contains("data"))
        throw HttpError(400, fmt::format("input {}: needs \"shape\", \"datatype\" and \"data\"", x.name));
      for (const auto& d : t["shape"]) {
        if (!d.is_number_integer() || d.get<std::int64_t>() < 0)
          throw HttpError(400, fmt::format("input {}: shape {} is not a list of sizes", x.name, t["shape"].dump()));
        x.shape.push_back(d.get<std::int64_t>());
      }
      x.datatype = t["datatype"].get<std::string>();
      flatten(t["data"], x.data);
      if (static_cast<std::int64_t>(x.data.size()) != x.numel())
        throw HttpError(400, fmt::format("input {}: shape {} holds {} elements, data has {}", x.name, t["shape"].dump(),
                                         x.numel(), x.data.size()));
      if (in.contains(x.name)) throw HttpError(400, fmt::format("input {} given twice", x.name));
      in.emplace(x.name, std::move(x));
    }
    static const std::map<std::string, std::string> kKinds{
        {"input_ids", "int"}, {"input_lengths", "int"}, {"request_output_len", "int"}, {"runtime_top_k", "int"},
        {"runtime_top_p", "float"}, {"temperature", "float"}, {"len_penalty", "float"}, {"repetition_penalty", "float"},
        {"presence_penalty", "float"}, {"min_length", "int"}, {"random_seed", "int"}, {"is_return_log_probs", "bool"},
        {"beam_width", "int"}, {"start_id", "int"}, {"end_id", "int"}, {"stop_words_list", "int"},
        {"bad_words_list", "int"}, {"beam_search_diversity_rate", "float"}};
    for (const auto& [name, t] : in) {
      const auto k = kKinds.find(name);
      if (k == kKinds.end())
        throw HttpError(400, fmt::format("input {}: not an input of this model (see GET /v2/models/{})", name,
                                         opt.model_name));
      const bool ok = k->second == "int" ? t.is_int()
                      : k->second == "float" ? (t.datatype == "FP32" || t.datatype == "FP64" || t.datatype == "FP16")
                                             : t.datatype == "BOOL";
      if (!ok) throw HttpError(400, fmt::format("input {}: datatype {} is not {}", name, t.datatype,
                                                k->second == "int" ? "an integer type" : k->second == "float" ? "FP32" : "BOOL"));
    }
    for (const char* need : {"input_ids", "input_lengths", "request_output_len"})
      if (!in.contains(need)) throw HttpError(400, fmt::format("input {} is required", need));
    const Tensor& ids = in.at("input_ids");
    if (ids.shape.size() != 2 || ids.shape[0] < 1 || ids.shape[1] < 1)
      throw HttpError(400, fmt::format("input input_ids: expected shape [batch, max_input_length], got {}",
                                       json(ids.shape).dump()));
    const std::int64_t b = ids.shape[0], s = ids.shape[1];
    // A per-row value: shape [B], [B, 1], or [1] / [1, 1] for the whole batch.
    const auto row_index = [&](const Tensor& t) -> std::function<std::size_t(std::int64_t)> {
      const bool ok = (t.shape.size() == 1 || (t.shape.size() == 2 && t.shape[1] == 1)) &&
                      (t.shape[0] == b || t.shape[0] == 1);
      if (!ok)
        throw HttpError(400, fmt::format("input {}: expected shape [{}, 1] (or [1, 1]), got {}", t.name, b,
                                         json(t.shape).dump()));
      if (t.shape[0] == 1) return [](std::int64_t) { return std::size_t{0}; };
      return [](std::int64_t r) { return static_cast<std::size_t>(r); };
    };
    const auto int_at = [&](const char* name, std::int64_t r, std::int64_t dflt) -> std::int64_t {
      if (!in.contains(name)) return dflt;
      const Tensor& t = in.at(name);
      return t.as_int(row_index(t)(r));
    };
    const auto float_at = [&](const char* name, std::int64_t r, double dflt) -> double {
      if (!in.contains(name)) return dflt;
      const Tensor& t = in.at(name);
      return t.as_float(row_index(t)(r));
    };
    const auto words_at = [&](const char* name, std::int64_t r) {
      std::vector<std::vector<std::int32_t>> out;
      if (!in.contains(name)) return out;
      const Tensor& t = in.at(name);
      std::vector<std::int64_t> shape = t.shape;
      if (shape.size() == 2) shape.insert(shape.begin(), 1);
      if (shape.size() != 3 || shape[1] != 2 || (shape[0] != b && shape[0] != 1))
        throw HttpError(400, fmt::format("input {}: expected shape [{}, 2, L], got {}", name, b, json(t.shape).dump()));
      const std::int64_t len = shape[2], row = shape[0] == 1 ? 0 : r;
      std::vector<std::int32_t> flat;
      for (std::int64_t i = 0; i < 2 * len; ++i) flat.push_back(static_cast<std::int32_t>(t.as_int(row * 2 * len + i) ));
      try {
        return infer::parse_word_list(flat, len, fmt::format("input {} row {}", name, r));
      } catch (const ConfigError& e) {
        throw HttpError(400, e.what());
      }
    };
    std::vector<infer::GenerationRequest> rs(static_cast<std::size_t>(b));
    std::vector<std::int64_t> lengths(static_cast<std::size_t>(b));
    std::int64_t max_out = 0;
    std::vector<bool> log_probs(static_cast<std::size_t>(b));
    for (std::int64_t r = 0; r < b; ++r) {
      auto& q = rs[static_cast<std::size_t>(r)];
      const std::int64_t len = int_at("input_lengths", r, 0);
      if (len < 1 || len > s)
        throw HttpError(400, fmt::format("input input_lengths: row {} is {}, outside [1, {}] (max_input_length)", r, len, s));
      lengths[r] = len;
      for (std::int64_t i = 0; i < len; ++i) {
        const std::int64_t id = ids.as_int(static_cast<std::size_t>(r * s + i));
        if (id >= model.vocab_size())
          throw HttpError(400, fmt::format("input input_ids: [{}, {}] = {} is outside the vocabulary [0, {})", r, i, id,
                                           model.vocab_size()));
        q.prompt.push_back(static_cast<std::int32_t>(id));
      }
      auto& p = q.params;
      p.max_new_tokens = int_at("request_output_len", r, 0);
      max_out = std::max(max_out, p.max_new_tokens);
      p.top_k = static_cast<int>(int_at("runtime_top_k", r, 0));
      p.top_p = static_cast<float>(float_at("runtime_top_p", r, 0.0));
      p.temperature = static_cast<float>(float_at("temperature", r, 1.0));
      p.len_penalty = static_cast<float>(float_at("len_penalty", r, 0.0));
      p.repetition_penalty = static_cast<float>(float_at("repetition_penalty", r, 1.0));
      p.presence_penalty = static_cast<float>(float_at("presence_penalty", r, 0.0));
      p.min_length = int_at("min_length", r, 0);
      p.random_seed = static_cast<std::uint64_t>(int_at("random_seed", r, 0));
      p.beam_width = static_cast<int>(int_at("beam_width", r, 1));
      if (float_at("beam_search_diversity_rate", r, 0.0) != 0.0)
        throw HttpError(400, "input beam_search_diversity_rate: only 0 (plain beam search) is supported");
      if (in.contains("end_id")) p.end_id = static_cast<std::int32_t>(int_at("end_id", r, 0));
      else p.end_id = end_id;
      if (in.contains("is_return_log_probs")) {
        const Tensor& t = in.at("is_return_log_probs");
        p.return_log_probs = t.as_bool(row_index(t)(r));
      }
      log_probs[r] = p.return_log_probs;
      p.stop_words = words_at("stop_words_list", r);
      p.bad_words = words_at("bad_words_list", r);
      try {
        p.validate(model.vocab_size(), fmt::format("row {}", r));
      } catch (const ConfigError& e) {
        throw HttpError(400, e.what());
      }
    }
    // start_id only matters for prompts of length 0, which are refused above.
    auto pending = submit_all(rs);
    for (auto& p : pending) wait(*p);
    std::int64_t w = 1;
    for (const auto& q : rs) w = std::max<std::int64_t>(w, q.params.beam_width);
    // Decoder-only: the prompt followed by the generated tokens, as FT's GPT returns them;
    // encoder-decoder: the generated decoder tokens only (FT's T5 drops the start token too).
    const bool encdec = model.is_encoder_decoder();
    const std::int64_t width = (encdec ? 0 : s) + max_out;
    std::vector<std::uint32_t> out_ids(static_cast<std::size_t>(b * w * width));
    std::vector<std::uint32_t> seq_len(static_cast<std::size_t>(b * w), 0);
    std::vector<float> cum(static_cast<std::size_t>(b * w), 0.0f), lps(static_cast<std::size_t>(b * w * max_out), 0.0f);
    bool any_log_probs = false;
    for (std::int64_t r = 0; r < b; ++r) {
      const auto& q = rs[r];
      const std::uint32_t pad = static_cast<std::uint32_t>(q.params.end_id.value_or(0));
      const auto& res = pending[r]->result;
      any_log_probs = any_log_probs || log_probs[r];
      for (std::int64_t bw = 0; bw < w; ++bw) {
        std::uint32_t* row = &out_ids[(r * w + bw) * width];
        std::fill(row, row + width, pad);
        if (bw >= static_cast<std::int64_t>(res.beams.size())) continue;
        const auto& beam = res.beams[bw];
        const std::size_t lead = encdec ? 0 : q.prompt.size();
        if (!encdec) std::copy(q.prompt.begin(), q.prompt.end(), row);
        std::copy(beam.tokens.begin(), beam.tokens.end(), row + lead);
        seq_len[r * w + bw] = static_cast<std::uint32_t>(lead + beam.tokens.size());
        cum[r * w + bw] = static_cast<float>(beam.cum_log_prob);
        for (std::size_t i = 0; i < beam.log_probs.size(); ++i) lps[(r * w + bw) * max_out + i] = beam.log_probs[i];
      }
    }
    std::set<std::string> wanted;
    if (req.contains("outputs")) {
      if (!req["outputs"].is_array()) throw HttpError(400, "\"outputs\" must be an array of {\"name\": ...}");
      for (const auto& o : req["outputs"]) {
        if (!o.is_object() || !o.contains("name") || !o["name"].is_string())
          throw HttpError(400, "\"outputs\" must be an array of {\"name\": ...}");
        wanted.insert(o["name"].get<std::string>());
      }
    }
    json outputs = json::array();
    const auto add = [&](const char* name, const char* dt, std::vector<std::int64_t> shape, json data) {
      if (wanted.empty() || wanted.contains(name))
        outputs.push_back(json{{"name", name}, {"datatype", dt}, {"shape", shape}, {"data", std::move(data)}});
      wanted.erase(name);
    };
    add("output_ids", "UINT32", {b, w, width}, out_ids);
    add("sequence_length", "UINT32", {b, w}, seq_len);
    std::vector<std::int32_t> in_len(lengths.begin(), lengths.end());
    add("response_input_lengths", "INT32", {b}, in_len);
    if (any_log_probs || wanted.contains("cum_log_probs")) add("cum_log_probs", "FP32", {b, w}, cum);
    if (any_log_probs || wanted.contains("output_log_probs")) add("output_log_probs", "FP32", {b, w, max_out}, lps);
    if (!wanted.empty()) throw HttpError(400, fmt::format("requested output {} is not an output of this model", *wanted.begin()));
    json resp{{"model_name", opt.model_name}, {"model_version", "1"}, {"outputs", outputs}};
    if (req.contains("id")) resp["id"] = req["id"];
    return resp;
  }

  // ------------------------------------------------------------------------------------------
  // OpenAI-style API

  struct Choice {
    std::shared_ptr<Pending> pending;
    std::int64_t prompt_tokens = 0;
    std::size_t prompt_index = 0;
    std::vector<std::string> stop;
  };

  struct OpenAiRequest {
    bool chat = false, stream = false, logprobs_on = false;
    int logprobs = 0;
    std::vector<Choice> choices;
    std::string id;
    std::int64_t created = 0;
  };

  std::vector<std::int32_t> encode_text(const std::string& text, const char* field) const {
    if (tok == nullptr)
      throw HttpError(400, fmt::format("{}: this model has no tokenizer; give token ids instead", field));
    return tok->encode(text);
  }

  OpenAiRequest openai_parse(const std::string& body, bool chat) {
    json j;
    try {
      j = json::parse(body);
    } catch (const json::exception& e) {
      throw HttpError(400, fmt::format("malformed JSON: {}", e.what()));
    }
    if (!j.is_object()) throw HttpError(400, "the request body must be a JSON object");
    static const std::set<std::string> kCommon{"model", "max_tokens", "temperature", "top_p", "n", "stop", "seed",
                                               "stream", "presence_penalty", "frequency_penalty", "user", "top_k",
                                               "repetition_penalty", "min_tokens", "logit_bias", "stream_options"};
    for (const auto& [k, v] : j.items()) {
      const bool known = kCommon.contains(k) || (!chat && (k == "prompt" || k == "logprobs" || k == "echo" ||
                                                             k == "best_of" || k == "suffix")) ||
                         (chat && (k == "messages" || k == "max_completion_tokens" || k == "logprobs" ||
                                   k == "top_logprobs"));
      if (!known) throw HttpError(400, fmt::format("unsupported parameter '{}'", k));
    }
    const auto refuse_unless = [&](const char* key, auto pred, const char* what) {
      if (j.contains(key) && !j[key].is_null() && !pred(j[key]))
        throw HttpError(400, fmt::format("'{}': only {} is supported", key, what));
    };
    refuse_unless("frequency_penalty", [](const json& v) { return v.is_number() && v.get<double>() == 0.0; }, "0");
    refuse_unless("logit_bias", [](const json& v) { return v.is_object() && v.empty(); }, "an empty map");
    refuse_unless("echo", [](const json& v) { return v.is_boolean() && !v.get<bool>(); }, "false");
    refuse_unless("suffix", [](const json& v) { return v.is_string() && v.get<std::string>().empty(); }, "none");
    if (!j.contains("model") || !j["model"].is_string()) throw HttpError(400, "'model' is required (a string)");
    check_model(j["model"].get<std::string>());
    const auto number = [&](const char* key, double dflt, double lo, double hi) {
      if (!j.contains(key) || j[key].is_null()) return dflt;
      if (!j[key].is_number()) throw HttpError(400, fmt::format("'{}' must be a number", key));
      const double v = j[key].get<double>();
      if (v < lo || v > hi) throw HttpError(400, fmt::format("'{}' = {} is outside [{}, {}]", key, v, lo, hi));
      return v;
    };
    const auto integer = [&](const char* key, std::int64_t dflt, std::int64_t lo, std::int64_t hi) {
      if (!j.contains(key) || j[key].is_null()) return dflt;
      if (!j[key].is_number_integer()) throw HttpError(400, fmt::format("'{}' must be an integer", key));
      const std::int64_t v = j[key].get<std::int64_t>();
      if (v < lo || v > hi) throw HttpError(400, fmt::format("'{}' = {} is outside [{}, {}]", key, v, lo, hi));
      return v;
    };
    OpenAiRequest r;
    r.chat = chat;
    r.created = now_unix();
    r.id = fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_id++);
    if (j.contains("stream") && !j["stream"].is_null()) {
      if (!j["stream"].is_boolean()) throw HttpError(400, "'stream' must be a boolean");
      r.stream = j["stream"].get<bool>();
    }
    // Prompts.
    std::vector<std::vector<std::int32_t>> prompts;
    std::vector<std::string> stop;
    if (chat) {
      if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
        throw HttpError(400, "'messages' must be a non-empty array of {\"role\", \"content\"}");
      std::string text;
      for (std::size_t i = 0; i < j["messages"].size(); ++i) {
        const json& m = j["messages"][i];
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
            !m["content"].is_string())
          throw HttpError(400, fmt::format("messages[{}]: expected {{\"role\": string, \"content\": string}}", i));
        const std::string role = m["role"].get<std::string>();
        if (role != "system" && role != "user" && role != "assistant")
          throw HttpError(400, fmt::format("messages[{}].role '{}': expected system, user or assistant", i, role));
        text += chat_role(role) + ": " + m["content"].get<std::string>() + "\n";
      }
      text += "Assistant:";
      prompts.push_back(encode_text(text, "messages"));
      stop.push_back("\nUser:");
    } else {
      if (!j.contains("prompt")) throw HttpError(400, "'prompt' is required");
      const json& p = j["prompt"];
      const auto ids_of = [&](const json& a, const std::string& where) {
        std::vector<std::int32_t> out;
        for (const auto& v : a) {
          if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= model.vocab_size())
            throw HttpError(400, fmt::format("{}: {} is not a token id in [0, {})", where, v.dump(), model.vocab_size()));
          out.push_back(v.get<std::int32_t>());
        }
        return out;
      };
      if (p.is_string()) {
        prompts.push_back(encode_text(p.get<std::string>(), "prompt"));
      } else if (p.is_array() && !p.empty() && p[0].is_number()) {
        prompts.push_back(ids_of(p, "prompt"));
      } else if (p.is_array() && !p.empty()) {
        for (std::size_t i = 0; i < p.size(); ++i) {
          if (p[i].is_string()) prompts.push_back(encode_text(p[i].get<std::string>(), "prompt"));
          else if (p[i].is_array()) prompts.push_back(ids_of(p[i], fmt::format("prompt[{}]", i)));
          else throw HttpError(400, fmt::format("prompt[{}]: expected a string or an array of token ids", i));
        }
      } else {
        throw HttpError(400, "'prompt' must be a string, an array of strings, an array of token ids or an array of those");
      }
      for (std::size_t i = 0; i < prompts.size(); ++i)
        if (prompts[i].empty()) throw HttpError(400, fmt::format("prompt {} holds no tokens", i));
    }
    if (j.contains("stop") && !j["stop"].is_null()) {
      const json& s = j["stop"];
      if (s.is_string()) stop.push_back(s.get<std::string>());
      else if (s.is_array() && s.size() <= 4) {
        for (const auto& x : s) {
          if (!x.is_string()) throw HttpError(400, "'stop' must be a string or up to 4 strings");
          stop.push_back(x.get<std::string>());
        }
      } else throw HttpError(400, "'stop' must be a string or up to 4 strings");
      for (const auto& x : stop)
        if (x.empty()) throw HttpError(400, "'stop' holds an empty string");
    }
    const std::int64_t n = integer("n", 1, 1, 16);
    if (!chat) refuse_unless("best_of", [&](const json& v) { return v.is_number_integer() && v.get<std::int64_t>() == n; }, "best_of = n");
    infer::SamplingParams p;
    const char* max_key = chat && j.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    p.max_new_tokens = integer(max_key, 16, 1, opt.engine.capacity > 0 ? opt.engine.capacity : model.max_sequence_length());
    const double temperature = number("temperature", 1.0, 0.0, 2.0);
    const double top_p = number("top_p", 1.0, 0.0, 1.0);
    if (j.contains("top_p") && top_p == 0.0) throw HttpError(400, "'top_p' must be > 0");
    p.top_k = static_cast<int>(integer("top_k", 0, 0, model.vocab_size()));
    if (temperature == 0.0) {
      p.top_k = 1;  // greedy
    } else {
      p.temperature = static_cast<float>(temperature);
      p.top_p = static_cast<float>(top_p);
    }
    p.presence_penalty = static_cast<float>(number("presence_penalty", 0.0, -2.0, 2.0));
    p.repetition_penalty = static_cast<float>(number("repetition_penalty", 1.0, 1e-3, 100.0));
    p.min_length = integer("min_tokens", 0, 0, p.max_new_tokens);
    p.end_id = end_id;
    if (chat) {
      if (j.contains("logprobs") && !j["logprobs"].is_null()) {
        if (!j["logprobs"].is_boolean()) throw HttpError(400, "'logprobs' must be a boolean");
        r.logprobs_on = j["logprobs"].get<bool>();
      }
      r.logprobs = static_cast<int>(integer("top_logprobs", 0, 0, 20));
      if (r.logprobs > 0 && !r.logprobs_on) throw HttpError(400, "'top_logprobs' needs 'logprobs': true");
    } else if (j.contains("logprobs") && !j["logprobs"].is_null()) {
      r.logprobs = static_cast<int>(integer("logprobs", 0, 0, 5));
      r.logprobs_on = true;
    }
    p.top_log_probs = r.logprobs;
    std::uint64_t seed = 0;
    if (j.contains("seed") && !j["seed"].is_null()) {
      if (!j["seed"].is_number_integer()) throw HttpError(400, "'seed' must be an integer");
      seed = static_cast<std::uint64_t>(j["seed"].get<std::int64_t>());
    } else {
      seed = std::random_device{}();
    }
    if (tok != nullptr)
      for (const auto& s : stop) {
        auto ids = tok->encode(s);
        if (!ids.empty()) p.stop_words.push_back(std::move(ids));
      }
    std::vector<infer::GenerationRequest> rs;
    std::vector<std::int64_t> plen;
    for (const auto& prompt : prompts)
      for (std::int64_t i = 0; i < n; ++i) {
        infer::GenerationRequest q{prompt, p};
        q.params.random_seed = seed + static_cast<std::uint64_t>(rs.size());
        rs.push_back(std::move(q));
        plen.push_back(static_cast<std::int64_t>(prompt.size()));
      }
    auto pending = submit_all(std::move(rs));
    for (std::size_t i = 0; i < pending.size(); ++i)
      r.choices.push_back(Choice{pending[i], plen[i], i / static_cast<std::size_t>(n), stop});
    return r;
  }

  static std::string chat_role(const std::string& role) {
    return role == "system" ? "System" : role == "user" ? "User" : "Assistant";
  }

  /// Generated text of `tokens` (the end token left out), cut at the first stop string; *stopped
  /// tells whether a stop string was found.
  std::string choice_text(const std::vector<std::int32_t>& tokens, const std::vector<std::string>& stop,
                          bool* stopped) const {
    std::vector<std::int32_t> t(tokens);
    if (end_id && !t.empty() && t.back() == *end_id) t.pop_back();
    std::string text = tok != nullptr ? infer::detokenize(*tok, t) : std::string();
    *stopped = false;
    std::size_t cut = std::string::npos;
    for (const auto& s : stop) cut = std::min(cut, text.find(s));
    if (cut != std::string::npos) {
      text.resize(cut);
      *stopped = true;
    }
    return text;
  }

  json logprobs_json(const infer::SequenceOutput& s, bool chat, int top) const {
    const auto token_text = [&](std::int32_t id) {
      return tok != nullptr ? infer::detokenize(*tok, std::vector<std::int32_t>{id}) : std::to_string(id);
    };
    if (chat) {
      json content = json::array();
      for (std::size_t i = 0; i < s.tokens.size(); ++i) {
        json e{{"token", token_text(s.tokens[i])}, {"logprob", s.token_log_probs[i]}, {"top_logprobs", json::array()}};
        if (top > 0)
          for (const auto& [id, lp] : s.top_log_probs[i])
            e["top_logprobs"].push_back(json{{"token", token_text(id)}, {"logprob", lp}});
        content.push_back(e);
      }
      return json{{"content", content}};
    }
    json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
    std::size_t off = 0;
    for (std::size_t i = 0; i < s.tokens.size(); ++i) {
      const std::string t = token_text(s.tokens[i]);
      tokens.push_back(t);
      lps.push_back(s.token_log_probs[i]);
      offsets.push_back(off);
      off += t.size();
      if (top > 0) {
        json m = json::object();
        for (const auto& [id, lp] : s.top_log_probs[i]) m[token_text(id)] = lp;
        tops.push_back(m);
      } else {
        tops.push_back(nullptr);
      }
    }
    return json{{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
  }

  json openai_response(OpenAiRequest& r) {
    json choices = json::array();
    std::int64_t prompt_tokens_sum = 0, completion = 0;
    for (std::size_t i = 0; i < r.choices.size(); ++i) {
      Choice& c = r.choices[i];
      wait(*c.pending);
      const auto& s = c.pending->result.beams.at(0);
      bool stopped = false;
      const std::string text = choice_text(s.tokens, c.stop, &stopped);
      const std::string reason = (stopped || s.finish_reason != "length") ? "stop" : "length";
      json ch{{"index", i}, {"finish_reason", reason}};
      if (r.chat) {
        ch["message"] = json{{"role", "assistant"}, {"content", text}};
        ch["logprobs"] = r.logprobs_on ? logprobs_json(s, true, r.logprobs) : json(nullptr);
      } else {
        ch["text"] = text;
        ch["logprobs"] = r.logprobs_on ? logprobs_json(s, false, r.logprobs) : json(nullptr);
      }
      choices.push_back(ch);
      completion += static_cast<std::int64_t>(s.tokens.size());
    }
    // Prompt tokens count once per prompt (its n choices share it), as the OpenAI API reports.
    for (std::size_t i = 0; i < r.choices.size(); ++i)
      if (i == 0 || r.choices[i].prompt_index != r.choices[i - 1].prompt_index) prompt_tokens_sum += r.choices[i].prompt_tokens;
    return json{{"id", r.id}, {"object", r.chat ? "chat.completion" : "text_completion"}, {"created", r.created},
                {"model", opt.model_name}, {"choices", choices},
                {"usage", {{"prompt_tokens", prompt_tokens_sum}, {"completion_tokens", completion},
                           {"total_tokens", prompt_tokens_sum + completion}}}};
  }

  /// Server-sent events of a streaming request, written through `sink` until every choice ends.
  void openai_stream(OpenAiRequest& r, httplib::DataSink& sink) {
    const auto send = [&](const json& chunk) {
      const std::string line = "data: " + chunk.dump() + "\n\n";
      return sink.write(line.data(), line.size());
    };
    const auto chunk = [&](std::size_t index, json delta_or_text, json finish) {
      json ch{{"index", index}, {"finish_reason", finish}};
      if (r.chat) ch["delta"] = std::move(delta_or_text);
      else {
        ch["text"] = std::move(delta_or_text);
        ch["logprobs"] = nullptr;
      }
      return json{{"id", r.id}, {"object", r.chat ? "chat.completion.chunk" : "text_completion"}, {"created", r.created},
                  {"model", opt.model_name}, {"choices", json::array({ch})}};
    };
    std::size_t longest_stop = 0;
    for (const auto& c : r.choices)
      for (const auto& s : c.stop) longest_stop = std::max(longest_stop, s.size());
    std::vector<std::size_t> shown(r.choices.size(), 0);
    std::vector<bool> finished(r.choices.size(), false);
    if (r.chat)
      for (std::size_t i = 0; i < r.choices.size(); ++i)
        if (!send(chunk(i, json{{"role", "assistant"}, {"content", ""}}, nullptr))) return;
    std::size_t left = r.choices.size();
    while (left > 0) {
      for (std::size_t i = 0; i < r.choices.size(); ++i) {
        if (finished[i]) continue;
        Choice& c = r.choices[i];
        std::vector<std::int32_t> tokens;
        bool done = false;
        {
          std::unique_lock<std::mutex> l(c.pending->m);
          c.pending->cv.wait_for(l, std::chrono::milliseconds(10));
          tokens = c.pending->done ? c.pending->result.beams.at(0).tokens : c.pending->tokens;
          done = c.pending->done;
        }
        bool stopped = false;
        std::string text = choice_text(tokens, c.stop, &stopped);
        std::size_t upto = text.size();
        // Hold back what could still grow into a stop string, and a partial UTF-8 character.
        if (!done && !stopped) upto = upto > longest_stop ? upto - longest_stop : 0;
        if (!done && !stopped)
          while (upto > shown[i] && (static_cast<unsigned char>(text[upto - 1]) & 0x80) != 0) --upto;
        if (upto > shown[i]) {
          const std::string delta = text.substr(shown[i], upto - shown[i]);
          if (!send(chunk(i, r.chat ? json{{"content", delta}} : json(delta), nullptr))) return;
          shown[i] = upto;
        }
        if (done || stopped) {
          const bool by_length = !stopped && c.pending->result.beams.at(0).finish_reason == "length";
          if (!send(chunk(i, r.chat ? json::object() : json(""), by_length ? "length" : "stop"))) return;
          finished[i] = true;
          --left;
        }
      }
    }
    const std::string done = "data: [DONE]\n\n";
    sink.write(done.data(), done.size());
    sink.done();
  }

  // ------------------------------------------------------------------------------------------
  // Metrics

  void count(const std::string& endpoint, int status, double seconds) {
    std::lock_guard<std::mutex> l(metrics_mu);
    ++requests[{endpoint, status}];
    latency_sum += seconds;
    std::size_t b = 0;
    while (b < std::size(kBuckets) && seconds > kBuckets[b]) ++b;
    ++latency_counts[b];
  }

  std::string metrics_text() {
    std::string out;
    out += "# HELP bignlp_requests_total HTTP requests by endpoint and status code.\n# TYPE bignlp_requests_total counter\n";
    std::int64_t total = 0;
    {
      std::lock_guard<std::mutex> l(metrics_mu);
      for (const auto& [k, v] : requests)
        out += fmt::format("bignlp_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}\n", k.first, k.second, v);
      out += "# HELP bignlp_request_duration_seconds Request latency.\n# TYPE bignlp_request_duration_seconds histogram\n";
      std::int64_t cum = 0;
      for (std::size_t b = 0; b < std::size(kBuckets); ++b) {
        cum += latency_counts[b];
        out += fmt::format("bignlp_request_duration_seconds_bucket{{le=\"{}\"}} {}\n", kBuckets[b], cum);
      }
      cum += latency_counts.back();
      total = cum;
      out += fmt::format("bignlp_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cum);
      out += fmt::format("bignlp_request_duration_seconds_sum {}\n", latency_sum);
      out += fmt::format("bignlp_request_duration_seconds_count {}\n", total);
    }
    const auto gauge = [&](const char* name, const char* help, const char* type, double v) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, v);
    };
    gauge("bignlp_prompt_tokens_total", "Prompt tokens run through the model (context phase).", "counter",
          static_cast<double>(prompt_tokens.load()));
    gauge("bignlp_generation_tokens_total", "Tokens run through the model in decode steps.", "counter",
          static_cast<double>(generated_tokens.load()));
    gauge("bignlp_tokens_per_second", "Tokens per second of the last engine step.", "gauge", last_step_tokens_per_s.load());
    gauge("bignlp_queue_depth", "Requests waiting for a KV-cache slot.", "gauge", static_cast<double>(engine.queued()));
    gauge("bignlp_running_requests", "Requests being decoded.", "gauge", static_cast<double>(running.load()));
    gauge("bignlp_kv_cache_slots_used", "KV-cache slots (sequences) in use.", "gauge", static_cast<double>(slots_used.load()));
    gauge("bignlp_kv_cache_slots_total", "KV-cache slots (max batch size).", "gauge",
          static_cast<double>(opt.engine.max_batch_size));
    gauge("bignlp_kv_cache_usage_ratio", "Fraction of KV-cache slots in use.", "gauge",
          static_cast<double>(slots_used.load()) / static_cast<double>(opt.engine.max_batch_size));
    gauge("bignlp_uptime_seconds", "Seconds since the server started.", "gauge",
          std::chrono::duration<double>(Clock::now() - started).count());
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Routes

  static std::string endpoint_of(const std::string& path) {
    if (path.rfind("/v2/models/", 0) == 0) return path.size() > 6 && path.ends_with("/infer") ? "/v2/infer" : "/v2/models";
    if (path.rfind("/v2", 0) == 0) return path.rfind("/v2/health", 0) == 0 ? "/v2/health" : "/v2";
    if (path == "/v1/completions" || path == "/v1/chat/completions" || path == "/v1/models" || path == "/metrics")
      return path;
    return "other";
  }

  void error_response(httplib::Response& res, const HttpError& e, bool openai) {
    res.status = e.status;
    json body = openai ? json{{"error", {{"message", e.what()}, {"type", e.code}, {"param", nullptr}, {"code", e.code}}}}
                       : json{{"error", e.what()}};
    res.set_content(body.dump(), "application/json");
  }

  template <typename F>
  void guarded(httplib::Response& res, bool openai, F&& f) {
    try {
      f();
    } catch (const HttpError& e) {
      error_response(res, e, openai);
    } catch (const std::exception& e) {
      error_response(res, HttpError(500, fmt::format("internal error: {}", e.what()), "internal_error"), openai);
    }
  }

  void routes() {
    http.set_payload_max_length(opt.max_body_bytes);
    http.new_task_queue = [n = opt.http_threads] { return new httplib::ThreadPool(static_cast<std::size_t>(n)); };
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      ++in_flight;
      start_time() = Clock::now();
      if (draining && req.path != "/v2/health/live" && req.path != "/metrics") {
        error_response(res, HttpError(503, "the server is shutting down", "server_shutting_down"),
                       req.path.rfind("/v1", 0) == 0);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const double s = std::chrono::duration<double>(Clock::now() - start_time()).count();
      count(endpoint_of(req.path), res.status, s);
      if (opt.access_log)
        std::cerr << json{{"time", now_unix()}, {"remote", req.remote_addr}, {"method", req.method}, {"path", req.path},
                          {"status", res.status}, {"seconds", s}, {"bytes_in", req.body.size()}}
                         .dump()
                  << "\n";
      --in_flight;
    });
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      const std::string msg = res.status == 404 ? fmt::format("no route {} {}", req.method, req.path)
                                                : fmt::format("HTTP {}", res.status);
      error_response(res, HttpError(res.status, msg, "not_found"), req.path.rfind("/v1", 0) == 0);
    });
    http.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    http.Get("/v2/health/ready", [this](const httplib::Request&, httplib::Response& res) {
      res.status = draining ? 503 : 200;
    });
    http.Get("/v2", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(json{{"name", "bignlp"}, {"version", "1"}, {"extensions", json::array()}}.dump(), "application/json");
    });
    http.Get(R"(/v2/models/([^/]+)(?:/versions/1)?)", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, false, [&] {
        check_model(req.matches[1]);
        res.set_content(model_metadata().dump(), "application/json");
      });
    });
    http.Get(R"(/v2/models/([^/]+)(?:/versions/1)?/ready)", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, false, [&] {
        check_model(req.matches[1]);
        res.status = 200;
      });
    });
    http.Post(R"(/v2/models/([^/]+)(?:/versions/1)?/infer)", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, false, [&] {
        check_model(req.matches[1]);
        if (req.has_header("Inference-Header-Content-Length"))
          throw HttpError(400, "the binary tensor extension is not supported; send JSON tensors");
        res.set_content(kserve_infer(req.body).dump(), "application/json");
      });
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(json{{"object", "list"},
                           {"data", json::array({json{{"id", opt.model_name}, {"object", "model"}, {"created", now_unix()},
                                                      {"owned_by", "bignlp"}}})}}
                          .dump(),
                      "application/json");
    });
    for (const bool chat : {false, true}) {
      http.Post(chat ? "/v1/chat/completions" : "/v1/completions",
                [this, chat](const httplib::Request& req, httplib::Response& res) {
                  guarded(res, true, [&] {
                    auto r = std::make_shared<OpenAiRequest>(openai_parse(req.body, chat));
                    if (!r->stream) {
                      res.set_content(openai_response(*r).dump(), "application/json");
                      return;
                    }
                    res.set_header("Cache-Control", "no-cache");
                    res.set_chunked_content_provider("text/event-stream", [this, r](std::size_t, httplib::DataSink& sink) {
                      openai_stream(*r, sink);
                      return true;
                    });
                  });
                });
    }
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_text(), "text/plain; version=0.0.4");
    });
  }

  static Clock::time_point& start_time() {
    thread_local Clock::time_point t;
    return t;
  }
};

Server::Server(model::Model& model, const data::Tokenizer* tokenizer, std::optional<std::int32_t> end_id,
               ServerOptions options)
    : impl_(std::make_unique<Impl>(model, tokenizer, end_id, std::move(options))) {
  impl_->routes();
  impl_->engine_thread = std::thread([this] { impl_->engine_loop(); });
}

Server::~Server() {
  impl_->http.stop();
  {
    std::lock_guard<std::mutex> l(impl_->shutdown_mu);
    if (impl_->shutdown_thread.joinable()) impl_->shutdown_thread.join();
  }
  {
    std::lock_guard<std::mutex> lk(impl_->wake_mu);
    impl_->stop_engine = true;
  }
  impl_->wake_cv.notify_all();
  impl_->engine_thread.join();
}

int Server::bind() {
  const auto& o = impl_->opt;
  if (o.port == 0) {
    const int port = impl_->http.bind_to_any_port(o.host);
    if (port < 0) throw IoError(fmt::format("cannot bind {} (any port)", o.host));
    return port;
  }
  if (!impl_->http.bind_to_port(o.host, o.port))
    throw IoError(fmt::format("cannot bind {}:{} (in use, or not an address of this machine)", o.host, o.port));
  return o.port;
}

void Server::serve() { impl_->http.listen_after_bind(); }

void Server::begin_shutdown() {
  std::lock_guard<std::mutex> l(impl_->shutdown_mu);
  if (impl_->draining.exchange(true)) return;
  impl_->shutdown_thread = std::thread([impl = impl_.get()] {
    // In-flight requests finish (the engine keeps stepping); then the listener stops.
    while (impl->in_flight.load() > 0 || impl->running.load() > 0 || impl->engine.queued() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    impl->http.stop();
  });
}

}  // namespace bignlp::serve

#include "bignlp/hp/grid.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace bignlp::hp {

std::string python_float_str(double x) {
  std::string s = fmt::format("{}", x);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::vector<int> valid_pipeline_sizes(Family family, int layers) {
  std::vector<int> out;
  if (is_encoder_decoder(family)) out.push_back(1);
  for (int d = 1; d <= layers; ++d) {
    if (layers % d == 0) out.push_back(is_encoder_decoder(family) ? 2 * d : d);
  }
  return out;
}

namespace {

// One row of a size table: TP list, PP (a range filtering the valid sizes, or a literal list),
// MBS list (empty: the default), TP*PP bounds.
struct Row {
  double bound;  // size <= bound
  std::vector<int> tp;
  int pp_lo, pp_hi;             // valid sizes in [lo, hi]; 0/0 with `pp_literal`
  std::vector<int> pp_literal;  // used when non-empty
  std::vector<int> mbs;
  int min_mp, max_mp;
};

Row lit(double b, std::vector<int> tp, std::vector<int> pp, std::vector<int> mbs, int lo, int hi) {
  return Row{b, std::move(tp), 0, 0, std::move(pp), std::move(mbs), lo, hi};
}
Row rng(double b, std::vector<int> tp, int pp_lo, int pp_hi, std::vector<int> mbs, int lo, int hi) {
  return Row{b, std::move(tp), pp_lo, pp_hi, {}, std::move(mbs), lo, hi};
}

struct Table {
  std::vector<int> default_mbs;
  std::vector<Row> rows;
};

const Table* table_for(Family family, int seq, int gpu_memory_gb) {
  const bool big = gpu_memory_gb == 80;
  if (family == Family::kGpt3) {
    if (big && seq == 2048) {
      static const Table t{{1, 2, 3, 4, 6, 8},
                           {lit(1, {1, 2}, {1}, {}, 1, 8), lit(4, {1, 2, 4}, {1}, {}, 1, 8),
                            lit(8, {1, 2, 4}, {1}, {}, 1, 8), lit(13, {1, 2, 4, 8}, {1}, {}, 1, 8),
                            rng(23, {1, 2, 4}, 1, 4, {1, 2, 4}, 4, 8), rng(45, {2, 4, 8}, 1, 4, {1, 2, 4}, 8, 32),
                            rng(95, {2, 4, 8}, 1, 8, {1, 2, 4, 8}, 8, 64),
                            rng(130, {2, 4, 8}, 1, 16, {1, 2, 4, 8}, 16, 128), rng(195, {8}, 4, 16, {1, 2, 4}, 32, 256),
                            rng(395, {8}, 8, 32, {1, 2, 4}, 64, 512), rng(790, {8}, 8, 100, {1, 2, 4}, 128, 1024),
                            rng(1100, {8}, 16, 130, {1, 2, 4}, 256, 2048)}};
      return &t;
    }
    if (big && seq == 4096) {
      static const Table t{{1, 2, 3, 4, 6, 8},
                           {lit(1, {1, 2, 4}, {1}, {1, 2, 4, 8}, 1, 8), lit(4, {1, 2, 4}, {1}, {1, 2, 4, 8}, 1, 8),
                            rng(8, {1, 2, 4}, 1, 2, {1, 2, 4}, 1, 8), rng(13, {1, 2, 4}, 1, 2, {1, 2, 4}, 1, 8),
                            rng(23, {4, 8}, 1, 4, {1, 2}, 4, 32), rng(45, {4, 8}, 4, 8, {1, 2}, 16, 64)}};
      return &t;
    }
    if (big && seq == 8192) {
      static const Table t{{1, 2, 3, 4, 6, 8},
                           {rng(1, {1, 2, 4}, 1, 2, {1, 2, 4}, 1, 8), rng(4, {1, 2, 4}, 1, 2, {1, 2, 4}, 1, 8),
                            rng(8, {1, 2, 4, 8}, 1, 2, {1, 2}, 1, 16), rng(13, {1, 2, 4, 8}, 1, 2, {1, 2}, 1, 16),
                            rng(23, {4, 8}, 1, 4, {1}, 4, 32), rng(45, {8}, 4, 8, {1}, 32, 64)}};
      return &t;
    }
    if (big) {
      static const Table t{{1, 2, 3, 4, 6, 8}, {}};
      return &t;
    }
    static const Table t{{1, 2, 4, 6, 8, 10, 12, 16},
                         {lit(1, {1, 2, 4}, {1}, {1, 2, 4, 8}, 1, 8), lit(4, {1, 2, 4, 8}, {1}, {1, 2, 4, 8}, 1, 8),
                          lit(8, {2, 4, 8}, {1, 2}, {1, 2, 4}, 2, 8), lit(13, {4, 8}, {1, 2, 4}, {1, 2, 4}, 4, 32),
                          rng(23, {2, 4, 8}, 1, 8, {}, 8, 64), rng(45, {4, 8}, 1, 12, {1, 2, 4}, 16, 128),
                          rng(95, {4, 8}, 1, 16, {1, 2, 4}, 16, 256), rng(130, {4, 8}, 2, 26, {1, 2}, 32, 512),
                          rng(195, {4, 8}, 2, 32, {1, 2}, 64, 1024), rng(395, {4, 8}, 4, 64, {1, 2}, 128, 2048),
                          rng(790, {4, 8}, 8, 128, {1, 2}, 256, 4096), rng(1100, {4, 8}, 8, 192, {1, 2}, 512, 8192)}};
    return &t;
  }
  if (is_encoder_decoder(family)) {
    if (big) {
      static const Table t{{1, 2, 4, 6, 8, 12, 16},
                           {lit(1, {1, 2}, {1}, {16, 32, 64, 128}, 1, 8),
                            lit(4, {1, 2, 4}, {1}, {4, 6, 8, 12, 16, 24, 32, 48}, 1, 8),
                            lit(8, {2, 4, 8}, {1}, {4, 6, 8, 12, 16, 24, 32}, 1, 8),
                            lit(14.5, {4, 8}, {1}, {2, 4, 6, 8, 12, 16, 24}, 1, 8),
                            rng(25.9, {4, 8}, 1, 2, {1, 2, 4, 6, 8}, 4, 16), rng(43, {4, 8}, 1, 4, {1, 2, 4, 6, 8}, 8, 32),
                            rng(85.5, {4, 8}, 2, 8, {1, 2, 4, 6, 8}, 16, 64), rng(165.5, {8}, 4, 16, {1, 2, 4, 6}, 32, 128),
                            rng(250, {8}, 4, 32, {1, 2, 4, 6, 8}, 64, 256)}};
      return &t;
    }
    static const Table t{{1, 2, 4, 6, 8, 12, 16},
                         {lit(1, {1, 2}, {1}, {16, 32, 64, 128}, 1, 8),
                          lit(4, {1, 2, 4}, {1}, {4, 8, 12, 16, 24, 32, 48}, 1, 8),
                          lit(8, {2, 4, 8}, {1}, {4, 6, 8, 12, 16, 24}, 1, 8),
                          rng(14.5, {4, 8}, 1, 2, {2, 4, 6, 8, 12, 16}, 4, 16),
                          rng(25.9, {4, 8}, 1, 8, {1, 2, 4, 6, 8}, 8, 32), rng(43, {4, 8}, 1, 8, {1, 2, 4, 6, 8}, 16, 32),
                          rng(85.5, {8}, 2, 8, {1, 2, 4, 6, 8}, 32, 64), rng(165.5, {8}, 4, 32, {1, 2, 4}, 64, 128),
                          rng(250, {8}, 8, 64, {1, 2, 4}, 128, 256)}};
    return &t;
  }
  if (big) {
    static const Table t{{1, 2, 3, 4, 6, 8},
                         {lit(1, {1, 2}, {1}, {}, 1, 8), lit(4, {1, 2, 4}, {1}, {}, 1, 8),
                          lit(8, {2, 4, 8}, {1}, {}, 2, 8), lit(13, {2, 4, 8}, {1}, {1, 2, 3, 4, 6}, 2, 8),
                          lit(25, {4, 8}, {1}, {1, 2, 3, 4}, 4, 8), lit(46.5, {4, 8}, {1, 2, 4}, {1, 2, 3, 4}, 4, 16),
                          lit(87.5, {4, 8}, {2, 4, 6, 8}, {1, 2, 3, 4}, 8, 32),
                          lit(165.5, {4, 8}, {4, 6, 8, 16}, {2, 4, 6, 8}, 16, 128),
                          lit(250.5, {8}, {4, 8, 16, 32}, {1, 2, 3, 4}, 32, 256)}};
    return &t;
  }
  static const Table t{{1, 2, 4, 6, 8},
                       {lit(1, {1, 2, 4}, {1}, {}, 1, 8), lit(4, {1, 2, 4, 8}, {1}, {}, 1, 8),
                        lit(8, {2, 4, 8}, {1}, {1, 2, 4}, 1, 8), lit(13, {2, 4, 8}, {1}, {1, 2, 4}, 1, 8),
                        lit(25, {2, 4, 8}, {1, 2}, {1, 2, 4}, 2, 16), lit(46.5, {4, 8}, {1, 2, 4, 8}, {1, 2, 3}, 8, 32),
                        lit(87.5, {4, 8}, {2, 4, 6, 8}, {1, 2, 3}, 16, 64), lit(165.5, {8}, {4, 6, 8, 16}, {1, 2}, 32, 256),
                        lit(250.5, {8}, {8, 16, 32}, {1, 2}, 64, 512)}};
  return &t;
}

}  // namespace

Grid calculate_tp_pp_mbs_grid(Family family, double size, int layers, int seq, int gpu_memory_gb,
                              const GridOverrides& o) {
  const Table* table = table_for(family, seq, gpu_memory_gb);
  Grid g;
  g.tp = {1, 2, 4, 8};
  g.pp = {1};
  g.mbs = table->default_mbs;
  g.min_model_parallel = 1;
  g.max_model_parallel = 8;
  for (const Row& r : table->rows) {
    if (size > r.bound) continue;
    g.tp = r.tp;
    if (!r.pp_literal.empty()) {
      g.pp = r.pp_literal;
    } else {
      g.pp.clear();
      for (int p : valid_pipeline_sizes(family, layers)) {
        if (p >= r.pp_lo && p <= r.pp_hi) g.pp.push_back(p);
      }
    }
    if (!r.mbs.empty()) g.mbs = r.mbs;
    g.min_model_parallel = r.min_mp;
    g.max_model_parallel = r.max_mp;
    break;
  }
  if (o.tensor_parallel_sizes) g.tp = *o.tensor_parallel_sizes;
  if (o.pipeline_parallel_sizes) g.pp = *o.pipeline_parallel_sizes;
  if (o.micro_batch_sizes) g.mbs = *o.micro_batch_sizes;
  if (o.min_model_parallel_size) g.min_model_parallel = *o.min_model_parallel_size;
  if (o.max_model_parallel_size) g.max_model_parallel = *o.max_model_parallel_size;
  return g;
}

namespace {

// GBS splits into micro batches over the data-parallel ranks. Integer arithmetic: the reference's
// float modulo lets a model larger than the cluster (fractional DP) through.
bool batch_divides(int gbs, int mbs, int gpus, int mp) {
  if (mp <= 0 || mbs <= 0 || gpus % mp != 0) return false;
  const long dp = gpus / mp;
  return gbs % (mbs * dp) == 0;
}

std::vector<int> range_inclusive(int last, int step) {
  std::vector<int> out;
  if (step < 1) step = 1;
  for (int v = 0; v <= last; v += step) out.push_back(v);
  return out;
}

}  // namespace

std::vector<std::pair<int, int>> valid_tp_pp(const SearchModel& m, const Grid& g, const Cluster& cluster) {
  const int gpus = cluster.num_nodes * cluster.gpus_per_node;
  const int mult = is_encoder_decoder(m.family) ? 2 : 1;
  std::vector<std::pair<int, int>> out;
  for (int tp : g.tp) {
    for (int pp : g.pp) {
      const int mp = tp * pp;
      if (m.num_attention_heads % tp != 0 || (mult * m.layers) % pp != 0) continue;
      if (mp < g.min_model_parallel || mp > g.max_model_parallel) continue;
      const bool any = std::any_of(g.mbs.begin(), g.mbs.end(),
                                   [&](int mbs) { return batch_divides(m.global_batch_size, mbs, gpus, mp); });
      if (any && std::find(out.begin(), out.end(), std::make_pair(tp, pp)) == out.end()) out.emplace_back(tp, pp);
    }
  }
  return out;
}

std::vector<Candidate> generate_candidates(const SearchModel& m, const Grid& g, const Cluster& cluster,
                                           const std::optional<std::vector<int>>& act_override, bool raw,
                                           bool partial_checkpointing) {
  const int gpus = cluster.num_nodes * cluster.gpus_per_node;
  const bool gpt_like = !is_encoder_decoder(m.family);
  const int mult = gpt_like ? 1 : 2;
  const int L = m.layers;
  std::vector<Candidate> out;
  for (const auto& [tp, pp] : valid_tp_pp(m, g, cluster)) {
    // Activation-checkpointing lists (§4.3).
    int act_multiple = 4 / pp;
    if (m.act_method == "block") {
      const double s = m.size_in_b;
      if (s >= 1 && s < 11.3) act_multiple = 8 / pp;
      else if (s >= 11.3 && s < 26) act_multiple = 16 / pp;
      else if (s >= 26 && s < 60) act_multiple = 16 / pp;
      else if (s >= 60) act_multiple = 32 / pp;
    }
    act_multiple = std::max(act_multiple, 1);
    std::optional<int> vp;
    int step_per_pipe = act_multiple;
    int max_micro_b = pp, micro_interval = 1, max_per_pipe = L;
    if (gpt_like && pp > 2) {
      vp = L / pp;
      act_multiple = 1;
      max_micro_b = pp * (*vp - 1) + 2 * (pp - 1) + 1;
      micro_interval = 8 * *vp;
      max_per_pipe = mult * L / pp / *vp + 1;
    }
    std::vector<std::optional<int>> acts, num_mbs, per_pipe;
    if (act_override) {
      for (int a : *act_override) acts.emplace_back(a);
    } else {
      for (int a : range_inclusive(vp ? mult * L / pp / *vp : mult * L / pp, act_multiple)) acts.emplace_back(a);
    }
    if (pp > 1 && gpt_like && partial_checkpointing) {
      auto n = range_inclusive(max_micro_b, micro_interval);
      n[0] = 1;
      for (int v : n) num_mbs.emplace_back(v);
      for (int v : range_inclusive(max_per_pipe, step_per_pipe)) per_pipe.emplace_back(v);
    } else {
      num_mbs = {std::nullopt};
      per_pipe = {std::nullopt};
    }
    for (int mbs : g.mbs) {
      // The per-candidate re-check (modify_cfg): the batch, whole heads, whole layers per stage.
      if (!batch_divides(m.global_batch_size, mbs, gpus, tp * pp)) continue;
      if (m.num_attention_heads % tp != 0 || L % pp != 0) continue;
      for (const auto& a : acts) {
        for (const auto& n : num_mbs) {
          for (const auto& app : per_pipe) {
            Candidate c{tp, pp, mbs, a, n, app, vp};
            if (!raw && std::find(out.begin(), out.end(), c) != out.end()) continue;
            out.push_back(c);
          }
        }
      }
    }
  }
  // Launch order: bucketed by act value, lowest first (stable within a bucket).
  std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
    return a.act_ckpt_layers.value_or(-1) < b.act_ckpt_layers.value_or(-1);
  });
  return out;
}

std::string candidate_name(const SearchModel& m, int nodes, const Candidate& c) {
  auto v = [](const std::optional<int>& x) { return x ? fmt::format("{}", *x) : std::string("None"); };
  return fmt::format("{}_{}b_{}nodes_tp_{}_pp_{}_mbs_{}_act_ckpt_{}_num_mbs_act_{}_act_per_pipe_{}", to_string(m.family),
                     m.size_label, nodes, c.tp, c.pp, c.mbs, v(c.act_ckpt_layers),
                     v(c.num_micro_batches_with_partial_activation_checkpoints),
                     v(c.activations_checkpoint_layers_per_pipeline));
}

}  // namespace bignlp::hp

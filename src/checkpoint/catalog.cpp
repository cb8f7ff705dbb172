#include "bignlp/checkpoint/catalog.h"

#include <fmt/format.h>

#include <algorithm>

#include "bignlp/checkpoint/metadata.h"
#include "bignlp/core/error.h"
#include "bignlp/core/strings.h"

namespace fs = std::filesystem;

namespace bignlp::checkpoint {

std::vector<fs::path> list_checkpoints(const fs::path& checkpoints_dir) {
  std::vector<std::pair<std::pair<std::int64_t, int>, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(checkpoints_dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // temporary (possibly half-written) directories
    try {
      const CheckpointState s = read_checkpoint_metadata(entry.path());
      found.push_back({{s.global_step, ends_with(name, "-last") ? 1 : 0}, entry.path()});
    } catch (const Error&) {
      continue;  // incomplete or foreign: never picked up
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [key, path] : found) out.push_back(path);
  return out;
}

std::optional<fs::path> find_latest_checkpoint(const fs::path& checkpoints_dir) {
  auto all = list_checkpoints(checkpoints_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::string render_checkpoint_name(const std::string& pattern, std::int64_t step, std::int64_t consumed_samples,
                                   std::optional<double> val_loss, const std::string& monitor) {
  std::string out;
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] != '{') {
      out.push_back(pattern[i++]);
      continue;
    }
    const std::size_t close = pattern.find('}', i);
    if (close == std::string::npos)
      throw ConfigError(fmt::format("exp_manager.checkpoint_callback_params.filename: unbalanced '{{' in '{}'", pattern));
    const std::string field = pattern.substr(i + 1, close - i - 1);
    const std::size_t colon = field.find(':');
    const std::string name = field.substr(0, colon);
    const std::string spec = colon == std::string::npos ? "" : field.substr(colon + 1);
    double value = 0.0;
    bool integral = false;
    if (name == "step") {
      value = static_cast<double>(step);
      integral = true;
    } else if (name == "consumed_samples") {
      value = static_cast<double>(consumed_samples);
    } else if (name == "val_loss" || name == monitor) {
      value = val_loss.value_or(0.0);
    } else if (name == "epoch") {
      integral = true;
    } else {
      throw ConfigError(fmt::format(
          "exp_manager.checkpoint_callback_params.filename: unknown field '{{{}}}' in '{}' (known: step, "
          "consumed_samples, val_loss, epoch{})",
          name, pattern, monitor == "val_loss" ? "" : ", " + monitor));
    }
    std::string text;
    if (!spec.empty())
      text = fmt::format(fmt::runtime("{:" + spec + "}"), value);
    else if (integral)
      text = fmt::format("{}", static_cast<std::int64_t>(value));
    else
      text = fmt::format("{:.1f}", value);  // Python's str() of a float like 800.0
    out += name + "=" + text;
    i = close + 1;
  }
  return out;
}

}  // namespace bignlp::checkpoint

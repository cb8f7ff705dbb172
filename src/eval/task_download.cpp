#include "bignlp/eval/task_download.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "bignlp/config/view.h"
#include "bignlp/config/yaml.h"
#include "bignlp/core/error.h"
#include "bignlp/data/download.h"
#include "bignlp/eval/tasks.h"

namespace bignlp::eval {
namespace fs = std::filesystem;

namespace {

// Runs argv (no shell); throws IoError naming the command when it fails.
void run_tool(const std::vector<std::string>& argv, const fs::path& cwd) {
  const pid_t pid = fork();
  if (pid < 0) throw IoError("fork failed");
  if (pid == 0) {
    if (chdir(cwd.c_str()) != 0) _exit(126);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw IoError(fmt::format("'{}' failed in {} (exit {}; 127: the tool is not installed)", fmt::join(argv, " "),
                              cwd.string(), WIFEXITED(status) ? WEXITSTATUS(status) : -1));
}

}  // namespace

fs::path default_task_manifest(const std::string& argv0) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec || exe.empty()) exe = fs::absolute(argv0, ec);
  for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    const fs::path m = dir / "conf" / "eval_task_files.yaml";
    if (fs::exists(m, ec)) return m;
  }
  throw ConfigError("no conf/eval_task_files.yaml above this program; give --manifest");
}

void download_tasks(const fs::path& manifest, const std::vector<std::string>& tasks, const fs::path& data_dir,
                    const Logger& log) {
  const config::ConfigNode root = config::load_yaml_file(manifest);
  const config::ConfigView cfg(root);
  fs::create_directories(data_dir);
  for (const auto& task : tasks) {
    if (!cfg.has(task)) throw ConfigError(fmt::format("{}: no entry for task '{}'", manifest.string(), task));
    const auto entries = cfg.get<std::vector<std::map<std::string, std::string>>>(task);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const auto& e = entries[i];
      auto get = [&](const char* key) -> std::string {
        auto it = e.find(key);
        if (it == e.end())
          throw ConfigError(fmt::format("{}: {}.{}.{} is missing", manifest.string(), task, i, key));
        return it->second;
      };
      const std::string url = get("url"), file = get("file"), sha = get("sha256"), extract = get("extract");
      const fs::path dest = data_dir / file;
      fs::create_directories(dest.parent_path());
      data::DownloadOptions o;
      if (auto it = e.find("size"); it != e.end() && !it->second.empty()) o.expected_size = std::stoull(it->second);
      log.info("{}: {} -> {}", task, url, dest.string());
      data::download_file(url, dest, o, log);
      const std::string got = sha256_file(dest);
      if (!sha.empty() && got != sha) {
        std::error_code ec;
        fs::remove(dest, ec);  // not left where the evaluation would read it
        throw DataError(fmt::format("{}: sha256 {} differs from the {} pinned in {} (a changed or corrupt file; it was "
                                    "removed)",
                                    dest.string(), got, sha, manifest.string()));
      }
      log.info("{}: sha256 {} ({})", dest.string(), got, sha.empty() ? "not pinned in the table" : "matches");
      if (extract == "zip") {
        run_tool({"unzip", "-o", "-q", dest.string()}, data_dir);
      } else if (extract == "tar.gz") {
        run_tool({"tar", "-xzf", dest.string()}, data_dir);
      } else if (extract != "none") {
        throw ConfigError(fmt::format("{}: {}.{}.extract is none, zip or tar.gz, got '{}'", manifest.string(), task, i,
                                      extract));
      }
    }
    for (const auto& f : task_files(task))
      if (!fs::exists(data_dir / f))
        throw DataError(fmt::format("{}: after the download {} is missing (the published layout changed?)", task,
                                    (data_dir / f).string()));
  }
}

}  // namespace bignlp::eval

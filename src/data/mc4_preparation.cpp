#include "bignlp/data/mc4_preparation.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "bignlp/core/strings.h"
#include "bignlp/data/indexed_dataset.h"
#include "bignlp/data/pile_preparation.h"
#include "bignlp/data/preprocess.h"
#include "bignlp/data/sentencepiece_tokenizer.h"
#include "bignlp/data/worker_position.h"

namespace fs = std::filesystem;

namespace bignlp::data {
namespace {

constexpr std::string_view kLfsPointer = "version https://git-lfs.github.com/spec/v1";

// Size of a dataset file: the "size" line of a Git LFS pointer, else the file's own size.
std::uint64_t dataset_file_size(const fs::path& p, bool* is_pointer) {
  std::error_code ec;
  const auto on_disk = static_cast<std::uint64_t>(fs::file_size(p, ec));
  *is_pointer = false;
  if (ec) return 0;
  if (on_disk < 1024) {
    const std::string text = read_file(p);
    if (text.starts_with(kLfsPointer)) {
      const auto pos = text.find("\nsize ");
      if (pos != std::string::npos) {
        *is_pointer = true;
        return std::strtoull(text.c_str() + pos + 6, nullptr, 10);
      }
    }
  }
  return on_disk;
}

// Runs argv with extra environment entries; throws IoError with the command on failure.
void run_process(const std::vector<std::string>& argv, const std::vector<std::string>& env_extra) {
  const pid_t pid = ::fork();
  if (pid < 0) throw IoError(fmt::format("cannot start '{}': {}", argv[0], std::strerror(errno)));
  if (pid == 0) {
    for (const auto& e : env_extra) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw IoError(fmt::format("'{}' failed (exit status {}){}", join(argv, " "), WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                              WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ": the program was not found" : ""));
  }
}

bool is_all(const std::vector<std::string>& langs) { return langs.size() == 1 && langs[0] == "all"; }

}  // namespace

std::vector<std::string> read_worker_mapping(const fs::path& mapping, int index) {
  const std::string text = read_file(mapping);
  const std::vector<std::string> lines = split(text, '\n');
  if (index < 0 || static_cast<std::size_t>(index) >= lines.size()) {
    throw DataError(fmt::format("'{}' has no line for worker {} ({} lines); rerun the step that writes it",
                                mapping.string(), index, lines.empty() ? 0 : lines.size() - 1));
  }
  std::vector<std::string> out;
  for (const auto& e : split(lines[static_cast<std::size_t>(index)], ',')) {
    if (!trim(e).empty()) out.emplace_back(trim(e));
  }
  return out;
}

void write_worker_mapping(const fs::path& mapping, const std::vector<std::vector<std::string>>& lines) {
  std::string text;
  for (const auto& l : lines) text += join(l, ",") + "\n";
  write_file_atomic(mapping, text);
}

std::vector<Mc4File> mc4_list_files(const Mc4Config& c) {
  std::error_code ec;
  if (!fs::is_directory(c.git_lfs_dir, ec)) {
    throw IoError(fmt::format("'{}' is not a checkout of the C4 repository; run the prepare step", c.git_lfs_dir.string()));
  }
  std::vector<Mc4File> files;
  std::set<std::string> found_langs;
  const bool all = is_all(c.languages);
  const std::set<std::string> wanted(c.languages.begin(), c.languages.end());
  const fs::path multi = c.git_lfs_dir / "multilingual";
  if (fs::is_directory(multi, ec)) {
    for (const auto& e : fs::directory_iterator(multi)) {
      const std::string name = e.path().filename().string();
      // c4-<lang>.tfrecord-00000-of-01024.json.gz (validation files are c4-<lang>-validation.*)
      if (!name.starts_with("c4-") || !ends_with(name, ".json.gz")) continue;
      const auto dot = name.find(".tfrecord-");
      if (dot == std::string::npos) continue;
      const std::string lang = name.substr(3, dot - 3);
      if (lang.find('-') != std::string::npos) continue;
      if (lang == "en" && c.use_cleaned_english) continue;
      if (!all && !wanted.contains(lang)) continue;
      bool pointer = false;
      files.push_back({fs::relative(e.path(), c.git_lfs_dir).generic_string(), lang, dataset_file_size(e.path(), &pointer)});
      found_langs.insert(lang);
    }
  }
  if (c.use_cleaned_english && (all || wanted.contains("en"))) {
    const fs::path en = c.git_lfs_dir / "en";
    if (fs::is_directory(en, ec)) {
      for (const auto& e : fs::directory_iterator(en)) {
        const std::string name = e.path().filename().string();
        if (!name.starts_with("c4-train.") || !ends_with(name, ".json.gz")) continue;
        bool pointer = false;
        files.push_back({fs::relative(e.path(), c.git_lfs_dir).generic_string(), "en", dataset_file_size(e.path(), &pointer)});
        found_langs.insert("en");
      }
    }
  }
  if (!all) {
    std::vector<std::string> missing;
    for (const auto& l : c.languages) {
      if (!found_langs.contains(l)) missing.push_back(l);
    }
    if (!missing.empty()) {
      throw ConfigError(fmt::format("languages: no files for {} in '{}'", join(missing, ", "), c.git_lfs_dir.string()));
    }
  }
  std::sort(files.begin(), files.end(), [](const Mc4File& a, const Mc4File& b) { return a.path < b.path; });
  return files;
}

void mc4_prepare(const Mc4Config& c, const Logger& log) {
  std::error_code ec;
  if (!fs::is_directory(c.git_lfs_dir, ec)) {
    log.info("cloning {} into '{}' (LFS pointers only)", c.c4_repo_url, c.git_lfs_dir.string());
    fs::create_directories(c.git_lfs_dir.parent_path(), ec);
    run_process({"git", "clone", "--depth", "1", c.c4_repo_url, c.git_lfs_dir.string()}, {"GIT_LFS_SKIP_SMUDGE=1"});
  }
  const auto files = mc4_list_files(c);
  std::vector<std::uint64_t> sizes;
  for (const auto& f : files) sizes.push_back(f.bytes);
  const auto bins = balance_by_size(sizes, c.node_array_size);
  std::vector<std::vector<std::string>> lines;
  std::uint64_t total = 0;
  for (const auto& bin : bins) {
    std::vector<std::string> l;
    for (std::size_t i : bin) l.push_back(fmt::format("{}:{}", files[i].path, files[i].bytes));
    lines.push_back(std::move(l));
  }
  for (auto s : sizes) total += s;
  write_worker_mapping(c.download_worker_mapping, lines);
  std::set<std::string> langs;
  for (const auto& f : files) langs.insert(f.language);
  log.info("{} files of {} languages ({}) over {} download workers -> '{}'", files.size(), langs.size(), format_bytes(total),
           c.node_array_size, c.download_worker_mapping.string());
  if (!c.download_tokenizer_url.empty() || !fs::exists(c.tokenizer_model, ec)) {
    fetch_tokenizer_file(c.download_tokenizer_url, c.tokenizer_model, c.download, log);
  }
  if (!c.download_vocab_url.empty()) fetch_tokenizer_file(c.download_vocab_url, c.vocab_save_dir / "vocab.txt", c.download, log);
}

void mc4_download(const Mc4Config& c, int worker, const Logger& log) {
  const auto entries = read_worker_mapping(c.download_worker_mapping, worker);
  std::string base = c.c4_download_url;
  if (!base.ends_with('/')) base += '/';
  log.info("download worker {}: {} files", worker, entries.size());
  for (const auto& e : entries) {
    const auto colon = e.rfind(':');
    if (colon == std::string::npos) {
      throw DataError(fmt::format("'{}': bad entry '{}' (expected path:bytes)", c.download_worker_mapping.string(), e));
    }
    const std::string rel = e.substr(0, colon);
    DownloadOptions o = c.download;
    o.expected_size = std::strtoull(e.c_str() + colon + 1, nullptr, 10);
    download_file(base + rel, c.git_lfs_dir / rel, o, log);
  }
}

void mc4_setup_preprocess(const Mc4Config& c, const Logger& log) {
  const auto files = mc4_list_files(c);
  std::vector<std::string> not_downloaded;
  std::map<std::string, std::vector<const Mc4File*>> by_lang;
  for (const auto& f : files) {
    bool pointer = false;
    dataset_file_size(c.git_lfs_dir / f.path, &pointer);
    if (pointer) not_downloaded.push_back(f.path);
    by_lang[f.language].push_back(&f);
  }
  if (!not_downloaded.empty()) {
    throw DataError(fmt::format("{} files are not downloaded yet (still Git LFS pointers), e.g. '{}'; run the download step",
                                not_downloaded.size(), (c.git_lfs_dir / not_downloaded.front()).string()));
  }
  const auto max_bytes = static_cast<std::uint64_t>(c.max_split_size_gb * 1024.0 * 1024.0 * 1024.0);
  std::vector<std::string> split_dirs;
  std::vector<std::uint64_t> split_sizes;
  std::error_code ec;
  for (const auto& [lang, lang_files] : by_lang) {
    const fs::path lang_dir = c.softlinks_dir / lang;
    fs::remove_all(lang_dir, ec);
    std::vector<std::vector<const Mc4File*>> splits(1);
    std::uint64_t current = 0;
    for (const Mc4File* f : lang_files) {
      if (!splits.back().empty() && current + f->bytes > max_bytes) {
        splits.emplace_back();
        current = 0;
      }
      splits.back().push_back(f);
      current += f->bytes;
    }
    for (std::size_t k = 0; k < splits.size(); ++k) {
      const fs::path dir = lang_dir / fmt::format("{}_{:03d}", lang, k);
      fs::create_directories(dir, ec);
      if (ec) throw IoError(fmt::format("cannot create '{}': {}", dir.string(), ec.message()));
      std::uint64_t bytes = 0;
      for (const Mc4File* f : splits[k]) {
        const fs::path target = fs::absolute(c.git_lfs_dir / f->path);
        fs::create_symlink(target, dir / target.filename(), ec);
        if (ec) throw IoError(fmt::format("cannot link '{}' into '{}': {}", target.string(), dir.string(), ec.message()));
        bytes += f->bytes;
      }
      split_dirs.push_back(dir.string());
      split_sizes.push_back(bytes);
    }
  }
  const int slots = c.node_array_size * c.workers_per_node;
  const auto bins = balance_by_size(split_sizes, slots);
  std::vector<std::vector<std::string>> lines;
  for (const auto& bin : bins) {
    std::vector<std::string> l;
    for (std::size_t i : bin) l.push_back(split_dirs[i]);
    lines.push_back(std::move(l));
  }
  write_worker_mapping(c.preprocess_worker_mapping, lines);
  log.info("{} splits of {} languages over {} preprocessing slots -> '{}'", split_dirs.size(), by_lang.size(), slots,
           c.preprocess_worker_mapping.string());
}

void mc4_preprocess(const Mc4Config& c, int slot, const Logger& log) {
  const auto splits = read_worker_mapping(c.preprocess_worker_mapping, slot);
  if (splits.empty()) {
    log.info("preprocessing slot {}: nothing to do", slot);
    return;
  }
  const SentencePieceTokenizer tokenizer(c.tokenizer_model);
  for (const auto& split_dir : splits) {
    const std::string name = fs::path(split_dir).filename().string();  // <lang>_<NNN>
    const fs::path out = c.preprocessed_dir / (name + "_text_document");
    if (indexed_dataset_exists(out)) {
      log.info("'{}' already exists", out.string());
      continue;
    }
    PreprocessOptions o;
    o.inputs = {split_dir};
    o.preproc_folder = true;
    o.files_filter = "**/*.json*";
    o.output_prefix = c.preprocessed_dir / name;
    o.workers = std::max(1, c.workers);
    o.progress = c.progress;
    log.info("slot {}: tokenizing split '{}'", slot, split_dir);
    const auto stats = preprocess(o, tokenizer, log);
    log.info("slot {}: wrote '{}' ({} documents, {} tokens)", slot, out.string(), stats.documents, stats.tokens);
    if (c.rm_downloaded) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(split_dir)) {
        const fs::path target = fs::read_symlink(e.path(), ec);
        if (!ec) fs::remove(target, ec);
      }
    }
  }
}

}  // namespace bignlp::data

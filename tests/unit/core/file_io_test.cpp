#include "bignlp/core/file_io.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "bignlp/core/error.h"

namespace fs = std::filesystem;

namespace bignlp {
namespace {

TEST(FileIoTest, AtomicWriteCreatesParentsAndLeavesNoTemp) {
  TempDir dir;
  const fs::path target = dir.path() / "a" / "b" / "out.txt";
  write_file_atomic(target, "hello\n");
  EXPECT_EQ(read_file(target), "hello\n");
  write_file_atomic(target, "replaced", 0755);
  EXPECT_EQ(read_file(target), "replaced");
  EXPECT_TRUE((fs::status(target).permissions() & fs::perms::owner_exec) != fs::perms::none);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(target.parent_path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(FileIoTest, ErrorsNameThePath) {
  try {
    read_file("/nonexistent/dir/file.yaml");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("'/nonexistent/dir/file.yaml'"), std::string::npos);
    EXPECT_EQ(e.exit_code(), static_cast<int>(ExitCode::kIo));
  }
}

TEST(FileIoTest, WriteIntoUnwritableLocationFailsCleanly) {
  TempDir dir;
  const fs::path blocker = dir.path() / "file";
  write_file_atomic(blocker, "x");
  // A regular file where a directory is needed.
  EXPECT_THROW(write_file_atomic(blocker / "sub" / "y.txt", "y"), IoError);
}

TEST(FileIoTest, DirectoryRename) {
  TempDir dir;
  const fs::path tmp = dir.path() / "ckpt.tmp";
  const fs::path final_dir = dir.path() / "ckpt";
  fs::create_directories(tmp);
  write_file_atomic(tmp / "meta.json", "{}");
  rename_directory_atomic(tmp, final_dir);
  EXPECT_TRUE(fs::exists(final_dir / "meta.json"));
  EXPECT_FALSE(fs::exists(tmp));
  fs::create_directories(tmp);
  EXPECT_THROW(rename_directory_atomic(tmp, final_dir), IoError);
  rename_directory_atomic(tmp, final_dir, /*replace=*/true);
  EXPECT_FALSE(fs::exists(final_dir / "meta.json"));
  // Nothing is left beside it: the replaced directory went through a hidden name and is gone.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"ckpt"});
}

TEST(FileIoTest, DirectoryRemoval) {
  TempDir dir;
  const fs::path d = dir.path() / "ckpt";
  fs::create_directories(d / "shard");
  write_file_atomic(d / "shard" / "weights", "x");
  write_file_atomic(d / "meta.json", "{}");
  remove_directory_atomic(d);
  EXPECT_TRUE(fs::is_empty(dir.path()));
  EXPECT_NO_THROW(remove_directory_atomic(d));  // already gone
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(StagedDirectoryTest, CommitMovesTheStagingDirectoryIntoPlace) {
  TempDir dir;
  const fs::path target = dir.path() / "sub" / "ckpt";
  {
    StagedDirectory stage(target);
    EXPECT_EQ(stage.path().parent_path(), target.parent_path());
    EXPECT_EQ(stage.path().filename().string().rfind(".tmp-ckpt-", 0), 0u) << stage.path();
    write_file_atomic(stage.path() / "meta.json", "1");
    EXPECT_FALSE(fs::exists(target));
    stage.commit();
    EXPECT_TRUE(stage.committed());
  }
  EXPECT_EQ(read_file(target / "meta.json"), "1");
  EXPECT_EQ(names_in(target.parent_path()), std::vector<std::string>{"ckpt"});
  // Replacing: the old contents are gone, nothing hidden is left beside it.
  {
    StagedDirectory stage(target);
    write_file_atomic(stage.path() / "other", "2");
    stage.commit();
  }
  EXPECT_FALSE(fs::exists(target / "meta.json"));
  EXPECT_EQ(read_file(target / "other"), "2");
  EXPECT_EQ(names_in(target.parent_path()), std::vector<std::string>{"ckpt"});
  StagedDirectory refused(target);
  EXPECT_THROW(refused.commit(/*replace=*/false), IoError);
}

TEST(StagedDirectoryTest, WithoutCommitNothingIsLeft) {
  TempDir dir;
  const fs::path target = dir.path() / "ckpt";
  try {
    StagedDirectory stage(target);
    write_file_atomic(stage.path() / "half", "x");
    throw IoError("disk full");
  } catch (const IoError&) {
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(StagedDirectoryTest, ASharedSuffixGivesEveryParticipantTheSamePathAndClearsALeftover) {
  TempDir dir;
  const fs::path target = dir.path() / "ckpt";
  const fs::path expected = dir.path() / ".tmp-ckpt-step7";
  EXPECT_EQ(StagedDirectory::staging_path(target, "step7"), expected);
  fs::create_directories(expected / "stale");  // an interrupted earlier attempt
  StagedDirectory stage(target, "step7");
  EXPECT_EQ(stage.path(), expected);
  EXPECT_TRUE(fs::is_empty(expected));
  write_file_atomic(StagedDirectory::staging_path(target, "step7") / "shard", "s");  // another rank
  stage.commit();
  EXPECT_EQ(read_file(target / "shard"), "s");
}

}  // namespace
}  // namespace bignlp

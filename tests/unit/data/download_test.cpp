#include "bignlp/data/download.h"

#include <gtest/gtest.h>

#include "bignlp/core/error.h"
#include "bignlp/core/file_io.h"
#include "test_support.h"

namespace bignlp::data {
namespace {

namespace fs = std::filesystem;

class DownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::python_has("http.server")) GTEST_SKIP() << "/usr/bin/python3 is needed for the test HTTP server";
    content_.reserve(3 << 20);
    for (int i = 0; content_.size() < (3u << 20); ++i) content_ += "line " + std::to_string(i) + " of the file\n";
    write_file_atomic(root_.path() / "big.bin", content_);
    server_ = std::make_unique<testing::TestHttpServer>(root_.path());
    ASSERT_TRUE(server_->ok()) << "the test HTTP server did not start";
    o_.initial_backoff_seconds = 0.05;
    o_.max_backoff_seconds = 0.2;
  }
  std::string content_;
  TempDir root_;
  TempDir out_;
  std::unique_ptr<testing::TestHttpServer> server_;
  DownloadOptions o_;
  Logger log_ = Logger::capturing();
};

TEST_F(DownloadTest, PlainDownloadThenSkipWhenPresent) {
  const auto r = download_file(server_->url("ok") + "big.bin", out_.path() / "a" / "big.bin", o_, log_);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.bytes, content_.size());
  EXPECT_EQ(read_file(out_.path() / "a" / "big.bin"), content_);
  EXPECT_FALSE(fs::exists(out_.path() / "a" / "big.bin.part"));
  const auto again = download_file(server_->url("ok") + "big.bin", out_.path() / "a" / "big.bin", o_, log_);
  EXPECT_TRUE(again.skipped);
  EXPECT_EQ(again.attempts, 0);
}

TEST_F(DownloadTest, DroppedConnectionIsResumed) {
  const auto r = download_file(server_->url("drop") + "big.bin", out_.path() / "big.bin", o_, log_);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(read_file(out_.path() / "big.bin"), content_);
  EXPECT_NE(log_.captured().find("attempt 2 of 6"), std::string::npos) << log_.captured();
}

TEST_F(DownloadTest, ServerErrorsAreRetried) {
  const auto r = download_file(server_->url("flaky") + "big.bin", out_.path() / "big.bin", o_, log_);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(read_file(out_.path() / "big.bin"), content_);
  EXPECT_NE(log_.captured().find("HTTP 503"), std::string::npos) << log_.captured();
}

TEST_F(DownloadTest, ServerIgnoringRangeRestartsFromZero) {
  const auto r = download_file(server_->url("norange") + "big.bin", out_.path() / "big.bin", o_, log_);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(read_file(out_.path() / "big.bin"), content_);
}

TEST_F(DownloadTest, NotFoundFailsAtOnceNamingUrlAndFile) {
  try {
    download_file(server_->url("missing") + "big.bin", out_.path() / "big.bin", o_, log_);
    FAIL() << "expected an error";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("HTTP 404"), std::string::npos) << msg;
    EXPECT_NE(msg.find("/missing/big.bin"), std::string::npos) << msg;
    EXPECT_NE(msg.find((out_.path() / "big.bin").string()), std::string::npos) << msg;
  }
  EXPECT_TRUE(fs::is_empty(out_.path()));  // neither the file nor an empty .part
}

TEST_F(DownloadTest, TruncatedTransfersAreDetected) {
  // Every response stops at half the announced length: never complete, never renamed.
  o_.max_attempts = 3;
  try {
    download_file(server_->url("lying") + "big.bin", out_.path() / "big.bin", o_, log_);
    FAIL() << "expected an error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("after 3 attempts"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out_.path() / "big.bin"));
  // A server file shorter than expected is caught by the size check.
  o_.expected_size = content_.size();
  try {
    download_file(server_->url("short") + "big.bin", out_.path() / "short.bin", o_, log_);
    FAIL() << "expected an error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("were expected"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out_.path() / "short.bin"));
}

TEST_F(DownloadTest, ExistingPartialFileIsContinued) {
  write_file_atomic(out_.path() / "big.bin.part", content_.substr(0, 1000000));
  const auto r = download_file(server_->url("ok") + "big.bin", out_.path() / "big.bin", o_, log_);
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(read_file(out_.path() / "big.bin"), content_);
  // A complete .part left behind (crash before the rename) is finished without new data.
  write_file_atomic(out_.path() / "c.bin.part", content_);
  EXPECT_EQ(download_file(server_->url("ok") + "big.bin", out_.path() / "c.bin", o_, log_).bytes, content_.size());
  EXPECT_EQ(read_file(out_.path() / "c.bin"), content_);
}

TEST(Download, FileUrls) {
  TempDir dir;
  write_file_atomic(dir.path() / "src.txt", "hello file url\n");
  const Logger log = Logger::capturing();
  DownloadOptions o;
  download_file("file://" + (dir.path() / "src.txt").string(), dir.path() / "dst.txt", o, log);
  EXPECT_EQ(read_file(dir.path() / "dst.txt"), "hello file url\n");
  o.max_attempts = 1;
  EXPECT_THROW(download_file("file://" + (dir.path() / "nope.txt").string(), dir.path() / "x.txt", o, log), IoError);
}

}  // namespace
}  // namespace bignlp::data

// The launch tests write many small files through write_file_atomic (fsync per file); on a
// tmpfs that costs nothing, on some disks tens of milliseconds per file. Scratch folders go to
// /dev/shm when it is writable and TMPDIR is not set by the caller.
#include <unistd.h>

#include <cstdlib>

namespace {

const bool kScratchOnTmpfs = [] {
  if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK) == 0) ::setenv("TMPDIR", "/dev/shm", 0);
  return true;
}();

}  // namespace

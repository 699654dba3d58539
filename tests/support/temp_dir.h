// TempDir: a fresh directory under $TMPDIR (or /tmp) that is removed with everything in it when
// the TempDir is destroyed. Tests and server fixtures use one each so that nothing they write
// outlives them or collides with a concurrently running test.
//
// Thread safety: none needed; a TempDir is owned by one test or fixture. Move-only.
#pragma once

#include <filesystem>
#include <string_view>

namespace keel::testing {

class TempDir {
 public:
  // Creates <tmp>/<prefix>-XXXXXX (mode 0700). Throws std::system_error when that fails.
  explicit TempDir(std::string_view prefix = "keel-test");
  ~TempDir();

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Empty only for a moved-from TempDir.
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  void remove() noexcept;

  std::filesystem::path path_;
};

}  // namespace keel::testing

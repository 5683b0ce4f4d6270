#pragma once
// Writing a file so that a crash never leaves it half-written: the text goes to PATH.tmp,
// which is then renamed over PATH (atomic on POSIX file systems). Shared by the search
// driver, the differentiable search and the CLI. And removing a folder tree without
// std::filesystem::remove_all (below).
#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "nasforge/error.h"

namespace nasforge::detail {

inline void write_file_atomic(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out) throw InvalidArgument(fmt::format("{}: cannot write", tmp.string()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    throw InvalidArgument(fmt::format("{}: cannot rename {} into place: {}", path.string(), tmp.string(), ec.message()));
  }
}

// Removes `path` and everything under it (symbolic links are removed, never followed); no
// error if it does not exist, InvalidArgument naming the entry that could not be removed.
// Not std::filesystem::remove_all: PyTorch's pip LibTorch (2.11) exports its own copy of that
// symbol from libtorch.so, a program linked to it binds to that copy, and it jumped to address
// 0 (a segfault in Darts.ResumedSearchEndsWhereAnUninterruptedOneDoes on an H200 machine).
inline void remove_tree(const std::filesystem::path& path) {
  struct stat root;
  if (::lstat(path.c_str(), &root) != 0) {
    const int err = errno;
    if (err == ENOENT) return;
    throw InvalidArgument(fmt::format("{}: cannot remove it: {}", path.string(), std::strerror(err)));
  }
  static thread_local std::string failed;  // nftw's callback is a plain function: its one way out
  failed.clear();
  const int rc = ::nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, struct FTW*) -> int {
        if (std::remove(entry) == 0) return 0;
        const int err = errno;
        try {
          failed = std::string(entry) + " (" + std::strerror(err) + ")";
        } catch (...) {  // nothing may unwind through nftw's C frames
        }
        return 1;
      },
      64, FTW_DEPTH | FTW_PHYS);
  const int err = errno;
  if (rc == 0) return;
  throw InvalidArgument(fmt::format("{}: cannot remove {}", path.string(),
                                    failed.empty() ? std::string(std::strerror(err)) : failed));
}

}  // namespace nasforge::detail

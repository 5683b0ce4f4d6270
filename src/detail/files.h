#pragma once
// Writing a file so that a crash never leaves it half-written: the text goes to PATH.tmp,
// which is then renamed over PATH (atomic on POSIX file systems). Shared by the search
// driver, the differentiable search and the CLI.
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

}  // namespace nasforge::detail

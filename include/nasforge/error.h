#pragma once
/// \file error.h
/// The exceptions nasforge throws. A caller catches `nasforge::Error` (or a subclass) only:
/// third-party exceptions (nlohmann::json, c10) are translated at the library boundary.

#include <stdexcept>
#include <string>

#include <fmt/core.h>

namespace nasforge {

/// Base of every exception nasforge throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A function received an argument outside its contract (wrong size, unknown name, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// A search-space file (or an architecture for it) is malformed. The message names the file,
/// the JSON path (e.g. `network[3].block.kernel`) and what was expected versus found.
class SearchSpaceError : public Error {
 public:
  /// \param file   the DSL file (or `<string>` when parsed from memory)
  /// \param path   the JSON path inside the file, empty for the whole document
  /// \param what   what was expected versus what was found
  SearchSpaceError(std::string file, std::string path, const std::string& what)
      : Error(format(file, path, what)), file_(std::move(file)), path_(std::move(path)) {}

  /// The file the error is in.
  const std::string& file() const noexcept { return file_; }
  /// The JSON path the error is at (empty: the whole document).
  const std::string& path() const noexcept { return path_; }

 private:
  static std::string format(const std::string& file, const std::string& path,
                            const std::string& what) {
    return path.empty() ? fmt::format("{}: {}", file, what)
                        : fmt::format("{}: {}: {}", file, path, what);
  }
  std::string file_;
  std::string path_;
};

/// Something looked up by name or key does not exist (a file, a registry entry, a row).
class NotFound : public Error {
 public:
  using Error::Error;
};

/// Evaluating a candidate failed; a search records the trial as failed and goes on.
class EvaluationError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void throw_check_failure(const char* cond, const char* file, int line,
                                      const std::string& message);
}  // namespace detail

}  // namespace nasforge

/// Throws `nasforge::InvalidArgument` naming the condition, file and line when `cond` is false.
/// The message is an fmt format string with arguments:
/// `NASFORGE_CHECK(n > 0, "expected n > 0, got {}", n);`
#define NASFORGE_CHECK(cond, ...)                                                        \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      ::nasforge::detail::throw_check_failure(#cond, __FILE__, __LINE__,                 \
                                              ::fmt::format(__VA_ARGS__));               \
    }                                                                                    \
  } while (false)

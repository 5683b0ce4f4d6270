#include "nasforge/error.h"

namespace nasforge::detail {

void throw_check_failure(const char* cond, const char* file, int line,
                         const std::string& message) {
  throw InvalidArgument(fmt::format("{} (check `{}` failed at {}:{})", message, cond, file, line));
}

}  // namespace nasforge::detail

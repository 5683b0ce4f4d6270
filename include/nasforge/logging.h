#pragma once
/// \file logging.h
/// nasforge logs through one named spdlog logger ("nasforge"). The application may replace it;
/// the library never touches spdlog's global state (default logger, global level).

#include <memory>

#include <spdlog/fwd.h>

namespace nasforge {

/// The library's logger. Created on first use as a stderr logger named "nasforge" at level
/// `warn`; not registered in spdlog's global registry.
std::shared_ptr<spdlog::logger> logger();

/// Replaces the library's logger (pass nullptr to restore the default). Thread-safe.
void set_logger(std::shared_ptr<spdlog::logger> logger);

}  // namespace nasforge

#include "nasforge/logging.h"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace nasforge {
namespace {
std::mutex g_mutex;
std::shared_ptr<spdlog::logger> g_logger;

std::shared_ptr<spdlog::logger> make_default() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto l = std::make_shared<spdlog::logger>("nasforge", std::move(sink));
  l->set_level(spdlog::level::warn);
  return l;
}
}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard lock(g_mutex);
  if (!g_logger) g_logger = make_default();
  return g_logger;
}

void set_logger(std::shared_ptr<spdlog::logger> l) {
  std::lock_guard lock(g_mutex);
  g_logger = std::move(l);
}

}  // namespace nasforge

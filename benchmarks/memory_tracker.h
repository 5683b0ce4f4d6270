#pragma once
// Peak CPU tensor memory of a block of code, from LibTorch's own allocation reports: while a
// PeakMemory is alive on a thread, the CPU allocator reports every allocation and free made on
// that thread (run the measured code with one intra-op thread). peak_bytes() is the highest
// total of live bytes allocated since construction, so memory that already existed (weights)
// is not counted and frees of it count against it.
#include <algorithm>
#include <cstdint>
#include <memory>

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>

namespace nasforge::bench {

class PeakMemory {
 public:
  PeakMemory() : info_(std::make_shared<Reporter>()), guard_(c10::DebugInfoKind::PROFILER_STATE, info_) {}
  std::int64_t peak_bytes() const { return info_->peak; }

 private:
  struct Reporter : c10::MemoryReportingInfoBase {
    std::int64_t current = 0, peak = 0;
    void add(std::int64_t bytes) {
      current += bytes;
      peak = std::max(peak, current);
    }
    // LibTorch 1.13 reports totals as int64_t, 2.x as size_t: one of these overrides the
    // pure virtual, the other is an unused overload.
    void reportMemoryUsage(void*, std::int64_t alloc_size, std::int64_t, std::int64_t, c10::Device) { add(alloc_size); }
    void reportMemoryUsage(void*, std::int64_t alloc_size, std::size_t, std::size_t, c10::Device) { add(alloc_size); }
    bool memoryProfilingEnabled() const override { return true; }
  };
  std::shared_ptr<Reporter> info_;
  c10::DebugInfoGuard guard_;
};

}  // namespace nasforge::bench

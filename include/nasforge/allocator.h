#pragma once
/// \file allocator.h
/// The C library's allocator, set for tensor work.
///
/// glibc's malloc serves every block of 128 KiB or more (its default threshold, which it raises
/// only as such blocks are freed) with a fresh mmap and unmaps it when freed. LibTorch on the
/// CPU allocates each layer's output afresh, so at batch 32 an NB201 inference page-faults and
/// zeroes its tensors' memory anew on every call: measured here, 38% of a profiling run's time
/// was system time, whole networks ran 1.3-1.4x slower than with memory reused (batch-32
/// MobileNetV3: 730 vs 560 ms), training steps ~10% slower, and — because the cost depends on
/// the allocator's history — layers timed one by one did not add up to their network
/// (docs/performance.md, "Latency lookup table vs measurement").
///
/// ```cpp
/// nasforge::reuse_freed_memory();   // once, early; the latency profiler does it by default
/// ```
/// PyTorch's CPU-inference guides reach the same end by preloading jemalloc or tcmalloc.

namespace nasforge {

/// Tells glibc's malloc (mallopt) to serve no block with its own mmap (M_MMAP_MAX 0) and to
/// keep up to 1 GiB of freed memory at the top of the main heap (M_TRIM_THRESHOLD), so freed
/// tensor memory is reused instead of being returned to the kernel and faulted in again.
/// (Raising the mmap threshold instead stops at 32 MiB; batch-32 MobileNetV3 activations reach
/// 150 MB.) Limits: other threads allocate from their own arenas, whose heaps glibc still maps
/// and trims in 64 MiB pieces, so the effect is strongest on the thread that runs the network;
/// under a preloaded jemalloc or tcmalloc it changes nothing (those reuse memory already).
/// Process-wide and permanent — the process's resident memory then stays near its peak — and
/// best called early, before other threads start (glibc reads these settings unlocked).
/// Idempotent. Returns true when glibc accepted the settings, false where the C library is
/// not glibc (nothing changes).
bool reuse_freed_memory();

}  // namespace nasforge

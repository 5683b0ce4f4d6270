#include "nasforge/allocator.h"

#include <cstdlib>  // defines __GLIBC__ on glibc (via features.h), tested below

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace nasforge {

bool reuse_freed_memory() {
#if defined(__GLIBC__)
  // 32 MiB is the largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2); setting
  // it also turns off glibc's dynamic adjustment of the threshold.
  static const bool ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return ok;
#else
  return false;
#endif
}

}  // namespace nasforge

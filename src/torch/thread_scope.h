#pragma once
// Sets LibTorch's intra-op thread count for a scope and restores it. With `blas`, OpenBLAS's
// own pool too (Debian's libopenblas0-pthread, which LibTorch's CPU convolutions and matmuls
// call, sizes it apart from torch::set_num_threads; at "1 thread" its workers otherwise keep
// spinning: 30 s of system time in a 45 s profiling run). OpenBLAS is found at run time, so
// nothing links against it directly.
#include <dlfcn.h>

#include <torch/torch.h>

namespace nasforge::detail {

class ThreadScope {
 public:
  explicit ThreadScope(int n, bool blas = false) : old_(::torch::get_num_threads()) {
    if (blas) {
      set_ = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
      if (auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) old_blas_ = get();
    }
    if (n > 0) {
      ::torch::set_num_threads(n);
      if (set_) set_(n);
    }
  }
  ~ThreadScope() {
    ::torch::set_num_threads(old_);
    if (set_ && old_blas_ > 0) set_(old_blas_);
  }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int old_, old_blas_ = 0;
  void (*set_)(int) = nullptr;
};

}  // namespace nasforge::detail

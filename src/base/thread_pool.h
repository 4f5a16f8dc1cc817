// ThreadPool: a parallel-for over pthreadpool (the pool XNNPACK and TFLite use).
// A pool of 1 thread runs everything on the caller. Not thread-safe: one pool per session;
// parallel_for calls from several threads on one pool serialize inside pthreadpool.
#pragma once

#include <cstddef>
#include <functional>

struct pthreadpool;

namespace pcv {

class ThreadPool {
 public:
  // threads <= 0 means one per core.
  explicit ThreadPool(int threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Calls fn(i) for i in [0, n), spread over the pool; returns when all are done.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);
  // Calls fn(begin, end) over [0, n) in chunks of `tile` items.
  void parallel_for_tiles(size_t n, size_t tile, const std::function<void(size_t, size_t)>& fn);
  pthreadpool* raw() { return pool_; }

 private:
  pthreadpool* pool_ = nullptr;
  int threads_ = 1;
};

int hardware_threads();

}  // namespace pcv

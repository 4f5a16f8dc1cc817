// ThreadPool: a parallel-for over pthreadpool (the pool XNNPACK and TFLite use).
// A pool of 1 thread runs everything on the caller. Not thread-safe: one pool per session;
// parallel_for calls from several threads on one pool serialize inside pthreadpool.
// Every parallel call goes through this class (kernels never call pthreadpool directly), so
// that ThreadSanitizer builds can annotate it: pthreadpool is an uninstrumented system
// library whose hand-off (atomics, futexes) TSan can't see; thread_pool.cc tells TSan that
// a parallel call's start happens before each task and each task before its return.
#pragma once

#include <cstddef>
#include <functional>

struct pthreadpool;

namespace pcv {

class ThreadPool {
 public:
  // threads <= 0 means one per CPU available to the process; more than that is capped to it
  // (threads() says how many run).
  explicit ThreadPool(int threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Calls fn(i) for i in [0, n), spread over the pool; returns when all are done.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);
  // Calls fn(begin, end) over [0, n) in chunks of `tile` items.
  void parallel_for_tiles(size_t n, size_t tile, const std::function<void(size_t, size_t)>& fn);

  // pthreadpool's own entry points (no std::function), for kernels. Each returns when every
  // call is done; on a pool of 1 thread the caller runs them all.
  using Fn1d = void (*)(void* ctx, size_t i);
  using Fn2dTile2d = void (*)(void* ctx, size_t i, size_t j, size_t tile_i, size_t tile_j);
  void parallelize_1d(Fn1d fn, void* ctx, size_t n);
  void parallelize_2d_tile_2d(Fn2dTile2d fn, void* ctx, size_t n_i, size_t n_j, size_t tile_i,
                              size_t tile_j);
  bool multi_threaded() const { return pool_ != nullptr; }

 private:
  pthreadpool* pool_ = nullptr;
  int threads_ = 1;
};

// CPUs this process may run on (its affinity mask), at least 1.
int hardware_threads();

// The items [begin, end) of task `slot` when n items are dealt to `slots` tasks in contiguous
// ranges (sizes differ by at most one). Contiguous, not interleaved: a thread then reads and
// writes rows next to each other, and the next op, which splits its rows the same way, finds
// them in that thread's cache (interleaved rows of a stride-2 conv were read by both threads).
struct SlotRange {
  size_t begin, end;
};
inline SlotRange slot_range(size_t n, size_t slot, size_t slots) {
  return {n * slot / slots, n * (slot + 1) / slots};
}

}  // namespace pcv

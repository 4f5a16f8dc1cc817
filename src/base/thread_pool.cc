#include "base/thread_pool.h"

#include <sched.h>

#include <pthreadpool.h>

#include <algorithm>
#include <thread>

namespace pcv {

int hardware_threads() {
#if defined(__linux__)
  // The CPUs this process may run on (taskset, container limits), not the machine's.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool::ThreadPool(int threads) {
  // More threads than CPUs only makes every parallel call wait for descheduled workers
  // (--threads 64 on 2 cores ran a small model ~100x slower): capped at the CPUs available.
  threads_ = threads <= 0 ? hardware_threads() : std::min(threads, hardware_threads());
  if (threads_ > 1) {
    pool_ = pthreadpool_create(static_cast<size_t>(threads_));
    if (pool_ == nullptr) threads_ = 1;
  }
}

ThreadPool::~ThreadPool() {
  if (pool_ != nullptr) pthreadpool_destroy(pool_);
}

namespace {

#if defined(__SANITIZE_THREAD__)
#define PCV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PCV_TSAN 1
#endif
#endif

#ifdef PCV_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

// One parallel call: the caller releases `start` before handing out work and acquires `done`
// after; each task acquires `start` first and releases `done` last.
struct Annotated {
  void* fn;
  void* ctx;
  char start, done;
};
void annotated_1d(void* c, size_t i) {
  auto* a = static_cast<Annotated*>(c);
  __tsan_acquire(&a->start);
  reinterpret_cast<ThreadPool::Fn1d>(a->fn)(a->ctx, i);
  __tsan_release(&a->done);
}
void annotated_1d_tile_1d(void* c, size_t i, size_t n) {
  auto* a = static_cast<Annotated*>(c);
  __tsan_acquire(&a->start);
  reinterpret_cast<pthreadpool_task_1d_tile_1d_t>(a->fn)(a->ctx, i, n);
  __tsan_release(&a->done);
}
void annotated_2d_tile_2d(void* c, size_t i, size_t j, size_t ti, size_t tj) {
  auto* a = static_cast<Annotated*>(c);
  __tsan_acquire(&a->start);
  reinterpret_cast<ThreadPool::Fn2dTile2d>(a->fn)(a->ctx, i, j, ti, tj);
  __tsan_release(&a->done);
}
#endif

struct Task1d {
  const std::function<void(size_t)>* fn;
};
void run_1d(void* ctx, size_t i) { (*static_cast<Task1d*>(ctx)->fn)(i); }

struct TaskTiles {
  const std::function<void(size_t, size_t)>* fn;
};
void run_tiles(void* ctx, size_t begin, size_t count) {
  (*static_cast<TaskTiles*>(ctx)->fn)(begin, begin + count);
}
}  // namespace

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (pool_ == nullptr || n == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  Task1d task{&fn};
  parallelize_1d(run_1d, &task, n);
}

void ThreadPool::parallel_for_tiles(size_t n, size_t tile,
                                    const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  tile = std::max<size_t>(tile, 1);
  if (pool_ == nullptr || n <= tile) {
    fn(0, n);
    return;
  }
  TaskTiles task{&fn};
#ifdef PCV_TSAN
  Annotated a{reinterpret_cast<void*>(&run_tiles), &task, 0, 0};
  __tsan_release(&a.start);
  pthreadpool_parallelize_1d_tile_1d(pool_, annotated_1d_tile_1d, &a, n, tile, 0);
  __tsan_acquire(&a.done);
#else
  pthreadpool_parallelize_1d_tile_1d(pool_, run_tiles, &task, n, tile, 0);
#endif
}

void ThreadPool::parallelize_1d(Fn1d fn, void* ctx, size_t n) {
  if (pool_ == nullptr) {
    for (size_t i = 0; i < n; ++i) fn(ctx, i);
    return;
  }
#ifdef PCV_TSAN
  Annotated a{reinterpret_cast<void*>(fn), ctx, 0, 0};
  __tsan_release(&a.start);
  pthreadpool_parallelize_1d(pool_, annotated_1d, &a, n, 0);
  __tsan_acquire(&a.done);
#else
  pthreadpool_parallelize_1d(pool_, fn, ctx, n, 0);
#endif
}

void ThreadPool::parallelize_2d_tile_2d(Fn2dTile2d fn, void* ctx, size_t n_i, size_t n_j,
                                        size_t tile_i, size_t tile_j) {
  if (pool_ == nullptr) {
    for (size_t i = 0; i < n_i; i += tile_i) {
      for (size_t j = 0; j < n_j; j += tile_j) {
        fn(ctx, i, j, std::min(tile_i, n_i - i), std::min(tile_j, n_j - j));
      }
    }
    return;
  }
#ifdef PCV_TSAN
  Annotated a{reinterpret_cast<void*>(fn), ctx, 0, 0};
  __tsan_release(&a.start);
  pthreadpool_parallelize_2d_tile_2d(pool_, annotated_2d_tile_2d, &a, n_i, n_j, tile_i, tile_j, 0);
  __tsan_acquire(&a.done);
#else
  pthreadpool_parallelize_2d_tile_2d(pool_, fn, ctx, n_i, n_j, tile_i, tile_j, 0);
#endif
}

}  // namespace pcv

#include "base/thread_pool.h"

#include <pthreadpool.h>

#include <algorithm>
#include <thread>

namespace pcv {

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

ThreadPool::ThreadPool(int threads) {
  threads_ = threads <= 0 ? hardware_threads() : threads;
  if (threads_ > 1) {
    pool_ = pthreadpool_create(static_cast<size_t>(threads_));
    if (pool_ == nullptr) threads_ = 1;
  }
}

ThreadPool::~ThreadPool() {
  if (pool_ != nullptr) pthreadpool_destroy(pool_);
}

namespace {
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
  pthreadpool_parallelize_1d(pool_, run_1d, &task, n, 0);
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
  pthreadpool_parallelize_1d_tile_1d(pool_, run_tiles, &task, n, tile, 0);
}

}  // namespace pcv

// DataLoader: batches of float32 NHWC images + int labels from a Dataset.
//
// Per epoch the sample order is a shuffle seeded from (seed, epoch) (or the given order when
// shuffle is off); sample i's augmentation draws from Rng(seed, epoch, i), so batches are
// identical for a seed whatever the thread count. Decoding and preprocessing run on a
// ThreadPool of `threads` threads driven by one producer thread that prepares up to
// `prefetch_batches` batches ahead of the consumer (with threads = 2 both cores stay busy
// while the caller trains on the previous batch).
// IDX (gray) samples go through the same Preprocess: ColorOrder::kGray keeps 1 channel,
// kRGB replicates gray to 3; out_h/out_w resize (28x28 stays exact when unchanged).
// Thread safety: one consumer thread; start_epoch/next are not reentrant.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "vision/preprocess.h"

namespace pcv::data {

struct LoaderOptions {
  int batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;  // drop a final partial batch
  uint64_t seed = 0;
  int threads = 2;           // decode threads (the producer thread is one of them)
  int prefetch_batches = 2;  // ready batches kept ahead of the consumer
  vision::Preprocess preprocess;
  bool augment = false;  // training augmentation (augment.h), else the eval transform
  AugmentOptions augment_options;
};

struct Batch {
  int size = 0;  // samples in this batch (<= batch_size)
  int height = 0, width = 0, channels = 0;
  std::vector<float> images;    // (size, height, width, channels)
  std::vector<int32_t> labels;  // (size)
  std::vector<size_t> indices;  // dataset indices of the samples
  size_t batch_index = 0;       // position in the epoch
};

class DataLoader {
 public:
  // `indices`: the dataset samples to use (e.g. Split::train); empty = all of them.
  // Errors: invalid Preprocess, batch_size < 1, an index out of range.
  static Expected<std::unique_ptr<DataLoader>> create(std::shared_ptr<const Dataset> dataset,
                                                      std::vector<size_t> indices,
                                                      const LoaderOptions& options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  size_t batches_per_epoch() const;
  size_t samples() const { return indices_.size(); }
  // Starts producing epoch `epoch` (stops any epoch in progress).
  void start_epoch(int epoch);
  // The next batch of the current epoch into `out`; false when the epoch is done. An error
  // (a file that fails to decode) ends the epoch.
  Expected<bool> next(Batch* out);

 private:
  DataLoader() = default;
  void stop();
  void produce(int epoch);
  Status fill_batch(int epoch, const std::vector<size_t>& order, size_t b, Batch* out);

  std::shared_ptr<const Dataset> dataset_;
  std::vector<size_t> indices_;
  LoaderOptions opt_;
  vision::DecodeOptions decode_hint_;
  std::unique_ptr<ThreadPool> pool_;

  std::thread producer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> ready_;
  Status error_;
  bool done_ = true;     // producer finished the epoch (or none started)
  bool stopping_ = false;
  size_t consumed_ = 0;
};

}  // namespace pcv::data

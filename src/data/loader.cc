#include "data/loader.h"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "base/thread_pool.h"

namespace pcv::data {

Expected<std::unique_ptr<DataLoader>> DataLoader::create(std::shared_ptr<const Dataset> dataset,
                                                         std::vector<size_t> indices,
                                                         const LoaderOptions& options) {
  PCV_ENSURE(dataset != nullptr, StatusCode::kInvalidArgument, "loader: no dataset");
  PCV_ENSURE(options.batch_size >= 1, StatusCode::kInvalidArgument,
             "loader: batch_size {} < 1", options.batch_size);
  PCV_RETURN_IF_ERROR(vision::validate(options.preprocess));
  if (indices.empty()) {
    indices.resize(dataset->size());
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = i;
  }
  for (size_t i : indices) {
    PCV_ENSURE(i < dataset->size(), StatusCode::kInvalidArgument,
               "loader: index {} out of range (dataset has {})", i, dataset->size());
  }
  std::unique_ptr<DataLoader> l(new DataLoader());
  l->dataset_ = std::move(dataset);
  l->indices_ = std::move(indices);
  l->opt_ = options;
  l->opt_.threads = std::max(1, options.threads);
  l->opt_.prefetch_batches = std::max(1, options.prefetch_batches);
  // Random crops keep >= scale_min of the area: ask the JPEG decoder for that much more.
  const float zoom = options.augment ? std::sqrt(std::clamp(options.augment_options.scale_min,
                                                            0.05f, 1.f))
                                     : 1.f;
  l->decode_hint_ = vision::decode_options_for(options.preprocess, zoom);
  l->pool_ = std::make_unique<ThreadPool>(l->opt_.threads);
  return l;
}

DataLoader::~DataLoader() { stop(); }

size_t DataLoader::batches_per_epoch() const {
  const size_t n = indices_.size(), b = static_cast<size_t>(opt_.batch_size);
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (producer_.joinable()) producer_.join();
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  ready_.clear();
  done_ = true;
}

void DataLoader::start_epoch(int epoch) {
  stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = false;
    error_ = Status::ok();
    consumed_ = 0;
  }
  producer_ = std::thread([this, epoch] { produce(epoch); });
}

Status DataLoader::fill_batch(int epoch, const std::vector<size_t>& order, size_t b,
                              Batch* out) {
  const vision::Preprocess& pre = opt_.preprocess;
  const size_t bs = static_cast<size_t>(opt_.batch_size);
  const size_t begin = b * bs;
  const size_t count = std::min(bs, order.size() - begin);
  const size_t elems = pre.out_elems();
  out->size = static_cast<int>(count);
  out->height = pre.out_h;
  out->width = pre.out_w;
  out->channels = pre.out_channels();
  out->images.assign(count * elems, 0.f);
  out->labels.resize(count);
  out->indices.assign(order.begin() + begin, order.begin() + begin + count);
  out->batch_index = b;
  std::vector<Status> status(count);
  auto work = [&](size_t k) {
    const size_t idx = out->indices[k];
    out->labels[k] = dataset_->label(idx);
    float* dst = out->images.data() + k * elems;
    auto img = dataset_->load(idx, decode_hint_);
    if (!img.has_value()) {
      status[k] = img.status();
      return;
    }
    if (opt_.augment) {
      Rng rng(opt_.seed, static_cast<uint64_t>(epoch) + 1, idx);
      status[k] = augment_to_tensor(*img, pre, opt_.augment_options, rng, dst, elems);
    } else {
      status[k] = eval_to_tensor(*img, pre, dst, elems);
    }
  };
  pool_->parallel_for(count, work);  // only the producer thread uses the pool
  for (const Status& s : status) PCV_RETURN_IF_ERROR(s);
  return Status::ok();
}

void DataLoader::produce(int epoch) {
  std::vector<size_t> order = indices_;
  if (opt_.shuffle) {
    Rng rng(opt_.seed, 0x5E9u, static_cast<uint64_t>(epoch));
    rng.shuffle(&order);
  }
  const size_t n_batches = batches_per_epoch();
  for (size_t b = 0; b < n_batches; ++b) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || ready_.size() < static_cast<size_t>(opt_.prefetch_batches);
      });
      if (stopping_) break;
    }
    Batch batch;
    Status s = fill_batch(epoch, order, b, &batch);
    std::lock_guard<std::mutex> lock(mu_);
    if (!s.is_ok()) {
      error_ = s;
      break;
    }
    ready_.push_back(std::move(batch));
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  cv_.notify_all();
}

Expected<bool> DataLoader::next(Batch* out) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !ready_.empty() || done_; });
  if (!ready_.empty()) {
    *out = std::move(ready_.front());
    ready_.pop_front();
    ++consumed_;
    cv_.notify_all();
    return true;
  }
  if (!error_.is_ok()) {
    Status e = error_;
    error_ = Status::ok();
    return e;
  }
  return false;
}

}  // namespace pcv::data

#include "train/loss.h"

#include <algorithm>
#include <cmath>

namespace pcv::train {

LossResult softmax_cross_entropy(size_t n, int c, const float* logits, const int32_t* labels,
                                 float label_smoothing, float grad_scale, float* dlogits,
                                 float* probs) {
  LossResult r;
  const double off = static_cast<double>(label_smoothing) / c;
  const double on = 1.0 - label_smoothing + off;
  for (size_t i = 0; i < n; ++i) {
    const float* z = logits + i * static_cast<size_t>(c);
    const int y = labels[i];
    const float* zmax = std::max_element(z, z + c);
    const double mx = *zmax;
    double sum = 0.0;
    for (int k = 0; k < c; ++k) sum += std::exp(static_cast<double>(z[k]) - mx);
    const double log_sum = std::log(sum);
    double loss = 0.0;
    for (int k = 0; k < c; ++k) {
      const double logp = static_cast<double>(z[k]) - mx - log_sum;
      const double q = k == y ? on : off;
      if (q != 0.0) loss -= q * logp;
      const double p = std::exp(logp);
      if (dlogits != nullptr) dlogits[i * static_cast<size_t>(c) + k] = static_cast<float>((p - q) * grad_scale);
      if (probs != nullptr) probs[i * static_cast<size_t>(c) + k] = static_cast<float>(p);
    }
    r.loss_sum += loss;
    if (zmax - z == y) ++r.correct;
  }
  return r;
}

}  // namespace pcv::train

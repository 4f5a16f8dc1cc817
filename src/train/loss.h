// Softmax cross-entropy, fused with the softmax: the loss the trainer puts on the logits.
//
// For a row of logits z (C classes) and label y, with label smoothing e:
//   p = softmax(z), q = (1 - e) * onehot(y) + e / C,
//   loss = -sum_c q_c * log p_c,   dL/dz = (p - q) / n   (mean over the n rows).
// log p is computed as z - max - log(sum exp(z - max)) (no overflow, no log(0)).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pcv::train {

struct LossResult {
  double loss_sum = 0;  // summed over rows (divide by n for the mean)
  int correct = 0;      // rows whose argmax equals the label
};

// logits (n, c); labels (n) in [0, c). Writes dlogits (n, c) = (p - q) * grad_scale (pass
// 1/n for the batch mean; may be nullptr: loss only). probs (n, c) may be nullptr.
LossResult softmax_cross_entropy(size_t n, int c, const float* logits, const int32_t* labels,
                                 float label_smoothing, float grad_scale, float* dlogits,
                                 float* probs = nullptr);

}  // namespace pcv::train

#include "train/optimizer.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <numbers>

namespace pcv::train {

const char* optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::kSgd: return "sgd";
    case OptimizerKind::kAdam: return "adam";
    case OptimizerKind::kAdamW: return "adamw";
  }
  return "?";
}

Expected<OptimizerKind> optimizer_from_name(const std::string& name) {
  if (name == "sgd") return OptimizerKind::kSgd;
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "adamw") return OptimizerKind::kAdamW;
  return invalid_argument(fmt::format("unknown optimizer '{}' (sgd, adam, adamw)", name));
}

Optimizer::Optimizer(const OptimizerOptions& options, const std::vector<Parameter>& params)
    : opt_(options) {
  const bool adam = opt_.kind != OptimizerKind::kSgd;
  for (const Parameter& p : params) {
    names_.push_back(p.name);
    m_.emplace_back(opt_.kind == OptimizerKind::kSgd && opt_.momentum == 0.f ? 0 : p.size, 0.f);
    v_.emplace_back(adam ? p.size : 0, 0.f);
  }
}

void Optimizer::step(std::vector<Parameter>& params, float lr) {
  ++t_;
  const float wd = opt_.weight_decay;
  if (opt_.kind == OptimizerKind::kSgd) {
    const float mu = opt_.momentum;
    for (size_t i = 0; i < params.size(); ++i) {
      Parameter& p = params[i];
      if (p.frozen) continue;
      const float d = p.decay ? wd : 0.f;
      float* w = p.data;
      const float* g = p.grad;
      if (mu == 0.f) {
        for (size_t k = 0; k < p.size; ++k) w[k] -= lr * (g[k] + d * w[k]);
        continue;
      }
      float* v = m_[i].data();
      for (size_t k = 0; k < p.size; ++k) {
        const float gk = g[k] + d * w[k];
        v[k] = mu * v[k] + gk;
        w[k] -= lr * (opt_.nesterov ? gk + mu * v[k] : v[k]);
      }
    }
    return;
  }
  const float b1 = opt_.beta1, b2 = opt_.beta2;
  const float c1 = 1.f - static_cast<float>(std::pow(static_cast<double>(b1), static_cast<double>(t_)));
  const float c2 = 1.f - static_cast<float>(std::pow(static_cast<double>(b2), static_cast<double>(t_)));
  const bool decoupled = opt_.kind == OptimizerKind::kAdamW;
  for (size_t i = 0; i < params.size(); ++i) {
    Parameter& p = params[i];
    if (p.frozen) continue;
    const float d = p.decay ? wd : 0.f;
    float* w = p.data;
    const float* g = p.grad;
    float* m = m_[i].data();
    float* v = v_[i].data();
    for (size_t k = 0; k < p.size; ++k) {
      float gk = g[k];
      if (decoupled) {
        w[k] -= lr * d * w[k];
      } else {
        gk += d * w[k];
      }
      m[k] = b1 * m[k] + (1.f - b1) * gk;
      v[k] = b2 * v[k] + (1.f - b2) * gk * gk;
      const float mhat = m[k] / c1;
      const float vhat = v[k] / c2;
      w[k] -= lr * mhat / (std::sqrt(vhat) + opt_.epsilon);
    }
  }
}

namespace {
constexpr uint32_t kStateMagic = 0x54504f50;  // "POPT"
void put(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}
template <class T> void put(std::vector<uint8_t>& out, T v) { put(out, &v, sizeof(v)); }
struct Reader {
  std::span<const uint8_t> b;
  size_t pos = 0;
  bool get(void* p, size_t n) {
    if (n == 0) return true;  // an empty slot's data() may be null
    if (pos + n > b.size()) return false;
    std::memcpy(p, b.data() + pos, n);
    pos += n;
    return true;
  }
  template <class T> bool get(T* v) { return get(v, sizeof(T)); }
};
}  // namespace

std::vector<uint8_t> Optimizer::save_state() const {
  std::vector<uint8_t> out;
  put(out, kStateMagic);
  put(out, static_cast<uint32_t>(opt_.kind));
  put(out, t_);
  put(out, static_cast<uint64_t>(names_.size()));
  for (size_t i = 0; i < names_.size(); ++i) {
    put(out, static_cast<uint64_t>(names_[i].size()));
    put(out, names_[i].data(), names_[i].size());
    put(out, static_cast<uint64_t>(m_[i].size()));
    put(out, m_[i].data(), m_[i].size() * sizeof(float));
    put(out, static_cast<uint64_t>(v_[i].size()));
    put(out, v_[i].data(), v_[i].size() * sizeof(float));
  }
  return out;
}

Status Optimizer::load_state(std::span<const uint8_t> bytes) {
  Reader r{bytes};
  uint32_t magic = 0, kind = 0;
  int64_t t = 0;
  uint64_t count = 0;
  if (!r.get(&magic) || magic != kStateMagic || !r.get(&kind) || !r.get(&t) || !r.get(&count)) {
    return invalid_argument("optimizer state: bad header");
  }
  if (kind != static_cast<uint32_t>(opt_.kind)) {
    return invalid_argument(fmt::format("optimizer state is for '{}', this run uses '{}'",
                                        optimizer_name(static_cast<OptimizerKind>(kind)),
                                        optimizer_name(opt_.kind)));
  }
  if (count != names_.size()) {
    return invalid_argument(fmt::format("optimizer state has {} parameters, the model {}", count, names_.size()));
  }
  auto m = m_, v = v_;
  for (size_t i = 0; i < names_.size(); ++i) {
    uint64_t len = 0;
    if (!r.get(&len) || len > bytes.size()) return invalid_argument("optimizer state: truncated");
    std::string name(len, '\0');
    if (!r.get(name.data(), len)) return invalid_argument("optimizer state: truncated");
    if (name != names_[i]) {
      return invalid_argument(fmt::format("optimizer state parameter {} is '{}', the model has '{}'", i, name, names_[i]));
    }
    for (auto* slot : {&m[i], &v[i]}) {
      uint64_t n = 0;
      if (!r.get(&n) || n != slot->size()) return invalid_argument(fmt::format("optimizer state: size of '{}' differs", name));
      if (!r.get(slot->data(), n * sizeof(float))) return invalid_argument("optimizer state: truncated");
    }
  }
  m_ = std::move(m);
  v_ = std::move(v);
  t_ = t;
  return Status::ok();
}

Expected<ScheduleKind> schedule_from_name(const std::string& name) {
  if (name == "constant") return ScheduleKind::kConstant;
  if (name == "cosine") return ScheduleKind::kCosine;
  if (name == "step") return ScheduleKind::kStep;
  return invalid_argument(fmt::format("unknown LR schedule '{}' (constant, cosine, step)", name));
}

const char* schedule_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::kConstant: return "constant";
    case ScheduleKind::kCosine: return "cosine";
    case ScheduleKind::kStep: return "step";
  }
  return "?";
}

float Schedule::lr_at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) {
    return base_lr * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  }
  switch (kind) {
    case ScheduleKind::kConstant:
      return base_lr;
    case ScheduleKind::kCosine: {
      const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
      const double s = std::min<double>(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(span));
      return static_cast<float>(min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * s)));
    }
    case ScheduleKind::kStep:
      return base_lr * static_cast<float>(std::pow(gamma, static_cast<double>(step / std::max<int64_t>(1, step_size))));
  }
  return base_lr;
}

}  // namespace pcv::train

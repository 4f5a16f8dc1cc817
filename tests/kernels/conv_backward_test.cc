// conv2d backward: hand-checked values, then the fast kernel against the reference over shapes
// with strides, dilation, padding, groups, depthwise (multiplier 1 and 2), channel tails, and
// thread counts (results must be bitwise equal for 1 and 2 threads).
#include "kernels/conv/conv_backward.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "base/aligned.h"
#include "base/thread_pool.h"
#include "kernels/conv/conv.h"
#include "kernels/kernel_test_util.h"

namespace pcv::kernels {
namespace {

using testing::random_f32;

TEST(ConvBackward, RefHandValues1x1) {
  // 1 image, 1x2 pixels, 1 in channel, 1 out channel, 1x1 filter w=3.
  Conv2dParams p;
  p.in_h = 1; p.in_w = 2; p.in_c = 1; p.out_h = 1; p.out_w = 2; p.out_c = 1;
  const float x[] = {2.f, -1.f}, w[] = {3.f}, dy[] = {0.5f, 4.f};
  float dx[2] = {1.f, 1.f}, dw[1] = {0.f}, db[1] = {10.f};
  f32_conv2d_backward__ref(p, x, w, dy, dx, dw, db);
  EXPECT_FLOAT_EQ(dx[0], 1.f + 1.5f);  // accumulated onto the 1 already there
  EXPECT_FLOAT_EQ(dx[1], 1.f + 12.f);
  EXPECT_FLOAT_EQ(dw[0], 0.5f * 2.f + 4.f * -1.f);
  EXPECT_FLOAT_EQ(db[0], 10.f + 4.5f);
}

TEST(ConvBackward, RefHandValues3x3Padded) {
  // 3x3 input of ones, 3x3 filter, SAME padding, stride 1: dW[ky,kx] counts the output
  // pixels whose tap (ky,kx) lands inside (with dY = 1): corners 4, edges 6, center 9.
  Conv2dParams p;
  p.in_h = p.in_w = 3; p.in_c = 1; p.out_h = p.out_w = 3; p.out_c = 1;
  p.kernel_h = p.kernel_w = 3; p.pad_top = p.pad_left = 1;
  std::vector<float> x(9, 1.f), w(9, 1.f), dy(9, 1.f), dx(9, 0.f), dw(9, 0.f);
  f32_conv2d_backward__ref(p, x.data(), w.data(), dy.data(), dx.data(), dw.data(), nullptr);
  const float expect[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
  for (int i = 0; i < 9; ++i) {
    EXPECT_FLOAT_EQ(dw[i], expect[i]) << i;
    EXPECT_FLOAT_EQ(dx[i], expect[i]) << i;  // symmetric here
  }
}

struct Case {
  int batch, in_h, in_w, in_c, out_c, k, stride, dilation, pad, groups;
};

Conv2dParams make_params(const Case& c) {
  Conv2dParams p;
  p.batch = c.batch;
  p.in_h = c.in_h; p.in_w = c.in_w; p.in_c = c.in_c; p.out_c = c.out_c;
  p.kernel_h = p.kernel_w = c.k;
  p.stride_h = p.stride_w = c.stride;
  p.dilation_h = p.dilation_w = c.dilation;
  p.pad_top = p.pad_left = c.pad;
  const int eff = (c.k - 1) * c.dilation + 1;
  p.out_h = (c.in_h + 2 * c.pad - eff) / c.stride + 1;
  p.out_w = (c.in_w + 2 * c.pad - eff) / c.stride + 1;
  p.groups = c.groups;
  return p;
}

class ConvBackwardFast : public ::testing::TestWithParam<Case> {};

TEST_P(ConvBackwardFast, MatchesReference) {
  const Conv2dParams p = make_params(GetParam());
  const size_t in_elems = static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c;
  const size_t out_elems = static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c;
  const size_t w_elems = static_cast<size_t>(p.out_c) * p.kernel_h * p.kernel_w * (p.in_c / p.groups);
  const auto x = random_f32(in_elems, 1), w = random_f32(w_elems, 2), dy = random_f32(out_elems, 3);
  // Start from non-zero gradients: both kernels accumulate.
  const auto dx0 = random_f32(in_elems, 4), dw0 = random_f32(w_elems, 5), db0 = random_f32(p.out_c, 6);
  std::vector<float> dx_ref = dx0, dw_ref = dw0, db_ref = db0;
  f32_conv2d_backward__ref(p, x.data(), w.data(), dy.data(), dx_ref.data(), dw_ref.data(), db_ref.data());

  auto plan = prepare_f32_conv2d_backward_fast(p);
  ASSERT_TRUE(plan.has_value()) << plan.status().to_string();
  std::vector<float> scratch(plan->scratch_elems);
  const size_t taps = static_cast<size_t>(p.kernel_h) * p.kernel_w * (p.in_c / p.groups);
  std::vector<float> first_dx, first_dw, first_db;
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    std::vector<float> dx = dx0, dw = dw0, db = db0;
    f32_conv2d_backward_fast(*plan, p.batch, x.data(), w.data(), dy.data(), dx.data(), dw.data(),
                             db.data(), scratch.data(), &pool);
    // Error bound: a sum of up to `terms` products of values in [-1, 1].
    const double terms_w = static_cast<double>(p.batch) * p.out_h * p.out_w;
    for (size_t i = 0; i < in_elems; ++i) ASSERT_NEAR(dx[i], dx_ref[i], 1e-5 * (1 + taps)) << "dx " << i;
    for (size_t i = 0; i < w_elems; ++i) ASSERT_NEAR(dw[i], dw_ref[i], 1e-6 * (10 + terms_w)) << "dw " << i;
    for (int i = 0; i < p.out_c; ++i) ASSERT_NEAR(db[i], db_ref[i], 1e-6 * (10 + terms_w)) << "db " << i;
    if (threads == 1) {
      first_dx = dx; first_dw = dw; first_db = db;
    } else {
      EXPECT_EQ(dx, first_dx) << "thread count changed dX";
      EXPECT_EQ(dw, first_dw) << "thread count changed dW";
      EXPECT_EQ(db, first_db) << "thread count changed db";
    }
  }
  // Assigning the input gradient: its contents (NaN here) are never read.
  {
    std::vector<float> dx_zero(in_elems, 0.f), dw_unused(w_elems, 0.f), db_unused(p.out_c, 0.f);
    f32_conv2d_backward__ref(p, x.data(), w.data(), dy.data(), dx_zero.data(), dw_unused.data(), db_unused.data());
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      std::vector<float> dx(in_elems, std::numeric_limits<float>::quiet_NaN());
      f32_conv2d_backward_fast(*plan, p.batch, x.data(), w.data(), dy.data(), dx.data(), nullptr, nullptr,
                               scratch.data(), &pool, /*assign_input_grad=*/true);
      for (size_t i = 0; i < in_elems; ++i) ASSERT_NEAR(dx[i], dx_zero[i], 1e-5 * (1 + taps)) << "assigned dx " << i;
    }
  }
  // Backward-data as a forward conv of dY with the flipped filter, where the conv qualifies
  // (stride 1, no dilation, groups 1, K > 1): assigns the same dX.
  Conv2dParams t;
  if (conv2d_backward_data_as_conv(p, &t)) {
    std::vector<float> dx_zero(in_elems, 0.f), dw_unused(w_elems, 0.f), db_unused(p.out_c, 0.f);
    f32_conv2d_backward__ref(p, x.data(), w.data(), dy.data(), dx_zero.data(), dw_unused.data(), db_unused.data());
    auto packed = prepare_f32_conv2d_backward_data_as_conv(p, w.data());
    ASSERT_TRUE(packed.has_value()) << packed.status().to_string();
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      std::vector<float> conv_scratch(packed->scratch_bytes(threads) / sizeof(float) + 1);
      std::vector<float> dx(in_elems, std::numeric_limits<float>::quiet_NaN());
      f32_conv2d_fast(*packed, dy.data(), -std::numeric_limits<float>::infinity(),
                      std::numeric_limits<float>::infinity(), dx.data(), conv_scratch.data(), &pool);
      for (size_t i = 0; i < in_elems; ++i) ASSERT_NEAR(dx[i], dx_zero[i], 1e-5 * (1 + taps)) << "dx as conv " << i;
    }
  }
  // Only the input gradient (frozen filter): dW/db untouched.
  std::vector<float> dx = dx0;
  f32_conv2d_backward_fast(*plan, p.batch, x.data(), w.data(), dy.data(), dx.data(), nullptr,
                           nullptr, scratch.data(), nullptr);
  for (size_t i = 0; i < in_elems; ++i) ASSERT_NEAR(dx[i], dx_ref[i], 1e-5 * (1 + taps));
}

// Backward-data as a forward conv over the padding it accepts: asymmetric (SAME with an even
// kernel), rectangular kernels, K - 1 on each side, 3x3 with enough channels for Winograd; and
// the convs it refuses.
TEST(ConvBackwardDataAsConv, PaddingsAndRefusals) {
  struct P { int kh, kw, pt, pb, pl, pr, ci, co; };
  for (P c : {P{2, 2, 0, 1, 0, 1, 5, 9}, P{3, 1, 1, 1, 0, 0, 5, 9}, P{1, 3, 0, 0, 2, 1, 5, 9}, P{5, 5, 2, 2, 4, 0, 5, 9},
              P{3, 3, 0, 0, 0, 0, 5, 9}, P{3, 3, 1, 1, 1, 1, 12, 16}, P{3, 3, 0, 2, 2, 0, 8, 8}}) {
    SCOPED_TRACE(::testing::Message() << c.kh << "x" << c.kw << " pads " << c.pt << c.pb << c.pl << c.pr << " channels "
                                      << c.ci << " -> " << c.co);
    Conv2dParams p;
    p.batch = 2;
    p.in_h = 7;
    p.in_w = 6;
    p.in_c = c.ci;
    p.out_c = c.co;
    p.kernel_h = c.kh;
    p.kernel_w = c.kw;
    p.pad_top = c.pt;
    p.pad_left = c.pl;
    p.out_h = p.in_h + c.pt + c.pb - c.kh + 1;
    p.out_w = p.in_w + c.pl + c.pr - c.kw + 1;
    Conv2dParams t;
    ASSERT_TRUE(conv2d_backward_data_as_conv(p, &t));
    EXPECT_EQ(t.out_h, p.in_h);
    EXPECT_EQ(t.out_c, p.in_c);
    const size_t in_elems = static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c;
    const size_t out_elems = static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c;
    const size_t w_elems = static_cast<size_t>(p.out_c) * p.kernel_h * p.kernel_w * p.in_c;
    const auto x = random_f32(in_elems, 1), w = random_f32(w_elems, 2), dy = random_f32(out_elems, 3);
    std::vector<float> want(in_elems, 0.f), dw(w_elems), db(p.out_c);
    f32_conv2d_backward__ref(p, x.data(), w.data(), dy.data(), want.data(), dw.data(), db.data());
    auto packed = prepare_f32_conv2d_backward_data_as_conv(p, w.data());
    ASSERT_TRUE(packed.has_value()) << packed.status().to_string();
    std::vector<float> scratch(packed->scratch_bytes(1) / sizeof(float) + 1);
    std::vector<float> got(in_elems + 1, std::numeric_limits<float>::quiet_NaN());
    got.back() = 5.f;
    f32_conv2d_fast(*packed, dy.data(), -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity(),
                    got.data(), scratch.data(), nullptr);
    EXPECT_EQ(got.back(), 5.f) << "wrote past dX";
    for (size_t i = 0; i < in_elems; ++i) ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + w_elems / p.in_c)) << i;
  }
  Conv2dParams p;
  p.in_h = p.in_w = 8;
  p.in_c = p.out_c = 4;
  p.kernel_h = p.kernel_w = 3;
  p.out_h = p.out_w = 6;
  Conv2dParams t;
  EXPECT_TRUE(conv2d_backward_data_as_conv(p, &t));
  const std::pair<const char*, std::function<void(Conv2dParams&)>> refusals[] = {
      {"stride 2", [](Conv2dParams& q) { q.stride_h = q.stride_w = 2, q.out_h = q.out_w = 3; }},
      {"dilation 2", [](Conv2dParams& q) { q.dilation_h = q.dilation_w = 2, q.out_h = q.out_w = 4; }},
      {"grouped", [](Conv2dParams& q) { q.groups = 2; }},
      {"1x1", [](Conv2dParams& q) { q.kernel_h = q.kernel_w = 1, q.out_h = q.out_w = 8; }},
      {"padding beyond K - 1", [](Conv2dParams& q) { q.pad_top = q.pad_left = 3, q.out_h = q.out_w = 12; }},
  };
  Conv2dParams q;
  for (const auto& [why, change] : refusals) {
    q = p;
    change(q);
    EXPECT_FALSE(conv2d_backward_data_as_conv(q, &t)) << why;
  }
  EXPECT_FALSE(prepare_f32_conv2d_backward_data_as_conv(q, std::vector<float>(144).data()).has_value());
}

// The depthwise per-image kernel on every compiled Highway target (the suite above runs the
// dispatched one only): channel tails around each vector width, strides, dilation, 5x5, and
// each of the three gradients alone.
TEST(ConvBackwardDepthwise, EveryTarget) {
  const Case cases[] = {Case{1, 7, 6, 1, 1, 3, 1, 1, 1, 1},   Case{1, 9, 9, 7, 7, 3, 2, 1, 1, 7},
                        Case{1, 8, 8, 16, 16, 3, 1, 1, 1, 16}, Case{1, 9, 7, 17, 17, 3, 2, 1, 1, 17},
                        Case{1, 11, 11, 40, 40, 5, 1, 2, 4, 40}, Case{1, 6, 6, 33, 33, 5, 2, 1, 2, 33},
                        Case{1, 8, 9, 9, 9, 3, 1, 1, 0, 9},      Case{1, 9, 8, 24, 24, 3, 2, 1, 0, 24},
                        Case{1, 5, 6, 3, 3, 3, 2, 1, 2, 3},      Case{1, 3, 3, 5, 5, 3, 1, 1, 2, 5}};
  testing::for_each_hwy_target([&](const char* isa) {
    SCOPED_TRACE(std::string("isa ") + isa);
    for (const Case& cs : cases) {
      Conv2dParams p = make_params(cs);
      p.groups = p.in_c;
      SCOPED_TRACE("c=" + std::to_string(p.in_c) + " k=" + std::to_string(p.kernel_h));
      const size_t in_elems = static_cast<size_t>(p.in_h) * p.in_w * p.in_c;
      const size_t out_elems = static_cast<size_t>(p.out_h) * p.out_w * p.out_c;
      const size_t taps = static_cast<size_t>(p.kernel_h) * p.kernel_w;
      const size_t w_elems = taps * static_cast<size_t>(p.out_c);
      const auto x = random_f32(in_elems, 1), w = random_f32(w_elems, 2), dy = random_f32(out_elems, 3);
      const auto dx0 = random_f32(in_elems, 4), dw0 = random_f32(w_elems, 5), db0 = random_f32(p.out_c, 6);
      std::vector<float> dx_ref = dx0, dw_ref = dw0, db_ref = db0;
      f32_conv2d_backward__ref(p, x.data(), w.data(), dy.data(), dx_ref.data(), dw_ref.data(), db_ref.data());
      // The kernel takes the filter as (taps, C) and gives its gradient in that layout.
      std::vector<float> wt(w_elems), dwt0(w_elems);
      for (size_t c = 0; c < static_cast<size_t>(p.out_c); ++c) {
        for (size_t t = 0; t < taps; ++t) {
          wt[t * p.out_c + c] = w[c * taps + t];
          dwt0[t * p.out_c + c] = dw0[c * taps + t];
        }
      }
      for (int which = 0; which < 5; ++which) {  // all three, each alone, then dx assigned
        std::vector<float> dx = dx0, dwt = dwt0, db = db0;
        dx.push_back(-7.f);
        dwt.push_back(-7.f);
        db.push_back(-7.f);
        if (which == 4) std::fill(dx.begin(), dx.end() - 1, std::numeric_limits<float>::quiet_NaN());
        f32_dwconv_backward_image(p, x.data(), dy.data(), wt.data(), which <= 1 || which == 4 ? dx.data() : nullptr,
                                  which == 0 || which == 2 ? dwt.data() : nullptr,
                                  which == 0 || which == 3 ? db.data() : nullptr, /*assign_dx=*/which == 4);
        for (size_t i = 0; i < in_elems; ++i) {
          const double want = which <= 1 ? dx_ref[i] : which == 4 ? dx_ref[i] - dx0[i] : dx0[i];
          ASSERT_NEAR(dx[i], want, 1e-5 * (1 + taps)) << "dx " << i;
        }
        for (size_t c = 0; c < static_cast<size_t>(p.out_c); ++c) {
          for (size_t t = 0; t < taps; ++t) {
            ASSERT_NEAR(dwt[t * p.out_c + c], which == 0 || which == 2 ? dw_ref[c * taps + t] : dw0[c * taps + t],
                        1e-6 * (10.0 + static_cast<double>(out_elems)))
                << "dw c " << c << " tap " << t;
          }
          ASSERT_NEAR(db[c], which == 0 || which == 3 ? db_ref[c] : db0[c], 1e-6 * (10.0 + static_cast<double>(out_elems)));
        }
        EXPECT_EQ(dx.back(), -7.f);
        EXPECT_EQ(dwt.back(), -7.f);
        EXPECT_EQ(db.back(), -7.f);
      }
    }
  });
}

// A 1x1 conv with fewer output than input channels (or K a multiple of 32) computes its
// filter gradient as dY^T X (dw_direct): the same products summed in the same order as X^T dY, so the same bits;
// grouped, with channel tails, 2 threads.
TEST(ConvBackwardFast, FilterGradientOrientationsAreBitIdentical) {
  for (const Case& cs : {Case{3, 9, 7, 40, 24, 1, 1, 1, 0, 1}, Case{2, 6, 6, 34, 10, 1, 1, 1, 0, 2}}) {
    const Conv2dParams p = make_params(cs);
    SCOPED_TRACE("in_c=" + std::to_string(p.in_c) + " out_c=" + std::to_string(p.out_c));
    auto plan = prepare_f32_conv2d_backward_fast(p);
    ASSERT_TRUE(plan.has_value());
    ASSERT_TRUE(plan->dw_direct);
    const size_t in_elems = static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c;
    const size_t out_elems = static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c;
    const size_t w_elems = static_cast<size_t>(p.out_c) * (p.in_c / p.groups);
    const auto x = random_f32(in_elems, 1), w = random_f32(w_elems, 2), dy = random_f32(out_elems, 3);
    std::vector<float> dw_ref(w_elems, 0.f);
    f32_conv2d_backward__ref(p, x.data(), w.data(), dy.data(), nullptr, dw_ref.data(), nullptr);
    ThreadPool pool(2);
    std::vector<float> dws[2];
    for (bool direct : {true, false}) {
      F32Conv2dBackwardPlan q = *plan;
      q.dw_direct = direct;
      std::vector<float> scratch(q.scratch_elems), dw(w_elems, 0.f);
      f32_conv2d_backward_fast(q, p.batch, x.data(), w.data(), dy.data(), nullptr, dw.data(), nullptr,
                               scratch.data(), &pool);
      for (size_t i = 0; i < w_elems; ++i) ASSERT_NEAR(dw[i], dw_ref[i], 1e-4) << "direct " << direct << " dw " << i;
      dws[direct ? 0 : 1] = dw;
    }
    EXPECT_EQ(std::memcmp(dws[0].data(), dws[1].data(), w_elems * sizeof(float)), 0);
  }
}

// The input, filter and bias gradients of two runs, out[0] and out[1], are the same bits.
void expect_same_gradients(const std::vector<float> (&out)[2][3], const std::string& what) {
  for (int g = 0; g < 3; ++g) {
    ASSERT_EQ(out[0][g].size(), out[1][g].size());
    EXPECT_EQ(std::memcmp(out[0][g].data(), out[1][g].data(), out[0][g].size() * sizeof(float)), 0)
        << "gradient " << g << " " << what;
  }
}

// A batch norm's input gradient computed a chunk at a time inside a 1x1 conv's backward
// (F32BnOutputGrad) gives the same bits as f32_bn_grad_input written out and passed as dY:
// chunks across images (7x7 images, 256-row chunks), several slices, a channel tail, with and
// without the fused relu6 clamp, 1 and 2 threads, dX assigned and accumulated.
TEST(ConvBackwardFast, BatchNormOutputGradientIsBitIdentical) {
  for (const Case& cs : {Case{11, 7, 7, 40, 24, 1, 1, 1, 0, 1}, Case{3, 16, 16, 16, 35, 1, 1, 1, 0, 1}}) {
    const Conv2dParams p = make_params(cs);
    SCOPED_TRACE("in_c=" + std::to_string(p.in_c) + " out_c=" + std::to_string(p.out_c));
    auto plain = prepare_f32_conv2d_backward_fast(p);
    auto fused = prepare_f32_conv2d_backward_fast(p, /*bn_output_grad=*/true);
    ASSERT_TRUE(plain.has_value() && fused.has_value());
    ASSERT_TRUE(fused->bn_output_grad);
    ASSERT_FALSE(plain->bn_output_grad);
    const size_t C = static_cast<size_t>(p.out_c);
    const size_t rows = static_cast<size_t>(p.batch) * p.out_h * p.out_w;
    const size_t in_elems = static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c;
    const size_t w_elems = C * p.kernel_h * p.kernel_w * static_cast<size_t>(p.in_c / p.groups);
    const auto x = random_f32(in_elems, 1), w = random_f32(w_elems, 2);
    auto bn_x = random_f32(rows * C, 3);
    const auto bn_dy = random_f32(rows * C, 4), gamma = random_f32(C, 5), beta = random_f32(C, 6);
    std::vector<float> mean(C), invstd(C), coef(C), mdy(C), mdyx(C), scale(C), shift(C);
    for (size_t k = 0; k < C; ++k) {
      mean[k] = 0.1f * gamma[k];
      invstd[k] = 1.5f + beta[k];
      coef[k] = gamma[k] * invstd[k];
      mdy[k] = 0.01f * beta[k];
      mdyx[k] = 0.02f * gamma[k];
      scale[k] = 3.f * invstd[k] * gamma[k];
      shift[k] = 3.f * beta[k];
    }
    for (bool clamped : {false, true}) {
      const BnFusedClamp clamp = clamped ? BnFusedClamp{scale.data(), shift.data(), 0.f, 6.f} : BnFusedClamp{};
      std::vector<float> dy(rows * C);
      f32_bn_grad_input(rows, C, bn_x.data(), bn_dy.data(), mean.data(), invstd.data(), clamp, coef.data(),
                        mdy.data(), mdyx.data(), dy.data(), /*accumulate=*/false);
      const F32BnOutputGrad bn{bn_x.data(), bn_dy.data(), mean.data(), invstd.data(), clamp,
                               coef.data(),  mdy.data(),   mdyx.data()};
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        for (bool assign : {true, false}) {
          std::vector<float> out[2][3];  // plain, fused: dx, dw, db
          for (int f = 0; f < 2; ++f) {
            const F32Conv2dBackwardPlan& plan = f == 0 ? *plain : *fused;
            std::vector<float> scratch(plan.scratch_elems);
            std::vector<float> dx(in_elems, 0.5f), dw(w_elems, 0.f), db(C, 0.f);
            f32_conv2d_backward_fast(plan, p.batch, x.data(), w.data(), f == 0 ? dy.data() : nullptr, dx.data(),
                                     dw.data(), db.data(), scratch.data(), &pool, assign, f == 0 ? nullptr : &bn);
            out[f][0] = dx;
            out[f][1] = dw;
            out[f][2] = db;
          }
          expect_same_gradients(out, "clamped " + std::to_string(clamped) + " threads " + std::to_string(threads) +
                                         " assign " + std::to_string(assign));
        }
      }
    }
  }
}

// A depthwise conv whose input is a batch norm's output recomputed a band of rows at a time
// from the batch norm's input (bn_input) gives the same bits as that output written out
// (f32_rows_scale_shift) and passed as the input: 3x3 at strides 1 and 2, padding 0 and 1,
// images of several bands (kDwBackwardBandRows output rows each) and of one, channel tails,
// several slices, 1 and 2 threads, dX assigned and accumulated, the filter gradient alone, on
// every target. Shapes without the band path do not take it (plan.bn_input false).
TEST(ConvBackwardDepthwise, BatchNormInputIsBitIdenticalEveryTarget) {
  const Case cases[] = {Case{3, 21, 10, 7, 7, 3, 1, 1, 1, 7},  Case{3, 22, 9, 35, 35, 3, 2, 1, 0, 35},
                        Case{2, 19, 8, 16, 16, 3, 2, 1, 1, 16}, Case{9, 4, 5, 20, 20, 3, 1, 1, 0, 20}};
  testing::for_each_hwy_target([&](const char* isa) {
    SCOPED_TRACE(std::string("isa ") + isa);
    for (const Case& cs : cases) {
      const Conv2dParams p = make_params(cs);
      SCOPED_TRACE("h=" + std::to_string(p.in_h) + " c=" + std::to_string(p.in_c) + " s=" + std::to_string(p.stride_h));
      auto plain = prepare_f32_conv2d_backward_fast(p);
      auto fused = prepare_f32_conv2d_backward_fast(p, false, /*bn_input=*/true);
      ASSERT_TRUE(plain.has_value() && fused.has_value());
      ASSERT_TRUE(fused->bn_input);
      ASSERT_FALSE(plain->bn_input);
      const size_t C = static_cast<size_t>(p.in_c);
      const size_t in_elems = static_cast<size_t>(p.batch) * p.in_h * p.in_w * C;
      const size_t out_elems = static_cast<size_t>(p.batch) * p.out_h * p.out_w * C;
      const auto x = random_f32(in_elems, 1, -3.f, 9.f), w = random_f32(9 * C, 2), dy = random_f32(out_elems, 3);
      const auto scale = random_f32(C, 4, 0.25f, 2.f), shift = random_f32(C, 5);
      const BnFusedClamp affine{scale.data(), shift.data(), 0.f, 6.f};
      std::vector<float> y(in_elems);  // the batch norm's output
      f32_rows_scale_shift(in_elems / C, C, x.data(), scale.data(), shift.data(), 0.f, 6.f, y.data());
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        for (int which = 0; which < 3; ++which) {  // dx assigned, dx accumulated, the filter gradient alone
          std::vector<float> out[2][3];  // plain, fused: dx, dw, db
          for (int f = 0; f < 2; ++f) {
            const F32Conv2dBackwardPlan& plan = f == 0 ? *plain : *fused;
            std::vector<float> scratch(plan.scratch_elems + 1, -7.f);
            std::vector<float> dx(in_elems, 0.5f), dw(9 * C, 0.f), db(C, 0.f);
            f32_conv2d_backward_fast(plan, p.batch, f == 0 ? y.data() : x.data(), w.data(), dy.data(),
                                     which < 2 ? dx.data() : nullptr, dw.data(), which < 2 ? db.data() : nullptr,
                                     scratch.data(), &pool, which == 0, nullptr, f == 0 ? nullptr : &affine);
            EXPECT_EQ(scratch.back(), -7.f) << "wrote past the scratch";
            out[f][0] = dx;
            out[f][1] = dw;
            out[f][2] = db;
          }
          expect_same_gradients(out, "threads " + std::to_string(threads) + " which " + std::to_string(which));
        }
      }
    }
    // No band path: a 5x5 kernel, a dilated 3x3.
    EXPECT_FALSE(prepare_f32_conv2d_backward_fast(make_params(Case{1, 9, 9, 8, 8, 5, 1, 1, 2, 8}), false, true)
                     ->bn_input);
    EXPECT_FALSE(prepare_f32_conv2d_backward_fast(make_params(Case{1, 9, 9, 8, 8, 3, 1, 2, 2, 8}), false, true)
                     ->bn_input);
  });
}

// The train-mode batch norm's own sums pass (as layers.cc runs it: f32_bn_grad_sums over 8
// slices of rows, the partials added in double in slice order) over rows of its input x and
// output gradient g: sum_dy and sum_dyx must be the same bits.
void expect_batch_norm_pass_sums(size_t rows, size_t C, const float* x, const float* g, const float* mean,
                                 const float* invstd, const BnFusedClamp& mask, const std::vector<double>& sum_dy,
                                 const std::vector<double>& sum_dyx) {
  std::vector<float> part(8 * 2 * C, 0.f);
  for (size_t s = 0; s < 8; ++s) {
    const size_t b = rows * s / 8, e = rows * (s + 1) / 8;
    f32_bn_grad_sums(e - b, C, x + b * C, g + b * C, mean, invstd, mask, part.data() + s * 2 * C,
                     part.data() + s * 2 * C + C);
  }
  for (size_t k = 0; k < C; ++k) {
    double a = 0.0, b = 0.0;
    for (size_t s = 0; s < 8; ++s) {
      a += part[s * 2 * C + k];
      b += part[s * 2 * C + C + k];
    }
    ASSERT_EQ(sum_dy[k], a) << "channel " << k;
    ASSERT_EQ(sum_dyx[k], b) << "channel " << k;
  }
}

// The batch norm's backward sums taken where the depthwise conv computes its input gradient
// (F32BnGradSums) are those of the batch norm's own pass (f32_bn_grad_sums over 8 slices of
// rows, added in double) bit for bit when the batch is a multiple of 8, with and without the
// clamp, streamed input gradient or not, channel tails, 1 and 2 threads, on every target; the
// input and filter gradients are unchanged.
TEST(ConvBackwardDepthwise, BatchNormSumsAreTheBatchNormsEveryTarget) {
  const Case cases[] = {Case{8, 9, 10, 24, 24, 3, 2, 1, 1, 24}, Case{16, 6, 5, 7, 7, 3, 1, 1, 1, 7},
                        Case{8, 64, 64, 64, 64, 3, 1, 1, 1, 64}};  // 1 MiB images: streamed dx
  testing::for_each_hwy_target([&](const char* isa) {
    SCOPED_TRACE(std::string("isa ") + isa);
    for (const Case& cs : cases) {
      const Conv2dParams p = make_params(cs);
      SCOPED_TRACE("batch=" + std::to_string(p.batch) + " c=" + std::to_string(p.in_c));
      auto plan = prepare_f32_conv2d_backward_fast(p, false, /*bn_input=*/true);
      ASSERT_TRUE(plan.has_value() && plan->bn_input);
      const size_t C = static_cast<size_t>(p.in_c);
      const size_t in_elems = static_cast<size_t>(p.batch) * p.in_h * p.in_w * C;
      const size_t out_elems = static_cast<size_t>(p.batch) * p.out_h * p.out_w * C;
      const auto x = random_f32(in_elems, 1, -3.f, 9.f), w = random_f32(9 * C, 2), dy = random_f32(out_elems, 3);
      const auto scale = random_f32(C, 4, 0.25f, 2.f), shift = random_f32(C, 5), mean = random_f32(C, 6);
      const auto invstd = random_f32(C, 7, 0.5f, 2.f);
      for (bool clamped : {true, false}) {
        const float lo = clamped ? 0.f : -std::numeric_limits<float>::infinity();
        const float hi = clamped ? 6.f : std::numeric_limits<float>::infinity();
        const BnFusedClamp affine{scale.data(), shift.data(), lo, hi};
        for (int threads : {1, 2}) {
          ThreadPool pool(threads);
          AlignedBuffer dx_buf[2] = {AlignedBuffer(in_elems * sizeof(float)), AlignedBuffer(in_elems * sizeof(float))};
          std::vector<float> dw[2], db[2];
          std::vector<double> sum_dy(C, -1.0), sum_dyx(C, -1.0);
          for (int f = 0; f < 2; ++f) {
            std::vector<float> scratch(plan->scratch_elems);
            dw[f].assign(9 * C, 0.f);
            db[f].assign(C, 0.f);
            const F32BnGradSums sums{mean.data(), invstd.data(), sum_dy.data(), sum_dyx.data()};
            f32_conv2d_backward_fast(*plan, p.batch, x.data(), w.data(), dy.data(),
                                     reinterpret_cast<float*>(dx_buf[f].data()), dw[f].data(), db[f].data(),
                                     scratch.data(), &pool, /*assign_input_grad=*/true, nullptr, &affine,
                                     f == 1 ? &sums : nullptr);
          }
          const float* dx = reinterpret_cast<const float*>(dx_buf[0].data());
          EXPECT_EQ(std::memcmp(dx, dx_buf[1].data(), in_elems * sizeof(float)), 0);
          EXPECT_EQ(dw[0], dw[1]);
          EXPECT_EQ(db[0], db[1]);
          SCOPED_TRACE("clamped " + std::to_string(clamped) + " threads " + std::to_string(threads));
          expect_batch_norm_pass_sums(in_elems / C, C, x.data(), dx, mean.data(), invstd.data(),
                                      clamped ? affine : BnFusedClamp{}, sum_dy, sum_dyx);
        }
      }
    }
  });
}

// A 1x1 conv whose input is a batch norm's output recomputed a chunk at a time (bn_input): the
// same input, filter and bias gradients as with that output written out, alone and with the
// output gradient from the batch norm after it (F32BnOutputGrad); the batch norm's sums
// (F32BnGradSums) are its own pass's bit for bit at a batch of 8. Chunks across images (several
// per slice), a channel tail, 1 and 2 threads.
TEST(ConvBackwardFast, BatchNormInput1x1IsBitIdentical) {
  for (const Case& cs : {Case{8, 24, 24, 35, 24, 1, 1, 1, 0, 1}, Case{3, 7, 7, 16, 40, 1, 1, 1, 0, 1}}) {
    const Conv2dParams p = make_params(cs);
    SCOPED_TRACE("batch=" + std::to_string(p.batch) + " in_c=" + std::to_string(p.in_c));
    const size_t Ci = static_cast<size_t>(p.in_c), Co = static_cast<size_t>(p.out_c);
    const size_t rows = static_cast<size_t>(p.batch) * p.in_h * p.in_w;
    const auto x = random_f32(rows * Ci, 1, -3.f, 9.f), w = random_f32(Co * Ci, 2), dy = random_f32(rows * Co, 3);
    const auto scale = random_f32(Ci, 4, 0.25f, 2.f), shift = random_f32(Ci, 5), mean = random_f32(Ci, 6);
    const auto invstd = random_f32(Ci, 7, 0.5f, 2.f);
    const BnFusedClamp affine{scale.data(), shift.data(), 0.f, 6.f};
    std::vector<float> y(rows * Ci);
    f32_rows_scale_shift(rows, Ci, x.data(), scale.data(), shift.data(), 0.f, 6.f, y.data());
    // The batch norm after the conv, for the output gradient: its input, gradient and factors.
    const auto bx = random_f32(rows * Co, 8), bdy = random_f32(rows * Co, 9), f = random_f32(Co, 10);
    const F32BnOutputGrad out_bn{bx.data(), bdy.data(), f.data(), f.data(), BnFusedClamp{}, f.data(), f.data(),
                                 f.data()};
    for (bool with_out_bn : {false, true}) {
      auto plain = prepare_f32_conv2d_backward_fast(p, with_out_bn);
      auto fused = prepare_f32_conv2d_backward_fast(p, with_out_bn, /*bn_input=*/true);
      ASSERT_TRUE(plain.has_value() && fused.has_value());
      ASSERT_TRUE(fused->bn_input);
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        std::vector<float> out[2][3];
        std::vector<double> sum_dy(Ci, -1.0), sum_dyx(Ci, -1.0);
        for (int v = 0; v < 2; ++v) {
          const F32Conv2dBackwardPlan& plan = v == 0 ? *plain : *fused;
          std::vector<float> scratch(plan.scratch_elems);
          std::vector<float> dx(rows * Ci, 0.5f), dw(Co * Ci, 0.f), db(Co, 0.f);
          const F32BnGradSums sums{mean.data(), invstd.data(), sum_dy.data(), sum_dyx.data()};
          f32_conv2d_backward_fast(plan, p.batch, v == 0 ? y.data() : x.data(), w.data(), dy.data(), dx.data(),
                                   dw.data(), db.data(), scratch.data(), &pool, /*assign=*/true,
                                   with_out_bn ? &out_bn : nullptr, v == 0 ? nullptr : &affine,
                                   v == 0 ? nullptr : &sums);
          out[v][0] = dx;
          out[v][1] = dw;
          out[v][2] = db;
        }
        expect_same_gradients(out, "threads " + std::to_string(threads) + " out_bn " + std::to_string(with_out_bn));
        if (p.batch % 8 != 0) continue;  // the sums match the batch norm's pass at multiples of 8
        expect_batch_norm_pass_sums(rows, Ci, x.data(), out[0][0].data(), mean.data(), invstd.data(), affine, sum_dy,
                                    sum_dyx);
      }
    }
  }
}

// An assigned input gradient of 1 MiB or more per image, 64 or more channels, is written with
// non-temporal stores when dx is vector-aligned: the same values as the plain stores (dx one
// float off alignment) and as the reference, nothing written past the image.
TEST(ConvBackwardDepthwise, StreamedInputGradientEveryTarget) {
  const Case cases[] = {Case{1, 64, 64, 64, 64, 3, 1, 1, 1, 64}, Case{1, 66, 62, 80, 80, 3, 2, 1, 1, 80}};
  testing::for_each_hwy_target([&](const char* isa) {
    SCOPED_TRACE(std::string("isa ") + isa);
    for (const Case& cs : cases) {
      Conv2dParams p = make_params(cs);
      p.groups = p.in_c;
      SCOPED_TRACE("c=" + std::to_string(p.in_c) + " stride=" + std::to_string(p.stride_h));
      const size_t in_elems = static_cast<size_t>(p.in_h) * p.in_w * p.in_c;
      const size_t out_elems = static_cast<size_t>(p.out_h) * p.out_w * p.out_c;
      const size_t w_elems = 9 * static_cast<size_t>(p.out_c);
      const auto x = random_f32(in_elems, 1), w = random_f32(w_elems, 2), dy = random_f32(out_elems, 3);
      std::vector<float> dx_ref(in_elems, 0.f);
      f32_conv2d_backward__ref(p, x.data(), w.data(), dy.data(), dx_ref.data(), nullptr, nullptr);
      std::vector<float> wt(w_elems);
      for (size_t c = 0; c < static_cast<size_t>(p.out_c); ++c) {
        for (size_t t = 0; t < 9; ++t) wt[t * p.out_c + c] = w[c * 9 + t];
      }
      std::vector<float> plain;
      for (size_t offset : {size_t{1}, size_t{0}}) {  // unaligned (plain stores) first
        AlignedBuffer buf((in_elems + 2) * sizeof(float));
        float* dx = reinterpret_cast<float*>(buf.data()) + offset;
        std::fill(dx, dx + in_elems, std::numeric_limits<float>::quiet_NaN());
        dx[in_elems] = -7.f;
        f32_dwconv_backward_image(p, x.data(), dy.data(), wt.data(), dx, nullptr, nullptr, /*assign_dx=*/true);
        for (size_t i = 0; i < in_elems; ++i) ASSERT_NEAR(dx[i], dx_ref[i], 1e-5 * 10) << "offset " << offset << " dx " << i;
        EXPECT_EQ(dx[in_elems], -7.f);
        if (offset == 1) {
          plain.assign(dx, dx + in_elems);
        } else {
          EXPECT_EQ(std::memcmp(dx, plain.data(), in_elems * sizeof(float)), 0) << "streamed != plain";
        }
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvBackwardFast,
    ::testing::Values(Case{1, 5, 5, 1, 1, 1, 1, 1, 0, 1},      // 1x1 direct
                      Case{3, 7, 6, 17, 9, 1, 1, 1, 0, 1},     // 1x1 direct, tails
                      Case{2, 8, 8, 16, 33, 1, 2, 1, 0, 1},    // 1x1 stride 2 (im2col)
                      Case{2, 9, 9, 3, 16, 3, 1, 1, 0, 1},     // 3x3 valid
                      Case{2, 9, 7, 8, 15, 3, 2, 1, 1, 1},     // 3x3 stride 2 pad 1
                      Case{9, 6, 6, 5, 7, 3, 1, 2, 2, 1},      // dilation 2, 9 images (8 slices)
                      Case{2, 8, 8, 8, 12, 3, 1, 1, 1, 4},     // grouped
                      Case{2, 7, 7, 4, 6, 1, 1, 1, 0, 2},      // grouped 1x1
                      Case{3, 9, 9, 17, 17, 3, 1, 1, 1, 17},   // depthwise
                      Case{2, 10, 10, 32, 32, 3, 2, 1, 1, 32}, // depthwise stride 2
                      Case{2, 6, 6, 5, 10, 3, 1, 1, 1, 5},     // depthwise multiplier 2
                      Case{2, 11, 11, 8, 8, 5, 2, 1, 2, 8},    // depthwise 5x5
                      Case{1, 40, 40, 32, 64, 3, 1, 1, 1, 1},  // several row chunks
                      Case{3, 20, 20, 13, 24, 1, 1, 1, 0, 1},  // 1x1 direct, 1200 rows, partial tiles
                      Case{4, 20, 20, 64, 40, 3, 1, 1, 1, 1},
                      Case{2, 7, 9, 120, 24, 1, 1, 1, 0, 1},   // 1x1, K = 120: AVX-512's 6x64 tile, partial panel
                      Case{16, 7, 7, 32, 80, 1, 1, 1, 0, 1},   // 1x1, K = 32 < og: dY^T X; 2-image chunks
                      Case{16, 15, 15, 24, 40, 1, 1, 1, 0, 1}, // 1x1, a chunk across an image boundary
                      Case{17, 5, 5, 64, 96, 1, 1, 1, 0, 2},   // grouped 1x1, K = 32 a group, uneven slices
                      // Filter-gradient reductions large enough to run on the pool: contiguous
                      // (og, K) partials, transposed (K, og) ones (1x1 and 3x3), depthwise.
                      Case{16, 3, 3, 160, 256, 1, 1, 1, 0, 1}, Case{16, 2, 2, 40, 1700, 1, 1, 1, 0, 1},
                      Case{16, 6, 6, 24, 64, 3, 1, 1, 1, 1}, Case{16, 6, 6, 1024, 1024, 3, 1, 1, 1, 1024}));

}  // namespace
}  // namespace pcv::kernels

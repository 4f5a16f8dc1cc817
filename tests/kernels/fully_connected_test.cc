#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/fully_connected/fully_connected.h"
#include "kernels/fully_connected/fully_connected_backward.h"
#include "kernels/kernel_test_util.h"

namespace pcv::kernels {
namespace {

using testing::ideal_q8;

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(FullyConnected, F32Hand) {
  FullyConnectedParams p{2, 3, 2};
  const std::vector<float> x = {1, 2, 3, -1, 0, 1};
  const std::vector<float> w = {1, 0, -1, 2, 2, 2};
  const std::vector<float> b = {0.5f, -1};
  std::vector<float> y(4);
  f32_fully_connected__ref(p, x.data(), w.data(), b.data(), -kInf, kInf, y.data());
  EXPECT_EQ(y, (std::vector<float>{-1.5f, 11, -1.5f, -1}));
  f32_fully_connected__ref(p, x.data(), w.data(), b.data(), 0.0f, 6.0f, y.data());
  EXPECT_EQ(y, (std::vector<float>{0, 6, 0, 0}));
  f32_fully_connected__ref(p, x.data(), w.data(), nullptr, -kInf, kInf, y.data());
  EXPECT_EQ(y, (std::vector<float>{-2, 12, -2, 0}));
}

TEST(FullyConnected, Qs8HandPerChannel) {
  FullyConnectedParams p{1, 2, 2};
  const int8_t x[2] = {3, -1};          // minus zp 1: (2, -2)
  const int8_t w[4] = {4, 1, -3, 10};   // o0: 8 - 2 = 6; o1: -6 - 20 = -26
  const int32_t b[2] = {10, 0};         // o0: 16; o1: -26
  const QuantizedMultiplier rq[2] = {quantize_multiplier(0.25), quantize_multiplier(0.5)};
  QuantFullyConnectedParams q;
  q.input_zero_point = 1;
  q.output_zero_point = -2;
  q.requant = rq;
  int8_t y[2];
  qs8_fully_connected__ref(p, q, x, w, b, y);
  EXPECT_EQ(y[0], 4 - 2);    // 16 * 0.25
  EXPECT_EQ(y[1], -13 - 2);  // -26 * 0.5
  q.act_min = -3;            // fused clamp
  qs8_fully_connected__ref(p, q, x, w, b, y);
  EXPECT_EQ(y[1], -3);
}

TEST(FullyConnected, Qs8WithinOneStepOfFloat) {
  FullyConnectedParams p{3, 37, 9};
  const auto x = testing::random_s8(p.batch * p.in_features, 7);
  const auto w = testing::random_s8(p.out_features * p.in_features, 8, -127, 127);
  const auto b = testing::random_s32(p.out_features, 9, -5000, 5000);
  const float si = 0.05f, so = 0.5f;
  const int32_t zi = 12, zo = -7;
  std::vector<float> ws(p.out_features);
  for (int o = 0; o < p.out_features; ++o) ws[o] = 0.002f * (o + 1);
  std::vector<QuantizedMultiplier> rq(p.out_features);
  compute_channel_requant(si, ws.data(), p.out_features, so, rq.data());
  QuantFullyConnectedParams q;
  q.input_zero_point = zi;
  q.output_zero_point = zo;
  q.requant = rq.data();
  std::vector<int8_t> y(p.batch * p.out_features);
  qs8_fully_connected__ref(p, q, x.data(), w.data(), b.data(), y.data());
  for (int n = 0; n < p.batch; ++n) {
    for (int o = 0; o < p.out_features; ++o) {
      double acc = b[o];
      for (int i = 0; i < p.in_features; ++i) {
        acc += (x[n * p.in_features + i] - zi) * static_cast<double>(w[o * p.in_features + i]);
      }
      const int32_t want = ideal_q8(acc * si * ws[o], so, zo);
      EXPECT_LE(std::abs(y[n * p.out_features + o] - want), 1) << n << "," << o;
    }
  }
}

// Training's fully connected (weights read in place): forward and backward against the
// reference loops, every target, tails of batch / in / out, with and without a pool. The
// backward ACCUMULATES: the gradient buffers start with values in them. Tolerance: the sums of
// `terms` products of magnitude <= 1 run in another order, so 1e-6 per term.
TEST(FullyConnectedTrain, UnpackedForwardAndBackwardMatchReference) {
  ThreadPool pool2(2);
  testing::for_each_hwy_target([&](const char* isa) {
    for (int batch : {1, 3, 32}) {
      for (int in : {1, 7, 33, 300}) {
        for (int out : {1, 5, 16, 40}) {
          for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool2}) {
            SCOPED_TRACE(std::string(isa) + " batch " + std::to_string(batch) + " in " + std::to_string(in) +
                         " out " + std::to_string(out) + (tp ? " 2 threads" : ""));
            FullyConnectedParams p{batch, in, out};
            std::mt19937 rng(static_cast<uint32_t>(batch * 1000 + in * 10 + out));
            std::uniform_real_distribution<float> dist(-1.f, 1.f);
            auto rnd = [&](size_t n) {
              std::vector<float> v(n);
              for (float& e : v) e = dist(rng);
              return v;
            };
            const size_t nx = static_cast<size_t>(batch) * in, nw = static_cast<size_t>(out) * in,
                         ny = static_cast<size_t>(batch) * out;
            const std::vector<float> x = rnd(nx), w = rnd(nw), b = rnd(out), dy = rnd(ny);
            const float tol = 1e-6f;  // per term
            F32FullyConnectedBackwardScratch s;
            std::vector<float> want(ny), got(ny + 1, 9.f);
            f32_fully_connected__ref(p, x.data(), w.data(), b.data(), -kInf, kInf, want.data());
            f32_fully_connected_forward_unpacked(p, x.data(), w.data(), b.data(), got.data(), &s, tp);
            ASSERT_EQ(got.back(), 9.f) << "wrote past y";
            for (size_t i = 0; i < ny; ++i) ASSERT_NEAR(got[i], want[i], tol * (in + 1)) << "y " << i;
            const std::vector<float> dx0 = rnd(nx), dw0 = rnd(nw), db0 = rnd(out);
            std::vector<float> dx = dx0, dw = dw0, db = db0, rdx = dx0, rdw = dw0, rdb = db0;
            f32_fully_connected_backward__ref(p, x.data(), w.data(), dy.data(), rdx.data(), rdw.data(), rdb.data());
            f32_fully_connected_backward_fast(p, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data(), &s, tp);
            for (size_t i = 0; i < nx; ++i) ASSERT_NEAR(dx[i], rdx[i], tol * (out + 1)) << "dx " << i;
            for (size_t i = 0; i < nw; ++i) ASSERT_NEAR(dw[i], rdw[i], tol * (batch + 1)) << "dw " << i;
            for (int i = 0; i < out; ++i) ASSERT_NEAR(db[i], rdb[i], tol * (batch + 1)) << "db " << i;
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace pcv::kernels

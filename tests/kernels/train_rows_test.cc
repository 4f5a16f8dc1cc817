// Training row kernels (kernels/train/train_rows.h) on every compiled Highway target against
// plain loops: channel counts around every vector width (tails, the register and the
// in-memory sum paths) and a guard after every output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "base/aligned.h"
#include "kernel_test_util.h"
#include "kernels/train/train_rows.h"

namespace pcv::kernels {
namespace {

using testing::random_f32;

constexpr float kGuard = -12345.f;
const size_t kChannels[] = {1, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 64, 65, 96, 130};
const size_t kRows[] = {1, 5, 37};

// fn() on every target, traced with its name.
template <class Fn>
void for_each_target(Fn fn) {
  testing::for_each_hwy_target([&](const char* isa) {
    SCOPED_TRACE(std::string("isa ") + isa);
    fn();
  });
}

// |got - want| within a few float ulps of `mag`, the sum of the magnitudes that were added
// (fused multiply-adds or not change the rounding, never more).
void expect_close(float got, double want, double mag, size_t terms, const std::string& what) {
  EXPECT_NEAR(got, want, 4.0 * static_cast<double>(terms + 1) * 1.2e-7 * std::max(mag, 1e-30)) << what;
}

TEST(TrainRows, ElementwiseEveryTarget) {
  for_each_target([] {
    for (size_t n : {1, 7, 8, 9, 16, 17, 33, 100}) {
      SCOPED_TRACE("n=" + std::to_string(n));
      std::vector<float> y = random_f32(n, 1, -2.f, 8.f), dy = random_f32(n, 2);
      y[0] = 0.f;  // the kinks carry no gradient
      if (n > 1) y[1] = 6.f;
      std::vector<float> masked = dy;
      masked.push_back(kGuard);
      f32_clamp_grad_mask(n, y.data(), 0.f, 6.f, masked.data());
      std::vector<float> dx0 = random_f32(n + 1, 3);
      dx0[n] = kGuard;
      std::vector<float> dx = dx0, dx6 = dx0, sum = dx0;
      f32_window_grad_acc(n, y.data(), 0.f, std::numeric_limits<float>::infinity(), dy.data(), dx.data());
      f32_window_grad_acc(n, y.data(), 0.f, 6.f, dy.data(), dx6.data());
      f32_add_inplace(n, dy.data(), sum.data());
      for (size_t i = 0; i < n; ++i) {
        EXPECT_EQ(masked[i], (y[i] > 0.f && y[i] < 6.f) ? dy[i] : 0.f) << i;
        EXPECT_EQ(dx[i], dx0[i] + (y[i] > 0.f ? dy[i] : 0.f)) << i;
        EXPECT_EQ(dx6[i], dx0[i] + ((y[i] > 0.f && y[i] < 6.f) ? dy[i] : 0.f)) << i;
        EXPECT_EQ(sum[i], dx0[i] + dy[i]) << i;
      }
      EXPECT_EQ(masked[n], kGuard);
      EXPECT_EQ(dx[n], kGuard);
      EXPECT_EQ(dx6[n], kGuard);
      EXPECT_EQ(sum[n], kGuard);
    }
  });
}

TEST(TrainRows, ColumnSumsEveryTarget) {
  for_each_target([] {
    for (size_t c : kChannels) {
      for (size_t rows : kRows) {
        SCOPED_TRACE("c=" + std::to_string(c) + " rows=" + std::to_string(rows));
        const size_t n = rows * c;
        const std::vector<float> x = random_f32(n, 10 + static_cast<uint32_t>(c), -3.f, 5.f);
        const std::vector<float> dy = random_f32(n, 20 + static_cast<uint32_t>(rows));
        const std::vector<float> mean = random_f32(c, 4), invstd = random_f32(c, 5, 0.5f, 2.f);
        std::vector<float> acc0 = random_f32(c + 1, 9);
        acc0[c] = kGuard;

        // Plain sums are adds in row order: exactly the scalar loop's floats.
        std::vector<float> sums = acc0, sdy = acc0, sdyx = acc0, s1 = acc0, s2 = acc0;
        f32_column_sums(rows, c, x.data(), sums.data());
        f32_bn_grad_sums(rows, c, x.data(), dy.data(), mean.data(), invstd.data(), BnFusedClamp{}, sdy.data(),
                         sdyx.data());
        f32_column_shifted_moments(rows, c, x.data(), mean.data(), s1.data(), s2.data());
        // The cached form (sums in registers over the rows): the same floats.
        std::vector<float> c1 = acc0, c2 = acc0;
        f32_column_shifted_moments(rows, c, x.data(), mean.data(), c1.data(), c2.data(), /*cached=*/true);
        EXPECT_EQ(c1, s1);
        EXPECT_EQ(c2, s2);
        for (size_t k = 0; k < c; ++k) {
          float want_x = acc0[k], want_dy = acc0[k];
          double want_s1 = acc0[k], mag_s1 = std::fabs(acc0[k]), want_s2 = acc0[k], mag_s2 = std::fabs(acc0[k]);
          double want_dyx = acc0[k], mag_dyx = std::fabs(acc0[k]);
          for (size_t r = 0; r < rows; ++r) {
            want_x += x[r * c + k];
            want_dy += dy[r * c + k];
            const double d = static_cast<double>(x[r * c + k]) - mean[k];
            want_s1 += d;
            mag_s1 += std::fabs(d);
            want_s2 += d * d;
            mag_s2 += d * d;
            want_dyx += static_cast<double>(dy[r * c + k]) * d * invstd[k];
            mag_dyx += std::fabs(static_cast<double>(dy[r * c + k]) * d * invstd[k]);
          }
          EXPECT_EQ(sums[k], want_x) << "column sum k=" << k;
          EXPECT_EQ(sdy[k], want_dy) << "sum dy k=" << k;
          expect_close(s1[k], want_s1, mag_s1, rows, "shifted sum k=" + std::to_string(k));
          expect_close(s2[k], want_s2, mag_s2, rows, "shifted squares k=" + std::to_string(k));
          expect_close(sdyx[k], want_dyx, mag_dyx, rows, "sum dy*xhat k=" + std::to_string(k));
        }
        EXPECT_EQ(sums[c], kGuard);
        EXPECT_EQ(sdy[c], kGuard);
        EXPECT_EQ(sdyx[c], kGuard);
        EXPECT_EQ(s1[c], kGuard);
        EXPECT_EQ(s2[c], kGuard);
      }
    }
  });
}

TEST(TrainRows, RowMapsEveryTarget) {
  for_each_target([] {
    for (size_t c : kChannels) {
      for (size_t rows : kRows) {
        SCOPED_TRACE("c=" + std::to_string(c) + " rows=" + std::to_string(rows));
        const size_t n = rows * c;
        const std::vector<float> x = random_f32(n, 30 + static_cast<uint32_t>(c), -3.f, 5.f);
        const std::vector<float> dy = random_f32(n, 40 + static_cast<uint32_t>(rows));
        const std::vector<float> mean = random_f32(c, 4), invstd = random_f32(c, 5, 0.5f, 2.f);
        const std::vector<float> scale = random_f32(c, 6), shift = random_f32(c, 7);
        const std::vector<float> mdy = random_f32(c, 8), mdyx = random_f32(c, 9);
        std::vector<float> base = random_f32(n + 1, 11);
        base[n] = kGuard;
        std::vector<float> y(n + 1, kGuard), acc = base, dx = base;
        const float inf = std::numeric_limits<float>::infinity();
        f32_rows_scale_shift(rows, c, x.data(), scale.data(), shift.data(), -inf, inf, y.data());
        f32_rows_scale_acc(rows, c, dy.data(), scale.data(), acc.data());
        f32_bn_grad_input(rows, c, x.data(), dy.data(), mean.data(), invstd.data(), BnFusedClamp{}, scale.data(),
                          mdy.data(), mdyx.data(), dx.data());
        // Assigning: the buffer's contents (NaN here) are never read.
        std::vector<float> assigned(n + 1, std::numeric_limits<float>::quiet_NaN());
        assigned[n] = kGuard;
        f32_bn_grad_input(rows, c, x.data(), dy.data(), mean.data(), invstd.data(), BnFusedClamp{}, scale.data(),
                          mdy.data(), mdyx.data(), assigned.data(), /*accumulate=*/false);
        for (size_t r = 0; r < rows; ++r) {
          for (size_t k = 0; k < c; ++k) {
            const size_t i = r * c + k;
            const double sx = static_cast<double>(x[i]) * scale[k];
            expect_close(y[i], sx + shift[k], std::fabs(sx) + std::fabs(shift[k]), 1, "scale_shift " + std::to_string(i));
            const double sd = static_cast<double>(dy[i]) * scale[k];
            expect_close(acc[i], base[i] + sd, std::fabs(sd) + std::fabs(base[i]), 1, "scale_acc " + std::to_string(i));
            const double xhat = (static_cast<double>(x[i]) - mean[k]) * invstd[k];
            const double g = dy[i] - static_cast<double>(mdy[k]) - xhat * mdyx[k];
            const double mag = std::fabs(scale[k]) * (std::fabs(dy[i]) + std::fabs(mdy[k]) + std::fabs(xhat * mdyx[k])) + std::fabs(base[i]);
            expect_close(dx[i], base[i] + scale[k] * g, mag, 3, "grad_input " + std::to_string(i));
            expect_close(assigned[i], scale[k] * g, mag - std::fabs(base[i]), 3, "grad_input assigned " + std::to_string(i));
          }
        }
        EXPECT_EQ(y[n], kGuard);
        EXPECT_EQ(acc[n], kGuard);
        EXPECT_EQ(dx[n], kGuard);
        EXPECT_EQ(assigned[n], kGuard);
      }
    }
  });
}

// Non-temporal stores write the same values: into a 64-byte aligned output (every vector
// aligned when c is a multiple of the lanes: the streaming path) and one float past it (never
// aligned: the plain path), with and without a fused clamp; nothing past the output is written.
TEST(TrainRows, StreamingStoresWriteTheSameValuesEveryTarget) {
  for_each_target([] {
    for (size_t c : kChannels) {
      for (size_t rows : kRows) {
        SCOPED_TRACE("c=" + std::to_string(c) + " rows=" + std::to_string(rows));
        const size_t n = rows * c;
        const std::vector<float> x = random_f32(n, 80 + static_cast<uint32_t>(c), -4.f, 8.f);
        const std::vector<float> dy = random_f32(n, 90 + static_cast<uint32_t>(rows));
        const std::vector<float> mean = random_f32(c, 12), invstd = random_f32(c, 13, 0.5f, 2.f);
        const std::vector<float> scale = random_f32(c, 14), shift = random_f32(c, 15);
        const std::vector<float> mdy = random_f32(c, 16), mdyx = random_f32(c, 17);
        const BnFusedClamp clamps[] = {BnFusedClamp{}, BnFusedClamp{scale.data(), shift.data(), 0.f, 6.f}};
        for (const BnFusedClamp& clamp : clamps) {
          const float lo = clamp.scale ? clamp.lo : -std::numeric_limits<float>::infinity();
          const float hi = clamp.scale ? clamp.hi : std::numeric_limits<float>::infinity();
          std::vector<float> y(n), dx(n);
          f32_rows_scale_shift(rows, c, x.data(), scale.data(), shift.data(), lo, hi, y.data());
          f32_bn_grad_input(rows, c, x.data(), dy.data(), mean.data(), invstd.data(), clamp, scale.data(),
                            mdy.data(), mdyx.data(), dx.data(), /*accumulate=*/false);
          for (size_t offset : {size_t{0}, size_t{1}}) {
            SCOPED_TRACE("offset=" + std::to_string(offset) + (clamp.scale ? " clamp" : ""));
            AlignedBuffer ys((n + 2) * sizeof(float)), dxs((n + 2) * sizeof(float));
            float* yo = reinterpret_cast<float*>(ys.data()) + offset;
            float* dxo = reinterpret_cast<float*>(dxs.data()) + offset;
            yo[n] = kGuard;
            dxo[n] = kGuard;
            f32_rows_scale_shift(rows, c, x.data(), scale.data(), shift.data(), lo, hi, yo, /*stream=*/true);
            f32_bn_grad_input(rows, c, x.data(), dy.data(), mean.data(), invstd.data(), clamp, scale.data(),
                              mdy.data(), mdyx.data(), dxo, /*accumulate=*/false, /*stream=*/true);
            EXPECT_EQ(std::memcmp(yo, y.data(), n * sizeof(float)), 0);
            EXPECT_EQ(std::memcmp(dxo, dx.data(), n * sizeof(float)), 0);
            EXPECT_EQ(yo[n], kGuard);
            EXPECT_EQ(dxo[n], kGuard);
          }
        }
      }
    }
  });
}

// A clamp fused into the batch norm: the output is clamped, and the backward passes that
// recompute the mask from x give exactly (bit for bit) what the unfused ones give on dy
// masked by the clamped output.
TEST(TrainRows, FusedClampEqualsMaskingTheOutputEveryTarget) {
  for_each_target([] {
    for (size_t c : kChannels) {
      for (size_t rows : kRows) {
        SCOPED_TRACE("c=" + std::to_string(c) + " rows=" + std::to_string(rows));
        const size_t n = rows * c;
        std::vector<float> x = random_f32(n, 60 + static_cast<uint32_t>(c), -4.f, 4.f);
        const std::vector<float> dy = random_f32(n, 70 + static_cast<uint32_t>(rows));
        const std::vector<float> mean = random_f32(c, 4), invstd = random_f32(c, 5, 0.5f, 2.f);
        const std::vector<float> scale = random_f32(c, 6, 0.5f, 3.f), shift = random_f32(c, 7);
        const std::vector<float> mdy = random_f32(c, 8), mdyx = random_f32(c, 9);
        x[0] = (0.f - shift[0]) / scale[0];  // at (or next to) the lower kink
        std::vector<float> y(n + 1, kGuard);
        f32_rows_scale_shift(rows, c, x.data(), scale.data(), shift.data(), 0.f, 6.f, y.data());
        EXPECT_EQ(y[n], kGuard);
        std::vector<float> masked = dy;
        f32_clamp_grad_mask(n, y.data(), 0.f, 6.f, masked.data());
        size_t passed = 0;
        for (size_t i = 0; i < n; ++i) {
          ASSERT_TRUE(y[i] >= 0.f && y[i] <= 6.f) << i;
          passed += masked[i] != 0.f;
        }
        const BnFusedClamp clamp{scale.data(), shift.data(), 0.f, 6.f};
        std::vector<float> a1(c, 0.f), b1(c, 0.f), a2(c, 0.f), b2(c, 0.f);
        f32_bn_grad_sums(rows, c, x.data(), dy.data(), mean.data(), invstd.data(), clamp, a1.data(), b1.data());
        f32_bn_grad_sums(rows, c, x.data(), masked.data(), mean.data(), invstd.data(), BnFusedClamp{}, a2.data(),
                         b2.data());
        EXPECT_EQ(a1, a2);
        EXPECT_EQ(b1, b2);
        std::vector<float> dx1(n, 0.f), dx2(n, 0.f);
        f32_bn_grad_input(rows, c, x.data(), dy.data(), mean.data(), invstd.data(), clamp, scale.data(), mdy.data(),
                          mdyx.data(), dx1.data(), false);
        f32_bn_grad_input(rows, c, x.data(), masked.data(), mean.data(), invstd.data(), BnFusedClamp{}, scale.data(),
                          mdy.data(), mdyx.data(), dx2.data(), false);
        EXPECT_EQ(dx1, dx2);
        if (n >= 16) {
          EXPECT_GT(passed, 0u);
        }
      }
    }
    std::vector<float> v = {-3.f, 0.f, 2.5f, 6.f, 9.f, 1.f, -0.5f, 7.f, 3.f};
    f32_clamp_inplace(v.size() - 1, 0.f, 6.f, v.data());
    EXPECT_EQ(v, (std::vector<float>{0.f, 0.f, 2.5f, 6.f, 6.f, 1.f, 0.f, 6.f, 3.f}));
  });
}

// Max pooling with argmax against the window loop: channel tails, padding (windows partly and
// wholly outside), overlapping windows, ties (the first in window order wins) and -inf.
TEST(TrainRows, MaxPoolArgmaxEveryTarget) {
  struct Shape {
    int h, w, c, k, stride, pad;
  };
  for_each_target([] {
    for (const Shape& sh : {Shape{6, 7, 3, 2, 2, 0}, Shape{5, 5, 17, 3, 1, 1}, Shape{4, 6, 33, 3, 2, 1},
                            Shape{3, 3, 8, 2, 2, 2}}) {
      Pool2dParams p;
      p.in_h = sh.h;
      p.in_w = sh.w;
      p.channels = sh.c;
      p.kernel_h = p.kernel_w = sh.k;
      p.stride_h = p.stride_w = sh.stride;
      p.pad_top = p.pad_left = sh.pad;
      p.out_h = (sh.h + 2 * sh.pad - sh.k) / sh.stride + 1;
      p.out_w = (sh.w + 2 * sh.pad - sh.k) / sh.stride + 1;
      SCOPED_TRACE("in " + std::to_string(sh.h) + "x" + std::to_string(sh.w) + "x" + std::to_string(sh.c));
      const size_t c = static_cast<size_t>(sh.c);
      std::vector<float> x = random_f32(static_cast<size_t>(sh.h * sh.w) * c, 50 + static_cast<uint32_t>(sh.c));
      for (size_t i = 0; i < x.size(); i += 5) x[i] = 0.25f;  // ties
      for (size_t i = 3; i < x.size(); i += 11) x[i] = -std::numeric_limits<float>::infinity();
      const size_t row = static_cast<size_t>(p.out_w) * c;
      for (int oy = 0; oy < p.out_h; ++oy) {
        std::vector<float> y(row + 1, kGuard);
        std::vector<int32_t> a(row + 1, 99);
        f32_max_pool_argmax_row(p, x.data(), oy, y.data(), a.data());
        for (int ox = 0; ox < p.out_w; ++ox) {
          for (size_t k = 0; k < c; ++k) {
            float best = -std::numeric_limits<float>::infinity();
            int32_t arg = -1;
            for (int ky = 0; ky < p.kernel_h; ++ky) {
              const int iy = oy * p.stride_h - p.pad_top + ky;
              for (int kx = 0; kx < p.kernel_w; ++kx) {
                const int ix = ox * p.stride_w - p.pad_left + kx;
                if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) continue;
                const int32_t off = (iy * p.in_w + ix) * sh.c + static_cast<int32_t>(k);
                if (x[static_cast<size_t>(off)] > best) {
                  best = x[static_cast<size_t>(off)];
                  arg = off;
                }
              }
            }
            const size_t i = static_cast<size_t>(ox) * c + k;
            EXPECT_EQ(a[i], arg) << "oy " << oy << " ox " << ox << " c " << k;
            EXPECT_EQ(y[i], arg < 0 ? 0.f : best) << "oy " << oy << " ox " << ox << " c " << k;
          }
        }
        EXPECT_EQ(y[row], kGuard);
        EXPECT_EQ(a[row], 99);
      }
    }
  });
}

}  // namespace
}  // namespace pcv::kernels

// Weight packing and the threaded driver of the int8 GEMM (contract in qs8_gemm.h).
#include "kernels/gemm/qs8_gemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "base/thread_pool.h"
#include "kernels/common/requant.h"

namespace pcv::kernels {

namespace {
std::atomic<Qs8Amx>& amx_mode() {
  static std::atomic<Qs8Amx> mode{std::getenv("PCV_NO_AMX") != nullptr ? Qs8Amx::kOff : Qs8Amx::kAuto};
  return mode;
}
}  // namespace

void set_qs8_gemm_amx(Qs8Amx mode) { amx_mode().store(mode); }
bool qs8_gemm_has_amx() { return qs8_gemm_ukernels().amx.fn != nullptr; }

bool qs8_gemm_uses_amx(size_t k, size_t n) {
  if (!qs8_gemm_has_amx()) return false;
  switch (amx_mode().load()) {
    case Qs8Amx::kOff:
      return false;
    case Qs8Amx::kAlways:
      return true;
    case Qs8Amx::kAuto:
      break;
  }
  // K < 32 pads a tile's 64 bytes of K to mostly zeros, and a single narrow panel leaves the
  // packed rows one use: both are bound by the requantization, where VNNI reads the rows in
  // place and AMX adds the packing and a trip of the sums through memory (MobileNetV2 int8,
  // 1 thread: K = 16 0.21 vs 0.25 ms, K = 32 x N = 16 0.061 vs 0.095 ms; K = 32 x N = 192 0.033
  // vs 0.028 ms; K = 320 x N = 1280 0.086 vs 0.017 ms).
  return k >= 32 && n >= 32;
}

Expected<Qs8GemmPackedW> pack_qs8_gemm_w(size_t k, size_t n, const int8_t* w, int32_t w_zp,
                                         const int32_t* bias, const float* requant_scale,
                                         int32_t a_zp, int32_t output_zp, int32_t act_min,
                                         int32_t act_max) {
  if (k == 0 || n == 0 || k > 65535 || w == nullptr || requant_scale == nullptr) {
    return invalid_argument(fmt::format("pack_qs8_gemm_w: k={} n={}", k, n));
  }
  const Qs8GemmUkernels& uk = qs8_gemm_ukernels();
  Qs8GemmPackedW p;
  p.k = k;
  p.n = n;
  // Fewer instructions per k step wins: the wide kernel issues MR broadcasts + 2 MR dot
  // products per panel, the narrow one MR + MR, over its own (padded) panel count.
  const bool amx = qs8_gemm_uses_amx(k, n);
  const Qs8GemmUkernel& wide = amx ? uk.amx : uk.gemm;
  const Qs8GemmUkernel& narrow = amx ? uk.amx_narrow : uk.narrow;
  const size_t wide_panels = (n + wide.nr - 1) / wide.nr;
  const size_t narrow_panels = (n + narrow.nr - 1) / narrow.nr;
  p.ukernel = narrow_panels * 2 < wide_panels * 3 ? narrow : wide;
  p.pack_rows = uk.pack_rows;
  p.isa = uk.isa;
  p.kp = (k + p.ukernel.kk - 1) / p.ukernel.kk * p.ukernel.kk;
  p.a_zero_point = a_zp;
  p.w_zero_point = w_zp;
  p.epilogue.output_zero_point = output_zp;
  p.epilogue.act_min = act_min;
  p.epilogue.act_max = act_max;
  p.epilogue.min_less_zp = static_cast<float>(act_min - output_zp);
  p.epilogue.max_less_zp = static_cast<float>(act_max - output_zp);
  const size_t nr = p.ukernel.nr;
  const bool vnni = p.ukernel.kind == Qs8GemmKind::kVnniU8S8;
  const size_t w_bytes = p.kp * nr * (vnni ? 1 : 2);
  p.panel_stride_bytes = (nr * 8 + w_bytes + 63) / 64 * 64;
  if (!p.data.resize(p.panels() * p.panel_stride_bytes)) {
    return out_of_memory(fmt::format("pack_qs8_gemm_w: {} bytes", p.panels() * p.panel_stride_bytes));
  }
  const int32_t a_zp_u8 = a_zp + 128;
  for (size_t panel = 0; panel < p.panels(); ++panel) {
    uint8_t* base = p.data.data() + panel * p.panel_stride_bytes;  // zero-filled by resize
    int32_t* c0 = reinterpret_cast<int32_t*>(base);
    float* scale = reinterpret_cast<float*>(base + nr * 4);
    const size_t n0 = panel * nr;
    const size_t cols = std::min(nr, n - n0);
    for (size_t j = 0; j < cols; ++j) {
      const int8_t* row = w + (n0 + j) * k;
      const int32_t b = bias != nullptr ? bias[n0 + j] : 0;
      scale[j] = requant_scale[n0 + j];
      if (vnni) {
        int32_t sum = 0;
        for (size_t kk = 0; kk < k; ++kk) sum = wrap_add(sum, row[kk]);
        c0[j] = wrap_add(wrap_sub(b, wrap_mul(a_zp_u8, sum)),
                         wrap_mul(wrap_mul(static_cast<int32_t>(k), a_zp_u8), w_zp));
        int8_t* dst = reinterpret_cast<int8_t*>(base + nr * 8);
        for (size_t kk = 0; kk < k; ++kk) dst[(kk / 4) * nr * 4 + j * 4 + kk % 4] = row[kk];
      } else {
        c0[j] = b;
        int16_t* dst = reinterpret_cast<int16_t*>(base + nr * 8);
        for (size_t kk = 0; kk < k; ++kk) {
          dst[(kk / 2) * nr * 2 + j * 2 + kk % 2] = static_cast<int16_t>(row[kk] - w_zp);
        }
      }
    }
  }
  return p;
}

size_t qs8_gemm_block_rows(const Qs8GemmPackedW& w) {
  // The packed A block (block rows x kp) stays in L2 (~48 KiB) while the panels stream by.
  const size_t mr = w.ukernel.mr;
  size_t rows = (48 * 1024) / w.a_row_bytes();
  rows = std::clamp<size_t>(rows / mr * mr, mr, 32 * mr);
  return rows;
}

namespace {

size_t round64(size_t b) { return (b + 63) / 64 * 64; }

size_t task_scratch_bytes(const Qs8GemmPackedW& w, bool gathered) {
  const size_t rows = qs8_gemm_block_rows(w);
  return rows * w.a_row_bytes() + round64(rows * sizeof(int32_t)) +
         (gathered ? rows * w.a_row_bytes() : 0);
}

}  // namespace

size_t qs8_gemm_scratch_bytes(const Qs8GemmPackedW& w, bool gathered, int threads) {
  return task_scratch_bytes(w, gathered) * static_cast<size_t>(std::max(threads, 1));
}

void qs8_gemm_packed(size_t m, const int8_t* a, size_t lda, const Qs8RowGather& gather,
                     const Qs8GemmPackedW& w, int8_t* c, size_t ldc, void* scratch,
                     ThreadPool* pool) {
  if (m == 0) return;
  const size_t mr = w.ukernel.mr, nr = w.ukernel.nr;
  const size_t threads =
      pool != nullptr && pool->multi_threaded() ? static_cast<size_t>(pool->threads()) : 1;
  // Work items: row blocks (packed once each) x groups of panels. Several threads get at least
  // two items each where the rows allow it: smaller blocks first (down to MR rows), then panel
  // groups (layers with few rows and many columns: MobileNetV2's 7x7 ones).
  size_t block = qs8_gemm_block_rows(w);
  const size_t want = 2 * threads;
  if (threads > 1) {
    const size_t per_item = (m + want - 1) / want;
    block = std::min(block, std::max(mr, (per_item + mr - 1) / mr * mr));
  }
  const size_t blocks = (m + block - 1) / block;
  const size_t groups = threads > 1 && blocks < want ? std::min(w.panels(), (want + blocks - 1) / blocks) : 1;
  const size_t panels_per_group = (w.panels() + groups - 1) / groups;
  const size_t items = blocks * groups;
  const bool gathered = gather.fn != nullptr;
  const size_t slice = task_scratch_bytes(w, gathered);
  const size_t a_stride = w.a_row_bytes() / w.a_elem_bytes();
  const bool row_bias = w.needs_row_bias();
  const bool direct = w.reads_rows_directly(gathered);
  // The microkernel over panels [p0, p1) for `rows` rows from m0: A row i at a_rows + i * a_step
  // bytes (a_ld elements apart, as the kernel counts them).
  auto run_panels = [&](Qs8GemmUkernelFn fn, const uint8_t* a_rows, size_t a_step, size_t a_ld,
                        const int32_t* rb, size_t m0, size_t rows, size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p) {
      const size_t n0 = p * nr;
      const size_t cols = std::min(nr, w.n - n0);
      for (size_t i = 0; i < rows; i += mr) {
        fn(std::min(mr, rows - i), cols, w.kp, a_rows + i * a_step, a_ld, w.panel(p),
           rb != nullptr ? rb + i : nullptr, c + (m0 + i) * ldc + n0, ldc, w.epilogue);
      }
    }
  };
  auto run_slot = [&](size_t slot, size_t slots) {
    uint8_t* s = static_cast<uint8_t*>(scratch) + slot * slice;
    uint8_t* apack = s;
    int32_t* rb = reinterpret_cast<int32_t*>(s + block * w.a_row_bytes());
    int8_t* rows_buf = reinterpret_cast<int8_t*>(s + block * w.a_row_bytes() + round64(block * sizeof(int32_t)));
    // Gathered rows: stride a_row_bytes, padding -128 (see Qs8RowGather), packed whole.
    const size_t row_bytes = w.a_row_bytes();
    const size_t k_pack = gathered ? (w.a_elem_bytes() == 1 ? row_bytes : w.kp) : w.k;
    if (gathered) std::memset(rows_buf, -128, block * row_bytes);
    if (w.ukernel.enter != nullptr) w.ukernel.enter();
    size_t ready = blocks;  // the block whose rows the slot holds (packed or gathered)
    const SlotRange range = slot_range(items, slot, slots);
    for (size_t item = range.begin; item < range.end; ++item) {
      const size_t b = item / groups;
      const size_t p0 = item % groups * panels_per_group;
      const size_t p1 = std::min(w.panels(), p0 + panels_per_group);
      if (p0 >= p1) continue;
      const size_t m0 = b * block;
      const size_t rows = std::min(block, m - m0);
      const int8_t* src = a + m0 * lda;
      size_t src_ld = lda;
      if (gathered) {
        if (ready != b) gather.fn(gather.ctx, m0, rows, rows_buf, row_bytes);
        src = rows_buf;
        src_ld = row_bytes;
      }
      if (direct) {
        // Contiguous rows with K % 4 == 0, or gathered ones padded with -128 to kp: the
        // int8-rows kernel reads them where they are.
        ready = b;
        run_panels(w.ukernel.fn_int8_rows, reinterpret_cast<const uint8_t*>(src), src_ld, src_ld,
                   nullptr, m0, rows, p0, p1);
        continue;
      }
      if (ready != b) {
        w.pack_rows(rows, k_pack, std::max(k_pack, w.kp), src, src_ld, w.a_zero_point,
                    w.w_zero_point, apack, a_stride, row_bias ? rb : nullptr);
        ready = b;
      }
      run_panels(w.ukernel.fn, apack, w.a_row_bytes(), a_stride, row_bias ? rb : nullptr, m0, rows,
                 p0, p1);
    }
  };
  const size_t slots = std::min(threads, items);
  if (slots <= 1) {
    run_slot(0, 1);
    return;
  }
  pool->parallel_for(slots, [&](size_t slot) { run_slot(slot, slots); });
}

}  // namespace pcv::kernels

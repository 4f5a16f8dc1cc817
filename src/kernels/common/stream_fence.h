// Non-temporal stores (Highway's Stream) for outputs far larger than the caches: they skip
// the read for ownership of every line, which a tensor that reaches memory before its reader
// comes would only waste.
#pragma once

#include <cstddef>

namespace pcv::kernels {

// Whole outputs of at least this many bytes are streamed (the GEMM's C, batch norm's output
// and input gradient): far past a core's L2. MobileNetV2 training at 224, batch 32, 2 threads
// (train_bench, interleaved): batch norm 103 + 155 -> 83 + 141 ms per step, the 1x1 convs'
// forward 141 -> 130 ms; inference tensors stay below it.
inline constexpr size_t kStreamOutputBytes = size_t{8} << 20;

// Orders the calling thread's non-temporal stores before its later stores, so that whoever
// it then signals (a thread pool's join) sees them. x86's streaming stores are weakly ordered
// and need an sfence; elsewhere they are plain stores.
inline void stream_fence() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_sfence();
#endif
}

}  // namespace pcv::kernels

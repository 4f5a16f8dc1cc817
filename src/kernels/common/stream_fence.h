// stream_fence(): orders the calling thread's non-temporal stores (Highway's Stream) before
// its later stores, so that whoever it then signals (a thread pool's join) sees them. x86's
// streaming stores are weakly ordered and need an sfence; elsewhere they are plain stores.
#pragma once

namespace pcv::kernels {

inline void stream_fence() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_sfence();
#endif
}

}  // namespace pcv::kernels

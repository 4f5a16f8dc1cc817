# Cross build for 64-bit ARM Linux (aarch64) with Debian's g++-aarch64-linux-gnu.
#
# Libraries come from Debian multiarch (`dpkg --add-architecture arm64` + `apt-get install
# libhwy-dev:arm64 ...`, see scripts/aarch64-test): arm64 libraries live in
# /usr/lib/aarch64-linux-gnu, headers are shared in /usr/include. Host tools (flatc) stay the
# build machine's. Tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR, see the NOTE
# there), so ctest and gtest_discover_tests work unchanged.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Sysroot-less multiarch: search the cross runtime and the arm64 multiarch dirs for libraries
# and packages; programs (flatc, protoc) are the host's.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config must see the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# NOTE: qemu's -L (the guest's root for the dynamic loader) must be "/", the multiarch root,
# not /usr/aarch64-linux-gnu: the binaries' RUNPATH includes /usr/lib/aarch64-linux-gnu (where
# libhwy etc. live), so libc.so.6 comes from the multiarch libc6:arm64 there, and it must be
# paired with that package's ld-linux-aarch64.so.1. With the cross package's loader instead
# (2.36-8cross1 vs 2.36-9+deb12u14), pthread_create spins forever: every test that starts a
# thread hangs.
find_program(PCV_QEMU_AARCH64 qemu-aarch64)
if(PCV_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${PCV_QEMU_AARCH64} -L /)
endif()

# Packages that can't be co-installed with the host's (libpthreadpool-dev is not
# Multi-Arch: same) are unpacked by scripts/aarch64-test into build/aarch64-deps.
get_filename_component(_pcv_root "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
set(PCV_AARCH64_DEPS "${_pcv_root}/build/aarch64-deps" CACHE PATH "Unpacked arm64 packages")
if(EXISTS "${PCV_AARCH64_DEPS}/usr/lib/aarch64-linux-gnu")
  set(PTHREADPOOL_LIB "${PCV_AARCH64_DEPS}/usr/lib/aarch64-linux-gnu/libpthreadpool.so"
      CACHE FILEPATH "arm64 pthreadpool")
  set(PTHREADPOOL_INCLUDE "${PCV_AARCH64_DEPS}/usr/include" CACHE PATH "pthreadpool.h")
  # Tests run under qemu: it must find libpthreadpool.so.0 too.
  set(CMAKE_BUILD_RPATH "${PCV_AARCH64_DEPS}/usr/lib/aarch64-linux-gnu")
endif()

# NOTE: Highway also compiles SVE / SVE2 variants on aarch64. SVE vectors are sizeless types,
# which can't be array elements or class members; the f32 GEMM kernel keeps its accumulators in
# arrays of vectors (`V acc[MR][NRV]`), so those variants don't compile. Until the kernels are
# SVE-clean, this build compiles NEON only (what every arm64 phone has; SVE phones run NEON).
# (A forced include, since the macro's value needs Highway's own target names.)
set(CMAKE_C_FLAGS_INIT "-include ${CMAKE_CURRENT_LIST_DIR}/hwy_neon_only.h")
set(CMAKE_CXX_FLAGS_INIT "-include ${CMAKE_CURRENT_LIST_DIR}/hwy_neon_only.h")

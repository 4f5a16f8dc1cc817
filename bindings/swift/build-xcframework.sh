#!/usr/bin/env bash
# Builds CPocketCV.xcframework (static libpocketcv for iOS device, iOS simulator and macOS,
# with pocketcv.h and the module map) for Package.swift. Needs macOS with Xcode, CMake, and the
# runtime's dependencies (Highway, pthreadpool, flatbuffers, fmt, libjpeg-turbo, libpng, libzip)
# built for each platform and visible through CMAKE_PREFIX_PATH (e.g. PCV_IOS_DEPS_<slice>).
# NOTE: not run in this repository's CI: the build machines are Linux and have no Swift or
# Xcode toolchain. The C API it packages is tested on Linux (x86-64 and aarch64 under qemu).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$here/build
rm -rf "$out" "$here/CPocketCV.xcframework"
mkdir -p "$out/Headers"
cp "$root/include/pocketcv/pocketcv.h" "$here/module/module.modulemap" "$out/Headers/"

slice() {  # name sysroot archs extra-cmake-args...
  local name=$1 sysroot=$2 archs=$3
  shift 3
  cmake -S "$root" -B "$out/$name" -G Xcode -DCMAKE_SYSTEM_NAME="$( [ "$sysroot" = macosx ] && echo Darwin || echo iOS )" \
    -DCMAKE_OSX_SYSROOT="$sysroot" -DCMAKE_OSX_ARCHITECTURES="$archs" -DCMAKE_OSX_DEPLOYMENT_TARGET=14.0 \
    -DPCV_RUNTIME_ONLY=ON -DPCV_BUILD_TESTS=OFF -DPCV_BUILD_BENCH=OFF -DPCV_FORMATS="tflite;coreml" \
    -DCMAKE_PREFIX_PATH="${PCV_IOS_DEPS:-}/$name" "$@"
  cmake --build "$out/$name" --config Release --target pcv_capi
  # One archive with every static library the C API needs: pocketcv's and its dependencies'.
  libtool -static -o "$out/$name/libpocketcv.a" $(find "$out/$name/src" -name 'libpcv_*.a') \
    $(find "${PCV_IOS_DEPS:-/nonexistent}/$name/lib" -name '*.a' 2>/dev/null)
}
slice ios-arm64 iphoneos arm64
slice ios-sim iphonesimulator "arm64;x86_64"
slice macos macosx "arm64;x86_64"
xcodebuild -create-xcframework \
  -library "$out/ios-arm64/libpocketcv.a" -headers "$out/Headers" \
  -library "$out/ios-sim/libpocketcv.a" -headers "$out/Headers" \
  -library "$out/macos/libpocketcv.a" -headers "$out/Headers" \
  -output "$here/CPocketCV.xcframework"
echo "built $here/CPocketCV.xcframework"

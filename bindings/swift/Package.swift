// swift-tools-version:5.7
// PocketCV for iOS / macOS: the C API (include/pocketcv/pocketcv.h) as the C module
// `CPocketCV`, shipped as an xcframework (static libpocketcv.a + headers + module map, made by
// build-xcframework.sh from the CMake build), and `PocketCV`, a Swift wrapper:
// Model(url:), Session, classify(pixelBuffer:) for camera CVPixelBuffers (BGRA, NV12).
import PackageDescription

let package = Package(
    name: "PocketCV",
    platforms: [.iOS(.v14), .macOS(.v12)],
    products: [
        .library(name: "PocketCV", targets: ["PocketCV"]),
    ],
    targets: [
        // Headers/pocketcv.h + Headers/module.modulemap (module/module.modulemap) + libpocketcv.a
        // per platform slice.
        .binaryTarget(name: "CPocketCV", path: "CPocketCV.xcframework"),
        .target(
            name: "PocketCV",
            dependencies: ["CPocketCV"],
            linkerSettings: [.linkedLibrary("c++"), .linkedFramework("CoreVideo")]
        ),
        .testTarget(name: "PocketCVTests", dependencies: ["PocketCV"], resources: [.copy("Fixtures")]),
    ]
)

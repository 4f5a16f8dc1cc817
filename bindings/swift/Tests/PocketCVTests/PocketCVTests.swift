// Runs with `swift test` on macOS after build-xcframework.sh (no Swift toolchain on the Linux
// build machines: not run in CI there). Fixtures/model.pcv: `pocketcv create --arch
// mobilenet_v2 --width 0.35 --size 64 --classes 5 --labels cat,dog,bird,fish,frog -o model.pcv`.
import CoreVideo
import XCTest
@testable import PocketCV

final class PocketCVTests: XCTestCase {
    func makeBuffer(_ format: OSType, width: Int = 160, height: Int = 120) -> CVPixelBuffer {
        var pb: CVPixelBuffer?
        CVPixelBufferCreate(nil, width, height, format, nil, &pb)
        CVPixelBufferLockBaseAddress(pb!, [])
        if format == kCVPixelFormatType_32BGRA {
            let base = CVPixelBufferGetBaseAddress(pb!)!.assumingMemoryBound(to: UInt8.self)
            let stride = CVPixelBufferGetBytesPerRow(pb!)
            for y in 0..<height {
                for x in 0..<width {
                    let p = base + y * stride + x * 4
                    p[0] = UInt8(x * 255 / width); p[1] = UInt8(y * 255 / height); p[2] = 128; p[3] = 255
                }
            }
        }
        CVPixelBufferUnlockBaseAddress(pb!, [])
        return pb!
    }

    func testClassifyBGRA() throws {
        let url = Bundle.module.url(forResource: "model", withExtension: "pcv", subdirectory: "Fixtures")!
        let model = try Model(url: url)
        XCTAssertEqual(model.labels, ["cat", "dog", "bird", "fish", "frog"])
        let session = try Session(model: model)
        let top = try session.classify(pixelBuffer: makeBuffer(kCVPixelFormatType_32BGRA), orientation: .right, topK: 3)
        XCTAssertEqual(top.count, 3)
        XCTAssertGreaterThanOrEqual(top[0].score, top[1].score)
    }

    func testMissingFileThrows() {
        XCTAssertThrowsError(try Model(url: URL(fileURLWithPath: "/nonexistent.tflite"))) { error in
            XCTAssertEqual((error as? PocketCVError)?.status, PCV_ERROR_IO)
        }
    }
}

// PocketCV: Swift over the pocketcv C API (pocketcv.h, module CPocketCV).
//
//   let model = try Model(url: Bundle.main.url(forResource: "flowers", withExtension: "tflite")!)
//   let session = try Session(model: model)
//   let top = try session.classify(pixelBuffer: frame, orientation: .right, topK: 3)
//   print(top.first!)            // "daisy 0.91"
//
// Thread safety: a Model is immutable and may be shared across threads and sessions. A Session
// is used by one thread (or serial queue) at a time: give each AVCaptureVideoDataOutput
// delegate queue its own Session.
import CPocketCV
import CoreVideo
import Foundation
import ImageIO

/// A failed pocketcv call: the C status and the library's message.
public struct PocketCVError: Error, CustomStringConvertible {
    public let status: pcv_status
    public let message: String
    public var description: String {
        "\(String(cString: pcv_status_name(status))): \(message)"
    }
}

@inline(__always)
func check(_ status: pcv_status) throws {
    if status != PCV_OK {
        throw PocketCVError(status: status, message: String(cString: pcv_last_error_message()))
    }
}

/// One class of a top-k result.
public struct Classification: CustomStringConvertible {
    public let classIndex: Int
    public let label: String
    /// Probability in [0, 1].
    public let score: Float
    public var description: String { String(format: "%@ %.2f", label, score) }
}

/// An image classifier (.pcv, .tflite, .mlmodel, ...) with its input spec and labels.
public final class Model {
    let handle: OpaquePointer

    public init(url: URL) throws {
        var m: OpaquePointer?
        try check(pcv_model_load_file(url.path, &m))
        handle = m!
    }

    /// .pcv or .tflite bytes (copied).
    public init(data: Data, name: String = "memory") throws {
        var m: OpaquePointer?
        try data.withUnsafeBytes { raw in
            try check(pcv_model_load_memory(raw.baseAddress, raw.count, name, &m))
        }
        handle = m!
    }

    deinit { pcv_model_free(handle) }

    /// Input size, color order, mean/std, quantization, label and class counts.
    public var inputSpec: pcv_input_spec {
        var spec = pcv_input_spec()
        spec.struct_size = MemoryLayout<pcv_input_spec>.size
        _ = pcv_model_input_spec(handle, &spec)
        return spec
    }

    public var labels: [String] {
        (0..<Int(inputSpec.label_count)).map { i in
            pcv_model_label(handle, Int32(i)).map { String(cString: $0) } ?? ""
        }
    }
}

public final class Session {
    let handle: OpaquePointer
    public let model: Model

    /// threads: 0 default (1), -1 one per core, 1...64.
    public init(model: Model, threads: Int32 = 0) throws {
        var options = pcv_session_options()
        options.struct_size = MemoryLayout<pcv_session_options>.size
        options.threads = threads
        var s: OpaquePointer?
        try check(pcv_session_create(model.handle, &options, &s))
        handle = s!
        self.model = model
    }

    deinit { pcv_session_free(handle) }

    /// A camera or picture buffer into the model input: kCVPixelFormatType_32BGRA,
    /// 420YpCbCr8BiPlanarFullRange ('420f', NV12) or ...VideoRange ('420v', read as full range:
    /// slightly lower contrast; prefer '420f'). `orientation` is the one that displays the
    /// buffer upright (portrait back camera: .right; front camera: .leftMirrored), as for
    /// VNImageRequestHandler.
    public func setInput(pixelBuffer: CVPixelBuffer, orientation: CGImagePropertyOrientation = .up,
                         crop: pcv_crop_mode = PCV_CROP_CENTER) throws {
        let (rotation, mirror) = Session.transform(orientation)
        CVPixelBufferLockBaseAddress(pixelBuffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(pixelBuffer, .readOnly) }
        var frame = pcv_frame()
        frame.width = Int32(CVPixelBufferGetWidth(pixelBuffer))
        frame.height = Int32(CVPixelBufferGetHeight(pixelBuffer))
        switch CVPixelBufferGetPixelFormatType(pixelBuffer) {
        case kCVPixelFormatType_32BGRA:
            frame.format = PCV_FRAME_BGRA
            frame.planes.0 = pcv_plane(
                data: CVPixelBufferGetBaseAddress(pixelBuffer)?.assumingMemoryBound(to: UInt8.self),
                row_stride: Int32(CVPixelBufferGetBytesPerRow(pixelBuffer)), pixel_stride: 4)
        case kCVPixelFormatType_420YpCbCr8BiPlanarFullRange, kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange:
            frame.format = PCV_FRAME_NV12
            frame.planes.0 = pcv_plane(
                data: CVPixelBufferGetBaseAddressOfPlane(pixelBuffer, 0)?.assumingMemoryBound(to: UInt8.self),
                row_stride: Int32(CVPixelBufferGetBytesPerRowOfPlane(pixelBuffer, 0)), pixel_stride: 1)
            frame.planes.1 = pcv_plane(
                data: CVPixelBufferGetBaseAddressOfPlane(pixelBuffer, 1)?.assumingMemoryBound(to: UInt8.self),
                row_stride: Int32(CVPixelBufferGetBytesPerRowOfPlane(pixelBuffer, 1)), pixel_stride: 2)
        default:
            throw PocketCVError(status: PCV_ERROR_UNSUPPORTED,
                                message: "pixel format \(CVPixelBufferGetPixelFormatType(pixelBuffer)) "
                                    + "(use kCVPixelFormatType_32BGRA or 420YpCbCr8BiPlanarFullRange)")
        }
        try check(pcv_session_set_input_frame(handle, &frame, rotation, mirror ? 1 : 0, crop))
    }

    public func run() throws { try check(pcv_session_run(handle)) }

    /// The k most probable classes, highest first.
    public func topK(_ k: Int) throws -> [Classification] {
        var results = [pcv_classification](repeating: pcv_classification(), count: max(k, 1))
        var n: Int32 = 0
        try check(pcv_session_top_k(handle, Int32(k), &results, &n))
        return results.prefix(Int(n)).map {
            Classification(classIndex: Int($0.class_index), label: String(cString: $0.label), score: $0.score)
        }
    }

    /// setInput + run + topK.
    public func classify(pixelBuffer: CVPixelBuffer, orientation: CGImagePropertyOrientation = .up,
                         topK k: Int = 1) throws -> [Classification] {
        try setInput(pixelBuffer: pixelBuffer, orientation: orientation)
        try run()
        return try topK(k)
    }

    /// Milliseconds of the last frame: preprocess, inference, postprocess.
    public var lastTrace: (preprocess: Double, inference: Double, postprocess: Double) {
        var t = pcv_trace()
        t.struct_size = MemoryLayout<pcv_trace>.size
        _ = pcv_session_last_trace(handle, &t)
        return (t.preprocess_ms, t.inference_ms, t.postprocess_ms)
    }

    /// EXIF-style orientation -> (clockwise rotation that makes the buffer upright, mirror).
    static func transform(_ o: CGImagePropertyOrientation) -> (Int32, Bool) {
        switch o {
        case .up: return (0, false)
        case .upMirrored: return (0, true)
        case .down: return (180, false)
        case .downMirrored: return (180, true)
        case .right: return (90, false)
        case .leftMirrored: return (90, true)
        case .left: return (270, false)
        case .rightMirrored: return (270, true)
        @unknown default: return (0, false)
        }
    }
}

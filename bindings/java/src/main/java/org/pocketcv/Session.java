package org.pocketcv;

import java.nio.ByteBuffer;

/**
 * Runs a {@link Model} on camera frames, pictures or raw tensors and returns the top classes.
 *
 * <pre>
 *   try (Model model = Model.fromFile(path); Session session = new Session(model)) {
 *     session.setInputYuv420(w, h, y, yRow, yPix, u, uRow, uPix, v, vRow, vPix, rotation, false);
 *     session.run();
 *     Classification best = session.topK(1)[0];
 *   }
 * </pre>
 *
 * <p>Thread safety: a Session is used by one thread at a time; its methods are synchronized,
 * so misuse serializes instead of corrupting. For parallel inference make one Session per
 * thread from the same Model. Frame buffers are read during the call only (never kept).
 */
public final class Session implements AutoCloseable {
  static {
    System.loadLibrary("pocketcv_jni");
  }

  /** Frame layouts; the ordinal is the C API's pcv_frame_format. */
  public enum FrameFormat { NV21, NV12, I420, YUV_420_888, BGRA, RGBA, RGB, GRAY }

  /** How the frame is fit to the model input; the ordinal is pcv_crop_mode. */
  public enum CropMode { CENTER, STRETCH, LETTERBOX }

  private long handle;

  /** A session with one thread. */
  public Session(Model model) {
    this(model, 0);
  }

  /** threads: 0 default (1), -1 one per core, 1..64. */
  public Session(Model model, int threads) {
    handle = nativeCreate(model.handle(), threads);
  }

  /**
   * A frame with up to three planes from direct ByteBuffers (each read from its position),
   * e.g. android.media.Image / CameraX ImageProxy planes: pass getRowStride() and
   * getPixelStride() as they are. Unused planes may be null. rotationDegrees (0, 90, 180,
   * 270) turns the frame upright (ImageInfo.getRotationDegrees()); mirror for the front camera.
   */
  public synchronized void setInputFrame(FrameFormat format, int width, int height,
      ByteBuffer plane0, int rowStride0, int pixelStride0,
      ByteBuffer plane1, int rowStride1, int pixelStride1,
      ByteBuffer plane2, int rowStride2, int pixelStride2,
      int rotationDegrees, boolean mirror, CropMode crop) {
    nativeSetFrame(handle(), format.ordinal(), width, height,
        plane0, plane0 == null ? 0 : plane0.position(), rowStride0, pixelStride0,
        plane1, plane1 == null ? 0 : plane1.position(), rowStride1, pixelStride1,
        plane2, plane2 == null ? 0 : plane2.position(), rowStride2, pixelStride2,
        rotationDegrees, mirror, crop.ordinal());
  }

  /** Android YUV_420_888 (CameraX ImageAnalysis default): Y, U, V planes with their strides. */
  public void setInputYuv420(int width, int height,
      ByteBuffer y, int yRowStride, int yPixelStride,
      ByteBuffer u, int uRowStride, int uPixelStride,
      ByteBuffer v, int vRowStride, int vPixelStride,
      int rotationDegrees, boolean mirror) {
    setInputFrame(FrameFormat.YUV_420_888, width, height, y, yRowStride, yPixelStride,
        u, uRowStride, uPixelStride, v, vRowStride, vPixelStride, rotationDegrees, mirror,
        CropMode.CENTER);
  }

  /** A packed NV21 frame in a byte array (legacy android.hardware.Camera preview). */
  public synchronized void setInputNv21(byte[] nv21, int width, int height, int rotationDegrees, boolean mirror) {
    nativeSetNv21(handle(), nv21, width, height, rotationDegrees, mirror);
  }

  /**
   * An upright picture: RGB, RGBA (Bitmap.copyPixelsToBuffer of an ARGB_8888 bitmap), BGRA or
   * GRAY pixels; rowStride 0 = packed.
   */
  public synchronized void setInputImage(byte[] pixels, int width, int height, int rowStride, FrameFormat format) {
    nativeSetImage(handle(), pixels, width, height, rowStride, format.ordinal());
  }

  /** Raw input bytes in the input's dtype and layout (NHWC, little-endian); exact size. */
  public synchronized void setInputTensor(int index, byte[] data) {
    nativeSetTensorBytes(handle(), index, data);
  }

  /** Float input values (f32 inputs); exact element count. */
  public synchronized void setInputTensor(int index, float[] data) {
    nativeSetTensorFloats(handle(), index, data);
  }

  public synchronized void run() {
    nativeRun(handle());
  }

  /** The k most probable classes, highest first (softmax / dequantization applied). */
  public synchronized Classification[] topK(int k) {
    return nativeTopK(handle(), k);
  }

  /** Output `index` as floats (int8/uint8 outputs dequantized). */
  public synchronized float[] outputFloats(int index) {
    return nativeOutputFloats(handle(), index);
  }

  /** {preprocess, inference, postprocess} milliseconds of the last frame. */
  public synchronized double[] lastTraceMs() {
    double[] t = new double[3];
    nativeTrace(handle(), t);
    return t;
  }

  private long handle() {
    if (handle == 0) throw new IllegalStateException("Session is closed");
    return handle;
  }

  @Override
  public synchronized void close() {
    if (handle != 0) {
      nativeFree(handle);
      handle = 0;
    }
  }

  private static native long nativeCreate(long model, int threads);
  private static native void nativeFree(long session);
  private static native void nativeSetFrame(long session, int format, int width, int height,
      ByteBuffer p0, int off0, int row0, int pix0,
      ByteBuffer p1, int off1, int row1, int pix1,
      ByteBuffer p2, int off2, int row2, int pix2,
      int rotation, boolean mirror, int crop);
  private static native void nativeSetNv21(long session, byte[] nv21, int width, int height, int rotation, boolean mirror);
  private static native void nativeSetImage(long session, byte[] pixels, int width, int height, int rowStride, int format);
  private static native void nativeSetTensorBytes(long session, int index, byte[] data);
  private static native void nativeSetTensorFloats(long session, int index, float[] data);
  private static native void nativeRun(long session);
  private static native Classification[] nativeTopK(long session, int k);
  private static native float[] nativeOutputFloats(long session, int index);
  private static native void nativeTrace(long session, double[] out);
}

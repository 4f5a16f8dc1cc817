package org.pocketcv;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * An image classifier loaded into memory (.pcv, .tflite, .mlmodel, .mlpackage, .onnx), with
 * the input spec that travels with it (input size, color order, normalization, labels).
 *
 * <p>Thread safety: a Model is immutable; any number of threads may use one Model and create
 * {@link Session}s from it. Closing it while Sessions made from it are alive is fine (they
 * keep what they need). Call {@link #close()} to release the native memory promptly.
 */
public final class Model implements AutoCloseable {
  static {
    System.loadLibrary("pocketcv_jni");
  }

  private long handle;
  private final int[] ints = new int[8];      // width, height, channels, color, dtype, zero point, labels, classes
  private final float[] floats = new float[8]; // mean[3], std[3], crop fraction, input scale
  private final List<String> labels;

  private Model(long handle) {
    this.handle = handle;
    List<String> l = new ArrayList<>();
    try {
      nativeInputSpec(handle, ints, floats);
      for (int i = 0; i < ints[6]; ++i) {
        String s = nativeLabel(handle, i);
        l.add(s == null ? "" : s);
      }
    } catch (RuntimeException | Error e) {
      nativeFree(handle);  // the caller never sees this Model: don't leak the native one
      this.handle = 0;
      throw e;
    }
    labels = Collections.unmodifiableList(l);
  }

  /** Loads a model file (format from the extension, else the content). */
  public static Model fromFile(String path) {
    return new Model(nativeLoadFile(path));
  }

  /** Loads .pcv or .tflite bytes (e.g. an Android asset read into memory). Copied. */
  public static Model fromBytes(byte[] bytes, String name) {
    return new Model(nativeLoadBytes(bytes, name));
  }

  /** Loads from a direct ByteBuffer (position to limit), e.g. a memory-mapped asset. Copied. */
  public static Model fromBuffer(ByteBuffer buffer, String name) {
    if (!buffer.isDirect()) {
      byte[] b = new byte[buffer.remaining()];
      buffer.duplicate().get(b);
      return fromBytes(b, name);
    }
    return new Model(nativeLoadBuffer(buffer, buffer.position(), buffer.remaining(), name));
  }

  public int inputWidth() { return ints[0]; }
  public int inputHeight() { return ints[1]; }
  public int inputChannels() { return ints[2]; }
  /** "RGB", "BGR" or "GRAY". */
  public String colorOrder() { return ints[3] == 1 ? "BGR" : ints[3] == 2 ? "GRAY" : "RGB"; }
  /** value = (pixel - mean[c]) / std[c]. */
  public float[] mean() { return new float[] {floats[0], floats[1], floats[2]}; }
  public float[] std() { return new float[] {floats[3], floats[4], floats[5]}; }
  /** True when the input tensor is int8 or uint8 (quantized model). */
  public boolean quantizedInput() { return ints[4] == 2 || ints[4] == 3; }
  public int numClasses() { return ints[7]; }
  /** Class names, index = class index; empty when the model carries none. */
  public List<String> labels() { return labels; }

  long handle() {
    if (handle == 0) throw new IllegalStateException("Model is closed");
    return handle;
  }

  @Override
  public synchronized void close() {
    if (handle != 0) {
      nativeFree(handle);
      handle = 0;
    }
  }

  private static native long nativeLoadFile(String path);
  private static native long nativeLoadBytes(byte[] bytes, String name);
  private static native long nativeLoadBuffer(ByteBuffer buffer, int offset, int length, String name);
  private static native void nativeInputSpec(long handle, int[] ints, float[] floats);
  private static native String nativeLabel(long handle, int index);
  private static native void nativeFree(long handle);
}

package org.pocketcv;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Host-JVM test of the Java binding (run by CTest: tests/capi/java_host_test.cmake).
 * Usage: java -Djava.library.path=DIR -cp classes org.pocketcv.PocketcvSelfTest model.pcv
 * Prints one line per check and "N passed, N failed"; exit code 1 on any failure.
 */
public final class PocketcvSelfTest {
  interface Check {
    void run() throws Exception;
  }

  static int passed = 0;
  static int failed = 0;

  static void check(String name, Check c) {
    try {
      c.run();
      ++passed;
      System.out.println("PASS " + name);
    } catch (Throwable t) {
      ++failed;
      System.out.println("FAIL " + name + ": " + t);
      t.printStackTrace(System.out);
    }
  }

  static void expect(boolean cond, String what) {
    if (!cond) throw new AssertionError(what);
  }

  static final int W = 160;
  static final int H = 120;

  /** Packed RGB test picture (smooth; the blob moves with `variant`). */
  static byte[] rgb(int variant) {
    byte[] out = new byte[W * H * 3];
    double cx = 0.3 + 0.1 * (variant % 5), cy = 0.35 + 0.08 * (variant % 4);
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        double fx = (x + 0.5) / W, fy = (y + 0.5) / H;
        double blob = Math.exp(-((fx - cx) * (fx - cx) + (fy - cy) * (fy - cy)) * 10);
        double[] v = {30 + 190 * fx * fy + 20 * blob, 25 + 170 * fy, 50 + 180 * blob};
        for (int c = 0; c < 3; ++c) out[(y * W + x) * 3 + c] = (byte) clamp(v[c]);
      }
    }
    return out;
  }

  static int clamp(double v) {
    return (int) Math.max(0, Math.min(255, Math.round(v)));
  }

  static int u(byte b) {
    return b & 0xFF;
  }

  /** NV21 from packed RGB, BT.601 full range, chroma averaged over 2x2 blocks. */
  static byte[] nv21(byte[] rgb) {
    byte[] out = new byte[W * H + W * H / 2];
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        int i = (y * W + x) * 3;
        out[y * W + x] = (byte) clamp(0.299 * u(rgb[i]) + 0.587 * u(rgb[i + 1]) + 0.114 * u(rgb[i + 2]));
      }
    }
    for (int j = 0; j < H / 2; ++j) {
      for (int i = 0; i < W / 2; ++i) {
        double uu = 0, vv = 0;
        for (int d = 0; d < 4; ++d) {
          int p = ((2 * j + d / 2) * W + 2 * i + d % 2) * 3;
          double r = u(rgb[p]), g = u(rgb[p + 1]), b = u(rgb[p + 2]);
          uu += -0.168736 * r - 0.331264 * g + 0.5 * b + 128;
          vv += 0.5 * r - 0.418688 * g - 0.081312 * b + 128;
        }
        out[W * H + (j * (W / 2) + i) * 2] = (byte) clamp(vv / 4);
        out[W * H + (j * (W / 2) + i) * 2 + 1] = (byte) clamp(uu / 4);
      }
    }
    return out;
  }

  static float maxDiff(float[] a, float[] b) {
    expect(a.length == b.length, "lengths " + a.length + " vs " + b.length);
    float m = 0;
    for (int i = 0; i < a.length; ++i) m = Math.max(m, Math.abs(a[i] - b[i]));
    return m;
  }

  static void expectThrows(int status, String contains, Check c) throws Exception {
    try {
      c.run();
    } catch (PocketcvException e) {
      expect(e.status() == status, "status " + e.statusName() + " (" + e.getMessage() + "), expected " + status);
      expect(contains == null || e.getMessage().contains(contains), "message '" + e.getMessage() + "' lacks " + contains);
      return;
    }
    throw new AssertionError("no PocketcvException");
  }

  public static void main(String[] args) throws Exception {
    final String path = args[0];
    final Model model = Model.fromFile(path);

    check("input spec and labels", () -> {
      expect(model.inputWidth() == 64 && model.inputHeight() == 64, "size " + model.inputWidth());
      expect(model.inputChannels() == 3 && model.colorOrder().equals("RGB"), "channels/color");
      expect(model.numClasses() == 5, "classes " + model.numClasses());
      expect(model.labels().equals(Arrays.asList("cat", "dog", "bird", "fish", "frog")), "labels " + model.labels());
      expect(Math.abs(model.mean()[0] - 127.5f) < 1e-6 && !model.quantizedInput(), "mean / dtype");
    });

    check("fromBytes and fromBuffer equal fromFile", () -> {
      byte[] bytes = Files.readAllBytes(Paths.get(path));
      ByteBuffer direct = ByteBuffer.allocateDirect(bytes.length + 3);
      direct.position(3);
      direct.put(bytes);
      direct.position(3);
      try (Model m2 = Model.fromBytes(bytes, "asset.pcv"); Model m3 = Model.fromBuffer(direct, "mapped.pcv");
           Session a = new Session(model); Session b = new Session(m2); Session c = new Session(m3)) {
        byte[] img = rgb(0);
        for (Session s : new Session[] {a, b, c}) {
          s.setInputImage(img, W, H, 0, Session.FrameFormat.RGB);
          s.run();
        }
        expect(Arrays.equals(a.outputFloats(0), b.outputFloats(0)), "bytes differ");
        expect(Arrays.equals(a.outputFloats(0), c.outputFloats(0)), "buffer differs");
      }
    });

    check("RGB picture and NV21 frame agree (top-1, probabilities within 0.05)", () -> {
      try (Session s = new Session(model)) {
        byte[] img = rgb(1);
        s.setInputImage(img, W, H, 0, Session.FrameFormat.RGB);
        s.run();
        float[] a = s.outputFloats(0);
        Classification ta = s.topK(1)[0];
        s.setInputNv21(nv21(img), W, H, 0, false);
        s.run();
        float[] b = s.outputFloats(0);
        Classification tb = s.topK(1)[0];
        expect(maxDiff(a, b) <= 0.05f, "max diff " + maxDiff(a, b));
        expect(ta.classIndex == tb.classIndex, ta + " vs " + tb);
        double[] trace = s.lastTraceMs();
        expect(trace[0] > 0 && trace[1] > 0, "trace " + Arrays.toString(trace));
      }
    });

    check("YUV_420_888 planes (padded rows, interleaved chroma) equal the NV21 array", () -> {
      byte[] nv = nv21(rgb(2));
      final int yRow = W + 32, cRow = W + 32;  // padded, as camera HALs deliver
      ByteBuffer y = ByteBuffer.allocateDirect(yRow * (H - 1) + W);
      for (int r = 0; r < H; ++r) {
        y.position(r * yRow);
        y.put(nv, r * W, W);
      }
      y.position(0);
      // One interleaved V,U buffer; the U plane starts one byte in (Android's NV21-backed Image).
      ByteBuffer vu = ByteBuffer.allocateDirect(cRow * (H / 2 - 1) + W);
      for (int r = 0; r < H / 2; ++r) {
        vu.position(r * cRow);
        vu.put(nv, W * H + r * W, W);
      }
      vu.position(0);
      ByteBuffer v = vu.duplicate();
      ByteBuffer uPlane = vu.duplicate();
      uPlane.position(1);
      try (Session s = new Session(model)) {
        s.setInputNv21(nv, W, H, 90, true);
        s.run();
        float[] a = s.outputFloats(0);
        s.setInputYuv420(W, H, y, yRow, 1, uPlane, cRow, 2, v, cRow, 2, 90, true);
        s.run();
        float[] b = s.outputFloats(0);
        expect(maxDiff(a, b) <= 1e-6f, "max diff " + maxDiff(a, b));
        Classification[] top = s.topK(10);
        expect(top.length == 5, "top-k length " + top.length);
        float sum = 0;
        for (int i = 0; i < top.length; ++i) {
          sum += top[i].score;
          if (i > 0) expect(top[i - 1].score >= top[i].score, "not sorted");
        }
        expect(sum <= 1.0001f, "sum " + sum);
      }
    });

    check("errors: missing file, corrupt bytes, wrong sizes, short buffers, closed handles", () -> {
      expectThrows(PocketcvException.IO, "no-such-model.pcv", () -> Model.fromFile("/nonexistent/no-such-model.pcv"));
      byte[] junk = new byte[300];
      for (int i = 0; i < junk.length; ++i) junk[i] = (byte) (i * 37 + 1);
      junk[4] = 'P';
      junk[5] = 'C';
      junk[6] = 'V';
      junk[7] = '1';
      expectThrows(PocketcvException.INVALID_MODEL, "junk.pcv", () -> Model.fromBytes(junk, "junk.pcv"));
      final Session s = new Session(model);
      {
        expectThrows(PocketcvException.INVALID_ARGUMENT, "needs", () -> s.setInputTensor(0, new float[10]));
        expectThrows(PocketcvException.INVALID_ARGUMENT, "pcv_session_run", () -> s.topK(1));
        expectThrows(PocketcvException.INVALID_ARGUMENT, "needs", () -> s.setInputNv21(new byte[100], W, H, 0, false));
        ByteBuffer small = ByteBuffer.allocateDirect(W * H / 2);
        expectThrows(PocketcvException.INVALID_ARGUMENT, "plane 0", () -> s.setInputFrame(Session.FrameFormat.GRAY, W, H,
            small, 0, 0, null, 0, 0, null, 0, 0, 0, false, Session.CropMode.CENTER));
        expectThrows(PocketcvException.INVALID_ARGUMENT, "direct", () -> s.setInputFrame(Session.FrameFormat.GRAY, W, H,
            ByteBuffer.allocate(W * H), 0, 0, null, 0, 0, null, 0, 0, 0, false, Session.CropMode.CENTER));
        expectThrows(PocketcvException.INVALID_ARGUMENT, "rotation", () -> s.setInputNv21(nv21(rgb(0)), W, H, 33, false));
        s.setInputTensor(0, new float[64 * 64 * 3]);
        s.run();
        expect(s.topK(1).length == 1, "topK after tensor input");
        s.close();
        try {
          s.run();
          throw new AssertionError("closed session ran");
        } catch (IllegalStateException expected) {
          // ok
        }
      }
    });

    check("4 threads x 20 frames, one session each, equal to a single-threaded run", () -> {
      final int iters = 20;
      final List<float[]> expected = new ArrayList<>();
      final byte[][] frames = new byte[4][];
      for (int i = 0; i < 4; ++i) frames[i] = nv21(rgb(i));
      try (Session s = new Session(model)) {
        for (int i = 0; i < iters; ++i) {
          s.setInputNv21(frames[i % 4], W, H, (i % 4) * 90, false);
          s.run();
          expected.add(s.outputFloats(0));
        }
      }
      final AtomicInteger bad = new AtomicInteger();
      Thread[] threads = new Thread[4];
      for (int t = 0; t < threads.length; ++t) {
        final int tt = t;
        threads[t] = new Thread(() -> {
          try (Session s = new Session(model)) {
            for (int k = 0; k < iters; ++k) {
              int i = (k + tt * 5) % iters;
              s.setInputNv21(frames[i % 4], W, H, (i % 4) * 90, false);
              s.run();
              if (!Arrays.equals(s.outputFloats(0), expected.get(i))) bad.incrementAndGet();
            }
          } catch (Throwable e) {
            bad.addAndGet(1000);
          }
        });
        threads[t].start();
      }
      for (Thread th : threads) th.join();
      expect(bad.get() == 0, bad.get() + " mismatches");
    });

    model.close();
    model.close();  // idempotent
    System.out.println(passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}

/* JNI glue: org.pocketcv.{Model, Session} -> the C API (pocketcv.h).
 *
 * Handles are the C pointers stored in Java longs. Every failing C call becomes a thrown
 * org.pocketcv.PocketcvException(status, message). Java memory is checked before the C API
 * sees it: a plane's bytes from its position must cover what its size and strides address
 * (a short buffer is PocketcvException(INVALID_ARGUMENT), never an out-of-bounds read).
 * Arrays are accessed with Get/ReleasePrimitiveArrayCritical (no copy; no JNI calls while
 * held); direct ByteBuffers by address.
 */
#include <jni.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pocketcv/pocketcv.h"

static jclass g_exception_class;      /* org/pocketcv/PocketcvException */
static jmethodID g_exception_ctor;    /* (ILjava/lang/String;)V */
static jclass g_classification_class; /* org/pocketcv/Classification */
static jmethodID g_classification_ctor; /* (ILjava/lang/String;F)V */

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void* reserved) {
  JNIEnv* env = NULL;
  jclass c;
  (void)reserved;
  if ((*vm)->GetEnv(vm, (void**)&env, JNI_VERSION_1_6) != JNI_OK) return JNI_ERR;
  c = (*env)->FindClass(env, "org/pocketcv/PocketcvException");
  if (c == NULL) return JNI_ERR;
  g_exception_class = (jclass)(*env)->NewGlobalRef(env, c);
  g_exception_ctor = (*env)->GetMethodID(env, c, "<init>", "(ILjava/lang/String;)V");
  c = (*env)->FindClass(env, "org/pocketcv/Classification");
  if (c == NULL) return JNI_ERR;
  g_classification_class = (jclass)(*env)->NewGlobalRef(env, c);
  g_classification_ctor = (*env)->GetMethodID(env, c, "<init>", "(ILjava/lang/String;F)V");
  if (g_exception_ctor == NULL || g_classification_ctor == NULL) return JNI_ERR;
  return JNI_VERSION_1_6;
}

static void throw_message(JNIEnv* env, int status, const char* message) {
  jstring msg = (*env)->NewStringUTF(env, message);
  jobject ex;
  if (msg == NULL) return; /* OutOfMemoryError pending */
  ex = (*env)->NewObject(env, g_exception_class, g_exception_ctor, (jint)status, msg);
  if (ex != NULL) (*env)->Throw(env, (jthrowable)ex);
}

/* Throws for a failed C call; returns 1 if it threw. */
static int check(JNIEnv* env, pcv_status s) {
  if (s == PCV_OK) return 0;
  throw_message(env, (int)s, pcv_last_error_message());
  return 1;
}

static void throw_invalid(JNIEnv* env, const char* what) {
  throw_message(env, PCV_ERROR_INVALID_ARGUMENT, what);
}

/* ---------------------------------------------------------------------------------------- */
/* Model */

JNIEXPORT jlong JNICALL Java_org_pocketcv_Model_nativeLoadFile(JNIEnv* env, jclass cls, jstring path) {
  const char* p;
  pcv_model* m = NULL;
  pcv_status s;
  (void)cls;
  if (path == NULL) {
    throw_invalid(env, "Model.fromFile: path is null");
    return 0;
  }
  p = (*env)->GetStringUTFChars(env, path, NULL);
  if (p == NULL) return 0;
  s = pcv_model_load_file(p, &m);
  (*env)->ReleaseStringUTFChars(env, path, p);
  if (check(env, s)) return 0;
  return (jlong)(intptr_t)m;
}

static jlong load_memory(JNIEnv* env, const void* data, size_t size, jstring name) {
  const char* n = NULL;
  pcv_model* m = NULL;
  pcv_status s;
  if (name != NULL) {
    n = (*env)->GetStringUTFChars(env, name, NULL);
    if (n == NULL) return 0;
  }
  s = pcv_model_load_memory(data, size, n, &m);
  if (n != NULL) (*env)->ReleaseStringUTFChars(env, name, n);
  if (check(env, s)) return 0;
  return (jlong)(intptr_t)m;
}

JNIEXPORT jlong JNICALL Java_org_pocketcv_Model_nativeLoadBytes(JNIEnv* env, jclass cls, jbyteArray bytes,
                                                                jstring name) {
  jsize n;
  jbyte* copy;
  jlong h;
  (void)cls;
  if (bytes == NULL) {
    throw_invalid(env, "Model.fromBytes: bytes is null");
    return 0;
  }
  /* The reader runs long and may allocate: copy out instead of holding a critical region. */
  n = (*env)->GetArrayLength(env, bytes);
  copy = (*env)->GetByteArrayElements(env, bytes, NULL);
  if (copy == NULL) return 0;
  h = load_memory(env, copy, (size_t)n, name);
  (*env)->ReleaseByteArrayElements(env, bytes, copy, JNI_ABORT);
  return h;
}

JNIEXPORT jlong JNICALL Java_org_pocketcv_Model_nativeLoadBuffer(JNIEnv* env, jclass cls, jobject buffer,
                                                                 jint offset, jint length, jstring name) {
  const uint8_t* base;
  jlong cap;
  (void)cls;
  if (buffer == NULL) {
    throw_invalid(env, "Model.fromBuffer: buffer is null");
    return 0;
  }
  base = (const uint8_t*)(*env)->GetDirectBufferAddress(env, buffer);
  cap = (*env)->GetDirectBufferCapacity(env, buffer);
  if (base == NULL || cap < 0 || offset < 0 || length < 0 || (jlong)offset + length > cap) {
    throw_invalid(env, "Model.fromBuffer: not a direct buffer, or position/limit outside it");
    return 0;
  }
  return load_memory(env, base + offset, (size_t)length, name);
}

JNIEXPORT void JNICALL Java_org_pocketcv_Model_nativeInputSpec(JNIEnv* env, jclass cls, jlong handle,
                                                               jintArray ints, jfloatArray floats) {
  pcv_input_spec spec = PCV_INPUT_SPEC_INIT;
  jint i[8];
  jfloat f[8];
  (void)cls;
  if (check(env, pcv_model_input_spec((const pcv_model*)(intptr_t)handle, &spec))) return;
  i[0] = spec.width;
  i[1] = spec.height;
  i[2] = spec.channels;
  i[3] = (jint)spec.color;
  i[4] = (jint)spec.input_dtype;
  i[5] = spec.input_zero_point;
  i[6] = spec.label_count;
  i[7] = spec.num_classes;
  f[0] = spec.mean[0];
  f[1] = spec.mean[1];
  f[2] = spec.mean[2];
  f[3] = spec.std[0];
  f[4] = spec.std[1];
  f[5] = spec.std[2];
  f[6] = spec.crop_fraction;
  f[7] = spec.input_scale;
  (*env)->SetIntArrayRegion(env, ints, 0, 8, i);
  (*env)->SetFloatArrayRegion(env, floats, 0, 8, f);
}

JNIEXPORT jstring JNICALL Java_org_pocketcv_Model_nativeLabel(JNIEnv* env, jclass cls, jlong handle, jint index) {
  const char* l = pcv_model_label((const pcv_model*)(intptr_t)handle, index);
  (void)cls;
  return l == NULL ? NULL : (*env)->NewStringUTF(env, l);
}

JNIEXPORT void JNICALL Java_org_pocketcv_Model_nativeFree(JNIEnv* env, jclass cls, jlong handle) {
  (void)env;
  (void)cls;
  pcv_model_free((pcv_model*)(intptr_t)handle);
}

/* ---------------------------------------------------------------------------------------- */
/* Session */

JNIEXPORT jlong JNICALL Java_org_pocketcv_Session_nativeCreate(JNIEnv* env, jclass cls, jlong model,
                                                               jint threads) {
  pcv_session_options o = PCV_SESSION_OPTIONS_INIT;
  pcv_session* s = NULL;
  (void)cls;
  o.threads = threads;
  if (check(env, pcv_session_create((const pcv_model*)(intptr_t)model, &o, &s))) return 0;
  return (jlong)(intptr_t)s;
}

JNIEXPORT void JNICALL Java_org_pocketcv_Session_nativeFree(JNIEnv* env, jclass cls, jlong session) {
  (void)env;
  (void)cls;
  pcv_session_free((pcv_session*)(intptr_t)session);
}

/* Bytes plane `p` of a frame addresses (row_stride * (rows - 1) + pixel_stride * (cols - 1)
 * + element bytes), with strides resolved to the format's defaults; 0 for an unused plane. */
static int64_t plane_bytes_needed(int format, int p, int width, int height, int row_stride, int pixel_stride) {
  int64_t cols, rows, elem, pix, row;
  const int64_t cw = (width + 1) / 2, ch = (height + 1) / 2;
  switch (format) {
    case PCV_FRAME_BGRA:
    case PCV_FRAME_RGBA:
    case PCV_FRAME_RGB:
    case PCV_FRAME_GRAY:
      if (p != 0) return 0;
      elem = format == PCV_FRAME_RGB ? 3 : format == PCV_FRAME_GRAY ? 1 : 4;
      cols = width;
      rows = height;
      break;
    case PCV_FRAME_NV21:
    case PCV_FRAME_NV12:
      if (p > 1) return 0;
      elem = p == 0 ? 1 : 2;
      cols = p == 0 ? width : cw;
      rows = p == 0 ? height : ch;
      break;
    default: /* I420, YUV_420_888 */
      elem = 1;
      cols = p == 0 ? width : cw;
      rows = p == 0 ? height : ch;
      break;
  }
  if (cols <= 0 || rows <= 0) return 0;
  pix = pixel_stride > 0 ? pixel_stride : elem;
  row = row_stride > 0 ? row_stride : pix * cols;
  return row * (rows - 1) + pix * (cols - 1) + elem;
}

JNIEXPORT void JNICALL Java_org_pocketcv_Session_nativeSetFrame(
    JNIEnv* env, jclass cls, jlong session, jint format, jint width, jint height,
    jobject p0, jint off0, jint row0, jint pix0, jobject p1, jint off1, jint row1, jint pix1,
    jobject p2, jint off2, jint row2, jint pix2, jint rotation, jboolean mirror, jint crop) {
  jobject bufs[3];
  jint offs[3], rows[3], pixs[3];
  pcv_frame f;
  int i;
  (void)cls;
  bufs[0] = p0, bufs[1] = p1, bufs[2] = p2;
  offs[0] = off0, offs[1] = off1, offs[2] = off2;
  rows[0] = row0, rows[1] = row1, rows[2] = row2;
  pixs[0] = pix0, pixs[1] = pix1, pixs[2] = pix2;
  memset(&f, 0, sizeof f);
  if (format < PCV_FRAME_NV21 || format > PCV_FRAME_GRAY || width <= 0 || height <= 0) {
    throw_invalid(env, "Session.setInputFrame: bad format or size");
    return;
  }
  f.format = (pcv_frame_format)format;
  f.width = width;
  f.height = height;
  for (i = 0; i < 3; ++i) {
    const int64_t need = plane_bytes_needed(format, i, width, height, rows[i], pixs[i]);
    uint8_t* base;
    jlong cap;
    if (need == 0 || bufs[i] == NULL) continue; /* the C API reports a missing needed plane */
    if (rows[i] < 0 || pixs[i] < 0 || offs[i] < 0) {
      throw_invalid(env, "Session.setInputFrame: negative stride or offset");
      return;
    }
    base = (uint8_t*)(*env)->GetDirectBufferAddress(env, bufs[i]);
    cap = (*env)->GetDirectBufferCapacity(env, bufs[i]);
    if (base == NULL || cap < 0) {
      throw_invalid(env, "Session.setInputFrame: planes must be direct ByteBuffers");
      return;
    }
    if ((int64_t)cap - offs[i] < need) {
      char msg[160];
      snprintf(msg, sizeof msg, "Session.setInputFrame: plane %d has %lld bytes from its position, the frame needs %lld",
               i, (long long)((int64_t)cap - offs[i]), (long long)need);
      throw_invalid(env, msg);
      return;
    }
    f.planes[i].data = base + offs[i];
    f.planes[i].row_stride = rows[i];
    f.planes[i].pixel_stride = pixs[i];
  }
  check(env, pcv_session_set_input_frame((pcv_session*)(intptr_t)session, &f, rotation, mirror ? 1 : 0,
                                         (pcv_crop_mode)crop));
}

JNIEXPORT void JNICALL Java_org_pocketcv_Session_nativeSetNv21(JNIEnv* env, jclass cls, jlong session,
                                                               jbyteArray nv21, jint width, jint height,
                                                               jint rotation, jboolean mirror) {
  int64_t need;
  jsize n;
  uint8_t* p;
  pcv_frame f;
  pcv_status s;
  (void)cls;
  if (nv21 == NULL || width <= 0 || height <= 0) {
    throw_invalid(env, "Session.setInputNv21: null array or bad size");
    return;
  }
  need = (int64_t)width * height + (int64_t)((width + 1) / 2) * ((height + 1) / 2) * 2;
  n = (*env)->GetArrayLength(env, nv21);
  if ((int64_t)n < need) {
    char msg[128];
    snprintf(msg, sizeof msg, "Session.setInputNv21: %dx%d needs %lld bytes, the array has %d", (int)width,
             (int)height, (long long)need, (int)n);
    throw_invalid(env, msg);
    return;
  }
  memset(&f, 0, sizeof f);
  f.format = PCV_FRAME_NV21;
  f.width = width;
  f.height = height;
  p = (uint8_t*)(*env)->GetPrimitiveArrayCritical(env, nv21, NULL);
  if (p == NULL) return;
  f.planes[0].data = p;
  f.planes[0].row_stride = width;
  f.planes[1].data = p + (size_t)width * (size_t)height;
  f.planes[1].row_stride = ((width + 1) / 2) * 2;
  s = pcv_session_set_input_frame((pcv_session*)(intptr_t)session, &f, rotation, mirror ? 1 : 0, PCV_CROP_CENTER);
  (*env)->ReleasePrimitiveArrayCritical(env, nv21, p, JNI_ABORT);
  check(env, s);
}

JNIEXPORT void JNICALL Java_org_pocketcv_Session_nativeSetImage(JNIEnv* env, jclass cls, jlong session,
                                                                jbyteArray pixels, jint width, jint height,
                                                                jint row_stride, jint format) {
  int64_t need;
  uint8_t* p;
  pcv_status s;
  (void)cls;
  if (pixels == NULL || width <= 0 || height <= 0 || row_stride < 0) {
    throw_invalid(env, "Session.setInputImage: null array, bad size or negative stride");
    return;
  }
  if (format != PCV_FRAME_RGB && format != PCV_FRAME_RGBA && format != PCV_FRAME_BGRA && format != PCV_FRAME_GRAY) {
    throw_invalid(env, "Session.setInputImage: format must be RGB, RGBA, BGRA or GRAY");
    return;
  }
  need = plane_bytes_needed(format, 0, width, height, row_stride, 0);
  if ((int64_t)(*env)->GetArrayLength(env, pixels) < need) {
    throw_invalid(env, "Session.setInputImage: the array is smaller than width, height and stride need");
    return;
  }
  p = (uint8_t*)(*env)->GetPrimitiveArrayCritical(env, pixels, NULL);
  if (p == NULL) return;
  s = pcv_session_set_input_image((pcv_session*)(intptr_t)session, p, width, height, row_stride,
                                  (pcv_frame_format)format);
  (*env)->ReleasePrimitiveArrayCritical(env, pixels, p, JNI_ABORT);
  check(env, s);
}

static void set_tensor(JNIEnv* env, jlong session, jint index, jarray array, size_t elem_bytes) {
  jsize n;
  void* p;
  pcv_status s;
  if (array == NULL) {
    throw_invalid(env, "Session.setInputTensor: data is null");
    return;
  }
  n = (*env)->GetArrayLength(env, array);
  p = (*env)->GetPrimitiveArrayCritical(env, array, NULL);
  if (p == NULL) return;
  s = pcv_session_set_input_tensor((pcv_session*)(intptr_t)session, index, p, (size_t)n * elem_bytes);
  (*env)->ReleasePrimitiveArrayCritical(env, array, p, JNI_ABORT);
  check(env, s);
}

JNIEXPORT void JNICALL Java_org_pocketcv_Session_nativeSetTensorBytes(JNIEnv* env, jclass cls, jlong session,
                                                                      jint index, jbyteArray data) {
  (void)cls;
  set_tensor(env, session, index, data, 1);
}

JNIEXPORT void JNICALL Java_org_pocketcv_Session_nativeSetTensorFloats(JNIEnv* env, jclass cls, jlong session,
                                                                       jint index, jfloatArray data) {
  (void)cls;
  set_tensor(env, session, index, data, sizeof(float));
}

JNIEXPORT void JNICALL Java_org_pocketcv_Session_nativeRun(JNIEnv* env, jclass cls, jlong session) {
  (void)cls;
  check(env, pcv_session_run((pcv_session*)(intptr_t)session));
}

JNIEXPORT jobjectArray JNICALL Java_org_pocketcv_Session_nativeTopK(JNIEnv* env, jclass cls, jlong session, jint k) {
  pcv_classification stack[16];
  pcv_classification* results = stack;
  pcv_tensor_info out = PCV_TENSOR_INFO_INIT;
  int32_t n = 0, i;
  jobjectArray arr = NULL;
  (void)cls;
  if (k < 1) {
    throw_invalid(env, "Session.topK: k must be >= 1");
    return NULL;
  }
  if (k > 16) {
    /* No more results than classes: bound the buffer by output 0's last axis. */
    int64_t classes;
    if (check(env, pcv_session_output((const pcv_session*)(intptr_t)session, 0, &out))) return NULL;
    classes = out.rank > 0 ? out.dims[out.rank - 1] : 1;
    if (k > classes) k = (jint)classes;
  }
  if (k > 16) {
    results = (pcv_classification*)malloc(sizeof(pcv_classification) * (size_t)k);
    if (results == NULL) {
      throw_message(env, PCV_ERROR_OUT_OF_MEMORY, "Session.topK: out of memory");
      return NULL;
    }
  }
  if (!check(env, pcv_session_top_k((pcv_session*)(intptr_t)session, k, results, &n))) {
    arr = (*env)->NewObjectArray(env, n, g_classification_class, NULL);
    for (i = 0; arr != NULL && i < n; ++i) {
      jstring label = (*env)->NewStringUTF(env, results[i].label);
      jobject c;
      if (label == NULL) {
        arr = NULL;
        break;
      }
      c = (*env)->NewObject(env, g_classification_class, g_classification_ctor, (jint)results[i].class_index, label,
                            (jfloat)results[i].score);
      if (c == NULL) {
        arr = NULL;
        break;
      }
      (*env)->SetObjectArrayElement(env, arr, i, c);
      (*env)->DeleteLocalRef(env, c);
      (*env)->DeleteLocalRef(env, label);
    }
  }
  if (results != stack) free(results);
  return arr;
}

JNIEXPORT jfloatArray JNICALL Java_org_pocketcv_Session_nativeOutputFloats(JNIEnv* env, jclass cls, jlong session,
                                                                           jint index) {
  pcv_tensor_info info = PCV_TENSOR_INFO_INIT;
  size_t n, i;
  jfloatArray arr;
  float* dst;
  (void)cls;
  if (check(env, pcv_session_output((const pcv_session*)(intptr_t)session, index, &info))) return NULL;
  switch (info.dtype) {
    case PCV_DTYPE_F32: n = info.size_bytes / 4; break;
    case PCV_DTYPE_I8:
    case PCV_DTYPE_U8: n = info.size_bytes; break;
    default:
      throw_message(env, PCV_ERROR_UNSUPPORTED, "Session.outputFloats: output is not f32, i8 or u8");
      return NULL;
  }
  if (n > (size_t)INT32_MAX) {
    throw_message(env, PCV_ERROR_UNSUPPORTED, "Session.outputFloats: output too large for a Java array");
    return NULL;
  }
  arr = (*env)->NewFloatArray(env, (jsize)n);
  if (arr == NULL) return NULL;
  if (info.dtype == PCV_DTYPE_F32) {
    (*env)->SetFloatArrayRegion(env, arr, 0, (jsize)n, (const jfloat*)info.data);
    return arr;
  }
  dst = (float*)(*env)->GetPrimitiveArrayCritical(env, arr, NULL);
  if (dst == NULL) return NULL;
  for (i = 0; i < n; ++i) {
    const int32_t q = info.dtype == PCV_DTYPE_I8 ? (int32_t)((const int8_t*)info.data)[i]
                                                 : (int32_t)((const uint8_t*)info.data)[i];
    dst[i] = info.scale * (float)(q - info.zero_point);
  }
  (*env)->ReleasePrimitiveArrayCritical(env, arr, dst, 0);
  return arr;
}

JNIEXPORT void JNICALL Java_org_pocketcv_Session_nativeTrace(JNIEnv* env, jclass cls, jlong session,
                                                             jdoubleArray out) {
  pcv_trace t = PCV_TRACE_INIT;
  jdouble v[3];
  (void)cls;
  if (check(env, pcv_session_last_trace((const pcv_session*)(intptr_t)session, &t))) return;
  v[0] = t.preprocess_ms;
  v[1] = t.inference_ms;
  v[2] = t.postprocess_ms;
  (*env)->SetDoubleArrayRegion(env, out, 0, 3, v);
}

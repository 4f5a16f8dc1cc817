/* pocketcv: the stable C API. Load an image classifier, feed it camera frames or pictures,
 * read the top-k classes. Used directly from C/C++ apps and by the Java (JNI) and Swift
 * bindings. C99; no exceptions cross it.
 *
 *   pcv_model* model;
 *   if (pcv_model_load_file("flowers.tflite", &model) != PCV_OK) {
 *     fprintf(stderr, "%s\n", pcv_last_error_message());
 *   }
 *   pcv_session* session;
 *   pcv_session_create(model, NULL, &session);            // NULL: default options
 *   pcv_session_set_input_frame(session, &frame, 90, 0, PCV_CROP_CENTER);
 *   pcv_session_run(session);
 *   pcv_classification top[3];
 *   int32_t n;
 *   pcv_session_top_k(session, 3, top, &n);                // "daisy 0.91", ...
 *   pcv_session_free(session);
 *   pcv_model_free(model);
 *
 * ERRORS. Every function that can fail returns a pcv_status. pcv_last_error_message() is the
 * message of the last pcv_* call made on the calling thread that returns a pcv_status: ""
 * after a success, a sentence naming the object and the problem after a failure
 * ("session_set_input_tensor: input 0 needs 150528 bytes (f32 1x112x112x3), got 12").
 *
 * THREAD SAFETY.
 *  - A pcv_model is immutable once loaded: any number of threads may use one model at once
 *    (pcv_model_input_spec, pcv_model_label, pcv_session_create).
 *  - A pcv_session is used by one thread at a time (calls on one session must not overlap;
 *    handing a session from thread to thread is fine). Use one session per thread: sessions
 *    share the model's weights, each has its own activation memory.
 *  - pcv_last_error_message is per thread.
 *
 * LIFETIME. Every handle made by a *_load_* / *_create function is released by the matching
 * *_free (which accepts NULL). A session keeps what it needs of its model: pcv_model_free may
 * be called while sessions made from it are alive. Pointers returned by the library (labels,
 * tensor data, error messages) say how long they stay valid where they are returned.
 *
 * ABI. Option and result structs that may grow start with `struct_size`: set it to
 * sizeof(the struct) (the PCV_*_INIT macros do); the library reads and writes only the fields
 * that fit, so code built against an older header keeps working. Enum values never change;
 * every enum is int-sized (the *_MAX_ENUM entries: not values to pass), and values outside
 * the listed ones are rejected with PCV_ERROR_INVALID_ARGUMENT.
 */
#ifndef POCKETCV_POCKETCV_H_
#define POCKETCV_POCKETCV_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(PCV_BUILDING_LIBRARY)
#define PCV_API __declspec(dllexport)
#else
#define PCV_API
#endif
#else
#define PCV_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define PCV_VERSION_MAJOR 0
#define PCV_VERSION_MINOR 1
#define PCV_VERSION_PATCH 0

/* "0.1.0". */
PCV_API const char* pcv_version(void);

/* ------------------------------------------------------------------------------------------
 * Status
 */
typedef enum pcv_status {
  PCV_OK = 0,
  PCV_ERROR_INVALID_ARGUMENT = 1, /* the caller passed something wrong (NULL, size, index) */
  PCV_ERROR_UNSUPPORTED = 2,      /* well-formed but not handled (an op, a dtype, a format) */
  PCV_ERROR_INVALID_MODEL = 3,    /* a model file is malformed */
  PCV_ERROR_IO = 4,               /* reading a file failed (missing, unreadable) */
  PCV_ERROR_OUT_OF_MEMORY = 5,    /* an allocation or the session's memory limit failed */
  PCV_ERROR_INTERNAL = 6,         /* a bug in pocketcv */
  PCV_STATUS_MAX_ENUM = 0x7FFFFFFF
} pcv_status;

/* "ok", "invalid_argument", ...; "unknown" for other values. Static storage. */
PCV_API const char* pcv_status_name(pcv_status status);

/* The message of the calling thread's last pcv_* call that returns a pcv_status ("" after a
 * success). Valid until that thread's next such call. Never NULL. */
PCV_API const char* pcv_last_error_message(void);

/* ------------------------------------------------------------------------------------------
 * Models
 */
typedef struct pcv_model pcv_model;

/* Loads .pcv, .tflite, .mlmodel, .mlpackage (a directory) or .onnx, chosen by the extension
 * or, failing that, by the content. Formats this build left out give PCV_ERROR_UNSUPPORTED.
 * Errors: PCV_ERROR_IO (missing file), PCV_ERROR_INVALID_MODEL (malformed; files are treated
 * as untrusted and verified), PCV_ERROR_UNSUPPORTED. On failure *out_model is set to NULL. */
PCV_API pcv_status pcv_model_load_file(const char* path, pcv_model** out_model);

/* Loads a model from memory: .pcv or .tflite bytes (recognized by their identifier at offset
 * 4), else Core ML .mlmodel bytes when this build has Core ML. The bytes are copied; the
 * caller may free them on return. `name` (may be NULL) prefixes error messages. */
PCV_API pcv_status pcv_model_load_memory(const void* data, size_t size_bytes, const char* name,
                                         pcv_model** out_model);

/* Releases a model. NULL is a no-op. Sessions made from it stay valid. */
PCV_API void pcv_model_free(pcv_model* model);

typedef enum pcv_color_order {
  PCV_COLOR_RGB = 0,
  PCV_COLOR_BGR = 1,
  PCV_COLOR_GRAY = 2,
  PCV_COLOR_MAX_ENUM = 0x7FFFFFFF
} pcv_color_order;

typedef enum pcv_dtype {
  PCV_DTYPE_F32 = 0,
  PCV_DTYPE_F16 = 1,
  PCV_DTYPE_I8 = 2,
  PCV_DTYPE_U8 = 3,
  PCV_DTYPE_I32 = 4,
  PCV_DTYPE_I64 = 5,
  PCV_DTYPE_MAX_ENUM = 0x7FFFFFFF
} pcv_dtype;

/* What the model expects as input 0 and what its output 0 means. A picture becomes the input
 * as: crop + resize to height x width, channels in `color` order, value = (pixel - mean[c]) /
 * std[c] with pixels 0..255; for a quantized input q = round(value / input_scale) +
 * input_zero_point. set_input_frame / set_input_image do all of this. */
typedef struct pcv_input_spec {
  size_t struct_size; /* = sizeof(pcv_input_spec) */
  int32_t width;
  int32_t height;
  int32_t channels; /* 3, or 1 for gray models */
  pcv_color_order color;
  float mean[3];
  float std[3];
  float crop_fraction;    /* central fraction kept by PCV_CROP_CENTER / PCV_CROP_STRETCH */
  pcv_dtype input_dtype;  /* F32, I8 or U8 */
  float input_scale;      /* I8/U8 inputs: real = scale * (q - zero_point); else 1 */
  int32_t input_zero_point;
  int32_t label_count;    /* labels the model carries (0 if none) */
  int32_t num_classes;    /* elements of output 0's last axis */
} pcv_input_spec;

#define PCV_INPUT_SPEC_INIT \
  {sizeof(pcv_input_spec), 0, 0, 0, PCV_COLOR_RGB, {0, 0, 0}, {0, 0, 0}, 0, PCV_DTYPE_F32, 0, 0, 0, 0}

/* Fills the fields of *spec that fit in spec->struct_size. */
PCV_API pcv_status pcv_model_input_spec(const pcv_model* model, pcv_input_spec* spec);

/* The label of class `index`, or NULL when the model has none at that index. Valid while
 * the model is alive (or, for pointers from pcv_session_top_k, while the session is). */
PCV_API const char* pcv_model_label(const pcv_model* model, int32_t index);

/* ------------------------------------------------------------------------------------------
 * Sessions
 */
typedef struct pcv_session pcv_session;

typedef struct pcv_session_options {
  size_t struct_size;        /* = sizeof(pcv_session_options) */
  int32_t threads;           /* 0: default (1); -1: one per core; 1..64: that many */
  int32_t reference_kernels; /* nonzero: plain reference kernels only (slow; for checks) */
  int64_t max_memory_bytes;  /* 0: default (8 GiB); refuse models needing more (weights +
                                activations + packed weights) with PCV_ERROR_OUT_OF_MEMORY,
                                before allocating */
} pcv_session_options;

#define PCV_SESSION_OPTIONS_INIT {sizeof(pcv_session_options), 0, 0, 0}

/* Prepares a session: checks the graph, picks kernels, plans memory. `options` may be NULL
 * (defaults). Errors: PCV_ERROR_UNSUPPORTED (an op or dtype the runtime lacks),
 * PCV_ERROR_OUT_OF_MEMORY, PCV_ERROR_INVALID_ARGUMENT. On failure *out_session = NULL. */
PCV_API pcv_status pcv_session_create(const pcv_model* model, const pcv_session_options* options,
                                      pcv_session** out_session);

/* Releases a session. NULL is a no-op. */
PCV_API void pcv_session_free(pcv_session* session);

/* Camera frames and pictures. Nothing is copied or owned: the planes must stay valid during
 * the call only. Sizes in pixels, strides in bytes (0 = packed / the format's default). */
typedef enum pcv_frame_format {
  PCV_FRAME_NV21 = 0,        /* planes[0] Y; planes[1] interleaved V,U, half size (Android) */
  PCV_FRAME_NV12 = 1,        /* planes[0] Y; planes[1] interleaved U,V (iOS 420f/420v) */
  PCV_FRAME_I420 = 2,        /* planes[0] Y, [1] U, [2] V, each pixel stride 1 */
  PCV_FRAME_YUV_420_888 = 3, /* Y, U, V, each plane its own row and pixel stride (Android) */
  PCV_FRAME_BGRA = 4,        /* planes[0], 4 bytes per pixel (iOS 32BGRA) */
  PCV_FRAME_RGBA = 5,        /* planes[0], 4 bytes per pixel */
  PCV_FRAME_RGB = 6,         /* planes[0], 3 bytes per pixel */
  PCV_FRAME_GRAY = 7,        /* planes[0], 1 byte per pixel */
  PCV_FRAME_MAX_ENUM = 0x7FFFFFFF
} pcv_frame_format;

typedef struct pcv_plane {
  const uint8_t* data;
  int32_t row_stride;   /* bytes between rows; 0 = packed */
  int32_t pixel_stride; /* bytes between pixels; 0 = the format's default */
} pcv_plane;

/* YUV is BT.601 full range (JFIF), as Android cameras deliver it. 4:2:0 chroma planes are
 * (width + 1) / 2 x (height + 1) / 2. Frozen layout (no struct_size). */
typedef struct pcv_frame {
  pcv_frame_format format;
  int32_t width;
  int32_t height;
  pcv_plane planes[3];
} pcv_frame;

typedef enum pcv_crop_mode {
  PCV_CROP_CENTER = 0,   /* largest centered rect with the input's aspect (x crop_fraction) */
  PCV_CROP_STRETCH = 1,  /* the whole picture (x crop_fraction), aspect not kept */
  PCV_CROP_LETTERBOX = 2, /* whole picture fit inside, aspect kept, black border */
  PCV_CROP_MAX_ENUM = 0x7FFFFFFF
} pcv_crop_mode;

/* Frame -> input 0 in one pass: rotate `rotation_degrees` clockwise (0, 90, 180, 270: the
 * rotation that makes the frame upright, e.g. Android's ImageInfo.getRotationDegrees()),
 * then mirror left-right if `mirror` (front camera), crop per `crop`, resize, convert color,
 * normalize with the model's mean/std and quantize if the input is I8/U8. Batch element 0.
 * Errors: PCV_ERROR_INVALID_ARGUMENT (NULL plane, strides too small, bad rotation, zero
 * size), PCV_ERROR_UNSUPPORTED (input 0 is not an NHWC image tensor). */
PCV_API pcv_status pcv_session_set_input_frame(pcv_session* session, const pcv_frame* frame,
                                               int32_t rotation_degrees, int32_t mirror,
                                               pcv_crop_mode crop);

/* A packed-pixel picture (format PCV_FRAME_RGB, RGBA, BGRA or GRAY; stride 0 = packed),
 * upright, center crop. Same as set_input_frame with a one-plane frame. */
PCV_API pcv_status pcv_session_set_input_image(pcv_session* session, const uint8_t* pixels,
                                               int32_t width, int32_t height,
                                               int32_t row_stride, pcv_frame_format format);

/* Copies raw input bytes (the input's dtype, NHWC, little-endian). `size_bytes` must equal
 * the input's byte size exactly (PCV_ERROR_INVALID_ARGUMENT otherwise). */
PCV_API pcv_status pcv_session_set_input_tensor(pcv_session* session, int32_t index,
                                                const void* data, size_t size_bytes);

/* Runs the model on the current inputs. No allocation. */
PCV_API pcv_status pcv_session_run(pcv_session* session);

typedef struct pcv_classification {
  int32_t class_index;
  const char* label; /* never NULL: "" when the model has no label for the class; valid
                        while the session is alive */
  float score;       /* probability in [0, 1] */
} pcv_classification;

/* The k most probable classes of output 0 (batch element 0), highest first (ties: lower
 * index first). Quantized outputs are dequantized; softmax is applied unless the output
 * already holds probabilities (the graph ends in softmax, or the values are non-negative and
 * sum to 1). Writes min(k, num_classes) entries to results[] and their number to *out_count
 * (may be NULL). Errors: PCV_ERROR_INVALID_ARGUMENT (k < 1, NULL results, no run yet). */
PCV_API pcv_status pcv_session_top_k(pcv_session* session, int32_t k,
                                     pcv_classification* results, int32_t* out_count);

#define PCV_MAX_RANK 8

typedef struct pcv_tensor_info {
  size_t struct_size; /* = sizeof(pcv_tensor_info) */
  const char* name;   /* valid while the session is alive */
  pcv_dtype dtype;
  int32_t rank;
  int64_t dims[PCV_MAX_RANK];
  void* data;         /* session memory: outputs are read-only, inputs writable; valid until
                         the session is freed (contents change with every run) */
  size_t size_bytes;
  float scale;        /* quantized tensors: real = scale * (q - zero_point); else 1, 0 */
  int32_t zero_point;
} pcv_tensor_info;

#define PCV_TENSOR_INFO_INIT \
  {sizeof(pcv_tensor_info), NULL, PCV_DTYPE_F32, 0, {0, 0, 0, 0, 0, 0, 0, 0}, NULL, 0, 0, 0}

PCV_API int32_t pcv_session_num_inputs(const pcv_session* session);   /* -1 for NULL */
PCV_API int32_t pcv_session_num_outputs(const pcv_session* session);  /* -1 for NULL */
/* Describes input / output `index` (a view of the session's memory; see pcv_tensor_info). */
PCV_API pcv_status pcv_session_input(pcv_session* session, int32_t index,
                                     pcv_tensor_info* info);
PCV_API pcv_status pcv_session_output(const pcv_session* session, int32_t index,
                                      pcv_tensor_info* info);

/* Where the time of the last frame went (milliseconds, wall clock, calling thread):
 * preprocess = the last set_input_* call, inference = the last run, postprocess = the last
 * top_k. */
typedef struct pcv_trace {
  size_t struct_size; /* = sizeof(pcv_trace) */
  double preprocess_ms;
  double inference_ms;
  double postprocess_ms;
} pcv_trace;

#define PCV_TRACE_INIT {sizeof(pcv_trace), 0.0, 0.0, 0.0}

PCV_API pcv_status pcv_session_last_trace(const pcv_session* session, pcv_trace* trace);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POCKETCV_POCKETCV_H_ */

// The C API end to end: loading (file, memory), pictures and camera frames in, top-k out,
// error codes and messages, struct_size handling, and one model shared by many threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "capi/capi_test_util.h"
#include "ir/pcv_format.h"
#include "pocketcv/pocketcv.h"
#include "pocketcv/pocketcv.hpp"
#include "support/paths.h"
#include "vision/image.h"
#include "zoo/zoo.h"

extern "C" int pcv_c99_smoke(const char* model_path, char* message, size_t message_size);

namespace {

using namespace pcv::capi_testing;

constexpr int kSize = 48;     // model input side
constexpr int kClasses = 5;
constexpr int kImgW = 160;    // test picture (4:3, even sides)
constexpr int kImgH = 120;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

class CapiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = pcv::testing::make_temp_dir("capi");
    pcv::zoo::ZooOptions o;
    o.arch = "mobilenet_v2";
    o.width = 0.35f;
    o.size = kSize;
    o.classes = kClasses;
    o.seed = 7;
    o.labels = {"cat", "dog", "bird", "fish", "frog"};
    auto model = pcv::zoo::create_model(o);
    ASSERT_TRUE(model.has_value()) << model.status().to_string();
    path_ = dir_ + "/model.pcv";
    ASSERT_TRUE(pcv::ir::save_pcv(*model, path_).is_ok());
  }

  void SetUp() override {
    ASSERT_EQ(pcv_model_load_file(path_.c_str(), &model_), PCV_OK) << pcv_last_error_message();
    ASSERT_EQ(pcv_session_create(model_, nullptr, &session_), PCV_OK) << pcv_last_error_message();
  }
  void TearDown() override {
    pcv_session_free(session_);
    pcv_model_free(model_);
  }

  static std::string dir_, path_;
  pcv_model* model_ = nullptr;
  pcv_session* session_ = nullptr;
};
std::string CapiTest::dir_;
std::string CapiTest::path_;

std::vector<float> input_floats(pcv_session* s) {
  pcv_tensor_info info = PCV_TENSOR_INFO_INIT;
  EXPECT_EQ(pcv_session_input(s, 0, &info), PCV_OK);
  const float* p = static_cast<const float*>(info.data);
  return std::vector<float>(p, p + info.size_bytes / sizeof(float));
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

int argmax(const std::vector<float>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

TEST_F(CapiTest, VersionAndStatusNames) {
  EXPECT_STREQ(pcv_version(), "0.1.0");
  EXPECT_STREQ(pcv_status_name(PCV_OK), "ok");
  EXPECT_STREQ(pcv_status_name(PCV_ERROR_IO), "io_error");
  EXPECT_STREQ(pcv_status_name(static_cast<pcv_status>(99)), "unknown");
}

TEST_F(CapiTest, InputSpecAndLabels) {
  pcv_input_spec spec = PCV_INPUT_SPEC_INIT;
  ASSERT_EQ(pcv_model_input_spec(model_, &spec), PCV_OK);
  EXPECT_EQ(spec.width, kSize);
  EXPECT_EQ(spec.height, kSize);
  EXPECT_EQ(spec.channels, 3);
  EXPECT_EQ(spec.color, PCV_COLOR_RGB);
  EXPECT_FLOAT_EQ(spec.mean[0], 127.5f);
  EXPECT_FLOAT_EQ(spec.std[2], 127.5f);
  EXPECT_EQ(spec.input_dtype, PCV_DTYPE_F32);
  EXPECT_EQ(spec.label_count, kClasses);
  EXPECT_EQ(spec.num_classes, kClasses);
  EXPECT_STREQ(pcv_model_label(model_, 0), "cat");
  EXPECT_STREQ(pcv_model_label(model_, 4), "frog");
  EXPECT_EQ(pcv_model_label(model_, 5), nullptr);
  EXPECT_EQ(pcv_model_label(model_, -1), nullptr);
  EXPECT_EQ(pcv_model_label(nullptr, 0), nullptr);

  // An older caller's smaller struct: fields past its struct_size are left alone.
  pcv_input_spec old = PCV_INPUT_SPEC_INIT;
  old.struct_size = offsetof(pcv_input_spec, channels);
  old.channels = -7;
  old.num_classes = -7;
  ASSERT_EQ(pcv_model_input_spec(model_, &old), PCV_OK);
  EXPECT_EQ(old.width, kSize);
  EXPECT_EQ(old.channels, -7);
  EXPECT_EQ(old.num_classes, -7);
}

TEST_F(CapiTest, LoadFromMemoryGivesTheSameModel) {
  const std::vector<uint8_t> bytes = read_bytes(path_);
  ASSERT_GT(bytes.size(), 100u);
  pcv_model* mem = nullptr;
  ASSERT_EQ(pcv_model_load_memory(bytes.data(), bytes.size(), "asset:model.pcv", &mem), PCV_OK)
      << pcv_last_error_message();
  pcv_session* s2 = nullptr;
  ASSERT_EQ(pcv_session_create(mem, nullptr, &s2), PCV_OK);
  const auto rgb = make_rgb(kImgW, kImgH);
  for (pcv_session* s : {session_, s2}) {
    ASSERT_EQ(pcv_session_set_input_image(s, rgb.data(), kImgW, kImgH, 0, PCV_FRAME_RGB), PCV_OK);
    ASSERT_EQ(pcv_session_run(s), PCV_OK);
  }
  EXPECT_EQ(output_floats(session_), output_floats(s2));  // bit for bit
  pcv_session_free(s2);
  pcv_model_free(mem);
}

// The same scene as an RGB picture and as an NV21 camera frame: the model inputs differ only
// by chroma subsampling and YUV rounding. Bounds: input |difference| <= 2 pixel levels
// (2 / 127.5 in normalized units; measured 0.95 level), mean <= 0.5 level (measured 0.22);
// probabilities within 0.05 (measured 0.031: the seeded, untrained network amplifies input
// differences ~4x more than a trained one would); same top-1 (0.88 vs 0.09 here).
TEST_F(CapiTest, RgbImageAndNv21FrameAgree) {
  const auto rgb = make_rgb(kImgW, kImgH);
  ASSERT_EQ(pcv_session_set_input_image(session_, rgb.data(), kImgW, kImgH, 0, PCV_FRAME_RGB), PCV_OK)
      << pcv_last_error_message();
  const auto in_rgb = input_floats(session_);
  ASSERT_EQ(pcv_session_run(session_), PCV_OK);
  const auto out_rgb = output_floats(session_);

  const Nv21 nv = rgb_to_nv21(rgb, kImgW, kImgH);
  const pcv_frame f = nv.frame();
  ASSERT_EQ(pcv_session_set_input_frame(session_, &f, 0, 0, PCV_CROP_CENTER), PCV_OK) << pcv_last_error_message();
  const auto in_nv = input_floats(session_);
  ASSERT_EQ(pcv_session_run(session_), PCV_OK);
  const auto out_nv = output_floats(session_);

  EXPECT_LE(max_abs_diff(in_rgb, in_nv), 2 / 127.5f);
  double mean = 0;
  for (size_t i = 0; i < in_rgb.size(); ++i) mean += std::abs(in_rgb[i] - in_nv[i]);
  EXPECT_LE(mean / static_cast<double>(in_rgb.size()), 0.5 / 127.5);
  ASSERT_EQ(out_rgb.size(), static_cast<size_t>(kClasses));
  EXPECT_LE(max_abs_diff(out_rgb, out_nv), 0.05f);
  EXPECT_EQ(argmax(out_rgb), argmax(out_nv));

  pcv_classification top[1];
  int32_t n = 0;
  ASSERT_EQ(pcv_session_top_k(session_, 1, top, &n), PCV_OK);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(top[0].class_index, argmax(out_rgb));
}

// A sensor frame stored sideways (as phones deliver portrait shots) with rotation 90 gives
// the same input as the upright picture; a mirrored one with mirror = 1 too.
TEST_F(CapiTest, FrameRotationAndMirror) {
  const auto rgb = make_rgb(kImgW, kImgH, 3);
  const pcv::vision::ImageView upright{rgb.data(), kImgH, kImgW, 3, static_cast<size_t>(kImgW) * 3};
  ASSERT_EQ(pcv_session_set_input_image(session_, rgb.data(), kImgW, kImgH, 0, PCV_FRAME_RGB), PCV_OK);
  const auto expected = input_floats(session_);

  // Stored = upright rotated 270 cw; rotating it 90 cw makes it upright again.
  const pcv::vision::Image stored = pcv::vision::rotate_image(upright, pcv::vision::Rotation::k270, false);
  pcv_frame f{};
  f.format = PCV_FRAME_RGB;
  f.width = stored.width();
  f.height = stored.height();
  f.planes[0] = {stored.data(), static_cast<int32_t>(stored.row_stride_bytes()), 3};
  ASSERT_EQ(pcv_session_set_input_frame(session_, &f, 90, 0, PCV_CROP_CENTER), PCV_OK) << pcv_last_error_message();
  EXPECT_LE(max_abs_diff(input_floats(session_), expected), 1e-5f);

  const pcv::vision::Image mirrored = pcv::vision::rotate_image(upright, pcv::vision::Rotation::k0, true);
  f.width = mirrored.width();
  f.height = mirrored.height();
  f.planes[0] = {mirrored.data(), static_cast<int32_t>(mirrored.row_stride_bytes()), 3};
  ASSERT_EQ(pcv_session_set_input_frame(session_, &f, 0, 1, PCV_CROP_CENTER), PCV_OK);
  EXPECT_LE(max_abs_diff(input_floats(session_), expected), 1e-5f);
}

TEST_F(CapiTest, RgbaBgraAndStridedImagesMatchRgb) {
  const auto rgb = make_rgb(kImgW, kImgH, 1);
  ASSERT_EQ(pcv_session_set_input_image(session_, rgb.data(), kImgW, kImgH, 0, PCV_FRAME_RGB), PCV_OK);
  const auto expected = input_floats(session_);
  const int stride = kImgW * 4 + 64;  // padded rows, as camera buffers have
  std::vector<uint8_t> rgba(static_cast<size_t>(stride) * kImgH, 0xEE), bgra = rgba;
  for (int y = 0; y < kImgH; ++y) {
    for (int x = 0; x < kImgW; ++x) {
      const uint8_t* p = &rgb[(static_cast<size_t>(y) * kImgW + x) * 3];
      uint8_t* q = &rgba[static_cast<size_t>(y) * stride + x * 4];
      uint8_t* r = &bgra[static_cast<size_t>(y) * stride + x * 4];
      q[0] = p[0], q[1] = p[1], q[2] = p[2], q[3] = 255;
      r[0] = p[2], r[1] = p[1], r[2] = p[0], r[3] = 255;
    }
  }
  ASSERT_EQ(pcv_session_set_input_image(session_, rgba.data(), kImgW, kImgH, stride, PCV_FRAME_RGBA), PCV_OK);
  EXPECT_LE(max_abs_diff(input_floats(session_), expected), 1e-6f);
  ASSERT_EQ(pcv_session_set_input_image(session_, bgra.data(), kImgW, kImgH, stride, PCV_FRAME_BGRA), PCV_OK);
  EXPECT_LE(max_abs_diff(input_floats(session_), expected), 1e-6f);
}

TEST_F(CapiTest, TopKIsSortedAndSumsToAtMostOne) {
  const auto rgb = make_rgb(kImgW, kImgH, 2);
  ASSERT_EQ(pcv_session_set_input_image(session_, rgb.data(), kImgW, kImgH, 0, PCV_FRAME_RGB), PCV_OK);
  ASSERT_EQ(pcv_session_run(session_), PCV_OK);
  const auto probs = output_floats(session_);  // the zoo model ends in softmax

  std::vector<pcv_classification> top(kClasses + 3);
  int32_t n = -1;
  ASSERT_EQ(pcv_session_top_k(session_, kClasses + 3, top.data(), &n), PCV_OK);
  ASSERT_EQ(n, kClasses);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    EXPECT_GE(top[i].score, 0.f);
    EXPECT_LE(top[i].score, 1.f);
    if (i > 0) {
      EXPECT_GE(top[i - 1].score, top[i].score);
    }
    EXPECT_FLOAT_EQ(top[i].score, probs[static_cast<size_t>(top[i].class_index)]);  // no second softmax
    EXPECT_STREQ(top[i].label, pcv_model_label(model_, top[i].class_index));
    sum += top[i].score;
  }
  EXPECT_LE(sum, 1.0 + 1e-5);
  EXPECT_NEAR(sum, 1.0, 1e-4);

  ASSERT_EQ(pcv_session_top_k(session_, 2, top.data(), &n), PCV_OK);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(top[0].class_index, argmax(probs));

  pcv_trace trace = PCV_TRACE_INIT;
  ASSERT_EQ(pcv_session_last_trace(session_, &trace), PCV_OK);
  EXPECT_GT(trace.preprocess_ms, 0.0);
  EXPECT_GT(trace.inference_ms, 0.0);
  EXPECT_GE(trace.postprocess_ms, 0.0);
}

// A graph whose output is logits (no softmax) gets one in top_k; the input is int8, so
// set_input_image quantizes (q = round((pixel - mean) / std / scale) + zero_point).
//   x (1, 8, 8, 3) i8, scale 1, zp -128 -> dequantize -> mean(H, W) -> fully_connected (4, 3)
TEST(CapiLogits, QuantizedInputAndSoftmaxOnLogits) {
  using namespace pcv::ir;
  Model m;
  Graph& g = m.graph;
  const ValueId x = g.add_input("x", DType::kI8, {1, 8, 8, 3}, QuantParams::per_tensor(1.f, -128));
  const ValueId dq = g.add_node(OpType::kDequantize, "dq", {x});
  const ValueId mean = g.add_node(OpType::kMean, "mean", {dq});
  const std::vector<float> w = {0.02f, 0, 0, 0, 0.01f, 0, 0, 0, -0.01f, 0.005f, 0.005f, 0.005f};
  const ValueId wv = g.add_constant("w", Tensor::from_vector<float>({4, 3}, w));
  const ValueId fc = g.add_node(OpType::kFullyConnected, "fc", {mean, wv});
  g.mark_output(fc);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  m.input_spec.height = m.input_spec.width = 8;
  m.input_spec.labels = {"r", "g", "not_b", "gray"};
  auto bytes = write_pcv(m);
  ASSERT_TRUE(bytes.has_value()) << bytes.status().to_string();

  pocketcv::Model model = pocketcv::Model::load_memory(bytes->data(), bytes->size(), "logits.pcv");
  EXPECT_EQ(model.input_spec().input_dtype, PCV_DTYPE_I8);
  EXPECT_EQ(model.input_spec().input_zero_point, -128);
  pocketcv::Session session(model);
  const uint8_t px[3] = {200, 100, 50};  // a flat color: every q = pixel - 128
  std::vector<uint8_t> img(16 * 16 * 3);
  for (size_t i = 0; i < img.size(); ++i) img[i] = px[i % 3];
  session.set_input_image(img.data(), 16, 16, 0, PCV_FRAME_RGB);
  const pcv_tensor_info in = session.input(0);
  ASSERT_EQ(in.dtype, PCV_DTYPE_I8);
  const auto* q = static_cast<const int8_t*>(in.data);
  EXPECT_EQ(q[0], 200 - 128);
  EXPECT_EQ(q[1], 100 - 128);
  EXPECT_EQ(q[2], 50 - 128);

  const auto top = session.run().top_k(4);
  ASSERT_EQ(top.size(), 4u);
  const double c[3] = {200, 100, 50};  // dequantized: scale * (q - zp) = the pixel values
  double logits[4], sum = 0;
  for (int o = 0; o < 4; ++o) {
    logits[o] = w[o * 3] * c[0] + w[o * 3 + 1] * c[1] + w[o * 3 + 2] * c[2];
  }
  const double mx = *std::max_element(logits, logits + 4);
  for (double l : logits) sum += std::exp(l - mx);
  double total = 0;
  for (const auto& t : top) {
    EXPECT_NEAR(t.score, std::exp(logits[t.class_index] - mx) / sum, 1e-5) << t.label;
    total += t.score;
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
  EXPECT_EQ(top[0].label, "r");
}

TEST_F(CapiTest, OutputInfoAndInputTensor) {
  EXPECT_EQ(pcv_session_num_inputs(session_), 1);
  EXPECT_EQ(pcv_session_num_outputs(session_), 1);
  EXPECT_EQ(pcv_session_num_inputs(nullptr), -1);
  pcv_tensor_info in = PCV_TENSOR_INFO_INIT;
  ASSERT_EQ(pcv_session_input(session_, 0, &in), PCV_OK);
  EXPECT_EQ(in.dtype, PCV_DTYPE_F32);
  ASSERT_EQ(in.rank, 4);
  EXPECT_EQ(in.dims[0], 1);
  EXPECT_EQ(in.dims[1], kSize);
  EXPECT_EQ(in.dims[3], 3);
  EXPECT_EQ(in.size_bytes, static_cast<size_t>(kSize) * kSize * 3 * 4);
  ASSERT_NE(in.name, nullptr);

  std::vector<float> zeros(in.size_bytes / 4, 0.25f);
  ASSERT_EQ(pcv_session_set_input_tensor(session_, 0, zeros.data(), in.size_bytes), PCV_OK);
  EXPECT_EQ(static_cast<const float*>(in.data)[17], 0.25f);  // the view sees the session memory
  ASSERT_EQ(pcv_session_run(session_), PCV_OK);
  pcv_tensor_info out = PCV_TENSOR_INFO_INIT;
  ASSERT_EQ(pcv_session_output(session_, 0, &out), PCV_OK);
  EXPECT_EQ(out.dtype, PCV_DTYPE_F32);
  EXPECT_EQ(out.rank, 2);
  EXPECT_EQ(out.dims[1], kClasses);
  EXPECT_EQ(out.size_bytes, kClasses * sizeof(float));

  // Old, smaller struct: only what fits is written.
  pcv_tensor_info old = PCV_TENSOR_INFO_INIT;
  old.struct_size = offsetof(pcv_tensor_info, rank);
  old.rank = 99;
  ASSERT_EQ(pcv_session_output(session_, 0, &old), PCV_OK);
  EXPECT_EQ(old.dtype, PCV_DTYPE_F32);
  EXPECT_EQ(old.rank, 99);
}

// The session keeps what it needs: the model handle may go first (bindings' GC order).
TEST_F(CapiTest, SessionOutlivesModelHandle) {
  pcv_model_free(model_);
  model_ = nullptr;
  const auto rgb = make_rgb(kImgW, kImgH);
  ASSERT_EQ(pcv_session_set_input_image(session_, rgb.data(), kImgW, kImgH, 0, PCV_FRAME_RGB), PCV_OK);
  ASSERT_EQ(pcv_session_run(session_), PCV_OK);
  pcv_classification top[2];
  ASSERT_EQ(pcv_session_top_k(session_, 2, top, nullptr), PCV_OK);
  EXPECT_GT(std::strlen(top[0].label), 0u);
}

TEST_F(CapiTest, ErrorsMissingFileAndCorruptBytes) {
  pcv_model* m = reinterpret_cast<pcv_model*>(0x1);
  EXPECT_EQ(pcv_model_load_file((dir_ + "/nope.pcv").c_str(), &m), PCV_ERROR_IO);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(std::string(pcv_last_error_message()).find("nope.pcv"), std::string::npos) << pcv_last_error_message();

  // A successful call clears the message.
  pcv_input_spec spec = PCV_INPUT_SPEC_INIT;
  ASSERT_EQ(pcv_model_input_spec(model_, &spec), PCV_OK);
  EXPECT_STREQ(pcv_last_error_message(), "");

  std::vector<uint8_t> bytes = read_bytes(path_);
  // Garbage with the right identifier, a truncated file, and bytes of no known format.
  std::vector<uint8_t> garbage(512);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 131 + 7);
  std::memcpy(garbage.data() + 4, "PCV1", 4);
  const std::vector<uint8_t> truncated(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() / 2));
  const std::vector<uint8_t> unknown(64, 0x42);
  const std::vector<const std::vector<uint8_t>*> bad = {&garbage, &truncated, &unknown};
  for (const std::vector<uint8_t>* b : bad) {
    m = nullptr;
    EXPECT_EQ(pcv_model_load_memory(b->data(), b->size(), "bad.bin", &m), PCV_ERROR_INVALID_MODEL);
    EXPECT_EQ(m, nullptr);
    EXPECT_NE(std::string(pcv_last_error_message()).find("bad.bin"), std::string::npos) << pcv_last_error_message();
  }
  // Corrupt bytes in a file on disk: same code through the file path.
  const std::string corrupt = dir_ + "/corrupt.pcv";
  std::ofstream(corrupt, std::ios::binary).write(reinterpret_cast<const char*>(garbage.data()),
                                                 static_cast<std::streamsize>(garbage.size()));
  EXPECT_EQ(pcv_model_load_file(corrupt.c_str(), &m), PCV_ERROR_INVALID_MODEL);
  EXPECT_EQ(pcv_model_load_memory(bytes.data(), 3, nullptr, &m), PCV_ERROR_INVALID_MODEL);

  // Every byte flip of a region in the header must fail cleanly or load (never crash).
  for (size_t i = 0; i < 64 && i < bytes.size(); ++i) {
    std::vector<uint8_t> flipped = bytes;
    flipped[i] ^= 0xFF;
    m = nullptr;
    if (pcv_model_load_memory(flipped.data(), flipped.size(), "flip", &m) == PCV_OK) pcv_model_free(m);
  }
}

TEST_F(CapiTest, ErrorsWrongSizesAndArguments) {
  std::vector<uint8_t> small(12);
  EXPECT_EQ(pcv_session_set_input_tensor(session_, 0, small.data(), small.size()), PCV_ERROR_INVALID_ARGUMENT);
  const std::string msg = pcv_last_error_message();
  EXPECT_NE(msg.find("needs 27648 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("got 12"), std::string::npos) << msg;
  EXPECT_EQ(pcv_session_set_input_tensor(session_, 1, small.data(), small.size()), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_tensor(session_, -1, small.data(), small.size()), PCV_ERROR_INVALID_ARGUMENT);

  pcv_classification top[3];
  EXPECT_EQ(pcv_session_top_k(session_, 3, top, nullptr), PCV_ERROR_INVALID_ARGUMENT);  // no run yet
  EXPECT_NE(std::string(pcv_last_error_message()).find("pcv_session_run"), std::string::npos);
  ASSERT_EQ(pcv_session_run(session_), PCV_OK);
  EXPECT_EQ(pcv_session_top_k(session_, 0, top, nullptr), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_top_k(session_, 3, nullptr, nullptr), PCV_ERROR_INVALID_ARGUMENT);

  const auto rgb = make_rgb(kImgW, kImgH);
  const Nv21 nv = rgb_to_nv21(rgb, kImgW, kImgH);
  pcv_frame f = nv.frame();
  EXPECT_EQ(pcv_session_set_input_frame(session_, &f, 45, 0, PCV_CROP_CENTER), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(pcv_last_error_message()).find("rotation"), std::string::npos);
  EXPECT_EQ(pcv_session_set_input_frame(session_, &f, 0, 0, static_cast<pcv_crop_mode>(9)), PCV_ERROR_INVALID_ARGUMENT);
  f.planes[1].data = nullptr;
  EXPECT_EQ(pcv_session_set_input_frame(session_, &f, 0, 0, PCV_CROP_CENTER), PCV_ERROR_INVALID_ARGUMENT);
  f = nv.frame();
  f.planes[0].row_stride = kImgW / 2;  // smaller than a row
  EXPECT_EQ(pcv_session_set_input_frame(session_, &f, 0, 0, PCV_CROP_CENTER), PCV_ERROR_INVALID_ARGUMENT);
  f = nv.frame();
  f.format = static_cast<pcv_frame_format>(42);
  EXPECT_EQ(pcv_session_set_input_frame(session_, &f, 0, 0, PCV_CROP_CENTER), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_image(session_, rgb.data(), kImgW, kImgH, 0, PCV_FRAME_NV21),
            PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_image(session_, rgb.data(), 0, kImgH, 0, PCV_FRAME_RGB), PCV_ERROR_INVALID_ARGUMENT);

  pcv_session_options o = PCV_SESSION_OPTIONS_INIT;
  o.threads = 1000;
  pcv_session* s = nullptr;
  EXPECT_EQ(pcv_session_create(model_, &o, &s), PCV_ERROR_INVALID_ARGUMENT);
  o = PCV_SESSION_OPTIONS_INIT;
  o.struct_size = 0;
  EXPECT_EQ(pcv_session_create(model_, &o, &s), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(pcv_last_error_message()).find("struct_size"), std::string::npos);
  o = PCV_SESSION_OPTIONS_INIT;
  o.max_memory_bytes = 1000;  // far below the arena
  EXPECT_EQ(pcv_session_create(model_, &o, &s), PCV_ERROR_OUT_OF_MEMORY) << pcv_last_error_message();
  EXPECT_EQ(s, nullptr);
  pcv_input_spec spec = PCV_INPUT_SPEC_INIT;
  spec.struct_size = 0;
  EXPECT_EQ(pcv_model_input_spec(model_, &spec), PCV_ERROR_INVALID_ARGUMENT);
}

TEST_F(CapiTest, ErrorsNullHandles) {
  pcv_model* m = nullptr;
  pcv_session* s = nullptr;
  pcv_classification top[1];
  pcv_tensor_info info = PCV_TENSOR_INFO_INIT;
  pcv_trace trace = PCV_TRACE_INIT;
  pcv_input_spec spec = PCV_INPUT_SPEC_INIT;
  const uint8_t px[3] = {1, 2, 3};
  pcv_frame f{};
  EXPECT_EQ(pcv_model_load_file(nullptr, &m), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_model_load_file(path_.c_str(), nullptr), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_model_load_memory(nullptr, 10, "x", &m), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_model_input_spec(nullptr, &spec), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_model_input_spec(model_, nullptr), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_create(nullptr, nullptr, &s), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(pcv_last_error_message()).find("model is NULL"), std::string::npos);
  EXPECT_EQ(pcv_session_create(model_, nullptr, nullptr), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_frame(nullptr, &f, 0, 0, PCV_CROP_CENTER), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_frame(session_, nullptr, 0, 0, PCV_CROP_CENTER), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_image(nullptr, px, 1, 1, 0, PCV_FRAME_RGB), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_image(session_, nullptr, 1, 1, 0, PCV_FRAME_RGB), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_tensor(nullptr, 0, px, 3), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_tensor(session_, 0, nullptr, 3), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_run(nullptr), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_top_k(nullptr, 1, top, nullptr), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_input(nullptr, 0, &info), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_output(nullptr, 0, &info), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_output(session_, 0, nullptr), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_output(session_, 3, &info), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_last_trace(nullptr, &trace), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_last_trace(session_, nullptr), PCV_ERROR_INVALID_ARGUMENT);
  pcv_model_free(nullptr);
  pcv_session_free(nullptr);
}

TEST_F(CapiTest, CppWrapperThrowsWithStatusAndMessage) {
  try {
    pocketcv::Model::load_file(dir_ + "/missing.tflite");
    FAIL() << "no exception";
  } catch (const pocketcv::Error& e) {
    EXPECT_EQ(e.status(), PCV_ERROR_IO);
    EXPECT_NE(std::string(e.what()).find("missing.tflite"), std::string::npos);
  }
  auto model = pocketcv::Model::load_file(path_);
  EXPECT_EQ(model.labels(), (std::vector<std::string>{"cat", "dog", "bird", "fish", "frog"}));
  pocketcv::Session session(model);
  const auto rgb = make_rgb(kImgW, kImgH);
  const Nv21 nv = rgb_to_nv21(rgb, kImgW, kImgH);
  const auto top = session.classify(nv.frame(), 0, false, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_GE(top[0].score, top[1].score);
  EXPECT_THROW(session.set_input_tensor(0, rgb.data(), 5), pocketcv::Error);
}

// The header is C99: a C translation unit (compiled with -std=c99 -pedantic-errors) uses it.
TEST_F(CapiTest, UsableFromC99) {
  char message[256] = {0};
  EXPECT_EQ(pcv_c99_smoke(path_.c_str(), message, sizeof message), 0) << message;
  EXPECT_STRNE(message, "");  // "label score"
}

// One model, 8 sessions on 8 threads, 50 frames each (pictures and NV21 frames of 4 scenes,
// rotations): every output equals the single-threaded run bit for bit, and each thread's
// error message is its own.
TEST_F(CapiTest, ManyThreadsShareOneModel) {
  constexpr int kThreads = 8, kIters = 50, kScenes = 4;
  std::vector<std::vector<uint8_t>> rgb;
  std::vector<Nv21> nv;
  for (int i = 0; i < kScenes; ++i) {
    rgb.push_back(make_rgb(kImgW, kImgH, i));
    nv.push_back(rgb_to_nv21(rgb.back(), kImgW, kImgH));
  }
  // Frame i: scene i % 4; even i an RGB picture, odd i an NV21 frame rotated (i / 2 % 4) * 90.
  auto feed = [&](pcv_session* s, int i) {
    const int scene = i % kScenes;
    if (i % 2 == 0) return pcv_session_set_input_image(s, rgb[scene].data(), kImgW, kImgH, 0, PCV_FRAME_RGB);
    const pcv_frame f = nv[scene].frame();
    return pcv_session_set_input_frame(s, &f, (i / 2 % 4) * 90, i % 3 == 0, PCV_CROP_CENTER);
  };
  std::vector<std::vector<float>> expected(kIters);
  std::vector<int> expected_top(kIters);
  for (int i = 0; i < kIters; ++i) {
    ASSERT_EQ(feed(session_, i), PCV_OK) << pcv_last_error_message();
    ASSERT_EQ(pcv_session_run(session_), PCV_OK);
    expected[i] = output_floats(session_);
    pcv_classification top[1];
    ASSERT_EQ(pcv_session_top_k(session_, 1, top, nullptr), PCV_OK);
    expected_top[i] = top[0].class_index;
  }

  std::vector<int> mismatches(kThreads, 0), failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      pcv_session* s = nullptr;
      if (pcv_session_create(model_, nullptr, &s) != PCV_OK) {
        ++failures[t];
        return;
      }
      for (int k = 0; k < kIters; ++k) {
        const int i = (k + t * 7) % kIters;  // threads walk the frames out of phase
        if (feed(s, i) != PCV_OK || pcv_session_run(s) != PCV_OK) {
          ++failures[t];
          continue;
        }
        pcv_classification top[1];
        if (pcv_session_top_k(s, 1, top, nullptr) != PCV_OK) ++failures[t];
        if (output_floats(s) != expected[i] || top[0].class_index != expected_top[i]) ++mismatches[t];
        if (k % 10 == 0) {  // thread-local messages
          const std::string mine = "thread" + std::to_string(t) + ".pcv";
          pcv_model* m = nullptr;
          if (pcv_model_load_file(mine.c_str(), &m) != PCV_ERROR_IO ||
              std::string(pcv_last_error_message()).find(mine) == std::string::npos) {
            ++failures[t];
          }
        }
      }
      pcv_session_free(s);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], 0) << "thread " << t;
    EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  }
}

}  // namespace

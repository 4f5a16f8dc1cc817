// pocketcv predict / compare / bench as a user runs them: output, JSON, exit codes, messages.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "report/thumbnail.h"
#include "support/paths.h"
#include "vision/image.h"

namespace pcv::testing {
namespace {

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// A model, two pictures, a broken picture; made once per test binary run.
struct Fixture {
  std::string dir, model, png_a, png_b, broken;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.dir = make_temp_dir("pcv_predict_cli");
    x.model = x.dir + "/m.pcv";
    auto r = run_cli({"create", "--arch", "simple_cnn", "--size", "32", "--labels", "cat,dog,bird", "-o", x.model});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (int k = 0; k < 2; ++k) {
      vision::Image img(48, 64, 3);
      for (int y = 0; y < img.height(); ++y) {
        for (int xx = 0; xx < img.width(); ++xx) {
          uint8_t* p = img.pixel(y, xx);
          p[0] = static_cast<uint8_t>(xx * 4 * (k + 1));
          p[1] = static_cast<uint8_t>(y * 5);
          p[2] = static_cast<uint8_t>(128 + 60 * k);
        }
      }
      auto png = report::encode_png(img);
      EXPECT_TRUE(png);
      const std::string path = x.dir + (k ? "/b.png" : "/a.png");
      std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(png->data()), static_cast<std::streamsize>(png->size()));
      (k ? x.png_b : x.png_a) = path;
    }
    x.broken = x.dir + "/broken.jpg";
    std::ofstream(x.broken, std::ios::binary) << "\xff\xd8\xff\xe0 not really a JPEG";
    return x;
  }();
  return f;
}

TEST(PredictCli, PrintsLabelScoreLines) {
  const auto& f = fixture();
  auto r = run_cli({"predict", f.model, f.png_a});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines(r.out), 3) << r.out;  // default top 3
  std::istringstream in(r.out);
  std::string label;
  double score = 0, previous = 2;
  while (in >> label >> score) {
    EXPECT_TRUE(label == "cat" || label == "dog" || label == "bird") << label;
    EXPECT_GE(score, 0.0);
    EXPECT_LE(score, previous);
    previous = score;
  }
  r = run_cli({"predict", f.model, f.png_a, "--top-k", "1"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(count_lines(r.out), 1);
}

TEST(PredictCli, OneBlockPerImage) {
  const auto& f = fixture();
  auto r = run_cli({"predict", f.model, f.png_a, f.png_b, "-k", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("== " + f.png_a), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== " + f.png_b), std::string::npos) << r.out;
}

TEST(PredictCli, JsonWithTrace) {
  const auto& f = fixture();
  auto r = run_cli({"predict", f.model, f.png_a, "--json", "--trace", "--top-k", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["predictions"].size(), 1u);
  const auto& p = j["predictions"][0];
  EXPECT_EQ(p["top"].size(), 3u);
  double sum = 0;
  for (const auto& c : p["top"]) sum += c["score"].get<double>();
  EXPECT_LE(sum, 1.0 + 1e-5);
  const auto& t = p["trace"];
  for (const char* k : {"decode_ms", "preprocess_ms", "inference_ms", "postprocess_ms", "total_ms"}) {
    ASSERT_TRUE(t.contains(k)) << k;
    EXPECT_GE(t[k].get<double>(), 0.0) << k;
  }
  ASSERT_FALSE(t["layers"].empty());
  EXPECT_EQ(t["input_shape"], nlohmann::json({32, 32, 3}));
  EXPECT_EQ(t["source_size"], nlohmann::json({48, 64}));
}

TEST(PredictCli, TraceTable) {
  const auto& f = fixture();
  auto r = run_cli({"predict", f.model, f.png_a, "--trace"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"trace:", "decode", "preprocess", "inference", "postprocess", "total", "conv1", "conv2d",
                        "probabilities"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
}

TEST(PredictCli, MissingImageExitsOneNamingTheFile) {
  const auto& f = fixture();
  auto r = run_cli({"predict", f.model, f.dir + "/no_such_cat.jpg"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no_such_cat.jpg"), std::string::npos) << r.err;
  // The good image before it is still printed.
  r = run_cli({"predict", f.model, f.png_a, f.dir + "/no_such_cat.jpg"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("== " + f.png_a), std::string::npos);
}

TEST(PredictCli, CorruptImageExitsOne) {
  const auto& f = fixture();
  auto r = run_cli({"predict", f.model, f.broken});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("broken.jpg"), std::string::npos) << r.err;
}

TEST(PredictCli, BadModelAndUsage) {
  const auto& f = fixture();
  auto r = run_cli({"predict", f.dir + "/missing.pcv", f.png_a});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.pcv"), std::string::npos) << r.err;
  EXPECT_EQ(run_cli({"predict", f.model}).exit_code, 2);               // no image
  EXPECT_EQ(run_cli({"predict", f.model, f.png_a, "-k", "0"}).exit_code, 2);
}

TEST(PredictCli, WorksForEveryFormat) {
  const auto& f = fixture();
  auto ref = run_cli({"predict", f.model, f.png_a, "--json"});
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  const auto want = nlohmann::json::parse(ref.out)["predictions"][0]["top"][0];
  for (const char* to : {"tflite", "coreml", "mlpackage", "onnx"}) {
    const std::string ext = std::string(to) == "coreml" ? "mlmodel" : to;
    const std::string out = f.dir + "/m_" + to + "." + ext;
    auto c = run_cli({"convert", f.model, "--to", to, "-o", out});
    if (c.exit_code != 0) {
      // ONNX is optional in a build (formats/onnx); the others are always there.
      if (std::string(to) != "onnx") ADD_FAILURE() << "convert to " << to << ": " << c.err;
      continue;
    }
    auto r = run_cli({"predict", out, f.png_a, "--json"});
    ASSERT_EQ(r.exit_code, 0) << to << ": " << r.err;
    const auto got = nlohmann::json::parse(r.out)["predictions"][0]["top"][0];
    EXPECT_EQ(got["label"], want["label"]) << to;
    EXPECT_NEAR(got["score"].get<double>(), want["score"].get<double>(), 2e-3) << to;  // fp16 in .mlpackage
  }
}

TEST(CompareCli, IdenticalAndConvertedModelsAgree) {
  const auto& f = fixture();
  auto r = run_cli({"compare", f.model, f.model});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("top-1 agree  100.0%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no layer below"), std::string::npos) << r.out;
  const std::string tfl = f.dir + "/cmp.tflite";
  ASSERT_EQ(run_cli({"convert", f.model, "--to", "tflite", "-o", tfl}).exit_code, 0);
  r = run_cli({"compare", f.model, tfl, "--json", "--random", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["samples"], 2);
  EXPECT_DOUBLE_EQ(j["top1_agreement"].get<double>(), 1.0);
  EXPECT_TRUE(j["first_divergence"].is_null());
  EXPECT_FALSE(j["layers"].empty());
  r = run_cli({"compare", f.model, tfl, "--data", f.dir});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("photos (2 samples)"), std::string::npos) << r.out;
}

TEST(CompareCli, Errors) {
  const auto& f = fixture();
  auto r = run_cli({"compare", f.model, f.dir + "/nope.tflite"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope.tflite"), std::string::npos) << r.err;
  r = run_cli({"compare", f.model, f.model, "--data", f.dir + "/no_photos_here"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(run_cli({"compare", f.model}).exit_code, 2);
  EXPECT_EQ(run_cli({"compare", f.model, f.model, "--data", f.dir, "--random", "3"}).exit_code, 2);
}

TEST(BenchCli, ReportsLatencyMemoryAndProfile) {
  const auto& f = fixture();
  auto r = run_cli({"bench", f.model, "--runs", "5", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"load_ms", "prepare_ms", "first_run_ms", "peak_rss_bytes", "arena_bytes"}) EXPECT_TRUE(j.contains(k)) << k;
  for (const char* k : {"min", "median", "p90", "max"}) EXPECT_GE(j["latency_ms"][k].get<double>(), 0.0) << k;
  EXPECT_FALSE(j["ops"].empty());
}

}  // namespace
}  // namespace pcv::testing

// Resource limits: a model whose weights or activation arena exceed a limit is refused with a
// clear out-of-memory error before the memory is allocated. The limit is `--max-memory` for
// run / predict / bench (the model file is checked before it is read, then the session's
// weights + activations + packed weights before the arena is allocated),
// SessionOptions::max_memory_bytes in the library and pcv_session_options.max_memory_bytes in
// the C API; without a flag the default (8 GiB) refuses a model that claims 19 GB of
// activations.
#include <gtest/gtest.h>

#include <filesystem>

#include "ir/pcv_format.h"
#include "pocketcv/pocketcv.h"
#include "robustness/robustness_util.h"
#include "runtime/session.h"
#include "support/paths.h"
#include "vision/test_images.h"

namespace pcv::testing {
namespace {
namespace fs = std::filesystem;
using formats::Format;

// x (1, side, side, 3) -> relu -> y: no weights, 2 x 12 x side^2 bytes of activations.
std::string activation_heavy_model(const std::string& dir, int64_t side) {
  ir::Model m;
  ir::ValueId x = m.graph.add_input("x", ir::DType::kF32, {1, side, side, 3});
  m.graph.mark_output(m.graph.add_node(ir::OpType::kRelu, "relu", {x}));
  EXPECT_TRUE(ir::infer_shapes(m.graph).is_ok());
  const std::string path = dir + "/wide" + std::to_string(side) + ".pcv";
  EXPECT_TRUE(ir::save_pcv(m, path).is_ok());
  return path;
}

struct Files {
  std::string dir, model, input, picture;
};
const Files& files() {
  static const Files f = [] {
    Files x;
    x.dir = make_temp_dir("pcv_robust_memory");
    x.model = tiny_model(Format::kPcv);  // ~600 KB of weights
    x.input = x.dir + "/x.bin";
    write_bytes(x.input, std::vector<uint8_t>(16 * 16 * 3 * 4, 0));
    x.picture = x.dir + "/x.png";
    write_bytes(x.picture, tiny_png());
    return x;
  }();
  return f;
}

TEST(MemoryLimit, ModelFileAboveTheLimitIsRefusedBeforeReading) {
  const Files& f = files();
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"run", f.model, "--input", f.input, "--output-dir", f.dir + "/out"},
           {"predict", f.model, f.picture},
           {"bench", f.model, "--runs", "1"}}) {
    std::vector<std::string> args = cmd;
    args.insert(args.end(), {"--max-memory", "100K"});
    EXPECT_TRUE(
        failed_cleanly(run_cli(args), 1, {f.model, "above the memory limit of 102400 bytes"}))
        << cmd[0];
  }
  EXPECT_FALSE(fs::exists(f.dir + "/out"));
  // Refused before reading: 2 MB of garbage is reported as too big, not as malformed.
  write_bytes(f.dir + "/garbage.pcv", std::vector<uint8_t>(2 << 20, 0xAB));
  EXPECT_TRUE(failed_cleanly(run_cli({"bench", f.dir + "/garbage.pcv", "--max-memory", "1M"}), 1,
                             {"garbage.pcv", "above the memory limit"}));
  // A .mlpackage counts all its files.
#if PCV_COREML_AVAILABLE
  EXPECT_TRUE(
      failed_cleanly(run_cli({"bench", tiny_model(Format::kMlpackage), "--max-memory", "100K"}), 1,
                     {"tiny.mlpackage", "above the memory limit"}));
#endif
}

TEST(MemoryLimit, ActivationsAboveTheLimitAreRefusedBeforeAllocating) {
  const Files& f = files();
  // 1 x 2048 x 2048 x 3 floats in and out: 96 MB of activations, 1 KB of file.
  const std::string wide = activation_heavy_model(f.dir, 2048);
  EXPECT_TRUE(failed_cleanly(run_cli({"bench", wide, "--max-memory", "32M"}), 1,
                             {wide, "activations", "above the memory limit of 33554432 bytes"}));
  EXPECT_TRUE(failed_cleanly(run_cli({"run", wide, "--input", f.input, "--output-dir", f.dir + "/o",
                                      "--max-memory", "32M"}),
                             1, {wide, "above the memory limit"}));
  EXPECT_FALSE(fs::exists(f.dir + "/o"));
  // No flag: the default limit (8 GiB) still refuses 19 GB; nothing is allocated, so this is
  // fast and safe on any machine.
  const std::string huge = activation_heavy_model(f.dir, 40000);
  EXPECT_TRUE(failed_cleanly(run_cli({"bench", huge}), 1, {huge, "above the memory limit"}));
  EXPECT_TRUE(
      failed_cleanly(run_cli({"run", huge, "--input", f.input, "--output-dir", f.dir + "/o"}), 1,
                     {huge, "above the memory limit"}));
  // predict refuses a 40000-pixel input size even earlier (preprocessing bounds).
  EXPECT_TRUE(failed_cleanly(run_cli({"predict", huge, f.picture}), 1, {huge, "40000"}));
  EXPECT_TRUE(failed_cleanly(run_cli({"predict", wide, f.picture, "--max-memory", "32M"}), 1,
                             {wide, "above the memory limit"}));
  EXPECT_FALSE(fs::exists(f.dir + "/o"));
}

TEST(MemoryLimit, WeightsAboveTheLimitAreRefusedBeforePacking) {
  const Files& f = files();
  // The file fits (the limit is above its size), the session's weights + activations don't.
  const auto size = fs::file_size(f.model);
  const std::string limit = std::to_string(size + 1);
  EXPECT_TRUE(failed_cleanly(run_cli({"bench", f.model, "--max-memory", limit}), 1,
                             {f.model, "above the memory limit"}));
  // Generous limits run.
  const CliResult r = run_cli({"bench", f.model, "--max-memory", "64M", "--runs", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const CliResult p = run_cli({"predict", f.model, f.picture, "--max-memory", "1G"});
  EXPECT_EQ(p.exit_code, 0) << p.err;

  // The library: weights are checked first, before anything is copied or packed.
  const ir::Model& m = tiny_ir_model();
  runtime::SessionOptions so;
  so.max_memory_bytes = 1000;
  auto s = runtime::Session::create(m, so);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(s.status().message().find("weights are"), std::string::npos) << s.status().message();
}

TEST(MemoryLimit, CapiSessionOption) {
  pcv_model* m = nullptr;
  ASSERT_EQ(pcv_model_load_file(tiny_model(Format::kPcv).c_str(), &m), PCV_OK);
  pcv_session_options o = PCV_SESSION_OPTIONS_INIT;
  o.max_memory_bytes = 64 << 10;  // below the ~600 KB of weights
  pcv_session* s = reinterpret_cast<pcv_session*>(0x1);
  EXPECT_EQ(pcv_session_create(m, &o, &s), PCV_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(s, nullptr);
  EXPECT_NE(std::string(pcv_last_error_message()).find("above the memory limit"), std::string::npos)
      << pcv_last_error_message();
  o.max_memory_bytes = int64_t{64} << 20;
  ASSERT_EQ(pcv_session_create(m, &o, &s), PCV_OK) << pcv_last_error_message();
  pcv_session_free(s);
  pcv_model_free(m);
}

}  // namespace
}  // namespace pcv::testing

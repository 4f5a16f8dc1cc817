// Crash-safe outputs: an output directory that cannot be written (a path under a regular file,
// /proc, a read-only directory when not root) and a full disk (RLIMIT_FSIZE in the child:
// write() fails with EFBIG part-way) give exit 1, a message naming the output and the reason,
// and leave the previous output byte-identical with no temporary files beside it. For every
// output format, and for the commands that write files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "robustness/robustness_util.h"
#include "support/paths.h"

namespace pcv::testing {
namespace {
namespace fs = std::filesystem;
using formats::Format;

TEST(CrashSafeOutput, DirectoryThatIsAFile) {
  const std::string dir = make_temp_dir("pcv_robust_notdir");
  write_text(dir + "/file", "a regular file standing where a directory should be");
  const std::string model = tiny_model(Format::kPcv);
  const std::string under = dir + "/file/out";
  write_bytes(dir + "/x.bin", std::vector<uint8_t>(16 * 16 * 3 * 4, 0));
  const Tree before = snapshot(dir);
  for (Format f : model_formats()) {
    const std::string out = under + extension_of(f);
    EXPECT_TRUE(failed_cleanly(run_cli({"convert", model, "-o", out}), 1, {out, "does not exist"}));
  }
  EXPECT_TRUE(failed_cleanly(run_cli({"create", "--size", "16", "-o", under + ".pcv"}), 1,
                             {under + ".pcv"}));
  // optimize refuses before it quantizes or evaluates anything.
  const CliResult opt = run_cli({"optimize", model, "--quantize", "fp16", "-o", under + ".tflite"});
  EXPECT_TRUE(failed_cleanly(opt, 1, {under + ".tflite", "does not exist"}));
  EXPECT_EQ(opt.err.find("writing"), std::string::npos) << opt.err;
  EXPECT_TRUE(
      failed_cleanly(run_cli({"run", model, "--input", dir + "/x.bin", "--output-dir", under}), 1,
                     {under, "cannot create directory"}));
  EXPECT_EQ(tree_diff(before, snapshot(dir)), "");
}

TEST(CrashSafeOutput, TrainChecksTheOutputDirectoryBeforeTraining) {
  const std::string dir = make_temp_dir("pcv_robust_train_out");
  // No data folder is even looked at: the output path is refused first.
  const CliResult r =
      run_cli({"train", "--data", dir + "/absent", "--epochs", "1", "-o", dir + "/no/such/m.pcv"});
  EXPECT_TRUE(failed_cleanly(r, 1, {dir + "/no/such/m.pcv", "does not exist"}));
  EXPECT_EQ(r.err.find("epoch"), std::string::npos) << r.err;
}

TEST(CrashSafeOutput, ProcRefusesNewFilesEvenToRoot) {
  const std::string model = tiny_model(Format::kPcv);
  EXPECT_TRUE(failed_cleanly(run_cli({"convert", model, "-o", "/proc/pocketcv_robustness.pcv"}), 1,
                             {"/proc/pocketcv_robustness.pcv", "cannot create"}));
  EXPECT_FALSE(fs::exists("/proc/pocketcv_robustness.pcv"));
}

TEST(CrashSafeOutput, ReadOnlyDirectory) {
  if (::geteuid() == 0)
    GTEST_SKIP() << "running as root: chmod 0555 does not stop root (see the cases above)";
  const std::string model = tiny_model(Format::kPcv);
  const std::string dir = make_temp_dir("pcv_robust_readonly");
  write_text(dir + "/m.tflite", "previous");
  ASSERT_EQ(::chmod(dir.c_str(), 0555), 0);
  const Tree before = snapshot(dir);
  EXPECT_TRUE(failed_cleanly(run_cli({"convert", model, "-o", dir + "/m.tflite"}), 1,
                             {dir + "/m.tflite", "Permission"}));
  EXPECT_EQ(tree_diff(before, snapshot(dir)), "");
  ::chmod(dir.c_str(), 0755);
}

TEST(CrashSafeOutput, FullDiskKeepsThePreviousFile) {
  const std::string dir = make_temp_dir("pcv_robust_full");
  // The previous outputs: a model with other weights, in every format.
  const std::string other = dir + "/other.pcv";
  ASSERT_EQ(
      run_cli({"create", "--size", "16", "--classes", "3", "--seed", "9", "-o", other}).exit_code,
      0);
  for (Format f : model_formats()) {
    const std::string out = dir + "/previous" + extension_of(f);
    ASSERT_EQ(run_cli({"convert", other, "-o", out}).exit_code, 0);
  }
  const Tree before = snapshot(dir);
  // Each model file is ~600 KB; the disk "fills" after 64 KB of it.
  constexpr uint64_t kLimit = 64 << 10;
  for (Format f : model_formats()) {
    const std::string out = dir + "/previous" + extension_of(f);
    SCOPED_TRACE(out);
    const CliResult r =
        run_cli_with_file_limit({"convert", tiny_model(Format::kPcv), "-o", out}, kLimit);
    EXPECT_TRUE(failed_cleanly(r, 1, {"previous" + extension_of(f), "File too large"}));
    EXPECT_NE(r.err.find("unchanged"), std::string::npos) << r.err;
    EXPECT_EQ(tree_diff(before, snapshot(dir)), "");
  }
  // optimize and create write through the same path.
  const std::string pcv = dir + "/previous.pcv";
  EXPECT_TRUE(failed_cleanly(
      run_cli_with_file_limit({"create", "--size", "16", "--classes", "3", "-o", pcv}, kLimit), 1,
      {pcv, "File too large"}));
  EXPECT_TRUE(failed_cleanly(
      run_cli_with_file_limit({"optimize", tiny_model(Format::kPcv), "--palettize", "8", "-o", pcv},
                              kLimit),
      1, {pcv, "File too large"}));
  EXPECT_EQ(tree_diff(before, snapshot(dir)), "");
  // Without the limit the same command replaces the file.
  EXPECT_EQ(run_cli({"convert", tiny_model(Format::kPcv), "-o", pcv}).exit_code, 0);
  EXPECT_EQ(read_bytes(pcv), read_bytes(tiny_model(Format::kPcv)));
}

TEST(CrashSafeOutput, TrainingOnAFullDiskKeepsThePreviousModel) {
  const std::string dir = make_temp_dir("pcv_robust_train_full");
  for (const char* cls : {"a", "b"}) {
    for (int i = 0; i < 4; ++i)
      write_bytes(dir + "/data/" + cls + "/" + std::to_string(i) + ".jpg", tiny_jpeg());
  }
  const std::string out = dir + "/out/m.pcv";
  write_bytes(out, read_bytes(tiny_model(Format::kPcv)));
  const Tree before = snapshot(dir + "/out");
  const CliResult r =
      run_cli_with_file_limit({"train", "--data", dir + "/data", "--size", "16", "--epochs", "2",
                               "--batch", "4", "--threads", "1", "-o", out},
                              64 << 10);
  EXPECT_TRUE(failed_cleanly(r, 1, {out, "File too large"}));
  EXPECT_EQ(tree_diff(before, snapshot(dir + "/out")), "");
}

}  // namespace
}  // namespace pcv::testing

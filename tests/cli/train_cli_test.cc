// pocketcv train / eval as a user runs them: a quick Fashion-MNIST run (non-TTY progress
// lines, per-epoch lines, the final table and charts, trace files), eval of the result, and
// clear errors for absurd options.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/file.h"
#include "cli/cli_util.h"
#include "support/paths.h"

namespace pcv::testing {
namespace {

bool have_fashion_mnist() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

TEST(TrainCli, AbsurdOptionsGiveClearErrors) {
  struct Case { std::vector<std::string> args; std::string message; };
  const std::vector<Case> cases = {
      {{"train", "--epochs", "-3", "-o", "m.pcv"}, "--epochs"},
      {{"train", "--batch", "0", "-o", "m.pcv"}, "--batch"},
      {{"train", "--lr", "0", "-o", "m.pcv"}, "--lr"},
      {{"train", "--lr", "-1", "-o", "m.pcv"}, "--lr"},
      {{"train", "--size", "-1", "-o", "m.pcv"}, "--size"},
      {{"train", "--size", "0", "-o", "m.pcv"}, "--size"},
      {{"train", "--val-split", "1.5", "-o", "m.pcv"}, "--val-split"},
      {{"train", "--val-split", "0", "-o", "m.pcv"}, "--val-split"},
      {{"train", "--threads", "65", "-o", "m.pcv"}, "--threads"},
      {{"train", "--optimizer", "rmsprop", "-o", "m.pcv"}, "rmsprop"},
      {{"train", "--freeze-backbone", "-o", "m.pcv"}, "--init"},
      {{"train", "--keep", "worst", "-o", "m.pcv"}, "--keep"},
  };
  for (const Case& c : cases) {
    const CliResult r = run_cli(c.args);
    EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 2) << c.args[2] << ": exit " << r.exit_code;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  EXPECT_EQ(run_cli({"train", "--epochs", "1"}).exit_code, 2);  // -o missing
}

// --keep last: -o gets every epoch's model, so the last one at the end (tiny validation sets
// cannot rank epochs).
TEST(TrainCli, KeepLastSavesTheLastEpoch) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "needs /usr/share/datasets/fashion-mnist";
  const std::string dir = make_temp_dir("pcv_train_keep");
  const CliResult r = run_cli({"train", "--limit", "300", "--epochs", "3", "--test-limit", "100", "--keep", "last", "-o",
                               dir + "/m.pcv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("last val_acc"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("at epoch 3 ->"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("test accuracy of the last model (epoch 3)"), std::string::npos) << r.err;
  remove_tree(dir);
}

TEST(TrainCli, TrainsFashionMnistSubsetThenEvaluates) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "needs /usr/share/datasets/fashion-mnist";
  const std::string dir = make_temp_dir("pcv_train_cli");
  const std::string model = dir + "/fm.pcv";
  const CliResult r = run_cli({"train", "--limit", "1000", "--epochs", "2", "--seed", "3", "--test-limit", "500", "-o", model});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // stderr is not a TTY here: plain lines, one per epoch with every metric.
  EXPECT_NE(r.err.find("epoch 1/2 train: loss"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("val_acc"), std::string::npos);
  EXPECT_NE(r.err.find("img/s"), std::string::npos);
  EXPECT_EQ(r.err.find("\r"), std::string::npos);
  // stdout: the table, the charts, the summary.
  EXPECT_NE(r.out.find("epoch     phase"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("loss (* train, o val)"), std::string::npos);
  EXPECT_NE(r.out.find("accuracy (* train, o val)"), std::string::npos);
  EXPECT_NE(r.out.find("test accuracy"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir + "/fm.trace.csv"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/fm.trace.json"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/fm.ckpt"));

  const CliResult e = run_cli({"eval", model, "--limit", "500", "--json"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.out.find("\"accuracy\""), std::string::npos);
  EXPECT_NE(e.out.find("\"confusion\""), std::string::npos);
  EXPECT_NE(e.out.find("\"Ankle boot\""), std::string::npos);
  const CliResult t = run_cli({"eval", model, "--limit", "200"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("confusion matrix"), std::string::npos);
  EXPECT_NE(t.out.find("precision"), std::string::npos);

  // Resume a finished run: nothing left to do, the history is kept.
  const CliResult again = run_cli({"train", "--limit", "1000", "--epochs", "2", "--seed", "3", "--test-limit", "500", "--resume",
                                   dir + "/fm.ckpt", "-o", model});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("resumed"), std::string::npos);
}

}  // namespace
}  // namespace pcv::testing

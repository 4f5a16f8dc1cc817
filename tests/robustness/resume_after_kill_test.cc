// Resumable training: `pocketcv train` on a tiny generated photo folder is killed with SIGKILL
// at a random point after its first checkpoint exists, then resumed from that checkpoint with
// the same seed. The result must equal an uninterrupted run's: the best model, the weights
// after the last epoch (in the checkpoint) and every epoch's metrics.
//
// The assertions do not depend on where the kill lands: mid-epoch, mid-write (files are
// written atomically, so the checkpoint on disk is always a whole one), or after the run has
// already finished (the resume then has nothing left to do). The kill point is printed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "base/file.h"
#include "ir/pcv_format.h"
#include "robustness/robustness_util.h"
#include "support/paths.h"
#include "vision/test_images.h"

namespace pcv::testing {
namespace {
namespace fs = std::filesystem;

// Two classes of 16x16 pictures: bright left half vs bright top half, with per-picture noise.
void make_dataset(const std::string& dir) {
  std::mt19937 rng(5);
  for (int cls = 0; cls < 2; ++cls) {
    for (int i = 0; i < 16; ++i) {
      vision::Image img(16, 16, 3);
      for (int y = 0; y < 16; ++y) {
        for (int x = 0; x < 16; ++x) {
          const bool bright = cls == 0 ? x < 8 : y < 8;
          for (int c = 0; c < 3; ++c)
            img.pixel(y, x)[c] = static_cast<uint8_t>((bright ? 170 : 30) + rng() % 60);
        }
      }
      write_bytes(dir + "/" + (cls ? "top" : "left") + "/" + std::to_string(i) + ".png",
                  vision::testing::encode_png_rgb(img));
    }
  }
}

std::vector<std::string> train_args(const std::string& data, const std::string& out) {
  return {"train", "--data", data, "--size",    "16", "--epochs", "12", "--batch",
          "4",     "--seed", "11", "--threads", "2",  "-o",       out};
}


// A checkpoint's parts (train/trainer.cc's layout: 8-byte magic, then length-prefixed header
// JSON, .pcv model bytes, optimizer state): the model after the last finished epoch, and how
// many epochs that was.
struct Checkpoint {
  ir::Model model;
  int epochs_done = -1;
};
Checkpoint read_checkpoint(const std::string& path) {
  const std::vector<uint8_t> b = read_bytes(path);
  size_t pos = 8;
  auto take = [&]() -> std::span<const uint8_t> {
    uint64_t n = 0;
    if (pos + 8 > b.size()) return {};
    std::memcpy(&n, b.data() + pos, 8);
    pos += 8;
    if (n > b.size() - pos) return {};
    std::span<const uint8_t> s(b.data() + pos, static_cast<size_t>(n));
    pos += static_cast<size_t>(n);
    return s;
  };
  Checkpoint c;
  const std::span<const uint8_t> header = take();
  const auto j = nlohmann::json::parse(header.begin(), header.end(), nullptr, false);
  if (!j.is_discarded()) c.epochs_done = j.value("epochs_done", -1);
  auto m = ir::read_pcv(take(), path);
  EXPECT_TRUE(m.has_value()) << m.status().to_string();
  if (m.has_value()) c.model = std::move(m).value();
  return c;
}

void expect_same_weights(const ir::Model& a, const ir::Model& b, const std::string& what) {
  ASSERT_EQ(a.graph.values.size(), b.graph.values.size()) << what;
  int compared = 0;
  for (size_t v = 0; v < a.graph.values.size(); ++v) {
    if (!a.graph.values[v].is_constant()) continue;
    EXPECT_TRUE(a.graph.values[v].data.equals(b.graph.values[v].data))
        << what << ": " << a.graph.values[v].name;
    ++compared;
  }
  EXPECT_GT(compared, 4) << what;
}

// The trace CSV without the timing columns (images_per_sec, seconds).
std::vector<std::string> metrics_columns(const std::string& csv_path) {
  std::ifstream f(csv_path);
  std::vector<std::string> rows;
  std::string line;
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string cell, row;
    for (int col = 0; col < 7 && std::getline(ss, cell, ','); ++col) row += cell + ",";
    rows.push_back(row);
  }
  return rows;
}

TEST(ResumableTraining, KillNineThenResumeEqualsUninterrupted) {
  const std::string dir = make_temp_dir("pcv_robust_resume");
  make_dataset(dir + "/data");

  // The uninterrupted run.
  fs::create_directories(dir + "/full");
  const CliResult full = run_cli(train_args(dir + "/data", dir + "/full/m.pcv"));
  ASSERT_EQ(full.exit_code, 0) << full.err;

  // The same run, killed at a random point after its first checkpoint exists.
  fs::create_directories(dir + "/killed");
  const std::string ckpt = dir + "/killed/m.ckpt";
  const pid_t pid = spawn_cli(train_args(dir + "/data", dir + "/killed/m.pcv"), dir + "/killed.out",
                              dir + "/killed.err");
  ASSERT_GT(pid, 0);
  int status = 0;
  bool exited = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (!file_exists(ckpt)) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no checkpoint after 2 minutes";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(file_exists(ckpt)) << "the run ended without a checkpoint (status " << status << ")";
  const unsigned seed = std::random_device{}();
  const int delay_ms = static_cast<int>(std::mt19937(seed)() % 150);
  if (!exited) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(pid, SIGKILL);
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  }
  const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  const int epochs_done = read_checkpoint(ckpt).epochs_done;
  std::cout << "[ kill     ] seed " << seed << ": SIGKILL " << delay_ms
            << " ms after the first checkpoint: "
            << (killed ? "killed" : "the run had already finished") << ", checkpoint after epoch "
            << epochs_done << " of 12\n";
  ASSERT_GE(epochs_done, 1);
  if (!killed) {
    std::string err;
    if (auto e = read_text_file(dir + "/killed.err")) err = *e;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << err;
  }

  // Resume from whatever checkpoint the kill left.
  std::vector<std::string> resume = train_args(dir + "/data", dir + "/killed/m.pcv");
  resume.insert(resume.end(), {"--resume", ckpt});
  const CliResult r = run_cli(resume);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from " + ckpt + " after epoch " + std::to_string(epochs_done)),
            std::string::npos)
      << r.err;
  // It trained only the epochs after the checkpoint (a run from scratch would end equal too).
  EXPECT_EQ(r.err.find("epoch " + std::to_string(epochs_done) + "/12 train:"), std::string::npos)
      << r.err;
  if (epochs_done < 12) {
    EXPECT_NE(r.err.find("epoch " + std::to_string(epochs_done + 1) + "/12 train:"),
              std::string::npos)
        << r.err;
  }

  auto full_best = formats::load_model(dir + "/full/m.pcv");
  auto resumed_best = formats::load_model(dir + "/killed/m.pcv");
  ASSERT_TRUE(full_best.has_value() && resumed_best.has_value());
  expect_same_weights(*full_best, *resumed_best, "best model");
  expect_same_weights(read_checkpoint(dir + "/full/m.ckpt").model, read_checkpoint(ckpt).model,
                      "last epoch");
  const auto full_rows = metrics_columns(dir + "/full/m.trace.csv");
  EXPECT_EQ(full_rows.size(), 13u);  // header + 12 epochs
  EXPECT_EQ(full_rows, metrics_columns(dir + "/killed/m.trace.csv"));
}

TEST(ResumableTraining, DamagedCheckpointIsRefused) {
  const std::string dir = make_temp_dir("pcv_robust_bad_ckpt");
  make_dataset(dir + "/data");
  std::vector<std::string> args = train_args(dir + "/data", dir + "/m.pcv");
  args[6] = "1";  // --epochs 1
  ASSERT_EQ(run_cli(args).exit_code, 0);
  const std::vector<uint8_t> ck = read_bytes(dir + "/m.ckpt");
  write_bytes(dir + "/cut.ckpt",
              std::vector<uint8_t>(ck.begin(), ck.begin() + static_cast<long>(ck.size() / 2)));
  write_bytes(dir + "/empty.ckpt", {});
  args.insert(args.end(), {"--resume", ""});
  for (const auto& [name, problem] :
       std::vector<std::pair<std::string, std::string>>{{"cut.ckpt", "truncated checkpoint"},
                                                        {"empty.ckpt", "not a pocketcv checkpoint"},
                                                        {"m.pcv", "not a pocketcv checkpoint"},
                                                        {"absent.ckpt", "absent.ckpt"}}) {
    args.back() = dir + "/" + name;
    const Tree before = snapshot(dir);
    EXPECT_TRUE(failed_cleanly(run_cli(args), 1, {name, problem, "--resume"}));
    EXPECT_EQ(tree_diff(before, snapshot(dir)), "") << name;
  }
}

}  // namespace
}  // namespace pcv::testing

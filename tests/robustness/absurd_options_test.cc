// The bad-input catalogue, absurd options: every one is refused with the option named in the
// message, exit 2 when the command-line parser's range check refuses it (usage error), 1 when
// the command's own validation does, and nothing is written. Values at the edge of a range
// are accepted.
#include <gtest/gtest.h>

#include "robustness/robustness_util.h"
#include "support/paths.h"

namespace pcv::testing {
namespace {
using formats::Format;

struct Case {
  // Placeholders: OUT (an existing output file), MODEL (the tiny .pcv), INPUT (a raw input
  // tensor for it), OUTDIR (an output directory that must not appear).
  std::vector<std::string> args;
  int exit_code;
  std::string needle;
};

void run_cases(const std::vector<Case>& cases) {
  const std::string dir = make_temp_dir("pcv_robust_options");
  write_bytes(dir + "/previous.pcv", read_bytes(tiny_model(Format::kPcv)));
  write_bytes(dir + "/x.bin", std::vector<uint8_t>(16 * 16 * 3 * 4, 0));
  const Tree before = snapshot(dir);
  for (const Case& c : cases) {
    std::vector<std::string> args;
    std::string shown;
    for (const std::string& a : c.args) {
      args.push_back(a == "OUT"      ? dir + "/previous.pcv"
                     : a == "MODEL"  ? tiny_model(Format::kPcv)
                     : a == "INPUT"  ? dir + "/x.bin"
                     : a == "OUTDIR" ? dir + "/outputs"
                                     : a);
      shown += a + " ";
    }
    EXPECT_TRUE(failed_cleanly(run_cli(args), c.exit_code, {c.needle})) << shown;
  }
  EXPECT_EQ(tree_diff(before, snapshot(dir)), "");
}

TEST(AbsurdOptions, Train) {
  run_cases({
      {{"train", "--epochs", "-1", "-o", "OUT"}, 1, "--epochs -1"},
      {{"train", "--epochs", "0", "-o", "OUT"}, 1, "--epochs 0"},
      {{"train", "--epochs", "many", "-o", "OUT"}, 2, "--epochs"},
      {{"train", "--size", "0", "-o", "OUT"}, 1, "--size 0"},
      {{"train", "--size", "-3", "-o", "OUT"}, 1, "--size -3"},
      {{"train", "--size", "100000", "-o", "OUT"}, 1, "--size 100000"},
      {{"train", "--threads", "1000", "-o", "OUT"}, 1, "--threads 1000"},
      {{"train", "--threads", "0", "-o", "OUT"}, 1, "--threads 0"},
      {{"train", "--batch", "0", "-o", "OUT"}, 1, "--batch 0"},
      {{"train", "--batch", "100000", "-o", "OUT"}, 1, "--batch 100000"},
      {{"train", "--lr", "-1", "-o", "OUT"}, 1, "--lr -1"},
      {{"train", "--lr", "0", "-o", "OUT"}, 1, "--lr 0"},
      {{"train", "--lr", "nan", "-o", "OUT"}, 1, "--lr"},
      {{"train", "--lr", "1e9", "-o", "OUT"}, 1, "--lr"},
      {{"train", "--val-split", "1", "-o", "OUT"}, 1, "--val-split 1"},
      {{"train", "--limit", "-5", "-o", "OUT"}, 1, "--limit -5"},
      {{"train", "--optimizer", "rmsprop", "-o", "OUT"}, 1, "rmsprop"},
      {{"train", "--width", "0", "-o", "OUT"}, 1, "--width 0"},
      {{"train", "--epochs", "1"}, 2, "--output"},  // -o missing
  });
}

TEST(AbsurdOptions, BenchPredictRun) {
  run_cases({
      {{"bench", "MODEL", "--threads", "1000"}, 2, "--threads"},
      {{"bench", "MODEL", "--threads", "0"}, 2, "--threads"},
      {{"bench", "MODEL", "--runs", "0"}, 2, "--runs"},
      {{"bench", "MODEL", "--max-memory", "lots"}, 2, "--max-memory"},
      {{"bench", "MODEL", "--max-memory", "-5"}, 2, "--max-memory"},
      {{"predict", "MODEL", "x.png", "--threads", "1000"}, 2, "--threads"},
      {{"predict", "MODEL", "x.png", "--top-k", "0"}, 2, "--top-k"},
      {{"run", "MODEL", "--input", "INPUT", "--output-dir", "OUTDIR", "--threads", "1000"},
       2,
       "--threads"},
      {{"run", "MODEL", "--input", "INPUT", "INPUT", "--output-dir", "OUTDIR"},
       1,
       "2 --input given"},
  });
}

TEST(AbsurdOptions, OptimizeAndCreate) {
  run_cases({
      {{"optimize", "MODEL", "--palettize", "9", "-o", "OUT"}, 1, "--palettize"},
      {{"optimize", "MODEL", "--palettize", "-1", "-o", "OUT"}, 1, "--palettize"},
      {{"optimize", "MODEL", "--prune", "1.5", "-o", "OUT"}, 1, "--prune 1.5"},
      {{"optimize", "MODEL", "--prune", "1", "-o", "OUT"}, 1, "--prune 1"},
      {{"optimize", "MODEL", "--prune", "-0.5", "-o", "OUT"}, 1, "--prune -0.5"},
      {{"optimize", "MODEL", "--quantize", "int4", "-o", "OUT"}, 1, "int4"},
      {{"optimize", "MODEL", "--quantize", "int8", "--calibration-method", "guess", "-o", "OUT"},
       1,
       "guess"},
      {{"optimize", "MODEL", "-o", "OUT"}, 1, "nothing to do"},
      {{"create", "--size", "0", "-o", "OUT"}, 1, "--size 0"},
      {{"create", "--classes", "1", "-o", "OUT"}, 1, "classes"},
      {{"create", "--arch", "resnet9000", "-o", "OUT"}, 1, "resnet9000"},
  });
}

TEST(AbsurdOptions, EdgesOfTheRangesAreAccepted) {
  const std::string dir = make_temp_dir("pcv_robust_edges");
  // 1-bit palettization (2 values per tensor) is legal: Core ML's lookup tables allow 1..8.
  CliResult r =
      run_cli({"optimize", tiny_model(Format::kPcv), "--palettize", "1", "-o", dir + "/p1.pcv"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"optimize", tiny_model(Format::kPcv), "--palettize", "8", "-o", dir + "/p8.pcv"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"optimize", tiny_model(Format::kPcv), "--prune", "0.99", "-o", dir + "/pruned.pcv"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace pcv::testing

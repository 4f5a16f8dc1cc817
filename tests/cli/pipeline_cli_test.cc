// pocketcv pipeline end to end, and its report as a person sees it: the page is loaded in
// headless Chromium (tools/report/check_report.mjs) which fails on console errors, network
// requests and blank charts, and saves a screenshot. Skips visibly without chromium, node or
// tools/oracle/node_modules.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_util.h"
#include "support/paths.h"

namespace pcv::testing {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Why the browser check cannot run here, or "".
std::string browser_unavailable() {
  if (!fs::exists("/usr/bin/chromium")) return "no /usr/bin/chromium (apt-get install chromium)";
  if (std::system("node --version > /dev/null 2>&1") != 0) return "no node on PATH";
  if (!fs::exists(source_dir() + "/tools/oracle/node_modules/playwright-core")) {
    return "no tools/oracle/node_modules/playwright-core (scripts/setup --with-oracles)";
  }
  return "";
}

TEST(PipelineCli, QuickRunWritesAReportThatRendersInChromium) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "needs Fashion-MNIST (apt-get install dataset-fashion-mnist)";
  }
  const std::string out = make_temp_dir("pcv_pipeline") + "/run";
  auto r = run_cli({"pipeline", "--quick", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(out + "/report.html"), std::string::npos) << r.out;

  auto j = nlohmann::json::parse(slurp(out + "/report.json"));
  std::vector<std::string> ids;
  for (const auto& s : j["stages"]) {
    ids.push_back(s["id"]);
    EXPECT_EQ(s["status"], "ok") << s["id"] << ": " << s["message"];
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"train", "convert", "optimize", "integrate", "predict"}));
  const auto& train = j["stages"][0];
  EXPECT_EQ(train["epochs"].size(), 1u);
  EXPECT_FALSE(train["steps"].empty());
  EXPECT_EQ(train["eval"]["confusion"].size(), 10u);
  EXPECT_GT(train["eval"]["accuracy"].get<double>(), 0.15);  // 10 classes: chance is 0.1
  EXPECT_GE(j["variants"].size(), 4u);
  for (const auto& v : j["variants"]) {
    EXPECT_GT(v["bytes"].get<int64_t>(), 0) << v["name"];
    EXPECT_TRUE(v.contains("accuracy")) << v["name"] << ": " << v.value("error", "");
    EXPECT_GT(v["latency_ms"].get<double>(), 0) << v["name"];
  }
  const auto& predict = j["stages"][4];
  ASSERT_EQ(predict["samples"].size(), 6u);
  for (const auto& s : predict["samples"]) {
    EXPECT_EQ(s["image"].get<std::string>().rfind("data:image/png;base64,", 0), 0u);
    EXPECT_EQ(s["top"].size(), 3u);
  }
  EXPECT_FALSE(predict["trace"]["layers"].empty());
  EXPECT_TRUE(j["stages"][3]["agrees_with_predict"].get<bool>());

  const std::string html = slurp(out + "/report.html");
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);  // self-contained
  EXPECT_NE(html.find("<canvas data-chart=\"loss\""), std::string::npos);

  const std::string why = browser_unavailable();
  if (!why.empty()) GTEST_SKIP() << "report written; browser check skipped: " << why;
  const std::string cmd = "node '" + source_dir() + "/tools/report/check_report.mjs' --report '" + out +
                          "/report.html' --screenshot '" + out + "/report.png' > '" + out + "/check.json' 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string check = slurp(out + "/check.json");
  ASSERT_EQ(WEXITSTATUS(status), 0) << check;
  auto c = nlohmann::json::parse(check);
  EXPECT_TRUE(c["ok"].get<bool>()) << check;
  EXPECT_GE(c["charts"].size(), 6u) << check;
  EXPECT_GT(fs::file_size(out + "/report.png"), 10000u);
  std::cout << "screenshot: " << out << "/report.png\n";
}

TEST(PipelineCli, FailedStageIsInTheReportAndExitsOne) {
  const std::string out = make_temp_dir("pcv_pipeline_fail") + "/run";
  auto r = run_cli({"pipeline", "--quick", "--data", out + "/no_such_photos", "--out", out});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("failed"), std::string::npos) << r.err;
  auto j = nlohmann::json::parse(slurp(out + "/report.json"));
  EXPECT_EQ(j["stages"][0]["status"], "failed");
  EXPECT_NE(j["stages"][0]["message"].get<std::string>().find("no_such_photos"), std::string::npos);
  for (size_t i = 1; i < j["stages"].size(); ++i) EXPECT_EQ(j["stages"][i]["status"], "skipped");
  const std::string html = slurp(out + "/report.html");
  EXPECT_NE(html.find("class=\"err\""), std::string::npos);
  EXPECT_NE(html.find("no_such_photos"), std::string::npos);
}

}  // namespace
}  // namespace pcv::testing

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "report/html.h"
#include "report/thumbnail.h"
#include "vision/decode.h"

namespace pcv::report {
namespace {

using json = nlohmann::json;

TEST(Thumbnail, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Thumbnail, PngRoundTripsThroughTheDecoder) {
  for (int channels : {1, 3}) {
    vision::Image img(5, 7, channels);
    for (int y = 0; y < 5; ++y) {
      for (int x = 0; x < 7; ++x) {
        for (int c = 0; c < channels; ++c) img.pixel(y, x)[c] = static_cast<uint8_t>(y * 40 + x * 5 + c * 3);
      }
    }
    auto png = encode_png(img);
    ASSERT_TRUE(png) << png.status().message();
    auto back = vision::decode_image(*png, "thumb.png");
    ASSERT_TRUE(back) << back.status().message();
    ASSERT_EQ(back->height(), 5);
    ASSERT_EQ(back->width(), 7);
    for (int y = 0; y < 5; ++y) {
      for (int x = 0; x < 7; ++x) EXPECT_EQ(back->pixel(y, x)[0], img.pixel(y, x)[0]);  // gray expands to R = G = B
    }
  }
}

TEST(Thumbnail, DataUriShrinksLargePictures) {
  vision::Image big(400, 200, 3);
  auto uri = thumbnail_data_uri(big, 100);
  ASSERT_TRUE(uri);
  ASSERT_EQ(uri->rfind("data:image/png;base64,", 0), 0u);
  EXPECT_LT(uri->size(), 4000u);
  EXPECT_FALSE(thumbnail_data_uri(vision::Image(), 100));
}

TEST(Html, EscapesText) { EXPECT_EQ(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"); }

json minimal_report() {
  json epoch = {{"epoch", 1}, {"phase", "train"}, {"loss", 1.0}, {"accuracy", 0.5}, {"val_loss", 0.9},
                {"val_accuracy", 0.6}, {"lr", 0.01}, {"images_per_sec", 100}, {"seconds", 1}};
  json steps = json::array({json{{"x", 0.5}, {"loss", 1.2}, {"accuracy", 0.4}},
                            json{{"x", 1.0}, {"loss", 1.0}, {"accuracy", 0.5}}});
  json classes = json::array({json{{"name", "cat</script><script>alert(1)</script>"}, {"support", 2},
                                   {"precision", 0.67}, {"recall", 1.0}, {"f1", 0.8}},
                              json{{"name", "dog"}, {"support", 2}, {"precision", 1.0}, {"recall", 0.5}, {"f1", 0.67}}});
  json eval = {{"source", "test"}, {"samples", 4}, {"accuracy", 0.75}, {"loss", 0.5},
               {"confusion", json::array({json::array({2, 0}), json::array({1, 1})})}, {"classes", classes}};
  json train = {{"id", "train"}, {"title", "Train"}, {"status", "ok"}, {"message", ""}, {"seconds", 1.0},
                {"arch", "simple_cnn"}, {"dataset", "Fashion-MNIST"}, {"epochs", json::array({epoch})},
                {"steps", steps}, {"best_epoch", 1}, {"eval", eval}};
  json convert = {{"id", "convert"}, {"title", "Convert"}, {"status", "failed"},
                  {"message", "io_error: disk <full>"}, {"seconds", 0.1}};
  return {{"title", "pocketcv pipeline"},
          {"generated", "now"},
          {"options", {{"data", "Fashion-MNIST"}, {"out", "/tmp/x"}, {"quick", true}}},
          {"summary", {{"stages_ok", 1}, {"stages", 2}, {"seconds", 3.0}}},
          {"stages", json::array({train, convert})}};
}

TEST(Html, RendersTablesChartsAndFailures) {
  const std::string page = render_html(minimal_report());
  EXPECT_EQ(page.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(page.find("id=\"stage-train\""), std::string::npos);
  EXPECT_NE(page.find("<canvas data-chart=\"loss\""), std::string::npos);
  EXPECT_NE(page.find("75.0%"), std::string::npos);                        // accuracy
  EXPECT_NE(page.find("io_error: disk &lt;full&gt;"), std::string::npos);  // failure shown, escaped
  // A label cannot close a script element or inject markup.
  EXPECT_EQ(page.find("<script>alert(1)"), std::string::npos);
  EXPECT_NE(page.find("cat&lt;/script&gt;"), std::string::npos);
  // Nothing is fetched: no external src / href.
  EXPECT_EQ(page.find("src=\"http"), std::string::npos);
  EXPECT_EQ(page.find("href=\"http"), std::string::npos);
  if (chartjs_source().empty()) {
    EXPECT_NE(page.find("Charts are unavailable"), std::string::npos);
  } else {
    EXPECT_NE(page.find("Chart.js v4"), std::string::npos);  // inlined banner of chart.umd.min.js
  }
}

TEST(Html, EmptyReportStillRenders) {
  const std::string page = render_html(json::object());
  EXPECT_NE(page.find("</html>"), std::string::npos);
}

}  // namespace
}  // namespace pcv::report

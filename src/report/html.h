// The pipeline report as one self-contained HTML page (pipeline.h has the JSON it renders).
//
// Everything is inline: CSS, chart.js (embedded into the binary at build time from the pinned
// npm copy, see CMakeLists.txt), the chart data and the sample pictures (data: URIs). Tables are
// rendered here in C++, so the numbers are readable without JavaScript; the charts draw from
// a JSON blob in the page. Without chart.js the page says charts are unavailable and keeps
// every table. No network access: nothing is fetched.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pcv::report {

// The page for a pipeline report (the structure run_pipeline writes to report.json). Missing
// fields render as "—"; a failed stage shows its message.
std::string render_html(const nlohmann::json& report);

// The chart.js source inlined into pages ("" when this build has none).
std::string_view chartjs_source();

// &, <, >, ", ' escaped for HTML text and attribute values.
std::string html_escape(std::string_view s);

}  // namespace pcv::report

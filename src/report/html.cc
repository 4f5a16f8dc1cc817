#include "report/html.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "report/chartjs_data.h"

namespace pcv::report {
namespace {

using json = nlohmann::json;

// ---- values -------------------------------------------------------------------------------

bool has_num(const json& j, const char* key) { return j.is_object() && j.contains(key) && j[key].is_number(); }
double get_num(const json& j, const char* key, double def = NAN) {
  return has_num(j, key) ? j[key].get<double>() : def;
}
std::string get_str(const json& j, const char* key, const std::string& def = "") {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : def;
}

const char* kDash = "—";

std::string bytes_text(double b) {
  if (!std::isfinite(b) || b <= 0) return kDash;
  if (b >= 1 << 20) return fmt::format("{:.2f} MB", b / (1 << 20));
  if (b >= 1024) return fmt::format("{:.1f} KB", b / 1024);
  return fmt::format("{:.0f} B", b);
}
std::string pct_text(double v, int digits = 1) {
  return std::isfinite(v) ? fmt::format("{:.{}f}%", 100.0 * v, digits) : kDash;
}
std::string ms_text(double v) {
  if (!std::isfinite(v) || v < 0) return kDash;
  return v < 10 ? fmt::format("{:.3f} ms", v) : fmt::format("{:.1f} ms", v);
}
std::string sec_text(double v) {
  if (!std::isfinite(v)) return kDash;
  return v < 60 ? fmt::format("{:.1f} s", v) : fmt::format("{}m {:02.0f}s", static_cast<int>(v / 60), std::fmod(v, 60));
}
std::string shape_text(const json& s) {
  if (!s.is_array()) return kDash;
  std::string out;
  for (const auto& d : s) out += (out.empty() ? "" : "×") + std::to_string(d.get<int64_t>());
  return out;
}
std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
std::string short_name(std::string s, size_t width = 48) {
  s = s.substr(0, s.find(';'));
  if (s.size() > width) s = "…" + s.substr(s.size() - (width - 1));
  return s;
}

// ---- page pieces --------------------------------------------------------------------------

const char* kCss = R"css(
:root{--bg:#f4f6fb;--card:#fff;--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--blue:#2563eb;--teal:#0d9488;
--amber:#d97706;--rose:#e11d48;--green:#16a34a;--violet:#7c3aed;--soft:#eef2ff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:1180px;margin:0 auto;padding:0 24px}
.hero{background:linear-gradient(135deg,#1e3a8a 0%,#2563eb 55%,#0d9488 100%);color:#fff;padding:28px 0 84px}
.brand{font-weight:700;letter-spacing:.08em;text-transform:uppercase;font-size:12px;opacity:.8}
h1{margin:4px 0 2px;font-size:30px;font-weight:700}
.sub{margin:0;opacity:.85}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:16px;margin-top:-64px}
.tile{background:var(--card);border-radius:14px;padding:16px 18px;box-shadow:0 1px 2px rgba(15,23,42,.06),0 8px 24px rgba(15,23,42,.08)}
.tile .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.06em}
.tile .v{font-size:28px;font-weight:700;margin-top:2px;font-variant-numeric:tabular-nums}
.tile .n{color:var(--muted);font-size:12.5px}
.flow{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin:22px 0 6px}
.chip{display:flex;align-items:center;gap:8px;background:var(--card);border:1px solid var(--line);border-radius:999px;padding:6px 12px 6px 8px;font-weight:600;text-decoration:none;color:var(--ink)}
.chip .dot{width:10px;height:10px;border-radius:50%}
.chip small{color:var(--muted);font-weight:500}
.arrow{color:#94a3b8}
.card{background:var(--card);border-radius:16px;padding:22px 24px;margin:18px 0;box-shadow:0 1px 2px rgba(15,23,42,.05),0 6px 20px rgba(15,23,42,.06)}
.card h2{margin:0;font-size:19px;display:flex;align-items:center;gap:10px}
.num{display:inline-grid;place-items:center;width:26px;height:26px;border-radius:8px;background:var(--soft);color:var(--blue);font-size:13px;font-weight:700}
.head{display:flex;justify-content:space-between;align-items:center;margin-bottom:6px}
.lead{color:var(--muted);margin:2px 0 14px}
.pill{font-size:12px;font-weight:600;border-radius:999px;padding:2px 10px}
.ok{background:#dcfce7;color:#166534}.failed{background:#ffe4e6;color:#9f1239}.skipped,.unavailable{background:#f1f5f9;color:#475569}
.dot.ok{background:var(--green)}.dot.failed{background:var(--rose)}.dot.skipped,.dot.unavailable{background:#94a3b8}
.err{background:#fff1f2;border:1px solid #fecdd3;color:#9f1239;border-radius:10px;padding:10px 12px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;white-space:pre-wrap}
.note{background:#fffbeb;border:1px solid #fde68a;color:#92400e;border-radius:10px;padding:10px 12px;margin:12px 0}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:20px}
.chart{position:relative;height:260px}
.chart.tall{height:330px}
.chart.short{height:120px}
.nochart{display:grid;place-items:center;height:120px;border:1px dashed var(--line);border-radius:12px;color:var(--muted);font-size:13px;text-align:center;padding:12px}
h3{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:18px 0 8px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line)}
th{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em}
td.r,th.r{text-align:right}
tr:last-child td{border-bottom:none}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.bar{position:relative;height:8px;border-radius:4px;background:#eef2f7;min-width:80px}
.bar>span{position:absolute;left:0;top:0;bottom:0;border-radius:4px;background:var(--blue)}
.cm td{text-align:center;padding:6px 4px;font-size:12.5px;border:1px solid #fff;min-width:38px}
.cm th{text-align:right;white-space:nowrap;font-size:12px;text-transform:none;letter-spacing:0}
.cm th.col{text-align:center}
.big{font-size:34px;font-weight:700;font-variant-numeric:tabular-nums}
.samples{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:16px}
.sample{border:1px solid var(--line);border-radius:14px;overflow:hidden;background:#fff}
.sample .img{height:170px;display:grid;place-items:center;background:#0f172a}
.sample img{max-width:100%;max-height:170px;display:block}
.sample img.px{image-rendering:pixelated;height:150px;width:auto}
.sample .body{padding:10px 12px}
.truth{font-size:12px;color:var(--muted)}
.pred{display:grid;grid-template-columns:1fr 52px;gap:2px 8px;align-items:center;margin-top:6px;font-size:13px}
.pred .bar>span{background:#94a3b8}.pred .first .bar>span{background:var(--blue)}
.pred .hit .bar>span{background:var(--green)}.pred .miss .bar>span{background:var(--rose)}
.pred .s{text-align:right;font-variant-numeric:tabular-nums;color:var(--muted)}
.badge{font-size:11px;font-weight:700;border-radius:6px;padding:1px 6px;margin-left:6px}
.badge.hit{background:#dcfce7;color:#166534}.badge.miss{background:#ffe4e6;color:#9f1239}
.frames{display:flex;align-items:center;gap:16px;flex-wrap:wrap}
.frames figure{margin:0;text-align:center;color:var(--muted);font-size:12px}
.frames img{border-radius:10px;display:block;margin-bottom:4px;max-height:170px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}
.kv div:nth-child(odd){color:var(--muted)}
.kv div:nth-child(even){white-space:nowrap;font-variant-numeric:tabular-nums}
footer{color:var(--muted);font-size:12px;text-align:center;padding:24px 0 40px}
@media (max-width:900px){.tiles{grid-template-columns:repeat(2,1fr)}.grid2{grid-template-columns:1fr}}
)css";

// Draws every <canvas data-chart="key"> from the JSON in #pcv-data. Without chart.js each
// chart becomes a short note (the numbers are in the tables next to it).
const char* kChartScript = R"js(
(function () {
  var data = JSON.parse(document.getElementById('pcv-data').textContent);
  var canvases = Array.prototype.slice.call(document.querySelectorAll('canvas[data-chart]'));
  if (typeof Chart === 'undefined') {
    canvases.forEach(function (c) {
      var n = document.createElement('div');
      n.className = 'nochart';
      n.textContent = 'Chart unavailable: chart.js is not embedded in this build. The numbers are in the tables.';
      c.parentNode.replaceWith(n);
    });
    return;
  }
  Chart.defaults.animation = false;
  Chart.defaults.font.family = 'system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif';
  Chart.defaults.color = '#475569';
  Chart.defaults.borderColor = '#e2e8f0';
  Chart.defaults.plugins.legend.labels.boxWidth = 12;
  Chart.defaults.maintainAspectRatio = false;
  var C = {blue: '#2563eb', teal: '#0d9488', amber: '#d97706', rose: '#e11d48', violet: '#7c3aed', slate: '#94a3b8', green: '#16a34a'};
  var kindColor = {float: C.blue, tflite: C.teal, mlmodel: C.violet, mlpackage: '#a855f7', fp16: C.amber, int8: C.green, pruned: C.rose};
  function curve(d, key, title, pct) {
    return {
      type: 'line',
      data: {datasets: [
        {label: 'train', data: d.train.map(function (p) { return {x: p.x, y: p[key]}; }), borderColor: C.blue,
         backgroundColor: 'rgba(37,99,235,.08)', fill: true, pointRadius: d.train.length > 12 ? 0 : 4, borderWidth: 2, tension: .25},
        {label: 'validation (end of epoch)', data: d.val.map(function (p) { return {x: p.x, y: p[key]}; }), borderColor: C.amber,
         backgroundColor: C.amber, pointRadius: 5, borderWidth: 2, showLine: d.val.length > 1}]},
      options: {parsing: false, scales: {
        x: {type: 'linear', min: 0, title: {display: true, text: 'epoch'}},
        y: {title: {display: true, text: title}, ticks: pct ? {callback: function (v) { return Math.round(v * 100) + '%'; }} : {}}},
        plugins: {tooltip: {callbacks: {label: function (c) { return c.dataset.label + ': ' + (pct ? (100 * c.parsed.y).toFixed(1) + '%' : c.parsed.y.toFixed(4)); }}}}}
    };
  }
  function bars(labels, values, colors, title, fmt, horizontal) {
    return {
      type: 'bar',
      data: {labels: labels, datasets: [{data: values, backgroundColor: colors, borderRadius: 6, maxBarThickness: 46}]},
      options: {indexAxis: horizontal ? 'y' : 'x', plugins: {legend: {display: false},
        tooltip: {callbacks: {label: function (c) { return fmt(horizontal ? c.parsed.x : c.parsed.y); }}}},
        scales: horizontal ? {x: {title: {display: true, text: title}}, y: {ticks: {font: {size: 11}}}}
                           : {y: {beginAtZero: true, title: {display: true, text: title}}}}
    };
  }
  var makers = {
    loss: function (d) { return curve(d, 'loss', 'loss', false); },
    accuracy: function (d) { return curve(d, 'accuracy', 'accuracy', true); },
    sizes: function (d) {
      return bars(d.labels, d.kb, d.kinds.map(function (k) { return kindColor[k] || C.slate; }), 'KB',
                  function (v) { return v.toFixed(1) + ' KB'; }, false);
    },
    latency: function (d) {
      return bars(d.labels, d.ms, d.kinds.map(function (k) { return kindColor[k] || C.slate; }), 'ms per image',
                  function (v) { return v.toFixed(3) + ' ms'; }, false);
    },
    trace: function (d) {
      var colors = [C.slate, C.amber, C.blue, C.teal];
      return {
        type: 'bar',
        data: {labels: ['one picture'], datasets: d.stages.map(function (s, i) {
          return {label: s + ' ' + d.ms[i].toFixed(3) + ' ms', data: [d.ms[i]], backgroundColor: colors[i % colors.length], borderRadius: 4};
        })},
        options: {indexAxis: 'y', scales: {x: {stacked: true, title: {display: true, text: 'ms'}}, y: {stacked: true, display: false}},
                  plugins: {legend: {position: 'bottom'}}}
      };
    },
    layers: function (d) {
      return bars(d.names, d.ms, d.ops.map(function (o) { return o === 'conv2d' ? C.blue : o === 'fully_connected' ? C.violet : C.teal; }),
                  'ms', function (v) { return v.toFixed(3) + ' ms'; }, true);
    }
  };
  canvases.forEach(function (c) {
    var key = c.getAttribute('data-chart');
    if (data[key] && makers[key]) new Chart(c, makers[key](data[key]));
  });
})();
)js";

class Page {
 public:
  explicit Page(const json& r) : r_(r) {}
  std::string render();

 private:
  const json* stage(const char* id) const {
    if (!r_.contains("stages")) return nullptr;
    for (const auto& s : r_["stages"]) {
      if (get_str(s, "id") == id) return &s;
    }
    return nullptr;
  }
  void card_open(int n, const json& s, const std::string& lead);
  void card_close() { h_ += "</section>\n"; }
  bool stage_body_ok(const json& s);
  void tiles();
  void flow();
  void train_card(int n);
  void convert_card(int n);
  void optimize_card(int n);
  void integrate_card(int n);
  void predict_card(int n);
  void canvas(const char* key, const char* size = "") {
    h_ += fmt::format("<div class=\"chart {}\"><canvas data-chart=\"{}\" role=\"img\" aria-label=\"{} chart\"></canvas></div>",
                      size, key, key);
  }
  // Top-k rows with score bars. truth_index >= 0 colors the first row green (right) or red.
  void top_list(const json& top, int truth_index);

  const json& r_;
  std::string h_;
  json charts_ = json::object();
};

void Page::card_open(int n, const json& s, const std::string& lead) {
  const std::string status = get_str(s, "status", "skipped");
  h_ += fmt::format(
      "<section class=\"card\" id=\"stage-{}\"><div class=\"head\"><h2><span class=\"num\">{}</span>{}</h2>"
      "<div><span class=\"pill {}\">{}</span> <small style=\"color:var(--muted);margin-left:6px\">{}</small></div></div>",
      html_escape(get_str(s, "id")), n, html_escape(get_str(s, "title")), html_escape(status), html_escape(status),
      sec_text(get_num(s, "seconds")));
  if (!lead.empty()) h_ += "<p class=\"lead\">" + lead + "</p>";
}

// Shows a failed / skipped stage's message; true when the stage has results to show.
bool Page::stage_body_ok(const json& s) {
  const std::string status = get_str(s, "status");
  const std::string msg = get_str(s, "message");
  if (status == "failed") {
    h_ += "<div class=\"err\">" + html_escape(msg) + "</div>";
  } else if (status != "ok") {
    h_ += "<div class=\"note\">" + html_escape(msg.empty() ? status : msg) + "</div>";
  } else if (!msg.empty()) {
    h_ += "<div class=\"note\">" + html_escape(msg) + "</div>";
  }
  return status == "ok" || s.contains("variants") || s.contains("files");
}

void Page::tiles() {
  const json* tr = stage("train");
  double acc = NAN;
  std::string acc_note = "held-out images";
  if (tr && tr->contains("eval")) {
    acc = get_num((*tr)["eval"], "accuracy");
    acc_note = fmt::format("{} held-out images", static_cast<int64_t>(get_num((*tr)["eval"], "samples", 0)));
  }
  double float_bytes = NAN, small_bytes = NAN, float_ms = NAN, small_ms = NAN;
  std::string small_name;
  if (r_.contains("variants")) {
    for (const auto& v : r_["variants"]) {
      const std::string name = get_str(v, "name");
      if (name == "float") float_bytes = get_num(v, "bytes"), float_ms = get_num(v, "latency_ms");
      if (name == "int8" || (small_name.empty() && name == "fp16")) {
        small_name = name;
        small_bytes = get_num(v, "bytes");
        small_ms = get_num(v, "latency_ms");
      }
    }
  }
  const json& sum = r_.contains("summary") ? r_["summary"] : json::object();
  auto tile = [&](const std::string& k, const std::string& v, const std::string& n) {
    h_ += fmt::format("<div class=\"tile\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"n\">{}</div></div>",
                      html_escape(k), v, n);
  };
  h_ += "<div class=\"wrap\"><div class=\"tiles\">";
  tile("Accuracy", pct_text(acc), html_escape(acc_note));
  tile("Model size", bytes_text(float_bytes),
       std::isfinite(small_bytes) && small_bytes > 0
           ? fmt::format("{} as {} ({:.1f}× smaller)", bytes_text(small_bytes), html_escape(small_name), float_bytes / small_bytes)
           : std::string("float model (.pcv)"));
  tile("Latency", ms_text(float_ms),
       std::isfinite(small_ms) ? fmt::format("float · {} as {} · 1 thread", ms_text(small_ms), html_escape(small_name))
                               : std::string("float · 1 thread"));
  tile("Stages", fmt::format("{} / {}", static_cast<int>(get_num(sum, "stages_ok", 0)), static_cast<int>(get_num(sum, "stages", 0))),
       fmt::format("ok · total {}", sec_text(get_num(sum, "seconds"))));
  h_ += "</div></div>";
}

void Page::flow() {
  h_ += "<nav class=\"flow\">";
  bool first = true;
  if (r_.contains("stages")) {
    for (const auto& s : r_["stages"]) {
      if (!first) h_ += "<span class=\"arrow\">→</span>";
      first = false;
      const std::string st = get_str(s, "status");
      h_ += fmt::format("<a class=\"chip\" href=\"#stage-{}\"><span class=\"dot {}\"></span>{} <small>{}</small></a>",
                        html_escape(get_str(s, "id")), html_escape(st), html_escape(get_str(s, "title")),
                        st == "ok" ? sec_text(get_num(s, "seconds")) : html_escape(st));
    }
  }
  h_ += "</nav>";
}

void Page::train_card(int n) {
  const json* s = stage("train");
  if (!s) return;
  std::string lead = html_escape(fmt::format("{} on {}", get_str(*s, "arch", "model"), get_str(*s, "dataset", "data")));
  if (has_num(*s, "train_samples")) {
    lead += fmt::format(" · {} training / {} validation images", static_cast<int64_t>(get_num(*s, "train_samples")),
                        static_cast<int64_t>(get_num(*s, "val_samples")));
  }
  if (has_num(*s, "parameters")) {
    const double p = get_num(*s, "parameters");
    lead += p >= 1e6 ? fmt::format(" · {:.2f}M parameters", p / 1e6) : fmt::format(" · {:.1f}K parameters", p / 1e3);
  }
  card_open(n, *s, lead);
  if (stage_body_ok(*s) && s->contains("epochs")) {
    json train = json::array(), val = json::array();
    if (s->contains("steps")) {
      for (const auto& p : (*s)["steps"]) {
        if (p["loss"].is_number()) train.push_back({{"x", p["x"]}, {"loss", p["loss"]}, {"accuracy", p["accuracy"]}});
      }
    }
    for (const auto& e : (*s)["epochs"]) {
      val.push_back({{"x", e["epoch"]}, {"loss", e["val_loss"]}, {"accuracy", e["val_accuracy"]}});
    }
    if (train.empty()) {  // no per-batch progress (e.g. a head trained on cached features): epoch means
      for (const auto& e : (*s)["epochs"]) train.push_back({{"x", e["epoch"]}, {"loss", e["loss"]}, {"accuracy", e["accuracy"]}});
    }
    charts_["loss"] = {{"train", train}, {"val", val}};
    charts_["accuracy"] = {{"train", train}, {"val", val}};
    h_ += "<div class=\"grid2\"><div><h3>Loss</h3>";
    canvas("loss");
    h_ += "</div><div><h3>Accuracy</h3>";
    canvas("accuracy");
    h_ += "</div></div>";
    h_ += "<h3>Epochs</h3><table><tr><th>epoch</th><th>phase</th><th class=r>loss</th><th class=r>accuracy</th>"
          "<th class=r>val loss</th><th class=r>val accuracy</th><th class=r>learning rate</th><th class=r>images/s</th>"
          "<th class=r>time</th></tr>";
    for (const auto& e : (*s)["epochs"]) {
      const bool best = static_cast<int>(get_num(e, "epoch", -1)) == static_cast<int>(get_num(*s, "best_epoch", -2));
      h_ += fmt::format(
          "<tr><td>{}{}</td><td>{}</td><td class=r>{:.4f}</td><td class=r>{}</td><td class=r>{:.4f}</td><td class=r>{}</td>"
          "<td class=r>{:.5f}</td><td class=r>{:.0f}</td><td class=r>{}</td></tr>",
          static_cast<int>(get_num(e, "epoch", 0)), best ? "<span class=\"badge hit\">best</span>" : "",
          html_escape(get_str(e, "phase")), get_num(e, "loss"), pct_text(get_num(e, "accuracy")), get_num(e, "val_loss"),
          pct_text(get_num(e, "val_accuracy")), get_num(e, "lr"), get_num(e, "images_per_sec"), sec_text(get_num(e, "seconds")));
    }
    h_ += "</table>";
    if (has_num(*s, "test_accuracy")) {
      h_ += fmt::format("<p class=\"lead\" style=\"margin-top:10px\">Best model (epoch {}): test accuracy <b>{}</b> on {} test images.</p>",
                        static_cast<int>(get_num(*s, "best_epoch", 0)), pct_text(get_num(*s, "test_accuracy")),
                        static_cast<int64_t>(get_num(*s, "test_samples", 0)));
    }
  }
  if (s->contains("eval")) {
    const json& ev = (*s)["eval"];
    h_ += fmt::format("<h3>Evaluation · {}</h3>", html_escape(get_str(ev, "source")));
    h_ += "<div class=\"grid2\"><div>";
    h_ += fmt::format("<div class=\"big\">{}</div><div class=\"lead\">accuracy on {} images · mean loss {:.4f}</div>",
                      pct_text(get_num(ev, "accuracy")), static_cast<int64_t>(get_num(ev, "samples", 0)), get_num(ev, "loss"));
    h_ += "<table><tr><th>class</th><th class=r>precision</th><th class=r>recall</th><th>F1</th><th class=r>support</th></tr>";
    for (const auto& c : ev["classes"]) {
      const double f1 = get_num(c, "f1", 0);
      h_ += fmt::format(
          "<tr><td>{}</td><td class=r>{}</td><td class=r>{}</td><td><div class=\"bar\" title=\"{:.3f}\"><span style=\"width:{:.1f}%\"></span></div></td>"
          "<td class=r>{}</td></tr>",
          html_escape(get_str(c, "name")), pct_text(get_num(c, "precision")), pct_text(get_num(c, "recall")), f1,
          100.0 * std::clamp(f1, 0.0, 1.0), static_cast<int64_t>(get_num(c, "support", 0)));
    }
    h_ += "</table></div><div>";
    // Confusion matrix: rows true class, columns predicted; shade = share of the row.
    const json& cm = ev["confusion"];
    h_ += "<table class=\"cm\"><caption style=\"caption-side:bottom;color:var(--muted);font-size:12px;padding-top:6px\">"
          "rows: true class · columns: predicted class (numbered as the rows) · shade: share of the row</caption><tr><th></th>";
    for (size_t j = 0; j < cm.size(); ++j) h_ += fmt::format("<th class=\"col\">{}</th>", j);
    h_ += "</tr>";
    for (size_t i = 0; i < cm.size(); ++i) {
      double row = 0;
      for (const auto& v : cm[i]) row += v.get<double>();
      const std::string name = i < ev["classes"].size() ? get_str(ev["classes"][i], "name") : std::to_string(i);
      h_ += fmt::format("<tr><th>{} <span style=\"color:#94a3b8\">{}</span></th>", html_escape(name), i);
      for (size_t j = 0; j < cm[i].size(); ++j) {
        const double v = cm[i][j].get<double>();
        const double a = row > 0 ? v / row : 0;
        const char* rgb = i == j ? "37,99,235" : "225,29,72";
        h_ += fmt::format("<td style=\"background:rgba({},{:.3f});color:{}\" title=\"true {} → predicted {}: {}\">{}</td>", rgb,
                          v > 0 ? 0.08 + 0.92 * a : 0.0, a > 0.5 ? "#fff" : "#0f172a", html_escape(name), j,
                          static_cast<int64_t>(v), v > 0 ? std::to_string(static_cast<int64_t>(v)) : "");
      }
      h_ += "</tr>";
    }
    h_ += "</table></div></div>";
  }
  card_close();
}

void Page::convert_card(int n) {
  const json* s = stage("convert");
  if (!s) return;
  card_open(n, *s, "One IR, three mobile formats. Each file is read back and run next to the trained model on the same inputs.");
  if (stage_body_ok(*s) && s->contains("files")) {
    h_ += "<table><tr><th>format</th><th>file</th><th class=r>size</th><th class=r>top-1 agreement</th>"
          "<th class=r>max |Δ| output</th><th class=r>output SNR</th><th class=r>layers matched</th><th>status</th></tr>";
    for (const auto& f : (*s)["files"]) {
      const std::string st = get_str(f, "status");
      const double snr = get_num(f, "output_snr_db");
      h_ += fmt::format(
          "<tr><td><b>{}</b></td><td class=mono>{}</td><td class=r>{}</td><td class=r>{}</td><td class=r>{}</td><td class=r>{}</td>"
          "<td class=r>{}</td><td><span class=\"pill {}\">{}</span></td></tr>",
          html_escape(get_str(f, "format")), html_escape(base_name(get_str(f, "path"))), bytes_text(get_num(f, "bytes")),
          pct_text(get_num(f, "top1_agreement")), std::isfinite(get_num(f, "max_abs_diff")) ? fmt::format("{:.3g}", get_num(f, "max_abs_diff")) : kDash,
          !std::isfinite(snr) ? kDash : snr >= 200 ? std::string("exact") : fmt::format("{:.1f} dB", snr),
          has_num(f, "layers_matched") ? fmt::format("{:.0f} by {}", get_num(f, "layers_matched"), html_escape(get_str(f, "layer_match"))) : kDash,
          html_escape(st), html_escape(st));
      if (st == "failed") h_ += "<tr><td colspan=8><div class=\"err\">" + html_escape(get_str(f, "message")) + "</div></td></tr>";
    }
    h_ += "</table>";
  }
  card_close();
}

void Page::optimize_card(int n) {
  const json* s = stage("optimize");
  if (!s) return;
  card_open(n, *s, "Smaller and faster variants of the trained model, measured in pocketcv's runtime.");
  if (stage_body_ok(*s) && s->contains("variants")) {
    for (const auto& v : (*s)["variants"]) {
      const std::string st = get_str(v, "status");
      if (st == "failed") {
        h_ += fmt::format("<div class=\"err\">{}: {}</div>", html_escape(get_str(v, "name")), html_escape(get_str(v, "message")));
      } else if (st != "ok") {
        h_ += fmt::format("<div class=\"note\">{}: {}</div>", html_escape(get_str(v, "name")), html_escape(get_str(v, "message")));
      }
    }
  }
  if (r_.contains("variants") && !r_["variants"].empty()) {
    const json& vs = r_["variants"];
    json labels = json::array(), kb = json::array(), ms = json::array(), kinds = json::array();
    double max_bytes = 0;
    for (const auto& v : vs) max_bytes = std::max(max_bytes, get_num(v, "bytes", 0));
    for (const auto& v : vs) {
      labels.push_back(get_str(v, "file"));
      kb.push_back(get_num(v, "bytes", 0) / 1024.0);
      ms.push_back(std::max(0.0, get_num(v, "latency_ms", 0)));
      kinds.push_back(get_str(v, "name"));
    }
    charts_["sizes"] = {{"labels", labels}, {"kb", kb}, {"kinds", kinds}};
    charts_["latency"] = {{"labels", labels}, {"ms", ms}, {"kinds", kinds}};
    h_ += "<div class=\"grid2\"><div><h3>File size</h3>";
    canvas("sizes");
    h_ += "</div><div><h3>Latency (median, one picture)</h3>";
    canvas("latency");
    h_ += "</div></div>";
    h_ += fmt::format("<h3>Accuracy and latency per variant</h3><p class=\"lead\">{}</p>", html_escape(get_str(r_, "variants_note")));
    h_ += "<table><tr><th>variant</th><th>file</th><th class=r>size</th><th></th><th class=r>gzipped</th><th class=r>accuracy</th>"
          "<th class=r>latency</th></tr>";
    for (const auto& v : vs) {
      const double b = get_num(v, "bytes", 0);
      h_ += fmt::format(
          "<tr><td><b>{}</b></td><td class=mono title=\"{}\">{}</td><td class=r>{}</td><td style=\"width:20%\"><div class=\"bar\"><span style=\"width:{:.1f}%\"></span></div></td>"
          "<td class=r>{}</td><td class=r>{}</td><td class=r>{}</td></tr>",
          html_escape(get_str(v, "name")), html_escape(get_str(v, "path")), html_escape(base_name(get_str(v, "path"))), bytes_text(b),
          max_bytes > 0 ? 100.0 * b / max_bytes : 0.0, bytes_text(get_num(v, "gzip_bytes")), pct_text(get_num(v, "accuracy")),
          ms_text(get_num(v, "latency_ms")));
      if (v.contains("error")) h_ += "<tr><td colspan=7><div class=\"err\">" + html_escape(get_str(v, "error")) + "</div></td></tr>";
    }
    h_ += "</table>";
  }
  card_close();
}

void Page::top_list(const json& top, int truth_index) {
  h_ += "<div class=\"pred\">";
  for (size_t i = 0; i < top.size(); ++i) {
    const double sc = get_num(top[i], "score", 0);
    const int idx = static_cast<int>(get_num(top[i], "index", -1));
    std::string cls = i == 0 ? (truth_index < 0 ? "first" : idx == truth_index ? "hit" : "miss") : "";
    h_ += fmt::format("<div class=\"{}\"><div>{}</div><div class=\"bar\"><span style=\"width:{:.1f}%\"></span></div></div><div class=\"s\">{}</div>",
                      cls, html_escape(get_str(top[i], "label")), 100.0 * std::clamp(sc, 0.0, 1.0), pct_text(sc));
  }
  h_ += "</div>";
}

void Page::integrate_card(int n) {
  const json* s = stage("integrate");
  if (!s) return;
  card_open(n, *s, "What an app does: the C API (<span class=mono>pocketcv.h</span>) on a camera frame in NV21 that needs a 90° rotation.");
  if (stage_body_ok(*s) && s->contains("top")) {
    const json& fr = (*s)["frame"];
    h_ += "<div class=\"grid2\"><div><div class=\"frames\">";
    if (s->contains("frame_image")) {
      h_ += fmt::format("<figure><img src=\"{}\" alt=\"sensor frame\">sensor frame · NV21 {}×{}</figure><span class=\"arrow\" style=\"font-size:22px\">↻ 90°</span>",
                        get_str(*s, "frame_image"), static_cast<int>(get_num(fr, "width", 0)), static_cast<int>(get_num(fr, "height", 0)));
    }
    if (s->contains("upright_image")) {
      h_ += fmt::format("<figure><img src=\"{}\" alt=\"upright picture\">what the model sees (upright)</figure>", get_str(*s, "upright_image"));
    }
    h_ += "</div></div><div>";
    h_ += fmt::format("<div class=\"truth\">true class: <b>{}</b> · model <span class=mono>{}</span></div>",
                      html_escape(get_str(*s, "true_label")), html_escape(base_name(get_str(*s, "model_path"))));
    top_list((*s)["top"], -1);
    const json& tr = (*s)["trace"];
    const bool agree = s->contains("agrees_with_predict") && (*s)["agrees_with_predict"].get<bool>();
    h_ += fmt::format(
        "<h3>pcv_session_last_trace</h3><div class=\"kv\"><div>preprocess (rotate, YUV→RGB, resize, normalize)</div><div>{}</div>"
        "<div>inference</div><div>{}</div><div>postprocess (top-k)</div><div>{}</div>"
        "<div>C++ predictor on the RGB picture</div><div>{} {} <span class=\"badge {}\">{}</span></div></div>",
        ms_text(get_num(tr, "preprocess_ms")), ms_text(get_num(tr, "inference_ms")), ms_text(get_num(tr, "postprocess_ms")),
        html_escape(get_str((*s)["predict_top1"], "label")), pct_text(get_num((*s)["predict_top1"], "score")),
        agree ? "hit" : "miss", agree ? "same top-1" : "different top-1");
    h_ += "</div></div>";
  }
  card_close();
}

void Page::predict_card(int n) {
  const json* s = stage("predict");
  if (!s) return;
  std::string lead = "Sample pictures through <span class=mono>Predictor</span>: decode, preprocess, inference, softmax and top-3.";
  if (s->contains("samples")) {
    lead += fmt::format(" {} of {} top-1 correct.", static_cast<int>(get_num(*s, "correct", 0)), (*s)["samples"].size());
  }
  card_open(n, *s, lead);
  if (stage_body_ok(*s) && s->contains("samples")) {
    h_ += "<div class=\"samples\">";
    for (const auto& smp : (*s)["samples"]) {
      const bool correct = smp.contains("correct") && smp["correct"].get<bool>();
      const json& tr = smp["trace"];
      const bool tiny = tr.contains("source_size") && tr["source_size"].is_array() && tr["source_size"][0].get<int>() < 96;
      h_ += "<div class=\"sample\"><div class=\"img\">";
      if (smp.contains("image")) {
        h_ += fmt::format("<img class=\"{}\" src=\"{}\" alt=\"{}\">", tiny ? "px" : "", get_str(smp, "image"), html_escape(get_str(smp, "true_label")));
      }
      h_ += fmt::format("</div><div class=\"body\"><div class=\"truth\">true: <b>{}</b><span class=\"badge {}\">{}</span> · {}</div>",
                        html_escape(get_str(smp, "true_label")), correct ? "hit" : "miss", correct ? "correct" : "wrong",
                        ms_text(get_num(tr, "total_ms")));
      top_list(smp["top"], static_cast<int>(get_num(smp, "true_index", -1)));
      h_ += "</div></div>";
    }
    h_ += "</div>";
  }
  if (s->contains("trace")) {
    const json& tr = (*s)["trace"];
    charts_["trace"] = {{"stages", {"decode", "preprocess", "inference", "postprocess"}},
                        {"ms", {get_num(tr, "decode_ms", 0), get_num(tr, "preprocess_ms", 0), get_num(tr, "inference_ms", 0),
                                get_num(tr, "postprocess_ms", 0)}}};
    h_ += fmt::format("<h3>Prediction trace · first picture · {} → input {} {}</h3>",
                      tr.contains("source_size") ? shape_text(tr["source_size"]) : kDash,
                      tr.contains("input_shape") ? shape_text(tr["input_shape"]) : kDash, html_escape(get_str(tr, "input_dtype")));
    canvas("trace", "short");
    if (tr.contains("layers") && !tr["layers"].empty()) {
      const json& layers = tr["layers"];
      std::vector<size_t> order(layers.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return get_num(layers[a], "ms", 0) > get_num(layers[b], "ms", 0); });
      double total = 0;
      for (const auto& l : layers) total += get_num(l, "ms", 0);
      json names = json::array(), ms = json::array(), ops = json::array();
      for (size_t k = 0; k < std::min<size_t>(12, order.size()); ++k) {
        const json& l = layers[order[k]];
        names.push_back(short_name(get_str(l, "name"), 28));
        ms.push_back(get_num(l, "ms", 0));
        ops.push_back(get_str(l, "op"));
      }
      charts_["layers"] = {{"names", names}, {"ms", ms}, {"ops", ops}};
      h_ += "<div class=\"grid2\"><div><h3>Slowest layers</h3>";
      canvas("layers", "tall");
      h_ += "</div><div><h3>Every layer, in execution order</h3><div style=\"max-height:330px;overflow:auto\"><table>"
            "<tr><th>#</th><th>layer</th><th>op</th><th>output</th><th class=r>ms</th><th class=r>%</th></tr>";
      for (size_t i = 0; i < layers.size(); ++i) {
        const json& l = layers[i];
        const double lm = get_num(l, "ms", 0);
        h_ += fmt::format("<tr><td>{}</td><td class=mono title=\"{}\">{}</td><td>{}</td><td class=mono>{}</td><td class=r>{:.3f}</td><td class=r>{:.1f}</td></tr>",
                          i, html_escape(get_str(l, "name")), html_escape(short_name(get_str(l, "name"), 30)),
                          html_escape(get_str(l, "op")), shape_text(l["output_shape"]), lm, total > 0 ? 100.0 * lm / total : 0.0);
      }
      h_ += "</table></div></div></div>";
    }
  }
  card_close();
}

std::string Page::render() {
  const json& opt = r_.contains("options") ? r_["options"] : json::object();
  const std::string_view chart = chartjs_source();
  std::string body;
  std::swap(h_, body);
  tiles();
  h_ += "<main class=\"wrap\">";
  flow();
  if (chart.empty()) {
    h_ += "<div class=\"note\">Charts are unavailable: this pocketcv build has no chart.js embedded "
          "(install tools/oracle with <span class=mono>scripts/setup --with-oracles</span> and rebuild). Every number is in the tables.</div>";
  }
  train_card(1);
  convert_card(2);
  optimize_card(3);
  integrate_card(4);
  predict_card(5);
  h_ += "</main>";
  std::string main_html;
  std::swap(h_, main_html);

  std::string page;
  page.reserve(main_html.size() + chart.size() + 64 * 1024);
  page += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">";
  page += "<title>" + html_escape(get_str(r_, "title", "pocketcv pipeline")) + " report</title><style>" + kCss + "</style></head><body>";
  page += fmt::format(
      "<header class=\"hero\"><div class=\"wrap\"><div class=\"brand\">pocketcv {}</div><h1>From photos to phone</h1>"
      "<p class=\"sub\">{} · {}{} · generated {}</p></div></header>",
      html_escape(get_str(r_, "pocketcv_version")), html_escape(get_str(opt, "data", "data")),
      html_escape(stage("train") ? get_str(*stage("train"), "arch", "model") : "model"),
      opt.contains("quick") && opt["quick"].is_boolean() && opt["quick"].get<bool>() ? " · quick run" : "",
      html_escape(get_str(r_, "generated")));
  page += main_html;
  page += fmt::format("<footer>report.json next to this page holds every number · output folder <span class=mono>{}</span></footer>",
                      html_escape(get_str(opt, "out")));
  // Data for the charts. "</" is escaped so no string can close the script element.
  std::string data = charts_.dump();
  std::string safe;
  safe.reserve(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '<' && i + 1 < data.size() && data[i + 1] == '/') {
      safe += "<\\/";
      ++i;
    } else {
      safe += data[i];
    }
  }
  page += "<script type=\"application/json\" id=\"pcv-data\">" + safe + "</script>\n";
  if (!chart.empty()) {
    page += "<script>";
    page.append(chart.data(), chart.size());
    page += "</script>\n";
  }
  page += "<script>";
  page += kChartScript;
  page += "</script></body></html>\n";
  return page;
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string_view chartjs_source() {
  if (kChartJs_size > 0) return {reinterpret_cast<const char*>(kChartJs), kChartJs_size};
  return {};
}

std::string render_html(const json& report) {
  Page p(report);
  return p.render();
}

}  // namespace pcv::report

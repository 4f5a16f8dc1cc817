#include "optimize/optimize_test_util.h"

#include <algorithm>
#include <cmath>

#include "optimize/passes.h"
#include "optimize/report.h"
#include "zoo/zoo.h"

namespace pcv::optimize::testing {

ir::Model zoo_model(const std::string& arch, int size, int channels, int classes, float width, bool prepared,
                    uint64_t seed) {
  zoo::ZooOptions o;
  o.arch = arch;
  o.size = size;
  o.channels = channels;
  o.classes = classes;
  o.width = width;
  o.seed = seed;
  auto m = zoo::create_model(o);
  EXPECT_TRUE(m.has_value()) << m.status().to_string();
  if (prepared) {
    EXPECT_TRUE(prepare_for_inference(m->graph).is_ok());
  }
  return std::move(*m);
}

std::vector<float> run(const ir::Model& model, const ir::Tensor& input) {
  SampleSet s;
  s.inputs = {input};
  auto out = run_samples(model, s, /*fast_kernels=*/false);
  EXPECT_TRUE(out.has_value()) << out.status().to_string();
  return out ? (*out)[0] : std::vector<float>{};
}

int count_ops(const ir::Graph& g, ir::OpType op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const ir::Node& n) { return n.op == op; }));
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = a.size() == b.size() ? 0.0 : INFINITY;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

const ir::Node* producer_of(const ir::Graph& g, ir::ValueId v) {
  const int p = g.producer(v);
  return p < 0 ? nullptr : &g.nodes[static_cast<size_t>(p)];
}

int argmax(const std::vector<float>& v) {
  return v.empty() ? -1 : static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace pcv::optimize::testing

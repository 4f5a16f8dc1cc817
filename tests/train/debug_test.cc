#include <gtest/gtest.h>
#include "train/program.h"
#include "zoo/zoo.h"
#include <random>
#include <cmath>
namespace pcv::train {
TEST(Debug, Bisect) {
  zoo::ZooOptions z; z.arch = "mobilenet_v2"; z.size = 32; z.width = 0.35f; z.classes = 3;
  auto model = zoo::create_model(z);
  int nn = model->graph.nodes.size();
  for (int k = 0; k < nn; k += 1) {
    ir::Model m = *model;
    m.graph.outputs = {m.graph.nodes[k].outputs[0]};
    ProgramOptions po; po.batch = 2; po.loss_head = false; po.input_grad = true;
    auto prog = Program::create(m, po, nullptr);
    Program& p = **prog;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> d(-1, 1);
    size_t in = p.input_elems_per_sample() * 2;
    for (size_t i = 0; i < in; ++i) p.input()[i] = d(rng);
    size_t on = p.output_elems_per_sample(0) * 2;
    std::vector<float> r(on); for (auto& v : r) v = d(rng);
    auto L = [&] { p.forward(Mode::kEval, 2, 7); double l = 0; for (size_t i = 0; i < on; ++i) l += p.output(0)[i] * (double)r[i]; return l; };
    L(); std::copy(r.begin(), r.end(), p.output_grad(0)); p.backward();
    std::vector<float> u(in); double dot = 0; for (size_t i = 0; i < in; ++i) { u[i] = d(rng); dot += u[i] * p.input_grad()[i]; }
    std::vector<float> saved(p.input(), p.input() + in);
    double eps = 1e-3;
    for (size_t i = 0; i < in; ++i) p.input()[i] = saved[i] + eps * u[i];
    double lp = L();
    for (size_t i = 0; i < in; ++i) p.input()[i] = saved[i] - eps * u[i];
    double lm = L();
    std::copy(saved.begin(), saved.end(), p.input());
    double num = (lp - lm) / (2 * eps);
    printf("%3d %-28s %-12s num %12.6g ana %12.6g %s\n", k, m.graph.nodes[k].name.c_str(), ir::op_name(m.graph.nodes[k].op), num, dot, std::fabs(num - dot) > 0.03 * std::fabs(dot) + 1e-3 ? "<<<" : "");
  }
}
}

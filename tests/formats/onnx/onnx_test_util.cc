#include "formats/onnx/onnx_test_util.h"

#include <cmath>
#include <cstring>
#include <random>

#include <fmt/core.h>

#include "runtime/session.h"
#include "support/oracle.h"
#include "support/paths.h"

namespace pcv::onnx_test {

GraphBuilder::GraphBuilder(int64_t opset, const std::string& producer) {
  model_.set_ir_version(opset >= 14 ? 8 : 7);
  model_.set_producer_name(producer);
  auto* os = model_.add_opset_import();
  os->set_domain("");
  os->set_version(opset);
  g_ = model_.mutable_graph();
  g_->set_name("test");
}

void GraphBuilder::input(const std::string& name, const ir::Shape& dims) {
  auto* vi = g_->add_input();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(pb::TensorProto::FLOAT);
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
}

void GraphBuilder::output(const std::string& name) {
  auto* vi = g_->add_output();
  vi->set_name(name);
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(pb::TensorProto::FLOAT);
}

namespace {
template <class T>
void add_init(pb::GraphProto* g, const std::string& name, const ir::Shape& dims, const std::vector<T>& v, int32_t type) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)));
}
}  // namespace

void GraphBuilder::init(const std::string& name, const ir::Shape& dims, const std::vector<float>& v) {
  add_init(g_, name, dims, v, pb::TensorProto::FLOAT);
}
void GraphBuilder::init_i64(const std::string& name, const ir::Shape& dims, const std::vector<int64_t>& v) {
  add_init(g_, name, dims, v, pb::TensorProto::INT64);
}
void GraphBuilder::init_i8(const std::string& name, const ir::Shape& dims, const std::vector<int8_t>& v) {
  add_init(g_, name, dims, v, pb::TensorProto::INT8);
}
void GraphBuilder::init_u8(const std::string& name, const ir::Shape& dims, const std::vector<uint8_t>& v) {
  add_init(g_, name, dims, v, pb::TensorProto::UINT8);
}
void GraphBuilder::init_i32(const std::string& name, const ir::Shape& dims, const std::vector<int32_t>& v) {
  add_init(g_, name, dims, v, pb::TensorProto::INT32);
}
void GraphBuilder::init_random(const std::string& name, const ir::Shape& dims, uint32_t seed, float lo, float hi) {
  init(name, dims, random_floats(static_cast<size_t>(ir::num_elements(dims)), seed, lo, hi));
}

pb::NodeProto* GraphBuilder::node(const std::string& op, const std::vector<std::string>& ins,
                                  const std::vector<std::string>& outs, const std::string& name) {
  auto* n = g_->add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? "/" + op + "_" + std::to_string(g_->node_size()) : name);
  for (const auto& i : ins) n->add_input(i);
  for (const auto& o : outs) n->add_output(o);
  return n;
}

void GraphBuilder::attr(pb::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::INT);
  a->set_i(v);
}
void GraphBuilder::attr(pb::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::FLOAT);
  a->set_f(v);
}
void GraphBuilder::attr(pb::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
void GraphBuilder::attr(pb::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::STRING);
  a->set_s(v);
}

std::vector<uint8_t> GraphBuilder::bytes() const {
  std::string s;
  model_.SerializeToString(&s);
  return {s.begin(), s.end()};
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}
std::vector<float> floats_from_bytes(const std::vector<uint8_t>& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

bool run_ort(const std::string& path, const std::vector<float>& input, std::vector<float>* out,
             std::vector<int64_t>* out_shape, std::string* error) {
  std::vector<testing::OracleTensor> outs;
  if (!testing::run_onnx_oracle(path, {float_bytes(input)}, &outs, error)) return false;
  if (outs.empty() || outs[0].dtype != "float32") {
    *error = "onnxruntime: expected one float32 output";
    return false;
  }
  *out = floats_from_bytes(outs[0].bytes);
  if (out_shape) *out_shape = outs[0].shape;
  return true;
}

Expected<std::vector<float>> run_ours(const ir::Model& model, const std::vector<float>& input, bool fast) {
  const ir::Value& in = model.graph.value(model.graph.inputs[0]);
  if (static_cast<int64_t>(input.size()) != ir::num_elements(in.shape)) {
    return invalid_argument(fmt::format("input has {} floats, model wants {}", input.size(), ir::shape_to_string(in.shape)));
  }
  runtime::SessionOptions o;
  o.fast_kernels = fast;
  PCV_ASSIGN_OR_RETURN(auto outs, runtime::run_model(model, {ir::Tensor::from_vector<float>(in.shape, input)}, o));
  const ir::Tensor& t = outs[0];
  if (t.dtype() != ir::DType::kF32) return internal_error("output is not f32");
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}

::testing::AssertionResult all_close(const std::vector<float>& a, const std::vector<float>& b, float rel, float abs) {
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  }
  float worst = 0.f;
  size_t at = 0, bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const float err = std::fabs(a[i] - b[i]);
    const float tol = abs + rel * std::fabs(b[i]);
    if (!(err <= tol)) {
      if (bad == 0 || err > worst) { worst = err; at = i; }
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << a.size() << " differ; worst at " << at << ": " << a[at]
                                       << " vs " << b[at] << " (|diff| " << worst << ")";
}

std::vector<float> to_nhwc(const std::vector<float>& nchw, const ir::Shape& s) {
  return onnx::detail::nchw_to_nhwc(nchw, s);
}
std::vector<float> to_nchw(const std::vector<float>& nhwc, const ir::Shape& s) {
  return onnx::detail::nhwc_to_nchw(nhwc, s);
}

std::string temp_path(const std::string& file) {
  static const std::string dir = testing::make_temp_dir("pcv_onnx_test");
  return dir + "/" + file;
}

}  // namespace pcv::onnx_test

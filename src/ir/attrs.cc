#include "ir/attrs.h"

#include <fmt/core.h>

#include <type_traits>

namespace pcv::ir {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::kNone: return "none";
    case Activation::kRelu: return "relu";
    case Activation::kRelu6: return "relu6";
  }
  return "?";
}

const char* padding_name(Padding p) {
  switch (p) {
    case Padding::kSame: return "same";
    case Padding::kValid: return "valid";
    case Padding::kExplicit: return "explicit";
  }
  return "?";
}

namespace {

template <class E>
bool enum_from_name(const std::string& s, E* out, int count, const char* (*name)(E)) {
  for (int i = 0; i < count; ++i) {
    if (s == name(static_cast<E>(i))) {
      *out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}

struct ToFields {
  std::vector<AttrField>* out;
  void operator()(const char* n, int& v) { out->push_back({n, int64_t{v}}); }
  void operator()(const char* n, bool& v) { out->push_back({n, int64_t{v ? 1 : 0}}); }
  void operator()(const char* n, float& v) { out->push_back({n, double{v}}); }
  void operator()(const char* n, std::vector<int64_t>& v) { out->push_back({n, v}); }
  void operator()(const char* n, Activation& v) { out->push_back({n, std::string(activation_name(v))}); }
  void operator()(const char* n, Padding& v) { out->push_back({n, std::string(padding_name(v))}); }
};

struct FromFields {
  const std::vector<AttrField>* in;
  std::string* error;
  int used = 0;
  const AttrValue* find(const char* n) {
    for (auto& f : *in) {
      if (f.name == n) {
        ++used;
        return &f.value;
      }
    }
    return nullptr;
  }
  void fail(const char* n) {
    if (error->empty()) *error = fmt::format("attribute '{}' has the wrong kind or value", n);
  }
  void operator()(const char* n, int& v) {
    if (auto* a = find(n)) {
      if (auto* i = std::get_if<int64_t>(a); i && *i >= INT32_MIN && *i <= INT32_MAX) v = static_cast<int>(*i);
      else fail(n);
    }
  }
  void operator()(const char* n, bool& v) {
    if (auto* a = find(n)) {
      if (auto* i = std::get_if<int64_t>(a)) v = *i != 0;
      else fail(n);
    }
  }
  void operator()(const char* n, float& v) {
    if (auto* a = find(n)) {
      if (auto* d = std::get_if<double>(a)) v = static_cast<float>(*d);
      else fail(n);
    }
  }
  void operator()(const char* n, std::vector<int64_t>& v) {
    if (auto* a = find(n)) {
      if (auto* l = std::get_if<std::vector<int64_t>>(a)) v = *l;
      else fail(n);
    }
  }
  void operator()(const char* n, Activation& v) {
    if (auto* a = find(n)) {
      auto* s = std::get_if<std::string>(a);
      if (!s || !enum_from_name(*s, &v, 3, activation_name)) fail(n);
    }
  }
  void operator()(const char* n, Padding& v) {
    if (auto* a = find(n)) {
      auto* s = std::get_if<std::string>(a);
      if (!s || !enum_from_name(*s, &v, 3, padding_name)) fail(n);
    }
  }
};

}  // namespace

std::vector<AttrField> attrs_to_fields(const Attrs& attrs) {
  std::vector<AttrField> out;
  Attrs copy = attrs;
  std::visit([&](auto& a) { a.visit(ToFields{&out}); }, copy);
  return out;
}

bool attrs_from_fields(const std::vector<AttrField>& fields, Attrs* attrs, std::string* error) {
  error->clear();
  int used = 0;
  std::visit(
      [&](auto& a) {
        FromFields f{&fields, error};
        a.visit(f);
        used = f.used;
      },
      *attrs);
  if (error->empty() && used != static_cast<int>(fields.size())) {
    *error = "unknown attribute";
    for (auto& f : fields) {
      bool known = false;
      for (auto& k : attrs_to_fields(*attrs)) known |= k.name == f.name;
      if (!known) {
        *error = fmt::format("unknown attribute '{}'", f.name);
        break;
      }
    }
  }
  return error->empty();
}

bool attrs_equal(const Attrs& a, const Attrs& b) {
  return a.index() == b.index() && attrs_to_fields(a) == attrs_to_fields(b);
}

std::string attrs_to_string(const Attrs& attrs) {
  std::string s;
  for (auto& f : attrs_to_fields(attrs)) {
    if (!s.empty()) s += ' ';
    s += f.name;
    s += '=';
    std::visit(
        [&](auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, int64_t>) s += std::to_string(v);
          else if constexpr (std::is_same_v<T, double>) s += fmt::format("{:g}", v);
          else if constexpr (std::is_same_v<T, std::string>) s += v;
          else {
            s += '[';
            for (size_t i = 0; i < v.size(); ++i) {
              if (i) s += ',';
              s += std::to_string(v[i]);
            }
            s += ']';
          }
        },
        f.value);
  }
  return s;
}

}  // namespace pcv::ir

// Short forms of layer names for tables: imported TFLite names often join several op names
// with ';' ("MobilenetV2/Conv/Relu6;MobilenetV2/Conv/BatchNorm;..."), and the part that tells
// layers apart is at the end of the first one.
#pragma once

#include <string>

namespace pcv::predict {

// The first ';'-separated part; when longer than `width`, "~" + its last width - 1 characters.
inline std::string short_layer_name(const std::string& name, size_t width) {
  std::string s = name.substr(0, name.find(';'));
  if (s.size() > width && width > 1) s = "~" + s.substr(s.size() - (width - 1));
  return s;
}

}  // namespace pcv::predict

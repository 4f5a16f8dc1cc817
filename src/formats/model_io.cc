#include "formats/model_io.h"

#include <fmt/core.h>

#include <filesystem>

#include "base/file.h"
#include "ir/pcv_format.h"

#if PCV_TFLITE_AVAILABLE
#include "formats/tflite/tflite.h"
#endif
#if PCV_COREML_AVAILABLE
#include "formats/coreml/coreml.h"
#endif
#if PCV_ONNX_AVAILABLE
#include "formats/onnx/onnx.h"
#endif

namespace pcv::formats {
namespace {

[[maybe_unused]] Status not_built(Format f) {
  return unsupported(fmt::format("this pocketcv was built without {} support", format_name(f)));
}

[[maybe_unused]] bool has_prefix(const std::vector<uint8_t>& b, size_t offset, const char* magic) {
  const size_t n = std::char_traits<char>::length(magic);
  return b.size() >= offset + n && std::equal(magic, magic + n, b.begin() + static_cast<long>(offset));
}

Expected<ir::Model> read_as(Format format, const std::string& path) {
  switch (format) {
    case Format::kPcv: return ir::load_pcv(path);
    case Format::kTflite: {
#if PCV_TFLITE_AVAILABLE
      PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path));
      return tflite::read_tflite(bytes, path);
#else
      return not_built(format);
#endif
    }
    case Format::kMlmodel:
#if PCV_COREML_AVAILABLE
      return coreml::load_mlmodel(path);
#else
      return not_built(format);
#endif
    case Format::kMlpackage:
#if PCV_COREML_AVAILABLE
      return coreml::read_mlpackage(path);
#else
      return not_built(format);
#endif
    case Format::kOnnx: {
#if PCV_ONNX_AVAILABLE
      return onnx::load_onnx(path);
#else
      return not_built(format);
#endif
    }
  }
  return internal_error("unreachable");
}

}  // namespace

const char* format_name(Format f) {
  switch (f) {
    case Format::kPcv: return "pcv";
    case Format::kTflite: return "tflite";
    case Format::kMlmodel: return "mlmodel";
    case Format::kMlpackage: return "mlpackage";
    case Format::kOnnx: return "onnx";
  }
  return "?";
}

Expected<Format> format_from_name(const std::string& name) {
  if (name == "pcv") return Format::kPcv;
  if (name == "tflite") return Format::kTflite;
  if (name == "coreml" || name == "mlmodel") return Format::kMlmodel;
  if (name == "mlpackage") return Format::kMlpackage;
  if (name == "onnx") return Format::kOnnx;
  return invalid_argument(fmt::format("unknown format '{}' (known: pcv, tflite, coreml, mlpackage, onnx)", name));
}

Expected<Format> format_from_path(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::string ext = file_extension(p);
  if (ext == ".pcv") return Format::kPcv;
  if (ext == ".tflite") return Format::kTflite;
  if (ext == ".mlmodel") return Format::kMlmodel;
  if (ext == ".mlpackage") return Format::kMlpackage;
  if (ext == ".onnx") return Format::kOnnx;
  return invalid_argument(fmt::format("{}: unknown model extension '{}' (known: .pcv, .tflite, .mlmodel, .mlpackage, .onnx)",
                                      path, ext));
}

Expected<ir::Model> load_model(const std::string& path, const LoadOptions& options) {
  if (!file_exists(path)) return io_error(path + ": no such file");
  const auto size = static_cast<uint64_t>(bytes_on_disk(path));
  std::error_code ec;
  if (size == 0 && std::filesystem::is_regular_file(path, ec)) {
    return invalid_model(path + ": empty file (0 bytes)");
  }
  if (options.max_bytes > 0 && size > options.max_bytes) {
    return out_of_memory(fmt::format("{}: the model is {} bytes on disk, above the memory limit of {} bytes", path,
                                     size, options.max_bytes));
  }
  auto format = format_from_path(path);
  if (!format) {
    // Sniff the content: flatbuffers identifiers sit at offset 4.
    if (is_directory(path)) return format.status();
    PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path));
    if (has_prefix(bytes, 4, "PCV1")) format = Format::kPcv;
    else if (has_prefix(bytes, 4, "TFL3")) format = Format::kTflite;
    else return invalid_model(path + ": not a model file pocketcv recognizes (extension and content)");
  }
  // Every error names the file, whichever reader produced it.
  auto model = read_as(*format, path);
  if (!model && model.status().message().find(path) == std::string::npos) {
    return model.status().with_context(path);
  }
  return model;
}

Status save_model(const ir::Model& model, const std::string& path, Format format, const SaveOptions& options) {
  switch (format) {
    case Format::kPcv: return ir::save_pcv(model, path);
    case Format::kTflite:
#if PCV_TFLITE_AVAILABLE
      return tflite::save_tflite(model, path);
#else
      return not_built(format);
#endif
    case Format::kMlmodel: {
#if PCV_COREML_AVAILABLE
      coreml::MlModelOptions o;
      if (options.fp16_weights) o.weights = coreml::WeightFormat::kFloat16;
      return coreml::save_mlmodel(model, path, o);
#else
      return not_built(format);
#endif
    }
    case Format::kMlpackage: {
#if PCV_COREML_AVAILABLE
      coreml::MlPackageOptions o;
      o.fp16 = !options.fp32_weights;
      return coreml::save_mlpackage(model, path, o);
#else
      return not_built(format);
#endif
    }
    case Format::kOnnx:
#if PCV_ONNX_AVAILABLE
      return onnx::save_onnx(model, path);
#else
      return not_built(format);
#endif
  }
  return internal_error("unreachable");
}

Status save_model(const ir::Model& model, const std::string& path, const SaveOptions& options) {
  PCV_ASSIGN_OR_RETURN(Format f, format_from_path(path));
  return save_model(model, path, f, options);
}

Expected<std::string> describe_file(const std::string& path) {
  PCV_ASSIGN_OR_RETURN(Format f, format_from_path(path));
#if PCV_TFLITE_AVAILABLE
  if (f == Format::kTflite) {
    PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path));
    return tflite::describe_tflite(bytes);
  }
#endif
#if PCV_COREML_AVAILABLE
  if (f == Format::kMlmodel || f == Format::kMlpackage) return coreml::describe_coreml(path);
#endif
  PCV_ASSIGN_OR_RETURN(auto model, load_model(path));
  (void)f;
  return ir::to_text(model);
}

}  // namespace pcv::formats

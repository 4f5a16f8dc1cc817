// describe_tflite: a readable dump of a .tflite file for `pocketcv inspect`.
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>

#include "base/aligned.h"
#include "formats/tflite/metadata.h"
#include "formats/tflite/op_map.h"
#include "formats/tflite/tflite.h"
#include "formats/tflite/tflite_schema_generated.h"
#include "formats/tflite/zip.h"

namespace pcv::tflite {
namespace {

std::string ints(const flatbuffers::Vector<int32_t>* v) {
  if (v == nullptr) return "()";
  std::string s = "(";
  for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) s += (i ? ", " : "") + std::to_string(v->Get(i));
  return s + ")";
}

std::string quant_text(const fb::QuantizationParameters* q) {
  if (q == nullptr || q->scale() == nullptr || q->scale()->size() == 0) return "";
  const auto* s = q->scale();
  const auto* z = q->zero_point();
  auto zp = [z](flatbuffers::uoffset_t i) -> long long {
    if (z == nullptr || z->size() == 0) return 0;
    return static_cast<long long>(z->Get(std::min(i, z->size() - 1)));
  };
  if (s->size() == 1) return fmt::format(" scale={:g} zp={}", s->Get(0), zp(0));
  float lo = s->Get(0), hi = s->Get(0);
  for (float x : *s) lo = std::min(lo, x), hi = std::max(hi, x);
  return fmt::format(" per-channel axis={} ({} scales {:g}..{:g}, zp[0]={})", q->quantized_dimension(), s->size(), lo,
                     hi, zp(0));
}

}  // namespace

std::string describe_tflite(std::span<const uint8_t> bytes_in) {
  std::vector<uint8_t> aligned_copy;
  const std::span<const uint8_t> bytes = aligned_for_flatbuffers(bytes_in, &aligned_copy);
  if (bytes.size() < 8 || !fb::ModelBufferHasIdentifier(bytes.data())) return "not a TFLite model (no TFL3 identifier)\n";
  flatbuffers::Verifier verifier(bytes.data(), bytes.size(), 128, 10'000'000);
  if (!fb::VerifyModelBuffer(verifier)) return "corrupt TFLite model (flatbuffer verification failed)\n";
  const fb::Model* m = fb::GetModel(bytes.data());
  std::string out;
  out += fmt::format("TFLite model: schema version {}, {} bytes", m->version(), bytes.size());
  if (m->description()) out += fmt::format(", description \"{}\"", m->description()->str());
  out += "\n";
  const auto* bufs = m->buffers();
  const size_t nbuf = bufs ? bufs->size() : 0;
  out += fmt::format("buffers: {}\n", nbuf);
  out += "operator codes:\n";
  if (const auto* codes = m->operator_codes()) {
    for (flatbuffers::uoffset_t i = 0; i < codes->size(); ++i) {
      const auto* c = codes->Get(i);
      const int32_t code = std::max<int32_t>(c->deprecated_builtin_code(), static_cast<int32_t>(c->builtin_code()));
      out += fmt::format("  [{}] {} v{}{}\n", i, builtin_name(code), c->version(),
                         c->custom_code() ? " custom=" + c->custom_code()->str() : "");
    }
  }
  if (const auto* sgs = m->subgraphs()) {
    for (flatbuffers::uoffset_t si = 0; si < sgs->size(); ++si) {
      const auto* sg = sgs->Get(si);
      out += fmt::format("subgraph {}{}: inputs {} outputs {}\n", si, sg->name() ? " '" + sg->name()->str() + "'" : "",
                         ints(sg->inputs()), ints(sg->outputs()));
      out += "  tensors:\n";
      if (const auto* ts = sg->tensors()) {
        for (flatbuffers::uoffset_t i = 0; i < ts->size(); ++i) {
          const auto* t = ts->Get(i);
          size_t data_bytes = 0;
          if (t->buffer() < nbuf && bufs->Get(t->buffer())->data()) data_bytes = bufs->Get(t->buffer())->data()->size();
          out += fmt::format("    [{}] {} {} {}{}{}\n", i, t->name() ? t->name()->str() : "?",
                             tensor_type_name(static_cast<int>(t->type())), ints(t->shape()), quant_text(t->quantization()),
                             data_bytes ? fmt::format(" const buffer={} ({} bytes)", t->buffer(), data_bytes) : "");
        }
      }
      out += "  operators:\n";
      if (const auto* ops = sg->operators()) {
        const auto* codes = m->operator_codes();
        for (flatbuffers::uoffset_t i = 0; i < ops->size(); ++i) {
          const auto* op = ops->Get(i);
          std::string name = "?";
          if (codes && op->opcode_index() < codes->size()) {
            const auto* c = codes->Get(op->opcode_index());
            name = builtin_name(std::max<int32_t>(c->deprecated_builtin_code(), static_cast<int32_t>(c->builtin_code())));
          }
          out += fmt::format("    [{}] {} {} -> {}\n", i, name, ints(op->inputs()), ints(op->outputs()));
        }
      }
    }
  }
  if (const auto* sigs = m->signature_defs()) {
    for (const auto* s : *sigs) {
      out += fmt::format("signature '{}' (subgraph {}):", s->signature_key() ? s->signature_key()->str() : "",
                         s->subgraph_index());
      if (s->inputs()) {
        for (const auto* t : *s->inputs()) out += fmt::format(" in {}={}", t->name() ? t->name()->str() : "?", t->tensor_index());
      }
      if (s->outputs()) {
        for (const auto* t : *s->outputs()) out += fmt::format(" out {}={}", t->name() ? t->name()->str() : "?", t->tensor_index());
      }
      out += "\n";
    }
  }
  if (const auto* md = m->metadata()) {
    for (const auto* e : *md) {
      const std::string name = e->name() ? e->name()->str() : "";
      out += fmt::format("metadata '{}' (buffer {})", name, e->buffer());
      if (name == kMetadataBufferName && e->buffer() < nbuf && bufs->Get(e->buffer())->data()) {
        const auto* d = bufs->Get(e->buffer())->data();
        auto p = parse_metadata({d->data(), d->size()});
        if (!p) {
          out += ": " + p.status().message() + "\n";
          continue;
        }
        out += fmt::format(": name \"{}\", version \"{}\", author \"{}\", license \"{}\", min_parser_version {}\n",
                           p->info.name, p->info.version, p->info.author, p->info.license, p->min_parser_version);
        if (!p->info.description.empty()) out += fmt::format("  description: {}\n", p->info.description);
        if (p->has_color) out += fmt::format("  input color: {}\n", ir::color_order_name(p->color));
        if (!p->mean.empty() || !p->std.empty()) {
          out += fmt::format("  normalization: mean {} std {}\n", fmt::join(p->mean, ","), fmt::join(p->std, ","));
        }
        if (!p->labels_file.empty()) out += fmt::format("  labels: {}\n", p->labels_file);
      } else {
        out += "\n";
      }
    }
  }
  auto files = read_zip(bytes);
  if (!files) {
    out += "associated files: " + files.status().message() + "\n";
  } else if (!files->empty()) {
    out += "associated files (zip):";
    for (const auto& [n, c] : *files) out += fmt::format(" {} ({} bytes)", n, c.size());
    out += "\n";
  }
  return out;
}

}  // namespace pcv::tflite

#include "formats/tflite/metadata.h"

#include <fmt/core.h>

#include "base/aligned.h"
#include "formats/tflite/metadata_schema_generated.h"

namespace pcv::tflite {

namespace m = pcv::tflite::meta;

std::vector<uint8_t> build_metadata(const ir::Model& model, int num_inputs, int num_outputs,
                                    const std::string& labels_file) {
  flatbuffers::FlatBufferBuilder fbb;
  const ir::InputSpec& spec = model.input_spec;
  std::vector<flatbuffers::Offset<m::TensorMetadata>> inputs, outputs;
  for (int i = 0; i < num_inputs; ++i) {
    if (i == 0 && spec.is_image()) {
      const int c = spec.color == ir::ColorOrder::kGray ? 1 : spec.channels;
      std::vector<float> mean(spec.mean.begin(), spec.mean.begin() + std::min(c, 3));
      std::vector<float> stdv(spec.std.begin(), spec.std.begin() + std::min(c, 3));
      auto norm = m::CreateNormalizationOptionsDirect(fbb, &mean, &stdv);
      std::vector<flatbuffers::Offset<m::ProcessUnit>> units{
          m::CreateProcessUnit(fbb, m::ProcessUnitOptions::NormalizationOptions, norm.Union())};
      auto size = m::CreateImageSize(fbb, static_cast<uint32_t>(spec.width), static_cast<uint32_t>(spec.height));
      auto props = m::CreateImageProperties(
          fbb, spec.color == ir::ColorOrder::kGray ? m::ColorSpaceType::GRAYSCALE : m::ColorSpaceType::RGB, size);
      auto content = m::CreateContent(fbb, m::ContentProperties::ImageProperties, props.Union());
      inputs.push_back(m::CreateTensorMetadataDirect(
          fbb, "image",
          fmt::format("Input image to be classified: {}x{} {}, value = (pixel - mean) / std.", spec.width,
                      spec.height, spec.color == ir::ColorOrder::kGray ? "grayscale" : "RGB")
              .c_str(),
          nullptr, content, &units));
    } else {
      auto content = m::CreateContent(fbb, m::ContentProperties::FeatureProperties,
                                      m::CreateFeatureProperties(fbb).Union());
      inputs.push_back(m::CreateTensorMetadataDirect(fbb, fmt::format("input{}", i).c_str(), nullptr,
                                                     nullptr, content));
    }
  }
  for (int i = 0; i < num_outputs; ++i) {
    auto content = m::CreateContent(fbb, m::ContentProperties::FeatureProperties,
                                    m::CreateFeatureProperties(fbb).Union());
    std::vector<flatbuffers::Offset<m::AssociatedFile>> files;
    if (i == 0 && !labels_file.empty()) {
      files.push_back(m::CreateAssociatedFileDirect(fbb, labels_file.c_str(),
                                                    "Labels for the categories the model recognizes.",
                                                    m::AssociatedFileType::TENSOR_AXIS_LABELS));
    }
    outputs.push_back(m::CreateTensorMetadataDirect(
        fbb, i == 0 ? "probability" : fmt::format("output{}", i).c_str(),
        i == 0 ? "Probabilities of the labels respectively." : nullptr, nullptr, content, nullptr,
        0, files.empty() ? nullptr : &files));
  }
  std::vector<flatbuffers::Offset<m::SubGraphMetadata>> subgraphs{
      m::CreateSubGraphMetadataDirect(fbb, nullptr, nullptr, &inputs, &outputs)};
  const ir::ModelMetadata& info = model.metadata;
  auto str = [&fbb](const std::string& s) { return s.empty() ? 0 : fbb.CreateString(s).o; };
  const auto name = str(info.name), description = str(info.description), version = str(info.version),
             author = str(info.author), license = str(info.license);
  auto sg = fbb.CreateVector(subgraphs);
  auto parser = fbb.CreateString(kMinParserVersion);
  m::ModelMetadataBuilder b(fbb);
  if (name) b.add_name(flatbuffers::Offset<flatbuffers::String>(name));
  if (description) b.add_description(flatbuffers::Offset<flatbuffers::String>(description));
  if (version) b.add_version(flatbuffers::Offset<flatbuffers::String>(version));
  b.add_subgraph_metadata(sg);
  if (author) b.add_author(flatbuffers::Offset<flatbuffers::String>(author));
  if (license) b.add_license(flatbuffers::Offset<flatbuffers::String>(license));
  b.add_min_parser_version(parser);
  fbb.Finish(b.Finish(), m::ModelMetadataIdentifier());
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

Expected<ParsedMetadata> parse_metadata(std::span<const uint8_t> bytes_in) {
  std::vector<uint8_t> aligned_copy;
  const std::span<const uint8_t> bytes = aligned_for_flatbuffers(bytes_in, &aligned_copy);
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (!m::VerifyModelMetadataBuffer(v)) {
    return invalid_model("TFLITE_METADATA: not a valid metadata flatbuffer (schema M001)");
  }
  const m::ModelMetadata* md = m::GetModelMetadata(bytes.data());
  ParsedMetadata out;
  auto s = [](const flatbuffers::String* x) { return x ? x->str() : std::string(); };
  out.info.name = s(md->name());
  out.info.description = s(md->description());
  out.info.version = s(md->version());
  out.info.author = s(md->author());
  out.info.license = s(md->license());
  out.min_parser_version = s(md->min_parser_version());
  if (md->subgraph_metadata() == nullptr || md->subgraph_metadata()->size() == 0) return out;
  const m::SubGraphMetadata* sg = md->subgraph_metadata()->Get(0);
  if (sg->input_tensor_metadata() && sg->input_tensor_metadata()->size() > 0) {
    const m::TensorMetadata* in = sg->input_tensor_metadata()->Get(0);
    if (in->content()) {
      if (const m::ImageProperties* ip = in->content()->content_properties_as_ImageProperties()) {
        if (ip->color_space() == m::ColorSpaceType::GRAYSCALE) {
          out.has_color = true;
          out.color = ir::ColorOrder::kGray;
        } else if (ip->color_space() == m::ColorSpaceType::RGB) {
          out.has_color = true;
          out.color = ir::ColorOrder::kRGB;
        }
      }
    }
    if (in->process_units()) {
      for (const m::ProcessUnit* pu : *in->process_units()) {
        if (const m::NormalizationOptions* n = pu->options_as_NormalizationOptions()) {
          if (n->mean()) out.mean.assign(n->mean()->begin(), n->mean()->end());
          if (n->std()) out.std.assign(n->std()->begin(), n->std()->end());
        }
      }
    }
  }
  if (sg->output_tensor_metadata() && sg->output_tensor_metadata()->size() > 0) {
    const m::TensorMetadata* o = sg->output_tensor_metadata()->Get(0);
    if (o->associated_files()) {
      for (const m::AssociatedFile* f : *o->associated_files()) {
        if (f->type() == m::AssociatedFileType::TENSOR_AXIS_LABELS && f->name() && out.labels_file.empty()) {
          out.labels_file = f->name()->str();
        }
      }
    }
  }
  return out;
}

}  // namespace pcv::tflite

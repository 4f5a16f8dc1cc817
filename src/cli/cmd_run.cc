// pocketcv run: raw little-endian tensors in, raw tensors out.
#include <filesystem>

#include "base/file.h"
#include "cli/command.h"
#include "formats/model_io.h"
#include "runtime/session.h"

namespace pcv::cli {
namespace {

Runner setup(CLI::App& sub) {
  auto path = std::make_shared<std::string>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto out_dir = std::make_shared<std::string>();
  auto threads = std::make_shared<int>(1);
  auto reference = std::make_shared<bool>(false);
  auto max_memory = std::make_shared<uint64_t>(0);
  sub.add_option("model", *path, "Model file")->required();
  sub.add_option("--input", *inputs, "Raw little-endian input tensor, one per model input, in order")->required();
  sub.add_option("--output-dir", *out_dir, "Directory for output_<i>.bin (raw little-endian)")->required();
  sub.add_option("--threads", *threads, "Threads")->capture_default_str()->check(CLI::Range(1, 64));
  sub.add_flag("--reference", *reference, "Use the reference kernels only");
  add_max_memory_option(sub, *max_memory);
  return [=]() -> Status {
    PCV_ASSIGN_OR_RETURN(auto model, formats::load_model(*path, {.max_bytes = *max_memory}));
    runtime::SessionOptions so;
    so.threads = *threads;
    so.fast_kernels = !*reference;
    if (*max_memory > 0) so.max_memory_bytes = static_cast<int64_t>(*max_memory);
    auto created = runtime::Session::create(model, so);
    if (!created) return created.status().with_context(*path);
    auto session = std::move(created).value();
    if (static_cast<int>(inputs->size()) != session->num_inputs()) {
      return invalid_argument(fmt::format("{} has {} inputs, {} --input given", *path, session->num_inputs(), inputs->size()));
    }
    for (int i = 0; i < session->num_inputs(); ++i) {
      ir::Tensor& t = session->input(i);
      const std::string& f = (*inputs)[static_cast<size_t>(i)];
      PCV_ASSIGN_OR_RETURN(auto bytes, read_file(f));
      if (bytes.size() != t.size_bytes()) {
        return invalid_argument(fmt::format("{}: {} bytes, but input {} '{}' is {}{} = {} bytes", f, bytes.size(), i,
                                            session->input_info(i).name, ir::dtype_name(t.dtype()),
                                            ir::shape_to_string(t.shape()), t.size_bytes()));
      }
      std::memcpy(t.raw(), bytes.data(), bytes.size());
    }
    PCV_RETURN_IF_ERROR(session->run());
    if (!is_directory(*out_dir)) {
      std::error_code ec;
      std::filesystem::create_directories(*out_dir, ec);
      if (ec) return io_error(fmt::format("{}: cannot create directory: {}", *out_dir, ec.message()));
    }
    for (int i = 0; i < session->num_outputs(); ++i) {
      const ir::Tensor& t = session->output(i);
      const std::string f = fmt::format("{}/output_{}.bin", *out_dir, i);
      PCV_RETURN_IF_ERROR(write_file_atomic(f, t.bytes()));
      out("output {} '{}': {}{} -> {}\n", i, session->output_info(i).name, ir::dtype_name(t.dtype()),
          ir::shape_to_string(t.shape()), f);
    }
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(run, "Run a model on raw tensors (little-endian files) and write raw outputs", 70, setup);
}  // namespace pcv::cli

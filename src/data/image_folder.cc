#include "data/image_folder.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "base/file.h"
#include "base/log.h"

namespace pcv::data {
namespace fs = std::filesystem;

namespace {
bool is_image_name(const std::string& name) {
  const std::string ext = file_extension(name);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}
}  // namespace

Expected<ImageFolderDataset> ImageFolderDataset::open(const std::string& dir,
                                                      const ImageFolderOptions& options) {
  std::error_code ec;
  PCV_ENSURE(fs::exists(dir, ec), StatusCode::kIoError, "{}: no such directory", dir);
  PCV_ENSURE(fs::is_directory(dir, ec), StatusCode::kIoError, "{}: not a directory", dir);
  std::vector<std::string> classes;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (it->is_directory(ec)) classes.push_back(name);
  }
  PCV_ENSURE(!ec, StatusCode::kIoError, "{}: cannot list: {}", dir, ec.message());
  PCV_ENSURE(!classes.empty(), StatusCode::kInvalidArgument,
             "{}: no class folders (expected {}/<class>/*.jpg)", dir, dir);
  std::sort(classes.begin(), classes.end());

  ImageFolderDataset d;
  vision::DecodeOptions probe;
  probe.min_height = probe.min_width = 1;  // JPEG at 1/8 scale: a cheap full check
  for (const std::string& cls : classes) {
    const fs::path cdir = fs::path(dir) / cls;
    std::vector<std::string> files;
    for (fs::directory_iterator it(cdir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name[0] == '.' || !is_image_name(name)) continue;
      if (!it->is_regular_file(ec)) continue;
      files.push_back(name);
    }
    if (ec) {
      log_warning("{}: cannot list, class dropped: {}", cdir.string(), ec.message());
      ec.clear();
      continue;
    }
    std::sort(files.begin(), files.end());
    std::vector<std::string> good;
    for (const std::string& f : files) {
      const std::string p = (cdir / f).string();
      if (options.verify) {
        auto img = vision::read_image(p, probe);
        if (!img.has_value()) {
          log_warning("skipping {}", img.status().message());
          ++d.skipped_;
          d.skipped_paths_.push_back(p);
          continue;
        }
      }
      good.push_back(p);
    }
    if (good.empty()) {
      log_warning("{}: class folder '{}' has no usable images; dropped", dir, cls);
      continue;
    }
    const int label = static_cast<int>(d.class_names_.size());
    d.class_names_.push_back(cls);
    for (std::string& p : good) {
      d.paths_.push_back(std::move(p));
      d.labels_.push_back(label);
    }
  }
  PCV_ENSURE(d.class_names_.size() >= 2, StatusCode::kInvalidArgument,
             "{}: need at least 2 classes with images, found {}", dir, d.class_names_.size());
  return d;
}

Expected<vision::Image> ImageFolderDataset::load(size_t i,
                                                 const vision::DecodeOptions& hint) const {
  PCV_ENSURE(i < size(), StatusCode::kInvalidArgument, "image folder: sample {} out of range",
             i);
  return vision::read_image(paths_[i], hint);
}

}  // namespace pcv::data

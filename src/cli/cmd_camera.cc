// pocketcv camera: the app's frame pipeline on Linux, through the C API exactly as a phone app
// uses it (pcv_session_set_input_frame -> run -> top_k), printing live top-1 and FPS.
//
// Sources:
//   --frames DIR   JPEG/PNG files (sorted by name), each converted to an NV21 frame in memory
//                  (BT.601 full range, as Android delivers) so the camera path is exercised
//   --video FILE   raw NV21 frames back to back (--video-size WxH; "-" reads stdin), e.g.
//                  `ffmpeg -i clip.mp4 -f rawvideo -pix_fmt nv21 clip.nv21`
//   --device DEV   a V4L2 camera (/dev/video0), YUYV or NV12 capture via mmap streaming
// NOTE: the V4L2 path is written to the V4L2 spec but untested here (no camera on the build
// machines); --frames and --video are tested.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "pocketcv/pocketcv.h"
#include "vision/decode.h"

#if defined(__linux__)
#include <fcntl.h>
#include <linux/videodev2.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#define PCV_HAVE_V4L2 1
#endif

namespace pcv::cli {
namespace {

using Clock = std::chrono::steady_clock;

Status from_c(pcv_status s) {
  switch (s) {
    case PCV_OK: return Status::ok();
    case PCV_ERROR_INVALID_ARGUMENT: return invalid_argument(pcv_last_error_message());
    case PCV_ERROR_UNSUPPORTED: return unsupported(pcv_last_error_message());
    case PCV_ERROR_INVALID_MODEL: return invalid_model(pcv_last_error_message());
    case PCV_ERROR_IO: return io_error(pcv_last_error_message());
    case PCV_ERROR_OUT_OF_MEMORY: return out_of_memory(pcv_last_error_message());
    default: return internal_error(pcv_last_error_message());
  }
}

// An owned NV21 frame (or a view of a driver buffer for the V4L2 NV12 path).
struct FrameBuffer {
  std::vector<uint8_t> bytes;
  pcv_frame frame{};
  std::string name;  // file name or frame number, for the output
};

int chroma_side(int n) { return (n + 1) / 2; }
size_t nv21_bytes(int w, int h) {
  return static_cast<size_t>(w) * h + static_cast<size_t>(chroma_side(w)) * chroma_side(h) * 2;
}

void point_nv21(FrameBuffer& f, int w, int h) {
  f.frame = {};
  f.frame.format = PCV_FRAME_NV21;
  f.frame.width = w;
  f.frame.height = h;
  f.frame.planes[0] = {f.bytes.data(), w, 1};
  f.frame.planes[1] = {f.bytes.data() + static_cast<size_t>(w) * h, chroma_side(w) * 2, 2};
}

uint8_t clamp_u8(float v) { return static_cast<uint8_t>(std::clamp(v + 0.5f, 0.f, 255.f)); }

// Packed RGB -> NV21, BT.601 full range (the inverse of what the frame path applies), chroma
// the mean of each 2x2 block.
void rgb_to_nv21(const uint8_t* rgb, int w, int h, FrameBuffer& out) {
  out.bytes.resize(nv21_bytes(w, h));
  uint8_t* y = out.bytes.data();
  uint8_t* vu = y + static_cast<size_t>(w) * h;
  for (int r = 0; r < h; ++r) {
    for (int c = 0; c < w; ++c) {
      const uint8_t* p = rgb + (static_cast<size_t>(r) * w + c) * 3;
      y[static_cast<size_t>(r) * w + c] = clamp_u8(0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]);
    }
  }
  const int cw = chroma_side(w), ch = chroma_side(h);
  for (int j = 0; j < ch; ++j) {
    for (int i = 0; i < cw; ++i) {
      float u = 0, v = 0;
      int n = 0;
      for (int dy = 0; dy < 2; ++dy) {
        for (int dx = 0; dx < 2; ++dx) {
          const int r = 2 * j + dy, c = 2 * i + dx;
          if (r >= h || c >= w) continue;
          const uint8_t* p = rgb + (static_cast<size_t>(r) * w + c) * 3;
          u += -0.168736f * p[0] - 0.331264f * p[1] + 0.5f * p[2] + 128.f;
          v += 0.5f * p[0] - 0.418688f * p[1] - 0.081312f * p[2] + 128.f;
          ++n;
        }
      }
      vu[(static_cast<size_t>(j) * cw + i) * 2] = clamp_u8(v / static_cast<float>(n));
      vu[(static_cast<size_t>(j) * cw + i) * 2 + 1] = clamp_u8(u / static_cast<float>(n));
    }
  }
  point_nv21(out, w, h);
}

// Where frames come from. next() returns false at the end of the source.
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  virtual Expected<bool> next(FrameBuffer& out) = 0;
  virtual std::string describe() const = 0;
};

class DirectorySource : public FrameSource {
 public:
  static Expected<std::unique_ptr<FrameSource>> open(const std::string& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return io_error(dir + ": not a directory");
    auto s = std::make_unique<DirectorySource>();
    s->dir_ = dir;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
      if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) s->files_.push_back(e.path().string());
    }
    if (ec) return io_error(fmt::format("{}: {}", dir, ec.message()));
    if (s->files_.empty()) return invalid_argument(dir + ": no .jpg, .jpeg or .png files");
    std::sort(s->files_.begin(), s->files_.end());
    return std::unique_ptr<FrameSource>(std::move(s));
  }
  Expected<bool> next(FrameBuffer& out) override {
    if (i_ >= files_.size()) return false;
    const std::string& path = files_[i_++];
    PCV_ASSIGN_OR_RETURN(auto img, vision::read_image(path));
    rgb_to_nv21(img.data(), img.width(), img.height(), out);
    out.name = std::filesystem::path(path).filename().string();
    return true;
  }
  std::string describe() const override {
    return fmt::format("{} ({} images as NV21 frames)", dir_, files_.size());
  }

 private:
  std::string dir_;
  std::vector<std::string> files_;
  size_t i_ = 0;
};

class RawNv21Source : public FrameSource {
 public:
  static Expected<std::unique_ptr<FrameSource>> open(const std::string& path, int w, int h) {
    if (w < 2 || h < 2) return invalid_argument("--video needs --video-size WxH (e.g. 1280x720)");
    auto s = std::make_unique<RawNv21Source>();
    s->path_ = path;
    s->w_ = w;
    s->h_ = h;
    s->file_ = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
    if (s->file_ == nullptr) return io_error(fmt::format("{}: {}", path, std::strerror(errno)));
    return std::unique_ptr<FrameSource>(std::move(s));
  }
  ~RawNv21Source() override {
    if (file_ != nullptr && file_ != stdin) std::fclose(file_);
  }
  Expected<bool> next(FrameBuffer& out) override {
    const size_t n = nv21_bytes(w_, h_);
    out.bytes.resize(n);
    const size_t got = std::fread(out.bytes.data(), 1, n, file_);
    if (got == 0 && std::feof(file_)) return false;
    if (got != n) {
      return io_error(fmt::format("{}: frame {} is truncated ({} of {} bytes for NV21 {}x{})", path_, count_, got, n,
                                  w_, h_));
    }
    point_nv21(out, w_, h_);
    out.name = fmt::format("#{}", count_++);
    return true;
  }
  std::string describe() const override { return fmt::format("{} (raw NV21 {}x{})", path_, w_, h_); }

 private:
  std::string path_;
  int w_ = 0, h_ = 0, count_ = 0;
  std::FILE* file_ = nullptr;
};

#if PCV_HAVE_V4L2
// V4L2 capture (mmap streaming). Asks for NV12 (passed through as is) or YUYV (4:2:2, converted
// to NV21 by taking the chroma of even rows). Untested here: no camera on the build machines.
class V4l2Source : public FrameSource {
 public:
  static Expected<std::unique_ptr<FrameSource>> open(const std::string& dev, int w, int h) {
    auto s = std::make_unique<V4l2Source>();
    s->dev_ = dev;
    s->fd_ = ::open(dev.c_str(), O_RDWR);
    if (s->fd_ < 0) return io_error(fmt::format("{}: {}", dev, std::strerror(errno)));
    v4l2_capability cap{};
    if (xioctl(s->fd_, VIDIOC_QUERYCAP, &cap) < 0) return io_error(dev + ": not a V4L2 device");
    if (!(cap.capabilities & V4L2_CAP_VIDEO_CAPTURE) || !(cap.capabilities & V4L2_CAP_STREAMING)) {
      return unsupported(dev + ": no video capture with streaming I/O");
    }
    v4l2_format fmt{};
    fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    fmt.fmt.pix.width = static_cast<uint32_t>(w > 0 ? w : 640);
    fmt.fmt.pix.height = static_cast<uint32_t>(h > 0 ? h : 480);
    fmt.fmt.pix.field = V4L2_FIELD_NONE;
    bool ok = false;
    for (uint32_t pf : {V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_YUYV}) {
      fmt.fmt.pix.pixelformat = pf;
      if (xioctl(s->fd_, VIDIOC_S_FMT, &fmt) == 0 && fmt.fmt.pix.pixelformat == pf) {
        ok = true;
        break;
      }
    }
    if (!ok) return unsupported(dev + ": the camera offers neither NV12 nor YUYV");
    s->pixfmt_ = fmt.fmt.pix.pixelformat;
    s->w_ = static_cast<int>(fmt.fmt.pix.width);
    s->h_ = static_cast<int>(fmt.fmt.pix.height);
    s->stride_ = static_cast<int>(fmt.fmt.pix.bytesperline);
    v4l2_requestbuffers req{};
    req.count = 4;
    req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    req.memory = V4L2_MEMORY_MMAP;
    if (xioctl(s->fd_, VIDIOC_REQBUFS, &req) < 0 || req.count < 2) return io_error(dev + ": VIDIOC_REQBUFS failed");
    for (uint32_t i = 0; i < req.count; ++i) {
      v4l2_buffer b{};
      b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
      b.memory = V4L2_MEMORY_MMAP;
      b.index = i;
      if (xioctl(s->fd_, VIDIOC_QUERYBUF, &b) < 0) return io_error(dev + ": VIDIOC_QUERYBUF failed");
      void* p = mmap(nullptr, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd_, b.m.offset);
      if (p == MAP_FAILED) return io_error(dev + ": mmap failed");
      s->buffers_.push_back({static_cast<uint8_t*>(p), b.length});
      if (xioctl(s->fd_, VIDIOC_QBUF, &b) < 0) return io_error(dev + ": VIDIOC_QBUF failed");
    }
    v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(s->fd_, VIDIOC_STREAMON, &type) < 0) return io_error(dev + ": VIDIOC_STREAMON failed");
    s->streaming_ = true;
    return std::unique_ptr<FrameSource>(std::move(s));
  }
  ~V4l2Source() override {
    if (streaming_) {
      v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
      xioctl(fd_, VIDIOC_STREAMOFF, &type);
    }
    for (auto& b : buffers_) munmap(b.data, b.length);
    if (fd_ >= 0) ::close(fd_);
  }
  Expected<bool> next(FrameBuffer& out) override {
    v4l2_buffer b{};
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_MMAP;
    if (xioctl(fd_, VIDIOC_DQBUF, &b) < 0) return io_error(dev_ + ": VIDIOC_DQBUF failed");
    if (b.index >= buffers_.size()) return io_error(dev_ + ": driver returned a bad buffer index");
    const uint8_t* src = buffers_[b.index].data;
    const size_t used = std::min<size_t>(b.bytesused, buffers_[b.index].length);
    Status s = convert(src, used, out);
    if (xioctl(fd_, VIDIOC_QBUF, &b) < 0) return io_error(dev_ + ": VIDIOC_QBUF failed");
    PCV_RETURN_IF_ERROR(s);
    out.name = fmt::format("#{}", count_++);
    return true;
  }
  std::string describe() const override {
    return fmt::format("{} ({}x{} {})", dev_, w_, h_, pixfmt_ == V4L2_PIX_FMT_NV12 ? "NV12" : "YUYV");
  }

 private:
  static int xioctl(int fd, unsigned long req, void* arg) {
    int r;
    do r = ioctl(fd, req, arg);
    while (r < 0 && errno == EINTR);
    return r;
  }
  // Copies the driver buffer out (it is re-queued right after), as NV12 or NV21.
  Status convert(const uint8_t* src, size_t used, FrameBuffer& out) {
    const int cw = chroma_side(w_), ch = chroma_side(h_);
    if (pixfmt_ == V4L2_PIX_FMT_NV12) {
      const size_t need = static_cast<size_t>(stride_) * h_ + static_cast<size_t>(stride_) * ch;
      if (used < need) return io_error(fmt::format("{}: short NV12 frame ({} < {} bytes)", dev_, used, need));
      out.bytes.assign(src, src + need);
      out.frame = {};
      out.frame.format = PCV_FRAME_NV12;
      out.frame.width = w_;
      out.frame.height = h_;
      out.frame.planes[0] = {out.bytes.data(), stride_, 1};
      out.frame.planes[1] = {out.bytes.data() + static_cast<size_t>(stride_) * h_, stride_, 2};
      return Status::ok();
    }
    // YUYV: Y0 U Y1 V per 2 pixels.
    const size_t need = static_cast<size_t>(stride_) * h_;
    if (used < need) return io_error(fmt::format("{}: short YUYV frame ({} < {} bytes)", dev_, used, need));
    out.bytes.resize(nv21_bytes(w_, h_));
    uint8_t* y = out.bytes.data();
    uint8_t* vu = y + static_cast<size_t>(w_) * h_;
    for (int r = 0; r < h_; ++r) {
      const uint8_t* row = src + static_cast<size_t>(r) * stride_;
      for (int c = 0; c < w_; ++c) y[static_cast<size_t>(r) * w_ + c] = row[2 * c];
      if (r % 2 == 0) {
        for (int i = 0; i < cw; ++i) {
          const uint8_t* pair = row + 4 * i;  // Y0 U Y1 V
          vu[(static_cast<size_t>(r / 2) * cw + i) * 2] = pair[3];
          vu[(static_cast<size_t>(r / 2) * cw + i) * 2 + 1] = pair[1];
        }
      }
    }
    (void)ch;
    point_nv21(out, w_, h_);
    return Status::ok();
  }

  struct Mapped {
    uint8_t* data;
    size_t length;
  };
  std::string dev_;
  int fd_ = -1;
  uint32_t pixfmt_ = 0;
  int w_ = 0, h_ = 0, stride_ = 0, count_ = 0;
  bool streaming_ = false;
  std::vector<Mapped> buffers_;
};
#endif

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Options {
  std::string model, device, video, frames, video_size, crop = "center";
  int rotation = 0, threads = 1, top_k = 1, max_frames = 0;
  bool mirror = false;
};

Expected<std::pair<int, int>> parse_size(const std::string& s) {
  int w = 0, h = 0;
  char x = 0;
  if (s.empty()) return std::pair<int, int>{0, 0};
  if (std::sscanf(s.c_str(), "%d%c%d", &w, &x, &h) != 3 || (x != 'x' && x != 'X') || w < 2 || h < 2 || w > 16384 ||
      h > 16384) {
    return invalid_argument(fmt::format("--video-size '{}': expected WxH, e.g. 1280x720", s));
  }
  return std::pair<int, int>{w, h};
}

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<Options>();
  sub.add_option("--model,-m", o->model, "Model file (.pcv, .tflite, .mlmodel, .mlpackage, .onnx)")->required();
  auto* dev = sub.add_option("--device", o->device, "V4L2 camera, e.g. /dev/video0 (NV12 or YUYV capture)");
  auto* vid = sub.add_option("--video", o->video, "Raw NV21 frames back to back ('-' = stdin); needs --video-size");
  auto* fr = sub.add_option("--frames", o->frames, "Directory of JPEG/PNG images, fed as NV21 frames");
  dev->excludes(vid)->excludes(fr);
  vid->excludes(fr);
  sub.add_option("--video-size", o->video_size, "Frame size WxH for --video (and the size asked of --device)");
  sub.add_option("--rotation", o->rotation, "Clockwise rotation that makes frames upright")
      ->check(CLI::IsMember({0, 90, 180, 270}))
      ->capture_default_str();
  sub.add_flag("--mirror", o->mirror, "Mirror left-right after rotating (front camera)");
  sub.add_option("--crop", o->crop, "center | stretch | letterbox")
      ->check(CLI::IsMember({"center", "stretch", "letterbox"}))
      ->capture_default_str();
  sub.add_option("--threads", o->threads, "Inference threads")->check(CLI::Range(1, 64))->capture_default_str();
  sub.add_option("--top-k", o->top_k, "Classes to print per frame")->check(CLI::Range(1, 100))->capture_default_str();
  sub.add_option("--max-frames", o->max_frames, "Stop after N frames (0 = until the source ends)")
      ->check(CLI::NonNegativeNumber);
  return [o]() -> Status {
    if (o->device.empty() && o->video.empty() && o->frames.empty()) {
      return invalid_argument("give a source: --frames DIR, --video FILE --video-size WxH, or --device /dev/videoN");
    }
    PCV_ASSIGN_OR_RETURN(auto size, parse_size(o->video_size));
    std::unique_ptr<FrameSource> source;
    if (!o->frames.empty()) {
      PCV_ASSIGN_OR_RETURN(source, DirectorySource::open(o->frames));
    } else if (!o->video.empty()) {
      PCV_ASSIGN_OR_RETURN(source, RawNv21Source::open(o->video, size.first, size.second));
    } else {
#if PCV_HAVE_V4L2
      PCV_ASSIGN_OR_RETURN(source, V4l2Source::open(o->device, size.first, size.second));
#else
      return unsupported("--device needs V4L2 (Linux)");
#endif
    }

    const auto t_load = Clock::now();
    pcv_model* model_raw = nullptr;
    PCV_RETURN_IF_ERROR(from_c(pcv_model_load_file(o->model.c_str(), &model_raw)));
    std::unique_ptr<pcv_model, void (*)(pcv_model*)> model(model_raw, pcv_model_free);
    pcv_session_options so = PCV_SESSION_OPTIONS_INIT;
    so.threads = o->threads;
    pcv_session* session_raw = nullptr;
    PCV_RETURN_IF_ERROR(from_c(pcv_session_create(model.get(), &so, &session_raw)));
    std::unique_ptr<pcv_session, void (*)(pcv_session*)> session(session_raw, pcv_session_free);
    const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_load).count();
    pcv_input_spec spec = PCV_INPUT_SPEC_INIT;
    PCV_RETURN_IF_ERROR(from_c(pcv_model_input_spec(model.get(), &spec)));
    const pcv_crop_mode crop = o->crop == "stretch"     ? PCV_CROP_STRETCH
                               : o->crop == "letterbox" ? PCV_CROP_LETTERBOX
                                                        : PCV_CROP_CENTER;
    err("camera: {} -> {} ({}x{}x{}, {} classes), loaded in {:.1f} ms\n", source->describe(), o->model, spec.width,
        spec.height, spec.channels, spec.num_classes, load_ms);

    std::vector<pcv_classification> top(static_cast<size_t>(o->top_k));
    std::vector<double> pre_ms, inf_ms, post_ms, frame_ms;
    FrameBuffer fb;
    const auto t_start = Clock::now();
    auto t_prev = t_start;
    int n = 0;
    double fps_smooth = 0;
    while (o->max_frames == 0 || n < o->max_frames) {
      PCV_ASSIGN_OR_RETURN(bool more, source->next(fb));
      if (!more) break;
      PCV_RETURN_IF_ERROR(from_c(pcv_session_set_input_frame(session.get(), &fb.frame, o->rotation, o->mirror, crop))
                              .with_context(fb.name));
      PCV_RETURN_IF_ERROR(from_c(pcv_session_run(session.get())));
      int32_t count = 0;
      PCV_RETURN_IF_ERROR(from_c(pcv_session_top_k(session.get(), o->top_k, top.data(), &count)));
      pcv_trace tr = PCV_TRACE_INIT;
      PCV_RETURN_IF_ERROR(from_c(pcv_session_last_trace(session.get(), &tr)));
      const auto now = Clock::now();
      const double dt = std::chrono::duration<double, std::milli>(now - t_prev).count();
      t_prev = now;
      pre_ms.push_back(tr.preprocess_ms);
      inf_ms.push_back(tr.inference_ms);
      post_ms.push_back(tr.postprocess_ms);
      frame_ms.push_back(dt);
      const double fps = dt > 0 ? 1000.0 / dt : 0;
      fps_smooth = n == 0 ? fps : 0.9 * fps_smooth + 0.1 * fps;
      ++n;
      std::string classes;
      for (int32_t i = 0; i < count; ++i) {
        const char* label = top[i].label[0] ? top[i].label : "?";
        classes += fmt::format("{}{} {:.2f}", i ? ", " : "", label, top[i].score);
      }
      out("frame {:>5} {:<14} {:<28} pipeline {:6.2f} ms (pre {:.2f} + inference {:.2f} + post {:.3f})  {:6.1f} fps\n",
          n, fb.name.substr(0, 14), classes, tr.preprocess_ms + tr.inference_ms + tr.postprocess_ms, tr.preprocess_ms,
          tr.inference_ms, tr.postprocess_ms, fps_smooth);
      std::fflush(stdout);
    }
    if (n == 0) return invalid_argument(source->describe() + ": no frames");
    const double total_s = std::chrono::duration<double>(Clock::now() - t_start).count();
    const double pipe = median(pre_ms) + median(inf_ms) + median(post_ms);
    out("{} frames in {:.2f} s: {:.1f} fps overall (source included); median pipeline {:.2f} ms = {:.1f} fps "
        "(pre {:.2f}, inference {:.2f}, post {:.3f} ms)\n",
        n, total_s, n / std::max(total_s, 1e-9), pipe, pipe > 0 ? 1000.0 / pipe : 0.0, median(pre_ms),
        median(inf_ms), median(post_ms));
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(camera, "Live top-1 and FPS on camera frames, a raw NV21 video or a folder of images", 110,
                     setup);
}  // namespace pcv::cli

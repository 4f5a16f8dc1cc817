// Pictures for the report page: PNG encoding (libpng, in memory) and data: URIs, so the page
// carries its images inside (one self-contained file, works offline).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "vision/image.h"

namespace pcv::report {

// 8-bit gray (1 channel), RGB (3) or RGBA (4) -> PNG bytes. Errors: invalid_argument for an
// empty view or another channel count; internal when libpng fails.
Expected<std::vector<uint8_t>> encode_png(const vision::ImageView& image);

// Standard base64 (RFC 4648, with '=' padding).
std::string base64_encode(std::string_view bytes);

// "data:image/png;base64,..." of the picture shrunk (aspect kept) so that its longer side is
// at most `max_side` (pictures already smaller are kept as they are; the page scales them up
// with image-rendering: pixelated).
Expected<std::string> thumbnail_data_uri(const vision::ImageView& image, int max_side);

}  // namespace pcv::report

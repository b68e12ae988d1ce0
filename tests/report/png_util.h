// Reading a rendered PNG back (through cairo) for pixel checks in the report tests.
#pragma once
#include <cairo.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace mstest {

struct Image {
  int w = 0, h = 0;
  std::vector<uint32_t> px;  // 0xAARRGGBB
  int r(int x, int y) const { return (px[y * w + x] >> 16) & 0xff; }
  int g(int x, int y) const { return (px[y * w + x] >> 8) & 0xff; }
  int b(int x, int y) const { return px[y * w + x] & 0xff; }
  double lum(int x, int y) const { return 0.299 * r(x, y) + 0.587 * g(x, y) + 0.114 * b(x, y); }
};

struct PngReader {
  const std::string* bytes;
  size_t pos = 0;
};

inline cairo_status_t read_png_bytes(void* closure, unsigned char* data, unsigned int length) {
  auto* r = static_cast<PngReader*>(closure);
  if (r->pos + length > r->bytes->size()) return CAIRO_STATUS_READ_ERROR;
  std::copy(r->bytes->begin() + r->pos, r->bytes->begin() + r->pos + length, data);
  r->pos += length;
  return CAIRO_STATUS_SUCCESS;
}

// Empty image (w = 0) when the bytes are not a PNG cairo can read.
inline Image decode_png(const std::string& bytes) {
  PngReader reader{&bytes};
  cairo_surface_t* s = cairo_image_surface_create_from_png_stream(read_png_bytes, &reader);
  Image img;
  if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(s);
    img.w = cairo_image_surface_get_width(s);
    img.h = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    unsigned char* data = cairo_image_surface_get_data(s);
    img.px.resize(size_t(img.w) * img.h);
    for (int y = 0; y < img.h; y++)
      for (int x = 0; x < img.w; x++) img.px[y * img.w + x] = reinterpret_cast<uint32_t*>(data + y * stride)[x];
  }
  cairo_surface_destroy(s);
  return img;
}

inline double luminance_std(const Image& img) {
  double s = 0, s2 = 0, n = double(img.w) * img.h;
  for (int y = 0; y < img.h; y++)
    for (int x = 0; x < img.w; x++) {
      double l = img.lum(x, y);
      s += l, s2 += l * l;
    }
  return std::sqrt(std::max(0.0, s2 / n - (s / n) * (s / n)));
}

}  // namespace mstest

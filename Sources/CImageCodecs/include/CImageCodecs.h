#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H

/*
 * PNG and JPEG coding through libpng and libjpeg-turbo.
 *
 * Both libraries report errors by longjmp, which Swift frames cannot survive,
 * so every entry point here hosts the setjmp itself and returns a status:
 * 0 on success, -1 on failure with a NUL-terminated message in `err`.
 * Decoders write into a caller-owned buffer whose size the caller chose from
 * the header (`ic_*_info`), so the caller bounds every large allocation.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IC_ERROR_LENGTH 256

/* What a header says. For PNG, `color_type` is the PNG colour type (0 gray,
   2 RGB, 3 palette, 4 gray+alpha, 6 RGBA) and `bit_depth` its bit depth; for
   JPEG, `components` is the number of colour components, `color_space` the
   libjpeg J_COLOR_SPACE it detected, `progressive` whether it is. */
typedef struct {
    uint32_t width;
    uint32_t height;
    int bit_depth;
    int color_type;
    int components;
    int color_space;
    int interlaced;
    int progressive;
} ic_image_info;

/* ---- PNG ---- */

int ic_png_info(const uint8_t *data, size_t size, ic_image_info *info, char *err, size_t errlen);

/* Decodes to RGB, 8 bits per channel, rows of 3*width bytes, as Pillow's
   Image.open(...).convert("RGB") gives them (see the .c file for each mode).
   `out_size` must be exactly 3 * width * height of the header. */
int ic_png_decode_rgb8(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                       char *err, size_t errlen);

/* Encodes rows laid out exactly as PNG stores them (big-endian 16-bit samples,
   sub-byte pixels packed from the most significant bit), `stride` bytes apart.
   `palette` holds `num_palette` RGB triples (colour type 3), `trns` the tRNS
   chunk's bytes (`num_trns` of them; for gray/RGB the 2- or 6-byte sample).
   The PNG file is returned in a malloc'ed buffer: release it with ic_free. */
int ic_png_encode(const uint8_t *rows, size_t stride, uint32_t width, uint32_t height,
                  int bit_depth, int color_type, const uint8_t *palette, int num_palette,
                  const uint8_t *trns, int num_trns, int interlaced, int compression_level,
                  uint8_t **out, size_t *out_size, char *err, size_t errlen);

/* ---- JPEG ---- */

int ic_jpeg_info(const uint8_t *data, size_t size, ic_image_info *info, char *err, size_t errlen);

/* Decodes to RGB as Pillow does (ISLOW IDCT, fancy upsampling, CMYK/YCCK read
   with Adobe's inverted polarity). `out_size` must be 3 * width * height. */
int ic_jpeg_decode_rgb8(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                        char *err, size_t errlen);

/* Encodes interleaved 8-bit samples with `components` channels (1 gray, 3 RGB,
   4 CMYK as given, stored with an Adobe marker). `jpeg_color_space` is the
   libjpeg J_COLOR_SPACE to store (e.g. JCS_YCbCr, JCS_RGB, JCS_CMYK, JCS_YCCK),
   0 for libjpeg's default. Returns a malloc'ed buffer: release with ic_free. */
int ic_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int components,
                   int jpeg_color_space, int quality, int progressive, int subsample_420,
                   uint8_t **out, size_t *out_size, char *err, size_t errlen);

void ic_free(void *p);

#ifdef __cplusplus
}
#endif

#endif

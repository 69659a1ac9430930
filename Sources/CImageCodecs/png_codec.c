/*
 * PNG decoding and encoding through libpng, with the longjmp-based error
 * handling hosted here (Swift cannot be unwound by longjmp).
 *
 * Decoding reproduces Pillow's PngImagePlugin followed by convert("RGB"):
 * rows are read raw (no libpng transforms besides de-interlacing) and each
 * PNG mode is mapped the way Pillow unpacks and converts it:
 *   gray 1/2/4 bit  -> "1" / "L;2" / "L;4": sample * 255 / (2^bits - 1)
 *   gray 8 bit      -> "L"
 *   gray 16 bit     -> "I;16", then I16_RGB: values above 255 become 255
 *                      (not scaled: Pillow clips, it does not take the high byte)
 *   RGB/RGBA/GA 16  -> "RGB;16B" / "RGBA;16B" / "LA;16B": the high byte
 *   palette         -> palette lookup; entries the PLTE chunk lacks are black
 *                      (Pillow's palette starts zeroed)
 *   alpha, tRNS     -> dropped, never composited.
 */

#include "CImageCodecs.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    uint8_t *obuf;
    size_t osize;
    size_t ocap;
    char *err;
    size_t errlen;
} ic_png_ctx;

static void ic_set_error(char *err, size_t errlen, const char *msg) {
    if (err && errlen > 0) {
        snprintf(err, errlen, "%s", msg);
    }
}

static void ic_png_error(png_structp png, png_const_charp msg) {
    ic_png_ctx *ctx = (ic_png_ctx *)png_get_error_ptr(png);
    ic_set_error(ctx->err, ctx->errlen, msg);
    png_longjmp(png, 1);
}

static void ic_png_warning(png_structp png, png_const_charp msg) {
    /* Pillow ignores what libpng would warn about (ancillary chunk damage). */
    (void)png;
    (void)msg;
}

static void ic_png_read(png_structp png, png_bytep out, size_t n) {
    ic_png_ctx *ctx = (ic_png_ctx *)png_get_io_ptr(png);
    if (n > ctx->size - ctx->pos) {
        png_error(png, "truncated file (unexpected end of PNG data)");
    }
    memcpy(out, ctx->data + ctx->pos, n);
    ctx->pos += n;
}

static void ic_png_write(png_structp png, png_bytep data, size_t n) {
    ic_png_ctx *ctx = (ic_png_ctx *)png_get_io_ptr(png);
    if (n > ctx->ocap - ctx->osize) {
        size_t cap = ctx->ocap ? ctx->ocap : 65536;
        while (cap - ctx->osize < n) {
            if (cap > SIZE_MAX / 2) {
                png_error(png, "PNG output too large");
            }
            cap *= 2;
        }
        uint8_t *p = (uint8_t *)realloc(ctx->obuf, cap);
        if (!p) {
            png_error(png, "out of memory writing PNG");
        }
        ctx->obuf = p;
        ctx->ocap = cap;
    }
    memcpy(ctx->obuf + ctx->osize, data, n);
    ctx->osize += n;
}

static void ic_png_flush(png_structp png) { (void)png; }

static int ic_png_check_signature(const uint8_t *data, size_t size, char *err, size_t errlen) {
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        ic_set_error(err, errlen, "not a PNG file (bad signature)");
        return -1;
    }
    return 0;
}

/* Checks the signature and makes the read and info structs (errors go to ctx's buffer).
   The caller sets its own setjmp right after: it must live in the frame that reads. */
static int ic_png_open_reader(ic_png_ctx *ctx, png_structp *png, png_infop *info) {
    if (ic_png_check_signature(ctx->data, ctx->size, ctx->err, ctx->errlen) != 0) {
        return -1;
    }
    *png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, ic_png_error, ic_png_warning);
    if (!*png) {
        ic_set_error(ctx->err, ctx->errlen, "out of memory");
        return -1;
    }
    *info = png_create_info_struct(*png);
    if (!*info) {
        png_destroy_read_struct(png, NULL, NULL);
        ic_set_error(ctx->err, ctx->errlen, "out of memory");
        return -1;
    }
    return 0;
}

static void ic_png_configure_reader(png_structp png) {
    /* The caller applies its own, tighter, dimension limits to what we report. */
    png_set_user_limits(png, 0x7fffffffU, 0x7fffffffU);
    /* Pillow rejects a bad checksum on any chunk it reads (ChunkStream.crc);
       libpng would only warn for ancillary chunks. */
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    /* libpng's "benign" errors (e.g. a known-bad iCCP profile) do not stop Pillow. */
    png_set_benign_errors(png, 1);
}

int ic_png_info(const uint8_t *data, size_t size, ic_image_info *out, char *err, size_t errlen) {
    ic_png_ctx ctx = {data, size, 0, NULL, 0, 0, err, errlen};
    png_structp png;
    png_infop info;
    png_uint_32 w, h;
    int bd, ct, il;

    if (ic_png_open_reader(&ctx, &png, &info) != 0) {
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &ctx, ic_png_read);
    ic_png_configure_reader(png);
    png_read_info(png, info);
    png_get_IHDR(png, info, &w, &h, &bd, &ct, &il, NULL, NULL);
    memset(out, 0, sizeof(*out));
    out->width = w;
    out->height = h;
    out->bit_depth = bd;
    out->color_type = ct;
    out->components = png_get_channels(png, info);
    out->interlaced = il != PNG_INTERLACE_NONE;
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/* One raw PNG row (as stored, after de-interlacing) to RGB8, Pillow's way. */
static void ic_png_row_to_rgb(const uint8_t *in, uint8_t *out, uint32_t width, int bd, int ct,
                              const uint8_t *palette) {
    uint32_t x;
    switch (ct) {
        case PNG_COLOR_TYPE_GRAY:
            if (bd < 8) {
                const unsigned mask = (1u << bd) - 1u, scale = 255u / mask;
                for (x = 0; x < width; x++) {
                    size_t bit = (size_t)x * (size_t)bd;
                    unsigned s = (in[bit >> 3] >> (8 - bd - (int)(bit & 7))) & mask;
                    uint8_t v = (uint8_t)(s * scale);
                    out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = v;
                }
            } else if (bd == 8) {
                for (x = 0; x < width; x++) {
                    out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x];
                }
            } else {
                /* Pillow quirk: mode I;16 converts to RGB by clipping at 255. */
                for (x = 0; x < width; x++) {
                    uint8_t v = in[2 * x] != 0 ? 255 : in[2 * x + 1];
                    out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = v;
                }
            }
            break;
        case PNG_COLOR_TYPE_PALETTE:
            for (x = 0; x < width; x++) {
                unsigned idx;
                if (bd == 8) {
                    idx = in[x];
                } else {
                    size_t bit = (size_t)x * (size_t)bd;
                    idx = (in[bit >> 3] >> (8 - bd - (int)(bit & 7))) & ((1u << bd) - 1u);
                }
                out[3 * x] = palette[3 * idx];
                out[3 * x + 1] = palette[3 * idx + 1];
                out[3 * x + 2] = palette[3 * idx + 2];
            }
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: {
            const size_t step = bd == 16 ? 4 : 2;
            for (x = 0; x < width; x++) {
                uint8_t v = in[step * x];
                out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = v;
            }
            break;
        }
        case PNG_COLOR_TYPE_RGB:
        case PNG_COLOR_TYPE_RGB_ALPHA: {
            const size_t channels = ct == PNG_COLOR_TYPE_RGB ? 3 : 4;
            const size_t bytes = bd == 16 ? 2 : 1;
            const size_t step = channels * bytes;
            for (x = 0; x < width; x++) {
                out[3 * x] = in[step * x];
                out[3 * x + 1] = in[step * x + bytes];
                out[3 * x + 2] = in[step * x + 2 * bytes];
            }
            break;
        }
        default:
            break;
    }
}

int ic_png_decode_rgb8(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                       char *err, size_t errlen) {
    ic_png_ctx ctx = {data, size, 0, NULL, 0, 0, err, errlen};
    png_structp png;
    png_infop info;
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    png_uint_32 w, h, y;
    int bd, ct, il, passes;
    size_t rowbytes;
    uint8_t palette[256 * 3];

    if (ic_png_open_reader(&ctx, &png, &info) != 0) {
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(raw);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &ctx, ic_png_read);
    ic_png_configure_reader(png);
    png_read_info(png, info);
    png_get_IHDR(png, info, &w, &h, &bd, &ct, &il, NULL, NULL);
    if (h == 0 || w == 0 || (size_t)w > SIZE_MAX / 3 / (size_t)h || (size_t)w * h * 3 != out_size) {
        png_error(png, "output buffer does not match the image size");
    }

    memset(palette, 0, sizeof(palette));
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_colorp plte = NULL;
        int n = 0, i;
        if (!png_get_PLTE(png, info, &plte, &n) || n <= 0) {
            png_error(png, "palette image without a PLTE chunk");
        }
        for (i = 0; i < n && i < 256; i++) {
            palette[3 * i] = plte[i].red;
            palette[3 * i + 1] = plte[i].green;
            palette[3 * i + 2] = plte[i].blue;
        }
    }

    passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    rowbytes = png_get_rowbytes(png, info);

    if (passes <= 1) {
        raw = (uint8_t *)malloc(rowbytes ? rowbytes : 1);
        if (!raw) {
            png_error(png, "out of memory");
        }
        for (y = 0; y < h; y++) {
            png_read_row(png, raw, NULL);
            ic_png_row_to_rgb(raw, out + (size_t)y * w * 3, w, bd, ct, palette);
        }
    } else {
        /* Adam7 needs the whole raw image; the caller bounded w * h already. */
        if (rowbytes > SIZE_MAX / h) {
            png_error(png, "image too large");
        }
        raw = (uint8_t *)malloc(rowbytes * h);
        rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
        if (!raw || !rows) {
            png_error(png, "out of memory");
        }
        for (y = 0; y < h; y++) {
            rows[y] = raw + (size_t)y * rowbytes;
        }
        png_read_image(png, rows);
        for (y = 0; y < h; y++) {
            ic_png_row_to_rgb(rows[y], out + (size_t)y * w * 3, w, bd, ct, palette);
        }
    }
    /* Pillow stops after the image data; chunks after IDAT are not read. */
    free(raw);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int ic_png_encode(const uint8_t *pixels, size_t stride, uint32_t width, uint32_t height,
                  int bit_depth, int color_type, const uint8_t *palette, int num_palette,
                  const uint8_t *trns, int num_trns, int interlaced, int compression_level,
                  uint8_t **out, size_t *out_size, char *err, size_t errlen) {
    ic_png_ctx ctx = {NULL, 0, 0, NULL, 0, 0, err, errlen};
    png_structp png;
    png_infop info;
    png_bytep *volatile rows = NULL;
    png_uint_32 y;

    *out = NULL;
    *out_size = 0;
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, ic_png_error, ic_png_warning);
    if (!png) {
        ic_set_error(err, errlen, "out of memory");
        return -1;
    }
    info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        ic_set_error(err, errlen, "out of memory");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(ctx.obuf);
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, &ctx, ic_png_write, ic_png_flush);
    png_set_IHDR(png, info, width, height, bit_depth, color_type,
                 interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (compression_level >= 0) {
        png_set_compression_level(png, compression_level);
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color plte[256];
        int i;
        if (!palette || num_palette <= 0 || num_palette > 256) {
            png_error(png, "palette image needs 1 to 256 palette entries");
        }
        for (i = 0; i < num_palette; i++) {
            plte[i].red = palette[3 * i];
            plte[i].green = palette[3 * i + 1];
            plte[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, plte, num_palette);
        if (trns && num_trns > 0) {
            png_set_tRNS(png, info, (png_const_bytep)trns, num_trns, NULL);
        }
    } else if (trns && num_trns > 0) {
        png_color_16 c;
        memset(&c, 0, sizeof(c));
        if (color_type == PNG_COLOR_TYPE_GRAY && num_trns >= 2) {
            c.gray = (png_uint_16)((trns[0] << 8) | trns[1]);
            png_set_tRNS(png, info, NULL, 0, &c);
        } else if (color_type == PNG_COLOR_TYPE_RGB && num_trns >= 6) {
            c.red = (png_uint_16)((trns[0] << 8) | trns[1]);
            c.green = (png_uint_16)((trns[2] << 8) | trns[3]);
            c.blue = (png_uint_16)((trns[4] << 8) | trns[5]);
            png_set_tRNS(png, info, NULL, 0, &c);
        }
    }
    png_write_info(png, info);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (height ? height : 1));
    if (!rows) {
        png_error(png, "out of memory");
    }
    for (y = 0; y < height; y++) {
        rows[y] = (png_bytep)(pixels + (size_t)y * stride);
    }
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    *out = ctx.obuf;
    *out_size = ctx.osize;
    return 0;
}

void ic_free(void *p) { free(p); }

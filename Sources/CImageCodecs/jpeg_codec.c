/*
 * JPEG decoding and encoding through libjpeg-turbo, with the longjmp-based
 * error handling hosted here.
 *
 * Decoding copies Pillow's JpegDecode.c settings: libjpeg's defaults (ISLOW
 * integer IDCT, fancy upsampling, block smoothing), the colour space libjpeg
 * detects from the JFIF/Adobe markers, output as RGB for 3 components,
 * grayscale for 1 and CMYK for 4 (YCCK is converted to CMYK by libjpeg).
 * Pillow reads CMYK with rawmode "CMYK;I" (Adobe's inverted polarity: it
 * always inverts) and converts CMYK to RGB with cmyk2rgb:
 *     nk = 255 - K;  R = clip(nk - MULDIV255(C, nk)), likewise G, B,
 * where MULDIV255(a, b) = ((a*b + 128) >> 8 + a*b + 128) >> 8.
 * Warnings are ignored as Pillow ignores them, except a premature end of
 * data, which Pillow reports as a truncated file.
 */

#include "CImageCodecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* Progressive files may hold any number of scans, each costing a pass over
   the coefficients; real encoders write about ten. */
#define IC_JPEG_MAX_SCANS 1000

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char *err;
    size_t errlen;
} ic_jpeg_error;

static void ic_jpeg_error_exit(j_common_ptr cinfo) {
    ic_jpeg_error *e = (ic_jpeg_error *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, buffer);
    if (e->err && e->errlen) {
        snprintf(e->err, e->errlen, "%s", buffer);
    }
    longjmp(e->jmp, 1);
}

static void ic_jpeg_emit_message(j_common_ptr cinfo, int level) {
    ic_jpeg_error *e = (ic_jpeg_error *)cinfo->err;
    if (level < 0) {
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
            if (e->err && e->errlen) {
                snprintf(e->err, e->errlen, "truncated file (premature end of JPEG data)");
            }
            longjmp(e->jmp, 1);
        }
        cinfo->err->num_warnings++;
    }
}

static void ic_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void ic_jpeg_progress(j_common_ptr cinfo) {
    if (cinfo->is_decompressor) {
        j_decompress_ptr d = (j_decompress_ptr)cinfo;
        if (d->input_scan_number > IC_JPEG_MAX_SCANS) {
            ic_jpeg_error *e = (ic_jpeg_error *)cinfo->err;
            if (e->err && e->errlen) {
                snprintf(e->err, e->errlen, "more than %d progressive scans", IC_JPEG_MAX_SCANS);
            }
            longjmp(e->jmp, 1);
        }
    }
}

static void ic_jpeg_install_errors(ic_jpeg_error *e, char *err, size_t errlen) {
    jpeg_std_error(&e->pub);
    e->pub.error_exit = ic_jpeg_error_exit;
    e->pub.emit_message = ic_jpeg_emit_message;
    e->pub.output_message = ic_jpeg_output_message;
    e->err = err;
    e->errlen = errlen;
    if (err && errlen) {
        err[0] = 0;
    }
}

static int ic_jpeg_check_signature(const uint8_t *data, size_t size, char *err, size_t errlen) {
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        snprintf(err, errlen, "not a JPEG file (bad signature)");
        return -1;
    }
    return 0;
}

int ic_jpeg_info(const uint8_t *data, size_t size, ic_image_info *info, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    ic_jpeg_error jerr;

    if (ic_jpeg_check_signature(data, size, err, errlen) != 0) {
        return -1;
    }
    ic_jpeg_install_errors(&jerr, err, errlen);
    cinfo.err = &jerr.pub;
    if (setjmp(jerr.jmp)) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    memset(info, 0, sizeof(*info));
    info->width = cinfo.image_width;
    info->height = cinfo.image_height;
    info->bit_depth = cinfo.data_precision;
    info->components = cinfo.num_components;
    info->color_space = (int)cinfo.jpeg_color_space;
    info->progressive = cinfo.progressive_mode ? 1 : 0;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int ic_jpeg_decode_rgb8(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                        char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    ic_jpeg_error jerr;
    JSAMPLE *volatile row = NULL;
    JDIMENSION w, x;
    int comps;

    if (ic_jpeg_check_signature(data, size, err, errlen) != 0) {
        return -1;
    }
    ic_jpeg_install_errors(&jerr, err, errlen);
    cinfo.err = &jerr.pub;
    if (setjmp(jerr.jmp)) {
        free(row);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = ic_jpeg_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    if (cinfo.data_precision != 8) {
        snprintf(err, errlen, "cannot handle %d-bit JPEG samples", cinfo.data_precision);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    /* Pillow picks the mode from the component count alone (JpegImagePlugin.SOF). */
    switch (cinfo.num_components) {
        case 1:
            cinfo.out_color_space = JCS_GRAYSCALE;
            break;
        case 3:
            cinfo.out_color_space = JCS_RGB;
            break;
        case 4:
            cinfo.out_color_space = JCS_CMYK;
            break;
        default:
            snprintf(err, errlen, "cannot handle %d-component JPEG images", cinfo.num_components);
            jpeg_destroy_decompress(&cinfo);
            return -1;
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.do_block_smoothing = TRUE;

    w = cinfo.image_width;
    if (w == 0 || cinfo.image_height == 0 ||
        (size_t)w > SIZE_MAX / 3 / (size_t)cinfo.image_height ||
        (size_t)w * cinfo.image_height * 3 != out_size) {
        snprintf(err, errlen, "output buffer does not match the image size");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }

    jpeg_start_decompress(&cinfo);
    comps = cinfo.output_components;
    row = (JSAMPLE *)malloc((size_t)cinfo.output_width * (size_t)comps);
    if (!row) {
        snprintf(err, errlen, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1];
        uint8_t *o = out + (size_t)cinfo.output_scanline * w * 3;
        rows[0] = row;
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
            snprintf(err, errlen, "truncated file (JPEG decoder suspended)");
            free(row);
            jpeg_destroy_decompress(&cinfo);
            return -1;
        }
        if (comps == 1) {
            for (x = 0; x < w; x++) {
                o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = row[x];
            }
        } else if (comps == 3) {
            memcpy(o, row, (size_t)w * 3);
        } else {
            for (x = 0; x < w; x++) {
                /* "CMYK;I": Pillow inverts every channel on unpacking. */
                const int c = 255 - row[4 * x], m = 255 - row[4 * x + 1];
                const int yy = 255 - row[4 * x + 2], k = 255 - row[4 * x + 3];
                const int nk = 255 - k;
                int t, v;
                t = c * nk + 128;
                v = nk - (((t >> 8) + t) >> 8);
                o[3 * x] = (uint8_t)(v <= 0 ? 0 : v < 256 ? v : 255);
                t = m * nk + 128;
                v = nk - (((t >> 8) + t) >> 8);
                o[3 * x + 1] = (uint8_t)(v <= 0 ? 0 : v < 256 ? v : 255);
                t = yy * nk + 128;
                v = nk - (((t >> 8) + t) >> 8);
                o[3 * x + 2] = (uint8_t)(v <= 0 ? 0 : v < 256 ? v : 255);
            }
        }
    }
    /* Pillow also finishes decompression: data missing after the last scan
       line (no EOI) is a truncated file there as well. */
    jpeg_finish_decompress(&cinfo);
    free(row);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

typedef struct {
    struct jpeg_destination_mgr pub;
    uint8_t *buffer;
    size_t capacity;
} ic_jpeg_dest;

static void ic_jpeg_dest_init(j_compress_ptr cinfo) {
    ic_jpeg_dest *d = (ic_jpeg_dest *)cinfo->dest;
    d->pub.next_output_byte = d->buffer;
    d->pub.free_in_buffer = d->capacity;
}

static boolean ic_jpeg_dest_empty(j_compress_ptr cinfo) {
    /* Called when the whole buffer is full: double it. */
    ic_jpeg_dest *d = (ic_jpeg_dest *)cinfo->dest;
    size_t cap = d->capacity * 2;
    uint8_t *p = (uint8_t *)realloc(d->buffer, cap);
    if (!p) {
        ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
    }
    d->pub.next_output_byte = p + d->capacity;
    d->pub.free_in_buffer = cap - d->capacity;
    d->buffer = p;
    d->capacity = cap;
    return TRUE;
}

static void ic_jpeg_dest_term(j_compress_ptr cinfo) { (void)cinfo; }

int ic_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int components,
                   int jpeg_color_space, int quality, int progressive, int subsample_420,
                   uint8_t **out, size_t *out_size, char *err, size_t errlen) {
    struct jpeg_compress_struct cinfo;
    ic_jpeg_error jerr;
    ic_jpeg_dest dest;
    int i;

    *out = NULL;
    *out_size = 0;
    dest.capacity = 65536;
    dest.buffer = (uint8_t *)malloc(dest.capacity);
    if (!dest.buffer) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    dest.pub.init_destination = ic_jpeg_dest_init;
    dest.pub.empty_output_buffer = ic_jpeg_dest_empty;
    dest.pub.term_destination = ic_jpeg_dest_term;
    ic_jpeg_install_errors(&jerr, err, errlen);
    cinfo.err = &jerr.pub;
    if (setjmp(jerr.jmp)) {
        jpeg_destroy_compress(&cinfo);
        free(dest.buffer);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    cinfo.dest = &dest.pub;
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = components;
    switch (components) {
        case 1:
            cinfo.in_color_space = JCS_GRAYSCALE;
            break;
        case 3:
            cinfo.in_color_space = JCS_RGB;
            break;
        case 4:
            cinfo.in_color_space = JCS_CMYK;
            break;
        default:
            snprintf(err, errlen, "cannot encode %d-component JPEG images", components);
            jpeg_destroy_compress(&cinfo);
            free(dest.buffer);
            return -1;
    }
    jpeg_set_defaults(&cinfo);
    if (jpeg_color_space > 0) {
        jpeg_set_colorspace(&cinfo, (J_COLOR_SPACE)jpeg_color_space);
    }
    jpeg_set_quality(&cinfo, quality, TRUE);
    for (i = 0; i < cinfo.num_components; i++) {
        cinfo.comp_info[i].h_samp_factor = 1;
        cinfo.comp_info[i].v_samp_factor = 1;
    }
    if (subsample_420 && cinfo.num_components >= 3) {
        cinfo.comp_info[0].h_samp_factor = 2;
        cinfo.comp_info[0].v_samp_factor = 2;
        if (cinfo.num_components == 4) {
            cinfo.comp_info[3].h_samp_factor = 2;
            cinfo.comp_info[3].v_samp_factor = 2;
        }
    }
    if (progressive) {
        jpeg_simple_progression(&cinfo);
    }
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rows[1];
        rows[0] = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * (size_t)components);
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    *out = dest.buffer;
    *out_size = dest.capacity - dest.pub.free_in_buffer;
    jpeg_destroy_compress(&cinfo);
    return 0;
}

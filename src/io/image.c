/*
** image.c -- PNG (libpng's simplified API) and JPEG (libjpeg-turbo) files for
** keras.preprocessing.image. Decoding converts as PIL does for Keras's
** load_img: grayscale is PIL's convert('L'), RGB drops alpha, RGBA adds an
** opaque one. Every failure is an error in the context; the size a file
** declares is checked before anything is allocated.
*/
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>
#include <jpeglib.h>

#include "../image.h"

/* PIL's L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16 */
static unsigned char luma(const unsigned char *p)
{
  return (unsigned char)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16);
}

/* src: n pixels of sc channels (1 L, 2 LA, 3 RGB, 4 RGBA) into dc channels */
static void convert(const unsigned char *src, int sc, unsigned char *dst, int dc, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    const unsigned char *s = src + i * (size_t)sc;
    unsigned char *d = dst + i * (size_t)dc;
    unsigned char rgba[4];
    if (sc <= 2) { rgba[0] = rgba[1] = rgba[2] = s[0]; rgba[3] = sc == 2 ? s[1] : 255; }
    else { memcpy(rgba, s, 3); rgba[3] = sc == 4 ? s[3] : 255; }
    if (dc == 1) d[0] = sc <= 2 ? s[0] : luma(rgba);
    else memcpy(d, rgba, (size_t)dc);
  }
}

static int too_large(kr_ctx *ctx, const char *path, int64_t w, int64_t h)
{
  if (w < 1 || h < 1 || w * h > KR_IMAGE_MAX_PIXELS)
    return kr_fail(ctx, KR_EFORMAT, "load_img: %s: the image declares %lld x %lld pixels (at most %lld in all)",
                   path, (long long)w, (long long)h, (long long)KR_IMAGE_MAX_PIXELS);
  return KR_OK;
}

static int read_png(kr_ctx *ctx, const char *path, FILE *f, int c, kr_image *img)
{
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_stdio(&pi, f))
    return kr_fail(ctx, KR_EFORMAT, "load_img: %s: not a readable PNG file (%s)", path, pi.message);
  if (too_large(ctx, path, pi.width, pi.height)) { png_image_free(&pi); return kr_errcode(ctx); }
  int gray = !(pi.format & PNG_FORMAT_FLAG_COLOR);
  int sc = gray ? 2 : 4;
  pi.format = gray ? PNG_FORMAT_GA : PNG_FORMAT_RGBA;
  size_t n = (size_t)pi.width * pi.height;
  unsigned char *buf = malloc(n * (size_t)sc);
  unsigned char *out = malloc(n * (size_t)c);
  if (!buf || !out) {
    free(buf);
    free(out);
    png_image_free(&pi);
    return kr_fail(ctx, KR_EMEM, "load_img: %s: out of memory", path);
  }
  if (!png_image_finish_read(&pi, NULL, buf, 0, NULL)) {
    free(buf);
    free(out);
    return kr_fail(ctx, KR_EFORMAT, "load_img: %s: broken PNG data (%s)", path, pi.message);
  }
  convert(buf, sc, out, c, n);
  free(buf);
  img->h = (int)pi.height;
  img->w = (int)pi.width;
  img->c = c;
  img->px = out;
  return KR_OK;
}

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
} jerr;

static void jerr_exit(j_common_ptr cinfo)
{
  jerr *e = (jerr *)cinfo->err;
  cinfo->err->format_message(cinfo, e->msg);
  longjmp(e->jb, 1);
}

static void jerr_quiet(j_common_ptr cinfo) { (void)cinfo; }

/* a truncated file is an error (libjpeg would only warn and pad with gray) */
static void jerr_warn(j_common_ptr cinfo, int level)
{
  if (level < 0) {
    jerr *e = (jerr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jb, 1);
  }
}

static int read_jpeg(kr_ctx *ctx, const char *path, FILE *f, int c, kr_image *img)
{
  struct jpeg_decompress_struct ci;
  jerr e;
  unsigned char *volatile buf = NULL, *volatile out = NULL;
  ci.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = jerr_exit;
  e.pub.output_message = jerr_quiet;
  e.pub.emit_message = jerr_warn;
  e.msg[0] = 0;
  if (setjmp(e.jb)) {
    jpeg_destroy_decompress(&ci);
    free(buf);
    free(out);
    return kr_fail(ctx, KR_EFORMAT, "load_img: %s: broken JPEG data (%s)", path, e.msg);
  }
  jpeg_create_decompress(&ci);
  jpeg_stdio_src(&ci, f);
  jpeg_read_header(&ci, TRUE);
  if (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&ci);
    return kr_fail(ctx, KR_EFORMAT, "load_img: %s: CMYK JPEG files are not supported", path);
  }
  if (too_large(ctx, path, ci.image_width, ci.image_height)) {
    jpeg_destroy_decompress(&ci);
    return kr_errcode(ctx);
  }
  ci.out_color_space = ci.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&ci);
  int sc = ci.output_components;
  size_t n = (size_t)ci.output_width * ci.output_height;
  buf = malloc(n * (size_t)sc);
  out = malloc(n * (size_t)c);
  if (!buf || !out) {
    jpeg_destroy_decompress(&ci);
    free(buf);
    free(out);
    return kr_fail(ctx, KR_EMEM, "load_img: %s: out of memory", path);
  }
  while (ci.output_scanline < ci.output_height) {
    JSAMPROW row = buf + (size_t)ci.output_scanline * ci.output_width * (size_t)sc;
    jpeg_read_scanlines(&ci, &row, 1);
  }
  jpeg_finish_decompress(&ci);
  img->h = (int)ci.output_height;
  img->w = (int)ci.output_width;
  jpeg_destroy_decompress(&ci);
  convert(buf, sc, out, c, n);
  free(buf);
  img->c = c;
  img->px = out;
  return KR_OK;
}

int kr_image_read(kr_ctx *ctx, const char *path, int c, kr_image *img)
{
  memset(img, 0, sizeof *img);
  if (c != 1 && c != 3 && c != 4) return kr_fail(ctx, KR_EARG, "load_img: channels must be 1, 3 or 4");
  /* O_NONBLOCK: a FIFO without a writer or a device cannot hang the open;
  ** anything but a regular file is refused before a byte is read */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return kr_fail(ctx, KR_EIO, "load_img: cannot open %s", path);
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return kr_fail(ctx, KR_EIO, "load_img: cannot open %s: not a regular file", path);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    close(fd);
    return kr_fail(ctx, KR_EIO, "load_img: cannot open %s", path);
  }
  unsigned char sig[8] = {0};
  size_t got = fread(sig, 1, sizeof sig, f);
  int rc;
  if (got == 8 && png_sig_cmp(sig, 0, 8) == 0) {
    rewind(f);
    rc = read_png(ctx, path, f, c, img);
    fclose(f);
  } else if (got >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF) {
    rewind(f);
    rc = read_jpeg(ctx, path, f, c, img);
    fclose(f);
  } else {
    fclose(f);
    rc = kr_fail(ctx, KR_EFORMAT, "load_img: %s is not a PNG or JPEG file", path);
  }
  return rc;
}

int kr_image_resize_nearest(kr_ctx *ctx, const kr_image *in, int h, int w, kr_image *out)
{
  if (h < 1 || w < 1 || (int64_t)h * w > KR_IMAGE_MAX_PIXELS)
    return kr_fail(ctx, KR_EARG, "load_img: target_size must be positive (at most %lld pixels), got %d x %d",
                   (long long)KR_IMAGE_MAX_PIXELS, h, w);
  out->px = malloc((size_t)h * w * (size_t)in->c);
  if (!out->px) return kr_fail(ctx, KR_EMEM, "load_img: out of memory");
  out->h = h;
  out->w = w;
  out->c = in->c;
  for (int r = 0; r < h; r++) {
    int sr = (int)(((double)r + 0.5) * in->h / h);
    if (sr >= in->h) sr = in->h - 1;
    for (int q = 0; q < w; q++) {
      int sq = (int)(((double)q + 0.5) * in->w / w);
      if (sq >= in->w) sq = in->w - 1;
      memcpy(out->px + ((size_t)r * w + q) * in->c, in->px + ((size_t)sr * in->w + sq) * in->c, (size_t)in->c);
    }
  }
  return KR_OK;
}

static int write_jpeg(kr_ctx *ctx, const char *path, const kr_image *img, int quality)
{
  if (img->c == 4) return kr_fail(ctx, KR_EARG, "save_img: %s: JPEG has no alpha channel (RGBA image)", path);
  FILE *f = fopen(path, "wb");
  if (!f) return kr_fail(ctx, KR_EIO, "save_img: cannot write %s", path);
  struct jpeg_compress_struct ci;
  jerr e;
  ci.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = jerr_exit;
  e.pub.output_message = jerr_quiet;
  if (setjmp(e.jb)) {
    jpeg_destroy_compress(&ci);
    fclose(f);
    return kr_fail(ctx, KR_EIO, "save_img: %s: %s", path, e.msg);
  }
  jpeg_create_compress(&ci);
  jpeg_stdio_dest(&ci, f);
  ci.image_width = (JDIMENSION)img->w;
  ci.image_height = (JDIMENSION)img->h;
  ci.input_components = img->c;
  ci.in_color_space = img->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, quality, TRUE);
  jpeg_start_compress(&ci, TRUE);
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = img->px + (size_t)ci.next_scanline * img->w * (size_t)img->c;
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  if (fclose(f) != 0) return kr_fail(ctx, KR_EIO, "save_img: cannot write %s", path);
  return KR_OK;
}

int kr_image_write(kr_ctx *ctx, const char *path, const kr_image *img, int jpeg, int quality)
{
  if (img->c != 1 && img->c != 3 && img->c != 4)
    return kr_fail(ctx, KR_EARG, "save_img: images have 1, 3 or 4 channels, got %d", img->c);
  if (jpeg) return write_jpeg(ctx, path, img, quality);
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  pi.width = (png_uint_32)img->w;
  pi.height = (png_uint_32)img->h;
  pi.format = img->c == 1 ? PNG_FORMAT_GRAY : img->c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
  if (!png_image_write_to_file(&pi, path, 0, img->px, 0, NULL))
    return kr_fail(ctx, KR_EIO, "save_img: cannot write %s (%s)", path, pi.message);
  return KR_OK;
}

/*
** image_none.c -- image files in a build without libpng and libjpeg (make
** IMAGES=0, replacing src/io/image.c): reading or writing a PNG or JPEG file
** fails with a clear error. The image arrays' transforms (src/kernels/image.c)
** need no library and stay.
*/
#include <string.h>

#include "../image.h"

#define NO_IMAGES "this lkeras was built without image files (make IMAGES=0): PNG and JPEG need a build " \
                  "with libpng and libjpeg"

int kr_image_read(kr_ctx *ctx, const char *path, int c, kr_image *img)
{
  (void)c;
  memset(img, 0, sizeof *img);
  return kr_fail(ctx, KR_EIO, "load_img: %s: %s", path, NO_IMAGES);
}

int kr_image_write(kr_ctx *ctx, const char *path, const kr_image *img, int jpeg, int quality)
{
  (void)img; (void)jpeg; (void)quality;
  return kr_fail(ctx, KR_EIO, "save_img: %s: %s", path, NO_IMAGES);
}

int kr_image_resize_nearest(kr_ctx *ctx, const kr_image *in, int h, int w, kr_image *out)
{
  (void)in; (void)h; (void)w;
  memset(out, 0, sizeof *out);
  return kr_fail(ctx, KR_EIO, "load_img: %s", NO_IMAGES);
}

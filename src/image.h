/*
** image.h -- keras.preprocessing.image in C: PNG and JPEG files through
** libpng and libjpeg (io/image.c), and the random transforms of
** ImageDataGenerator applied to a batch (kernels/image.c).
*/
#ifndef KR_IMAGE_H
#define KR_IMAGE_H

#include "kr.h"

/* the largest image accepted: files declaring more pixels are refused before
** anything is allocated */
#ifndef KR_IMAGE_MAX_PIXELS
#define KR_IMAGE_MAX_PIXELS ((int64_t)1 << 28)
#endif

/* a decoded image: h x w x c bytes, c 1 (L), 3 (RGB) or 4 (RGBA) */
typedef struct kr_image {
  int h, w, c;
  unsigned char *px;
} kr_image;

/* reads a PNG or JPEG file (told by its first bytes) into c channels: 1 is
** PIL's convert('L') (ITU-R 601-2 luma), 3 drops alpha, 4 adds an opaque
** alpha. Fails with KR_EIO (missing) or KR_EFORMAT (not an image, truncated,
** too large). free() the pixels. */
int kr_image_read(kr_ctx *ctx, const char *path, int c, kr_image *img);
/* writes px (h x w x c bytes) as PNG or JPEG (jpeg != 0, quality 1..100) */
int kr_image_write(kr_ctx *ctx, const char *path, const kr_image *img, int jpeg, int quality);
/* PIL's nearest resize: out[i] = in[floor((i + 0.5) * in_size / out_size)] */
int kr_image_resize_nearest(kr_ctx *ctx, const kr_image *in, int h, int w, kr_image *out);

/* fill modes of the affine transform */
enum { KR_FILL_CONSTANT, KR_FILL_NEAREST, KR_FILL_REFLECT, KR_FILL_WRAP };

/* one sample's transform, in Keras's order: the affine map (input
** coordinate (r, c) = A * (r', c') + b, bilinear), the channel shift, the
** flips, the brightness */
typedef struct kr_image_params {
  double a[6];            /* a00 a01 b0; a10 a11 b1 */
  int affine;             /* 0: the identity, skipped */
  int has_shift;
  double shift;           /* added to every channel, clipped to the sample's min..max */
  int flip_h, flip_v;
  int has_brightness;
  double brightness;      /* PIL's ImageEnhance.Brightness on the 0..255 rescaled image */
} kr_image_params;

/* y[i] = the transform p[i] of x[i] for n samples of h x w x c floats, in
** parallel over samples; x and y must not overlap. No allocation. */
int kr_image_transform(kr_ctx *ctx, const float *x, float *y, int64_t n, int64_t h, int64_t w,
                       int64_t c, const kr_image_params *p, int fill, double cval);

/* ZCA whitening's matrix (keras-preprocessing's fit): sigma = x^T x / n of the
** n x d samples x (float32), its eigendecomposition v diag(l) v^T (LAPACK's
** dsyev, float64; the SVD of a symmetric matrix), pc = v diag(1 / sqrt(|l| +
** eps)) v^T into pc (d x d). d at most 16384. */
int kr_image_zca(kr_ctx *ctx, const float *x, int64_t n, int64_t d, double eps, float *pc);

#endif

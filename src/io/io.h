/*
** io.h -- array files: NumPy .npy (read and write), IDX (the MNIST format,
** gzip or plain) and numeric CSV (read). Everything is read as float32.
** Files are untrusted: every length is checked before use, shapes are
** checked for overflow and against the file's size before anything is
** allocated, and a bad file gives an error, never a crash.
** Loaders return a new tensor (one reference, owned by the caller) or NULL
** with a message in ctx. Messages start with "load: 'path'" (.npy),
** "save: 'path'" (.npy), "IDX 'path'" and "CSV 'path'".
*/
#ifndef KR_IO_H
#define KR_IO_H

#include "kr.h"

/* NumPy .npy, versions 1.0, 2.0 and 3.0. dtypes: f2 f4 f8, i1 i2 i4 i8,
** u1 u2 u4 u8, b1, each little- or big-endian; converted to float32.
** fortran_order True is transposed to row-major; shape () gives a scalar.
** The data must fill the rest of the file exactly. */
kr_tensor *kr_npy_load(kr_ctx *ctx, const char *path);

/* The same for a .npy held in memory (a member of a .npz; name is used in
** messages). A numeric array comes back in *t. A 1-D object array ('|O',
** Python objects pickled after the header) is not decoded: *t is NULL,
** *obj_at is the offset of its pickle in buf and *obj_n its length. */
int kr_npy_load_mem(kr_ctx *ctx, const unsigned char *buf, size_t len, const char *name,
                    kr_tensor **t, int64_t *obj_at, int64_t *obj_n);

/* Ragged rows of integers: row i is values[offsets[i] .. offsets[i+1]). */
typedef struct kr_ragged {
  int64_t n;
  int64_t *offsets;   /* n + 1 entries */
  int64_t *values;
} kr_ragged;

void kr_ragged_free(kr_ctx *ctx, kr_ragged *r);

/* The pickle (protocols 2-4) of a 1-D numpy object array of n Python lists
** of integers, as np.save writes it for Keras's imdb.npz and reuters.npz,
** into r. A strict subset of the format: anything else (other globals,
** other objects, a different length) is an error naming name; no Python
** code is ever run. Memory is bounded by a small multiple of len. */
int kr_pickle_int_lists(kr_ctx *ctx, const unsigned char *p, size_t len, const char *name,
                        int64_t n, kr_ragged *r);

/* NumPy .npz: a zip archive of .npy members, stored or deflated (zlib),
** zip64 sizes accepted, CRC-32 checked. fn is called once per member, in
** archive order, with its name without ".npy" and either a new tensor
** (ownership passes to fn) or ragged integer rows (valid during the call).
** A non-zero return from fn stops the walk and is returned. */
typedef int (*kr_npz_member_fn)(void *ud, const char *name, kr_tensor *t, const kr_ragged *r);
int kr_npz_load(kr_ctx *ctx, const char *path, kr_npz_member_fn fn, void *ud);
/* The same on an archive held in memory (path names it in messages). */
int kr_npz_parse(kr_ctx *ctx, const unsigned char *buf, size_t len, const char *path, kr_npz_member_fn fn,
                 void *ud);

/* CIFAR's binary format inside its .tar.gz (cifar-10-binary.tar.gz,
** cifar-100-binary.tar.gz): the members whose base names are given, in
** that order, each a sequence of records of label_bytes label bytes and
** 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows of 32). *x gets
** (n, 32, 32, 3) pixel values 0..255 and *y (n, 1) the label byte at
** label_index of each record. */
int kr_cifar_load(kr_ctx *ctx, const char *path, const char *const *members, int nmembers,
                  int label_bytes, int label_index, kr_tensor **x, kr_tensor **y);

/* Write t as '<f4', version 1.0, C order. The bytes go to a temporary file
** in the same directory, which is then renamed over path: a reader never
** sees a torn file. */
int kr_npy_save(kr_ctx *ctx, const kr_tensor *t, const char *path);

/* IDX (big-endian): types 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int,
** 0x0D float, 0x0E double; 1..8 dimensions. gzip-compressed or plain
** (told apart by the gzip magic bytes). Values are converted as they are,
** without scaling. */
kr_tensor *kr_idx_load(kr_ctx *ctx, const char *path);

/* Numeric CSV into a (rows, cols) tensor. delim separates fields (with
** ' ', runs of blanks are one separator); skip_header drops the first line.
** Fields may be blank-padded or in double quotes. Every row must have the
** same number of fields; empty lines at the end are ignored, elsewhere they
** are an error; a field that is not a number is an error naming its line
** and column (both 1-based, lines counted in the file). */
kr_tensor *kr_csv_load(kr_ctx *ctx, const char *path, char delim, int skip_header);

#endif

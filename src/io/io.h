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

/*
** model_file.h -- model files in two formats:
**   - the native single-file format (model_file.c), made for untrusted input;
**   - Keras 2's HDF5 layout through libhdf5 (h5.c): a thin file/group/
**     attribute/dataset API; the Keras layout itself is decided in Lua
**     (lua/keras/saving.lua).
** Both write to a temporary file in the target's directory and rename it
** over the target once complete (after fsync): a process killed mid-save
** leaves the previous file intact.
**
** The native format, version 1 (every integer little-endian):
**   offset  size
**   0       8     magic "\x89LKM\r\n\x1a\n"
**   8       4     u32 format version (1)
**   12      4     u32 flags (0)
**   16      8     u64 length J of the JSON text
**   24      4     u32 number T of tensors
**   28      4     u32 reserved (0)
**   32      J     the JSON text (UTF-8): architecture, training config,
**                 attributes; its schema is Lua's business
**   then T records:
**           4     u32 name length (1..KR_MF_MAX_NAME)
**           n     the name (no NUL bytes; names are unique)
**           4     u32 dtype (1 = float32)
**           4     u32 rank (0..KR_MAX_DIMS)
**           8*r   u64 dimensions
**           4*N   the float32 values, row-major, N = product of dimensions
**   end     4     u32 CRC-32 (zlib's) of every byte before it
** Nothing may follow the checksum. Every length is checked against the
** bytes that remain before it is used or anything is allocated; a bad file
** gives KR_EFORMAT with a message naming the file and the offset.
** Loaders of later versions keep reading version 1.
*/
#ifndef KR_MODEL_FILE_H
#define KR_MODEL_FILE_H

#include "kr.h"

#define KR_MF_VERSION 1                 /* what we write */
#define KR_MF_MAX_NAME 4096             /* bytes in a tensor name */
#define KR_MF_MAX_TENSORS (1 << 20)

typedef struct kr_model_file {
  kr_ctx *ctx;
  uint32_t version;
  char *json;                 /* NUL-terminated; json_len bytes before the NUL */
  size_t json_len;
  int ntensors;
  char **names;               /* NUL-terminated */
  kr_tensor **tensors;        /* one reference each, owned by the model file */
} kr_model_file;

/* Parse the bytes buf[0..n) of a native model file. `what` names it in
** messages (the path). On success *out owns everything it points to. */
int kr_model_file_parse(kr_ctx *ctx, const unsigned char *buf, size_t n, const char *what,
                        kr_model_file **out);
/* Read and parse the file at path. */
int kr_model_file_load(kr_ctx *ctx, const char *path, kr_model_file **out);
void kr_model_file_free(kr_model_file *mf);

/* Write a native model file: json[0..json_len), then tensors[i] named
** names[i]. Atomic: temp file, fsync, rename. */
int kr_model_file_save(kr_ctx *ctx, const char *path, const char *json, size_t json_len, int ntensors,
                       const char *const *names, const kr_tensor *const *tensors);

/* The bytes a saved file would hold, in memory (tests, the fuzzer's seeds).
** *out is from kr_malloc; give it back with kr_free. */
int kr_model_file_encode(kr_ctx *ctx, const char *json, size_t json_len, int ntensors,
                         const char *const *names, const kr_tensor *const *tensors,
                         unsigned char **out, size_t *outlen);

/* ---- HDF5 (h5.c) ----
** Paths are '/'-separated from the root ("model_weights/dense_1"); "" or
** "/" is the root. Messages start with "'path' (HDF5)". libhdf5 keeps
** process-wide state of its own (its library init and error stack); we turn
** off its automatic error printing on every open. */

typedef struct kr_h5 kr_h5;

/* Create a new file (written to a temporary file, renamed by commit). */
kr_h5 *kr_h5_create(kr_ctx *ctx, const char *path);
/* Open an existing file read-only. */
kr_h5 *kr_h5_open(kr_ctx *ctx, const char *path);
/* Close a created file and rename it over its path. The handle is then
** closed (kr_h5_free still needs calling). */
int kr_h5_commit(kr_h5 *h);
/* Close; a created file that was not committed is removed. */
void kr_h5_free(kr_h5 *h);

/* 1 if an object (group or dataset) exists at path */
int kr_h5_exists(kr_h5 *h, const char *path);
/* groups are created as needed by the setters */
int kr_h5_set_attr_string(kr_h5 *h, const char *group, const char *name, const char *s, size_t len);
/* a 1-D array of fixed-length strings (h5py's numpy 'S' arrays, as Keras
** writes layer_names); n = 0 gives an empty array */
int kr_h5_set_attr_strings(kr_h5 *h, const char *group, const char *name, int n, const char *const *s);
int kr_h5_set_attr_number(kr_h5 *h, const char *group, const char *name, double v);

/* Attribute kinds for kr_h5_get_attr */
enum { KR_H5_NONE, KR_H5_STRING, KR_H5_STRINGS, KR_H5_NUMBER, KR_H5_NUMBERS };

typedef struct kr_h5_attr {
  int kind;        /* KR_H5_* */
  int n;           /* items (STRINGS, NUMBERS) */
  char **s;        /* STRING: s[0]; STRINGS: s[0..n) (kr_malloc'd, NUL-terminated) */
  size_t *len;     /* their lengths */
  double *v;       /* NUMBER: v[0]; NUMBERS: v[0..n) */
} kr_h5_attr;

/* Read an attribute (strings fixed or variable length, scalar or 1-D;
** numbers of any type). A missing attribute (or group) gives kind
** KR_H5_NONE and KR_OK. */
int kr_h5_get_attr(kr_h5 *h, const char *group, const char *name, kr_h5_attr *a);
void kr_h5_attr_free(kr_ctx *ctx, kr_h5_attr *a);

/* float32 dataset from a tensor (intermediate groups created) */
int kr_h5_write_tensor(kr_h5 *h, const char *path, const kr_tensor *t);
/* a scalar int64 dataset (Keras's optimizer iterations) */
int kr_h5_write_int(kr_h5 *h, const char *path, int64_t v);
/* a dataset of any numeric type, converted to float32 */
kr_tensor *kr_h5_read_tensor(kr_h5 *h, const char *path);
/* a dataset holding one number, read as double (iterations) */
int kr_h5_read_number(kr_h5 *h, const char *path, double *v);

#endif

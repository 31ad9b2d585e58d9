/*
** attrs.c -- the names of the core ops' attributes (opdefs.h): the lists
** that rows of the op table (ops.c) give as .attrs, naming the kr_attr slots
** of ops.h's enums for keras.core.op (src/lua/graph.c), and kr_attr_name for
** messages. The conv, rnn and backend families keep theirs in ops_conv.c,
** ops_rnn.c and ops_backend.c.
*/
#include "kr.h"
#include "ops.h"

#include <stddef.h>

const kr_attrname kr_scale_attrs[] = {
  {"scale", KR_ATTR_FLOAT, KR_SCALE_MUL},
  {"offset", KR_ATTR_FLOAT, KR_SCALE_ADD},
  {NULL, 0, 0}
};

const kr_attrname kr_pows_attrs[] = {
  {"exponent", KR_ATTR_FLOAT, KR_POWS_EXPONENT},
  {NULL, 0, 0}
};

const kr_attrname kr_clip_attrs[] = {
  {"min_value", KR_ATTR_FLOAT, KR_CLIP_MIN},
  {"max_value", KR_ATTR_FLOAT, KR_CLIP_MAX},
  {NULL, 0, 0}
};

const kr_attrname kr_relu_attrs[] = {
  {"alpha", KR_ATTR_FLOAT, KR_RELU_ALPHA},
  {"max_value", KR_ATTR_FLOAT, KR_RELU_MAX},
  {NULL, 0, 0}
};

const kr_attrname kr_elu_attrs[] = {
  {"alpha", KR_ATTR_FLOAT, KR_ELU_ALPHA},
  {NULL, 0, 0}
};

const kr_attrname kr_theta_attrs[] = {
  {"theta", KR_ATTR_FLOAT, KR_THRESHOLD_THETA},
  {NULL, 0, 0}
};

const kr_attrname kr_axis_attrs[] = {
  {"axis", KR_ATTR_INT, KR_AXIS},
  {NULL, 0, 0}
};

const kr_attrname kr_reduce_attrs[] = {
  {"axes", KR_ATTR_INT, KR_REDUCE_AXES},
  {"keepdims", KR_ATTR_INT, KR_REDUCE_KEEPDIMS},
  {NULL, 0, 0}
};

const kr_attrname kr_matmul_attrs[] = {
  {"transpose_a", KR_ATTR_INT, KR_MATMUL_TRANSPOSE_A},
  {"transpose_b", KR_ATTR_INT, KR_MATMUL_TRANSPOSE_B},
  {NULL, 0, 0}
};

const kr_attrname kr_transpose_attrs[] = {
  {"perm", KR_ATTR_INTS, KR_TRANSPOSE_PERM},
  {NULL, 0, 0}
};

const kr_attrname kr_slice_attrs[] = {
  {"axis", KR_ATTR_INT, KR_SLICE_AXIS},
  {"start", KR_ATTR_INT, KR_SLICE_START},
  {"length", KR_ATTR_INT, KR_SLICE_LENGTH},
  {NULL, 0, 0}
};

const kr_attrname kr_one_hot_attrs[] = {
  {"classes", KR_ATTR_INT, KR_ONE_HOT_CLASSES},
  {NULL, 0, 0}
};

const kr_attrname kr_dropout_attrs[] = {
  {"rate", KR_ATTR_FLOAT, KR_DROPOUT_RATE},
  {"always", KR_ATTR_INT, KR_DROPOUT_ALWAYS},
  {NULL, 0, 0}
};

const kr_attrname kr_batchnorm_attrs[] = {
  {"axis", KR_ATTR_INT, KR_BN_AXIS},
  {"momentum", KR_ATTR_FLOAT, KR_BN_MOMENTUM},
  {"epsilon", KR_ATTR_FLOAT, KR_BN_EPSILON},
  {NULL, 0, 0}
};

const char *kr_attr_name(int op, int kind, int slot)
{
  static const char *const ints[KR_MAX_ATTR] = {"i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7"};
  static const char *const floats[KR_MAX_ATTR] = {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"};
  if (op >= 0 && op < KR_OP_COUNT)
    for (const kr_attrname *a = kr_ops[op].attrs; a && a->name; a++)
      if (a->kind == kind && a->slot == slot) return a->name;
  if (slot < 0 || slot >= KR_MAX_ATTR) return "?";
  return kind == KR_ATTR_FLOAT ? floats[slot] : ints[slot];
}

/*
** opdefs_backend.h -- the backend family's ops (keras.backend functions that
** need math of their own), appended to opdefs.h's list: KR_OPDEF(ENUM, "name")
** lines, in the same order as the rows of ops_backend_rows.h.
** Inputs and attributes: see ops_backend.h.
*/
KR_OPDEF(SHAPE, "shape")                       /* (x): x's concrete shape as floats */
KR_OPDEF(FILL, "fill")                         /* (like): attr.shape filled with f0 */
KR_OPDEF(RANDOM_NORMAL, "random_normal")       /* (like): attr.shape, f0 mean, f1 stddev */
KR_OPDEF(RANDOM_UNIFORM, "random_uniform")     /* (like): attr.shape, f0 minval, f1 maxval */
KR_OPDEF(RANDOM_BINOMIAL, "random_binomial")   /* (like): attr.shape, f0 p */
KR_OPDEF(TRUNCATED_NORMAL, "truncated_normal") /* (like): attr.shape, f0 mean, f1 stddev */
KR_OPDEF(CUMSUM, "cumsum")                     /* (x): i0 axis, i1 reverse */
KR_OPDEF(CUMPROD, "cumprod")                   /* (x): i0 axis */
KR_OPDEF(CUMPROD_GRAD, "cumprod_grad")         /* (dy, x): i0 axis */
KR_OPDEF(SELECT, "select")                     /* (cond, a, b): a where cond != 0, else b */
KR_OPDEF(SIN, "sin")
KR_OPDEF(COS, "cos")
KR_OPDEF(REVERSE, "reverse")                   /* (x): i0 mask of the axes to flip */

/*
** ops_backend_rows.h -- the backend family's rows of the op table (included
** inside the kr_ops[] initializer in ops.c), one per KR_OPDEF in
** opdefs_backend.h, in order.
*/
  {.name = "shape", .nin = 1, .shape = kr_bk_shape_shape, .forward = kr_k_shape, .flags = KR_F_NOGRAD},
  {.name = "fill", .nin = 1, .shape = kr_bk_fill_shape, .forward = kr_k_fill, .flags = KR_F_NOGRAD,
   .attrs = kr_fill_attrs},
  {.name = "random_normal", .nin = 1, .shape = kr_bk_fill_shape, .forward = kr_k_random_normal, .flags = KR_F_NOGRAD,
   .attrs = kr_normal_attrs},
  {.name = "random_uniform", .nin = 1, .shape = kr_bk_fill_shape, .forward = kr_k_random_uniform, .flags = KR_F_NOGRAD,
   .attrs = kr_uniform_attrs},
  {.name = "random_binomial", .nin = 1, .shape = kr_bk_fill_shape, .forward = kr_k_random_binomial,
   .flags = KR_F_NOGRAD, .attrs = kr_binomial_attrs},
  {.name = "truncated_normal", .nin = 1, .shape = kr_bk_fill_shape, .forward = kr_k_truncated_normal,
   .flags = KR_F_NOGRAD, .attrs = kr_normal_attrs},
  {.name = "cumsum", .nin = 1, .shape = kr_bk_cum_shape, .forward = kr_k_cumsum, .grad = kr_bk_cumsum_grad,
   .attrs = kr_cumsum_attrs},
  {.name = "cumprod", .nin = 1, .shape = kr_bk_cum_shape, .forward = kr_k_cumprod, .grad = kr_bk_cumprod_grad,
   .attrs = kr_cumprod_attrs},
  {.name = "cumprod_grad", .nin = 2, .shape = kr_bk_second_shape, .forward = kr_k_cumprod_grad},
  {.name = "select", .nin = 3, .shape = kr_bk_select_shape, .forward = kr_k_select, .grad = kr_bk_select_grad},
  {.name = "sin", .nin = 1, .shape = kr_bk_same_shape, .forward = kr_k_sin, .grad = kr_bk_sin_grad,
   .flags = KR_F_ELEMENTWISE},
  {.name = "cos", .nin = 1, .shape = kr_bk_same_shape, .forward = kr_k_cos, .grad = kr_bk_cos_grad,
   .flags = KR_F_ELEMENTWISE},
  {.name = "reverse", .nin = 1, .shape = kr_bk_reverse_shape, .forward = kr_k_reverse, .grad = kr_bk_reverse_grad,
   .attrs = kr_reverse_attrs},

/*
** ops_backend_rows.h -- the backend family's rows of the op table (included
** inside the kr_ops[] initializer in ops.c), one per KR_OPDEF in
** opdefs_backend.h, in order.
*/
  {"shape", 1, kr_bk_shape_shape, kr_k_shape, NULL, NULL, NULL, KR_F_NOGRAD},
  {"fill", 1, kr_bk_fill_shape, kr_k_fill, NULL, NULL, NULL, KR_F_NOGRAD},
  {"random_normal", 1, kr_bk_fill_shape, kr_k_random_normal, NULL, NULL, NULL, KR_F_NOGRAD},
  {"random_uniform", 1, kr_bk_fill_shape, kr_k_random_uniform, NULL, NULL, NULL, KR_F_NOGRAD},
  {"random_binomial", 1, kr_bk_fill_shape, kr_k_random_binomial, NULL, NULL, NULL, KR_F_NOGRAD},
  {"truncated_normal", 1, kr_bk_fill_shape, kr_k_truncated_normal, NULL, NULL, NULL, KR_F_NOGRAD},
  {"cumsum", 1, kr_bk_cum_shape, kr_k_cumsum, kr_bk_cumsum_grad, NULL, NULL, 0},
  {"cumprod", 1, kr_bk_cum_shape, kr_k_cumprod, kr_bk_cumprod_grad, NULL, NULL, 0},
  {"cumprod_grad", 2, kr_bk_second_shape, kr_k_cumprod_grad, NULL, NULL, NULL, 0},
  {"select", 3, kr_bk_select_shape, kr_k_select, kr_bk_select_grad, NULL, NULL, 0},
  {"sin", 1, kr_bk_same_shape, kr_k_sin, kr_bk_sin_grad, NULL, NULL, KR_F_ELEMENTWISE},
  {"cos", 1, kr_bk_same_shape, kr_k_cos, kr_bk_cos_grad, NULL, NULL, KR_F_ELEMENTWISE},
  {"reverse", 1, kr_bk_reverse_shape, kr_k_reverse, kr_bk_reverse_grad, NULL, NULL, 0},

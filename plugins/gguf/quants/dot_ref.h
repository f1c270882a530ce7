/* dot_ref.h — scalar reference dot products of each ggml weight type with its partner.
 *
 * Purpose: declarations of the functions in dot_ref.c. Each computes the dot product of n
 * elements (n a multiple of both block sizes) of a weight row x and an activation row y that
 * was quantized to the weight type's vec_dot_type (see qf_gguf_type_info.vec_dot_type),
 * following ggml's generic C kernels: integer sums inside a block, float scaling in ggml's
 * order, a float accumulator across blocks (double for the F32/F16/BF16 kernels).
 */
#ifndef QF_GGUF_DOT_REF_H
#define QF_GGUF_DOT_REF_H

typedef float (*qf_gguf_dot_fn)(int n, const void *x, const void *y);

float qf_gguf_dot_f32(int n, const void *x, const void *y);
float qf_gguf_dot_f16(int n, const void *x, const void *y);
float qf_gguf_dot_bf16(int n, const void *x, const void *y);
float qf_gguf_dot_q4_0_q8_0(int n, const void *x, const void *y);
float qf_gguf_dot_q4_1_q8_1(int n, const void *x, const void *y);
float qf_gguf_dot_q5_0_q8_0(int n, const void *x, const void *y);
float qf_gguf_dot_q5_1_q8_1(int n, const void *x, const void *y);
float qf_gguf_dot_q8_0_q8_0(int n, const void *x, const void *y);
float qf_gguf_dot_mxfp4_q8_0(int n, const void *x, const void *y);
float qf_gguf_dot_iq4_nl_q8_0(int n, const void *x, const void *y);
float qf_gguf_dot_q2_K_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_q3_K_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_q4_K_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_q5_K_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_q6_K_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_iq4_xs_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_tq1_0_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_tq2_0_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_iq2_xxs_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_iq2_xs_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_iq2_s_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_iq3_xxs_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_iq3_s_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_iq1_s_q8_K(int n, const void *x, const void *y);
float qf_gguf_dot_iq1_m_q8_K(int n, const void *x, const void *y);

#endif /* QF_GGUF_DOT_REF_H */

/*
 * Malformed AWQ checkpoints are rejected cleanly by qf_awq_validate_module
 * (the check postprocess_model, dequantize and linear_forward run): each
 * case returns QF_ERR_FORMAT (or QF_ERR_UNSUPPORTED for bits != 4) with a
 * message naming the module and the tensor. A well-formed module passes.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "awq.h"

/* A valid GEMM module: N = 16, K = 64, G = 32. */
typedef struct mod {
  int32_t qw[64 * 2];
  int32_t qz[2 * 2];
  uint16_t sc[2 * 16];
  uint16_t bias[16];
  int64_t s_qw[2], s_qz[2], s_sc[2], s_b[1];
  DLTensor qweight, qzeros, scales, b;
} mod;

static DLTensor tensor(void *data, uint8_t code, uint8_t bits, int ndim, int64_t *shape) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.ndim = ndim;
  t.dtype.code = code;
  t.dtype.bits = bits;
  t.dtype.lanes = 1;
  t.shape = shape;
  return t;
}

static void make(mod *m) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < 32; i++) m->sc[i] = 0x3c00; /* 1.0 */
  m->s_qw[0] = 64, m->s_qw[1] = 2;
  m->s_qz[0] = 2, m->s_qz[1] = 2;
  m->s_sc[0] = 2, m->s_sc[1] = 16;
  m->s_b[0] = 16;
  m->qweight = tensor(m->qw, kDLInt, 32, 2, m->s_qw);
  m->qzeros = tensor(m->qz, kDLInt, 32, 2, m->s_qz);
  m->scales = tensor(m->sc, kDLFloat, 16, 2, m->s_sc);
  m->b = tensor(m->bias, kDLFloat, 16, 1, m->s_b);
}

static qf_status check(mod *m, int64_t group, char *msg) {
  return qf_awq_validate_module(QF_AWQ_LAYOUT_GEMM, "model.layers.0.mlp.up_proj.", &m->qweight,
                                &m->qzeros, &m->scales, &m->b, 4, group, NULL, msg, 512);
}

#define EXPECT_REJECT(m, group, code, needle)                                         \
  do {                                                                                \
    char msg[512] = "";                                                               \
    cr_expect_eq(check(m, group, msg), code, "%s", msg);                              \
    cr_expect(strstr(msg, "model.layers.0.mlp.up_proj.") != NULL, "no module: %s", msg); \
    cr_expect(strstr(msg, needle) != NULL, "expected '%s' in: %s", needle, msg);       \
  } while (0)

Test(awq_validate, good_module) {
  mod m;
  make(&m);
  char msg[512] = "";
  qf_awq_module_shape sh;
  cr_assert_eq(qf_awq_validate_module(QF_AWQ_LAYOUT_GEMM, "p.", &m.qweight, &m.qzeros, &m.scales,
                                      &m.b, 4, 32, &sh, msg, sizeof msg),
               QF_OK, "%s", msg);
  cr_assert(sh.n == 16 && sh.k == 64 && sh.g == 32 && sh.groups == 2);
  cr_assert_eq(qf_awq_validate_module(QF_AWQ_LAYOUT_GEMM, "p.", &m.qweight, &m.qzeros, &m.scales,
                                      NULL, 4, 32, &sh, msg, sizeof msg),
               QF_OK);
}

Test(awq_validate, malformed_modules) {
  mod m;
  /* 1. missing qzeros */
  make(&m);
  {
    char msg[512] = "";
    cr_expect_eq(qf_awq_validate_module(QF_AWQ_LAYOUT_GEMM, "model.layers.0.mlp.up_proj.",
                                        &m.qweight, NULL, &m.scales, NULL, 4, 32, NULL, msg, 512),
                 QF_ERR_FORMAT);
    cr_expect(strstr(msg, "qzeros: missing"), "%s", msg);
  }
  /* 2. qweight stored as float32 */
  make(&m);
  m.qweight.dtype.code = kDLFloat;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "qweight: expected int32");
  /* 3. qzeros stored as int8 */
  make(&m);
  m.qzeros.dtype.bits = 8;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "qzeros: expected int32");
  /* 4. scales stored as int32 */
  make(&m);
  m.scales.dtype.code = kDLInt;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "scales: expected float16");
  /* 5. qweight 1-D */
  make(&m);
  m.qweight.ndim = 1;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "qweight: expected a 2-D tensor");
  /* 6. qzeros columns differ from qweight (N/8) */
  make(&m);
  m.s_qz[1] = 1;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "qzeros: expected 2 columns");
  /* 7. scales columns are not 8 x qweight columns */
  make(&m);
  m.s_sc[1] = 8;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "scales: expected 16 columns");
  /* 8. groups in the file disagree with the config's group_size */
  make(&m);
  EXPECT_REJECT(&m, 64, QF_ERR_FORMAT, "config says 64");
  /* 9. qzeros rows disagree with scales rows */
  make(&m);
  m.s_qz[0] = 1;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "qzeros: expected 2 rows");
  /* 10. groups do not divide in_features */
  make(&m);
  m.s_sc[0] = 3;
  m.s_qz[0] = 3;
  EXPECT_REJECT(&m, -1, QF_ERR_FORMAT, "do not divide");
  /* 11. NaN scale */
  make(&m);
  m.sc[5] = 0x7e00;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "inf or NaN");
  /* 12. infinite scale (float32 scales) */
  make(&m);
  {
    float f[32];
    for (int i = 0; i < 32; i++) f[i] = i == 7 ? 1.0f / 0.0f : 1.0f;
    m.scales = tensor(f, kDLFloat, 32, 2, m.s_sc);
    EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "inf or NaN");
  }
  /* 13. bias of the wrong length */
  make(&m);
  m.s_b[0] = 15;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "bias: expected a float vector of 16");
  /* 14. non-compact strides */
  make(&m);
  {
    int64_t strides[2] = {1, 64};
    m.qweight.strides = strides;
    EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "compact");
  }
  /* 15. empty shape */
  make(&m);
  m.s_qw[0] = 0;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "empty shape");
  /* 16. no data */
  make(&m);
  m.qzeros.data = NULL;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "no data");
  /* 17. group_size -1 but several groups */
  make(&m);
  EXPECT_REJECT(&m, -1, QF_ERR_FORMAT, "one group");
  /* 18. implausible shape */
  make(&m);
  m.s_qw[1] = INT64_C(1) << 40;
  EXPECT_REJECT(&m, 32, QF_ERR_FORMAT, "implausible");
  /* 19. bits != 4 */
  make(&m);
  {
    char msg[512] = "";
    cr_expect_eq(qf_awq_validate_module(QF_AWQ_LAYOUT_GEMM, "x.", &m.qweight, &m.qzeros,
                                        &m.scales, NULL, 8, 32, NULL, msg, 512),
                 QF_ERR_UNSUPPORTED);
  }
}

Test(awq_validate, gemv_layout) {
  /* N = 16, K = 256, G = 32: qweight [16, 32], qzeros [16, 4], scales [16, 32] */
  static int32_t qw[16 * 32], qz[16 * 4];
  static uint16_t sc[16 * 32];
  int64_t s_qw[2] = {16, 32}, s_qz[2] = {16, 4}, s_sc[2] = {16, 32};
  DLTensor a = {0}, b = {0}, c = {0};
  a.data = qw, a.ndim = 2, a.shape = s_qw, a.dtype.code = kDLInt, a.dtype.bits = 32, a.dtype.lanes = 1;
  b = a, b.data = qz, b.shape = s_qz;
  c = a, c.data = sc, c.shape = s_sc, c.dtype.code = kDLFloat, c.dtype.bits = 16;
  char msg[512] = "";
  qf_awq_module_shape sh;
  cr_assert_eq(qf_awq_validate_module(QF_AWQ_LAYOUT_GEMV, "m.", &a, &b, &c, NULL, 4, 32, &sh, msg,
                                      sizeof msg),
               QF_OK, "%s", msg);
  cr_assert(sh.n == 16 && sh.k == 256 && sh.groups == 8);
  s_qz[1] = 2; /* zeros width must be 4 for G = 32 */
  s_sc[1] = 16;
  cr_assert_eq(qf_awq_validate_module(QF_AWQ_LAYOUT_GEMV, "m.", &a, &b, &c, NULL, 4, 32, &sh, msg,
                                      sizeof msg),
               QF_ERR_FORMAT);
  cr_assert(strstr(msg, "qzeros: expected 4 columns"), "%s", msg);
}

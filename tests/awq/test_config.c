/*
 * AwqConfig JSON: defaults, AutoAWQ's alternative key names, version
 * handling (lower-casing, layouts, unsupported versions), type errors
 * naming the key, and the exact to_dict() output.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"

Test(awq_config, defaults_and_output) {
  qf_awq_config c;
  char msg[256];
  cr_assert_eq(qf_awq_config_parse("{}", &c, msg, sizeof msg), QF_OK);
  cr_assert(c.bits == 4 && c.group_size == 128 && c.zero_point && c.layout == QF_AWQ_LAYOUT_GEMM);
  char *j = qf_awq_config_to_json(&c, NULL, 0);
  cr_assert_str_eq(j, "{\"quant_method\":\"awq\",\"zero_point\":true,\"group_size\":128,"
                      "\"bits\":4,\"version\":\"gemm\",\"modules_to_not_convert\":null}");
  free(j);
  qf_awq_config_free(&c);
}

Test(awq_config, names_and_versions) {
  qf_awq_config c;
  char msg[256];
  cr_assert_eq(qf_awq_config_parse("{\"w_bit\":4,\"q_group_size\":64,\"version\":\"GEMV\","
                                   "\"modules_to_not_convert\":[\"visual\",\"gate\"]}",
                                   &c, msg, sizeof msg),
               QF_OK, "%s", msg);
  cr_assert(c.group_size == 64 && c.layout == QF_AWQ_LAYOUT_GEMV);
  cr_assert_str_eq(c.version, "gemv");
  cr_assert(qf_awq_config_skips(&c, "model.layers.0.mlp.gate"));
  cr_assert(!qf_awq_config_skips(&c, "model.layers.0.mlp.up_proj"));
  const char *extra[1] = {"model.odd"};
  char *j = qf_awq_config_to_json(&c, extra, 1);
  cr_assert(strstr(j, "\"modules_to_not_convert\":[\"visual\",\"gate\",\"model.odd\"]"), "%s", j);
  free(j);
  qf_awq_config_free(&c);
  cr_assert_eq(qf_awq_config_parse("{\"quant_method\":\"awq\",\"version\":\"exllama\",\"group_size\":-1}",
                                   &c, msg, sizeof msg),
               QF_OK);
  cr_assert(c.layout == QF_AWQ_LAYOUT_GEMM && c.group_size == -1);
  qf_awq_config_free(&c);
  cr_assert_eq(qf_awq_config_parse("{\"format\":\"gemv\"}", &c, msg, sizeof msg), QF_OK);
  cr_assert(c.layout == QF_AWQ_LAYOUT_GEMV);
  qf_awq_config_free(&c);
}

Test(awq_config, rejected) {
  struct {
    const char *json;
    qf_status code;
    const char *needle;
  } cases[] = {
      {"[1]", QF_ERR_INVALID_ARGUMENT, "JSON object"},
      {"{\"bits\":", QF_ERR_INVALID_ARGUMENT, "invalid JSON"},
      {"{\"bits\":8}", QF_ERR_UNSUPPORTED, "bits"},
      {"{\"bits\":\"4\"}", QF_ERR_INVALID_ARGUMENT, "bits: expected an integer"},
      {"{\"group_size\":0}", QF_ERR_INVALID_ARGUMENT, "group_size"},
      {"{\"zero_point\":1}", QF_ERR_INVALID_ARGUMENT, "zero_point: expected true or false"},
      {"{\"zero_point\":false}", QF_ERR_UNSUPPORTED, "zero_point"},
      {"{\"version\":\"marlin\"}", QF_ERR_UNSUPPORTED, "marlin"},
      {"{\"version\":\"gemv_fast\"}", QF_ERR_UNSUPPORTED, "gemv_fast"},
      {"{\"version\":\"fancy\"}", QF_ERR_INVALID_ARGUMENT, "unknown AWQ version"},
      {"{\"version\":3}", QF_ERR_INVALID_ARGUMENT, "version: expected a string"},
      {"{\"quant_method\":\"gptq\"}", QF_ERR_INVALID_ARGUMENT, "quant_method"},
      {"{\"modules_to_not_convert\":\"lm_head\"}", QF_ERR_INVALID_ARGUMENT, "modules_to_not_convert"},
      {"{\"modules_to_not_convert\":[1]}", QF_ERR_INVALID_ARGUMENT, "modules_to_not_convert[0]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    qf_awq_config c;
    char msg[256] = "";
    cr_expect_eq(qf_awq_config_parse(cases[i].json, &c, msg, sizeof msg), cases[i].code, "%s",
                 cases[i].json);
    cr_expect(strstr(msg, cases[i].needle), "%s -> %s", cases[i].json, msg);
  }
}

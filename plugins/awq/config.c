/*
 * AwqConfig (the `quantization_config` object of an AWQ checkpoint) read
 * from and written to JSON with jansson. Reads transformers' names (bits,
 * group_size, zero_point, version, modules_to_not_convert) and AutoAWQ's
 * internal ones (w_bit, q_group_size), lower-cases `version` (v5's `format`
 * is honoured when `version` is absent) and maps it to the on-disk layout:
 * gemm / exllama / ipex store the GEMM layout, gemv the GEMV layout;
 * gemv_fast and marlin are valid AWQ versions this plugin does not serve
 * (QF_ERR_UNSUPPORTED). Unknown keys are ignored as transformers does.
 * Writes exactly AutoAWQ's dictionary:
 * {"quant_method":"awq","zero_point":…,"group_size":…,"bits":…,
 *  "version":…,"modules_to_not_convert":…}.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "awq.h"

void qf_awq_config_free(qf_awq_config *cfg) {
  if (!cfg) return;
  for (size_t i = 0; i < cfg->n_not_convert; i++) free(cfg->not_convert[i]);
  free(cfg->not_convert);
  cfg->not_convert = NULL;
  cfg->n_not_convert = 0;
}

/* An integer key under either of two names; absent keeps *out. */
static qf_status get_int(json_t *root, const char *name, const char *alt,
                         int64_t *out, char *msg, size_t msz) {
  json_t *v = json_object_get(root, name);
  const char *used = name;
  if (!v && alt) {
    v = json_object_get(root, alt);
    used = alt;
  }
  if (!v || json_is_null(v)) return QF_OK;
  if (!json_is_integer(v))
    return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                    "quantization_config.%s: expected an integer", used);
  *out = (int64_t)json_integer_value(v);
  return QF_OK;
}

static qf_status get_bool(json_t *root, const char *name, int *out, char *msg,
                          size_t msz) {
  json_t *v = json_object_get(root, name);
  if (!v || json_is_null(v)) return QF_OK;
  if (!json_is_boolean(v))
    return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                    "quantization_config.%s: expected true or false", name);
  *out = json_is_true(v);
  return QF_OK;
}

static qf_status parse_version(json_t *root, qf_awq_config *cfg, char *msg,
                               size_t msz) {
  const char *key = "version";
  json_t *v = json_object_get(root, key);
  if (!v || json_is_null(v)) {
    key = "format";
    v = json_object_get(root, key);
  }
  if (!v || json_is_null(v)) return QF_OK; /* default gemm */
  if (!json_is_string(v))
    return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                    "quantization_config.%s: expected a string (gemm, gemv, exllama, ipex)", key);
  const char *s = json_string_value(v);
  char low[sizeof cfg->version];
  size_t n = strlen(s);
  if (n >= sizeof low)
    return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                    "quantization_config.%s: unknown AWQ version \"%.32s\"", key, s);
  for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)s[i]);
  if (!strcmp(low, "gemm") || !strcmp(low, "exllama") || !strcmp(low, "ipex")) {
    cfg->layout = QF_AWQ_LAYOUT_GEMM;
  } else if (!strcmp(low, "gemv")) {
    cfg->layout = QF_AWQ_LAYOUT_GEMV;
  } else if (!strcmp(low, "gemv_fast") || !strcmp(low, "marlin") ||
             !strcmp(low, "llm-awq")) {
    return qf__awq_fail(msg, msz, QF_ERR_UNSUPPORTED,
                    "quantization_config.%s: \"%s\" is not supported (use gemm or gemv)", key, low);
  } else {
    return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                    "quantization_config.%s: unknown AWQ version \"%s\" (expected gemm, gemv, exllama or ipex)",
                    key, low);
  }
  memcpy(cfg->version, low, n + 1);
  return QF_OK;
}

static qf_status parse_not_convert(json_t *root, qf_awq_config *cfg,
                                   char *msg, size_t msz) {
  json_t *v = json_object_get(root, "modules_to_not_convert");
  if (!v || json_is_null(v)) return QF_OK;
  if (!json_is_array(v))
    return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                    "quantization_config.modules_to_not_convert: expected null or a list of strings");
  const size_t n = json_array_size(v);
  cfg->not_convert_is_null = 0;
  if (n == 0) return QF_OK;
  cfg->not_convert = calloc(n, sizeof *cfg->not_convert);
  if (!cfg->not_convert)
    return qf__awq_fail(msg, msz, QF_ERR_NO_MEMORY, "out of memory");
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(v, i);
    if (!json_is_string(e))
      return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                      "quantization_config.modules_to_not_convert[%zu]: expected a string", i);
    cfg->not_convert[i] = strdup(json_string_value(e));
    if (!cfg->not_convert[i])
      return qf__awq_fail(msg, msz, QF_ERR_NO_MEMORY, "out of memory");
    cfg->n_not_convert = i + 1;
  }
  return QF_OK;
}

/* quant_method compared ASCII case-insensitively ("awq", "AWQ"). */
static int is_awq(const char *s) {
  return s && tolower((unsigned char)s[0]) == 'a' && tolower((unsigned char)s[1]) == 'w' &&
         tolower((unsigned char)s[2]) == 'q' && s[3] == '\0';
}

static qf_status parse_object(json_t *root, qf_awq_config *cfg, char *msg,
                              size_t msz) {
  json_t *qm = json_object_get(root, "quant_method");
  if (qm && !json_is_null(qm)) {
    if (!json_is_string(qm) || !is_awq(json_string_value(qm)))
      return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                      "quantization_config.quant_method: expected \"awq\"");
  }
  int64_t bits = 4, group = 128;
  qf_status st;
  if ((st = get_int(root, "bits", "w_bit", &bits, msg, msz)) != QF_OK) return st;
  if ((st = get_int(root, "group_size", "q_group_size", &group, msg, msz)) != QF_OK) return st;
  if (bits != 4)
    return qf__awq_fail(msg, msz, QF_ERR_UNSUPPORTED,
                    "quantization_config.bits: AWQ supports 4 bits only (got %lld)", (long long)bits);
  if (group == 0 || group < -1 || group > (INT64_C(1) << 30))
    return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                    "quantization_config.group_size: expected a positive integer or -1 (got %lld)",
                    (long long)group);
  cfg->bits = (int)bits;
  cfg->group_size = group;
  if ((st = get_bool(root, "zero_point", &cfg->zero_point, msg, msz)) != QF_OK) return st;
  if ((st = get_bool(root, "duo_scaling", &cfg->duo_scaling, msg, msz)) != QF_OK) return st;
  if ((st = get_bool(root, "apply_clip", &cfg->apply_clip, msg, msz)) != QF_OK) return st;
  if ((st = parse_version(root, cfg, msg, msz)) != QF_OK) return st;
  if (!cfg->zero_point)
    return qf__awq_fail(msg, msz, QF_ERR_UNSUPPORTED,
                    "quantization_config.zero_point: false needs the marlin version; the %s layout stores zero points",
                    cfg->version);
  return parse_not_convert(root, cfg, msg, msz);
}

qf_status qf_awq_config_parse(const char *json, qf_awq_config *cfg, char *msg,
                              size_t msz) {
  if (!cfg)
    return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT, "no config to fill");
  memset(cfg, 0, sizeof *cfg);
  cfg->bits = 4;
  cfg->group_size = 128;
  cfg->zero_point = 1;
  snprintf(cfg->version, sizeof cfg->version, "gemm");
  cfg->layout = QF_AWQ_LAYOUT_GEMM;
  cfg->not_convert_is_null = 1;
  cfg->duo_scaling = 1;
  cfg->apply_clip = 1;
  if (!json || !*json) return QF_OK; /* all defaults */
  json_error_t jerr;
  json_t *root = json_loads(json, 0, &jerr);
  if (!root)
    return qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT,
                    "quantization_config: invalid JSON at line %d column %d: %s", jerr.line,
                    jerr.column, jerr.text);
  qf_status st;
  if (!json_is_object(root))
    st = qf__awq_fail(msg, msz, QF_ERR_INVALID_ARGUMENT, "quantization_config: expected a JSON object");
  else
    st = parse_object(root, cfg, msg, msz);
  json_decref(root);
  if (st != QF_OK) qf_awq_config_free(cfg);
  return st;
}

char *qf_awq_config_to_json(const qf_awq_config *cfg, const char *const *extra,
                            size_t n_extra) {
  json_t *o = json_object();
  if (!o) return NULL;
  int bad = 0;
  bad |= json_object_set_new(o, "quant_method", json_string("awq"));
  bad |= json_object_set_new(o, "zero_point", json_boolean(cfg->zero_point));
  bad |= json_object_set_new(o, "group_size", json_integer((json_int_t)cfg->group_size));
  bad |= json_object_set_new(o, "bits", json_integer(cfg->bits));
  bad |= json_object_set_new(o, "version", json_string(cfg->version));
  if (cfg->not_convert_is_null && n_extra == 0) {
    bad |= json_object_set_new(o, "modules_to_not_convert", json_null());
  } else {
    json_t *a = json_array();
    if (!a) bad = 1;
    for (size_t i = 0; a && i < cfg->n_not_convert; i++)
      bad |= json_array_append_new(a, json_string(cfg->not_convert[i]));
    for (size_t i = 0; a && i < n_extra; i++)
      bad |= json_array_append_new(a, json_string(extra[i]));
    if (a) bad |= json_object_set_new(o, "modules_to_not_convert", a);
  }
  char *text = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!text) return NULL;
  /* hand back plain malloc memory whatever allocator jansson was given */
  char *copy = strdup(text);
  json_free_t jfree = NULL;
  json_get_alloc_funcs(NULL, &jfree);
  if (jfree) jfree(text);
  return copy;
}

int qf_awq_config_skips(const qf_awq_config *cfg, const char *module) {
  if (!cfg || !module) return 0;
  for (size_t i = 0; i < cfg->n_not_convert; i++)
    if (cfg->not_convert[i][0] && strstr(module, cfg->not_convert[i])) return 1;
  return 0;
}

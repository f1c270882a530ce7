/*
 * GPTQConfig as JSON (jansson): parsing the `quantization_config` object of
 * config.json or a user's --config the way transformers reads it (unknown
 * keys ignored, `bits` required, every known key type-checked with a
 * message naming it), with AutoGPTQ's synonyms (w_bit, q_group_size,
 * is_marlin_format), transformers v5's `format`, and GPTQModel's `meta`
 * block as a fallback for the algorithm fields; writing the minimal
 * quantization_config that transformers and vLLM both accept (plus
 * checkpoint_format) and AutoGPTQ's standalone quantize_config.json.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gptq.h"
#include "qforge/plugin_util.h"

#define OP "create"

void qf_gptq_config_free(qf_gptq_config *cfg) {
  if (!cfg) return;
  free(cfg->block_name_to_quantize);
  for (size_t i = 0; i < cfg->n_skip; i++) free(cfg->skip[i]);
  for (size_t i = 0; i < cfg->n_inblock; i++) free(cfg->inblock[i]);
  memset(cfg, 0, sizeof *cfg);
}

static void defaults(qf_gptq_config *c) {
  memset(c, 0, sizeof *c);
  c->bits = 0;
  c->group_size = 128;
  c->damp_percent = 0.01;
  c->damp_auto_increment = 0.01;
  c->desc_act = 0;
  c->sym = 1;
  c->true_sequential = 1;
  c->static_groups = 0;
  c->lm_head = 0;
  c->v2 = 0;
  c->mse = 0.0;
  c->blocksize = 128;
}

/* Look a key up in the object, then (for algorithm fields) in "meta". */
static json_t *get(json_t *root, const char *key, int meta_too) {
  json_t *v = json_object_get(root, key);
  if (!v && meta_too) {
    json_t *m = json_object_get(root, "meta");
    if (json_is_object(m)) v = json_object_get(m, key);
  }
  return v;
}

static qf_status get_int(json_t *root, const char *key, int meta, int *out,
                         int *found, qf_error *err) {
  json_t *v = get(root, key, meta);
  if (found) *found = 0;
  if (!v || json_is_null(v)) return QF_OK;
  double d;
  if (json_is_integer(v)) {
    d = (double)json_integer_value(v);
  } else if (json_is_real(v) && json_real_value(v) == (double)(int)json_real_value(v)) {
    d = json_real_value(v);
  } else {
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.%s must be an integer", key);
  }
  if (d < -2147483647.0 || d > 2147483647.0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.%s = %g is out of range", key, d);
  *out = (int)d;
  if (found) *found = 1;
  return QF_OK;
}

static qf_status get_num(json_t *root, const char *key, int meta, double *out,
                         qf_error *err) {
  json_t *v = get(root, key, meta);
  if (!v || json_is_null(v)) return QF_OK;
  if (!json_is_number(v))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.%s must be a number", key);
  *out = json_number_value(v);
  return QF_OK;
}

static qf_status get_bool(json_t *root, const char *key, int meta, int *out,
                          qf_error *err) {
  json_t *v = get(root, key, meta);
  if (!v || json_is_null(v)) return QF_OK;
  if (json_is_boolean(v)) {
    *out = json_is_true(v);
  } else if (json_is_integer(v) && (json_integer_value(v) == 0 ||
                                    json_integer_value(v) == 1)) {
    *out = (int)json_integer_value(v);
  } else {
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.%s must be true or false", key);
  }
  return QF_OK;
}

static qf_status add_strings(json_t *arr, const char *key, char **dst,
                             size_t *n, qf_error *err) {
  size_t i;
  json_t *s;
  json_array_foreach(arr, i, s) {
    if (json_is_array(s)) { /* modules_in_block_to_quantize: list of lists */
      qf_status st = add_strings(s, key, dst, n, err);
      if (st != QF_OK) return st;
      continue;
    }
    if (!json_is_string(s))
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.%s must list strings", key);
    if (*n >= QF_GPTQ_MAX_SKIP)
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.%s lists more than %d names", key,
                     QF_GPTQ_MAX_SKIP);
    dst[*n] = strdup(json_string_value(s));
    if (!dst[*n])
      return qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, OP, "no memory");
    (*n)++;
  }
  return QF_OK;
}

static qf_status parse_obj(json_t *root, qf_gptq_config *c, qf_error *err) {
  qf_status st;
  json_t *v;
  int found = 0;
  v = json_object_get(root, "quant_method");
  if (v && !json_is_null(v)) {
    if (!json_is_string(v))
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.quant_method must be a string");
    if (strcasecmp(json_string_value(v), "gptq") != 0)
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.quant_method is '%s'; this plugin "
                     "serves 'gptq'", json_string_value(v));
  }
  if ((st = get_int(root, "bits", 0, &c->bits, &found, err))) return st;
  if (!found && (st = get_int(root, "w_bit", 0, &c->bits, &found, err)))
    return st;
  if (!found)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.bits is required (2, 3, 4 or 8)");
  if (c->bits != 2 && c->bits != 3 && c->bits != 4 && c->bits != 8)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.bits = %d: expected 2, 3, 4 or 8",
                   c->bits);
  if ((st = get_int(root, "group_size", 0, &c->group_size, &found, err)))
    return st;
  if (!found &&
      (st = get_int(root, "q_group_size", 0, &c->group_size, &found, err)))
    return st;
  if (c->group_size != -1 && c->group_size <= 0)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.group_size = %d: expected -1 or > 0",
                   c->group_size);
  if ((st = get_num(root, "damp_percent", 1, &c->damp_percent, err))) return st;
  if (!(c->damp_percent > 0.0 && c->damp_percent < 1.0))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.damp_percent = %g: expected a value "
                   "in (0, 1)", c->damp_percent);
  if ((st = get_num(root, "damp_auto_increment", 1, &c->damp_auto_increment,
                    err)))
    return st;
  if (!(c->damp_auto_increment >= 0.0 && c->damp_auto_increment < 1.0))
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.damp_auto_increment = %g: expected "
                   "0 <= x < 1", c->damp_auto_increment);
  if ((st = get_bool(root, "desc_act", 0, &c->desc_act, err))) return st;
  if ((st = get_bool(root, "sym", 0, &c->sym, err))) return st;
  if ((st = get_bool(root, "true_sequential", 1, &c->true_sequential, err)))
    return st;
  if ((st = get_bool(root, "static_groups", 1, &c->static_groups, err)))
    return st;
  if ((st = get_bool(root, "lm_head", 0, &c->lm_head, err))) return st;
  if ((st = get_int(root, "blocksize", 0, &c->blocksize, NULL, err))) return st;
  if (c->blocksize <= 0 || c->blocksize > 4096)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.blocksize = %d: expected 1..4096",
                   c->blocksize);
  v = get(root, "mse", 1);
  if (v && !json_is_null(v)) {
    if (json_is_boolean(v))
      c->mse = json_is_true(v) ? 2.4 : 0.0;
    else if (json_is_number(v) && json_number_value(v) >= 0.0 &&
             json_number_value(v) < 100.0)
      c->mse = json_number_value(v);
    else
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.mse must be a boolean or a norm "
                     ">= 0 (GPTQModel: 0 = off)");
  }
  /* checkpoint format: checkpoint_format wins over v5's format */
  const char *fmt = NULL;
  v = json_object_get(root, "format");
  if (v && !json_is_null(v)) {
    if (!json_is_string(v))
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.format must be a string");
    fmt = json_string_value(v);
  }
  v = json_object_get(root, "checkpoint_format");
  if (v && !json_is_null(v)) {
    if (!json_is_string(v))
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.checkpoint_format must be a string");
    fmt = json_string_value(v);
  }
  int marlin = 0;
  if ((st = get_bool(root, "is_marlin_format", 0, &marlin, err))) return st;
  if (marlin) fmt = "marlin";
  if (fmt) {
    if (strcasecmp(fmt, "gptq") == 0)
      c->v2 = 0;
    else if (strcasecmp(fmt, "gptq_v2") == 0)
      c->v2 = 1;
    else
      return qf_fail(err, QF_ERR_UNSUPPORTED, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.checkpoint_format = '%s': this "
                     "plugin reads and writes 'gptq' (v1) and 'gptq_v2'", fmt);
  }
  v = json_object_get(root, "pack_dtype");
  if (v && !json_is_null(v) &&
      (!json_is_string(v) || strcasecmp(json_string_value(v), "int32") != 0))
    return qf_fail(err, QF_ERR_UNSUPPORTED, QF_GPTQ_PLUGIN, OP,
                   "quantization_config.pack_dtype must be \"int32\"");
  v = json_object_get(root, "block_name_to_quantize");
  if (v && !json_is_null(v)) {
    if (!json_is_string(v))
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.block_name_to_quantize must be a "
                     "string");
    c->block_name_to_quantize = strdup(json_string_value(v));
    if (!c->block_name_to_quantize)
      return qf_fail(err, QF_ERR_NO_MEMORY, QF_GPTQ_PLUGIN, OP, "no memory");
  }
  static const char *lists[2] = {"modules_to_not_convert",
                                 "modules_in_block_to_quantize"};
  for (int li = 0; li < 2; li++) {
    v = json_object_get(root, lists[li]);
    if (!v || json_is_null(v)) continue;
    if (!json_is_array(v))
      return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                     "quantization_config.%s must be a list", lists[li]);
    st = li == 0 ? add_strings(v, lists[li], c->skip, &c->n_skip, err)
                 : add_strings(v, lists[li], c->inblock, &c->n_inblock, err);
    if (st != QF_OK) return st;
  }
  return QF_OK;
}

qf_status qf_gptq_config_parse(const char *json, qf_gptq_config *cfg,
                               qf_error *err) {
  defaults(cfg);
  if (!json)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "no quantization_config given (bits is required)");
  json_error_t je;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                   "quantization_config is not valid JSON: %s (line %d, "
                   "column %d)", je.text, je.line, je.column);
  qf_status st;
  if (!json_is_object(root))
    st = qf_fail(err, QF_ERR_INVALID_ARGUMENT, QF_GPTQ_PLUGIN, OP,
                 "quantization_config must be a JSON object");
  else
    st = parse_obj(root, cfg, err);
  json_decref(root);
  if (st != QF_OK) qf_gptq_config_free(cfg);
  return st;
}

static char *dump(json_t *o) {
  if (!o) return NULL;
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}

char *qf_gptq_config_to_json(const qf_gptq_config *c) {
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "quant_method", json_string("gptq"));
  json_object_set_new(o, "bits", json_integer(c->bits));
  json_object_set_new(o, "group_size", json_integer(c->group_size));
  json_object_set_new(o, "desc_act", json_boolean(c->desc_act));
  json_object_set_new(o, "sym", json_boolean(c->sym));
  json_object_set_new(o, "damp_percent", json_real(c->damp_percent));
  json_object_set_new(o, "true_sequential", json_boolean(c->true_sequential));
  json_object_set_new(o, "checkpoint_format",
                      json_string(c->v2 ? "gptq_v2" : "gptq"));
  json_object_set_new(o, "static_groups", json_boolean(c->static_groups));
  json_object_set_new(o, "lm_head", json_boolean(c->lm_head));
  if (c->block_name_to_quantize)
    json_object_set_new(o, "block_name_to_quantize",
                        json_string(c->block_name_to_quantize));
  if (c->n_inblock) {
    /* transformers wants a list of lists; one list keeps every name */
    json_t *inner = json_array();
    for (size_t i = 0; i < c->n_inblock; i++)
      json_array_append_new(inner, json_string(c->inblock[i]));
    json_t *outer = json_array();
    json_array_append_new(outer, inner);
    json_object_set_new(o, "modules_in_block_to_quantize", outer);
  }
  return dump(o);
}

char *qf_gptq_config_quantize_config_json(const qf_gptq_config *c) {
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "bits", json_integer(c->bits));
  json_object_set_new(o, "group_size", json_integer(c->group_size));
  json_object_set_new(o, "damp_percent", json_real(c->damp_percent));
  json_object_set_new(o, "desc_act", json_boolean(c->desc_act));
  json_object_set_new(o, "static_groups", json_boolean(c->static_groups));
  json_object_set_new(o, "sym", json_boolean(c->sym));
  json_object_set_new(o, "true_sequential", json_boolean(c->true_sequential));
  json_object_set_new(o, "model_name_or_path", json_null());
  json_object_set_new(o, "model_file_base_name", json_null());
  json_object_set_new(o, "quant_method", json_string("gptq"));
  json_object_set_new(o, "checkpoint_format",
                      json_string(c->v2 ? "gptq_v2" : "gptq"));
  return dump(o);
}

void qf_gptq_config_opts(const qf_gptq_config *c, int n_threads,
                         qf_gptq_opts *o) {
  qf_gptq_opts_default(o);
  o->bits = c->bits;
  o->group_size = c->group_size;
  o->sym = c->sym;
  o->desc_act = c->desc_act;
  o->static_groups = c->static_groups;
  o->blocksize = c->blocksize;
  o->damp_percent = (float)c->damp_percent;
  o->damp_auto_increment = (float)c->damp_auto_increment;
  o->mse_norm = (float)c->mse;
  o->n_threads = n_threads > 0 ? n_threads : 1;
}

/*
 * Scheme flags → quantization_config (see quant_flags.h). Field names are
 * the ones each scheme's HF config class uses (GPTQConfig, AwqConfig,
 * BitsAndBytesConfig) so the JSON is what config.json will carry.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "quant_flags.h"

enum {
  QF_F_BITS = 2000, QF_F_GROUP, QF_F_SYM, QF_F_ASYM, QF_F_DESC, QF_F_DAMP, QF_F_NF4, QF_F_FP4,
  QF_F_INT8, QF_F_DQ, QF_F_BLOCK, QF_F_CDTYPE, QF_F_TYPE, QF_F_IMATRIX
};

void qf_quant_flags_init(qf_quant_flags *f) {
  memset(f, 0, sizeof *f);
  f->bits = f->group_size = f->sym = f->desc_act = f->blocksize = -1;
  f->damp_percent = -1;
}

size_t qf_quant_flags_options(struct option *o, size_t room) {
  static const struct option flags[] = {
      {"bits", required_argument, 0, QF_F_BITS}, {"group-size", required_argument, 0, QF_F_GROUP},
      {"sym", no_argument, 0, QF_F_SYM},         {"asym", no_argument, 0, QF_F_ASYM},
      {"desc-act", no_argument, 0, QF_F_DESC},   {"damp-percent", required_argument, 0, QF_F_DAMP},
      {"nf4", no_argument, 0, QF_F_NF4},         {"fp4", no_argument, 0, QF_F_FP4},
      {"int8", no_argument, 0, QF_F_INT8},       {"double-quant", no_argument, 0, QF_F_DQ},
      {"blocksize", required_argument, 0, QF_F_BLOCK},
      {"compute-dtype", required_argument, 0, QF_F_CDTYPE},
      {"type", required_argument, 0, QF_F_TYPE}, {"imatrix", required_argument, 0, QF_F_IMATRIX}};
  size_t n = sizeof flags / sizeof flags[0];
  if (n > room) n = room;
  memcpy(o, flags, n * sizeof *o);
  return n;
}

int qf_quant_flags_take(qf_quant_flags *f, int code, const char *arg) {
  switch (code) {
    case QF_F_BITS: f->bits = atoi(arg); return 0;
    case QF_F_GROUP: f->group_size = atoi(arg); return 0;
    case QF_F_SYM: f->sym = 1; return 0;
    case QF_F_ASYM: f->sym = 0; return 0;
    case QF_F_DESC: f->desc_act = 1; return 0;
    case QF_F_DAMP: f->damp_percent = strtod(arg, NULL); return 0;
    case QF_F_NF4: f->bnb_kind = "nf4"; return 0;
    case QF_F_FP4: f->bnb_kind = "fp4"; return 0;
    case QF_F_INT8: f->bnb_kind = "int8"; return 0;
    case QF_F_DQ: f->double_quant = 1; return 0;
    case QF_F_BLOCK: f->blocksize = atoi(arg); return 0;
    case QF_F_CDTYPE: f->compute_dtype = arg; return 0;
    case QF_F_TYPE: f->gguf_type = arg; return 0;
    case QF_F_IMATRIX: f->imatrix = arg; return 0;
    default: return -1;
  }
}

void qf_quant_flags_help(FILE *f) {
  fprintf(f,
          "  scheme flags (turned into quantization_config fields):\n"
          "    --bits N --group-size N --sym|--asym --desc-act --damp-percent F   (rtn, gptq, awq)\n"
          "    --nf4|--fp4|--int8 --double-quant --blocksize N\n"
          "    --compute-dtype bf16|fp16|fp32                                      (bitsandbytes)\n"
          "    --type Q4_K_M --imatrix FILE                                        (gguf)\n");
}

static const char *qf__torch_dtype(const char *s) {
  if (!s) return NULL;
  if (!strcmp(s, "bf16") || !strcmp(s, "bfloat16")) return "bfloat16";
  if (!strcmp(s, "fp16") || !strcmp(s, "float16")) return "float16";
  if (!strcmp(s, "fp32") || !strcmp(s, "float32")) return "float32";
  return NULL;
}

qf_status qf_quant_flags_config(const qf_quant_flags *f, const char *scheme,
                                const char *config_json, char **out,
                                qf_error *err) {
  json_t *j = json_object();
  if (!strcmp(scheme, "bnb") || !strcmp(scheme, "bitsandbytes")) {
    json_object_set_new(j, "quant_method", json_string("bitsandbytes"));
    if (f->bnb_kind && !strcmp(f->bnb_kind, "int8")) {
      json_object_set_new(j, "load_in_8bit", json_true());
    } else {
      json_object_set_new(j, "load_in_4bit", json_true());
      json_object_set_new(j, "bnb_4bit_quant_type", json_string(f->bnb_kind ? f->bnb_kind : "nf4"));
      json_object_set_new(j, "bnb_4bit_use_double_quant", json_boolean(f->double_quant));
      if (f->blocksize > 0) json_object_set_new(j, "blocksize", json_integer(f->blocksize));
    }
    if (f->compute_dtype) {
      const char *t = qf__torch_dtype(f->compute_dtype);
      if (!t) {
        json_decref(j);
        return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "quantize",
                         "--compute-dtype '%s' is not one of bf16, fp16, fp32", f->compute_dtype);
      }
      json_object_set_new(j, "bnb_4bit_compute_dtype", json_string(t));
    }
  } else if (!strcmp(scheme, "gguf")) {
    json_object_set_new(j, "quant_method", json_string("gguf"));
    json_object_set_new(j, "type", json_string(f->gguf_type ? f->gguf_type : "Q4_K_M"));
    if (f->imatrix) json_object_set_new(j, "imatrix_file", json_string(f->imatrix));
  } else {
    json_object_set_new(j, "quant_method", json_string(scheme));
    if (f->bits > 0) json_object_set_new(j, "bits", json_integer(f->bits));
    if (f->group_size != -1) json_object_set_new(j, "group_size", json_integer(f->group_size));
    if (f->sym >= 0) {
      if (!strcmp(scheme, "awq"))
        json_object_set_new(j, "zero_point", json_boolean(!f->sym));
      else
        json_object_set_new(j, "sym", json_boolean(f->sym));
    }
    if (f->desc_act > 0) json_object_set_new(j, "desc_act", json_true());
    if (f->damp_percent >= 0) json_object_set_new(j, "damp_percent", json_real(f->damp_percent));
  }
  if (config_json) {
    json_error_t je;
    json_t *u = json_loads(config_json, JSON_REJECT_DUPLICATES, &je);
    if (!u || !json_is_object(u)) {
      json_decref(u);
      json_decref(j);
      return qf_errorf(err, QF_ERR_INVALID_ARGUMENT, "quantize",
                       "--config must be a JSON object%s%s", u ? "" : ": ", u ? "" : je.text);
    }
    json_object_update(j, u);
    json_decref(u);
  }
  *out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(j);
  return *out ? QF_OK : qf_errorf(err, QF_ERR_NO_MEMORY, "quantize", "out of memory");
}

/*
 * `qforge raw quantize|dequantize`: one raw float32 row-major matrix through
 * a scheme's create_quantized_param / dequantize, with the produced tensors
 * written as raw little-endian files plus DIR/manifest.json:
 *   {"method": M, "config": {...}, "weight_shape": [R, C],
 *    "tensors": [{"name", "dtype", "shape", "file"}...]}
 * The tool behind golden-vector tests and plugin debugging; its file layout
 * is a stable interface.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "qforge/plugin_util.h"

static void qf__raw_usage(FILE *f) {
  fprintf(f,
          "usage: qforge raw quantize --method M [--config JSON] --rows R --cols C --in W.f32\n"
          "                           [--imatrix I.f32] [--hessian H.f32] --out DIR\n"
          "       qforge raw dequantize --method M [--config JSON] --in DIR --out W.f32\n\n"
          "quantize: R rows of C float32 values (a Linear weight: R = out_features,\n"
          "C = in_features) go through the scheme's create_quantized_param as the tensor\n"
          "'weight'; every produced tensor is written to DIR as <name>.<dtype> (raw,\n"
          "little-endian) and listed in DIR/manifest.json.\n"
          "dequantize: reads DIR back and writes the float32 matrix.\n\n"
          "  --method M        scheme name or quant_method (see `qforge plugins`)\n"
          "  --config JSON     quantization_config object (scheme's own field names)\n"
          "  --imatrix FILE    C float32 importance weights (GGUF)\n"
          "  --hessian FILE    C×C float32 Hessian as GPTQ accumulates it\n"
          "  --registry FILE, --backend B   plugin selection (see `qforge plugins --help`)\n"
          "  --json            print the manifest on stdout\n");
}

static void qf__lower(char *s) {
  for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

typedef struct qf__raw_args {
  const char *method, *config, *in, *out, *imatrix, *hessian;
  long long rows, cols;
  int as_json;
  qf_cli_plugin_opts po;
} qf__raw_args;

static int qf__raw_parse(int argc, char **argv, qf__raw_args *a) {
  static const struct option opts[] = {
      {"method", required_argument, 0, 'm'}, {"config", required_argument, 0, 'c'},
      {"rows", required_argument, 0, 'R'},   {"cols", required_argument, 0, 'C'},
      {"in", required_argument, 0, 'i'},     {"out", required_argument, 0, 'o'},
      {"imatrix", required_argument, 0, 'I'}, {"hessian", required_argument, 0, 'H'},
      {"registry", required_argument, 0, 'r'}, {"backend", required_argument, 0, 'b'},
      {"json", no_argument, 0, 'j'},         {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "m:c:R:C:i:o:I:H:r:b:jh", opts, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
      case 'm': a->method = optarg; break;
      case 'c': a->config = optarg; break;
      case 'R':
      case 'C': {
        long long v = strtoll(optarg, &end, 10);
        if (!end || *end || v <= 0) {
          fprintf(stderr, "qforge raw: --%s must be a positive integer, got '%s'\n",
                  c == 'R' ? "rows" : "cols", optarg);
          return -1;
        }
        if (c == 'R') a->rows = v; else a->cols = v;
        break;
      }
      case 'i': a->in = optarg; break;
      case 'o': a->out = optarg; break;
      case 'I': a->imatrix = optarg; break;
      case 'H': a->hessian = optarg; break;
      case 'r': a->po.registry = optarg; break;
      case 'b': a->po.backend = optarg; break;
      case 'j': a->as_json = 1; break;
      case 'h': qf__raw_usage(stdout); return 1;
      default: qf__raw_usage(stderr); return -1;
    }
  }
  return 0;
}

static int qf__fail(qf_error *err, qf_status st) {
  qf_cli_print_error(err);
  return qf_cli_exit_code(st);
}

static int qf__raw_quantize(qf__raw_args *a) {
  if (!a->method || !a->in || !a->out || !a->rows || !a->cols) {
    fprintf(stderr, "qforge raw quantize: --method, --rows, --cols, --in and --out are required\n");
    return QF_EXIT_USAGE;
  }
  qf_error err;
  qf_error_clear(&err);
  json_t *cfg = NULL;
  qf_status st;
  if (a->config && (st = qf_cli_parse_json_object(a->config, "--config", &cfg, &err)) != QF_OK)
    return qf__fail(&err, st);
  json_decref(cfg);
  qf_registry *reg = NULL;
  qf_plugin *plugin = NULL;
  void *w = NULL, *hess = NULL, *imat = NULL;
  qf_model *model = NULL;
  qf_calib *calib = NULL;
  qf_session *s = NULL;
  json_t *manifest = NULL;
  int rc = QF_EXIT_OK;
  size_t R = (size_t)a->rows, C = (size_t)a->cols;
  if ((st = qf_cli_load_plugin(&a->po, a->method, &reg, &plugin, &err)) != QF_OK) goto fail;
  if ((st = qf_cli_read_raw(a->in, R * C * 4, &w, NULL, &err)) != QF_OK) goto fail;
  if (a->hessian && (st = qf_cli_read_raw(a->hessian, C * C * 4, &hess, NULL, &err)) != QF_OK)
    goto fail;
  if (a->imatrix && (st = qf_cli_read_raw(a->imatrix, C * 4, &imat, NULL, &err)) != QF_OK)
    goto fail;
  if ((st = qf_model_new_empty("{}", &model, &err)) != QF_OK) goto fail;
  int64_t shape[2] = {(int64_t)R, (int64_t)C};
  DLTensor t = qf_f32_tensor(w, 2, shape);
  if ((st = qf_model_add_input(model, "weight", &t, &err)) != QF_OK) goto fail;
  if (hess || imat) {
    calib = qf_calib_new_static();
    if (hess) qf_calib_static_set_hessian(calib, "weight", hess, (int64_t)C);
    if (imat) qf_calib_static_set_importance(calib, "weight", imat, (int64_t)C);
  }
  qf_run_options opt = {0};
  opt.struct_size = sizeof opt;
  opt.config_json = a->config ? a->config : "{}";
  opt.calib = calib;
  if ((st = qf_run_lifecycle(plugin, model, &opt, &s, &err)) != QF_OK) goto fail;
  if ((st = qf_mkdir_p(a->out, &err)) != QF_OK) goto fail;
  manifest = json_object();
  json_object_set_new(manifest, "method", json_string(plugin->desc->name));
  json_error_t je;
  json_t *jc = json_loads(s->config_json ? s->config_json : "{}", 0, &je);
  json_object_set_new(manifest, "config", jc ? jc : json_object());
  json_t *ws = json_array();
  json_array_append_new(ws, json_integer((json_int_t)R));
  json_array_append_new(ws, json_integer((json_int_t)C));
  json_object_set_new(manifest, "weight_shape", ws);
  json_t *jt = json_array();
  for (size_t i = 0; i < qf_model_output_count(model); i++) {
    const qf_tensor_info *ti = qf_model_output_at(model, i);
    qf_dtype dt = qf_dtype_from_dl(ti->tensor.dtype);
    char dname[16], file[512], path[4096];
    snprintf(dname, sizeof dname, "%s", qf_dtype_name(dt));
    qf__lower(dname);
    snprintf(file, sizeof file, "%s.%s", ti->name, dname);
    snprintf(path, sizeof path, "%s/%s", a->out, file);
    size_t nb = qf_dtype_size(dt);
    json_t *jshape = json_array();
    for (int d = 0; d < ti->tensor.ndim; d++) {
      nb *= (size_t)ti->tensor.shape[d];
      json_array_append_new(jshape, json_integer(ti->tensor.shape[d]));
    }
    if ((st = qf_write_file_atomic(path, ti->tensor.data, nb, &err)) != QF_OK) {
      json_decref(jshape);
      json_decref(jt);
      goto fail;
    }
    json_t *e = json_object();
    json_object_set_new(e, "name", json_string(ti->name));
    json_object_set_new(e, "dtype", json_string(qf_dtype_name(dt)));
    json_object_set_new(e, "shape", jshape);
    json_object_set_new(e, "file", json_string(file));
    json_array_append_new(jt, e);
  }
  json_object_set_new(manifest, "tensors", jt);
  {
    char *text = json_dumps(manifest, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", a->out);
    st = text ? qf_write_file_atomic(path, text, strlen(text), &err)
              : qf_errorf(&err, QF_ERR_NO_MEMORY, "raw", "out of memory");
    if (st == QF_OK && a->as_json) puts(text);
    free(text);
    if (st != QF_OK) goto fail;
  }
  goto done;
fail:
  rc = qf__fail(&err, st);
done:
  json_decref(manifest);
  qf_session_free(s);
  qf_calib_free(calib);
  qf_model_free(model);
  free(w);
  free(hess);
  free(imat);
  qf_plugin_release(plugin);
  qf_registry_free(reg);
  return rc;
}

static int qf__raw_dequantize(qf__raw_args *a) {
  if (!a->method || !a->in || !a->out) {
    fprintf(stderr, "qforge raw dequantize: --method, --in and --out are required\n");
    return QF_EXIT_USAGE;
  }
  qf_error err;
  qf_error_clear(&err);
  qf_status st = QF_OK;
  qf_registry *reg = NULL;
  qf_plugin *plugin = NULL;
  qf_model *model = NULL;
  qf_session *s = NULL;
  json_t *man = NULL;
  char *cfg_text = NULL;
  void **bufs = NULL;
  size_t nbufs = 0;
  float *out = NULL;
  int rc = QF_EXIT_OK;
  char path[4096];
  json_error_t je;
  snprintf(path, sizeof path, "%s/manifest.json", a->in);
  man = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!man || !json_is_object(man)) {
    st = qf_errorf(&err, QF_ERR_FORMAT, "raw", "%s: not a valid manifest: %s", path,
                   man ? "not a JSON object" : je.text);
    goto fail;
  }
  json_t *jt = json_object_get(man, "tensors");
  if (!json_is_array(jt)) {
    st = qf_errorf(&err, QF_ERR_FORMAT, "raw", "%s: field 'tensors' must be an array", path);
    goto fail;
  }
  long long R = a->rows, C = a->cols;
  json_t *ws = json_object_get(man, "weight_shape");
  if ((!R || !C) && json_is_array(ws) && json_array_size(ws) == 2) {
    R = json_integer_value(json_array_get(ws, 0));
    C = json_integer_value(json_array_get(ws, 1));
  }
  if (R <= 0 || C <= 0) {
    st = qf_errorf(&err, QF_ERR_FORMAT, "raw",
                   "%s: field 'weight_shape' must be [rows, cols] (or give --rows/--cols)", path);
    goto fail;
  }
  if (a->config) {
    json_t *c = NULL;
    if ((st = qf_cli_parse_json_object(a->config, "--config", &c, &err)) != QF_OK) goto fail;
    json_decref(c);
    cfg_text = strdup(a->config);
  } else {
    json_t *c = json_object_get(man, "config");
    cfg_text = json_dumps(c ? c : json_object(), JSON_PRESERVE_ORDER | JSON_COMPACT);
  }
  if ((st = qf_cli_load_plugin(&a->po, a->method, &reg, &plugin, &err)) != QF_OK) goto fail;
  if (!plugin->desc->vtable->dequantize) {
    st = qf_errorf(&err, QF_ERR_UNSUPPORTED, "raw", "scheme '%s' cannot dequantize",
                   plugin->desc->name);
    goto fail;
  }
  if ((st = qf_model_new_empty("{}", &model, &err)) != QF_OK) goto fail;
  bufs = calloc(json_array_size(jt) + 1, sizeof *bufs);
  int64_t(*shapes)[QF_MAX_DIMS] = calloc(json_array_size(jt) + 1, sizeof *shapes);
  if (!bufs || !shapes) {
    free(shapes);
    st = qf_errorf(&err, QF_ERR_NO_MEMORY, "raw", "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < json_array_size(jt); i++) {
    json_t *e = json_array_get(jt, i);
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *dt = json_string_value(json_object_get(e, "dtype"));
    const char *file = json_string_value(json_object_get(e, "file"));
    json_t *js = json_object_get(e, "shape");
    qf_dtype d = dt ? qf_dtype_from_name(dt) : QF_DTYPE_INVALID;
    if (!name || !file || d == QF_DTYPE_INVALID || !json_is_array(js) ||
        json_array_size(js) > QF_MAX_DIMS || strchr(file, '/')) {
      st = qf_errorf(&err, QF_ERR_FORMAT, "raw",
                     "%s: tensors[%zu] needs string 'name', a known 'dtype', a 'shape' array "
                     "and a plain 'file' name", path, i);
      free(shapes);
      goto fail;
    }
    size_t nb = qf_dtype_size(d);
    for (size_t k = 0; k < json_array_size(js); k++) {
      json_int_t v = json_integer_value(json_array_get(js, k));
      if (!json_is_integer(json_array_get(js, k)) || v < 0) {
        st = qf_errorf(&err, QF_ERR_FORMAT, "raw", "%s: tensors[%zu].shape must hold "
                       "non-negative integers", path, i);
        free(shapes);
        goto fail;
      }
      shapes[i][k] = v;
      nb *= (size_t)v;
    }
    char fpath[4096];
    snprintf(fpath, sizeof fpath, "%s/%s", a->in, file);
    if ((st = qf_cli_read_raw(fpath, nb, &bufs[i], NULL, &err)) != QF_OK) {
      free(shapes);
      goto fail;
    }
    nbufs = i + 1;
    DLDataType dlt = {0};
    qf_dtype_to_dl(d, &dlt);
    DLTensor t = qf_cpu_tensor(bufs[i], dlt, (int)json_array_size(js), shapes[i]);
    if ((st = qf_model_add_input(model, name, &t, &err)) != QF_OK) {
      free(shapes);
      goto fail;
    }
  }
  free(shapes);
  qf_run_options opt = {0};
  opt.struct_size = sizeof opt;
  opt.pre_quantized = 1;
  opt.config_json = cfg_text;
  if ((st = qf_run_lifecycle(plugin, model, &opt, &s, &err)) != QF_OK) goto fail;
  out = malloc((size_t)R * (size_t)C * sizeof(float));
  if (!out) {
    st = qf_errorf(&err, QF_ERR_NO_MEMORY, "raw", "out of memory");
    goto fail;
  }
  int64_t oshape[2] = {R, C};
  DLTensor ot = qf_f32_tensor(out, 2, oshape);
  qf_error perr;
  qf_error_clear(&perr);
  st = plugin->desc->vtable->dequantize(s->q, model, "weight", &ot, &perr);
  if (st != QF_OK) {
    err = perr;
    goto fail;
  }
  if ((st = qf_write_file_atomic(a->out, out, (size_t)R * (size_t)C * 4, &err)) != QF_OK)
    goto fail;
  goto done;
fail:
  rc = qf__fail(&err, st);
done:
  free(out);
  qf_session_free(s);
  qf_model_free(model);
  for (size_t i = 0; i < nbufs; i++) free(bufs[i]);
  free(bufs);
  free(cfg_text);
  json_decref(man);
  qf_plugin_release(plugin);
  qf_registry_free(reg);
  return rc;
}

int qf_cmd_raw(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    qf__raw_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? QF_EXIT_USAGE : QF_EXIT_OK;
  }
  qf__raw_args a;
  memset(&a, 0, sizeof a);
  int p = qf__raw_parse(argc - 1, argv + 1, &a);
  if (p != 0) return p > 0 ? QF_EXIT_OK : QF_EXIT_USAGE;
  if (!strcmp(argv[1], "quantize")) return qf__raw_quantize(&a);
  if (!strcmp(argv[1], "dequantize")) return qf__raw_dequantize(&a);
  fprintf(stderr, "qforge raw: unknown sub-command '%s' (quantize or dequantize)\n", argv[1]);
  return QF_EXIT_USAGE;
}

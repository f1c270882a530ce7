/*
 * `qforge inspect PATH`: a safetensors file or an HF model folder — config
 * summary, quantization_config, every tensor with dtype, shape and size, and
 * totals. Text or --json.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void qf__inspect_usage(FILE *f) {
  fprintf(f,
          "usage: qforge inspect PATH [--json] [--limit N]\n\n"
          "Show a .safetensors file, a GGUF file, or an HF model folder (config.json + safetensors,\n"
          "sharded or not): architecture, quantization_config, tensors (name, dtype,\n"
          "shape, bytes) and totals.\n\n"
          "  --json      machine-readable output (always lists every tensor)\n"
          "  --limit N   text output: show at most N tensors (default 50, 0 = all)\n");
}

static int qf__is_safetensors(const char *path) {
  size_t n = strlen(path);
  return n >= 12 && !strcmp(path + n - 12, ".safetensors");
}

/* A file some plugin owns (GGUF): its container_describe JSON. */
static int qf__inspect_container(const char *path, int as_json) {
  qf_cli_plugin_opts po = {0};
  qf_registry *reg = NULL;
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  char *text = NULL;
  qf_status st = qf_cli_plugin_for_file(&po, path, &reg, &p, &err);
  if (st == QF_OK)
    st = qf_run_container(p, QF_CONTAINER_DESCRIBE, "{}", NULL, path, NULL, &text, &err);
  if (st == QF_OK) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (as_json || !j) {
      puts(text);
    } else {
      printf("%s (%s)\n", path, p->desc->name);
      const char *k;
      json_t *v;
      json_object_foreach(json_object_get(j, "metadata"), k, v) {
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (t && strlen(t) > 100) strcpy(t + 96, " …");
        printf("  %-40s %s\n", k, t ? t : "?");
        free(t);
      }
      json_t *ts = json_object_get(j, "tensors");
      printf("  %zu tensors\n", json_array_size(ts));
      size_t i;
      json_array_foreach(ts, i, v) {
        char *shape = json_dumps(json_object_get(v, "shape"), JSON_COMPACT);
        printf("  %-40s %-8s %-20s %6.2f bpw\n", json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "type")), shape ? shape : "?",
               json_number_value(json_object_get(v, "bits_per_weight")));
        free(shape);
      }
    }
    json_decref(j);
  } else {
    qf_cli_print_error(&err);
  }
  free(text);
  qf_plugin_release(p);
  qf_registry_free(reg);
  return qf_cli_exit_code(st);
}

int qf_cmd_inspect(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                       {"limit", required_argument, 0, 'l'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int as_json = 0, c;
  long limit = 50;
  optind = 1;
  while ((c = getopt_long(argc, argv, "jl:h", opts, NULL)) != -1) {
    switch (c) {
      case 'j': as_json = 1; break;
      case 'l': limit = strtol(optarg, NULL, 10); break;
      case 'h': qf__inspect_usage(stdout); return QF_EXIT_OK;
      default: qf__inspect_usage(stderr); return QF_EXIT_USAGE;
    }
  }
  if (optind != argc - 1) {
    qf__inspect_usage(stderr);
    return QF_EXIT_USAGE;
  }
  const char *path = argv[optind];
  qf_error err;
  qf_error_clear(&err);
  if (!qf_cli_is_dir(path) && !qf__is_safetensors(path)) return qf__inspect_container(path, as_json);
  qf_checkpoint *ck = NULL;
  qf_status st = qf_checkpoint_open(path, &ck, &err);
  if (st != QF_OK) {
    qf_cli_print_error(&err);
    return qf_cli_exit_code(st);
  }
  json_t *root = json_object();
  json_object_set_new(root, "path", json_string(path));
  const char *cfg_text = qf_checkpoint_config_json(ck);
  json_t *cfg = NULL;
  if (cfg_text) {
    json_error_t je;
    cfg = json_loads(cfg_text, 0, &je);
  }
  if (cfg) {
    json_t *summary = json_object();
    static const char *const keys[] = {"model_type", "architectures", "hidden_size",
                                       "intermediate_size", "num_hidden_layers",
                                       "num_attention_heads", "num_key_value_heads",
                                       "vocab_size", "torch_dtype", "tie_word_embeddings"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      json_t *v = json_object_get(cfg, keys[i]);
      if (v) json_object_set(summary, keys[i], v);
    }
    json_object_set_new(root, "config", summary);
    json_t *qc = json_object_get(cfg, "quantization_config");
    json_object_set(root, "quantization_config", qc ? qc : json_null());
  }
  json_t *tensors = json_array();
  uint64_t total = 0, n_params = 0;
  size_t n = qf_checkpoint_count(ck);
  for (size_t i = 0; i < n; i++) {
    const qf_st_tensor *t = qf_checkpoint_at(ck, i);
    json_t *jt = json_object(), *js = json_array();
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
      json_array_append_new(js, json_integer(t->shape[d]));
      numel *= (uint64_t)t->shape[d];
    }
    json_object_set_new(jt, "name", json_string(t->name));
    json_object_set_new(jt, "dtype", json_string(qf_dtype_name(t->dtype)));
    json_object_set_new(jt, "shape", js);
    json_object_set_new(jt, "bytes", json_integer((json_int_t)t->nbytes));
    json_array_append_new(tensors, jt);
    total += t->nbytes;
    n_params += numel;
  }
  json_object_set_new(root, "tensors", tensors);
  json_object_set_new(root, "tensor_count", json_integer((json_int_t)n));
  json_object_set_new(root, "total_bytes", json_integer((json_int_t)total));
  json_object_set_new(root, "total_elements", json_integer((json_int_t)n_params));
  if (as_json) {
    qf_cli_print_json(root);
  } else {
    printf("%s\n", path);
    if (cfg) {
      json_t *s = json_object_get(root, "config");
      const char *k;
      json_t *v;
      json_object_foreach(s, k, v) {
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("  %-22s %s\n", k, t ? t : "?");
        free(t);
      }
      json_t *qc = json_object_get(root, "quantization_config");
      char *t = json_dumps(qc, JSON_ENCODE_ANY | JSON_COMPACT);
      printf("  %-22s %s\n", "quantization_config", t ? t : "none");
      free(t);
    }
    printf("  %zu tensors, %.2f MiB, %llu elements\n\n", n, (double)total / 1048576.0,
           (unsigned long long)n_params);
    for (size_t i = 0; i < n && (limit <= 0 || (long)i < limit); i++) {
      const qf_st_tensor *t = qf_checkpoint_at(ck, i);
      char shape[128] = "[";
      for (int d = 0; d < t->ndim; d++) {
        size_t l = strlen(shape);
        snprintf(shape + l, sizeof shape - l, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
      }
      strncat(shape, "]", sizeof shape - strlen(shape) - 1);
      printf("  %-56s %-5s %-20s %12llu\n", t->name, qf_dtype_name(t->dtype), shape,
             (unsigned long long)t->nbytes);
    }
    if (limit > 0 && (long)n > limit) printf("  … %zu more (--limit 0 shows all)\n", n - (size_t)limit);
    json_decref(root);
  }
  json_decref(cfg);
  qf_checkpoint_close(ck);
  return QF_EXIT_OK;
}

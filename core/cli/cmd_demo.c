/*
 * `qforge demo`: the main job on a built-in default. Generates a small
 * Llama-style model (weights with a few large-magnitude input channels, as
 * real LLMs have) plus calibration and evaluation token sets sampled from
 * it, quantizes it with every registered scheme and configuration, evaluates
 * each against the float model through the plugins' own kernels, and prints
 * method, bits per weight, size, quantize time, perplexity, KL divergence
 * and top-1 agreement.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

typedef struct qf__demo_case {
  const char *label;
  const char *method;   /* registry scheme or quant_method */
  const char *config;   /* quantization_config */
  int calibrated;
} qf__demo_case;

static const qf__demo_case qf__cases[] = {
    {"rtn-int4 g128", "rtn", "{\"quant_method\":\"rtn\",\"bits\":4,\"group_size\":128,\"sym\":true}", 0},
    {"gptq-int4 g128", "gptq",
     "{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":128,\"sym\":true,\"desc_act\":false,"
     "\"damp_percent\":0.01}", 1},
    {"awq-int4 g128", "awq",
     "{\"quant_method\":\"awq\",\"bits\":4,\"group_size\":128,\"zero_point\":true,\"version\":\"gemm\"}", 1},
    {"bnb-nf4", "bitsandbytes",
     "{\"quant_method\":\"bitsandbytes\",\"load_in_4bit\":true,\"bnb_4bit_quant_type\":\"nf4\","
     "\"bnb_4bit_use_double_quant\":false}", 0},
    {"bnb-int8", "bitsandbytes", "{\"quant_method\":\"bitsandbytes\",\"load_in_8bit\":true}", 0},
    {"gguf-q4_k_m", "gguf", "{\"quant_method\":\"gguf\",\"type\":\"Q4_K_M\"}", 0},
    {"gguf-q8_0", "gguf", "{\"quant_method\":\"gguf\",\"type\":\"Q8_0\"}", 0},
};

static void qf__demo_usage(FILE *f) {
  fprintf(f,
          "usage: qforge demo [--out DIR] [--only LABEL,…] [--json] [--registry FILE]\n"
          "                   [--backend B]\n\n"
          "Generate a small Llama-style model and token sets, quantize it with every\n"
          "registered scheme (rtn-int4, gptq-int4 g128, awq-int4 g128, bnb-nf4, bnb-int8,\n"
          "gguf-q4_k_m, gguf-q8_0 — each when its plugin is installed), evaluate each\n"
          "against the float model and print one table.\n\n"
          "  --out DIR     keep the generated model and every quantized copy in DIR\n"
          "  --only LIST   run only these labels (comma-separated, e.g. rtn-int4,bnb-nf4;\n"
          "                the part before the first space of a label is enough)\n"
          "  --json        {\"results\": [{\"method\", \"bits_per_weight\", \"bytes\",\n"
          "                \"seconds\", \"ppl\", \"kld\", \"top1\"}…]}\n");
}

static int qf__wanted(const char *only, const char *label) {
  if (!only) return 1;
  size_t n = strcspn(label, " ");
  const char *p = only;
  while (*p) {
    size_t l = strcspn(p, ",");
    if ((l == n && !strncmp(p, label, n)) || (l == strlen(label) && !strncmp(p, label, l))) return 1;
    p += l + (p[l] == ',');
  }
  return 0;
}

/* Parameters of the float model's linear and embedding weights (for bits
 * per weight: quantized bytes × 8 / float parameters). */
static uint64_t qf__param_count(qf_qmodel *m) {
  const qf_checkpoint *ck = qf_rt_checkpoint(qf_qmodel_runtime(m));
  uint64_t n = 0;
  for (size_t i = 0; i < qf_checkpoint_count(ck); i++) {
    const qf_st_tensor *t = qf_checkpoint_at(ck, i);
    uint64_t e = 1;
    for (int d = 0; d < t->ndim; d++) e *= (uint64_t)t->shape[d];
    n += e;
  }
  return n;
}

int qf_cmd_demo(int argc, char **argv) {
  static const struct option opts[] = {{"out", required_argument, 0, 'o'},
                                       {"only", required_argument, 0, 'O'},
                                       {"json", no_argument, 0, 'j'},
                                       {"registry", required_argument, 0, 'r'},
                                       {"backend", required_argument, 0, 'b'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *out = NULL, *only = NULL;
  int as_json = 0, c;
  qf_cli_plugin_opts po = {0};
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:O:jr:b:h", opts, NULL)) != -1) {
    switch (c) {
      case 'o': out = optarg; break;
      case 'O': only = optarg; break;
      case 'j': as_json = 1; break;
      case 'r': po.registry = optarg; break;
      case 'b': po.backend = optarg; break;
      case 'h': qf__demo_usage(stdout); return QF_EXIT_OK;
      default: qf__demo_usage(stderr); return QF_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    qf__demo_usage(stderr);
    return QF_EXIT_USAGE;
  }
  qf_backend_choice choice = qf_backend_choice_from_env();
  if (po.backend) {
    int b = qf_backend_choice_parse(po.backend);
    if (b < 0) {
      fprintf(stderr, "qforge demo: --backend '%s' is not one of auto, cpu, cuda, hip\n", po.backend);
      return QF_EXIT_USAGE;
    }
    choice = (qf_backend_choice)b;
  }
  qf_error err;
  qf_error_clear(&err);
  char dir[4096], model_dir[4200], calib[4300], evalp[4300];
  if (out) {
    snprintf(dir, sizeof dir, "%s", out);
    if (qf_mkdir_p(dir, &err) != QF_OK) {
      qf_cli_print_error(&err);
      return QF_EXIT_FAILURE;
    }
  } else {
    snprintf(dir, sizeof dir, "%s/qforge-demo-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
      perror("qforge demo: cannot create a temporary folder");
      return QF_EXIT_FAILURE;
    }
  }
  snprintf(model_dir, sizeof model_dir, "%s/float", dir);
  snprintf(calib, sizeof calib, "%s/calib.npy", model_dir);
  snprintf(evalp, sizeof evalp, "%s/eval.npy", model_dir);
  size_t n_cases = sizeof qf__cases / sizeof qf__cases[0];
  qf_progress *bar = qf_progress_new("demo", n_cases + 1);
  qf_qmodel *ref = NULL;
  qf_token_set *evt = NULL;
  qf_registry *reg = NULL;
  json_t *results = json_array();
  int rc = QF_EXIT_OK;
  qf_status st = QF_OK;
  if (access(model_dir, F_OK) != 0) {
    qf_demo_config dc;
    qf_demo_config_default(&dc);
    st = qf_demo_write(model_dir, &dc, &err);
    if (st == QF_OK) st = qf_demo_write_tokens(model_dir, 32, 16, 256, 7, &err);
  }
  if (st == QF_OK) st = qf_qmodel_open(model_dir, po.registry, choice, NULL, &ref, &err);
  if (st == QF_OK) st = qf_tokens_load(evalp, NULL, &evt, &err);
  if (st == QF_OK) st = qf_registry_load(po.registry, &reg, &err);
  if (st != QF_OK) {
    qf_cli_print_error(&err);
    rc = qf_cli_exit_code(st);
    goto done;
  }
  uint64_t params = qf__param_count(ref);
  {
    /* the float model itself: the baseline row */
    double ppl = 0;
    st = qf_eval_perplexity(qf_qmodel_runtime(ref), evt, 4, &ppl, &err);
    if (st != QF_OK) {
      qf_cli_print_error(&err);
      rc = qf_cli_exit_code(st);
      goto done;
    }
    json_t *r = json_object();
    json_object_set_new(r, "method", json_string("float (bf16)"));
    json_object_set_new(r, "bits_per_weight",
                        json_real(8.0 * (double)qf_qmodel_bytes(ref) / (double)params));
    json_object_set_new(r, "bytes", json_integer((json_int_t)qf_qmodel_bytes(ref)));
    json_object_set_new(r, "seconds", json_real(0));
    json_object_set_new(r, "ppl", json_real(ppl));
    json_object_set_new(r, "kld", json_real(0));
    json_object_set_new(r, "top1", json_real(1));
    json_array_append_new(results, r);
    qf_progress_update(bar, 1);
  }
  for (size_t i = 0; i < n_cases; i++) {
    const qf__demo_case *dcase = &qf__cases[i];
    if (!qf__wanted(only, dcase->label)) continue;
    const qf_registry_entry *e = qf_registry_find(reg, dcase->method);
    if (!e) e = qf_registry_find_method(reg, dcase->method);
    if (!e) {
      qf_log(QF_LOG_INFO, "demo: %s skipped (no '%s' plugin registered)", dcase->label, dcase->method);
      continue;
    }
    qf_plugin *p = NULL;
    qf_error e2;
    qf_error_clear(&e2);
    json_t *r = json_object();
    json_object_set_new(r, "method", json_string(dcase->label));
    char qdir[4400], slug[64];
    snprintf(slug, sizeof slug, "%s", dcase->label);
    for (char *s = slug; *s; s++)
      if (*s == ' ') *s = '-';
    snprintf(qdir, sizeof qdir, "%s/%s", dir, slug);
    qf_quantize_result res;
    memset(&res, 0, sizeof res);
    qf_qmodel *qm = NULL;
    qf_eval_report rep;
    memset(&rep, 0, sizeof rep);
    rep.struct_size = sizeof rep;
    st = qf_plugin_choose(e, choice, &p, NULL, NULL, &e2);
    if (st == QF_OK) {
      qf_quantize_request req = {0};
      req.struct_size = sizeof req;
      req.plugin = p;
      req.config_json = dcase->config;
      req.in_dir = model_dir;
      req.out_dir = qdir;
      req.calib_path = dcase->calibrated ? calib : NULL;
      req.calib_seq_len = 256;
      req.force = 1;
      st = qf_quantize_folder(&req, &res, &e2);
    }
    if (st == QF_OK) st = qf_qmodel_open(qdir, po.registry, choice, NULL, &qm, &e2);
    if (st == QF_OK) st = qf_eval_compare(qf_qmodel_runtime(ref), qf_qmodel_runtime(qm), evt, 4, &rep, &e2);
    if (st == QF_OK) {
      json_object_set_new(r, "bits_per_weight",
                          json_real(8.0 * (double)qf_qmodel_bytes(qm) / (double)params));
      json_object_set_new(r, "bytes", json_integer((json_int_t)qf_qmodel_bytes(qm)));
      json_object_set_new(r, "seconds", json_real(res.seconds));
      json_object_set_new(r, "ppl", json_real(rep.ppl));
      json_object_set_new(r, "kld", json_real(rep.kl_mean));
      json_object_set_new(r, "top1", json_real(rep.top1));
    } else {
      char buf[QF_ERROR_MESSAGE_MAX + 256];
      json_object_set_new(r, "error", json_string(qf_error_format(&e2, buf, sizeof buf)));
      rc = QF_EXIT_FAILURE;
    }
    json_array_append_new(results, r);
    qf_eval_report_clear(&rep);
    qf_qmodel_free(qm);
    qf_quantize_result_clear(&res);
    qf_plugin_release(p);
    if (!out) qf_remove_tree(qdir);
    qf_progress_update(bar, i + 2);
  }
  qf_progress_done(bar);
  bar = NULL;
  if (as_json) {
    json_t *root = json_object();
    json_object_set(root, "results", results);
    json_object_set_new(root, "model", json_string(out ? model_dir : "(temporary)"));
    json_object_set_new(root, "eval_tokens", json_integer(qf_tokens_total(evt)));
    qf_cli_print_json(root);
  } else {
    printf("\nqforge demo: generated Llama-style model, %llu parameters; eval on %lld tokens\n\n",
           (unsigned long long)params, (long long)qf_tokens_total(evt));
    printf("%-16s %6s %10s %9s %10s %10s %8s\n", "method", "bpw", "bytes", "quant s", "ppl", "kld",
           "top1 %");
    size_t k;
    json_t *r;
    json_array_foreach(results, k, r) {
      const char *m = json_string_value(json_object_get(r, "method"));
      if (json_object_get(r, "error")) {
        printf("%-16s failed: %s\n", m, json_string_value(json_object_get(r, "error")));
        continue;
      }
      printf("%-16s %6.2f %10lld %9.2f %10.4f %10.6f %8.2f\n", m,
             json_number_value(json_object_get(r, "bits_per_weight")),
             (long long)json_integer_value(json_object_get(r, "bytes")),
             json_number_value(json_object_get(r, "seconds")),
             json_number_value(json_object_get(r, "ppl")),
             json_number_value(json_object_get(r, "kld")),
             100.0 * json_number_value(json_object_get(r, "top1")));
    }
    if (out) printf("\nfiles kept in %s\n", dir);
  }
done:
  qf_progress_done(bar);
  json_decref(results);
  qf_registry_free(reg);
  qf_tokens_free(evt);
  qf_qmodel_free(ref);
  if (!out) qf_remove_tree(dir);
  return rc;
}

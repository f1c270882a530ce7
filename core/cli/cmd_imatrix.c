/*
 * `qforge imatrix MODEL --calib FILE -o imatrix.dat`: an importance matrix
 * from the model runtime's calibration, in llama.cpp's legacy .dat format
 * (readable by llama-quantize and by `qforge quantize --method gguf
 * --imatrix`). For every linear of every decoder block: the mean of x² per
 * input column over all calibration tokens, stored as value · ncall with
 * ncall = the number of calibration sequences (the reader divides it back),
 * under llama.cpp's tensor names (blk.N.attn_q.weight, …).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* llama.cpp's names of the Llama-family linears (a public format fact). */
static const char *const qf__gguf_names[QF_RT_MODULE_COUNT] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

static void qf__imatrix_usage(FILE *f) {
  fprintf(f,
          "usage: qforge imatrix MODEL_DIR --calib FILE -o imatrix.dat [--calib-len N]\n"
          "                      [--calib-seqs N]\n\n"
          "Run the float model over the calibration data and write llama.cpp's\n"
          "importance matrix (legacy .dat format) for every linear of every block.\n\n"
          "  --calib FILE      token ids (.u32, .npy, JSON) or text (MODEL_DIR's tokenizer)\n"
          "  --calib-len N     window length in tokens (default 512)\n"
          "  --calib-seqs N    windows used (default 128)\n");
}

typedef struct qf__buf {
  char *p;
  size_t n, cap;
} qf__buf;

static int qf__put(qf__buf *b, const void *data, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1 << 16;
    while (cap < b->n + n) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) return -1;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
  return 0;
}

static int qf__put_i32(qf__buf *b, int32_t v) { return qf__put(b, &v, sizeof v); }

int qf_cmd_imatrix(int argc, char **argv) {
  static const struct option opts[] = {{"calib", required_argument, 0, 'c'},
                                       {"output", required_argument, 0, 'o'},
                                       {"calib-len", required_argument, 0, 'L'},
                                       {"calib-seqs", required_argument, 0, 'S'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *calib = NULL, *out = NULL;
  long len = 512, seqs = 128;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:o:L:S:h", opts, NULL)) != -1) {
    switch (c) {
      case 'c': calib = optarg; break;
      case 'o': out = optarg; break;
      case 'L': len = strtol(optarg, NULL, 10); break;
      case 'S': seqs = strtol(optarg, NULL, 10); break;
      case 'h': qf__imatrix_usage(stdout); return QF_EXIT_OK;
      default: qf__imatrix_usage(stderr); return QF_EXIT_USAGE;
    }
  }
  if (optind != argc - 1 || !calib || !out || len < 2 || seqs < 1) {
    qf__imatrix_usage(stderr);
    return QF_EXIT_USAGE;
  }
  const char *dir = argv[optind];
  qf_error err;
  qf_error_clear(&err);
  qf_rt_model *m = NULL;
  qf_tokenizer *tok = NULL;
  qf_token_set *raw = NULL, *win = NULL;
  qf_capture *cap = NULL;
  qf__buf b = {0};
  qf_progress *bar = NULL;
  qf_status st = qf_rt_open(dir, NULL, &m, &err);
  if (st == QF_OK && !qf_tokens_path_is_ids(calib)) st = qf_tokenizer_load(dir, &tok, &err);
  if (st == QF_OK) st = qf_tokens_load(calib, tok, &raw, &err);
  if (st == QF_OK) st = qf_tokens_windows(raw, len, seqs, &win, &err);
  if (st == QF_OK && win->n_seq == 0)
    st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "imatrix",
                   "%s: too few tokens (%lld) for one window of %ld", calib,
                   (long long)qf_tokens_total(raw), len);
  if (st == QF_OK && qf_tokens_max_id(win) > qf_rt_get_config(m)->vocab)
    st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "imatrix",
                   "%s: token id %lld is outside the vocabulary (%lld)", calib,
                   (long long)qf_tokens_max_id(win) - 1, (long long)qf_rt_get_config(m)->vocab);
  if (st == QF_OK) {
    qf_capture_options co;
    qf_capture_options_default(&co);
    co.mode = QF_CAPTURE_FLOAT;
    co.true_sequential = 0;
    co.importance = 1;
    st = qf_capture_new(m, win, &co, &cap, &err);
  }
  const int layers = st == QF_OK ? (int)qf_rt_get_config(m)->n_layers : 0;
  const int32_t ncall = st == QF_OK ? (int32_t)win->n_seq : 0;
  if (st == QF_OK && qf__put_i32(&b, layers * QF_RT_MODULE_COUNT))
    st = qf_errorf(&err, QF_ERR_NO_MEMORY, "imatrix", "out of memory");
  bar = qf_progress_new("imatrix", (uint64_t)layers);
  for (int l = 0; st == QF_OK && l < layers; l++) {
    for (int mod = 0; st == QF_OK && mod < QF_RT_MODULE_COUNT; mod++) {
      char hf[160], gg[160];
      qf_rt_linear_name(l, (qf_rt_module)mod, hf, sizeof hf);
      snprintf(gg, sizeof gg, "blk.%d.%s.weight", l, qf__gguf_names[mod]);
      const float *v;
      int64_t k;
      if ((st = qf_capture_importance(cap, hf, &v, &k, &err)) != QF_OK) break;
      int fail = qf__put_i32(&b, (int32_t)strlen(gg)) || qf__put(&b, gg, strlen(gg)) ||
                 qf__put_i32(&b, ncall) || qf__put_i32(&b, (int32_t)k);
      for (int64_t i = 0; !fail && i < k; i++) {
        float x = v[i] * (float)ncall;
        fail = qf__put(&b, &x, sizeof x);
      }
      if (fail) st = qf_errorf(&err, QF_ERR_NO_MEMORY, "imatrix", "out of memory");
    }
    qf_progress_update(bar, (uint64_t)l + 1);
  }
  qf_progress_done(bar);
  if (st == QF_OK) {
    int fail = qf__put_i32(&b, ncall) || qf__put_i32(&b, (int32_t)strlen(calib)) ||
               qf__put(&b, calib, strlen(calib));
    st = fail ? qf_errorf(&err, QF_ERR_NO_MEMORY, "imatrix", "out of memory")
              : qf_write_file_atomic(out, b.p, b.n, &err);
  }
  if (st == QF_OK)
    fprintf(stderr, "qforge: imatrix: %d entries from %d sequences of %ld tokens written to %s\n",
            layers * QF_RT_MODULE_COUNT, ncall, len, out);
  else
    qf_cli_print_error(&err);
  free(b.p);
  qf_capture_free(cap);
  qf_tokens_free(win);
  qf_tokens_free(raw);
  qf_tokenizer_free(tok);
  qf_rt_free(m);
  return qf_cli_exit_code(st);
}

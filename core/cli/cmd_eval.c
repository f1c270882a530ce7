/*
 * `qforge eval MODEL [--reference FLOAT_MODEL] --tokens FILE|--text FILE`:
 * perplexity of MODEL (quantized layers run through their plugin), and with
 * a reference: its perplexity, mean KL divergence, top-1 agreement and the
 * per-layer relative output error — what llama.cpp's perplexity/KLD tool
 * reports, for any scheme qforge runs.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void qf__eval_usage(FILE *f) {
  fprintf(f,
          "usage: qforge eval MODEL [--reference FLOAT_MODEL] (--tokens FILE | --text FILE)\n"
          "                   [--ctx N] [--max-seqs N] [--batch N] [--json]\n"
          "                   [--registry FILE] [--backend B]\n\n"
          "Perplexity of MODEL (an HF folder, quantized or not) on the tokens; with\n"
          "--reference also KL divergence, top-1 agreement and per-layer output error\n"
          "against the float model.\n\n"
          "  --tokens FILE   token ids: .u32 raw, .npy, or JSON lists\n"
          "  --text FILE     UTF-8 text, encoded with MODEL's tokenizer.json\n"
          "  --ctx N         cut the tokens into windows of N (default 512)\n"
          "  --max-seqs N    evaluate at most N windows (default all)\n"
          "  --batch N       sequences per forward pass (default 4)\n"
          "  --json          machine-readable output\n");
}

int qf_cmd_eval(int argc, char **argv) {
  static const struct option opts[] = {
      {"reference", required_argument, 0, 'r'}, {"tokens", required_argument, 0, 't'},
      {"text", required_argument, 0, 'x'},      {"ctx", required_argument, 0, 'c'},
      {"max-seqs", required_argument, 0, 'm'},  {"batch", required_argument, 0, 'B'},
      {"json", no_argument, 0, 'j'},            {"registry", required_argument, 0, 'R'},
      {"backend", required_argument, 0, 'b'},   {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *ref_dir = NULL, *tokens = NULL, *text = NULL, *registry = NULL, *backend = NULL;
  long ctx = 512, max_seqs = 0, batch = 4;
  int as_json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "r:t:x:c:m:B:jR:b:h", opts, NULL)) != -1) {
    switch (c) {
      case 'r': ref_dir = optarg; break;
      case 't': tokens = optarg; break;
      case 'x': text = optarg; break;
      case 'c': ctx = strtol(optarg, NULL, 10); break;
      case 'm': max_seqs = strtol(optarg, NULL, 10); break;
      case 'B': batch = strtol(optarg, NULL, 10); break;
      case 'j': as_json = 1; break;
      case 'R': registry = optarg; break;
      case 'b': backend = optarg; break;
      case 'h': qf__eval_usage(stdout); return QF_EXIT_OK;
      default: qf__eval_usage(stderr); return QF_EXIT_USAGE;
    }
  }
  if (optind != argc - 1 || (!tokens == !text) || ctx < 2 || batch < 1) {
    fprintf(stderr, "qforge eval: give MODEL and exactly one of --tokens/--text (see --help)\n");
    return QF_EXIT_USAGE;
  }
  const char *dir = argv[optind];
  qf_backend_choice choice = qf_backend_choice_from_env();
  if (backend) {
    int b = qf_backend_choice_parse(backend);
    if (b < 0) {
      fprintf(stderr, "qforge eval: --backend '%s' is not one of auto, cpu, cuda, hip\n", backend);
      return QF_EXIT_USAGE;
    }
    choice = (qf_backend_choice)b;
  }
  qf_error err;
  qf_error_clear(&err);
  qf_qmodel *qm = NULL, *ref = NULL;
  qf_tokenizer *tok = NULL;
  qf_token_set *raw = NULL, *win = NULL;
  qf_eval_report rep;
  memset(&rep, 0, sizeof rep);
  rep.struct_size = sizeof rep;
  qf_status st = qf_qmodel_open(dir, registry, choice, NULL, &qm, &err);
  if (st == QF_OK && ref_dir) st = qf_qmodel_open(ref_dir, registry, choice, NULL, &ref, &err);
  if (st == QF_OK && text) st = qf_tokenizer_load(dir, &tok, &err);
  if (st == QF_OK) st = qf_tokens_load(tokens ? tokens : text, tok, &raw, &err);
  if (st == QF_OK) st = qf_tokens_windows(raw, ctx, max_seqs, &win, &err);
  if (st == QF_OK && win->n_seq == 0)
    st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "eval",
                   "%s holds %lld tokens, fewer than one --ctx window of %ld",
                   tokens ? tokens : text, (long long)qf_tokens_total(raw), ctx);
  if (st == QF_OK) {
    int64_t vocab = qf_rt_get_config(qf_qmodel_runtime(qm))->vocab;
    if (qf_tokens_max_id(win) > vocab)
      st = qf_errorf(&err, QF_ERR_INVALID_ARGUMENT, "eval",
                     "token id %lld is outside the model's vocabulary of %lld",
                     (long long)qf_tokens_max_id(win) - 1, (long long)vocab);
  }
  if (st == QF_OK) {
    if (ref)
      st = qf_eval_compare(qf_qmodel_runtime(ref), qf_qmodel_runtime(qm), win, (int)batch, &rep,
                           &err);
    else
      st = qf_eval_perplexity(qf_qmodel_runtime(qm), win, (int)batch, &rep.ppl, &err);
  }
  if (st == QF_OK) {
    const qf_plugin *p = qf_qmodel_plugin(qm);
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(dir));
    json_object_set_new(j, "method", json_string(p ? p->desc->name : "float"));
    json_object_set_new(j, "bytes", json_integer((json_int_t)qf_qmodel_bytes(qm)));
    json_object_set_new(j, "sequences", json_integer(win->n_seq));
    json_object_set_new(j, "ctx", json_integer(ctx));
    json_object_set_new(j, "ppl", json_real(rep.ppl));
    if (ref) {
      json_object_set_new(j, "reference", json_string(ref_dir));
      json_object_set_new(j, "ppl_ref", json_real(rep.ppl_ref));
      json_object_set_new(j, "kld", json_real(rep.kl_mean));
      json_object_set_new(j, "top1", json_real(rep.top1));
      json_t *layers = json_array();
      for (int i = 0; i < rep.n_layers; i++) json_array_append_new(layers, json_real(rep.layer_rel_err[i]));
      json_object_set_new(j, "layer_rel_err", layers);
    }
    if (as_json) {
      qf_cli_print_json(j);
    } else {
      printf("model       %s (%s)\n", dir, p ? p->desc->name : "float");
      printf("tokens      %lld windows of %ld\n", (long long)win->n_seq, ctx);
      printf("perplexity  %.4f\n", rep.ppl);
      if (ref) {
        printf("reference   %s: perplexity %.4f\n", ref_dir, rep.ppl_ref);
        printf("mean KLD    %.6f\n", rep.kl_mean);
        printf("top-1 agree %.2f %%\n", 100.0 * rep.top1);
        printf("layer rel. output error:");
        for (int i = 0; i < rep.n_layers; i++) printf(" %.2e", rep.layer_rel_err[i]);
        printf("\n");
      }
      json_decref(j);
    }
  } else {
    qf_cli_print_error(&err);
  }
  qf_eval_report_clear(&rep);
  qf_tokens_free(win);
  qf_tokens_free(raw);
  qf_tokenizer_free(tok);
  qf_qmodel_free(ref);
  qf_qmodel_free(qm);
  return qf_cli_exit_code(st);
}

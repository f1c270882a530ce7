/*
 * `qforge` — entry point: global options, sub-command dispatch and the
 * top-level help (which documents the exit codes).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct qf_cli_command {
  const char *name;
  qf_cli_cmd_fn fn;
  const char *summary;
} qf_cli_command;

static const qf_cli_command qf__commands[] = {
    {"demo", qf_cmd_demo, "quantize a generated model with every scheme and compare them"},
    {"plugins", qf_cmd_plugins, "list registered schemes, their builds and the chosen backend"},
    {"imatrix", qf_cmd_imatrix, "importance matrix (llama.cpp .dat) from calibration data"},
    {"inspect", qf_cmd_inspect, "show a safetensors file, HF model folder or GGUF file"},
    {"quantize", qf_cmd_quantize, "quantize a float HF model folder with a scheme"},
    {"convert", qf_cmd_convert, "convert between an HF folder and a container format (GGUF)"},
    {"eval", qf_cmd_eval, "perplexity, KL divergence and top-1 agreement of a model"},
    {"raw", qf_cmd_raw, "quantize / dequantize one raw float32 matrix (testing, debugging)"},
};

static void qf__usage(FILE *f) {
  fprintf(f,
          "usage: qforge [--version] [--help] <command> [options]\n\n"
          "Quantize LLM weights with GPTQ, AWQ, bitsandbytes, GGUF and more, through\n"
          "plugins listed in a registry.\n\ncommands:\n");
  for (size_t i = 0; i < sizeof qf__commands / sizeof qf__commands[0]; i++)
    fprintf(f, "  %-10s %s\n", qf__commands[i].name, qf__commands[i].summary);
  fprintf(f,
          "\n`qforge <command> --help` describes each command.\n\n"
          "environment:\n"
          "  QFORGE_REGISTRY   registry file to use (else XDG config, else the installed one)\n"
          "  QFORGE_BACKEND    auto|cpu|cuda|hip: which plugin build to use (default auto)\n"
          "  QFORGE_THREADS    CPU threads plugins may use (default: all cores)\n"
          "  QFORGE_LOG        debug|info|warn|error (default info)\n\n"
          "exit codes:\n"
          "  0 success   1 operation failed   2 usage error\n"
          "  3 bad input (file, config, data)   4 registry or plugin problem\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    qf__usage(stderr);
    return QF_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    qf__usage(stdout);
    return QF_EXIT_OK;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
    printf("qforge %s (plugin ABI %d.%d)\n", QF_VERSION_STRING, QF_ABI_MAJOR, QF_ABI_MINOR);
    return QF_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof qf__commands / sizeof qf__commands[0]; i++)
    if (!strcmp(argv[1], qf__commands[i].name)) return qf__commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "qforge: error: unknown command '%s'\n\n", argv[1]);
  qf__usage(stderr);
  return QF_EXIT_USAGE;
}

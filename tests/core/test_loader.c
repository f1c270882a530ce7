/*
 * Loader: every way a plugin can fail to load gives a clear error naming the
 * file, and never crashes; backend choice falls back from a 0-score GPU
 * build to the CPU build, and an explicit GPU request fails clearly.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qforge/qforge.h"

static char *tp(const char *name) {
  static char buf[8][1024];
  static int i;
  const char *dir = getenv("QF_TEST_PLUGINS");
  cr_assert(dir, "QF_TEST_PLUGINS not set");
  char *b = buf[i++ % 8];
  snprintf(b, 1024, "%s/%s.so", dir, name);
  return b;
}

static qf_status open_err(const char *path, qf_error *err) {
  qf_plugin *p = NULL;
  qf_error_clear(err);
  qf_status st = qf_plugin_open(path, &p, err);
  qf_plugin_release(p);
  return st;
}

Test(loader, good_plugin_loads) {
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_plugin_open(tp("tp_recording"), &p, &err), QF_OK, "%s", err.message);
  cr_assert_str_eq(p->desc->name, "test");
  cr_assert_eq(p->score, 1);
  cr_assert_eq(p->backend, QF_BACKEND_CPU);
  qf_plugin_release(p);
}

Test(loader, abi_major_mismatch) {
  qf_error err;
  cr_assert_eq(open_err(tp("tp_abi2"), &err), QF_ERR_ABI);
  cr_assert(strstr(err.message, tp("tp_abi2")), "%s", err.message);
  cr_assert(strstr(err.message, "built for qforge ABI 2.0 but this qforge speaks ABI 1.1"), "%s",
            err.message);
}

Test(loader, missing_entry_symbol) {
  qf_error err;
  cr_assert_eq(open_err(tp("tp_noinit"), &err), QF_ERR_ABI);
  cr_assert(strstr(err.message, "not a qforge plugin: no 'qf_plugin_init' symbol"), "%s",
            err.message);
  cr_assert(strstr(err.message, "tp_noinit.so"), "%s", err.message);
}

Test(loader, required_slot_missing) {
  qf_error err;
  cr_assert_eq(open_err(tp("tp_noslot"), &err), QF_ERR_ABI);
  cr_assert(strstr(err.message, "leaves the required slot 'get_config_json' NULL"), "%s",
            err.message);
}

Test(loader, missing_file) {
  qf_error err;
  cr_assert_eq(open_err("/nonexistent/dir/x-cpu.so", &err), QF_ERR_NOT_FOUND);
  cr_assert_str_eq(err.message,
                   "/nonexistent/dir/x-cpu.so: cannot open plugin: No such file or directory");
}

Test(loader, non_elf_file) {
  char path[] = "/tmp/qf_nonelf_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert(write(fd, "this is text, not ELF\n", 22) == 22);
  close(fd);
  qf_error err;
  cr_assert_eq(open_err(path, &err), QF_ERR_ENVIRONMENT);
  cr_assert(strstr(err.message, "dlopen failed: "), "%s", err.message);
  /* dlerror's own words, verbatim */
  cr_assert(strstr(err.message, "invalid ELF header") || strstr(err.message, "file too short"),
            "%s", err.message);
  unlink(path);
}

Test(loader, directory_is_not_a_plugin) {
  qf_error err;
  cr_assert_eq(open_err("/tmp", &err), QF_ERR_INVALID_ARGUMENT);
  cr_assert_str_eq(err.message, "/tmp: not a regular file");
}

static qf_registry_entry entry_with(const char *cpu, const char *cuda) {
  qf_registry_entry e;
  memset(&e, 0, sizeof e);
  e.name = "test";
  e.source = "test-registry:1:1";
  e.builds[0].backend = QF_BACKEND_CPU;
  e.builds[0].path = (char *)cpu;
  e.builds[1].backend = QF_BACKEND_CUDA;
  e.builds[1].path = (char *)cuda;
  e.n_builds = 2;
  return e;
}

static char qf__log_buf[4096];
static void sink(void *u, qf_log_level l, const char *line) {
  strncat(qf__log_buf, line, sizeof qf__log_buf - strlen(qf__log_buf) - 2);
  strcat(qf__log_buf, "\n");
}

Test(loader, gpu_build_without_gpu_falls_back_to_cpu) {
  qf_registry_entry e = entry_with(tp("tp_recording"), tp("tp_gpu0"));
  qf_log_set_sink(sink, NULL);
  qf_plugin *p = NULL;
  qf_build_report rep[3];
  size_t n = 0;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_plugin_choose(&e, QF_BACKEND_AUTO, &p, rep, &n, &err), QF_OK, "%s",
               err.message);
  cr_assert_eq(p->backend, QF_BACKEND_CPU);
  cr_assert_eq(n, 2);
  cr_assert(rep[1].loaded);
  cr_assert_eq(rep[1].score, 0);
  cr_assert(strstr(qf__log_buf, "test: using the cpu build (cuda: no CUDA device or runtime, "
                                "score 0)"),
            "%s", qf__log_buf);
  /* exactly one line */
  cr_assert_eq(strchr(qf__log_buf, '\n'), qf__log_buf + strlen(qf__log_buf) - 1);
  qf_plugin_release(p);
}

Test(loader, explicit_gpu_request_without_gpu_fails_clearly) {
  qf_registry_entry e = entry_with(tp("tp_recording"), tp("tp_gpu0"));
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_plugin_choose(&e, QF_CHOOSE_CUDA, &p, NULL, NULL, &err), QF_ERR_ENVIRONMENT);
  cr_assert_null(p);
  cr_assert_str_eq(err.message,
                   "the cuda build of 'test' loads but scores 0 on this machine (no CUDA device "
                   "or runtime)");
}

Test(loader, requested_backend_absent_from_registry) {
  qf_registry_entry e = entry_with(tp("tp_recording"), tp("tp_gpu0"));
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_plugin_choose(&e, QF_CHOOSE_HIP, &p, NULL, NULL, &err), QF_ERR_NOT_FOUND);
  cr_assert_str_eq(err.message, "scheme 'test' has no hip build in the registry (test-registry:1:1)");
}

Test(loader, broken_cpu_build_reports_why) {
  qf_registry_entry e = entry_with(tp("tp_abi2"), tp("tp_gpu0"));
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_plugin_choose(&e, QF_BACKEND_AUTO, &p, NULL, NULL, &err), QF_ERR_ENVIRONMENT);
  cr_assert(strstr(err.message, "no usable build of 'test' (cpu: "), "%s", err.message);
  cr_assert(strstr(err.message, "ABI 2.0"), "%s", err.message);
  cr_assert(strstr(err.message, "cuda: scores 0"), "%s", err.message);
}

Test(loader, registry_build_kind_must_match_plugin) {
  qf_registry_entry e = entry_with(tp("tp_gpu0"), tp("tp_recording"));
  e.n_builds = 1; /* a CUDA plugin listed as the cpu build */
  qf_plugin *p = NULL;
  qf_error err;
  qf_error_clear(&err);
  qf_build_report rep[3];
  size_t n;
  cr_assert_neq(qf_plugin_choose(&e, QF_BACKEND_AUTO, &p, rep, &n, &err), QF_OK);
  cr_assert(strstr(rep[0].error, "registry lists it as a cpu build but the plugin says cuda"),
            "%s", rep[0].error);
}

Test(loader, backend_env_parsing) {
  cr_assert_eq(qf_backend_choice_parse("auto"), QF_BACKEND_AUTO);
  cr_assert_eq(qf_backend_choice_parse("hip"), QF_CHOOSE_HIP);
  cr_assert_eq(qf_backend_choice_parse("rocm"), -1);
  setenv("QFORGE_BACKEND", "cuda", 1);
  cr_assert_eq(qf_backend_choice_from_env(), QF_CHOOSE_CUDA);
  setenv("QFORGE_BACKEND", "tpu", 1);
  cr_assert_eq(qf_backend_choice_from_env(), QF_BACKEND_AUTO);
}

/* Every built CPU plugin refuses a host of another ABI major, a host table
 * too small for it, and a NULL host, with a message (qf_plugin_check_host). */
Test(loader, every_plugin_checks_its_host) {
  static const char *const plugins[] = {"rtn-cpu", "gguf-cpu", "bnb-cpu", "gptq-cpu", "awq-cpu"};
  const char *dir = getenv("QF_PLUGIN_DIR");
  cr_assert(dir, "QF_PLUGIN_DIR not set");
  for (size_t i = 0; i < sizeof plugins / sizeof plugins[0]; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.so", dir, plugins[i]);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "%s: %s", path, dlerror());
    qf_plugin_init_fn init = (qf_plugin_init_fn)(uintptr_t)dlsym(h, QF_PLUGIN_INIT_SYMBOL);
    cr_assert(init, "%s has no entry point", path);
    qf_host bad = *qf_host_table();
    bad.abi_major = QF_ABI_MAJOR + 1;
    const qf_plugin_desc *d = NULL;
    qf_error err;
    qf_error_clear(&err);
    cr_assert_eq(init(&bad, &d, &err), QF_ERR_ABI, "%s", plugins[i]);
    cr_assert(strstr(err.message, "(majors must match)"), "%s: %s", plugins[i], err.message);
    bad = *qf_host_table();
    bad.struct_size = 16;
    qf_error_clear(&err);
    cr_assert_eq(init(&bad, &d, &err), QF_ERR_ABI, "%s", plugins[i]);
    cr_assert(strstr(err.message, "host table is 16 bytes"), "%s: %s", plugins[i], err.message);
    qf_error_clear(&err);
    cr_assert_eq(init(NULL, &d, &err), QF_ERR_INVALID_ARGUMENT, "%s", plugins[i]);
    qf_error_clear(&err);
    cr_assert_eq(init(qf_host_table(), &d, &err), QF_OK, "%s: %s", plugins[i], err.message);
    cr_assert_not_null(d);
  }
}

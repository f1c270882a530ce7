/*
 * Valid registries: relative path resolution, the quant_methods default,
 * lookups by name and by quant_method, backend names, the search order of
 * qf_registry_load (explicit path, QFORGE_REGISTRY, XDG_CONFIG_HOME, HOME,
 * installed file) and registry.d drop-ins (sorted merge, override with an
 * INFO line, broken drop-in reported). Criterion runs every test in its own
 * process, so setenv / chdir here cannot leak into other tests. Temporary
 * trees come from mkdtemp and are removed at the end of each test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qforge/qforge.h"

/* ---------------------------------------------------------------- helpers */

static char *xprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int r = vasprintf(&s, fmt, ap);
  va_end(ap);
  cr_assert_geq(r, 0);
  return s;
}

/* A fresh temporary folder, realpath'd (paths in the registry are). */
static char *make_tmp(void) {
  char tmpl[] = "/tmp/qf_reg_XXXXXX";
  cr_assert_not_null(mkdtemp(tmpl));
  char *r = realpath(tmpl, NULL);
  cr_assert_not_null(r);
  return r;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

/* mkdir -p for a path below an existing folder. */
static void make_dirs(const char *path) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(buf, 0700);
    *p = '/';
  }
  cr_assert(mkdir(buf, 0700) == 0 || errno == EEXIST, "mkdir %s", buf);
}

static void rm_tree(const char *dir) {
  /* Test folders are small and made here; the shell is simplest. */
  char *cmd = xprintf("rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
  free(cmd);
}

/* A one-plugin registry text. */
static char *one_plugin(const char *name, const char *cpu_path) {
  return xprintf("abi: 1\nplugins:\n  - name: %s\n    builds:\n      cpu: %s\n",
                 name, cpu_path);
}

static void write_plugin_file(const char *path, const char *name,
                              const char *cpu_path) {
  char *t = one_plugin(name, cpu_path);
  write_file(path, t);
  free(t);
}

static const char *data_path(const char *name) {
  static char buf[PATH_MAX];
  const char *root = getenv("QF_SOURCE_DIR");
  cr_assert_not_null(root, "QF_SOURCE_DIR is not set");
  snprintf(buf, sizeof buf, "%s/tests/registry/data/%s", root, name);
  return buf;
}

static void clear_search_env(void) {
  unsetenv("QFORGE_REGISTRY");
  unsetenv("XDG_CONFIG_HOME");
  unsetenv("HOME");
}

/* Captured log lines. */
static char captured[8][1024];
static int n_captured;
static void capture_sink(void *user, qf_log_level level, const char *line) {
  (void)user;
  if (level == QF_LOG_INFO && n_captured < 8)
    snprintf(captured[n_captured++], sizeof captured[0], "%s", line);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* ---------------------------------------------------------------- parsing */

Test(registry_load, valid_file_resolves_paths) {
  char *dir = realpath(data_path(""), NULL);
  const char *path = data_path("valid.yaml");
  cr_assert_not_null(dir);
  char *parent = xprintf("%s", dir);
  *strrchr(parent, '/') = '\0';

  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_file(reg, path, &err), QF_OK, "%s",
               err.message);
  cr_assert_eq(reg->n_files, 1);
  cr_assert_str_eq(reg->files[0], path);
  cr_assert_eq(reg->n_entries, 3);

  const qf_registry_entry *g = &reg->entries[0];
  cr_assert_str_eq(g->name, "gguf");
  cr_assert_str_eq(g->description, "GGUF k-quants");
  cr_assert_eq(g->n_quant_methods, 1);
  cr_assert_str_eq(g->quant_methods[0], "gguf");
  cr_assert_eq(g->n_builds, 3);
  char *want = xprintf("%s/lib/qforge/gguf-cpu.so", dir);
  cr_assert_eq(g->builds[0].backend, QF_BACKEND_CPU);
  cr_assert_str_eq(g->builds[0].path, want);
  free(want);
  want = xprintf("%s/lib/qforge/gguf-cuda.so", dir);
  cr_assert_eq(g->builds[1].backend, QF_BACKEND_CUDA);
  cr_assert_str_eq(g->builds[1].path, want);
  free(want);
  cr_assert_eq(g->builds[2].backend, QF_BACKEND_HIP);
  cr_assert_str_eq(g->builds[2].path, "/opt/qforge/gguf-hip.so");
  want = xprintf("%s:4:5", path);
  cr_assert_str_eq(g->source, want);
  free(want);
  want = xprintf("%s:8:13", path);
  cr_assert_str_eq(g->builds[0].source, want);
  free(want);

  const qf_registry_entry *b = &reg->entries[1];
  cr_assert_str_eq(b->name, "bnb");
  cr_assert_null(b->description);
  cr_assert_eq(b->n_quant_methods, 2);
  cr_assert_str_eq(b->quant_methods[0], "bitsandbytes");
  cr_assert_str_eq(b->quant_methods[1], "bnb_4bit");
  want = xprintf("%s/plugins/bnb-cpu.so", parent);
  cr_assert_str_eq(b->builds[0].path, want);
  free(want);

  const qf_registry_entry *r = &reg->entries[2];
  cr_assert_str_eq(r->name, "rtn");
  cr_assert_eq(r->n_quant_methods, 1, "quant_methods defaults to [name]");
  cr_assert_str_eq(r->quant_methods[0], "rtn");
  cr_assert_eq(r->n_builds, 1);
  want = xprintf("%s/rtn-cpu.so", dir);
  cr_assert_str_eq(r->builds[0].path, want);
  free(want);

  qf_registry_free(reg);
  free(parent);
  free(dir);
}

Test(registry_load, relative_registry_path_uses_its_folder) {
  char *tmp = make_tmp();
  char *sub = xprintf("%s/conf", tmp);
  make_dirs(sub);
  char *file = xprintf("%s/reg.yaml", sub);
  write_plugin_file(file, "rtn", "../lib/./x//rtn.so");
  cr_assert_eq(chdir(tmp), 0);

  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_file(reg, "conf/reg.yaml", &err), QF_OK, "%s",
               err.message);
  char *want = xprintf("%s/lib/x/rtn.so", tmp);
  cr_assert_str_eq(reg->entries[0].builds[0].path, want);
  cr_assert_str_eq(reg->entries[0].source, "conf/reg.yaml:3:5");
  cr_assert_str_eq(reg->files[0], "conf/reg.yaml");
  free(want);
  qf_registry_free(reg);
  rm_tree(tmp);
  free(file);
  free(sub);
  free(tmp);
}

Test(registry_load, virtual_path_and_dotdot_past_root) {
  const char *y = "abi: 1\nplugins:\n  - name: a\n    builds:\n"
                  "      cpu: ../a.so\n      cuda: /../../b.so\n";
  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_string(reg, y, strlen(y),
                                       "/nonexistent-qf-dir/x/reg.yaml", &err),
               QF_OK, "%s", err.message);
  cr_assert_str_eq(reg->entries[0].builds[0].path, "/nonexistent-qf-dir/a.so");
  cr_assert_str_eq(reg->entries[0].builds[1].path, "/b.so");
  qf_registry_free(reg);
}

Test(registry_load, empty_plugin_list_is_valid) {
  const char *y = "abi: 1\nplugins: []\n";
  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_string(reg, y, strlen(y), "e.yaml", &err),
               QF_OK);
  cr_assert_eq(reg->n_entries, 0);
  cr_assert_eq(reg->n_files, 1);
  qf_registry_free(reg);
}

Test(registry_load, find_by_name_and_method) {
  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_file(reg, data_path("valid.yaml"), &err), QF_OK,
               "%s", err.message);
  cr_assert_str_eq(qf_registry_find(reg, "bnb")->name, "bnb");
  cr_assert_null(qf_registry_find(reg, "bitsandbytes"));
  cr_assert_null(qf_registry_find(reg, "awq"));
  cr_assert_str_eq(qf_registry_find_method(reg, "bitsandbytes")->name, "bnb");
  cr_assert_str_eq(qf_registry_find_method(reg, "bnb_4bit")->name, "bnb");
  cr_assert_str_eq(qf_registry_find_method(reg, "gguf")->name, "gguf");
  cr_assert_str_eq(qf_registry_find_method(reg, "rtn")->name, "rtn");
  cr_assert_null(qf_registry_find_method(reg, "bnb"));
  cr_assert_null(qf_registry_find(NULL, "bnb"));
  cr_assert_null(qf_registry_find(reg, NULL));
  qf_registry_free(reg);
}

Test(registry_load, later_file_wins_for_a_method) {
  const char *a = "abi: 1\nplugins:\n  - name: gptq\n    builds: {cpu: a.so}\n";
  const char *b = "abi: 1\nplugins:\n  - name: gptq-fast\n"
                  "    quant_methods: [gptq]\n    builds: {cpu: b.so}\n";
  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_string(reg, a, strlen(a), "a.yaml", &err), QF_OK);
  cr_assert_eq(qf_registry_add_string(reg, b, strlen(b), "b.yaml", &err), QF_OK);
  cr_assert_str_eq(qf_registry_find_method(reg, "gptq")->name, "gptq-fast");
  cr_assert_str_eq(qf_registry_find(reg, "gptq")->name, "gptq");
  qf_registry_free(reg);
}

Test(registry_load, backend_names) {
  cr_assert_str_eq(qf_backend_name(QF_BACKEND_CPU), "cpu");
  cr_assert_str_eq(qf_backend_name(QF_BACKEND_CUDA), "cuda");
  cr_assert_str_eq(qf_backend_name(QF_BACKEND_HIP), "hip");
  cr_assert_str_eq(qf_backend_name((qf_backend)0), "unknown");
  cr_assert_eq(qf_backend_parse("cpu"), QF_BACKEND_CPU);
  cr_assert_eq(qf_backend_parse("cuda"), QF_BACKEND_CUDA);
  cr_assert_eq(qf_backend_parse("hip"), QF_BACKEND_HIP);
  cr_assert_eq(qf_backend_parse("CPU"), 0);
  cr_assert_eq(qf_backend_parse("auto"), 0);
  cr_assert_eq(qf_backend_parse(NULL), 0);
}

/* ---------------------------------------------------------------- search */

Test(registry_load, explicit_path_beats_env) {
  char *tmp = make_tmp();
  char *ex = xprintf("%s/explicit.yaml", tmp), *env = xprintf("%s/env.yaml", tmp);
  write_plugin_file(ex, "fromexplicit", "x.so");
  write_plugin_file(env, "fromenv", "y.so");
  clear_search_env();
  setenv("QFORGE_REGISTRY", env, 1);
  qf_registry *reg = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_load(ex, &reg, &err), QF_OK, "%s", err.message);
  cr_assert_eq(reg->n_entries, 1);
  cr_assert_str_eq(reg->entries[0].name, "fromexplicit");
  cr_assert_str_eq(reg->files[0], ex);
  qf_registry_free(reg);
  rm_tree(tmp);
  free(ex);
  free(env);
  free(tmp);
}

Test(registry_load, env_beats_user_config) {
  char *tmp = make_tmp();
  char *env = xprintf("%s/env.yaml", tmp), *xdg = xprintf("%s/xdg/qforge", tmp);
  make_dirs(xdg);
  char *user = xprintf("%s/registry.yaml", xdg);
  write_plugin_file(env, "fromenv", "y.so");
  write_plugin_file(user, "fromxdg", "z.so");
  clear_search_env();
  setenv("QFORGE_REGISTRY", env, 1);
  char *xdg_home = xprintf("%s/xdg", tmp);
  setenv("XDG_CONFIG_HOME", xdg_home, 1);
  qf_registry *reg = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_load(NULL, &reg, &err), QF_OK, "%s", err.message);
  cr_assert_str_eq(reg->entries[0].name, "fromenv");
  cr_assert_str_eq(reg->files[0], env);
  qf_registry_free(reg);
  rm_tree(tmp);
  free(xdg_home);
  free(user);
  free(xdg);
  free(env);
  free(tmp);
}

Test(registry_load, env_missing_file_is_an_error) {
  char *tmp = make_tmp();
  char *env = xprintf("%s/missing.yaml", tmp);
  char *xdg = xprintf("%s/qforge", tmp);
  make_dirs(xdg);
  char *user = xprintf("%s/registry.yaml", xdg);
  write_plugin_file(user, "fromxdg", "z.so");
  clear_search_env();
  setenv("QFORGE_REGISTRY", env, 1);
  setenv("XDG_CONFIG_HOME", tmp, 1);
  qf_registry *reg = (qf_registry *)1;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_load(NULL, &reg, &err), QF_ERR_IO);
  cr_assert_null(reg);
  char *want = xprintf("%s: cannot read registry file: No such file or "
                       "directory", env);
  cr_assert_str_eq(err.message, want);
  free(want);
  rm_tree(tmp);
  free(user);
  free(xdg);
  free(env);
  free(tmp);
}

Test(registry_load, xdg_config_home) {
  char *tmp = make_tmp();
  char *xdg = xprintf("%s/qforge", tmp);
  make_dirs(xdg);
  char *user = xprintf("%s/registry.yaml", xdg);
  write_plugin_file(user, "fromxdg", "lib/z.so");
  clear_search_env();
  setenv("XDG_CONFIG_HOME", tmp, 1);
  setenv("QFORGE_REGISTRY", "", 1); /* empty counts as unset */
  qf_registry *reg = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_load("", &reg, &err), QF_OK, "%s", err.message);
  cr_assert_str_eq(reg->entries[0].name, "fromxdg");
  cr_assert_str_eq(reg->files[0], user);
  char *want = xprintf("%s/lib/z.so", xdg);
  cr_assert_str_eq(reg->entries[0].builds[0].path, want);
  free(want);
  qf_registry_free(reg);
  rm_tree(tmp);
  free(user);
  free(xdg);
  free(tmp);
}

Test(registry_load, home_config_when_xdg_unset_or_relative) {
  char *tmp = make_tmp();
  char *conf = xprintf("%s/.config/qforge", tmp);
  make_dirs(conf);
  char *user = xprintf("%s/registry.yaml", conf);
  write_plugin_file(user, "fromhome", "z.so");
  clear_search_env();
  setenv("HOME", tmp, 1);
  qf_registry *reg = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_load(NULL, &reg, &err), QF_OK, "%s", err.message);
  cr_assert_str_eq(reg->entries[0].name, "fromhome");
  qf_registry_free(reg);
  /* A relative XDG_CONFIG_HOME is ignored (XDG base directory spec). */
  setenv("XDG_CONFIG_HOME", "relative/config", 1);
  cr_assert_eq(qf_registry_load(NULL, &reg, &err), QF_OK, "%s", err.message);
  cr_assert_str_eq(reg->entries[0].name, "fromhome");
  cr_assert_str_eq(reg->files[0], user);
  qf_registry_free(reg);
  rm_tree(tmp);
  free(user);
  free(conf);
  free(tmp);
}

Test(registry_load, registry_beside_libqforge_before_install_prefix) {
  /* No explicit path, no env, no user file: the registry of the build tree
   * this libqforge lives in (<libdir>/../share/qforge/registry.yaml). */
  char *tmp = make_tmp();
  clear_search_env();
  setenv("XDG_CONFIG_HOME", tmp, 1); /* exists, but has no qforge/ */
  qf_registry *reg = NULL;
  qf_error err;
  qf_error_clear(&err);
  qf_status st = qf_registry_load(NULL, &reg, &err);
  cr_assert_eq(st, QF_OK, "%s", err.message);
  char *want = xprintf("%s/share/qforge/registry.yaml", getenv("QF_BUILD_DIR"));
  char *real_want = realpath(want, NULL);
  cr_assert_not_null(real_want, "%s", want);
  cr_assert_str_eq(reg->files[0], real_want);
  free(want);
  free(real_want);
  qf_registry_free(reg);
  rm_tree(tmp);
  free(tmp);
}

/* ---------------------------------------------------------------- drop-ins */

Test(registry_load, dropins_merge_in_sorted_order) {
  char *tmp = make_tmp();
  char *main_file = xprintf("%s/registry.yaml", tmp);
  char *dd = xprintf("%s/registry.d", tmp);
  make_dirs(dd);
  write_file(main_file,
             "abi: 1\nplugins:\n"
             "  - name: gguf\n    builds: {cpu: lib/gguf.so}\n"
             "  - name: bnb\n    builds: {cpu: lib/bnb.so}\n");
  char *a = xprintf("%s/10-a.yaml", dd), *b = xprintf("%s/20-b.yaml", dd);
  /* Written in reverse order: the merge order must come from the names. */
  write_plugin_file(b, "gguf", "b-gguf.so");
  write_file(a, "abi: 1\nplugins:\n"
                "  - name: gguf\n    builds: {cpu: a-gguf.so}\n"
                "  - name: awq\n    builds: {cuda: awq.so}\n");
  char *ign1 = xprintf("%s/.hidden.yaml", dd), *ign2 = xprintf("%s/x.yml", dd),
       *ign3 = xprintf("%s/README", dd);
  write_file(ign1, "not: [valid");
  write_file(ign2, "not: [valid");
  write_file(ign3, "drop-ins go here\n");

  clear_search_env();
  qf_log_set_level(QF_LOG_INFO);
  qf_log_set_sink(capture_sink, NULL);
  qf_registry *reg = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_load(main_file, &reg, &err), QF_OK, "%s",
               err.message);
  qf_log_set_sink(NULL, NULL);

  cr_assert_eq(reg->n_files, 3);
  cr_assert_str_eq(reg->files[0], main_file);
  cr_assert_str_eq(reg->files[1], a);
  cr_assert_str_eq(reg->files[2], b);
  /* Replaced entries move to the end: order of precedence. */
  cr_assert_eq(reg->n_entries, 3);
  cr_assert_str_eq(reg->entries[0].name, "bnb");
  cr_assert_str_eq(reg->entries[1].name, "awq");
  cr_assert_str_eq(reg->entries[2].name, "gguf");
  const qf_registry_entry *g = qf_registry_find(reg, "gguf");
  char *want = xprintf("%s/b-gguf.so", dd); /* relative to registry.d/ */
  cr_assert_str_eq(g->builds[0].path, want);
  free(want);
  want = xprintf("%s:3:5", b);
  cr_assert_str_eq(g->source, want);
  free(want);
  want = xprintf("%s/lib/bnb.so", tmp);
  cr_assert_str_eq(qf_registry_find(reg, "bnb")->builds[0].path, want);
  free(want);
  cr_assert_eq(qf_registry_find(reg, "awq")->builds[0].backend,
               QF_BACKEND_CUDA);

  cr_assert_eq(n_captured, 2);
  want = xprintf("registry: %s:3:5: plugin 'gguf' replaces the one from "
                 "%s:3:5", a, main_file);
  cr_assert(ends_with(captured[0], want), "log line: %s", captured[0]);
  free(want);
  want = xprintf("registry: %s:3:5: plugin 'gguf' replaces the one from "
                 "%s:3:5", b, a);
  cr_assert(ends_with(captured[1], want), "log line: %s", captured[1]);
  free(want);

  qf_registry_free(reg);
  rm_tree(tmp);
  free(ign1);
  free(ign2);
  free(ign3);
  free(a);
  free(b);
  free(dd);
  free(main_file);
  free(tmp);
}

Test(registry_load, dropins_beside_env_registry) {
  char *tmp = make_tmp();
  char *main_file = xprintf("%s/r.yaml", tmp);
  char *dd = xprintf("%s/registry.d", tmp);
  make_dirs(dd);
  write_plugin_file(main_file, "gguf", "g.so");
  char *d = xprintf("%s/extra.yaml", dd);
  write_plugin_file(d, "thirdparty", "/opt/tp/tp.so");
  clear_search_env();
  setenv("QFORGE_REGISTRY", main_file, 1);
  qf_registry *reg = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_load(NULL, &reg, &err), QF_OK, "%s", err.message);
  cr_assert_eq(reg->n_entries, 2);
  cr_assert_str_eq(qf_registry_find_method(reg, "thirdparty")->builds[0].path,
                   "/opt/tp/tp.so");
  qf_registry_free(reg);
  rm_tree(tmp);
  free(d);
  free(dd);
  free(main_file);
  free(tmp);
}

Test(registry_load, broken_dropin_is_reported) {
  char *tmp = make_tmp();
  char *main_file = xprintf("%s/registry.yaml", tmp);
  char *dd = xprintf("%s/registry.d", tmp);
  make_dirs(dd);
  write_plugin_file(main_file, "gguf", "g.so");
  char *good = xprintf("%s/10-good.yaml", dd);
  char *bad = xprintf("%s/20-bad.yaml", dd);
  write_plugin_file(good, "awq", "awq.so");
  write_file(bad, "abi: 1\nplugins:\n  - name: x\n    builds: {cpu: x.so}\n"
                  "    extra: true\n");
  clear_search_env();
  qf_registry *reg = (qf_registry *)1;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_load(main_file, &reg, &err), QF_ERR_FORMAT);
  cr_assert_null(reg);
  char *want = xprintf("%s:5:5: unknown key 'extra' in a plugin entry "
                       "(allowed: name, description, quant_methods, builds)",
                       bad);
  cr_assert_str_eq(err.message, want);
  free(want);
  rm_tree(tmp);
  free(good);
  free(bad);
  free(dd);
  free(main_file);
  free(tmp);
}

Test(registry_load, broken_main_file_is_reported) {
  char *tmp = make_tmp();
  char *main_file = xprintf("%s/registry.yaml", tmp);
  write_file(main_file, "abi: 2\nplugins: []\n");
  clear_search_env();
  qf_registry *reg = NULL;
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_load(main_file, &reg, &err), QF_ERR_FORMAT);
  cr_assert_null(reg);
  char *want = xprintf("%s:1:6: unsupported registry abi 2 (this qforge reads "
                       "abi 1)", main_file);
  cr_assert_str_eq(err.message, want);
  cr_assert_str_eq(err.op, "registry");
  free(want);
  rm_tree(tmp);
  free(main_file);
  free(tmp);
}

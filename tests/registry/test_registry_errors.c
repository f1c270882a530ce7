/*
 * Malformed registries: each case asserts the exact, complete message
 * ("file:line:col: …", 1-based) and that nothing was added to the registry.
 * Most cases are inline YAML parsed as the virtual file "reg.yaml"; the
 * alias bomb, deep nesting, bad backend and two-document cases are files in
 * tests/registry/data/, found through QF_SOURCE_DIR.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qforge/qforge.h"

/* Parse `yaml` as "reg.yaml"; expect failure with exactly `expected`. */
static void expect_error(const char *yaml, const char *expected) {
  qf_registry *reg = qf_registry_new();
  cr_assert_not_null(reg);
  qf_error err;
  qf_error_clear(&err);
  qf_status st =
      qf_registry_add_string(reg, yaml, strlen(yaml), "reg.yaml", &err);
  cr_assert_eq(st, QF_ERR_FORMAT, "status %d for: %s", st, yaml);
  cr_assert_eq(err.code, QF_ERR_FORMAT);
  cr_assert_str_eq(err.message, expected);
  cr_assert_eq(reg->n_entries, 0);
  cr_assert_eq(reg->n_files, 0);
  qf_registry_free(reg);
}

/* Full path of a data file (static buffer). */
static const char *data_path(const char *name) {
  static char buf[4096];
  const char *root = getenv("QF_SOURCE_DIR");
  cr_assert_not_null(root, "QF_SOURCE_DIR is not set");
  snprintf(buf, sizeof buf, "%s/tests/registry/data/%s", root, name);
  return buf;
}

/* Load data file `name`; expect `fmt` with the file's path as its one %s. */
static void expect_file_error(const char *name, qf_status code,
                              const char *fmt) {
  const char *path = data_path(name);
  char expected[8192];
  snprintf(expected, sizeof expected, fmt, path);
  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_file(reg, path, &err), code);
  cr_assert_str_eq(err.message, expected);
  cr_assert_eq(reg->n_entries, 0);
  qf_registry_free(reg);
}

#define HEAD "abi: 1\nplugins:\n"

/* ---------------------------------------------------------------- keys */

Test(registry_errors, unknown_top_level_key) {
  expect_error(HEAD "  []\nextra: 3\n",
               "reg.yaml:4:1: unknown key 'extra' at the top level "
               "(allowed: abi, plugins)");
}

Test(registry_errors, unknown_entry_key) {
  expect_error(HEAD "  - name: gguf\n    bulids:\n      cpu: a.so\n",
               "reg.yaml:4:5: unknown key 'bulids' in a plugin entry "
               "(allowed: name, description, quant_methods, builds)");
}

Test(registry_errors, duplicate_top_level_key) {
  expect_error("abi: 1\nplugins: []\nabi: 1\n",
               "reg.yaml:3:1: duplicate key 'abi' at the top level (first at "
               "line 1, column 1)");
}

Test(registry_errors, duplicate_entry_key) {
  expect_error(HEAD "  - name: a\n    name: b\n    builds: {cpu: a.so}\n",
               "reg.yaml:4:5: duplicate key 'name' in a plugin entry (first "
               "at line 3, column 5)");
}

Test(registry_errors, duplicate_backend) {
  expect_error(HEAD "  - name: a\n    builds:\n      cpu: a.so\n"
                    "      cpu: b.so\n",
               "reg.yaml:6:7: duplicate key 'cpu' in builds of plugin 'a' "
               "(first at line 5, column 7)");
}

Test(registry_errors, earliest_repeat_is_reported) {
  expect_error("abi: 1\nplugins: []\nb: 1\nc: 2\nc: 3\nb: 4\nc: 5\n",
               "reg.yaml:5:1: duplicate key 'c' at the top level (first at "
               "line 4, column 1)");
}

Test(registry_errors, many_keys_checked_quickly) {
  /* 50 000 distinct keys: the duplicate check sorts, it is not n^2. */
  size_t n = 50000, cap = n * 16 + 64, o = 0;
  char *y = malloc(cap);
  cr_assert_not_null(y);
  o += (size_t)snprintf(y + o, cap - o, "abi: 1\nplugins: []\n");
  for (size_t i = 0; i < n; i++)
    o += (size_t)snprintf(y + o, cap - o, "k%zu: 1\n", i);
  o += (size_t)snprintf(y + o, cap - o, "k777: 2\n");
  expect_error(y, "reg.yaml:50003:1: duplicate key 'k777' at the top level "
                  "(first at line 780, column 1)");
  free(y);
}

Test(registry_errors, non_string_key) {
  expect_error("{[a]: 1}",
               "reg.yaml:1:2: keys must be strings at the top level, got a "
               "sequence");
}

Test(registry_errors, missing_name) {
  expect_error(HEAD "  - builds: {cpu: a.so}\n",
               "reg.yaml:3:5: missing required key 'name' in a plugin entry");
}

Test(registry_errors, missing_builds) {
  expect_error(HEAD "  - name: gguf\n",
               "reg.yaml:3:5: missing required key 'builds' in plugin 'gguf'");
}

Test(registry_errors, missing_plugins) {
  expect_error("abi: 1\n",
               "reg.yaml:1:1: missing required key 'plugins' at the top level");
}

/* ---------------------------------------------------------------- abi */

Test(registry_errors, abi_missing) {
  expect_error("plugins: []\n",
               "reg.yaml:1:1: missing required key 'abi' (this qforge reads "
               "abi 1)");
}

Test(registry_errors, abi_unsupported) {
  /* abi is checked before unknown keys: a newer file may bring new ones. */
  expect_error("abi: 2\nplugins: []\nnewer_key: x\n",
               "reg.yaml:1:6: unsupported registry abi 2 (this qforge reads "
               "abi 1)");
}

Test(registry_errors, abi_quoted) {
  expect_error("abi: \"1\"\nplugins: []\n",
               "reg.yaml:1:6: 'abi' must be an integer, got the quoted string "
               "'1'");
}

Test(registry_errors, abi_float) {
  expect_error("abi: 1.0\nplugins: []\n",
               "reg.yaml:1:6: 'abi' must be an integer, got '1.0'");
}

Test(registry_errors, abi_mapping) {
  expect_error("abi: {major: 1}\nplugins: []\n",
               "reg.yaml:1:6: 'abi' must be an integer, got a mapping");
}

/* ---------------------------------------------------------------- types */

Test(registry_errors, top_level_sequence) {
  expect_error("- abi: 1\n",
               "reg.yaml:1:1: the top level must be a mapping with 'abi' and "
               "'plugins', got a sequence");
}

Test(registry_errors, plugins_not_sequence) {
  expect_error("abi: 1\nplugins: {gguf: 1}\n",
               "reg.yaml:2:10: 'plugins' must be a sequence, got a mapping");
}

Test(registry_errors, entry_not_mapping) {
  expect_error("abi: 1\nplugins: [gguf]\n",
               "reg.yaml:2:11: each entry of 'plugins' must be a mapping, got "
               "'gguf'");
}

Test(registry_errors, name_not_string) {
  expect_error(HEAD "  - name: [gguf]\n    builds: {cpu: a.so}\n",
               "reg.yaml:3:11: 'name' must be a string, got a sequence");
}

Test(registry_errors, builds_not_mapping) {
  expect_error(HEAD "  - name: gguf\n    builds: [a.so]\n",
               "reg.yaml:4:13: 'builds' of plugin 'gguf' must be a mapping "
               "of backend to path, got a sequence");
}

Test(registry_errors, build_path_not_string) {
  expect_error(HEAD "  - name: gguf\n    builds:\n      cpu: {path: a.so}\n",
               "reg.yaml:5:12: build path 'cpu' of plugin 'gguf' must be a "
               "string, got a mapping");
}

Test(registry_errors, build_path_null) {
  expect_error(HEAD "  - name: gguf\n    builds:\n      cpu:\n      hip: a\n",
               "reg.yaml:5:11: build path 'cpu' of plugin 'gguf' must be a "
               "string, got null");
}

Test(registry_errors, build_path_empty) {
  expect_error(HEAD "  - name: gguf\n    builds: {cpu: \"\"}\n",
               "reg.yaml:4:19: build path 'cpu' of plugin 'gguf' is empty");
}

Test(registry_errors, description_not_string) {
  expect_error(HEAD "  - name: gguf\n    description: [x]\n"
                    "    builds: {cpu: a.so}\n",
               "reg.yaml:4:18: 'description' of plugin 'gguf' must be a "
               "string, got a sequence");
}

Test(registry_errors, quant_methods_not_sequence) {
  expect_error(HEAD "  - name: gguf\n    quant_methods: gguf\n"
                    "    builds: {cpu: a.so}\n",
               "reg.yaml:4:20: 'quant_methods' of plugin 'gguf' must be a "
               "sequence of strings, got 'gguf'");
}

Test(registry_errors, quant_methods_empty) {
  expect_error(HEAD "  - name: gguf\n    quant_methods: []\n"
                    "    builds: {cpu: a.so}\n",
               "reg.yaml:4:20: 'quant_methods' of plugin 'gguf' is empty "
               "(leave it out to default to [gguf])");
}

Test(registry_errors, quant_method_not_string) {
  expect_error(HEAD "  - name: gguf\n    quant_methods: [gguf, {a: 1}]\n"
                    "    builds: {cpu: a.so}\n",
               "reg.yaml:4:27: each entry of 'quant_methods' of plugin 'gguf' "
               "must be a string, got a mapping");
}

Test(registry_errors, quant_method_duplicate) {
  expect_error(HEAD "  - name: gguf\n    quant_methods: [gguf, gguf]\n"
                    "    builds: {cpu: a.so}\n",
               "reg.yaml:4:27: duplicate quant_method 'gguf' in plugin "
               "'gguf'");
}

/* ---------------------------------------------------------------- semantics */

Test(registry_errors, unknown_backend_inline) {
  expect_error(HEAD "  - name: gguf\n    builds: {cpu: a.so, rocm: b.so}\n",
               "reg.yaml:4:25: unknown backend 'rocm' in builds of plugin "
               "'gguf' (allowed: cpu, cuda, hip)");
}

Test(registry_errors, unknown_backend_file) {
  expect_file_error("bad_backend.yaml", QF_ERR_FORMAT,
                    "%s:8:7: unknown backend 'cudaa' in builds of plugin "
                    "'gguf' (allowed: cpu, cuda, hip)");
}

Test(registry_errors, empty_builds) {
  expect_error(HEAD "  - name: gguf\n    builds: {}\n",
               "reg.yaml:4:13: 'builds' of plugin 'gguf' is empty (give at "
               "least one of cpu, cuda, hip)");
}

Test(registry_errors, invalid_name_uppercase) {
  expect_error(HEAD "  - name: GGUF\n    builds: {cpu: a.so}\n",
               "reg.yaml:3:11: invalid plugin name 'GGUF' (use only a-z, 0-9, "
               "'_' and '-')");
}

Test(registry_errors, invalid_name_space) {
  expect_error(HEAD "  - name: \"my plugin\"\n    builds: {cpu: a.so}\n",
               "reg.yaml:3:11: invalid plugin name 'my plugin' (use only a-z, "
               "0-9, '_' and '-')");
}

Test(registry_errors, invalid_name_empty) {
  expect_error(HEAD "  - name: ''\n    builds: {cpu: a.so}\n",
               "reg.yaml:3:11: invalid plugin name '' (use only a-z, 0-9, '_' "
               "and '-')");
}

Test(registry_errors, name_too_long) {
  expect_error(HEAD "  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaa\n    builds: {cpu: a.so}\n",
               "reg.yaml:3:11: plugin name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is too long (64 characters; "
               "the limit is 63)");
}

Test(registry_errors, duplicate_plugin_name) {
  expect_error(HEAD "  - name: gguf\n    builds: {cpu: a.so}\n"
                    "  - name: gguf\n    builds: {cpu: b.so}\n",
               "reg.yaml:5:11: duplicate plugin name 'gguf' (first at line 3, "
               "column 11)");
}

/* ---------------------------------------------------------------- documents */

Test(registry_errors, empty_file) {
  expect_error("",
               "reg.yaml:1:1: registry file is empty (expected a mapping with "
               "'abi' and 'plugins')");
}

Test(registry_errors, comments_only) {
  expect_error("# nothing here\n\n",
               "reg.yaml:1:1: registry file is empty (expected a mapping with "
               "'abi' and 'plugins')");
}

Test(registry_errors, empty_document) {
  expect_error("# header\n---\n...\n",
               "reg.yaml:2:1: registry document is empty (expected a mapping "
               "with 'abi' and 'plugins')");
}

Test(registry_errors, second_document_inline) {
  expect_error("abi: 1\nplugins: []\n--- {abi: 1, plugins: []}\n",
               "reg.yaml:3:1: a second YAML document starts here (a registry "
               "file holds exactly one)");
}

Test(registry_errors, second_document_file) {
  expect_file_error("two_docs.yaml", QF_ERR_FORMAT,
                    "%s:3:1: a second YAML document starts here (a registry "
                    "file holds exactly one)");
}

Test(registry_errors, alias_inline) {
  expect_error(HEAD "  - &p\n    name: a\n    builds: {cpu: a.so}\n  - *p\n",
               "reg.yaml:6:5: YAML aliases are not allowed in a registry "
               "(found *p)");
}

Test(registry_errors, merge_key_alias) {
  expect_error(HEAD "  - &base {name: a, builds: {cpu: a.so}}\n"
                    "  - <<: *base\n    name: b\n",
               "reg.yaml:4:9: YAML aliases are not allowed in a registry "
               "(found *base)");
}

Test(registry_errors, alias_bomb_file) {
  expect_file_error("alias_bomb.yaml", QF_ERR_FORMAT,
                    "%s:5:8: YAML aliases are not allowed in a registry "
                    "(found *a)");
}

Test(registry_errors, deep_nesting_file) {
  expect_file_error("deep.yaml", QF_ERR_FORMAT,
                    "%s:5:47: nesting is deeper than 32 levels");
}

Test(registry_errors, deep_nesting_generated) {
  /* 10 000 levels: rejected quickly, without building the tree. */
  size_t n = 10000;
  char *y = malloc(2 * n + 64);
  cr_assert_not_null(y);
  strcpy(y, "abi: ");
  memset(y + 5, '[', n);
  memset(y + 5 + n, ']', n);
  y[5 + 2 * n] = '\0';
  expect_error(y, "reg.yaml:1:37: nesting is deeper than 32 levels");
  free(y);
}

/* ---------------------------------------------------------------- syntax */

Test(registry_errors, syntax_bad_indent) {
  expect_error(HEAD "  - name: a\n   builds: {}\n",
               "reg.yaml:4:4: YAML syntax error: did not find expected '-' "
               "indicator (while parsing a block collection at line 3, "
               "column 3)");
}

Test(registry_errors, syntax_unclosed_flow) {
  expect_error("abi: 1\nplugins: [\n",
               "reg.yaml:3:1: YAML syntax error: did not find expected node "
               "content (while parsing a flow node at line 3, column 1)");
}

Test(registry_errors, syntax_tab_indent) {
  expect_error("abi: 1\nplugins:\n\t- name: a\n",
               "reg.yaml:3:1: YAML syntax error: found character that cannot "
               "start any token (while scanning for the next token at line "
               "3, column 1)");
}

Test(registry_errors, invalid_utf8) {
  expect_error("abi: 1\xff\n",
               "reg.yaml:1:7: invalid YAML input: invalid leading UTF-8 octet "
               "(#FF)");
}

/* ---------------------------------------------------------------- files */

Test(registry_errors, unreadable_missing_file) {
  char dir[] = "/tmp/qf_reg_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[256], expected[512];
  snprintf(path, sizeof path, "%s/nope.yaml", dir);
  snprintf(expected, sizeof expected,
           "%s: cannot read registry file: No such file or directory", path);
  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_file(reg, path, &err), QF_ERR_IO);
  cr_assert_str_eq(err.message, expected);
  qf_registry_free(reg);
  rmdir(dir);
}

Test(registry_errors, unreadable_directory) {
  char dir[] = "/tmp/qf_reg_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char expected[512];
  snprintf(expected, sizeof expected,
           "%s: cannot read registry file: Is a directory", dir);
  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_file(reg, dir, &err), QF_ERR_IO);
  cr_assert_str_eq(err.message, expected);
  qf_registry_free(reg);
  rmdir(dir);
}

Test(registry_errors, file_too_large) {
  char dir[] = "/tmp/qf_reg_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[256], expected[512];
  snprintf(path, sizeof path, "%s/big.yaml", dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("abi: 1\nplugins: []\n", f);
  for (int i = 0; i < 300 * 1024 / 16; i++) fputs("# padding......\n", f);
  long size = ftell(f);
  fclose(f);
  snprintf(expected, sizeof expected,
           "%s: registry file is too large (%ld bytes; the limit is 262144)",
           path, size);
  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  cr_assert_eq(qf_registry_add_file(reg, path, &err), QF_ERR_FORMAT);
  cr_assert_str_eq(err.message, expected);
  qf_registry_free(reg);
  unlink(path);
  rmdir(dir);
}

Test(registry_errors, error_keeps_registry_unchanged) {
  qf_registry *reg = qf_registry_new();
  qf_error err;
  qf_error_clear(&err);
  const char *ok = HEAD "  - name: a\n    builds: {cpu: a.so}\n";
  cr_assert_eq(qf_registry_add_string(reg, ok, strlen(ok), "ok.yaml", &err),
               QF_OK);
  /* Second file: first entry valid, second broken -> nothing merged. */
  const char *bad = HEAD "  - name: a\n    builds: {cpu: new.so}\n"
                         "  - name: b\n    builds: {gpu: b.so}\n";
  cr_assert_eq(qf_registry_add_string(reg, bad, strlen(bad), "bad.yaml", &err),
               QF_ERR_FORMAT);
  cr_assert_str_eq(err.message,
                   "bad.yaml:6:14: unknown backend 'gpu' in builds of plugin "
                   "'b' (allowed: cpu, cuda, hip)");
  cr_assert_eq(reg->n_entries, 1);
  cr_assert_eq(reg->n_files, 1);
  cr_assert_str_eq(reg->files[0], "ok.yaml");
  const qf_registry_entry *e = qf_registry_find(reg, "a");
  cr_assert_not_null(e);
  cr_assert_str_eq(e->source, "ok.yaml:3:5");
  qf_registry_free(reg);
}

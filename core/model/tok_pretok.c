/*
 * Pre-tokenization for byte-level BPE, implemented by hand: UTF-8 decoding,
 * Unicode letter / number / white-space classes (range tables for the common
 * scripts, not the full UCD), GPT-2's bytes_to_unicode alphabet, and the two
 * regex families used by GPT-2 and by Llama 3 / Qwen2 tokenizers, each
 * reproduced alternative by alternative with the regex engine's leftmost-
 * first semantics (including the backtracking of \s+(?!\S) and \s*[\r\n]+).
 */
#include <string.h>

#include "tok_internal.h"

/* ---------------------------------------------------------------- UTF-8 */

size_t qf__utf8_decode(const char *s, size_t len, uint32_t *cp, size_t *off) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, n = 0;
  while (i < len) {
    uint32_t c = u[i];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
                              : (c >> 3) == 30 ? 4 : 0;
    uint32_t v = k == 1 ? c : k == 2 ? (c & 0x1f) : k == 3 ? (c & 0x0f)
                                                           : (c & 0x07);
    int ok = k > 0 && i + k <= len;
    for (size_t j = 1; ok && j < k; j++) {
      if ((u[i + j] & 0xc0) != 0x80) ok = 0;
      else v = (v << 6) | (u[i + j] & 0x3f);
    }
    if (ok && ((k == 2 && v < 0x80) || (k == 3 && v < 0x800) ||
               (k == 4 && (v < 0x10000 || v > 0x10ffff)) ||
               (v >= 0xd800 && v <= 0xdfff)))
      ok = 0;
    if (!ok) {
      k = 1;
      v = 0xfffd;
    }
    off[n] = i;
    cp[n++] = v;
    i += k;
  }
  off[n] = len;
  return n;
}

int qf__utf8_encode(uint32_t c, char *out) {
  if (c < 0x80) {
    out[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (char)(0xc0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3f));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char)(0xe0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[2] = (char)(0x80 | (c & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (c >> 18));
  out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
  out[3] = (char)(0x80 | (c & 0x3f));
  return 4;
}

/* ---------------------------------------------------------------- classes */

typedef struct range {
  uint32_t lo, hi;
} range;

static const range k_space[] = {
    {0x09, 0x0d}, {0x20, 0x20}, {0x85, 0x85}, {0xa0, 0xa0},
    {0x1680, 0x1680}, {0x2000, 0x200a}, {0x2028, 0x2029}, {0x202f, 0x202f},
    {0x205f, 0x205f}, {0x3000, 0x3000}};

static const range k_number[] = {
    {0x30, 0x39}, {0xb2, 0xb3}, {0xb9, 0xb9}, {0xbc, 0xbe},
    {0x660, 0x669}, {0x6f0, 0x6f9}, {0x7c0, 0x7c9}, {0x966, 0x96f},
    {0x9e6, 0x9ef}, {0xa66, 0xa6f}, {0xae6, 0xaef}, {0xb66, 0xb6f},
    {0xbe6, 0xbf2}, {0xc66, 0xc6f}, {0xce6, 0xcef}, {0xd66, 0xd78},
    {0xe50, 0xe59}, {0xed0, 0xed9}, {0xf20, 0xf33}, {0x1040, 0x1049},
    {0x17e0, 0x17e9}, {0x1810, 0x1819}, {0x2070, 0x2070}, {0x2074, 0x2079},
    {0x2080, 0x2089}, {0x2150, 0x2182}, {0x2185, 0x2189}, {0x2460, 0x249b},
    {0x24ea, 0x24ff}, {0x2776, 0x2793}, {0x3007, 0x3007}, {0x3021, 0x3029},
    {0x3038, 0x303a}, {0x3192, 0x3195}, {0x3220, 0x3229}, {0x3248, 0x324f},
    {0x3251, 0x325f}, {0x3280, 0x3289}, {0x32b1, 0x32bf}, {0xff10, 0xff19},
    {0x1d7ce, 0x1d7ff}, {0x1f100, 0x1f10c}};

static const range k_letter[] = {
    {0x41, 0x5a}, {0x61, 0x7a}, {0xaa, 0xaa}, {0xb5, 0xb5},
    {0xba, 0xba}, {0xc0, 0xd6}, {0xd8, 0xf6}, {0xf8, 0x2c1},
    {0x2c6, 0x2d1}, {0x2e0, 0x2e4}, {0x2ec, 0x2ec}, {0x2ee, 0x2ee},
    {0x370, 0x374}, {0x376, 0x377}, {0x37a, 0x37d}, {0x37f, 0x37f},
    {0x386, 0x386}, {0x388, 0x38a}, {0x38c, 0x38c}, {0x38e, 0x3a1},
    {0x3a3, 0x3f5}, {0x3f7, 0x481}, {0x48a, 0x52f}, {0x531, 0x556},
    {0x559, 0x559}, {0x560, 0x588}, {0x5d0, 0x5ea}, {0x5ef, 0x5f2},
    {0x620, 0x64a}, {0x66e, 0x66f}, {0x671, 0x6d3}, {0x6d5, 0x6d5},
    {0x6e5, 0x6e6}, {0x6ee, 0x6ef}, {0x6fa, 0x6fc}, {0x6ff, 0x6ff},
    {0x710, 0x710}, {0x712, 0x72f}, {0x74d, 0x7a5}, {0x7b1, 0x7b1},
    {0x904, 0x939}, {0x93d, 0x93d}, {0x950, 0x950}, {0x958, 0x961},
    {0x971, 0x980}, {0x985, 0x9b9}, {0xa05, 0xa39}, {0xa85, 0xab9},
    {0xb05, 0xb39}, {0xb85, 0xbb9}, {0xc05, 0xc39}, {0xc85, 0xcb9},
    {0xd05, 0xd3a}, {0xd85, 0xdc6}, {0xe01, 0xe30}, {0xe32, 0xe33},
    {0xe40, 0xe46}, {0xe81, 0xeb0}, {0xf00, 0xf00}, {0xf40, 0xf6c},
    {0x1000, 0x102a}, {0x10a0, 0x10fa}, {0x10fc, 0x1248}, {0x1250, 0x135a},
    {0x13a0, 0x13f5}, {0x1401, 0x166c}, {0x1780, 0x17b3}, {0x1820, 0x1878},
    {0x1e00, 0x1f15}, {0x1f18, 0x1fbc}, {0x1fc2, 0x1ffc}, {0x2071, 0x2071},
    {0x207f, 0x207f}, {0x2090, 0x209c}, {0x2102, 0x2102}, {0x2107, 0x2107},
    {0x210a, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211d}, {0x2124, 0x2124},
    {0x2126, 0x2126}, {0x2128, 0x2128}, {0x212a, 0x212d}, {0x212f, 0x2139},
    {0x2c00, 0x2ce4}, {0x2d00, 0x2d25}, {0x3005, 0x3006}, {0x3031, 0x3035},
    {0x303b, 0x303c}, {0x3041, 0x3096}, {0x309d, 0x309f}, {0x30a1, 0x30fa},
    {0x30fc, 0x30ff}, {0x3105, 0x312f}, {0x3131, 0x318e}, {0x31a0, 0x31bf},
    {0x31f0, 0x31ff}, {0x3400, 0x4dbf}, {0x4e00, 0x9fff}, {0xa000, 0xa48c},
    {0xa640, 0xa66e}, {0xa680, 0xa69d}, {0xa722, 0xa788}, {0xa78b, 0xa7ca},
    {0xac00, 0xd7a3}, {0xf900, 0xfa6d}, {0xfb00, 0xfb06}, {0xfb1d, 0xfdfb},
    {0xfe70, 0xfefc}, {0xff21, 0xff3a}, {0xff41, 0xff5a}, {0xff66, 0xffdc},
    {0x10400, 0x1044f}, {0x1d400, 0x1d7cb}, {0x20000, 0x2fa1d}};

static int in_ranges(const range *r, size_t n, uint32_t c) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (c < r[mid].lo) hi = mid;
    else if (c > r[mid].hi) lo = mid + 1;
    else return 1;
  }
  return 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

char qf__uni_class(uint32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 'L';
    if (c >= '0' && c <= '9') return 'N';
    if (c == ' ' || (c >= 0x09 && c <= 0x0d)) return 'S';
    return 'O';
  }
  if (in_ranges(k_space, COUNT(k_space), c)) return 'S';
  if (in_ranges(k_number, COUNT(k_number), c)) return 'N';
  if (in_ranges(k_letter, COUNT(k_letter), c)) return 'L';
  return 'O';
}

/* ---------------------------------------------------------------- byte level */

static int printable_byte(unsigned b) {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) ||
         (b >= 0xae && b <= 0xff);
}

uint32_t qf__byte_to_cp(unsigned b) {
  if (printable_byte(b)) return b;
  uint32_t n = 0;
  for (unsigned i = 0; i < b; i++)
    if (!printable_byte(i)) n++;
  return 256 + n;
}

int qf__cp_to_byte(uint32_t cp) {
  if (cp < 256) return printable_byte(cp) ? (int)cp : -1;
  uint32_t n = 0;
  for (unsigned i = 0; i < 256; i++)
    if (!printable_byte(i)) {
      if (256 + n == cp) return (int)i;
      n++;
    }
  return -1;
}

/* ---------------------------------------------------------------- regexes */

static const char k_re_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)|\\s+";
static const char k_re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|"
    "\\s+";
static const char k_re_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

int qf__pretok_from_regex(const char *re, qf__pretok *style, int *max_digits) {
  if (!strcmp(re, k_re_gpt2)) {
    *style = QF__PRETOK_GPT2;
    *max_digits = 0;
  } else if (!strcmp(re, k_re_llama3)) {
    *style = QF__PRETOK_LLAMA3;
    *max_digits = 3;
  } else if (!strcmp(re, k_re_qwen2)) {
    *style = QF__PRETOK_LLAMA3;
    *max_digits = 1;
  } else {
    return 0;
  }
  return 1;
}

static uint32_t fold(uint32_t c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* 's 't 're 've 'm 'll 'd at i → length (0 if none). */
static size_t contraction(const uint32_t *cp, size_t n, size_t i, int ci) {
  if (cp[i] != '\'' || i + 1 >= n) return 0;
  uint32_t a = ci ? fold(cp[i + 1]) : cp[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= n) return 0;
  uint32_t b = ci ? fold(cp[i + 2]) : cp[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
      (a == 'l' && b == 'l'))
    return 3;
  return 0;
}

static size_t run(const uint32_t *cp, size_t n, size_t j, char cls) {
  while (j < n && qf__uni_class(cp[j]) == cls) j++;
  return j;
}

static int is_nl(uint32_t c) { return c == '\r' || c == '\n'; }

/* \s+(?!\S) then \s+, for a white-space run starting at i. */
static size_t space_tail(const uint32_t *cp, size_t n, size_t i) {
  size_t e = run(cp, n, i, 'S');
  if (e == n || e - 1 == i) return e;
  return e - 1;
}

static size_t next_gpt2(const uint32_t *cp, size_t n, size_t i) {
  size_t k = contraction(cp, n, i, 0);
  if (k) return i + k;
  size_t j = i + (cp[i] == ' ' && i + 1 < n);
  char c = qf__uni_class(cp[j]);
  if (c != 'S') return run(cp, n, j, c); /* ' ?\p{L}+', ' ?\p{N}+', ' ?[^…]+' */
  return space_tail(cp, n, i);
}

static size_t next_llama3(const uint32_t *cp, size_t n, size_t i, int digits) {
  size_t k = contraction(cp, n, i, 1);
  if (k) return i + k;
  char c0 = qf__uni_class(cp[i]);
  if (c0 == 'L') return run(cp, n, i, 'L');
  if (c0 != 'N' && !is_nl(cp[i]) && i + 1 < n &&
      qf__uni_class(cp[i + 1]) == 'L')
    return run(cp, n, i + 1, 'L');
  if (c0 == 'N') {
    size_t j = i;
    while (j < n && (int)(j - i) < digits && qf__uni_class(cp[j]) == 'N') j++;
    return j;
  }
  size_t j = i + (cp[i] == ' ' && i + 1 < n);
  if (qf__uni_class(cp[j]) == 'O') {
    j = run(cp, n, j, 'O');
    while (j < n && is_nl(cp[j])) j++;
    return j;
  }
  /* c0 is white space here */
  size_t e = run(cp, n, i, 'S');
  for (size_t q = e; q > i; q--)
    if (is_nl(cp[q - 1])) return q;
  return space_tail(cp, n, i);
}

size_t qf__pretok_split(qf__pretok style, int max_digits, const uint32_t *cp,
                        size_t n, size_t *ends) {
  size_t i = 0, k = 0;
  if (style == QF__PRETOK_NONE) {
    if (n) ends[k++] = n;
    return k;
  }
  while (i < n) {
    size_t e = style == QF__PRETOK_GPT2 ? next_gpt2(cp, n, i)
                                        : next_llama3(cp, n, i, max_digits);
    if (e <= i) e = i + 1; /* cannot happen; guards against a stall */
    ends[k++] = e;
    i = e;
  }
  return k;
}

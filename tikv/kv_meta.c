/* kv_meta.c — see kv_meta.h. */
#include "kv_meta.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "kv_file.h"

/* Copies the string field name of o into buf. 0, or -1 with err naming path and field. */
static int get_string(const json_t *o, const char *name, char *buf, size_t len, const char *path,
                      char *err, size_t errlen)
{
    const char *s = json_string_value(json_object_get(o, name));
    if (!s || strlen(s) >= len || s[0] == '\0') {
        snprintf(err, errlen, "data dir meta %s: field \"%s\" is missing or not a valid string",
                 path, name);
        return -1;
    }
    memcpy(buf, s, strlen(s) + 1);
    return 0;
}

static int expect_value(const char *got, const char *want, const char *name, const char *path,
                        char *err, size_t errlen)
{
    if (strcmp(got, want) == 0)
        return 0;
    snprintf(err, errlen, "data dir meta %s: field \"%s\" is \"%s\"; this build knows only \"%s\"",
             path, name, got, want);
    return -1;
}

static int parse_encryption(const json_t *o, struct kv_meta *m, const char *path, char *err,
                            size_t errlen)
{
    if (get_string(o, "cipher", m->cipher, sizeof m->cipher, path, err, errlen) != 0 ||
        expect_value(m->cipher, KV_META_CIPHER, "cipher", path, err, errlen) != 0 ||
        get_string(o, "kdf", m->kdf, sizeof m->kdf, path, err, errlen) != 0 ||
        expect_value(m->kdf, KV_META_KDF, "kdf", path, err, errlen) != 0 ||
        get_string(o, "key_check", m->key_check, sizeof m->key_check, path, err, errlen) != 0)
        return -1;
    if (strlen(m->key_check) != 2 * CIPHERFILE_CHECK_LEN ||
        strspn(m->key_check, "0123456789abcdef") != 2 * CIPHERFILE_CHECK_LEN) {
        snprintf(err, errlen, "data dir meta %s: field \"key_check\" is not %d lowercase hex digits",
                 path, 2 * CIPHERFILE_CHECK_LEN);
        return -1;
    }
    return 0;
}

static int parse_meta(const json_t *o, struct kv_meta *m, const char *path, char *err,
                      size_t errlen)
{
    char format[32];
    memset(m, 0, sizeof *m);
    if (get_string(o, "format", format, sizeof format, path, err, errlen) != 0 ||
        expect_value(format, KV_META_FORMAT, "format", path, err, errlen) != 0 ||
        get_string(o, "created", m->created, sizeof m->created, path, err, errlen) != 0)
        return -1;
    const json_t *enc = json_object_get(o, "encrypted");
    if (!json_is_boolean(enc)) {
        snprintf(err, errlen, "data dir meta %s: field \"encrypted\" is missing or not a boolean",
                 path);
        return -1;
    }
    m->encrypted = json_is_true(enc);
    return m->encrypted ? parse_encryption(o, m, path, err, errlen) : 0;
}

int kv_meta_load(const char *dir, struct kv_meta *out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (kv_file_join(path, sizeof path, dir, KV_META_FILE, err, errlen) != 0)
        return -1;
    int exists = kv_file_exists(path, err, errlen);
    if (exists <= 0)
        return exists == 0 ? 1 : -1;
    json_error_t jerr;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "data dir meta %s: not a JSON object: %s", path, jerr.text);
        json_decref(o);
        return -1;
    }
    int rc = parse_meta(o, out, path, err, errlen);
    json_decref(o);
    return rc;
}

/* Compares two equal-length strings without an early exit. */
static int differs(const char *a, const char *b, size_t n)
{
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d != 0;
}

int kv_meta_admit(const char *dir, const struct kv_meta *m, const struct cipher_keys *keys,
                  char *err, size_t errlen)
{
    if (keys && !m->encrypted) {
        snprintf(err, errlen,
                 "encryption cannot be turned on for an existing plaintext data dir %s (it was "
                 "written without a cipher-file): remove [security] cipher-file or use a new "
                 "data dir", dir);
        return -1;
    }
    if (!keys && m->encrypted) {
        snprintf(err, errlen,
                 "encryption cannot be turned off for the encrypted data dir %s: set [security] "
                 "cipher-file to the file it was written with", dir);
        return -1;
    }
    if (!keys)
        return 0;
    char hex[CIPHERFILE_CHECK_HEX_LEN];
    cipherfile_check_hex(keys, hex);
    if (differs(hex, m->key_check, sizeof hex - 1)) {
        snprintf(err, errlen,
                 "the cipher-file does not match the key this data dir was encrypted with (key "
                 "check mismatch): %s", dir);
        return -1;
    }
    return 0;
}

static void now_rfc3339(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *meta_json(const struct kv_meta *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "format", json_string(KV_META_FORMAT));
    json_object_set_new(o, "encrypted", json_boolean(m->encrypted));
    if (m->encrypted) {
        json_object_set_new(o, "cipher", json_string(m->cipher));
        json_object_set_new(o, "kdf", json_string(m->kdf));
        json_object_set_new(o, "key_check", json_string(m->key_check));
    }
    json_object_set_new(o, "created", json_string(m->created));
    return o;
}

int kv_meta_create(const char *dir, const struct cipher_keys *keys, struct kv_meta *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->encrypted = keys != NULL;
    if (keys) {
        snprintf(out->cipher, sizeof out->cipher, "%s", KV_META_CIPHER);
        snprintf(out->kdf, sizeof out->kdf, "%s", KV_META_KDF);
        cipherfile_check_hex(keys, out->key_check);
    }
    now_rfc3339(out->created, sizeof out->created);
    json_t *o = meta_json(out);
    char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text) {
        snprintf(err, errlen, "data dir meta %s/%s: out of memory", dir, KV_META_FILE);
        return -1;
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps left room for its NUL: the newline takes it */
    int rc = kv_file_write_atomic(dir, KV_META_FILE, text, n + 1, err, errlen);
    free(text);
    return rc;
}

int kv_meta_open(const char *dir, const struct cipher_keys *keys, struct kv_meta *out, char *err,
                 size_t errlen)
{
    int rc = kv_meta_load(dir, out, err, errlen);
    if (rc == 1)
        return kv_meta_create(dir, keys, out, err, errlen);
    if (rc != 0)
        return -1;
    return kv_meta_admit(dir, out, keys, err, errlen);
}

void kv_meta_describe(const struct kv_meta *m, char *buf, size_t len)
{
    if (m->encrypted)
        snprintf(buf, len, "encrypted (cipher %s, kdf %s, key check %s, created %s)", m->cipher,
                 m->kdf, m->key_check, m->created);
    else
        snprintf(buf, len, "plaintext (created %s)", m->created);
}

/* SHA-256 of input files (GLib GChecksum) and deterministic sharding of document names.
 * The shard of a document depends only on its name (relative path), so N independent workers
 * given the same input tree partition it with no coordinator.
 * Thread-safe: no shared state. */
#include "dp_manifest.h"
#include "dp_limits.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_CHUNK_BYTES ((size_t)1 << 16)

void dp_sha256_hex(char out[DP_SHA256_HEX_LEN + 1], const void *data, size_t len) {
    gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
    DP_ASSERT(hex && strlen(hex) == DP_SHA256_HEX_LEN);
    memcpy(out, hex, DP_SHA256_HEX_LEN + 1);
    g_free(hex);
}

enum dp_status dp_sha256_file(char out[DP_SHA256_HEX_LEN + 1], int64_t *size, const char *path,
                              struct dp_err *err) {
    out[0] = '\0';
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot open", path);
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    DP_ASSERT(ck);
    unsigned char buf[HASH_CHUNK_BYTES]; /* (HASH_CHUNK_BYTES,) read window */
    int64_t total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
        g_checksum_update(ck, buf, (gssize)n);
        total += (int64_t)n;
    }
    int failed = ferror(fp);
    int e = errno;
    fclose(fp);
    if (failed) {
        g_checksum_free(ck);
        return dp_err_set_errno(err, DP_ERR_IO, e, "%s: read error", path);
    }
    const gchar *hex = g_checksum_get_string(ck);
    DP_ASSERT(hex && strlen(hex) == DP_SHA256_HEX_LEN);
    memcpy(out, hex, DP_SHA256_HEX_LEN + 1);
    g_checksum_free(ck);
    if (size)
        *size = total;
    return DP_OK;
}

int dp_shard_of(const char *rel, int n) {
    DP_ASSERT(n >= 1);
    guint8 digest[32];
    gsize len = sizeof digest;
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    DP_ASSERT(ck);
    g_checksum_update(ck, (const guchar *)rel, (gssize)strlen(rel));
    g_checksum_get_digest(ck, digest, &len);
    g_checksum_free(ck);
    /* The whole 256-bit digest mod n, byte by byte (Horner), so every bit counts. */
    uint64_t r = 0;
    for (gsize i = 0; i < len; i++)
        r = ((r << 8) | digest[i]) % (uint64_t)n;
    return (int)r;
}

/* Strict decimal in [1, max] ending at *end == stop. */
static bool parse_count(const char *s, char stop, long max, long *out, const char **end_out) {
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != stop || v < 1 || v > max)
        return false;
    *out = v;
    *end_out = end;
    return true;
}

bool dp_shard_parse(const char *s, int *k, int *n) {
    if (!s)
        return false;
    long kv, nv;
    const char *end;
    if (!parse_count(s, '/', DP_MAX_SHARDS, &kv, &end))
        return false;
    if (!parse_count(end + 1, '\0', DP_MAX_SHARDS, &nv, &end) || kv > nv)
        return false;
    *k = (int)kv;
    *n = (int)nv;
    return true;
}

void dp_inputs_shard(struct dp_inputs *l, int k, int n) {
    DP_ASSERT(k >= 1 && k <= n);
    int w = 0;
    for (int i = 0; i < l->n; i++) {
        if (dp_shard_of(l->items[i].rel, n) == k - 1) {
            l->items[w++] = l->items[i];
        } else {
            dp_input_clear(&l->items[i]);
        }
    }
    l->n = w;
}

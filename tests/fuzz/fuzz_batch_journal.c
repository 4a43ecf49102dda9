/* Fuzz target: untrusted bytes as a resume journal (dp_journal_resume), a password file
 * (dp__pwfile_load) and a shard manifest (dp_manifest_merge). These files sit on shared storage
 * and can be truncated or corrupted by a crash or another tool; none may crash docproc.
 * The input is written to a temporary file because the APIs take paths. */
#include "dp_alloc.h"
#include "dp_batch_impl.h"
#include "dp_manifest.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT ((size_t)1 << 20)
#define FUZZ_DOCS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT)
        return 0;
    char path[] = "/tmp/fuzz-batch-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);

    struct dp_inputs docs = {0};
    struct dp_err err = {0};
    static const char *names[FUZZ_DOCS] = {"a.pdf", "doc1", "dir/b.png", "x"};
    for (int i = 0; i < FUZZ_DOCS; i++) {
        dp_inputs_add(&docs, names[i], names[i], &err);
        if (docs.n == i + 1) {
            docs.items[i].stem = dp_strdup(names[i]);
            dp_sha256_hex(docs.items[i].sha256, names[i], strlen(names[i]));
        }
    }
    int reused = 0;
    memset(&err, 0, sizeof err);
    dp_journal_resume(&docs, path, "/tmp", &reused, &err);
    dp_inputs_free(&docs);

    struct dp_pwfile pw;
    memset(&err, 0, sizeof err);
    if (dp__pwfile_load(&pw, path, &err) == DP_OK) {
        dp__pwfile_lookup(&pw, "a.pdf");
        dp__pwfile_free(&pw);
    }

    char out[] = "/tmp/fuzz-batch-merged-XXXXXX";
    int ofd = mkstemp(out);
    if (ofd >= 0) {
        close(ofd);
        char *in[] = {path};
        char *summary = NULL;
        memset(&err, 0, sizeof err);
        dp_manifest_merge(out, in, 1, &summary, &err);
        dp_free(summary);
        unlink(out);
    }
    unlink(path);
    return 0;
}

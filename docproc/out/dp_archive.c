/* Helpers shared by the archive writers (dp_archive_impl.h): integer page boxes, per-page token
 * confidences, the metadata time stamp. Thread-safe (gmtime_r, getenv only). */
#include "dp_archive_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long clampl(double v, long hi) {
    if (!(v > 0))
        return 0;
    if (v > (double)hi)
        return hi;
    return (long)v;
}

struct dp_ibox dp__archive_ibox(const struct ex_box *b, int page_w, int page_h) {
    struct dp_ibox r;
    r.x1 = clampl(floor(b->x1), page_w);
    r.y1 = clampl(floor(b->y1), page_h);
    r.x2 = clampl(ceil(b->x2), page_w);
    r.y2 = clampl(ceil(b->y2), page_h);
    if (r.x2 < r.x1)
        r.x2 = r.x1;
    if (r.y2 < r.y1)
        r.y2 = r.y1;
    return r;
}

const struct ex_tokconf *dp__archive_conf(const struct ex_tokconf *conf, size_t i) {
    return conf ? &conf[i] : NULL;
}

void dp__archive_time(char *b, size_t n) {
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    char *end = NULL;
    long long v = sde ? strtoll(sde, &end, 10) : 0;
    time_t t = sde && end && end != sde && !*end && v >= 0 ? (time_t)v : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(b, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

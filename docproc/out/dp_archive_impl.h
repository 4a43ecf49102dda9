/* Private helpers shared by the archive writers of libdpout (dp__archive_*). */
#ifndef DP_ARCHIVE_IMPL_H
#define DP_ARCHIVE_IMPL_H

#include "dp_out_archive.h"

/* An ex_box as whole pixels clamped to the page: x1/y1 rounded down, x2/y2 up, so that a box
 * inside another stays inside after rounding. */
struct dp_ibox {
    long x1, y1, x2, y2;
};
struct dp_ibox dp__archive_ibox(const struct ex_box *b, int page_w, int page_h);

/* The tokconf for page index i of conf (NULL when conf is NULL). */
const struct ex_tokconf *dp__archive_conf(const struct ex_tokconf *conf, size_t i);

/* The creation time written into PAGE/PDF metadata: $SOURCE_DATE_EPOCH when set (reproducible
 * builds convention), else now; ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ" into b (>= 21 bytes). */
void dp__archive_time(char *b, size_t n);

#endif

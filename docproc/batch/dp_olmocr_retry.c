/* olmOCR's rotation retry (docs/models.md): ask the model about a page; when the answer's front
 * matter reports rotation_correction != 0, turn the page image by that many degrees as olmOCR's
 * pipeline does (PIL Image.transpose ROTATE_90/180/270: counter-clockwise) and ask exactly once
 * more, keeping the second answer. The decision (dp__olmocr_retry_angle) is what the inference
 * loop uses (dp_infer_pages.c, where the page's pixels are kept with the page in flight);
 * dp__olmocr_ask is the same policy around a callback, testable without a model. Thread-safe
 * per call. */
#include "dp_batch_impl.h"
#include "dp_alloc.h"
#include "ex_olmocr.h"

#include <string.h>

enum dp_status dp__rgb_rotate(uint8_t **out, int *ow, int *oh, const uint8_t *rgb, int w, int h,
                              int degrees_ccw) {
    int r = ((degrees_ccw % 360) + 360) % 360;
    if (r % 90 || w <= 0 || h <= 0)
        return DP_ERR_USAGE;
    size_t n = 0;
    if (!dp_size_mul3(&n, (size_t)w, (size_t)h, 3))
        return DP_ERR_LIMIT;
    uint8_t *d = dp_malloc(n ? n : 1); /* (oh, ow, 3) */
    if (!d)
        return DP_ERR_NOMEM;
    int nw = r % 180 ? h : w, nh = r % 180 ? w : h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int X = x, Y = y; /* where (x, y) lands */
            if (r == 90) { /* counter-clockwise: the right edge becomes the top */
                X = y;
                Y = w - 1 - x;
            } else if (r == 180) {
                X = w - 1 - x;
                Y = h - 1 - y;
            } else if (r == 270) {
                X = h - 1 - y;
                Y = x;
            }
            memcpy(d + 3 * ((size_t)Y * (size_t)nw + (size_t)X),
                   rgb + 3 * ((size_t)y * (size_t)w + (size_t)x), 3);
        }
    *out = d;
    *ow = nw;
    *oh = nh;
    return DP_OK;
}

int dp__olmocr_retry_angle(const char *text, size_t len, int attempt) {
    struct ex_olmocr_fm fm;
    if (attempt != 1 || !ex_olmocr_front_matter(text, len, &fm) || !fm.closed)
        return 0;
    return fm.rotation_correction % 90 ? 0 : fm.rotation_correction;
}

enum dp_status dp__olmocr_ask(dp_olmocr_ask_fn ask, void *user, const uint8_t *rgb, int w, int h,
                              char **text, size_t *len, int *rotation, struct dp_err *err) {
    *rotation = 0;
    enum dp_status st = ask(user, rgb, w, h, text, len, err);
    if (st != DP_OK)
        return st;
    int angle = dp__olmocr_retry_angle(*text, *len, 1);
    if (angle == 0)
        return DP_OK;
    uint8_t *rot = NULL;
    int rw = 0, rh = 0;
    st = dp__rgb_rotate(&rot, &rw, &rh, rgb, w, h, angle);
    if (st != DP_OK)
        return dp_err_set(err, st, "rotating the page by %d degrees: %s", angle,
                          dp_status_str(st));
    char *again = NULL;
    size_t again_len = 0;
    st = ask(user, rot, rw, rh, &again, &again_len, err); /* once: never a third time */
    dp_free(rot);
    if (st != DP_OK)
        return st;
    dp_free(*text);
    *text = again;
    *len = again_len;
    *rotation = angle;
    return DP_OK;
}

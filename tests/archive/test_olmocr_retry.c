/* olmOCR's rotation retry policy (dp__olmocr_ask) with a scripted stand-in for the model: an
 * upright answer is asked once; an answer reporting rotation_correction 90/180/270 is asked
 * exactly once more with the page turned counter-clockwise by that angle (PIL's ROTATE_n, as
 * olmOCR does) and the second answer is kept, even when it asks for rotation again; malformed
 * front matter never triggers a retry. Also the rotation itself on a 3x2 image. */
#include "dp_alloc.h"
#include "dp_batch_impl.h"
#include "t.h"

#include <string.h>

#define FM(rot, valid)                                                                             \
    "---\nprimary_language: en\nis_rotation_valid: " valid "\nrotation_correction: " rot           \
    "\nis_table: False\nis_diagram: False\n---\nText\n"

struct script {
    const char *answers[4];
    int calls;
    int w[4], h[4];
    uint8_t first_px[4][3];
};

static enum dp_status ask(void *user, const uint8_t *rgb, int w, int h, char **text, size_t *len,
                          struct dp_err *err) {
    (void)err;
    struct script *s = user;
    int k = s->calls++;
    s->w[k] = w;
    s->h[k] = h;
    memcpy(s->first_px[k], rgb, 3);
    *text = dp_strdup(s->answers[k] ? s->answers[k] : "");
    *len = strlen(*text);
    return DP_OK;
}

/* 3 wide, 2 high: pixel value = 10 * y + x in every channel */
static const uint8_t IMG[2][3][3] = {{{0, 0, 0}, {1, 1, 1}, {2, 2, 2}},
                                     {{10, 10, 10}, {11, 11, 11}, {12, 12, 12}}};

static int run(struct script *s, int *rotation, char **text) {
    size_t len = 0;
    struct dp_err err = {0};
    T_CHECK(dp__olmocr_ask(ask, s, &IMG[0][0][0], 3, 2, text, &len, rotation, &err) == DP_OK);
    return s->calls;
}

int main(void) {
    /* the rotation: ROTATE_90 (counter-clockwise) makes the right column the top row */
    uint8_t *r = NULL;
    int w = 0, h = 0;
    T_CHECK(dp__rgb_rotate(&r, &w, &h, &IMG[0][0][0], 3, 2, 90) == DP_OK);
    T_CHECK(w == 2 && h == 3);
    static const uint8_t want90[] = {2, 12, 1, 11, 0, 10}; /* rows of the rotated image */
    for (int i = 0; r && i < 6; i++)
        T_EQ_I64(r[3 * i], want90[i]);
    dp_free(r);
    T_CHECK(dp__rgb_rotate(&r, &w, &h, &IMG[0][0][0], 3, 2, 180) == DP_OK);
    T_CHECK(w == 3 && h == 2 && r[0] == 12 && r[3 * 5] == 0);
    dp_free(r);
    T_CHECK(dp__rgb_rotate(&r, &w, &h, &IMG[0][0][0], 3, 2, 270) == DP_OK);
    static const uint8_t want270[] = {10, 0, 11, 1, 12, 2};
    for (int i = 0; r && i < 6; i++)
        T_EQ_I64(r[3 * i], want270[i]);
    dp_free(r);
    T_CHECK(dp__rgb_rotate(&r, &w, &h, &IMG[0][0][0], 3, 2, 45) == DP_ERR_USAGE);

    int rot = -1;
    char *text = NULL;
    struct script upright = {.answers = {FM("0", "True")}};
    T_EQ_I64(run(&upright, &rot, &text), 1); /* upright: asked once */
    T_EQ_I64(rot, 0);
    dp_free(text);

    struct script turned = {.answers = {FM("90", "False"), FM("90", "False"), FM("0", "True")}};
    T_EQ_I64(run(&turned, &rot, &text), 2); /* exactly once more, even if asked again */
    T_EQ_I64(rot, 90);
    T_CHECK(turned.w[1] == 2 && turned.h[1] == 3);    /* the turned page */
    T_EQ_I64(turned.first_px[1][0], 2);               /* its top-left is the old top-right */
    T_CHECK(text && strstr(text, "rotation_correction: 90")); /* the second answer is kept */
    dp_free(text);

    struct script half = {.answers = {FM("180", "False"), FM("0", "True")}};
    T_EQ_I64(run(&half, &rot, &text), 2);
    T_EQ_I64(rot, 180);
    T_CHECK(half.w[1] == 3 && half.h[1] == 2 && half.first_px[1][0] == 12);
    dp_free(text);

    struct script bad = {.answers = {"---\nrotation_correction: 90\nno closing line"}};
    T_EQ_I64(run(&bad, &rot, &text), 1); /* unclosed front matter: no retry */
    dp_free(text);
    struct script odd = {.answers = {FM("45", "False")}};
    T_EQ_I64(run(&odd, &rot, &text), 1); /* not a valid angle: no retry */
    T_EQ_I64(rot, 0);
    dp_free(text);
    return t_done();
}

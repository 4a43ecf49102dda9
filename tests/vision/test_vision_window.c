/* Unit tests of the vision geometry (model/vl_vision_window.c): window index and
 * cu_window_seqlens against the worked examples of spec §4.4 (incl. several items and a video),
 * cu_seqlens (§4.5), the 2-D RoPE table (§4.3) and grid validation. No model needed. */
#include "t.h"
#include "vl_impl.h"

#include <math.h>

#define MAXU 4096

static struct vl_vision_config tiny_cfg(void) {
    struct vl_vision_config vc = {0};
    vc.depth = 4;
    vc.hidden_size = 64;
    vc.num_heads = 4;
    vc.intermediate_size = 96;
    vc.out_hidden_size = 64;
    vc.patch_size = 14;
    vc.temporal_patch_size = 2;
    vc.spatial_merge_size = 2;
    vc.window_size = 112;
    vc.in_chans = 3;
    vc.rms_norm_eps = 1e-6;
    return vc;
}

/* Several items as the reference builds them in one call: unit ids offset by the units of
 * previous items, cu values by their patch rows, leading zeros merged. */
struct multi {
    int64_t widx[MAXU], cu[MAXU], cu_seq[MAXU];
    int64_t n_widx, n_cu, n_seq;
};

static void multi_add(struct multi *mm, const struct vl_vision_config *vc, int64_t gt, int64_t gh,
                      int64_t gw) {
    static int64_t w[MAXU], cu[MAXU + 1], sq[MAXU];
    int64_t units = gt * gh * gw / 4;
    int64_t base_u = mm->n_widx, base_rows = mm->n_cu ? mm->cu[mm->n_cu - 1] : 0;
    int64_t nw = vl__vision_window_index(w, cu, vc, gt, gh, gw);
    vl__vision_cu_seqlens(sq, gt, gh, gw);
    for (int64_t k = 0; k < units; k++)
        mm->widx[mm->n_widx++] = w[k] + base_u;
    for (int64_t k = mm->n_cu ? 1 : 0; k <= nw; k++)
        mm->cu[mm->n_cu++] = cu[k] + base_rows;
    for (int64_t k = mm->n_seq ? 1 : 0; k <= gt; k++)
        mm->cu_seq[mm->n_seq++] = sq[k] + base_rows;
}

static void check_arr(const char *what, const int64_t *got, int64_t n_got, const int64_t *want,
                      int64_t n_want) {
    bool ok = n_got == n_want;
    for (int64_t i = 0; ok && i < n_want; i++)
        ok = got[i] == want[i];
    T_CHECK_MSG(ok, "%s: mismatch (got %lld values, want %lld)", what, (long long)n_got,
                (long long)n_want);
}

static void check_cu(const struct vl_vision_config *vc, int64_t gt, int64_t gh, int64_t gw,
                     const int64_t *want, int64_t n_want) {
    struct multi mm = {0};
    multi_add(&mm, vc, gt, gh, gw);
    char what[64];
    snprintf(what, sizeof what, "cu_window (%lld,%lld,%lld)", (long long)gt, (long long)gh,
             (long long)gw);
    check_arr(what, mm.cu, mm.n_cu, want, n_want);
    /* window_index is a permutation of all units */
    static char seen[MAXU];
    memset(seen, 0, sizeof seen);
    bool perm = mm.n_widx == gt * gh * gw / 4;
    for (int64_t k = 0; perm && k < mm.n_widx; k++) {
        perm = mm.widx[k] >= 0 && mm.widx[k] < mm.n_widx && !seen[mm.widx[k]];
        if (perm)
            seen[mm.widx[k]] = 1;
    }
    T_CHECK_MSG(perm, "%s: window_index is not a permutation", what);
}

#define N_OF(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

static void test_spec_examples(void) {
    struct vl_vision_config vc = tiny_cfg();
    {
        struct multi mm = {0};
        multi_add(&mm, &vc, 1, 6, 10);
        const int64_t w[] = {0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 4, 9, 14};
        const int64_t cu[] = {0, 48, 60};
        check_arr("widx (1,6,10)", mm.widx, mm.n_widx, w, N_OF(w));
        check_arr("cu (1,6,10)", mm.cu, mm.n_cu, cu, N_OF(cu));
    }
    const int64_t c1[] = {0, 64};
    check_cu(&vc, 1, 8, 8, c1, N_OF(c1));
    const int64_t c2[] = {0, 64, 128, 160, 192, 224, 240};
    check_cu(&vc, 1, 12, 20, c2, N_OF(c2));
    const int64_t c3[] = {0, 64, 128, 192, 208, 272, 336, 400, 416, 432, 448, 464, 468};
    check_cu(&vc, 1, 18, 26, c3, N_OF(c3));
    const int64_t c4[] = {0, 64, 128, 192, 240, 304, 368, 432, 480};
    check_cu(&vc, 1, 16, 30, c4, N_OF(c4));
    const int64_t c5[] = {0, 64, 96, 160, 192};
    check_cu(&vc, 2, 8, 12, c5, N_OF(c5));
    {
        struct multi mm = {0};
        multi_add(&mm, &vc, 2, 8, 12);
        const int64_t sq[] = {0, 96, 192};
        check_arr("cu_seqlens video (2,8,12)", mm.cu_seq, mm.n_seq, sq, N_OF(sq));
    }
    {
        struct multi mm = {0};
        multi_add(&mm, &vc, 1, 6, 10);
        multi_add(&mm, &vc, 2, 4, 4);
        const int64_t w[] = {0,  1,  2,  3,  5,  6,  7,  8,  10, 11, 12, 13,
                             4,  9,  14, 15, 16, 17, 18, 19, 20, 21, 22};
        const int64_t cu[] = {0, 48, 60, 76, 92};
        check_arr("widx [(1,6,10),(2,4,4)]", mm.widx, mm.n_widx, w, N_OF(w));
        check_arr("cu [(1,6,10),(2,4,4)]", mm.cu, mm.n_cu, cu, N_OF(cu));
    }
    {
        struct multi mm = {0};
        multi_add(&mm, &vc, 1, 14, 10);
        multi_add(&mm, &vc, 1, 4, 4);
        const int64_t cu[] = {0, 64, 80, 128, 140, 156};
        const int64_t sq[] = {0, 140, 156};
        check_arr("cu [(1,14,10),(1,4,4)]", mm.cu, mm.n_cu, cu, N_OF(cu));
        check_arr("cu_seqlens [(1,14,10),(1,4,4)]", mm.cu_seq, mm.n_seq, sq, N_OF(sq));
    }
    {
        /* 1008x1540 page: 126 windows, 117 of 64 rows and 9 of 48 */
        static int64_t w[MAXU], cu[MAXU + 1];
        int64_t nw = vl__vision_window_index(w, cu, &vc, 1, 110, 72);
        T_EQ_I64(nw, 126);
        int64_t n64 = 0, n48 = 0;
        for (int64_t k = 0; k < nw; k++) {
            n64 += cu[k + 1] - cu[k] == 64;
            n48 += cu[k + 1] - cu[k] == 48;
        }
        T_EQ_I64(n64, 117);
        T_EQ_I64(n48, 9);
        T_EQ_I64(cu[nw], 110 * 72);
    }
}

/* A different window size (config-driven, not the published 112). */
static void test_other_window(void) {
    struct vl_vision_config vc = tiny_cfg();
    vc.window_size = 56; /* 2 merged units */
    struct multi mm = {0};
    multi_add(&mm, &vc, 1, 6, 6); /* LH = LW = 3 -> windows 2x2, 2x1, 1x2, 1x1 units */
    const int64_t w[] = {0, 1, 3, 4, 2, 5, 6, 7, 8};
    const int64_t cu[] = {0, 16, 24, 32, 36};
    check_arr("widx window 56", mm.widx, mm.n_widx, w, N_OF(w));
    check_arr("cu window 56", mm.cu, mm.n_cu, cu, N_OF(cu));
}

static void test_rope(void) {
    struct vl_vision_config vc = tiny_cfg(); /* Dh = 16: inv_freq = 1, 0.1, 0.01, 0.001 */
    int64_t w[4], cu[5];
    vl__vision_window_index(w, cu, &vc, 1, 4, 4);
    static float cs[64 * 16], sn[64 * 16];
    vl__vision_rope_table(cs, sn, &vc, w, 1, 4, 4);
    /* row 1 = unit 0, sub-row 1: (hp, wp) = (0, 1) */
    const float inv[4] = {1.0f, 0.1f, 0.01f, 0.001f};
    for (int d = 0; d < 16; d++) {
        int j = d % 8;
        double want_c = j < 4 ? 1.0 : cos((double)inv[j - 4]);
        double want_s = j < 4 ? 0.0 : sin((double)inv[j - 4]);
        T_NEAR(cs[1 * 16 + d], want_c, 1e-7);
        T_NEAR(sn[1 * 16 + d], want_s, 1e-7);
    }
    /* row 14 = unit 3 (y=1, x=1), sub-row 2: (hp, wp) = (3, 2) */
    for (int j = 0; j < 4; j++) {
        T_NEAR(cs[14 * 16 + j], cos((double)(3.0f * inv[j])), 1e-7);
        T_NEAR(cs[14 * 16 + 4 + j], cos((double)(2.0f * inv[j])), 1e-7);
        T_NEAR(sn[14 * 16 + 8 + j], sin((double)(3.0f * inv[j])), 1e-7);
    }
}

static void test_grid_checks(void) {
    struct vl_vision_config vc = tiny_cfg();
    struct vl_error err = {0};
    T_EQ_I64(vl__vision_check_grid(&vc, 1, 4, 4, &err), VL_OK);
    T_EQ_I64(vl__vision_check_grid(&vc, 1, 5, 4, &err), VL_ERR_INVALID);
    T_CHECK(strstr(err.msg, "multiples") != NULL);
    struct vl_error e2 = {0};
    T_EQ_I64(vl__vision_check_grid(&vc, 0, 4, 4, &e2), VL_ERR_INVALID);
    struct vl_error e3 = {0};
    T_EQ_I64(vl__vision_check_grid(&vc, INT64_MAX / 2, 1LL << 20, 1LL << 20, &e3), VL_ERR_LIMIT);
    struct vl_config cfg = {0};
    cfg.vision = vc;
    T_CHECK(vl__vision_scratch_floats(&cfg, 64) > 0);
    T_CHECK(vl__vision_scratch_floats(&cfg, INT64_MAX / 4) == 0);
    /* non-decreasing in n: the state sizes one buffer for its largest item */
    bool mono = true;
    size_t prev = 0;
    for (int64_t n = 4; n <= 20000; n += 4) {
        size_t cur = vl__vision_scratch_floats(&cfg, n);
        mono = mono && cur >= prev;
        prev = cur;
    }
    T_CHECK(mono);
    cfg.vision.window_size = 27; /* below one merge unit (2 x 14 px) */
    T_CHECK(vl__vision_scratch_floats(&cfg, 64) == 0);
    cfg.vision.window_size = 112;
    cfg.vision.num_heads = 3; /* 64 % 3 != 0 */
    T_CHECK(vl__vision_scratch_floats(&cfg, 64) == 0);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    T_RUN(test_spec_examples);
    T_RUN(test_other_window);
    T_RUN(test_rope);
    T_RUN(test_grid_checks);
    return t_done();
}

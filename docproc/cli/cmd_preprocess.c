/* `docproc preprocess`: what the model will be fed, as safetensors: pixel_values F32 [N, 1176]
 * (all inputs' images concatenated in order; every selected PDF page is one image) and
 * image_grid_thw I64 [n, 3], the reference processor's names and layout. Processor settings
 * come from --model DIR/preprocessor_config.json or the published defaults. Any failing
 * input fails the command and nothing is written (the file is written atomically).
 * Single-threaded. */
#include "dp_cli.h"
#include "dp_cli_opts.h"

#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_ingest.h"
#include "dp_vl.h"
#include "vl_tools.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CMD "preprocess"
#define PREPROC_JSON "preprocessor_config.json"
#define GRID_COLS 3

enum { OPT_MODEL = 256, OPT_FORCE };

/* Growing outputs: pixel rows and grids of every image so far. */
struct pp_acc {
    float *pv;       /* (rows, patch_dim) */
    int64_t rows, patch_dim;
    int64_t *grid;   /* (n, 3) */
    int64_t n;
};

static void print_help(const struct vl_image_params *p, const struct dp_ingest_opts *o) {
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    dp_buf_appendf(&b, "usage: docproc preprocess [OPTIONS] INPUT... -o OUT.safetensors\n\n"
                       "Writes pixel_values (F32 [N,%lld]) and image_grid_thw (I64 [n,3]) exactly "
                       "as the\nreference Qwen2.5-VL processor; every selected PDF page is one "
                       "image.\n\n"
                       "  -o, --output FILE          output safetensors file (required)\n"
                       "      --model DIR            read DIR/" PREPROC_JSON " [published "
                       "defaults]\n",
                   (long long)(VL_IMAGE_CHANNELS * p->temporal_patch_size * p->patch_size *
                               p->patch_size));
    dp_cli_ingest_help(&b, DP_CLI_ING_ALL, o);
    dp_buf_puts(&b, "      --force                replace an existing output file\n"
                    "  -h, --help                 this text\n\n"
                    "examples:\n"
                    "  docproc preprocess --model qwen25vl-3b -o pixels.safetensors scan.pdf\n"
                    "  docproc preprocess --max-pixels 12845056 -o ref.safetensors page.png\n\n"
                    "exit: 0 written, 2 usage, 3 bad preprocessor_config.json, 4 output not "
                    "writable,\n6 an input could not be read (nothing written).\n");
    dp_cli_print_buf(&b);
}

static enum dp_status acc_add(struct pp_acc *a, const struct vl_vision_input *in,
                              struct dp_err *err) {
    if (a->n == 0)
        a->patch_dim = in->patch_dim;
    size_t rows = 0, floats = 0;
    if (in->patch_dim != a->patch_dim || !dp_size_add(&rows, (size_t)a->rows, (size_t)in->n_patches) ||
        !dp_size_mul(&floats, rows, (size_t)a->patch_dim))
        return dp_err_set(err, DP_ERR_LIMIT, "too many patches in total");
    float *pv = dp_reallocarray(a->pv, floats, sizeof *pv);
    if (!pv)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory for %zu patch rows", rows);
    a->pv = pv;
    int64_t *g = dp_reallocarray(a->grid, (size_t)(a->n + 1) * GRID_COLS, sizeof *g);
    if (!g)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    a->grid = g;
    memcpy(a->pv + (size_t)a->rows * (size_t)a->patch_dim, in->pixel_values,
           (size_t)in->n_patches * (size_t)in->patch_dim * sizeof(float));
    a->grid[a->n * GRID_COLS + 0] = in->grid_t;
    a->grid[a->n * GRID_COLS + 1] = in->grid_h;
    a->grid[a->n * GRID_COLS + 2] = in->grid_w;
    a->rows = (int64_t)rows;
    a->n++;
    return DP_OK;
}

static enum dp_status preprocess_one(struct pp_acc *a, const char *input,
                                     const struct dp_ingest_opts *o, const struct dp_page_sel *sel,
                                     const struct vl_image_params *p, struct dp_err *err) {
    struct dp_doc *doc = NULL;
    enum dp_status st = dp_doc_open(&doc, input, o, err);
    if (st != DP_OK)
        return st;
    st = dp_page_sel_check(sel, dp_doc_page_count(doc), input, err);
    char note[DP_ERR_MSG_MAX];
    if (st == DP_OK && dp_page_sel_beyond(sel, dp_doc_page_count(doc), note, sizeof note))
        DP_LOG_WARN("%s: %s", input, note);
    int64_t n_img = 0, rows0 = a->rows;
    for (int i = 0; st == DP_OK && i < dp_doc_page_count(doc); i++) {
        if (!dp_page_sel_has(sel, i + 1))
            continue;
        struct dp_page pg;
        if ((st = dp_doc_render(&pg, doc, i, err)) != DP_OK)
            break;
        struct vl_vision_input vi;
        struct vl_error verr = {0};
        if (vl_image_preprocess(&vi, pg.rgb, pg.width, pg.height, p, &verr) != VL_OK) {
            st = dp_vl_err(err, &verr, DP_ERR_FORMAT, "%s: page %d", input, i + 1);
        } else {
            st = acc_add(a, &vi, err);
            vl_vision_input_free(&vi);
            n_img++;
        }
        dp_page_free(&pg);
    }
    dp_doc_close(doc);
    if (st == DP_OK)
        printf("%s\t%lld image(s)\t%lld patch rows\n", input, (long long)n_img,
               (long long)(a->rows - rows0));
    return st;
}

int dp_cmd_preprocess(int argc, char **argv) {
    struct vl_image_params prm;
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"model", required_argument, NULL, OPT_MODEL},
        DP_CLI_LONGOPTS_INGEST,
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *model = NULL, *pages = NULL;
    bool force = false, help = false;
    struct dp_err err = {0};
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        enum dp_cli_opt_rc r = dp_cli_ingest_opt(&o, &pages, c, optarg, &err);
        if (r == DP_CLI_OPT_BAD)
            return dp_cli_usage_error(CMD, "%s", err.msg);
        if (r == DP_CLI_OPT_TAKEN)
            continue;
        switch (c) {
        case 'o': out = optarg; break;
        case OPT_MODEL: model = optarg; break;
        case OPT_FORCE: force = true; break;
        case 'h': help = true; break;
        default: return dp_cli_getopt_error(CMD, c, argc, argv);
        }
    }
    if (dp_cli_image_params_load(&prm, model, false, &err) != DP_OK) {
        DP_LOG_ERROR("%s", err.msg);
        return err.code == DP_ERR_USAGE ? DP_EXIT_USAGE : DP_EXIT_LOAD;
    }
    if (o.min_pixels)
        prm.min_pixels = o.min_pixels;
    if (o.max_pixels)
        prm.max_pixels = o.max_pixels;
    o.min_pixels = prm.min_pixels;
    o.max_pixels = prm.max_pixels;
    o.factor = prm.patch_size * prm.merge_size;
    if (help) {
        print_help(&prm, &o);
        return DP_EXIT_OK;
    }
    if (!out)
        return dp_cli_usage_error(CMD, "missing -o OUT.safetensors");
    if (optind >= argc)
        return dp_cli_usage_error(CMD, "no input files");
    if (prm.min_pixels > prm.max_pixels)
        return dp_cli_usage_error(CMD, "--min-pixels %lld > --max-pixels %lld",
                                  (long long)prm.min_pixels, (long long)prm.max_pixels);
    struct stat sb;
    if (!force && stat(out, &sb) == 0) {
        DP_LOG_ERROR("%s: exists (use --force to replace it)", out);
        return DP_EXIT_OUTPUT;
    }
    struct dp_page_sel sel;
    if (dp_page_sel_parse(&sel, pages, &err) != DP_OK)
        return dp_cli_usage_error(CMD, "%s", err.msg);
    struct pp_acc acc = {0};
    enum dp_status st = DP_OK;
    for (int i = optind; i < argc && st == DP_OK; i++)
        st = preprocess_one(&acc, argv[i], &o, &sel, &prm, &err);
    dp_page_sel_free(&sel);
    int rc = DP_EXIT_OK;
    if (st != DP_OK) {
        DP_LOG_ERROR("%s (nothing written)", err.msg);
        rc = dp_cli_exit_for(st);
    } else {
        struct vl_st_entry e[2] = {
            {.name = "pixel_values", .dtype = "F32", .ndim = 2,
             .shape = {acc.rows, acc.patch_dim}, .data = acc.pv,
             .nbytes = (size_t)acc.rows * (size_t)acc.patch_dim * sizeof(float)},
            {.name = "image_grid_thw", .dtype = "I64", .ndim = 2, .shape = {acc.n, GRID_COLS},
             .data = acc.grid, .nbytes = (size_t)acc.n * GRID_COLS * sizeof(int64_t)},
        };
        struct vl_error verr = {0};
        if (vl_st_write(out, e, 2, &verr) != VL_OK) {
            DP_LOG_ERROR("%s: %s", out, verr.msg);
            rc = DP_EXIT_OUTPUT;
        }
    }
    dp_free(acc.pv);
    dp_free(acc.grid);
    return rc;
}

/* `docproc ask`, its inputs: --image files and --video frames decoded with dpingest (first page;
 * a PDF at the model's budget) and preprocessed with libvl under the checkpoint's processor
 * settings and the pixel budget; the --raw prompt tokenized. Owns nothing beyond a call: the
 * vision inputs land in struct dp_ask_run (cmd_ask_impl.h), freed by the command. */
#include "cmd_ask_impl.h"
#include "dp_cli_opts.h"
#include "dp_alloc.h"
#include "dp_ingest.h"
#include "vl_tools.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- inputs ------------------------------------------------------------------------------ */

/* Decodes the first page of path to RGB8 (raster at native size; PDF at the model's budget). */
static enum dp_status load_page(struct dp_page *pg, const char *path,
                                const struct dp_ingest_opts *io, struct dp_err *err) {
    struct dp_doc *doc = NULL;
    enum dp_status st = dp_doc_open(&doc, path, io, err);
    if (st == DP_OK)
        st = dp_doc_render(pg, doc, 0, err);
    dp_doc_close(doc);
    if (st != DP_OK)
        dp_err_prefix(err, "%s", path);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Frame paths of FRAMES: a directory (its regular entries, sorted by name, dot-files skipped)
 * or a comma-separated list. *out (strings and array) freed with free_list. */
static void free_list(char **list, int n) {
    for (int i = 0; list && i < n; i++)
        dp_free(list[i]);
    dp_free(list);
}

static enum dp_status frame_list(char ***out, int *n_out, const char *spec, struct dp_err *err) {
    char **list = dp_calloc(DP_ASK_MAX_FRAMES, sizeof *list);
    int n = 0;
    *out = NULL;
    *n_out = 0;
    if (!list)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    DIR *d = opendir(spec);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            if (n == DP_ASK_MAX_FRAMES) {
                closedir(d);
                free_list(list, n);
                return dp_err_set(err, DP_ERR_LIMIT, "%s: more than %d frames", spec,
                                  DP_ASK_MAX_FRAMES);
            }
            size_t len = strlen(spec) + strlen(e->d_name) + 2;
            list[n] = dp_malloc(len);
            if (!list[n]) {
                closedir(d);
                free_list(list, n);
                return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory listing frames", spec);
            }
            snprintf(list[n], len, "%s/%s", spec, e->d_name);
            n++;
        }
        closedir(d);
        qsort(list, (size_t)n, sizeof *list, cmp_str);
    } else {
        const char *p = spec;
        while (*p) {
            const char *q = strchr(p, ',');
            size_t len = q ? (size_t)(q - p) : strlen(p);
            if (len) {
                if (n == DP_ASK_MAX_FRAMES) {
                    free_list(list, n);
                    return dp_err_set(err, DP_ERR_LIMIT, "more than %d frames in '%s'",
                                      DP_ASK_MAX_FRAMES, spec);
                }
                list[n] = dp_malloc(len + 1);
                if (!list[n]) {
                    free_list(list, n);
                    return dp_err_set(err, DP_ERR_NOMEM, "out of memory listing frames");
                }
                memcpy(list[n], p, len);
                list[n][len] = 0;
                n++;
            }
            p += len + (q ? 1 : 0);
        }
    }
    if (n == 0) {
        free_list(list, n);
        return dp_err_set(err, DP_ERR_IO, "%s: no frames", spec);
    }
    *out = list;
    *n_out = n;
    return DP_OK;
}

static enum dp_status load_image(struct vl_vision_input *out, const char *path,
                                 const struct dp_ingest_opts *io,
                                 const struct vl_image_params *ip, struct dp_err *err) {
    struct dp_page pg = {0};
    enum dp_status st = load_page(&pg, path, io, err);
    if (st != DP_OK)
        return st;
    struct vl_error verr = {0};
    if (vl_image_preprocess(out, pg.rgb, pg.width, pg.height, ip, &verr) != VL_OK)
        st = dp__ask_from_vl(err, &verr, path);
    dp_page_free(&pg);
    return st;
}

static enum dp_status load_video(struct vl_vision_input *out, const char *spec, double fps,
                                 const struct dp_ingest_opts *io,
                                 const struct vl_image_params *ip, struct dp_err *err) {
    char **paths = NULL;
    int n = 0;
    enum dp_status st = frame_list(&paths, &n, spec, err);
    if (st != DP_OK)
        return st;
    struct dp_page *pages = dp_calloc((size_t)n, sizeof *pages);
    const uint8_t **rgb = dp_calloc((size_t)n, sizeof *rgb);
    if (!pages || !rgb)
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    for (int i = 0; st == DP_OK && i < n; i++) {
        st = load_page(&pages[i], paths[i], io, err);
        if (st == DP_OK && (pages[i].width != pages[0].width ||
                            pages[i].height != pages[0].height))
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: frame is %dx%d, the first frame %dx%d",
                            paths[i], pages[i].width, pages[i].height, pages[0].width,
                            pages[0].height);
        if (st == DP_OK)
            rgb[i] = pages[i].rgb;
    }
    if (st == DP_OK) {
        struct vl_error verr = {0};
        if (vl_video_preprocess(out, rgb, n, pages[0].width, pages[0].height, fps, ip, &verr) !=
            VL_OK)
            st = dp__ask_from_vl(err, &verr, spec);
    }
    for (int i = 0; pages && i < n; i++)
        dp_page_free(&pages[i]);
    dp_free(pages);
    dp_free(rgb);
    free_list(paths, n);
    return st;
}

/* ---- prompt ------------------------------------------------------------------------------ */

enum dp_status dp__ask_tokenize(int32_t **out, int64_t *n_out, const struct vl_tokenizer *tok,
                               const char *text, struct dp_err *err) {
    size_t len = strlen(text), n = 0;
    int32_t *ids = dp_reallocarray(NULL, len + 1, sizeof *ids); /* a token covers >= 1 byte */
    if (!ids)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    struct vl_error verr = {0};
    if (vl_tokenizer_encode(tok, text, len, ids, len + 1, &n, &verr) != VL_OK) {
        dp_free(ids);
        return dp__ask_from_vl(err, &verr, "prompt");
    }
    *out = ids;
    *n_out = (int64_t)n;
    return DP_OK;
}

enum dp_status dp__ask_prepare_inputs(struct dp_ask_run *r, const struct dp_ask_opts *o,
                                     struct dp_err *err) {
    struct vl_image_params ip;
    if (dp_cli_image_params_load(&ip, o->model_dir, true, err) != DP_OK)
        return err->code;
    if (o->ing.min_pixels)
        ip.min_pixels = o->ing.min_pixels;
    if (o->ing.max_pixels)
        ip.max_pixels = o->ing.max_pixels;
    /* smart_resize never goes below one merge unit, so a smaller budget cannot be honoured */
    int64_t unit = ip.patch_size * ip.merge_size * ip.patch_size * ip.merge_size;
    if (ip.max_pixels < unit)
        return dp_err_set(err, DP_ERR_USAGE,
                          "max-pixels %lld is below one %lldx%lld merge unit (%lld pixels)",
                          (long long)ip.max_pixels, (long long)(ip.patch_size * ip.merge_size),
                          (long long)(ip.patch_size * ip.merge_size), (long long)unit);
    if (ip.min_pixels > ip.max_pixels)
        return dp_err_set(err, DP_ERR_USAGE, "min-pixels %lld is above max-pixels %lld",
                          (long long)ip.min_pixels, (long long)ip.max_pixels);
    struct dp_ingest_opts io;
    dp_ingest_opts_init(&io);
    io.min_pixels = ip.min_pixels;
    io.max_pixels = ip.max_pixels;
    io.factor = ip.patch_size * ip.merge_size;
    enum dp_status st = DP_OK;
    for (int i = 0; st == DP_OK && i < o->n_images; i++, r->n_vis++)
        st = load_image(&r->vis[r->n_vis], o->images[i], &io, &ip, err);
    for (int i = 0; st == DP_OK && i < o->n_videos; i++, r->n_vis++)
        st = load_video(&r->vis[r->n_vis], o->videos[i], o->fps, &io, &ip, err);
    return st;
}

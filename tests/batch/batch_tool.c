/* batch_tool: helpers of the batch CLI tests (no python/jq on the CI machine).
 *
 *   batch_tool mkraw SAMPLES_DIR OUT_DIR [COPIES]   raw-answer bundle from qwen_outputs.jsonl
 *   batch_tool json FILE...                          exit 1 unless every file is valid JSON
 *   batch_tool jsonl FILE                            prints the number of lines; each must be JSON
 *   batch_tool manifest FILE                         "name status pages blank" per document
 *   batch_tool zip FILE                              lists the entries of a zip
 *   batch_tool blankpng FILE W H                     an all-white page (blank-page guard)
 *   batch_tool gradpng FILE W H                      a page whose pixel (x, y) is (x % 256, y % 256,
 *                                                    (x / 256 + 16 * (y / 256)) % 256)
 *   batch_tool pnginfo FILE                          "W H R G B" of a PNG, RGB of its top-left
 *                                                    pixel (review crops)
 *   batch_tool answer SCHEMA FILE...                 prints how many FILEs hold a valid answer
 *   batch_tool answers SCHEMA JSONL                  the same for the "answer" of each record
 *   batch_tool testschema FILE                       writes the test schema (t_answer.h)
 *
 * answer/answers validate against the constrained-decoding answer contract with the independent
 * validator of the tests (t_answer.h); SCHEMA is a built-in name or a file.
 *
 * mkraw builds the layout `docproc extract --from-raw` reads from samples/qwen_outputs.jsonl,
 * the real Qwen2.5-VL answers of the Qwen cookbooks.
 * One document per record, named <image stem>-<task>; the page geometry is the image's size
 * and the model input size smart_resize gives with the published pixel budget (what the
 * cookbooks ran); an answer the record marks TRUNCATED is flagged truncated. With COPIES > 1
 * every document is written COPIES times (<name>-cNNN), for the resume and shard tests.
 * This is how samples/raw/ was made. */
#include "dp_alloc.h"
#include "dp_fs.h"
#include "dp_ingest.h"
#include "dp_out.h"
#include "ex.h"
#include "sc.h"
#include "t_answer.h"
#include "vl_tools.h"

#include <png.h>

#include <jansson.h>
#include <zip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COPIES 100000
#define NAME_BYTES 512

static int page_size(const char *path, int *w, int *h) {
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    struct dp_doc *doc = NULL;
    struct dp_err err = {0};
    struct dp_page pg = {0};
    if (dp_doc_open(&doc, path, &o, &err) != DP_OK || dp_doc_render(&pg, doc, 0, &err) != DP_OK) {
        fprintf(stderr, "batch_tool mkraw: %s\n", err.msg);
        dp_doc_close(doc);
        return -1;
    }
    *w = pg.src_width ? pg.src_width : pg.width;
    *h = pg.src_height ? pg.src_height : pg.height;
    dp_page_free(&pg);
    dp_doc_close(doc);
    return 0;
}

static int mkraw(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: batch_tool mkraw SAMPLES_DIR OUT_DIR [COPIES]\n");
        return 2;
    }
    long copies = argc == 4 ? strtol(argv[3], NULL, 10) : 1;
    if (copies < 1 || copies > MAX_COPIES) {
        fprintf(stderr, "batch_tool mkraw: COPIES must be in [1, %d]\n", MAX_COPIES);
        return 2;
    }
    char path[NAME_BYTES];
    snprintf(path, sizeof path, "%s/qwen_outputs.jsonl", argv[1]);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        perror(path);
        return 1;
    }
    struct dp_err err = {0};
    struct dp_bundle *b = NULL;
    if (dp_bundle_open(&b, argv[2], true, &err) != DP_OK) {
        fprintf(stderr, "batch_tool mkraw: %s\n", err.msg);
        fclose(fp);
        return 1;
    }
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    while (rc == 0 && getline(&line, &cap, fp) > 0) {
        json_t *r = json_loads(line, 0, NULL);
        const char *image = json_string_value(json_object_get(r, "image"));
        const char *task = json_string_value(json_object_get(r, "task"));
        const char *output = json_string_value(json_object_get(r, "output"));
        const char *notes = json_string_value(json_object_get(r, "notes"));
        if (!image || !task || !output) {
            json_decref(r);
            continue;
        }
        char img[NAME_BYTES], src[NAME_BYTES], stem[NAME_BYTES];
        snprintf(img, sizeof img, "%s/%s", argv[1], image);
        snprintf(src, sizeof src, "samples/%s", image);
        int w = 0, h = 0;
        int64_t mh = 0, mw = 0;
        struct vl_error ve = {0};
        if (page_size(img, &w, &h) != 0 ||
            vl_smart_resize(&mh, &mw, h, w, VL_IMAGE_DEFAULT_PATCH * VL_IMAGE_DEFAULT_MERGE,
                            VL_IMAGE_DEFAULT_MIN_PIXELS, VL_IMAGE_DEFAULT_MAX_PIXELS,
                            &ve) != VL_OK) {
            rc = 1;
            json_decref(r);
            break;
        }
        struct ex_geom g = {.model_w = (int)mw, .model_h = (int)mh, .page_w = w, .page_h = h};
        bool truncated = notes && strstr(notes, "TRUNCATED");
        const char *base = dp_path_basename(image);
        const char *dot = strrchr(base, '.');
        int bl = dot ? (int)(dot - base) : (int)strlen(base);
        for (long c = 0; c < copies && rc == 0; c++) {
            if (copies > 1)
                snprintf(stem, sizeof stem, "%.*s-%s-c%03ld", bl, base, task, c);
            else
                snprintf(stem, sizeof stem, "%.*s-%s", bl, base, task);
            struct ex_doc *doc = NULL;
            struct ex_page *pg = NULL;
            const char *model = json_string_value(json_object_get(r, "model"));
            const char *prompt = json_string_value(json_object_get(r, "prompt"));
            struct ex_stamp stamp = {.model_id = model, .prompt = prompt,
                                     .max_pixels = VL_IMAGE_DEFAULT_MAX_PIXELS};
            if (ex_doc_new(&doc, src, &err) != DP_OK || ex_doc_set_stamp(doc, &stamp, &err) != DP_OK ||
                ex_page_parse(&pg, NULL, output, strlen(output), &g, 1, truncated, &err) != DP_OK ||
                ex_doc_add_page(doc, pg, &err) != DP_OK || ex_doc_finish(doc, NULL, &err) != DP_OK ||
                dp_bundle_add_doc(b, doc, stem, DP_OUT_RAW, &err) != DP_OK) {
                fprintf(stderr, "batch_tool mkraw: %s: %s\n", stem, err.msg);
                rc = 1;
            }
            ex_doc_free(doc);
        }
        json_decref(r);
    }
    free(line);
    fclose(fp);
    if (rc == 0 && dp_bundle_commit(b, &err) != DP_OK) {
        fprintf(stderr, "batch_tool mkraw: %s\n", err.msg);
        rc = 1;
    } else if (rc != 0) {
        dp_bundle_abort(b);
    }
    return rc;
}

static int check_json(int argc, char **argv) {
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        json_error_t je;
        json_t *j = json_load_file(argv[i], 0, &je);
        if (!j) {
            fprintf(stderr, "%s:%d: %s\n", argv[i], je.line, je.text);
            bad++;
        }
        json_decref(j);
    }
    return bad ? 1 : 0;
}

static int check_jsonl(int argc, char **argv) {
    FILE *fp = argc == 2 ? fopen(argv[1], "r") : NULL;
    if (!fp)
        return 2;
    char *line = NULL;
    size_t cap = 0;
    long n = 0;
    int bad = 0;
    while (getline(&line, &cap, fp) > 0) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        if (!json_is_object(j)) {
            fprintf(stderr, "%s: line %ld: %s\n", argv[1], n + 1, je.text);
            bad = 1;
        }
        json_decref(j);
        n++;
    }
    free(line);
    fclose(fp);
    printf("%ld\n", n);
    return bad;
}

static int manifest(int argc, char **argv) {
    json_error_t je;
    json_t *m = argc == 2 ? json_load_file(argv[1], 0, &je) : NULL;
    if (!m) {
        fprintf(stderr, "%s: not JSON\n", argc == 2 ? argv[1] : "?");
        return 1;
    }
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(m, "documents"), i, d) {
        printf("%s %s %lld %lld\n", json_string_value(json_object_get(d, "name")),
               json_string_value(json_object_get(d, "status")),
               (long long)json_integer_value(json_object_get(d, "pages")),
               (long long)json_integer_value(json_object_get(d, "pages_blank")));
    }
    json_decref(m);
    return 0;
}

static int zip_list(int argc, char **argv) {
    int ze = 0;
    zip_t *z = argc == 2 ? zip_open(argv[1], ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!z) {
        fprintf(stderr, "%s: cannot open zip (%d)\n", argc == 2 ? argv[1] : "?", ze);
        return 1;
    }
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n; i++)
        printf("%s\n", zip_get_name(z, (zip_uint64_t)i, 0));
    zip_discard(z);
    return 0;
}

/* zipsum FILE: "name size crc32" per entry: a zip's contents without its timestamps. */
static int zip_sum(int argc, char **argv) {
    int ze = 0;
    zip_t *z = argc == 2 ? zip_open(argv[1], ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!z) {
        fprintf(stderr, "%s: cannot open zip (%d)\n", argc == 2 ? argv[1] : "?", ze);
        return 1;
    }
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t sb;
        zip_stat_init(&sb);
        if (zip_stat_index(z, (zip_uint64_t)i, 0, &sb) == 0)
            printf("%s %llu %08x\n", sb.name, (unsigned long long)sb.size, (unsigned)sb.crc);
    }
    zip_discard(z);
    return 0;
}

static int blank_png(int argc, char **argv, bool gradient) {
    long w = argc == 4 ? strtol(argv[2], NULL, 10) : 0, h = argc == 4 ? strtol(argv[3], NULL, 10) : 0;
    if (w < 1 || h < 1 || w > 10000 || h > 10000)
        return 2;
    uint8_t *px = malloc((size_t)w * (size_t)h * 3); /* (h, w, 3) */
    if (!px)
        return 1;
    memset(px, 255, (size_t)w * (size_t)h * 3);
    for (long y = 0; gradient && y < h; y++)
        for (long x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            p[0] = (uint8_t)(x % 256);
            p[1] = (uint8_t)(y % 256);
            p[2] = (uint8_t)((x / 256 + 16 * (y / 256)) % 256);
        }
    struct dp_err err = {0};
    enum dp_status st = dp_png_write(argv[1], px, (int)w, (int)h, 0, &err);
    free(px);
    if (st != DP_OK)
        fprintf(stderr, "%s\n", err.msg);
    return st == DP_OK ? 0 : 1;
}

/* The schema's JSON (built-in name or file) and whether its values are plain (chart). */
static json_t *answer_schema(const char *name, bool *plain) {
    struct sc_schema *s = NULL;
    struct dp_err err = {0};
    if (sc_schema_load(&s, name, &err) != DP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(s->source, s->source_len, 0, &je);
    *plain = s->task == SC_TASK_CHART;
    sc_schema_free(s);
    return j;
}

/* An answer as ask prints it: the text, plus the newline ask ends its output with. */
static bool answer_ok(const char *text, size_t len, json_t *schema, bool plain) {
    if (len && text[len - 1] == '\n')
        len--;
    return valid_answer(text, len, schema, plain);
}

static int check_answers(int argc, char **argv, bool jsonl) {
    bool plain = false;
    json_t *schema = argc >= 3 ? answer_schema(argv[1], &plain) : NULL;
    if (!schema)
        return 2;
    int valid = 0;
    for (int i = 2; i < argc; i++) {
        char *buf = NULL;
        size_t len = 0;
        struct dp_err err = {0};
        if (dp_file_read(argv[i], 1 << 26, &buf, &len, &err) != DP_OK) {
            fprintf(stderr, "%s\n", err.msg);
            json_decref(schema);
            return 2;
        }
        for (char *line = buf, *next; jsonl && line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = 0;
            json_error_t je;
            json_t *rec = json_loads(line, 0, &je);
            const char *a = json_string_value(json_object_get(rec, "answer"));
            valid += a && answer_ok(a, json_string_length(json_object_get(rec, "answer")), schema,
                                    plain);
            json_decref(rec);
        }
        if (!jsonl)
            valid += answer_ok(buf, len, schema, plain);
        dp_free(buf);
    }
    json_decref(schema);
    printf("%d\n", valid);
    return 0;
}

static int test_schema(int argc, char **argv) {
    FILE *f = argc == 2 ? fopen(argv[1], "wb") : NULL;
    if (!f)
        return 2;
    int bad = fputs(T_ANSWER_TEST_SCHEMA, f) == EOF;
    return fclose(f) != 0 || bad;
}

static int png_size(int argc, char **argv) {
    FILE *f = argc == 2 ? fopen(argv[1], "rb") : NULL;
    if (!f)
        return 2;
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    int ok = png_image_begin_read_from_stdio(&im, f);
    uint8_t *px = NULL;
    if (ok) {
        im.format = PNG_FORMAT_RGB;
        px = malloc(PNG_IMAGE_SIZE(im));
        ok = px && png_image_finish_read(&im, NULL, px, 0, NULL);
    }
    fclose(f);
    if (!ok) {
        fprintf(stderr, "%s: %s\n", argv[1], im.message);
        free(px);
        png_image_free(&im);
        return 1;
    }
    printf("%u %u %u %u %u\n", im.width, im.height, px[0], px[1], px[2]);
    free(px);
    png_image_free(&im);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "answer"))
        return check_answers(argc - 1, argv + 1, false);
    if (argc >= 2 && !strcmp(argv[1], "answers"))
        return check_answers(argc - 1, argv + 1, true);
    if (argc >= 2 && !strcmp(argv[1], "testschema"))
        return test_schema(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "pnginfo"))
        return png_size(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "blankpng"))
        return blank_png(argc - 1, argv + 1, false);
    if (argc >= 2 && !strcmp(argv[1], "gradpng"))
        return blank_png(argc - 1, argv + 1, true);
    if (argc >= 2 && !strcmp(argv[1], "mkraw"))
        return mkraw(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "json"))
        return check_json(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "jsonl"))
        return check_jsonl(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "manifest"))
        return manifest(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "zip"))
        return zip_list(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "zipsum"))
        return zip_sum(argc - 1, argv + 1);
    fprintf(stderr, "usage: batch_tool mkraw|json|jsonl|manifest|zip|zipsum|blankpng|gradpng|"
                    "pnginfo|"
                    "answer|answers|testschema ...\n");
    return 2;
}

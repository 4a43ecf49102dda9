/* Every limit and default of docproc in one place (sqliteLimit.h style).
 * Model hyperparameters are not here: they come from config.json (model/vl_config.c). */
#ifndef DP_LIMITS_H
#define DP_LIMITS_H

/* Reading whole files into memory (configs, raw model answers, schemas). */
#define DP_MAX_FILE_BYTES ((size_t)256 << 20)
/* Decoded page bitmap cap, checked before allocating (35000x35000 pages are refused). */
#define DP_DEFAULT_MAX_DECODE_PIXELS ((size_t)178956970) /* PIL's MAX_IMAGE_PIXELS * 2 */
/* Text produced for one page by the model, and per-document result text. */
#define DP_MAX_TEXT_BYTES ((size_t)64 << 20)
/* Pages in one document. */
#define DP_MAX_PAGES 100000

/* Ingestion (docproc/ingest, docs/ingestion.md). PDF pages are rendered at DP_DEFAULT_DPI and
 * then fitted to the model's pixel budget: 150 dpi gives 10-pt text an x-height of ~10 px. */
#define DP_DEFAULT_DPI 150
#define DP_MIN_DPI     1
#define DP_MAX_DPI     2400
/* Raw bytes read for a raster input (TIFF/PNG/JPEG are decoded from memory). */
#define DP_MAX_IMAGE_FILE_BYTES ((size_t)512 << 20)
/* Largest single allocation libtiff may make while decoding (strips, tiles). */
#define DP_TIFF_MAX_SINGLE_ALLOC ((size_t)1 << 30)

/* Batch processing (docproc/batch, docs/batch.md). */
#define DP_MAX_INPUTS        10000000 /* documents in one batch after discovery */
#define DP_MAX_SHARDS        100000   /* N of --shard K/N */
#define DP_MAX_DIR_DEPTH     64       /* recursion depth of input discovery (symlink loops) */
#define DP_MAX_JOURNAL_BYTES ((size_t)1 << 30) /* a resume journal larger than this is refused */
#define DP_MAX_PASSWORD_FILE_BYTES ((size_t)16 << 20)
/* Defaults for documents (docs/batch.md explains each). */
/* The pixel budget of every command (extract, batch, tables, ask, rasterize, preprocess,
 * bench-render): one default so that what rasterize shows is what extract feeds. */
#define DP_DEFAULT_MAX_PIXELS         1003520 /* 1280 * 28 * 28: ~A4 at 100 dpi, 1280 visual tokens */
#define DP_BATCH_DEFAULT_MAX_NEW_TOKENS 2048  /* a dense page of HTML fits; loops are cut earlier */
/* --review-threshold: confidence (docs/constrain.md) below which a value goes to review */
#define DP_BATCH_DEFAULT_REVIEW_THRESHOLD 0.5
#define DP_BATCH_DEFAULT_TEMPERATURE  0.0     /* greedy: extraction must be reproducible */
#define DP_BATCH_DEFAULT_TOP_K        1
#define DP_BATCH_DEFAULT_TOP_P        1.0
#define DP_BATCH_DEFAULT_SEED         0
#define DP_BATCH_QUEUE_PAGES          2       /* rasterised pages waiting for the model */
#define DP_BATCH_AUTO_PARALLEL        8       /* --parallel auto: at most this many pages in flight */
#define DP_BATCH_MAX_PARALLEL         64      /* --parallel N: largest N (libvl VL_STATE_MAX_SEQS) */
/* --parallel auto keeps this share of MemAvailable for everything but the sequences' caches */
#define DP_BATCH_AUTO_MEM_SHARE       0.5
#define DP_BATCH_MAX_JOBS             64
/* Guards. A page is blank when at most this fraction of its pixels differs from the page's
 * background (median luma) by more than DP_BLANK_LUMA_DELTA levels. */
#define DP_BLANK_MAX_INK_FRACTION     0.0002
#define DP_BLANK_LUMA_DELTA           48
/* Repetition loop: the last DP_REPEAT_MIN_TOKENS+ tokens are a period-p cycle (p <= MAX_PERIOD)
 * repeated DP_REPEAT_MIN_CYCLES times. */
#define DP_REPEAT_MAX_PERIOD          64
#define DP_REPEAT_MIN_CYCLES          8
#define DP_REPEAT_MIN_TOKENS          48

/* Extraction (schemas/, extractors/, docproc/out; docs/extraction.md). */
#define DP_SCHEMA_MAX_BYTES  ((size_t)1 << 20) /* a schema file larger than this is refused */
#define DP_SCHEMA_NAME_MAX   64                /* built-in schema names: [A-Za-z0-9_-]{1,64} */
#define EX_JSON_MAX_DEPTH    64       /* nesting of a model's JSON answer; deeper -> warning */
#define EX_JSON_MAX_NODES    1000000  /* values in one answer */
#define EX_HTML_MAX_DEPTH    256      /* element nesting walked in an HTML answer */
#define EX_TABLE_MAX_CELLS   1000000  /* rows * cols of one expanded table grid */
#define EX_TABLE_MAX_SPAN    1000     /* rowspan/colspan larger than this is clipped (warned) */
#define EX_MAX_WARNINGS      10000    /* per page; further ones are counted in one last warning */
#define EX_MAX_FIELD_DEPTH   16       /* nesting of fields built from an answer */
#define EX_BOX_MAX_ABS       1e9      /* a box coordinate beyond this is not a box (rejected) */
#define EX_MAX_FIELDS        10000    /* top-level fields of one page (duplicates are checked per field) */
#define DP_OUT_MAX_NAME      128      /* bytes of one sanitised bundle/dir name component */
#define DP_OUT_MAX_STEM      512      /* bytes of a document's output path (sub/x.pdf) in a
                                       * bundle; a longer name is flattened (docs/batch.md) */
#define DP_OUT_MAX_ENTRIES   1000000  /* entries read back from one bundle */

/* `docproc ask` (docproc/cli/cmd_ask.c, docs/model-llm.md). */
#define DP_ASK_MAX_INPUTS      64     /* --image / --video occurrences, each */
#define DP_ASK_MAX_PROMPTS     1024   /* --prompt occurrences or --prompts FILE lines */
#define DP_ASK_MAX_FRAMES      768    /* frames of one --video (qwen-vl-utils FPS_MAX_FRAMES) */
#define DP_ASK_DEFAULT_FPS     2.0    /* qwen-vl-utils default fps (spec §3.1) */
#define DP_ASK_MAX_FPS         1000.0

/* Bounds of the options shared by several commands (docproc/cli/dp_cli_opts.c). */
#define DP_MAX_THREADS         256             /* --threads: the model's pool holds at most 256 */
#define DP_MAX_NEW_TOKENS      1000000         /* --max-new-tokens (the context bounds it first) */
#define DP_MAX_TOP_K           1000000         /* --top-k (vocabularies are ~152k) */
#define DP_MAX_TEMPERATURE     100.0           /* --temperature */
#define DP_MAX_REP_PENALTY     100.0           /* --repetition-penalty */
#define DP_MAX_BUDGET_PIXELS   ((int64_t)1 << 40) /* --min/--max-pixels, --max-decode-pixels */

#endif

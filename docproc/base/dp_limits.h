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

#endif

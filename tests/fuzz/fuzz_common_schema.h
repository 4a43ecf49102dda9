/* In-memory schemas for the extraction fuzz targets (no file system access while fuzzing). */
#ifndef FUZZ_COMMON_SCHEMA_H
#define FUZZ_COMMON_SCHEMA_H

#include "sc.h"

#include <string.h>

static const char FUZZ_INVOICE_SCHEMA[] =
    "{\"x-name\": \"inv\", \"x-task\": \"kie\", \"x-checks\": [\"invoice-arithmetic\"],"
    " \"properties\": {\"invoice_id\": {\"type\": \"string\", \"pattern\": \"^[A-Z0-9-]+$\"},"
    " \"date\": {\"type\": \"string\", \"format\": \"date\"},"
    " \"currency\": {\"type\": \"string\", \"format\": \"currency\"},"
    " \"kind\": {\"type\": \"string\", \"enum\": [\"a\", \"b\"]},"
    " \"rate\": {\"type\": \"number\", \"format\": \"percent\"},"
    " \"n\": {\"type\": \"integer\"}, \"ok\": {\"type\": \"boolean\"},"
    " \"subtotal\": {\"type\": \"number\", \"format\": \"amount\"},"
    " \"total_tax\": {\"type\": \"number\", \"format\": \"amount\"},"
    " \"invoice_total\": {\"type\": \"number\", \"format\": \"amount\"},"
    " \"meta\": {\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"number\"}}},"
    " \"line_items\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"properties\": {"
    "   \"description\": {\"type\": \"string\"}, \"quantity\": {\"type\": \"number\"},"
    "   \"unit_price\": {\"type\": \"number\", \"format\": \"amount\"},"
    "   \"amount\": {\"type\": \"number\", \"format\": \"amount\"}}}}},"
    " \"required\": [\"invoice_id\"]}";

static const char FUZZ_LAYOUT_SCHEMA[] =
    "{\"x-name\": \"layout\", \"x-task\": \"layout\", \"x-prompt\": \"QwenVL HTML \"}";
static const char FUZZ_TABLE_SCHEMA[] =
    "{\"x-name\": \"table\", \"x-task\": \"table\", \"x-prompt\": \"tables\"}";
static const char FUZZ_CHART_SCHEMA[] =
    "{\"x-name\": \"chart\", \"x-task\": \"chart\", \"properties\": {\"series\": {\"type\": \"array\"}}}";

static struct sc_schema *fuzz_schema(const char *json) {
    struct sc_schema *s = NULL;
    struct dp_err err = {0};
    if (sc_schema_parse(&s, json, strlen(json), "fuzz.json", &err) != DP_OK)
        __builtin_trap();
    return s;
}

#endif

/* fuzz_transfer_line.c: libFuzzer target for a line of an export file (store/transfer.h,
 * kf_transfer_parse_line), which `kefu import` reads from whatever file it is given: any bytes
 * are refused with a reason or parsed into a row whose values match its table's columns (an
 * integer column an integer, a text one text without a NUL, bytes of the length decoded). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "store/transfer.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kf_transfer_line_t line;
    char why[256] = "";
    int rc = kf_transfer_parse_line((const char *)data, size, &line, why, sizeof why);
    check(rc == 0 || rc == KF_EPROTO, "parsed or refused");
    if (rc != 0) {
        check(why[0] != '\0', "a refusal says why");
        return 0;
    }
    if (line.kind == KF_TRANSFER_LINE_ROW) {
        for (int i = 0; i < line.table->column_count; i++) {
            const kf_transfer_value_t *value = &line.values[i];
            char type = line.table->columns[i].type;
            check(!value->null || line.table->columns[i].nullable, "null only where allowed");
            if (value->null || type == 'i')
                continue;
            check(value->data != NULL, "text and bytes have data");
            check(type != 't' || memchr(value->data, '\0', value->len) == NULL, "text has no NUL");
        }
    } else {
        check(line.number >= 0, "counts and sequences are not negative");
    }
    kf_transfer_line_free(&line);
    return 0;
}

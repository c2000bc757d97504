/* fuzz_config.c: libFuzzer target for the config file's parser (cli/config.h): any bytes are
 * refused with status 2 or accepted; what is accepted holds only single-line values (a quoted one
 * keeps its blanks; list items never have them around them, nor commas), and applying the same
 * bytes again gives the same settings. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

static bool clean(const char *value)
{
    size_t len = strlen(value);
    return strchr(value, '\n') == NULL &&
           (len == 0 || (value[0] != ' ' && value[0] != '\t' && value[len - 1] != ' ' &&
                         value[len - 1] != '\t'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (sink == NULL)
        sink = fopen("/dev/null", "w");
    kf_flags_t first, again;
    kf_config_t config = {0};
    kf_flags_init(&first);
    int rc = kf_config_apply_file(&first, &config, "fuzz.conf", (const char *)data, size, sink);
    check(rc == 0 || rc == 2, "status 0 or 2");
    if (rc == 0) {
        for (int i = 0; i < KF_FLAG__COUNT; i++) {
            const kf_flag_value_t *v = &first.v[i];
            check(v->text == NULL || strchr(v->text, '\n') == NULL, "a text value is one line");
            for (size_t j = 0; j < v->item_count; j++)
                check(clean(v->items[j]) && v->items[j][0] != '\0' &&
                          strchr(v->items[j], ',') == NULL,
                      "a list item is one trimmed line without commas");
        }
        kf_flags_init(&again);
        check(kf_config_apply_file(&again, &config, "fuzz.conf", (const char *)data, size, sink) ==
                  0,
              "the same bytes are accepted again");
        for (int i = 0; i < KF_FLAG__COUNT; i++) {
            check(first.v[i].count == again.v[i].count && first.v[i].on == again.v[i].on &&
                      first.v[i].item_count == again.v[i].item_count &&
                      (first.v[i].text == again.v[i].text ||
                       (first.v[i].text != NULL && again.v[i].text != NULL &&
                        strcmp(first.v[i].text, again.v[i].text) == 0)),
                  "the same settings");
        }
    }
    kf_config_free(&config);
    return 0;
}

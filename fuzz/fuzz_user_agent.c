/* fuzz_user_agent.c: libFuzzer target for the browser label (chat/user_agent.h), built from the
 * User-Agent string a visitor's page reports: whatever the bytes, the label fits its buffer, is
 * NUL-terminated, and holds only printable ASCII (it is made of known names and version digits,
 * never of the input's other bytes), so the panel can show it as it is.
 *
 * Input: the string, up to the first NUL. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/user_agent.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char label[KF_USER_AGENT_LABEL_SIZE];
    memset(label, 'x', sizeof label);
    kf_user_agent_label(text, label);
    size_t len = strnlen(label, sizeof label);
    check(len < sizeof label, "the label is NUL-terminated inside its buffer");
    for (size_t i = 0; i < len; i++)
        check(label[i] >= 0x20 && label[i] < 0x7f, "the label is printable ASCII");
    free(text);
    return 0;
}

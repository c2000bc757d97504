/* test_user_agent.c: the visitor panel's browser label from real User-Agent strings of each
 * browser and system, and from strings that are not one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "chat/user_agent.h"

static void test_user_agent_labels(void **state)
{
    (void)state;
    static const struct {
        const char *user_agent;
        const char *label;
    } cases[] = {
        {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36",
         "Chrome 120 on Linux"},
        {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/121.0.0.0 Safari/537.36 Edg/121.0.2277.83",
         "Edge 121 on Windows"},
        {"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.2 Safari/605.1.15",
         "Safari 17 on macOS"},
        {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
         "like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
         "Safari 17 on iOS"},
        {"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:122.0) Gecko/20100101 Firefox/122.0",
         "Firefox 122 on Windows"},
        {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.6099.144 Mobile Safari/537.36",
         "Chrome 120 on Android"},
        {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
         "Opera 106 on Windows"},
        {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
         "like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
         "Chrome 120 on iOS"},
        {"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36",
         "Chrome 120 on ChromeOS"},
        {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "HeadlessChrome/120.0.6099.28 Safari/537.36",
         "Chrome 120 on Linux"},
        {"curl/8.5.0", ""},
        {"", ""},
        {"Firefox/", "Firefox"},
        {"Mozilla/5.0 (Windows NT 10.0) SomethingNew/1.0", "a browser on Windows"},
        {"Chrome/999999999999999999999 Linux", "Chrome 99999 on Linux"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char label[KF_USER_AGENT_LABEL_SIZE];
        memset(label, 'x', sizeof label);
        kf_user_agent_label(cases[i].user_agent, label);
        assert_string_equal(label, cases[i].label);
    }
    char label[KF_USER_AGENT_LABEL_SIZE];
    kf_user_agent_label(NULL, label);
    assert_string_equal(label, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_agent_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

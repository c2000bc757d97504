/* test_flags.c: the flag table: defaults taken from the code's own config defaults, every kind
 * of flag parsed, refusals with status 2, and --help / --help-markdown listing every flag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/app.h"
#include "cli/flags.h"
#include "http/server.h"

/* Parses a NULL-terminated list of arguments (after "kefu"); output goes to a scratch file. */
static int parse(kf_flags_t *f, const char *const *args, char *out, size_t out_size)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"kefu";
    for (; *args != NULL; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    FILE *sink = tmpfile();
    kf_flags_init(f);
    int rc = kf_flags_parse(f, argc, argv, sink, sink);
    rewind(sink);
    size_t n = fread(out, 1, out_size - 1, sink);
    out[n] = '\0';
    fclose(sink);
    return rc;
}

static void test_defaults_are_the_codes(void **state)
{
    (void)state;
    kf_flags_t f;
    kf_flags_init(&f);
    kf_server_config_t server;
    kf_server_config_default(&server);
    kf_app_config_t app;
    kf_app_config_default(&app);
    assert_int_equal(f.v[KF_FLAG_MAX_CONNECTIONS_PER_ADDRESS].count,
                     server.max_connections_per_address);
    assert_int_equal(f.v[KF_FLAG_HEADER_TIMEOUT].count * 1000, server.header_timeout_ms);
    assert_int_equal(f.v[KF_FLAG_MAX_PUSH_PER_AGENT].count, app.max_push_per_agent);
    assert_int_equal(f.v[KF_FLAG_VISITOR_MESSAGE_BURST].count,
                     (uint64_t)app.visitor_messages_burst);
    assert_string_equal(f.host, "127.0.0.1");
    assert_int_equal(f.port, 8080);
    assert_string_equal(f.v[KF_FLAG_DATA].text, "./data");
    assert_null(f.v[KF_FLAG_PUBLIC_URL].text);
    assert_false(f.v[KF_FLAG_SECURE_COOKIES].on);
}

static void test_every_kind_parses(void **state)
{
    (void)state;
    kf_flags_t f;
    char out[8192];
    const char *args[] = {"--listen",
                          "[::1]:0",
                          "--data",
                          "/tmp/x",
                          "--secure-cookies",
                          "--allow-origin",
                          "https://a.example",
                          "--allow-origin",
                          "https://b.example",
                          "--header-timeout",
                          "3600",
                          "--visitor-request-burst",
                          "5",
                          "--synchronous",
                          "NORMAL",
                          NULL};
    assert_int_equal(parse(&f, args, out, sizeof out), 0);
    assert_string_equal(f.host, "::1");
    assert_int_equal(f.port, 0);
    assert_string_equal(f.v[KF_FLAG_DATA].text, "/tmp/x");
    assert_true(f.v[KF_FLAG_SECURE_COOKIES].on);
    assert_int_equal(f.v[KF_FLAG_ALLOW_ORIGIN].item_count, 2);
    assert_string_equal(f.v[KF_FLAG_ALLOW_ORIGIN].items[1], "https://b.example");
    assert_int_equal(f.v[KF_FLAG_HEADER_TIMEOUT].count, 3600);
    assert_int_equal(f.v[KF_FLAG_VISITOR_REQUEST_BURST].count, 5);
    assert_string_equal(f.v[KF_FLAG_SYNCHRONOUS].text, "NORMAL");
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *args[4];
        const char *says;
    } cases[] = {
        {{"--listen", "8080", NULL}, "--listen takes HOST:PORT"},
        {{"--synchronous", "OFF", NULL}, "FULL or NORMAL"},
        {{"--log-level", "loud", NULL}, "unknown log level"},
        {{"--header-timeout", "0", NULL}, "from 1 to 3600, not 0"},
        {{"--max-push-per-agent", "1e3", NULL}, "takes a whole number"},
        {{"--max-push-per-agent", "1000000001", NULL}, "takes a whole number"},
        {{"--visitor-session-burst", "0", NULL}, "a burst must be at least 1"},
        {{"--nope", NULL}, "unknown option"},
        {{"--data", NULL}, "missing value"},
        {{"extra", NULL}, "unexpected argument extra"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kf_flags_t f;
        char out[8192];
        assert_int_equal(parse(&f, cases[i].args, out, sizeof out), 2);
        if (strstr(out, cases[i].says) == NULL)
            fail_msg("%s: said %s", cases[i].args[0], out);
    }
    /* A limit turned off needs no burst. */
    kf_flags_t f;
    char out[8192];
    const char *off[] = {"--visitor-sessions-per-minute", "0", "--visitor-session-burst", "0",
                         NULL};
    assert_int_equal(parse(&f, off, out, sizeof out), 0);
}

static void test_help_and_markdown_list_every_flag(void **state)
{
    (void)state;
    kf_flags_t f;
    static char help[16384], md[16384];
    const char *h[] = {"--help", NULL};
    const char *m[] = {"--help-markdown", NULL};
    assert_int_equal(parse(&f, h, help, sizeof help), 1);
    assert_int_equal(parse(&f, m, md, sizeof md), 1);
    size_t rows = 0;
    for (const char *p = md; (p = strstr(p, "\n| `--")) != NULL; p++)
        rows++;
    assert_int_equal(rows, KF_FLAG__COUNT);
    static const char *const names[] = {"--listen HOST:PORT", "--allow-origin URL",
                                        "--secure-cookies", "--visitor-session-burst N"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_non_null(strstr(help, names[i]));
        assert_non_null(strstr(md, names[i]));
    }
    assert_non_null(strstr(md, "`--synchronous FULL\\|NORMAL`"));
    assert_null(strchr(help, '`'));
    /* No help line runs past 100 columns. */
    for (const char *line = help; *line != '\0';) {
        size_t len = strcspn(line, "\n");
        assert_true(len <= 100);
        line += len + (line[len] == '\n');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_codes),
        cmocka_unit_test(test_every_kind_parses),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_help_and_markdown_list_every_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_config.c: the config file's parser (good files, and each refusal with its file and line),
 * the KEFU_* variables, and the order of the sources: flags over the environment over the file
 * over the defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/config.h"

/* What a call printed to err, read back from a scratch file. */
static void read_back(FILE *sink, char *out, size_t size)
{
    rewind(sink);
    size_t n = fread(out, 1, size - 1, sink);
    out[n] = '\0';
    fclose(sink);
}

/* Applies text as the file "site.conf" to defaults. */
static int apply_text(kf_flags_t *f, kf_config_t *c, const char *text, size_t len, char *said,
                      size_t said_size)
{
    FILE *sink = tmpfile();
    kf_flags_init(f);
    int rc = kf_config_apply_file(f, c, "site.conf", text, len, sink);
    if (rc == 0)
        rc = kf_flags_check(f, sink);
    read_back(sink, said, said_size);
    return rc;
}

static void test_a_good_file(void **state)
{
    (void)state;
    static const char text[] = "# kefu's settings\n"
                               "\n"
                               "listen = 0.0.0.0:8081\r\n"
                               "  data=/var/lib/kefu   \n"
                               "public-url = \"https://chat.example.com\"\n"
                               "secure-cookies = yes\n"
                               "allow-origin = https://a.example, https://b.example\n"
                               "allow-origin = https://c.example\n"
                               "\t# a comment after blanks\n"
                               "header-timeout = 30\n"
                               "log-level = warn"; /* no line end at the end */
    kf_flags_t f;
    kf_config_t c = {0};
    char said[1024];
    assert_int_equal(apply_text(&f, &c, text, strlen(text), said, sizeof said), 0);
    assert_string_equal(said, "");
    assert_string_equal(f.host, "0.0.0.0");
    assert_int_equal(f.port, 8081);
    assert_string_equal(f.v[KF_FLAG_DATA].text, "/var/lib/kefu");
    assert_string_equal(f.v[KF_FLAG_PUBLIC_URL].text, "https://chat.example.com");
    assert_true(f.v[KF_FLAG_SECURE_COOKIES].on);
    assert_int_equal(f.v[KF_FLAG_ALLOW_ORIGIN].item_count, 3);
    assert_string_equal(f.v[KF_FLAG_ALLOW_ORIGIN].items[0], "https://a.example");
    assert_string_equal(f.v[KF_FLAG_ALLOW_ORIGIN].items[1], "https://b.example");
    assert_string_equal(f.v[KF_FLAG_ALLOW_ORIGIN].items[2], "https://c.example");
    assert_int_equal(f.v[KF_FLAG_HEADER_TIMEOUT].count, 30);
    assert_string_equal(f.v[KF_FLAG_LOG_LEVEL].text, "warn");
    assert_true(f.given[KF_FLAG_DATA]);
    assert_false(f.given[KF_FLAG_SYNCHRONOUS]);
    kf_config_free(&c);
}

static void test_refusals_name_the_file_and_line(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *says;
    } cases[] = {
        {"# ok\nlisten 127.0.0.1:1\n", "site.conf:2: expected key = value"},
        {"Listen = 127.0.0.1:1\n", "site.conf:1: expected key = value"},
        {"= x\n", "site.conf:1: expected key = value"},
        {"\n\nlistn = 127.0.0.1:1\n", "site.conf:3: unknown setting listn"},
        {"config = other.conf\n", "site.conf:1: unknown setting config"},
        {"listen = 127.0.0.1:1\nlisten = 127.0.0.1:2\n",
         "site.conf:2: listen is set twice (first on line 1)"},
        {"listen = here\n", "site.conf:1: listen takes HOST:PORT, not here"},
        {"synchronous = OFF\n", "site.conf:1: synchronous is FULL or NORMAL, not OFF"},
        {"log-level = loud\n", "site.conf:1: log-level: unknown log level loud"},
        {"header-timeout = 0\n", "site.conf:1: header-timeout takes a whole number from 1 to 3600"},
        {"max-push-per-agent = 12 # twelve\n", "max-push-per-agent takes a whole number"},
        {"secure-cookies = maybe\n", "site.conf:1: secure-cookies takes true or false"},
        {"public-url =\n", "site.conf:1: public-url needs a value"},
        {"public-url = \"https://x\n", "site.conf:1: a value in quotes ends with its quote"},
        {"public-url = \"https://x\" y\n", "a value in quotes ends with its quote"},
        {"allow-origin = https://a.example,,https://b.example\n", "has an empty item"},
        {"visitor-request-burst = 0\n", "a burst must be at least 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kf_flags_t f;
        kf_config_t c = {0};
        char said[1024];
        int rc = apply_text(&f, &c, cases[i].text, strlen(cases[i].text), said, sizeof said);
        if (rc != 2 || strstr(said, cases[i].says) == NULL)
            fail_msg("%s: rc %d, said %s", cases[i].text, rc, said);
        kf_config_free(&c);
    }
    /* A NUL byte, on the line it is on. */
    kf_flags_t f;
    kf_config_t c = {0};
    char said[1024];
    static const char nul[] = "data = /a\ndata\0 = /b\n";
    assert_int_equal(apply_text(&f, &c, nul, sizeof nul - 1, said, sizeof said), 2);
    assert_non_null(strstr(said, "site.conf:2: a NUL byte"));
    kf_config_free(&c);
}

/* Loads with argv (after "kefu") and envp, as main does. */
static int load(kf_flags_t *f, kf_config_t *c, const char *const *args, char *const *envp,
                char *said, size_t said_size)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"kefu";
    for (; *args != NULL; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    FILE *sink = tmpfile();
    int rc = kf_config_load(f, c, argc, argv, envp, sink, sink);
    read_back(sink, said, said_size);
    return rc;
}

static void test_flags_over_environment_over_file(void **state)
{
    (void)state;
    char path[] = "/tmp/kefu-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "listen = 127.0.0.1:1001\n"
                               "data = /from/file\n"
                               "synchronous = NORMAL\n"
                               "log-level = debug\n"
                               "allow-origin = https://file.example\n"
                               "secure-cookies = true\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char config_env[64];
    snprintf(config_env, sizeof config_env, "KEFU_CONFIG=%s", path);
    char *envp[] = {config_env,
                    (char *)"KEFU_LISTEN=127.0.0.1:1002",
                    (char *)"KEFU_DATA=/from/env",
                    (char *)"KEFU_ALLOW_ORIGIN=https://env1.example,https://env2.example",
                    (char *)"KEFU_SECURE_COOKIES=off",
                    (char *)"KEFU_BIN=/not/a/setting",
                    (char *)"HOME=/root",
                    NULL};
    const char *args[] = {"--listen", "127.0.0.1:1003", NULL};
    kf_flags_t f;
    kf_config_t c = {0};
    char said[1024];
    assert_int_equal(load(&f, &c, args, envp, said, sizeof said), 0);
    assert_int_equal(f.port, 1003);                               /* the flag */
    assert_string_equal(f.v[KF_FLAG_DATA].text, "/from/env");     /* the environment */
    assert_string_equal(f.v[KF_FLAG_SYNCHRONOUS].text, "NORMAL"); /* the file */
    assert_string_equal(f.v[KF_FLAG_PUBLIC_URL].text == NULL ? "" : "set", ""); /* default */
    assert_int_equal(f.v[KF_FLAG_ALLOW_ORIGIN].item_count, 2); /* replaced, not added to */
    assert_string_equal(f.v[KF_FLAG_ALLOW_ORIGIN].items[1], "https://env2.example");
    assert_false(f.v[KF_FLAG_SECURE_COOKIES].on); /* the environment turned the file's off */
    assert_string_equal(f.config_path, path);
    assert_int_equal(f.v[KF_FLAG_METRICS_ALLOW].item_count, 2); /* the default: loopback */
    assert_string_equal(f.v[KF_FLAG_METRICS_ALLOW].items[1], "::1");
    kf_config_free(&c);

    /* --config wins over KEFU_CONFIG; a flag's list replaces the environment's. */
    const char *args2[] = {"--config",         path,
                           "--allow-origin",   "https://flag.example",
                           "--secure-cookies", "--metrics-allow",
                           "10.0.0.0/8",       NULL};
    char *envp2[] = {(char *)"KEFU_CONFIG=/no/such/file", NULL};
    assert_int_equal(load(&f, &c, args2, envp2, said, sizeof said), 0);
    assert_int_equal(f.port, 1001);
    assert_int_equal(f.v[KF_FLAG_ALLOW_ORIGIN].item_count, 1);
    assert_string_equal(f.v[KF_FLAG_ALLOW_ORIGIN].items[0], "https://flag.example");
    assert_true(f.v[KF_FLAG_SECURE_COOKIES].on);
    /* A flag's list replaces the default's too. */
    assert_int_equal(f.v[KF_FLAG_METRICS_ALLOW].item_count, 1);
    assert_string_equal(f.v[KF_FLAG_METRICS_ALLOW].items[0], "10.0.0.0/8");
    kf_config_free(&c);

    /* The settings are checked together once every source is in: a burst of 0 from the
     * environment is fine when a flag turns its limit off. */
    const char *off[] = {"--visitor-requests-per-minute", "0", NULL};
    char *envp4[] = {(char *)"KEFU_VISITOR_REQUEST_BURST=0", NULL};
    assert_int_equal(load(&f, &c, off, envp4, said, sizeof said), 0);
    kf_config_free(&c);
    const char *none[] = {NULL};
    assert_int_equal(load(&f, &c, none, envp4, said, sizeof said), 2);
    assert_non_null(strstr(said, "a burst must be at least 1"));
    kf_config_free(&c);

    /* A file that cannot be read. */
    char *envp3[] = {(char *)"KEFU_CONFIG=/no/such/file", NULL};
    assert_int_equal(load(&f, &c, none, envp3, said, sizeof said), 2);
    assert_non_null(strstr(said, "cannot read the config file /no/such/file"));
    kf_config_free(&c);
    unlink(path);
}

static void test_environment_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *variable;
        const char *says; /* NULL: accepted */
    } cases[] = {
        {"KEFU_LISTN=127.0.0.1:1", NULL}, /* starts like no setting: not ours */
        {"KEFU_SCREENSHOTS=1", NULL},
        {"KEFU_LISTEN_PORT=1", "unknown setting in the environment: KEFU_LISTEN_PORT"},
        {"KEFU_MAX_PUSH=1", "unknown setting in the environment: KEFU_MAX_PUSH"},
        {"KEFU_listen=127.0.0.1:1", NULL},
        {"KEFU_HEADER_TIMEOUT=soon", "KEFU_HEADER_TIMEOUT takes a whole number from 1 to 3600"},
        {"KEFU_SYNCHRONOUS=OFF", "KEFU_SYNCHRONOUS is FULL or NORMAL"},
        {"KEFU_CONFIG=", "needs a file"},
        {"KEFU_ALLOW_ORIGIN=", NULL},
        {"KEFU_METRICS_ALLOW=", NULL}, /* nobody by address: the token only */
        {"KEFU_METRICS_ALLOW=localhost", "KEFU_METRICS_ALLOW takes an IP address or ADDRESS/BITS"},
        {"KEFU_METRICS_TOKEN=short", "KEFU_METRICS_TOKEN takes at least 16 characters"},
        {"KEFU_DRAIN_DELAY=3601", "KEFU_DRAIN_DELAY takes a whole number from 0 to 3600"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *envp[] = {(char *)cases[i].variable, NULL};
        const char *none[] = {NULL};
        kf_flags_t f;
        kf_config_t c = {0};
        char said[1024];
        int rc = load(&f, &c, none, envp, said, sizeof said);
        if (cases[i].says == NULL ? rc != 0 : rc != 2 || strstr(said, cases[i].says) == NULL)
            fail_msg("%s: rc %d, said %s", cases[i].variable, rc, said);
        kf_config_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_good_file),
        cmocka_unit_test(test_refusals_name_the_file_and_line),
        cmocka_unit_test(test_flags_over_environment_over_file),
        cmocka_unit_test(test_environment_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

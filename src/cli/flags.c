/* flags.c: the parser, the help text and the README table of the KF_FLAGS table. */
#include "cli/flags.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "chat/app.h"
#include "http/server.h"

typedef struct flag {
    const char *name;
    const char *metavar; /* NULL for a switch */
    kf_flag_kind_t kind;
    uint64_t min, max;        /* COUNT */
    const char *text_default; /* TEXT */
    bool limit;
    const char *help;
} flag_t;

static const flag_t flags[KF_FLAG__COUNT] = {
#define KF_FLAG_ROW(id, name, metavar, kind, min, max, count_default, text_default, limit, help)   \
    {name, metavar, kind, min, max, text_default, limit, help},
    KF_FLAGS(KF_FLAG_ROW)
#undef KF_FLAG_ROW
};

void kf_flags_init(kf_flags_t *f)
{
    memset(f, 0, sizeof *f);
    kf_server_config_t server;
    kf_server_config_default(&server);
    kf_app_config_t app;
    kf_app_config_default(&app);
#define KF_FLAG_DEFAULT(id, name, metavar, kind, min, max, count_default, text_default, limit,     \
                        help)                                                                      \
    f->v[KF_FLAG_##id].count = (uint64_t)(count_default);                                          \
    f->v[KF_FLAG_##id].text = text_default;
    KF_FLAGS(KF_FLAG_DEFAULT)
#undef KF_FLAG_DEFAULT
    snprintf(f->host, sizeof f->host, "%s", server.host);
    f->port = server.port;
}

/* Splits HOST:PORT (IPv6 in brackets) into f->host and f->port. */
static int parse_listen(const char *value, kf_flags_t *f)
{
    const char *colon = strrchr(value, ':');
    if (colon == NULL || colon == value || (size_t)(colon - value) >= sizeof f->host)
        return KF_EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
        return KF_EINVAL;
    const char *host = value;
    size_t host_len = (size_t)(colon - value);
    if (host[0] == '[' && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    memcpy(f->host, host, host_len);
    f->host[host_len] = '\0';
    f->port = (int)port;
    return 0;
}

/* Checks one flag's value where the flag has a form, and stores it. 0, or 2 after saying why. */
static int take(kf_flags_t *f, kf_flag_id_t id, const char *value, FILE *err)
{
    const flag_t *flag = &flags[id];
    kf_flag_value_t *v = &f->v[id];
    switch (flag->kind) {
    case KF_FLAG_SWITCH: v->on = true; return 0;
    case KF_FLAG_LIST:
        if (v->item_count == KF_FLAG_MAX_ITEMS) {
            fprintf(err, "kefu: too many --%s flags (at most %d)\n", flag->name, KF_FLAG_MAX_ITEMS);
            return 2;
        }
        v->items[v->item_count++] = value;
        return 0;
    case KF_FLAG_COUNT: {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(value, &end, 10);
        if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 || n < flag->min ||
            n > flag->max) {
            fprintf(err, "kefu: --%s takes a whole number from %llu to %llu, not %s\n", flag->name,
                    (unsigned long long)flag->min, (unsigned long long)flag->max, value);
            return 2;
        }
        v->count = n;
        return 0;
    }
    case KF_FLAG_TEXT: break;
    }
    kf_log_level_t level;
    if (id == KF_FLAG_LISTEN && parse_listen(value, f) != 0) {
        fprintf(err, "kefu: --listen takes HOST:PORT, not %s\n", value);
        return 2;
    }
    if (id == KF_FLAG_SYNCHRONOUS && strcmp(value, "FULL") != 0 && strcmp(value, "NORMAL") != 0) {
        fprintf(err, "kefu: --synchronous is FULL or NORMAL\n");
        return 2;
    }
    if (id == KF_FLAG_LOG_LEVEL && kf_log_parse_level(value, &level) != 0) {
        fprintf(err, "kefu: unknown log level %s\n", value);
        return 2;
    }
    v->text = value;
    return 0;
}

/* What the flags say together: a rate limit that is on needs a bucket of at least one. */
static int check_together(const kf_flags_t *f, FILE *err)
{
    static const kf_flag_id_t pairs[][2] = {
        {KF_FLAG_VISITOR_REQUESTS_PER_MINUTE, KF_FLAG_VISITOR_REQUEST_BURST},
        {KF_FLAG_VISITOR_MESSAGES_PER_MINUTE, KF_FLAG_VISITOR_MESSAGE_BURST},
        {KF_FLAG_VISITOR_SESSIONS_PER_MINUTE, KF_FLAG_VISITOR_SESSION_BURST},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (f->v[pairs[i][0]].count > 0 && f->v[pairs[i][1]].count < 1) {
            fprintf(err, "kefu: a burst must be at least 1 while its limit is on (--%s)\n",
                    flags[pairs[i][1]].name);
            return 2;
        }
    }
    return 0;
}

/* getopt's value for a flag: past any character, so that none is mistaken for a short option. */
#define OPTION_BASE 256
enum { OPTION_HELP = OPTION_BASE + KF_FLAG__COUNT, OPTION_MARKDOWN };

int kf_flags_parse(kf_flags_t *f, int argc, char **argv, FILE *out, FILE *err)
{
    struct option options[KF_FLAG__COUNT + 3];
    for (int i = 0; i < KF_FLAG__COUNT; i++)
        options[i] = (struct option){
            flags[i].name, flags[i].kind == KF_FLAG_SWITCH ? no_argument : required_argument, NULL,
            OPTION_BASE + i};
    options[KF_FLAG__COUNT] = (struct option){"help", no_argument, NULL, OPTION_HELP};
    options[KF_FLAG__COUNT + 1] =
        (struct option){"help-markdown", no_argument, NULL, OPTION_MARKDOWN};
    options[KF_FLAG__COUNT + 2] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (c == 'h' || c == OPTION_HELP) {
            kf_flags_help(out);
            return 1;
        }
        if (c == OPTION_MARKDOWN) {
            kf_flags_markdown(out);
            return 1;
        }
        if (c < OPTION_BASE || c >= OPTION_BASE + KF_FLAG__COUNT) {
            fprintf(err, "kefu: unknown option or missing value: %s\n", argv[optind - 1]);
            kf_flags_help(err);
            return 2;
        }
        int rc = take(f, (kf_flag_id_t)(c - OPTION_BASE), optarg, err);
        if (rc != 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(err, "kefu: unexpected argument %s\n", argv[optind]);
        kf_flags_help(err);
        return 2;
    }
    return check_together(f, err);
}

/* A flag's default as text, for help: "" when it has none worth a word. */
static void default_text(kf_flag_id_t id, const kf_flags_t *defaults, char *out, size_t size)
{
    const flag_t *flag = &flags[id];
    out[0] = '\0';
    if (flag->kind == KF_FLAG_COUNT)
        snprintf(out, size, "%llu", (unsigned long long)defaults->v[id].count);
    else if (flag->kind == KF_FLAG_TEXT && flag->text_default != NULL)
        snprintf(out, size, "%s", flag->text_default);
}

/* Prints text without Markdown's backquotes, wrapped at 100 columns with a hanging indent. */
static void print_wrapped(FILE *out, const char *text, size_t column, size_t indent)
{
    char plain[1024];
    size_t n = 0;
    for (const char *p = text; *p != '\0' && n < sizeof plain - 1; p++) {
        if (*p != '`')
            plain[n++] = *p;
    }
    plain[n] = '\0';
    const char *word = plain;
    while (*word != '\0') {
        size_t len = strcspn(word, " ");
        if (column > indent && column + 1 + len > 100) {
            fprintf(out, "\n%*s", (int)indent, "");
            column = indent;
        } else if (column > indent) {
            fputc(' ', out);
            column++;
        }
        fprintf(out, "%.*s", (int)len, word);
        column += len;
        word += len;
        while (*word == ' ')
            word++;
    }
    fputc('\n', out);
}

void kf_flags_help(FILE *out)
{
    kf_flags_t defaults;
    kf_flags_init(&defaults);
    fputs("usage: kefu [options]                      serve the chat\n"
          "       kefu user add EMAIL --name NAME [--role admin|agent] [--data DIR]\n"
          "                                           create an agent (password on standard "
          "input)\n"
          "       kefu backup FILE [--data DIR]        copy the database, while it serves, to "
          "a new FILE\n"
          "       kefu routes                          list the routes and who may call each\n"
          "\noptions:\n",
          out);
    bool in_limits = false;
    for (int i = 0; i < KF_FLAG__COUNT; i++) {
        const flag_t *flag = &flags[i];
        if (flag->limit && !in_limits) {
            fputs("\nabuse limits (0 turns a count or rate off; load benchmarks raise them):\n",
                  out);
            in_limits = true;
        }
        char left[96];
        int n =
            snprintf(left, sizeof left, "  --%s%s%s", flag->name, flag->metavar != NULL ? " " : "",
                     flag->metavar != NULL ? flag->metavar : "");
        char dflt[64];
        default_text((kf_flag_id_t)i, &defaults, dflt, sizeof dflt);
        char help[1024];
        snprintf(help, sizeof help, "%s%s%s%s", flag->help, dflt[0] != '\0' ? " (default " : "",
                 dflt, dflt[0] != '\0' ? ")" : "");
        if (n < 24) {
            fprintf(out, "%-24s", left);
            print_wrapped(out, help, 24, 24);
        } else {
            fprintf(out, "%s\n%24s", left, "");
            print_wrapped(out, help, 24, 24);
        }
    }
    fputs("  -h, --help            this text\n", out);
}

/* Writes s for a Markdown table cell: '|' escaped. */
static void cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

void kf_flags_markdown(FILE *out)
{
    kf_flags_t defaults;
    kf_flags_init(&defaults);
    fputs("| flag | default | meaning |\n| --- | --- | --- |\n", out);
    for (int i = 0; i < KF_FLAG__COUNT; i++) {
        const flag_t *flag = &flags[i];
        fputs("| `--", out);
        cell(out, flag->name);
        if (flag->metavar != NULL) {
            fputc(' ', out);
            cell(out, flag->metavar);
        }
        fputs("` | ", out);
        char dflt[64];
        default_text((kf_flag_id_t)i, &defaults, dflt, sizeof dflt);
        if (dflt[0] != '\0')
            fprintf(out, "`%s`", dflt);
        else
            fputs(flag->kind == KF_FLAG_SWITCH ? "off" : "none", out);
        fputs(" | ", out);
        cell(out, flag->help);
        fputs(" |\n", out);
    }
}

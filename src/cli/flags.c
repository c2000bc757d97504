/* flags.c: the parser, the help text and the docs/CONFIG.md table of the KF_FLAGS table. */
#include "cli/flags.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/netaddr.h"
#include "bus/bus.h"
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
    /* The one list with a default: the table's text says the same for --help. */
    static const char *const metrics_allow[] = {"127.0.0.0/8", "::1"};
    f->v[KF_FLAG_METRICS_ALLOW].text = NULL;
    for (size_t i = 0; i < sizeof metrics_allow / sizeof metrics_allow[0]; i++)
        f->v[KF_FLAG_METRICS_ALLOW].items[f->v[KF_FLAG_METRICS_ALLOW].item_count++] =
            metrics_allow[i];
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

int kf_flags_lookup(const char *name, size_t len)
{
    for (int i = 0; i < KF_FLAG__COUNT; i++) {
        if (strlen(flags[i].name) == len && memcmp(flags[i].name, name, len) == 0)
            return i;
    }
    return -1;
}

const char *kf_flags_name(kf_flag_id_t id)
{
    return flags[id].name;
}

kf_flag_kind_t kf_flags_kind(kf_flag_id_t id)
{
    return flags[id].kind;
}

void kf_flags_env_name(kf_flag_id_t id, char *out, size_t size)
{
    int n = snprintf(out, size, "KEFU_%s", flags[id].name);
    for (int i = 5; i < n && (size_t)i < size; i++)
        out[i] =
            out[i] == '-' ? '_' : (char)(out[i] >= 'a' && out[i] <= 'z' ? out[i] - 32 : out[i]);
}

/* A switch's value in a file or the environment, where it can also be turned off. */
static int parse_switch(const char *value, bool *on)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0) {
            *on = strcmp(value, yes[i]) == 0;
            return 0;
        }
    }
    return KF_EINVAL;
}

int kf_flags_set(kf_flags_t *f, kf_flag_id_t id, const char *value, const char *label, FILE *err)
{
    const flag_t *flag = &flags[id];
    kf_flag_value_t *v = &f->v[id];
    switch (flag->kind) {
    case KF_FLAG_SWITCH:
        if (parse_switch(value, &v->on) != 0) {
            fprintf(err, "kefu: %s takes true or false (or yes/no, on/off, 1/0), not %s\n", label,
                    value);
            return 2;
        }
        f->given[id] = true;
        return 0;
    case KF_FLAG_LIST: {
        kf_addr_prefix_t prefix;
        if ((id == KF_FLAG_METRICS_ALLOW || id == KF_FLAG_TRUSTED_PROXY) &&
            kf_addr_prefix_parse(value, &prefix) != 0) {
            fprintf(err, "kefu: %s takes an IP address or ADDRESS/BITS (10.0.0.0/8), not %s\n",
                    label, value);
            return 2;
        }
        if (!f->given[id]) /* the first value given replaces the default's */
            v->item_count = 0;
        if (v->item_count == KF_FLAG_MAX_ITEMS) {
            fprintf(err, "kefu: too many %s values (at most %d)\n", label, KF_FLAG_MAX_ITEMS);
            return 2;
        }
        v->items[v->item_count++] = value;
        f->given[id] = true;
        return 0;
    }
    case KF_FLAG_COUNT: {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(value, &end, 10);
        if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 || n < flag->min ||
            n > flag->max) {
            fprintf(err, "kefu: %s takes a whole number from %llu to %llu, not %s\n", label,
                    (unsigned long long)flag->min, (unsigned long long)flag->max, value);
            return 2;
        }
        v->count = n;
        f->given[id] = true;
        return 0;
    }
    case KF_FLAG_TEXT: break;
    }
    kf_log_level_t level;
    if (id == KF_FLAG_LISTEN && parse_listen(value, f) != 0) {
        fprintf(err, "kefu: %s takes HOST:PORT, not %s\n", label, value);
        return 2;
    }
    if (id == KF_FLAG_SYNCHRONOUS && strcmp(value, "FULL") != 0 && strcmp(value, "NORMAL") != 0) {
        fprintf(err, "kefu: %s is FULL or NORMAL, not %s\n", label, value);
        return 2;
    }
    kf_log_format_t format;
    if (id == KF_FLAG_LOG_FORMAT && kf_log_parse_format(value, &format) != 0) {
        fprintf(err, "kefu: %s is plain or json, not %s\n", label, value);
        return 2;
    }
    if (id == KF_FLAG_LOG_LEVEL && kf_log_parse_level(value, &level) != 0) {
        fprintf(err, "kefu: %s: unknown log level %s (debug, info, warn, error or off)\n", label,
                value);
        return 2;
    }
    if (id == KF_FLAG_STORE && strcmp(value, "sqlite") != 0 &&
        strncmp(value, "postgres://", 11) != 0 && strncmp(value, "postgresql://", 13) != 0) {
        fprintf(err, "kefu: %s takes sqlite or postgres://USER@HOST[:PORT]/DB, not %s\n", label,
                value);
        return 2;
    }
    kf_bus_url_t bus_url;
    if (id == KF_FLAG_BUS && kf_bus_url_parse(value, &bus_url) != 0) {
        /* Not the value itself: it may hold a password. */
        fprintf(err, "kefu: %s takes redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], not %s\n", label,
                strstr(value, "@") != NULL ? "that (its password is not shown)" : value);
        return 2;
    }
    if (id == KF_FLAG_METRICS_TOKEN && (strlen(value) < 16 || strpbrk(value, " \t") != NULL)) {
        fprintf(err, "kefu: %s takes at least 16 characters and no spaces\n", label);
        return 2;
    }
    if (id != KF_FLAG_LISTEN && value[0] == '\0') {
        fprintf(err, "kefu: %s needs a value\n", label);
        return 2;
    }
    v->text = value;
    f->given[id] = true;
    return 0;
}

int kf_flags_check(kf_flags_t *f, FILE *err)
{
    /* --listen may have come from several sources: the host and port are the last one's. */
    if (parse_listen(f->v[KF_FLAG_LISTEN].text, f) != 0) {
        fprintf(err, "kefu: listen takes HOST:PORT, not %s\n", f->v[KF_FLAG_LISTEN].text);
        return 2;
    }
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
enum { OPTION_HELP = OPTION_BASE + KF_FLAG__COUNT, OPTION_MARKDOWN, OPTION_CONFIG };

int kf_flags_parse(kf_flags_t *f, int argc, char **argv, FILE *out, FILE *err)
{
    int rc = kf_flags_parse_args(f, argc, argv, out, err);
    return rc != 0 ? rc : kf_flags_check(f, err);
}

int kf_flags_parse_args(kf_flags_t *f, int argc, char **argv, FILE *out, FILE *err)
{
    struct option options[KF_FLAG__COUNT + 4];
    for (int i = 0; i < KF_FLAG__COUNT; i++)
        options[i] = (struct option){
            flags[i].name, flags[i].kind == KF_FLAG_SWITCH ? no_argument : required_argument, NULL,
            OPTION_BASE + i};
    options[KF_FLAG__COUNT] = (struct option){"help", no_argument, NULL, OPTION_HELP};
    options[KF_FLAG__COUNT + 1] =
        (struct option){"help-markdown", no_argument, NULL, OPTION_MARKDOWN};
    options[KF_FLAG__COUNT + 2] = (struct option){"config", required_argument, NULL, OPTION_CONFIG};
    options[KF_FLAG__COUNT + 3] = (struct option){NULL, 0, NULL, 0};
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
        if (c == OPTION_CONFIG) {
            f->config_path = optarg;
            continue;
        }
        if (c < OPTION_BASE || c >= OPTION_BASE + KF_FLAG__COUNT) {
            fprintf(err, "kefu: unknown option or missing value: %s\n", argv[optind - 1]);
            kf_flags_help(err);
            return 2;
        }
        kf_flag_id_t id = (kf_flag_id_t)(c - OPTION_BASE);
        char label[64];
        snprintf(label, sizeof label, "--%s", flags[id].name);
        /* A switch on the command line is only ever turned on. */
        int rc =
            kf_flags_set(f, id, flags[id].kind == KF_FLAG_SWITCH ? "true" : optarg, label, err);
        if (rc != 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(err, "kefu: unexpected argument %s\n", argv[optind]);
        kf_flags_help(err);
        return 2;
    }
    return 0;
}

/* A flag's default as text, for help: "" when it has none worth a word. */
static void default_text(kf_flag_id_t id, const kf_flags_t *defaults, char *out, size_t size)
{
    const flag_t *flag = &flags[id];
    out[0] = '\0';
    if (flag->kind == KF_FLAG_COUNT)
        snprintf(out, size, "%llu", (unsigned long long)defaults->v[id].count);
    else if (flag->kind != KF_FLAG_COUNT && flag->text_default != NULL)
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
    fputs(
        "usage: kefu [options]                      serve the chat\n"
        "       kefu user add EMAIL --name NAME [--role admin|agent] [--data DIR] [--config FILE]\n"
        "                                           create an agent (password on standard "
        "input)\n"
        "       kefu backup FILE [--data DIR] [--config FILE]\n"
        "                                           copy the database, while it serves, to a "
        "new FILE\n"
        "       kefu export [--data DIR | --store URL] [--config FILE] [FILE|-]\n"
        "                                           write every row of the store to a new FILE\n"
        "       kefu import [--data DIR | --store URL] [--config FILE] [FILE|-]\n"
        "                                           load an export into an empty store\n"
        "       kefu routes                          list the routes and who may call each\n"
        "\nEvery option is also a config file key (its name without --) and an environment\n"
        "variable (KEFU_ and its name in capitals, - as _: KEFU_LISTEN). Flags win over the\n"
        "environment, which wins over the file (docs/CONFIG.md).\n"
        "\noptions:\n"
        "  --config FILE         read settings from FILE (key = value lines, # comments); also\n"
        "                        KEFU_CONFIG\n",
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
    fputs("| flag and file key | environment | default | meaning |\n| --- | --- | --- | --- |\n",
          out);
    for (int i = 0; i < KF_FLAG__COUNT; i++) {
        const flag_t *flag = &flags[i];
        fputs("| `--", out);
        cell(out, flag->name);
        if (flag->metavar != NULL) {
            fputc(' ', out);
            cell(out, flag->metavar);
        }
        char env[96];
        kf_flags_env_name((kf_flag_id_t)i, env, sizeof env);
        fprintf(out, "` | `%s` | ", env);
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

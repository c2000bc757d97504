/* flags.h: kefu's settings, from ONE table (KF_FLAGS): the command-line parser, the config file's
 * keys and the KEFU_* environment variables (cli/config.h), `kefu --help` and the table in
 * docs/CONFIG.md (`kefu --help-markdown`, which tests/e2e/cli.test.js compares with it) are all
 * made from it, so they cannot drift. A new setting is one line here and the code that uses its
 * value. */
#ifndef KF_FLAGS_H
#define KF_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    KF_FLAG_TEXT,   /* takes a value (checked by kf_flags_parse where it has a form) */
    KF_FLAG_SWITCH, /* takes none: on when given */
    KF_FLAG_LIST,   /* takes a value, repeatable (at most KF_FLAG_MAX_ITEMS) */
    KF_FLAG_COUNT,  /* a whole number from min to max */
} kf_flag_kind_t;

/* The abuse limits' counts go up to this (0 turns most of them off). */
#define KF_FLAG_MAX_LIMIT 1000000000

/* X(id, name, metavar, kind, min, max, count_default, text_default, limit, help):
 * - count_default is an expression over `server` (kf_server_config_t) and `app`
 *   (kf_app_config_t) filled with their defaults: the flag's default is the code's, never a copy;
 * - text_default is the default of a TEXT flag, or NULL when it has none (then its help says
 *   what happens without it); for a LIST, its default items as --help shows them (the items
 *   themselves are set in kf_flags_init);
 * - limit: the flag is one of the abuse limits (listed after the others);
 * - help is Markdown for the README (`code` in backquotes); --help prints it without them. */
#define KF_FLAGS(X)                                                                                \
    X(LISTEN, "listen", "HOST:PORT", KF_FLAG_TEXT, 0, 0, 0, "127.0.0.1:8080", false,               \
      "address to serve on; port 0 picks a free one")                                              \
    X(DATA, "data", "DIR", KF_FLAG_TEXT, 0, 0, 0, "./data", false,                                 \
      "where `kefu.db` (SQLite, WAL mode) lives; created if missing")                              \
    X(STORE, "store", "sqlite|URL", KF_FLAG_TEXT, 0, 0, 0, "sqlite", false,                        \
      "`sqlite` (in `--data`), or `postgres://USER@HOST[:PORT]/DB` (libpq's URL; a password is "   \
      "best in `~/.pgpass` or `PGPASSWORD`): PostgreSQL, which several kefu nodes share "          \
      "(docs/ARCHITECTURE.md); kefu makes and migrates its tables (`kefu migrate`)")               \
    X(SYNCHRONOUS, "synchronous", "FULL|NORMAL", KF_FLAG_TEXT, 0, 0, 0, "FULL", false,             \
      "SQLite durability: FULL keeps every acknowledged message across a crash or power loss; "    \
      "NORMAL across a process crash")                                                             \
    X(BUS, "bus", "URL", KF_FLAG_TEXT, 0, 0, 0, NULL, false,                                       \
      "`redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`: carry events between several kefu nodes "     \
      "through Redis pub/sub, and share their abuse limits (docs/DEPLOY.md); `/readyz` answers "   \
      "503 while Redis is unreachable or refuses the password (default: in-process, one node)")    \
    X(LOOPS, "loops", "N", KF_FLAG_COUNT, 0, 256, 0, NULL, false,                                  \
      "event loops (threads) serving connections, each its own share (SO_REUSEPORT); they share "  \
      "one database writer and hear each other's events; 0: one per core the process may use, "    \
      "or one when the bus is Redis or the store PostgreSQL (docs/ARCHITECTURE.md, \"Every "       \
      "core\")")                                                                                   \
    X(PUBLIC_URL, "public-url", "URL", KF_FLAG_TEXT, 0, 0, 0, NULL, false,                         \
      "the address people use, for the start-up message (default: the listen address)")            \
    X(SECURE_COOKIES, "secure-cookies", NULL, KF_FLAG_SWITCH, 0, 0, 0, NULL, false,                \
      "mark the session cookie `Secure` (when served behind TLS)")                                 \
    X(REQUIRE_VERIFIED, "require-verified", NULL, KF_FLAG_SWITCH, 0, 0, 0, NULL, false,            \
      "refuse visitors the site's server has not signed in (401 `verification_required`; "         \
      "docs/IDENTITY.md)")                                                                         \
    X(WEBHOOKS_ALLOW_PRIVATE, "webhooks-allow-private", NULL, KF_FLAG_SWITCH, 0, 0, 0, NULL,       \
      false,                                                                                       \
      "let webhooks call private, loopback and link-local addresses (refused by default, "         \
      "checked after DNS resolution)")                                                             \
    X(ALLOW_ORIGIN, "allow-origin", "URL", KF_FLAG_LIST, 0, 0, 0, NULL, false,                     \
      "another origin (scheme://host[:port]) whose pages may open a WebSocket here "               \
      "(repeatable); by default only kefu's own origin may")                                       \
    X(LOG_LEVEL, "log-level", "LEVEL", KF_FLAG_TEXT, 0, 0, 0, "info", false,                       \
      "`debug`, `info`, `warn`, `error`, `off`; logs go to stderr")                                \
    X(LOG_FORMAT, "log-format", "plain|json", KF_FLAG_TEXT, 0, 0, 0, "plain", false,               \
      "`plain` lines, or `json`: one object a line (`time`, `level`, `msg`, `request_id`)")        \
    X(DRAIN_DELAY, "drain-delay", "SECONDS", KF_FLAG_COUNT, 0, 3600, 0, NULL, false,               \
      "after SIGTERM, serve on this long while `/readyz` answers 503, so that a load balancer "    \
      "stops sending new clients, then drain and stop (0 to 3600; a second signal stops at once)") \
    X(METRICS_ALLOW, "metrics-allow", "ADDRESS[/BITS]", KF_FLAG_LIST, 0, 0, 0, "127.0.0.0/8, ::1", \
      false,                                                                                       \
      "addresses that may read `/metrics` (repeatable; an empty list in a file or variable: "      \
      "none; "                                                                                     \
      "others get 403)")                                                                           \
    X(METRICS_TOKEN, "metrics-token", "TOKEN", KF_FLAG_TEXT, 0, 0, 0, NULL, false,                 \
      "a scraper sending `Authorization: Bearer TOKEN` may read `/metrics` from any address "      \
      "(set it in the file or the environment: flags show in `ps`)")                               \
    X(TRUSTED_PROXY, "trusted-proxy", "ADDRESS[/BITS]", KF_FLAG_LIST, 0, 0, 0, NULL, false,        \
      "a proxy in front of kefu (nginx, HAProxy; repeatable) whose `X-Forwarded-For` names the "   \
      "client: its requests count as that client's in the per-address limits, the logs and "       \
      "`metrics-allow`, and its own connections are not limited per address")                      \
    X(MAX_UPLOAD_BYTES, "max-upload-bytes", "BYTES", KF_FLAG_COUNT, 1, 1073741824,                 \
      app.max_upload_bytes, NULL, false,                                                           \
      "largest attachment a visitor or an agent may upload (413 past it); each upload in "         \
      "progress holds this much memory at most")                                                   \
    X(MAX_CONNECTIONS_PER_ADDRESS, "max-connections-per-address", "N", KF_FLAG_COUNT, 0,           \
      KF_FLAG_MAX_LIMIT, server.max_connections_per_address, NULL, true,                           \
      "connections open at once from one client address (an IPv6 /64), loopback included; "        \
      "further ones are closed at accept")                                                         \
    X(HEADER_TIMEOUT, "header-timeout", "SECONDS", KF_FLAG_COUNT, 1, 3600,                         \
      server.header_timeout_ms / 1000, NULL, true,                                                 \
      "a request head and body must arrive within this (408), and a new connection must send "     \
      "its first request within as long (1 to 3600)")                                              \
    X(MAX_PUSH_PER_VISITOR, "max-push-per-visitor", "N", KF_FLAG_COUNT, 0, KF_FLAG_MAX_LIMIT,      \
      app.max_push_per_visitor, NULL, true,                                                        \
      "long polls, iframe and SSE streams and WebSockets one visitor may hold open; past it 429")  \
    X(MAX_PUSH_PER_AGENT, "max-push-per-agent", "N", KF_FLAG_COUNT, 0, KF_FLAG_MAX_LIMIT,          \
      app.max_push_per_agent, NULL, true, "the same per agent")                                    \
    X(VISITOR_REQUESTS_PER_MINUTE, "visitor-requests-per-minute", "N", KF_FLAG_COUNT, 0,           \
      KF_FLAG_MAX_LIMIT, app.visitor_requests_per_minute, NULL, true,                              \
      "API and push requests per visitor (a token bucket); past it 429 with `Retry-After`")        \
    X(VISITOR_REQUEST_BURST, "visitor-request-burst", "N", KF_FLAG_COUNT, 0, KF_FLAG_MAX_LIMIT,    \
      app.visitor_requests_burst, NULL, true, "... and how many may come at once")                 \
    X(VISITOR_MESSAGES_PER_MINUTE, "visitor-messages-per-minute", "N", KF_FLAG_COUNT, 0,           \
      KF_FLAG_MAX_LIMIT, app.visitor_messages_per_minute, NULL, true,                              \
      "messages per visitor, over HTTP and WebSocket alike; past it 429 with `Retry-After` "       \
      "(WebSocket: an error reply with `retry_after`)")                                            \
    X(VISITOR_MESSAGE_BURST, "visitor-message-burst", "N", KF_FLAG_COUNT, 0, KF_FLAG_MAX_LIMIT,    \
      app.visitor_messages_burst, NULL, true, "... and how many may come at once")                 \
    X(VISITOR_SESSIONS_PER_MINUTE, "visitor-sessions-per-minute", "N", KF_FLAG_COUNT, 0,           \
      KF_FLAG_MAX_LIMIT, app.visitor_sessions_per_minute, NULL, true,                              \
      "new visitor sessions per client address a minute (429 with `Retry-After` past it)")         \
    X(VISITOR_SESSION_BURST, "visitor-session-burst", "N", KF_FLAG_COUNT, 0, KF_FLAG_MAX_LIMIT,    \
      app.visitor_sessions_burst, NULL, true, "... and how many may come at once")

typedef enum {
#define KF_FLAG_ENUM(id, ...) KF_FLAG_##id,
    KF_FLAGS(KF_FLAG_ENUM)
#undef KF_FLAG_ENUM
        KF_FLAG__COUNT
} kf_flag_id_t;

#define KF_FLAG_MAX_ITEMS 16

/* One flag's value; which field holds it depends on the flag's kind. */
typedef struct kf_flag_value {
    const char *text;                     /* TEXT: the value (argv's), or the default */
    bool on;                              /* SWITCH */
    uint64_t count;                       /* COUNT */
    const char *items[KF_FLAG_MAX_ITEMS]; /* LIST: the values, in order (argv's) */
    size_t item_count;
} kf_flag_value_t;

typedef struct kf_flags {
    kf_flag_value_t v[KF_FLAG__COUNT];
    bool given[KF_FLAG__COUNT]; /* set by kf_flags_set (a flag, a key or a variable), not a default
                                 */
    const char *config_path;    /* --config FILE, or NULL */
    char host[256]; /* --listen, split: the host (brackets of an IPv6 address removed) */
    int port;       /* ... and the port */
} kf_flags_t;

/* Every flag at its default. */
void kf_flags_init(kf_flags_t *flags);
/* Parses argv[1..] (getopt_long; argv's strings must outlive flags), then kf_flags_check. Returns
 * 0 to go on; 1 when --help or --help-markdown printed to out (exit 0); 2 after printing why to
 * err (exit 2). */
int kf_flags_parse(kf_flags_t *flags, int argc, char **argv, FILE *out, FILE *err);
/* The same without kf_flags_check: for cli/config.c, which checks once every source is in. */
int kf_flags_parse_args(kf_flags_t *flags, int argc, char **argv, FILE *out, FILE *err);
/* What the settings say together (a rate limit that is on needs a burst of at least 1), and
 * --listen split into host and port. 0, or 2 after printing why to err. */
int kf_flags_check(kf_flags_t *flags, FILE *err);
/* The setting called name (a flag's name without its dashes: "max-push-per-agent"), or -1. */
int kf_flags_lookup(const char *name, size_t len);
/* A setting's name ("listen") and kind. */
const char *kf_flags_name(kf_flag_id_t id);
kf_flag_kind_t kf_flags_kind(kf_flag_id_t id);
/* A setting's environment variable: KEFU_ and its name in capitals, '-' as '_' (KEFU_LISTEN). */
void kf_flags_env_name(kf_flag_id_t id, char *out, size_t size);
/* Sets one setting from text (value must outlive flags) and marks it given. A switch takes true,
 * false, yes, no, on, off, 1 or 0; a list takes one item a call. label names where the value came
 * from in the message ("--listen", "KEFU_LISTEN", "/etc/kefu.conf:3: listen"). Returns 0, or 2
 * after printing to err why the value is refused and what the setting takes. */
int kf_flags_set(kf_flags_t *flags, kf_flag_id_t id, const char *value, const char *label,
                 FILE *err);
/* `kefu --help`: usage, then every flag with its default. */
void kf_flags_help(FILE *out);
/* docs/CONFIG.md's table: a header row, then one row per setting with its variable and default. */
void kf_flags_markdown(FILE *out);

#endif

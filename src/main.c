/* main.c: the kefu command: flags, start-up, the first admin account, `kefu user add`, signals
 * and graceful shutdown. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "auth/auth.h"
#include "base/err.h"
#include "base/log.h"
#include "chat/app.h"
#include "http/server.h"
#include "store/store.h"
#include "store/sync.h"

typedef struct options {
    char host[256];
    int port;
    const char *data_dir;
    const char *synchronous;
    const char *public_url;
    bool secure_cookies;
    const char *allowed_origins[16]; /* --allow-origin, repeatable */
    size_t allowed_origin_count;
    /* Abuse limits (docs/SECURITY.md), defaults from kf_server_config_default and
     * kf_app_config_default; 0 turns one off. */
    size_t max_connections_per_address;
    uint64_t header_timeout_ms;
    size_t max_push_per_visitor, max_push_per_agent;
    double visitor_requests_per_minute, visitor_request_burst;
    double visitor_messages_per_minute, visitor_message_burst;
    double visitor_sessions_per_minute, visitor_session_burst;
} options_t;

typedef struct runtime {
    uv_loop_t *loop;
    kf_server_t *server;
    kf_app_t *app;
    uv_signal_t sigterm, sigint;
    uv_timer_t deadline;
    bool stopping;
} runtime_t;

/* getopt values of the flags that have no letter. */
enum {
    OPT_PER_ADDRESS = 256,
    OPT_HEADER_TIMEOUT,
    OPT_PUSH_VISITOR,
    OPT_PUSH_AGENT,
    OPT_REQUEST_RATE,
    OPT_REQUEST_BURST,
    OPT_MESSAGE_RATE,
    OPT_MESSAGE_BURST,
    OPT_SESSION_RATE,
    OPT_SESSION_BURST,
};

static void usage(FILE *out)
{
    fputs(
        "usage: kefu [options]                      serve the chat\n"
        "       kefu user add EMAIL --name NAME [--role admin|agent] [--data DIR]\n"
        "                                           create an agent (password on standard input)\n"
        "\n"
        "options:\n"
        "  --listen HOST:PORT    address to serve on (default 127.0.0.1:8080; port 0 picks one)\n"
        "  --data DIR            where the database lives (default ./data; created if missing)\n"
        "  --synchronous MODE    SQLite durability: FULL (default: every acknowledged message\n"
        "                        survives a crash or power loss), NORMAL (survives a process "
        "crash)\n"
        "  --public-url URL      the address people use, for the start-up message\n"
        "  --secure-cookies      mark cookies Secure (when kefu is behind TLS)\n"
        "  --allow-origin URL    another origin (scheme://host[:port]) whose pages may open a\n"
        "                        WebSocket here; repeatable (default: same origin only)\n"
        "  --log-level LEVEL     debug, info (default), warn, error or off\n"
        "\n"
        "abuse limits (0 turns a count or rate off; load benchmarks raise them):\n"
        "  --max-connections-per-address N\n"
        "                        connections open at once from one client address (an IPv6\n"
        "                        /64); further ones are closed at accept (default 256)\n"
        "  --header-timeout SECONDS\n"
        "                        a request head and body must arrive within this, and a new\n"
        "                        connection must start its first request (default 10; 408)\n"
        "  --max-push-per-visitor N, --max-push-per-agent N\n"
        "                        long polls, streams and WebSockets one visitor or agent may\n"
        "                        hold open (default 8 and 32; 429 past it)\n"
        "  --visitor-requests-per-minute N, --visitor-request-burst N\n"
        "                        API and push requests per visitor: a bucket of BURST refilled\n"
        "                        at N a minute (default 120 and 60; 429 with Retry-After)\n"
        "  --visitor-messages-per-minute N, --visitor-message-burst N\n"
        "                        messages per visitor, over HTTP and WebSocket alike\n"
        "                        (default 30 and 20)\n"
        "  --visitor-sessions-per-minute N, --visitor-session-burst N\n"
        "                        new visitor sessions per client address (default 60 and 60)\n"
        "  -h, --help            this text\n",
        out);
}

static int parse_listen(const char *value, options_t *opts)
{
    const char *colon = strrchr(value, ':');
    if (colon == NULL || colon == value || (size_t)(colon - value) >= sizeof opts->host)
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
    memcpy(opts->host, host, host_len);
    opts->host[host_len] = '\0';
    opts->port = (int)port;
    return 0;
}

/* Parses a count flag: a whole number from 0 to max. */
static bool parse_count(const char *flag, const char *value, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 || n > max) {
        fprintf(stderr, "kefu: --%s takes a whole number from 0 to %llu, not %s\n", flag,
                (unsigned long long)max, value);
        return false;
    }
    *out = n;
    return true;
}

static int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "kefu: cannot create %s: %s\n", dir, strerror(errno));
        return KF_EIO;
    }
    return 0;
}

static int open_store(const options_t *opts, kf_store_t **store)
{
    /* The database holds password and token hashes: only this user may read it. */
    umask(077);
    if (ensure_dir(opts->data_dir) != 0)
        return KF_EIO;
    char path[4096];
    snprintf(path, sizeof path, "%s/kefu.db", opts->data_dir);
    int rc = kf_store_open_sqlite(path, opts->synchronous, store);
    if (rc != 0)
        fprintf(stderr, "kefu: cannot open the database %s: %s\n", path, kf_strerror(rc));
    return rc;
}

/* Reads one line (the password) from standard input, without the line end. */
static int read_password(char *out, size_t size)
{
    if (fgets(out, (int)size, stdin) == NULL)
        return KF_EINVAL;
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    return len == 0 ? KF_EINVAL : 0;
}

static int user_add(int argc, char **argv, options_t *opts)
{
    const char *name = NULL;
    const char *role = "agent";
    const char *email = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            role = argv[++i];
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            opts->data_dir = argv[++i];
        } else if (strcmp(argv[i], "--synchronous") == 0 && i + 1 < argc) {
            opts->synchronous = argv[++i];
        } else if (argv[i][0] != '-' && email == NULL) {
            email = argv[i];
        } else {
            fprintf(stderr, "kefu user add: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (email == NULL || name == NULL) {
        fputs("usage: kefu user add EMAIL --name NAME [--role admin|agent] [--data DIR]\n", stderr);
        return 2;
    }
    char password[1024];
    if (read_password(password, sizeof password) != 0) {
        fputs("kefu user add: give the password on standard input\n", stderr);
        return 2;
    }
    kf_store_t *store;
    if (open_store(opts, &store) != 0)
        return 1;
    int rc = kf_app_create_agent(store, email, name, role, password);
    kf_store_close(store);
    if (rc == KF_EEXISTS) {
        fprintf(stderr, "kefu user add: an agent with e-mail %s already exists\n", email);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr,
                "kefu user add: %s (e-mail must look like name@host, role admin or agent)\n",
                kf_strerror(rc));
        return 1;
    }
    fprintf(stderr, "kefu: created %s %s\n", role, email);
    return 0;
}

/* On a first start there is no account to log in with: make an admin with a random password. */
static int ensure_admin(kf_store_t *store)
{
    int64_t count = 0;
    int rc = kf_store_sync_agent_count(store, &count);
    if (rc != 0 || count > 0)
        return rc;
    char password[KF_TOKEN_SIZE];
    rc = kf_auth_random_token(password);
    if (rc != 0)
        return rc;
    password[20] = '\0';
    rc = kf_app_create_agent(store, "admin@localhost", "Admin", "admin", password);
    if (rc != 0)
        return rc;
    fprintf(stderr,
            "kefu: created the first agent account (add more with `kefu user add`):\n"
            "kefu:   e-mail:   admin@localhost\n"
            "kefu:   password: %s\n",
            password);
    return 0;
}

static void handle_closed_noop(uv_handle_t *handle)
{
    (void)handle;
}

static void server_stopped_cb(void *data)
{
    runtime_t *rt = data;
    rt->server = NULL;
    uv_close((uv_handle_t *)&rt->sigterm, handle_closed_noop);
    uv_close((uv_handle_t *)&rt->sigint, handle_closed_noop);
    uv_timer_stop(&rt->deadline);
    uv_close((uv_handle_t *)&rt->deadline, handle_closed_noop);
    kf_app_free(rt->app);
    rt->app = NULL;
}

static void deadline_cb(uv_timer_t *timer)
{
    (void)timer;
    kf_error("shutdown took too long; exiting");
    exit(1);
}

static void signal_cb(uv_signal_t *handle, int signum)
{
    runtime_t *rt = handle->data;
    if (rt->stopping)
        return;
    rt->stopping = true;
    kf_info("received %s; shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    /* Long polls are answered and streams told to reconnect, so clients come back with cursors. */
    kf_app_drain(rt->app);
    uv_timer_start(&rt->deadline, deadline_cb, 10000, 0);
    kf_server_stop(rt->server, server_stopped_cb, rt);
}

static int serve(const options_t *opts)
{
    kf_store_t *store;
    if (open_store(opts, &store) != 0)
        return 1;
    int rc = ensure_admin(store);
    if (rc != 0) {
        fprintf(stderr, "kefu: cannot create the first account: %s\n", kf_strerror(rc));
        kf_store_close(store);
        return 1;
    }
    runtime_t rt = {0};
    rt.loop = uv_default_loop();
    kf_app_config_t app_config;
    kf_app_config_default(&app_config);
    app_config.secure_cookies = opts->secure_cookies;
    app_config.allowed_origins = opts->allowed_origins;
    app_config.allowed_origin_count = opts->allowed_origin_count;
    app_config.max_push_per_visitor = opts->max_push_per_visitor;
    app_config.max_push_per_agent = opts->max_push_per_agent;
    app_config.visitor_requests_per_minute = opts->visitor_requests_per_minute;
    app_config.visitor_requests_burst = opts->visitor_request_burst;
    app_config.visitor_messages_per_minute = opts->visitor_messages_per_minute;
    app_config.visitor_messages_burst = opts->visitor_message_burst;
    app_config.visitor_sessions_per_minute = opts->visitor_sessions_per_minute;
    app_config.visitor_sessions_burst = opts->visitor_session_burst;
    kf_push_config_t push_config;
    kf_push_config_default(&push_config);
    rt.app = kf_app_new(rt.loop, store, &app_config, &push_config, &rc);
    if (rt.app == NULL) {
        fprintf(stderr, "kefu: cannot start: %s\n", kf_strerror(rc));
        kf_store_close(store);
        return 1;
    }
    kf_server_config_t config;
    kf_server_config_default(&config);
    config.host = opts->host;
    config.port = opts->port;
    config.max_connections_per_address = opts->max_connections_per_address;
    config.header_timeout_ms = opts->header_timeout_ms;
    rc = kf_server_start(rt.loop, &config, kf_app_handle, rt.app, &rt.server);
    if (rc != 0) {
        fprintf(stderr, "kefu: cannot listen on %s:%d: %s\n", opts->host, opts->port,
                uv_strerror(rc));
        kf_app_free(rt.app);
        uv_run(rt.loop, UV_RUN_DEFAULT);
        kf_store_close(store);
        return 1;
    }
    uv_signal_init(rt.loop, &rt.sigterm);
    uv_signal_init(rt.loop, &rt.sigint);
    rt.sigterm.data = rt.sigint.data = &rt;
    uv_signal_start(&rt.sigterm, signal_cb, SIGTERM);
    uv_signal_start(&rt.sigint, signal_cb, SIGINT);
    uv_timer_init(rt.loop, &rt.deadline);
    signal(SIGPIPE, SIG_IGN);

    char base[512];
    bool v6 = strchr(opts->host, ':') != NULL;
    snprintf(base, sizeof base, "http://%s%s%s:%d", v6 ? "[" : "", opts->host, v6 ? "]" : "",
             kf_server_port(rt.server));
    const char *public_url = opts->public_url != NULL ? opts->public_url : base;
    kf_info("listening on %s", base);
    fprintf(stderr, "kefu: agent console: %s/agent\nkefu: visitor chat:  %s/chat\n", public_url,
            public_url);

    uv_run(rt.loop, UV_RUN_DEFAULT);
    kf_store_close(store);
    uv_loop_close(rt.loop);
    kf_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    options_t opts = {.host = "127.0.0.1", .port = 8080, .data_dir = "./data"};
    kf_server_config_t server_defaults;
    kf_server_config_default(&server_defaults);
    kf_app_config_t app_defaults;
    kf_app_config_default(&app_defaults);
    opts.max_connections_per_address = server_defaults.max_connections_per_address;
    opts.header_timeout_ms = server_defaults.header_timeout_ms;
    opts.max_push_per_visitor = app_defaults.max_push_per_visitor;
    opts.max_push_per_agent = app_defaults.max_push_per_agent;
    opts.visitor_requests_per_minute = app_defaults.visitor_requests_per_minute;
    opts.visitor_request_burst = app_defaults.visitor_requests_burst;
    opts.visitor_messages_per_minute = app_defaults.visitor_messages_per_minute;
    opts.visitor_message_burst = app_defaults.visitor_messages_burst;
    opts.visitor_sessions_per_minute = app_defaults.visitor_sessions_per_minute;
    opts.visitor_session_burst = app_defaults.visitor_sessions_burst;
    if (argc >= 3 && strcmp(argv[1], "user") == 0 && strcmp(argv[2], "add") == 0)
        return user_add(argc - 3, argv + 3, &opts);
    if (argc >= 2 && strcmp(argv[1], "user") == 0) {
        fputs("usage: kefu user add EMAIL --name NAME [--role admin|agent] [--data DIR]\n", stderr);
        return 2;
    }
    static const struct option long_options[] = {
        {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},
        {"synchronous", required_argument, NULL, 's'},
        {"public-url", required_argument, NULL, 'u'},
        {"secure-cookies", no_argument, NULL, 'S'},
        {"log-level", required_argument, NULL, 'L'},
        {"allow-origin", required_argument, NULL, 'o'},
        {"max-connections-per-address", required_argument, NULL, OPT_PER_ADDRESS},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
        {"max-push-per-visitor", required_argument, NULL, OPT_PUSH_VISITOR},
        {"max-push-per-agent", required_argument, NULL, OPT_PUSH_AGENT},
        {"visitor-requests-per-minute", required_argument, NULL, OPT_REQUEST_RATE},
        {"visitor-request-burst", required_argument, NULL, OPT_REQUEST_BURST},
        {"visitor-messages-per-minute", required_argument, NULL, OPT_MESSAGE_RATE},
        {"visitor-message-burst", required_argument, NULL, OPT_MESSAGE_BURST},
        {"visitor-sessions-per-minute", required_argument, NULL, OPT_SESSION_RATE},
        {"visitor-session-burst", required_argument, NULL, OPT_SESSION_BURST},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, option_index = 0;
    while ((c = getopt_long(argc, argv, "h", long_options, &option_index)) != -1) {
        kf_log_level_t level;
        uint64_t n = 0;
        /* The limits' flags all take a count. */
        if (c >= OPT_PER_ADDRESS && !parse_count(long_options[option_index].name, optarg,
                                                 c == OPT_HEADER_TIMEOUT ? 3600 : 1000000000, &n))
            return 2;
        switch (c) {
        case OPT_PER_ADDRESS: opts.max_connections_per_address = (size_t)n; break;
        case OPT_HEADER_TIMEOUT:
            if (n == 0) {
                fprintf(stderr, "kefu: --header-timeout is 1 to 3600 seconds\n");
                return 2;
            }
            opts.header_timeout_ms = n * 1000;
            break;
        case OPT_PUSH_VISITOR: opts.max_push_per_visitor = (size_t)n; break;
        case OPT_PUSH_AGENT: opts.max_push_per_agent = (size_t)n; break;
        case OPT_REQUEST_RATE: opts.visitor_requests_per_minute = (double)n; break;
        case OPT_REQUEST_BURST: opts.visitor_request_burst = (double)n; break;
        case OPT_MESSAGE_RATE: opts.visitor_messages_per_minute = (double)n; break;
        case OPT_MESSAGE_BURST: opts.visitor_message_burst = (double)n; break;
        case OPT_SESSION_RATE: opts.visitor_sessions_per_minute = (double)n; break;
        case OPT_SESSION_BURST: opts.visitor_session_burst = (double)n; break;
        case 'l':
            if (parse_listen(optarg, &opts) != 0) {
                fprintf(stderr, "kefu: --listen takes HOST:PORT, not %s\n", optarg);
                return 2;
            }
            break;
        case 'd': opts.data_dir = optarg; break;
        case 's':
            if (strcmp(optarg, "FULL") != 0 && strcmp(optarg, "NORMAL") != 0) {
                fprintf(stderr, "kefu: --synchronous is FULL or NORMAL\n");
                return 2;
            }
            opts.synchronous = optarg;
            break;
        case 'u': opts.public_url = optarg; break;
        case 'S': opts.secure_cookies = true; break;
        case 'o':
            if (opts.allowed_origin_count ==
                sizeof opts.allowed_origins / sizeof opts.allowed_origins[0]) {
                fprintf(stderr, "kefu: too many --allow-origin flags\n");
                return 2;
            }
            opts.allowed_origins[opts.allowed_origin_count++] = optarg;
            break;
        case 'L':
            if (kf_log_parse_level(optarg, &level) != 0) {
                fprintf(stderr, "kefu: unknown log level %s\n", optarg);
                return 2;
            }
            kf_log_set_level(level);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if ((opts.visitor_requests_per_minute > 0 && opts.visitor_request_burst < 1) ||
        (opts.visitor_messages_per_minute > 0 && opts.visitor_message_burst < 1) ||
        (opts.visitor_sessions_per_minute > 0 && opts.visitor_session_burst < 1)) {
        fprintf(stderr, "kefu: a burst must be at least 1 while its limit is on\n");
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "kefu: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return serve(&opts);
}

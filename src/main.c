/* main.c: the kefu command: start-up, the first admin account, `kefu user add`, `kefu backup`,
 * `kefu site-secret`, `kefu migrate`, `kefu export` and `kefu import`, `kefu routes`, signals and
 * graceful shutdown (the flags are cli/flags.h's).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "auth/auth.h"
#include "bus/bus.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "chat/app.h"
#include "chat/limits.h"
#include "chat/quota.h"
#include "cli/config.h"
#include "cli/flags.h"
#include "http/server.h"
#include "store/backup.h"
#include "store/store.h"
#include "store/sync.h"
#include "store/transfer.h"

/* The logs are JSON lines (--log-format json): what serve() tells the person who started kefu
 * goes through the log too, so that every line on stderr parses. */
static bool json_logs;

/* One event loop of the server (kefu --loops N): its thread, its application (hub, push
 * registry, caches) and its listener on the shared port. Loop 0 is the main thread's and has the
 * signals; the others run on threads of their own. */
typedef struct loop_rt {
    struct runtime *rt;
    size_t index;
    uv_loop_t *loop;
    kf_store_t *store; /* loop 0's is the store; the others' are attached to it (one writer) */
    kf_app_t *app;
    kf_server_t *server;
    uv_async_t command; /* loop 0 asks this loop to stop being ready, or to drain */
    atomic_int asked;   /* what was asked: 1 not ready, 2 drain (it only grows) */
    bool draining;      /* this loop's server is stopping */
    pthread_t thread;   /* loops 1..N-1 */
    bool thread_started;
} loop_rt_t;

typedef struct runtime {
    loop_rt_t *loops;
    size_t loop_count;
    kf_loops_t *group;   /* the bus between the loops (NULL for one loop) */
    kf_limits_t *limits; /* the loops' shared abuse limits and push quota (NULL for one loop) */
    kf_quota_t *quota;
    kf_loop_figures_t *figures; /* each loop's, for /metrics (NULL for one loop) */
    kf_addresses_t *addresses;  /* the loops' shared per-address connection counts */
    uv_signal_t sigterm, sigint;
    uv_timer_t deadline;
    uv_timer_t drain_delay; /* --drain-delay: between SIGTERM and the drain */
    uint64_t drain_delay_ms;
    uv_async_t finished;        /* on loop 0: another loop has stopped */
    atomic_size_t stopped;      /* loops 1..N-1 whose application is freed */
    bool main_stopped;          /* loop 0's is */
    bool stopping;              /* a signal came: not ready */
    bool draining;              /* the servers are stopping */
    pthread_barrier_t all_done; /* every loop's application is freed: nobody publishes any more */
} runtime_t;

static int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "kefu: cannot create %s: %s\n", dir, strerror(errno));
        return KF_EIO;
    }
    return 0;
}

/* Opens the store setting names: PostgreSQL for a postgres:// URL (saying which server and what
 * failed when it cannot), else SQLite's kefu.db in data_dir. */
static int open_store_at(const char *store_url, const char *data_dir, const char *synchronous,
                         kf_store_t **store)
{
    if (store_url != NULL && strcmp(store_url, "sqlite") != 0) {
        char why[1024];
        int rc = kf_store_open_postgres_why(store_url, store, why, sizeof why);
        if (rc != 0)
            fprintf(stderr, "kefu: %s\n", why);
        return rc;
    }
    /* The database holds password and token hashes: only this user may read it. */
    umask(077);
    if (ensure_dir(data_dir) != 0)
        return KF_EIO;
    char path[4096];
    snprintf(path, sizeof path, "%s/kefu.db", data_dir);
    int rc = kf_store_open_sqlite(path, synchronous, store);
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

/* The subcommands' store (--store, or the setting's): SQLite's in data_dir, or PostgreSQL. */
static const char *store_url;

/* A subcommand's settings: the defaults, the config file (its argv's --config FILE, else
 * KEFU_CONFIG's) and KEFU_* variables; its own flags then override the few it takes. Returns 0 or
 * 2 (after saying why). */
static int subcommand_settings(int argc, char **argv, kf_flags_t *settings, kf_config_t *config)
{
    const char *path = NULL;
    for (int i = 0; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--config") == 0)
            path = argv[i + 1];
    }
    int rc = kf_config_load_base(settings, config, path, environ, stderr);
    if (rc == 0)
        store_url = settings->v[KF_FLAG_STORE].text;
    return rc;
}

typedef int (*subcommand_fn)(const kf_flags_t *settings, int argc, char **argv);

/* Runs a subcommand with the settings it takes from the config file and KEFU_* variables. */
static int subcommand(int argc, char **argv, subcommand_fn fn)
{
    kf_flags_t settings;
    kf_config_t config = {0};
    int rc = subcommand_settings(argc, argv, &settings, &config);
    if (rc == 0)
        rc = fn(&settings, argc, argv);
    kf_config_free(&config);
    return rc;
}

/* The arguments the store's subcommands share: [--data DIR] [--store URL] [--config FILE] and,
 * where file is not NULL, one FILE (or "-" where dash). Returns 0, or -1 at an argument it does
 * not take (the caller prints its usage). */
static int store_args(int argc, char **argv, const char **data_dir, const char **file, bool dash)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            *data_dir = argv[++i];
        } else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
            store_url = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            i++; /* subcommand_settings's */
        } else if (file != NULL && *file == NULL &&
                   (argv[i][0] != '-' || (dash && strcmp(argv[i], "-") == 0))) {
            *file = argv[i];
        } else {
            return -1;
        }
    }
    return 0;
}

static int open_store(const char *data_dir, const char *synchronous, kf_store_t **store)
{
    return open_store_at(store_url, data_dir, synchronous, store);
}

static int user_add_with(const kf_flags_t *settings, int argc, char **argv)
{
    const char *data_dir = settings->v[KF_FLAG_DATA].text;
    const char *synchronous = settings->v[KF_FLAG_SYNCHRONOUS].text;
    const char *name = NULL;
    const char *role = "agent";
    const char *email = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            role = argv[++i];
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data_dir = argv[++i];
        } else if (strcmp(argv[i], "--synchronous") == 0 && i + 1 < argc) {
            synchronous = argv[++i];
        } else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
            store_url = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            i++; /* subcommand_settings's */
        } else if (argv[i][0] != '-' && email == NULL) {
            email = argv[i];
        } else {
            fprintf(stderr, "kefu user add: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (email == NULL || name == NULL) {
        fputs("usage: kefu user add EMAIL --name NAME [--role admin|agent] [--data DIR] [--config "
              "FILE]\n",
              stderr);
        return 2;
    }
    char password[1024];
    if (read_password(password, sizeof password) != 0) {
        fputs("kefu user add: give the password on standard input\n", stderr);
        return 2;
    }
    kf_store_t *store;
    if (open_store(data_dir, synchronous, &store) != 0)
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

/* `kefu routes`: the route table, one JSON object a line: method, pattern, who may call it
 * (docs/API.md, "Access") and whether it needs the CSRF token. For operators and the security
 * tests, which read the table from here rather than from the source. */
static int routes(void)
{
    kf_access_t access;
    bool csrf;
    const kf_route_t *route;
    for (size_t i = 0; (route = kf_app_route(i, &access, &csrf)) != NULL; i++)
        printf("{\"method\":\"%s\",\"pattern\":\"%s\",\"access\":\"%s\",\"csrf\":%s}\n",
               route->method, route->pattern, kf_access_name(access), csrf ? "true" : "false");
    return fflush(stdout) == 0 ? 0 : 1;
}

/* `kefu backup FILE [--data DIR] [--config FILE]`: an online backup of the running server's
 * database, then of its attachments' files into FILE.attachments/ (after the database: every
 * file it names is in place by then). */
static int backup_with(const kf_flags_t *settings, int argc, char **argv)
{
    const char *data_dir = settings->v[KF_FLAG_DATA].text;
    const char *dest = NULL;
    if (store_args(argc, argv, &data_dir, &dest, false) != 0)
        dest = NULL; /* the usage below */
    if (dest == NULL) {
        fputs("usage: kefu backup FILE [--data DIR] [--config FILE]\n", stderr);
        return 2;
    }
    if (store_url != NULL && strcmp(store_url, "sqlite") != 0) {
        fputs("kefu backup: the store is PostgreSQL: back it up with pg_dump (attachments are in "
              "its rows)\n",
              stderr);
        return 2;
    }
    char path[4096], blobs[4096], blobs_dest[4096];
    snprintf(path, sizeof path, "%s/kefu.db", data_dir);
    snprintf(blobs, sizeof blobs, "%s/attachments", data_dir);
    snprintf(blobs_dest, sizeof blobs_dest, "%s.attachments", dest);
    struct stat st;
    if (stat(blobs_dest, &st) == 0) { /* checked first: a backup is both or neither */
        fprintf(stderr, "kefu backup: %s exists; choose a new file\n", blobs_dest);
        return 1;
    }
    int pages = 0;
    int rc = kf_store_sqlite_backup(path, dest, &pages);
    if (rc == KF_EEXISTS) {
        fprintf(stderr, "kefu backup: %s exists; choose a new file\n", dest);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "kefu backup: cannot back up %s to %s: %s\n", path, dest, kf_strerror(rc));
        return 1;
    }
    fprintf(stderr, "kefu: backed up %s (%d pages) to %s\n", path, pages, dest);
    size_t files = 0;
    rc = kf_store_blobs_backup(blobs, blobs_dest, &files);
    if (rc == KF_EEXISTS) {
        fprintf(stderr, "kefu backup: %s exists; the attachments are not backed up\n", blobs_dest);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "kefu backup: cannot back up the attachments in %s to %s: %s\n", blobs,
                blobs_dest, kf_strerror(rc));
        return 1;
    }
    if (files > 0)
        fprintf(stderr, "kefu: backed up %zu attachment files to %s\n", files, blobs_dest);
    return 0;
}

/* `kefu site-secret [--data DIR] [--config FILE]`: prints the site secret verified identities
 * are signed with (docs/IDENTITY.md), making it when the store has none yet. */
static int site_secret_with(const kf_flags_t *settings, int argc, char **argv)
{
    const char *data_dir = settings->v[KF_FLAG_DATA].text;
    if (store_args(argc, argv, &data_dir, NULL, false) != 0) {
        fputs("usage: kefu site-secret [--data DIR] [--store URL] [--config FILE]\n", stderr);
        return 2;
    }
    kf_store_t *store;
    if (open_store(data_dir, settings->v[KF_FLAG_SYNCHRONOUS].text, &store) != 0)
        return 1;
    char secret[KF_SITE_SECRET_SIZE];
    int rc = kf_app_site_secret(store, secret);
    kf_store_close(store);
    if (rc != 0) {
        fprintf(stderr, "kefu site-secret: %s\n", kf_strerror(rc));
        return 1;
    }
    printf("%s\n", secret);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* `kefu migrate [--store URL] [--data DIR] [--config FILE]`: brings the database's schema up to
 * this binary's and stops: what every start does, run once before a rolling upgrade starts new
 * nodes (a node refuses a database newer than itself). */
static int migrate_with(const kf_flags_t *settings, int argc, char **argv)
{
    const char *data_dir = settings->v[KF_FLAG_DATA].text;
    if (store_args(argc, argv, &data_dir, NULL, false) != 0) {
        fputs("usage: kefu migrate [--store URL] [--data DIR] [--config FILE]\n", stderr);
        return 2;
    }
    kf_store_t *store;
    if (open_store(data_dir, settings->v[KF_FLAG_SYNCHRONOUS].text, &store) != 0)
        return 1;
    kf_store_close(store);
    fputs("kefu: the database's schema is current\n", stderr);
    return 0;
}

/* The arguments export and import share: [--data DIR] [--store URL] [--config FILE] [FILE|-].
 * Returns 0, or 2 after printing usage. */
static int transfer_args(const char *command, int argc, char **argv, const char **data_dir,
                         const char **file)
{
    if (store_args(argc, argv, data_dir, file, true) == 0)
        return 0;
    fprintf(stderr, "usage: kefu %s [--data DIR | --store URL] [--config FILE] [FILE|-]\n",
            command);
    return 2;
}

/* Opens the store (migrating its schema, as every start does) and closes it again, then opens
 * the transfer's own connection to it. NULL after saying why. */
static kf_transfer_backend_t *transfer_open(const char *command, const char *data_dir,
                                            const char *synchronous, bool must_exist)
{
    bool postgres = store_url != NULL && strcmp(store_url, "sqlite") != 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/kefu.db", data_dir);
    struct stat st;
    if (!postgres && must_exist && stat(path, &st) != 0) {
        fprintf(stderr, "kefu %s: there is no store at %s\n", command, path);
        return NULL;
    }
    kf_store_t *store;
    if (open_store(data_dir, synchronous, &store) != 0)
        return NULL;
    kf_store_close(store);
    char why[1024];
    kf_transfer_backend_t *backend = postgres ? kf_transfer_pg_open(store_url, why, sizeof why)
                                              : kf_transfer_sqlite_open(path, why, sizeof why);
    if (backend == NULL)
        fprintf(stderr, "kefu %s: %s\n", command, why);
    return backend;
}

/* `kefu export [--data DIR | --store URL] [FILE|-]`: every row of the store, in one snapshot,
 * as JSON lines (docs/DEPLOY.md, "Moving between backends"); the server may go on serving. A new
 * FILE is made readable by its owner only (it holds password hashes and the site secret), and
 * removed again when the export fails. */
static int export_with(const kf_flags_t *settings, int argc, char **argv)
{
    const char *data_dir = settings->v[KF_FLAG_DATA].text;
    const char *file = NULL;
    int rc = transfer_args("export", argc, argv, &data_dir, &file);
    if (rc != 0)
        return rc;
    bool to_stdout = file == NULL || strcmp(file, "-") == 0;
    FILE *out = stdout;
    if (!to_stdout) {
        int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
        out = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (out == NULL) {
            fprintf(stderr, "kefu export: cannot create %s: %s\n", file, strerror(errno));
            if (fd >= 0)
                close(fd);
            return 1;
        }
    }
    kf_transfer_backend_t *backend =
        transfer_open("export", data_dir, settings->v[KF_FLAG_SYNCHRONOUS].text, true);
    char why[1024] = "";
    size_t rows = 0;
    rc = backend != NULL ? kf_transfer_export(backend, out, &rows, why, sizeof why) : KF_ESTORE;
    if (backend != NULL)
        backend->close(backend);
    if (rc == 0 && !to_stdout && (fsync(fileno(out)) != 0 || ferror(out))) {
        snprintf(why, sizeof why, "cannot write %s: %s", file, strerror(errno));
        rc = KF_EIO;
    }
    if (!to_stdout && fclose(out) != 0 && rc == 0) {
        snprintf(why, sizeof why, "cannot write %s: %s", file, strerror(errno));
        rc = KF_EIO;
    }
    if (rc != 0) {
        if (why[0] != '\0')
            fprintf(stderr, "kefu export: %s\n", why);
        if (!to_stdout)
            unlink(file);
        return 1;
    }
    fprintf(stderr, "kefu: exported %zu rows%s%s\n", rows, to_stdout ? "" : " to ",
            to_stdout ? "" : file);
    return 0;
}

/* `kefu import [--data DIR | --store URL] [FILE|-]`: loads an export into a new, empty store
 * (either backend), ids and all. Run it with kefu stopped. */
static int import_with(const kf_flags_t *settings, int argc, char **argv)
{
    const char *data_dir = settings->v[KF_FLAG_DATA].text;
    const char *file = NULL;
    int rc = transfer_args("import", argc, argv, &data_dir, &file);
    if (rc != 0)
        return rc;
    bool from_stdin = file == NULL || strcmp(file, "-") == 0;
    FILE *in = from_stdin ? stdin : fopen(file, "r");
    if (in == NULL) {
        fprintf(stderr, "kefu import: cannot open %s: %s\n", file, strerror(errno));
        return 1;
    }
    char why[1024] = "";
    /* The header first: a file of another version touches no store. */
    rc = kf_transfer_read_header(in, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "kefu import: %s\n", why);
    } else {
        kf_transfer_backend_t *backend =
            transfer_open("import", data_dir, settings->v[KF_FLAG_SYNCHRONOUS].text, false);
        size_t rows = 0;
        rc = backend != NULL ? kf_transfer_import(backend, in, &rows, why, sizeof why) : KF_ESTORE;
        if (backend != NULL)
            backend->close(backend);
        if (rc != 0 && why[0] != '\0')
            fprintf(stderr, "kefu import: %s\n", why);
        else if (rc == 0)
            fprintf(stderr, "kefu: imported %zu rows\n", rows);
    }
    if (!from_stdin)
        fclose(in);
    return rc == 0 ? 0 : 1;
}

/* A store an import did not finish is not served: it would look whole and miss rows. */
static int refuse_unfinished_import(kf_store_t *store)
{
    char marker[16];
    int rc = kf_store_sync_setting_get(store, KF_TRANSFER_INCOMPLETE_KEY, marker, sizeof marker);
    if (rc == KF_ENOTFOUND)
        return 0;
    if (rc == 0)
        fputs("kefu: the store holds an import that did not finish (kefu import); empty it and "
              "run kefu import again\n",
              stderr);
    else
        fprintf(stderr, "kefu: cannot read the store's settings: %s\n", kf_strerror(rc));
    return 1;
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
    if (json_logs)
        kf_info("created the first agent account (add more with `kefu user add`): e-mail "
                "admin@localhost, password %s",
                password);
    else
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

/* On loop 0, once its own application and every other loop's are freed: its last handles go, and
 * uv_run returns. */
static void maybe_finish(runtime_t *rt)
{
    if (!rt->main_stopped || atomic_load(&rt->stopped) + 1 < rt->loop_count)
        return;
    uv_close((uv_handle_t *)&rt->sigterm, handle_closed_noop);
    uv_close((uv_handle_t *)&rt->sigint, handle_closed_noop);
    uv_timer_stop(&rt->deadline);
    uv_close((uv_handle_t *)&rt->deadline, handle_closed_noop);
    uv_close((uv_handle_t *)&rt->drain_delay, handle_closed_noop);
    uv_close((uv_handle_t *)&rt->finished, handle_closed_noop);
}

static void finished_cb(uv_async_t *handle)
{
    maybe_finish(handle->data);
}

static void server_stopped_cb(void *data)
{
    loop_rt_t *lr = data;
    runtime_t *rt = lr->rt;
    lr->server = NULL;
    uv_close((uv_handle_t *)&lr->command, handle_closed_noop);
    kf_app_free(lr->app);
    lr->app = NULL;
    if (lr->index == 0) {
        rt->main_stopped = true;
        maybe_finish(rt);
    } else {
        atomic_fetch_add(&rt->stopped, 1);
        uv_async_send(&rt->finished);
    }
}

/* On each loop: what loop 0 asked of it. */
static void command_cb(uv_async_t *handle)
{
    loop_rt_t *lr = handle->data;
    int asked = atomic_load(&lr->asked);
    if (asked >= 1 && lr->app != NULL)
        kf_app_set_shutting_down(lr->app);
    if (asked >= 2 && !lr->draining && lr->server != NULL) {
        lr->draining = true;
        /* Long polls are answered and streams told to reconnect, so clients come back with
         * cursors. */
        kf_app_drain(lr->app);
        kf_server_stop(lr->server, server_stopped_cb, lr);
    }
}

static void ask_every_loop(runtime_t *rt, int what)
{
    for (size_t i = 0; i < rt->loop_count; i++) {
        atomic_store(&rt->loops[i].asked, what);
        uv_async_send(&rt->loops[i].command);
    }
}

static void deadline_cb(uv_timer_t *timer)
{
    (void)timer;
    kf_error("shutdown took too long; exiting");
    exit(1);
}

static void drain(runtime_t *rt)
{
    if (rt->draining)
        return;
    rt->draining = true;
    uv_timer_stop(&rt->drain_delay);
    ask_every_loop(rt, 2);
    uv_timer_start(&rt->deadline, deadline_cb, 10000, 0);
}

static void drain_delay_cb(uv_timer_t *timer)
{
    drain(timer->data);
}

static void signal_cb(uv_signal_t *handle, int signum)
{
    runtime_t *rt = handle->data;
    const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
    if (rt->stopping) {
        if (!rt->draining)
            kf_info("received %s again; shutting down now", name);
        drain(rt);
        return;
    }
    rt->stopping = true;
    ask_every_loop(rt, 1);
    if (rt->drain_delay_ms == 0) {
        kf_info("received %s; shutting down", name);
        drain(rt);
        return;
    }
    /* The load balancer sees /readyz fail and sends new clients elsewhere meanwhile. */
    kf_info("received %s; not ready, shutting down in %llu s", name,
            (unsigned long long)(rt->drain_delay_ms / 1000));
    uv_timer_start(&rt->drain_delay, drain_delay_cb, rt->drain_delay_ms, 0);
}

/* The loops --loops asks for: 0 is one per core this process may use, but one where several
 * would serve worse than one: a store with no `attach` (PostgreSQL) serves one loop only, and
 * with a Redis bus each loop would be a node of its own, keeping its own share of the abuse
 * limits in step with the others only through Redis (run one node per core instead). Asked for
 * by number, several loops with Redis are allowed (tests/e2e/shared.test.js). 0 is the
 * default (docs/ARCHITECTURE.md, "Every core"). */
static size_t loop_count(const kf_flags_t *flags, kf_store_t *store)
{
    size_t count = (size_t)flags->v[KF_FLAG_LOOPS].count;
    bool asked = count != 0;
    if (count == 0)
        count = uv_available_parallelism();
    if (!asked && (store->ops->attach == NULL || flags->v[KF_FLAG_BUS].text != NULL))
        count = 1;
    if (count > 1 && store->ops->attach == NULL) {
        kf_warn("this store serves one loop: --loops %zu is taken as 1", count);
        count = 1;
    }
    return count < 1 ? 1 : count;
}

/* After uv_run returns on a loop: once every loop's application is freed (nobody publishes to
 * this loop any more), its wake-up handle closes and the loop with it. */
static void close_loop(runtime_t *rt, loop_rt_t *lr)
{
    if (rt->group != NULL)
        kf_loops_close(rt->group, lr->index);
    uv_run(lr->loop, UV_RUN_DEFAULT);
    if (lr->index > 0) {
        kf_store_close(lr->store);
        lr->store = NULL;
    }
    uv_loop_close(lr->loop);
}

static void *loop_main(void *data)
{
    loop_rt_t *lr = data;
    char name[16];
    snprintf(name, sizeof name, "kefu-loop-%zu", lr->index);
    pthread_setname_np(pthread_self(), name);
    uv_run(lr->loop, UV_RUN_DEFAULT);
    pthread_barrier_wait(&lr->rt->all_done);
    close_loop(lr->rt, lr);
    return NULL;
}

/* Frees what start_loops made of loops 0..count-1 before any thread started (start-up failed). */
static void free_loops(runtime_t *rt, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        loop_rt_t *lr = &rt->loops[i];
        if (lr->server != NULL) {
            kf_server_stop(lr->server, NULL, NULL);
            lr->server = NULL;
        }
        kf_app_free(lr->app);
        lr->app = NULL;
        uv_close((uv_handle_t *)&lr->command, handle_closed_noop);
        close_loop(rt, lr);
        if (lr->index > 0)
            free(lr->loop);
    }
}

static int serve(const kf_flags_t *flags)
{
    const kf_flag_value_t *v = flags->v;
    kf_store_t *store;
    if (open_store_at(v[KF_FLAG_STORE].text, v[KF_FLAG_DATA].text, v[KF_FLAG_SYNCHRONOUS].text,
                      &store) != 0)
        return 1;
    if (refuse_unfinished_import(store) != 0) {
        kf_store_close(store);
        return 1;
    }
    int rc = ensure_admin(store);
    if (rc != 0) {
        fprintf(stderr, "kefu: cannot create the first account: %s\n", kf_strerror(rc));
        kf_store_close(store);
        return 1;
    }
    /* Where the buses start: every id up to it is stored before any loop runs. */
    int64_t newest = 0;
    rc = kf_store_sync_message_newest(store, &newest);
    if (rc != 0) {
        fprintf(stderr, "kefu: cannot read the newest message's id: %s\n", kf_strerror(rc));
        kf_store_close(store);
        return 1;
    }
    runtime_t rt = {0};
    rt.loop_count = loop_count(flags, store);
    rt.loops = kf_xcalloc(rt.loop_count, sizeof *rt.loops);
    if (rt.loop_count > 1)
        rt.group = kf_loops_new(rt.loop_count, (uint64_t)newest);
    kf_app_config_t app_config;
    kf_app_config_default(&app_config);
    app_config.secure_cookies = v[KF_FLAG_SECURE_COOKIES].on;
    app_config.require_verified = v[KF_FLAG_REQUIRE_VERIFIED].on;
    app_config.webhooks_allow_private = v[KF_FLAG_WEBHOOKS_ALLOW_PRIVATE].on;
    app_config.allowed_origins = v[KF_FLAG_ALLOW_ORIGIN].items;
    app_config.allowed_origin_count = v[KF_FLAG_ALLOW_ORIGIN].item_count;
    app_config.max_push_per_visitor = (size_t)v[KF_FLAG_MAX_PUSH_PER_VISITOR].count;
    app_config.max_push_per_agent = (size_t)v[KF_FLAG_MAX_PUSH_PER_AGENT].count;
    app_config.visitor_requests_per_minute = (double)v[KF_FLAG_VISITOR_REQUESTS_PER_MINUTE].count;
    app_config.visitor_requests_burst = (double)v[KF_FLAG_VISITOR_REQUEST_BURST].count;
    app_config.visitor_messages_per_minute = (double)v[KF_FLAG_VISITOR_MESSAGES_PER_MINUTE].count;
    app_config.visitor_messages_burst = (double)v[KF_FLAG_VISITOR_MESSAGE_BURST].count;
    app_config.visitor_sessions_per_minute = (double)v[KF_FLAG_VISITOR_SESSIONS_PER_MINUTE].count;
    app_config.visitor_sessions_burst = (double)v[KF_FLAG_VISITOR_SESSION_BURST].count;
    app_config.metrics_allow = v[KF_FLAG_METRICS_ALLOW].items;
    app_config.metrics_allow_count = v[KF_FLAG_METRICS_ALLOW].item_count;
    app_config.metrics_token = v[KF_FLAG_METRICS_TOKEN].text;
    app_config.bus_url = v[KF_FLAG_BUS].text;
    app_config.newest_message = (uint64_t)newest;
    app_config.max_upload_bytes = (size_t)v[KF_FLAG_MAX_UPLOAD_BYTES].count;
    /* With a Redis bus each loop is a node of its own on it (bus/bus.h): the loops' group is
     * for a process without one. */
    app_config.loops = app_config.bus_url == NULL ? rt.group : NULL;
    app_config.loop_count = rt.loop_count;
    if (rt.loop_count > 1)
        rt.figures = kf_xcalloc(rt.loop_count, sizeof *rt.figures);
    app_config.loop_figures = rt.figures;
    kf_push_config_t push_config;
    kf_push_config_default(&push_config);
    kf_server_config_t config;
    kf_server_config_default(&config);
    config.host = flags->host;
    config.port = flags->port;
    config.max_connections_per_address = (size_t)v[KF_FLAG_MAX_CONNECTIONS_PER_ADDRESS].count;
    config.header_timeout_ms = v[KF_FLAG_HEADER_TIMEOUT].count * 1000;
    kf_addr_prefix_t trusted[KF_FLAG_MAX_ITEMS];
    config.trusted_proxy_count = v[KF_FLAG_TRUSTED_PROXY].item_count;
    for (size_t i = 0; i < config.trusted_proxy_count; i++)
        kf_addr_prefix_parse(v[KF_FLAG_TRUSTED_PROXY].items[i], &trusted[i]); /* checked by flags */
    config.trusted_proxies = trusted;
    config.body_limit = kf_app_body_limit;
    config.reuse_port = rt.loop_count > 1;
    config.reuse_port_first = true;
    if (rt.loop_count > 1)
        rt.addresses = kf_addresses_new();
    config.shared_addresses = rt.addresses;

    /* One budget per client whatever loop serves it: the loops share the tables (which lock).
     * With a Redis bus each loop is a node of its own and the tables are shared through Redis
     * as between nodes (chat/limits.h): a table's bus is its loop's, one thread's. */
    if (rt.loop_count > 1 && app_config.bus_url == NULL) {
        rt.limits = kf_limits_new(&app_config);
        rt.quota = kf_quota_new(app_config.max_push_per_visitor, app_config.max_push_per_agent);
        app_config.shared_limits = rt.limits;
        app_config.shared_quota = rt.quota;
    }
    /* Every loop is made here, before any runs: their threads then see the group whole. */
    for (size_t i = 0; i < rt.loop_count; i++) {
        loop_rt_t *lr = &rt.loops[i];
        lr->rt = &rt;
        lr->index = i;
        if (i == 0) {
            lr->loop = uv_default_loop();
            lr->store = store;
        } else {
            lr->loop = kf_xcalloc(1, sizeof *lr->loop);
            uv_loop_init(lr->loop);
            rc = store->ops->attach(store, &lr->store);
            if (rc != 0) {
                fprintf(stderr, "kefu: cannot open the database for loop %zu: %s\n", i,
                        kf_strerror(rc));
                uv_loop_close(lr->loop);
                free(lr->loop);
                lr->loop = NULL;
                free_loops(&rt, i);
                goto out_close_store;
            }
        }
        uv_async_init(lr->loop, &lr->command, command_cb);
        lr->command.data = lr;
        uv_unref((uv_handle_t *)&lr->command);
        app_config.loop_index = i;
        lr->app = kf_app_new(lr->loop, lr->store, &app_config, &push_config, &rc);
        if (lr->app == NULL) {
            fprintf(stderr, "kefu: cannot start: %s\n", kf_strerror(rc));
            free_loops(&rt, i + 1);
            goto out_close_store;
        }
        rc = kf_server_start(lr->loop, &config, kf_app_handle, lr->app, &lr->server);
        if (rc != 0) {
            fprintf(stderr, "kefu: cannot listen on %s:%d: %s\n", flags->host, config.port,
                    kf_strerror(rc));
            lr->server = NULL;
            free_loops(&rt, i + 1);
            goto out_close_store;
        }
        if (i == 0 && rt.loop_count > 1)
            app_config.shared_presence_of = lr->app; /* made before it runs, freed after */
        /* Port 0 picked one: the other loops listen on that one, which loop 0 holds now. */
        config.port = kf_server_port(lr->server);
        config.reuse_port_first = false;
    }
    uv_loop_t *main_loop = rt.loops[0].loop;
    uv_signal_init(main_loop, &rt.sigterm);
    uv_signal_init(main_loop, &rt.sigint);
    rt.sigterm.data = rt.sigint.data = &rt;
    uv_signal_start(&rt.sigterm, signal_cb, SIGTERM);
    uv_signal_start(&rt.sigint, signal_cb, SIGINT);
    uv_timer_init(main_loop, &rt.deadline);
    uv_timer_init(main_loop, &rt.drain_delay);
    rt.drain_delay.data = &rt;
    rt.drain_delay_ms = v[KF_FLAG_DRAIN_DELAY].count * 1000;
    uv_async_init(main_loop, &rt.finished, finished_cb);
    rt.finished.data = &rt;
    pthread_barrier_init(&rt.all_done, NULL, (unsigned)rt.loop_count);
    signal(SIGPIPE, SIG_IGN);

    char base[512];
    bool v6 = strchr(flags->host, ':') != NULL;
    snprintf(base, sizeof base, "http://%s%s%s:%d", v6 ? "[" : "", flags->host, v6 ? "]" : "",
             kf_server_port(rt.loops[0].server));
    const char *public_url = v[KF_FLAG_PUBLIC_URL].text != NULL ? v[KF_FLAG_PUBLIC_URL].text : base;
    if (rt.loop_count > 1)
        kf_info("listening on %s (%zu loops)", base, rt.loop_count);
    else
        kf_info("listening on %s", base);
    if (json_logs)
        kf_info("agent console: %s/agent; visitor chat: %s/chat", public_url, public_url);
    else
        fprintf(stderr, "kefu: agent console: %s/agent\nkefu: visitor chat:  %s/chat\n", public_url,
                public_url);

    /* Signals are blocked on the loops' threads: they come to loop 0's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (size_t i = 1; i < rt.loop_count; i++) {
        if (pthread_create(&rt.loops[i].thread, NULL, loop_main, &rt.loops[i]) != 0) {
            kf_error("cannot start the thread of loop %zu", i);
            exit(1);
        }
        rt.loops[i].thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    uv_run(main_loop, UV_RUN_DEFAULT);
    pthread_barrier_wait(&rt.all_done);
    close_loop(&rt, &rt.loops[0]);
    for (size_t i = 1; i < rt.loop_count; i++) {
        pthread_join(rt.loops[i].thread, NULL);
        free(rt.loops[i].loop);
    }
    pthread_barrier_destroy(&rt.all_done);
    kf_loops_free(rt.group);
    kf_limits_free(rt.limits);
    kf_quota_free(rt.quota);
    kf_addresses_free(rt.addresses);
    free(rt.figures);
    free(rt.loops);
    kf_store_close(store);
    kf_info("stopped");
    return 0;

out_close_store:
    kf_loops_free(rt.group);
    kf_limits_free(rt.limits);
    kf_quota_free(rt.quota);
    kf_addresses_free(rt.addresses);
    free(rt.figures);
    free(rt.loops);
    kf_store_close(store);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "user") == 0 && strcmp(argv[2], "add") == 0)
        return subcommand(argc - 3, argv + 3, user_add_with);
    if (argc == 2 && strcmp(argv[1], "routes") == 0)
        return routes();
    if (argc >= 2 && strcmp(argv[1], "backup") == 0)
        return subcommand(argc - 2, argv + 2, backup_with);
    if (argc >= 2 && strcmp(argv[1], "site-secret") == 0)
        return subcommand(argc - 2, argv + 2, site_secret_with);
    if (argc >= 2 && strcmp(argv[1], "migrate") == 0)
        return subcommand(argc - 2, argv + 2, migrate_with);
    if (argc >= 2 && strcmp(argv[1], "export") == 0)
        return subcommand(argc - 2, argv + 2, export_with);
    if (argc >= 2 && strcmp(argv[1], "import") == 0)
        return subcommand(argc - 2, argv + 2, import_with);
    if (argc >= 2 && strcmp(argv[1], "user") == 0) {
        fputs("usage: kefu user add EMAIL --name NAME [--role admin|agent] [--data DIR] [--config "
              "FILE]\n",
              stderr);
        return 2;
    }
    kf_flags_t flags;
    kf_config_t config = {0};
    int rc = kf_config_load(&flags, &config, argc, argv, environ, stdout, stderr);
    if (rc != 0) {
        kf_config_free(&config);
        return rc == 1 ? 0 : 2;
    }
    kf_log_level_t level;
    if (kf_log_parse_level(flags.v[KF_FLAG_LOG_LEVEL].text, &level) == 0)
        kf_log_set_level(level);
    kf_log_format_t format = KF_LOG_PLAIN;
    if (kf_log_parse_format(flags.v[KF_FLAG_LOG_FORMAT].text, &format) == 0)
        kf_log_set_format(format);
    json_logs = format == KF_LOG_JSON;
    rc = serve(&flags);
    kf_config_free(&config);
    return rc;
}

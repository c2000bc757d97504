/* fuzz_api.c: libFuzzer target for every HTTP endpoint, through the real server and application
 * (app_harness.h): each input becomes one request (endpoint, credentials, query string, extra
 * header lines, body) on a keep-alive loopback connection, and the answer must be a well-formed
 * response, never a 5xx, valid JSON where JSON is sent, and never a 2xx (or 101) for a
 * protected endpoint unless the request carried the credential it needs.
 *
 * Input: byte 0 picks the endpoint, byte 1 the credentials and Content-Type, byte 2 the method,
 * the {id} and a few headers (the masks below); then the query string up to the first '\n' (bytes
 * a request target may not hold are percent-encoded), extra header lines up to an empty line ('\r'
 * dropped, so no line can end the head early), and the rest is the body. */
#include <jansson.h>
#include <strings.h>

#include "app_harness.h"
#include "http/parser.h"

/* What a 2xx answer proves the request carried. */
typedef enum {
    NEEDS_NOTHING,
    NEEDS_VISITOR,    /* the visitor token */
    NEEDS_AGENT,      /* the session cookie */
    NEEDS_AGENT_CSRF, /* the session cookie and the CSRF token */
    NEEDS_LISTENER,   /* any of: visitor token, session cookie, a push ticket */
    NEEDS_ADMIN,      /* an admin's session and the CSRF token: the harness's agent is none */
} needs_t;

typedef struct endpoint {
    const char *method;
    const char *path; /* "{id}" is replaced by the id that byte 2 picks */
    needs_t needs;
} endpoint_t;

/* Every route of the application's table (chat/app.h), in its order, then static files and paths
 * that match nothing; filled at the first input. */
static endpoint_t endpoints[128];
static size_t endpoint_count;

static const endpoint_t extra_endpoints[] = {
    {"GET", "/static/chat.js", NEEDS_NOTHING},
    {"GET", "/static/kefu.css", NEEDS_NOTHING},
    {"GET", "/static/", NEEDS_NOTHING},
    {"GET", "/static/../chat.html", NEEDS_NOTHING},
    {"GET", "/api/conversations/{id}/nope", NEEDS_NOTHING},
};

/* What a route needs, by the access its table declares. */
static needs_t needs_of(kf_access_t access, bool csrf)
{
    switch (access) {
    case KF_ACCESS_VISITOR: return NEEDS_VISITOR;
    case KF_ACCESS_AGENT: return csrf ? NEEDS_AGENT_CSRF : NEEDS_AGENT;
    case KF_ACCESS_ADMIN: return NEEDS_ADMIN;
    case KF_ACCESS_LISTENER: return NEEDS_LISTENER;
    case KF_ACCESS_PUBLIC: break;
    }
    return NEEDS_NOTHING;
}

static void load_endpoints(void)
{
    const kf_route_t *route;
    kf_access_t access;
    bool csrf;
    size_t extra = sizeof extra_endpoints / sizeof extra_endpoints[0];
    for (size_t i = 0; (route = kf_app_route(i, &access, &csrf)) != NULL; i++) {
        if (endpoint_count + extra >= sizeof endpoints / sizeof endpoints[0])
            abort(); /* the route table outgrew this one: make it larger */
        endpoints[endpoint_count++] =
            (endpoint_t){route->method, route->pattern, needs_of(access, csrf)};
    }
    for (size_t i = 0; i < sizeof extra_endpoints / sizeof extra_endpoints[0]; i++)
        endpoints[endpoint_count++] = extra_endpoints[i];
}

#define ENDPOINT_COUNT endpoint_count

/* Byte 1: credentials, then the Content-Type in the top two bits. */
#define CRED_VISITOR 0x01        /* Authorization: Bearer <visitor token> */
#define CRED_SESSION 0x02        /* Cookie: kefu_session=<session token> */
#define CRED_CSRF 0x04           /* X-CSRF-Token: <csrf token> */
#define CRED_VISITOR_TICKET 0x08 /* ticket=<visitor ticket> appended to the query */
#define CRED_AGENT_TICKET 0x10   /* ticket=<agent ticket> appended to the query */
#define CRED_OTHER_COOKIES 0x20  /* more cookies around the session's */
#define CRED_TYPE_SHIFT 6

/* Byte 2: the method, the {id}, and headers. */
#define REQ_METHOD_MASK 0x03  /* 0 the endpoint's, 1 HEAD, 2 GET and POST swapped, 3 OPTIONS */
#define REQ_ID_SHIFT 2        /* three bits: an entry of ids[] */
#define REQ_NO_HANDSHAKE 0x20 /* no WebSocket handshake headers on /push/ws */
#define REQ_FOREIGN_ORIGIN 0x40
#define REQ_CLOSE 0x80 /* Connection: close */

static const char *const content_types[4] = {"application/json", NULL,
                                             "application/json; charset=utf-8", "text/plain"};

/* NULL is the fixture's conversation; the rest test the router's id rules. */
static const char *const ids[8] = {
    NULL, "1", "2", "9007199254740992", "9007199254740993", "0", "007", "18446744073709551616"};

static int client = -1; /* the keep-alive connection, -1 until (re)opened */
static bool trace;      /* KF_FUZZ_TRACE set: one line per input on stderr */

typedef struct request {
    kf_buf_t bytes;           /* the whole request as sent */
    const endpoint_t *routed; /* the table entry the method and path name, NULL when none */
    bool head_only;
    bool logout;
    const uint8_t *body; /* the body sent (a view into the input) */
    size_t body_len;
} request_t;

typedef struct response {
    int status;
    size_t head_len; /* through the blank line */
    size_t content_length;
    bool has_length;
    bool chunked;
    bool close;
    bool json;
} response_t;

static void append_path(kf_buf_t *out, const char *pattern, unsigned id_choice)
{
    const char *slot = strstr(pattern, "{id}");
    if (slot == NULL) {
        kf_buf_append_str(out, pattern);
        return;
    }
    kf_buf_append(out, pattern, (size_t)(slot - pattern));
    if (ids[id_choice] == NULL)
        kf_buf_printf(out, "%lld", (long long)harness.conversation_id);
    else
        kf_buf_append_str(out, ids[id_choice]);
    kf_buf_append_str(out, slot + 4);
}

/* Appends bytes as a query string, percent-encoding what a request target may not hold. */
static void append_query(kf_buf_t *out, const uint8_t *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] <= 0x20 || bytes[i] >= 0x7f)
            kf_buf_printf(out, "%%%02X", bytes[i]);
        else
            kf_buf_append(out, &bytes[i], 1);
    }
}

/* Appends the extra header lines of the input, one per '\n', without empty lines or CRs. */
static void append_extra_headers(kf_buf_t *out, const uint8_t *bytes, size_t len)
{
    size_t start = 0;
    while (start < len) {
        const uint8_t *nl = memchr(bytes + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - bytes) : len;
        size_t written = 0;
        for (size_t i = start; i < end; i++) {
            if (bytes[i] != '\r') {
                kf_buf_append(out, &bytes[i], 1);
                written++;
            }
        }
        if (written > 0)
            kf_buf_append_str(out, "\r\n");
        start = end + 1;
    }
}

static const endpoint_t *find_endpoint(const char *method, const char *pattern)
{
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    for (size_t i = 0; i < ENDPOINT_COUNT; i++) {
        if (strcmp(endpoints[i].method, method) == 0 && strcmp(endpoints[i].path, pattern) == 0)
            return &endpoints[i];
    }
    return NULL;
}

/* Builds the request of one input (at least 3 bytes). */
static void build_request(const uint8_t *data, size_t size, request_t *req)
{
    if (endpoint_count == 0)
        load_endpoints();
    const endpoint_t *endpoint = &endpoints[data[0] % ENDPOINT_COUNT];
    unsigned cred = data[1];
    unsigned opts = data[2];
    const uint8_t *rest = data + 3;
    size_t rest_len = size - 3;

    /* query '\n' extra headers '\n' '\n' body */
    const uint8_t *nl = memchr(rest, '\n', rest_len);
    size_t query_len = nl != NULL ? (size_t)(nl - rest) : rest_len;
    const uint8_t *headers = nl != NULL ? nl + 1 : rest + rest_len;
    size_t headers_len = 0;
    const uint8_t *body = rest + rest_len;
    for (const uint8_t *p = headers; p < rest + rest_len; p++) {
        if (*p == '\n' && (p == headers || p[-1] == '\n')) {
            headers_len = (size_t)(p - headers);
            body = p + 1;
            break;
        }
        headers_len = (size_t)(p + 1 - headers);
    }
    size_t body_len = (size_t)(rest + rest_len - body);
    req->body = body;
    req->body_len = body_len;

    const char *method = endpoint->method;
    switch (opts & REQ_METHOD_MASK) {
    case 1: method = strcmp(method, "GET") == 0 ? "HEAD" : method; break;
    case 2: method = strcmp(method, "GET") == 0 ? "POST" : "GET"; break;
    case 3: method = "OPTIONS"; break;
    default: break;
    }
    req->routed = find_endpoint(method, endpoint->path);
    req->head_only = strcmp(method, "HEAD") == 0;
    req->logout = req->routed != NULL && strcmp(req->routed->path, "/api/agent/logout") == 0;

    kf_buf_t *out = &req->bytes;
    kf_buf_printf(out, "%s ", method);
    append_path(out, endpoint->path, (opts >> REQ_ID_SHIFT) & 7);
    const char *ticket = (cred & CRED_VISITOR_TICKET) ? harness.visitor_ticket
                         : (cred & CRED_AGENT_TICKET) ? harness.agent_ticket
                                                      : NULL;
    if (query_len > 0 || ticket != NULL)
        kf_buf_append_str(out, "?");
    append_query(out, rest, query_len);
    if (ticket != NULL)
        kf_buf_printf(out, "%sticket=%s", query_len > 0 ? "&" : "", ticket);
    kf_buf_append_str(out, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if (cred & CRED_VISITOR)
        kf_buf_append_str(out, "Authorization: Bearer " HARNESS_VISITOR_TOKEN "\r\n");
    if (cred & CRED_SESSION)
        kf_buf_append_str(out, (cred & CRED_OTHER_COOKIES)
                                   ? "Cookie: theme=dark; kefu_session=" HARNESS_SESSION_TOKEN
                                     "; lang=\"en\"\r\n"
                                   : "Cookie: kefu_session=" HARNESS_SESSION_TOKEN "\r\n");
    else if (cred & CRED_OTHER_COOKIES)
        kf_buf_append_str(out, "Cookie: theme=dark; kefu_session=; lang=en\r\n");
    if (cred & CRED_CSRF)
        kf_buf_append_str(out, "X-CSRF-Token: " HARNESS_CSRF_TOKEN "\r\n");
    if (strcmp(endpoint->path, "/push/ws") == 0 && !(opts & REQ_NO_HANDSHAKE))
        kf_buf_append_str(out, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    if (opts & REQ_FOREIGN_ORIGIN)
        kf_buf_append_str(out, "Origin: http://evil.example\r\n");
    if (opts & REQ_CLOSE)
        kf_buf_append_str(out, "Connection: close\r\n");
    append_extra_headers(out, headers, headers_len);
    const char *type = content_types[cred >> CRED_TYPE_SHIFT];
    if (type != NULL)
        kf_buf_printf(out, "Content-Type: %s\r\n", type);
    if (body_len > 0 || strcmp(method, "POST") == 0)
        kf_buf_printf(out, "Content-Length: %zu\r\n", body_len);
    kf_buf_append_str(out, "\r\n");
    kf_buf_append(out, body, body_len);
}

static bool header_is(const char *line, size_t len, const char *name, size_t *value_at)
{
    size_t name_len = strlen(name);
    if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
        return false;
    size_t at = name_len + 1;
    while (at < len && line[at] == ' ')
        at++;
    *value_at = at;
    return true;
}

/* Parses the response at the start of in. Returns true once it is complete (a 101 or a chunked
 * stream is complete at its head: the connection is dropped after it). Aborts on a malformed
 * head: the server wrote it. */
static bool parse_response(const kf_buf_t *in, bool head_only, response_t *r)
{
    memset(r, 0, sizeof *r);
    const char *end = in->len >= 4 ? memmem(in->data, in->len, "\r\n\r\n", 4) : NULL;
    if (end == NULL)
        return false;
    r->head_len = (size_t)(end - in->data) + 4;
    harness_check(r->head_len > 12 && memcmp(in->data, "HTTP/1.1 ", 9) == 0, "status line");
    r->status = atoi(in->data + 9);
    harness_check(r->status >= 100 && r->status <= 599, "status code");
    const char *line = memchr(in->data, '\n', r->head_len) + 1;
    while (line < end) {
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
        size_t len = (size_t)(eol - line);
        size_t at;
        harness_check(eol[1] == '\n', "header line end");
        if (header_is(line, len, "Content-Length", &at)) {
            harness_check(!r->has_length, "one Content-Length");
            r->has_length = true;
            r->content_length = strtoul(line + at, NULL, 10);
        } else if (header_is(line, len, "Transfer-Encoding", &at)) {
            r->chunked = len - at == 7 && memcmp(line + at, "chunked", 7) == 0;
        } else if (header_is(line, len, "Connection", &at)) {
            r->close = len - at == 5 && memcmp(line + at, "close", 5) == 0;
        } else if (header_is(line, len, "Content-Type", &at)) {
            r->json = len - at >= 16 && memcmp(line + at, "application/json", 16) == 0;
        }
        line = eol + 2;
    }
    if (r->status == 101 || r->chunked)
        return true;
    harness_check(r->has_length, "Content-Length on a plain response");
    return in->len >= r->head_len + (head_only ? 0 : r->content_length);
}

static bool carries(const request_t *req, const char *credential)
{
    return memmem(req->bytes.data, req->bytes.len, credential, strlen(credential)) != NULL;
}

/* A visitor sees only their own conversation's messages, and a stored message is the body that
 * was sent, less surrounding ASCII whitespace (an upload's: the file that was sent). */
static void check_messages(const request_t *req, json_t *root)
{
    const char *path = req->routed->path;
    bool visitor = strncmp(path, "/api/visitor/", 13) == 0;
    json_t *messages = json_object_get(root, "messages");
    json_t *message;
    size_t index;
    if (visitor && json_is_array(messages)) {
        json_array_foreach(messages, index, message)
        {
            harness_check(json_integer_value(json_object_get(message, "visitor_id")) ==
                              harness.visitor_id,
                          "a visitor sees only their own messages");
        }
    }
    message = json_object_get(root, "message");
    if (message == NULL || strcmp(req->routed->method, "POST") != 0)
        return;
    harness_check(!visitor || json_integer_value(json_object_get(message, "visitor_id")) ==
                                  harness.visitor_id,
                  "a visitor writes in their own conversation");
    /* An upload's body is the file: its message's text is the file's name, its size the body's. */
    json_t *attachment = json_object_get(message, "attachment");
    if (attachment != NULL) {
        harness_check(strstr(path, "/attachments") != NULL, "only an upload carries a file");
        harness_check(json_integer_value(json_object_get(attachment, "size")) ==
                          (json_int_t)req->body_len,
                      "an attachment is the body sent");
        harness_check(
            json_equal(json_object_get(attachment, "name"), json_object_get(message, "body")),
            "an upload's text is its file's name");
        return;
    }
    json_error_t error;
    json_t *sent =
        json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &error);
    const char *text = json_string_value(json_object_get(sent, "body"));
    const char *stored = json_string_value(json_object_get(message, "body"));
    harness_check(text != NULL && stored != NULL, "a stored message has the body sent");
    size_t len = strlen(text);
    while (len > 0 && strchr(" \t\n\v\f\r", text[len - 1]) != NULL)
        len--;
    while (len > 0 && strchr(" \t\n\v\f\r", text[0]) != NULL) {
        text++;
        len--;
    }
    harness_check(strlen(stored) == len && memcmp(stored, text, len) == 0,
                  "a stored message is the body sent, trimmed");
    json_decref(sent);
}

/* The answer to a request that asked for nothing it may not have. */
static void check_response(const request_t *req, const kf_buf_t *in, const response_t *r)
{
    harness_check(r->status < 500 || r->status == 501, "no 5xx for anything a client sends");
    bool granted = (r->status >= 200 && r->status < 300) || r->status == 101;
    needs_t needs = req->routed != NULL ? req->routed->needs : NEEDS_NOTHING;
    if (granted) {
        harness_check(req->routed != NULL, "2xx only from a route that exists for the method");
        bool visitor = carries(req, HARNESS_VISITOR_TOKEN);
        bool session = carries(req, HARNESS_SESSION_TOKEN);
        bool csrf = carries(req, HARNESS_CSRF_TOKEN);
        bool ticket = carries(req, harness.visitor_ticket) || carries(req, harness.agent_ticket);
        harness_check(needs != NEEDS_VISITOR || visitor, "visitor endpoint without token");
        harness_check(needs != NEEDS_AGENT || session, "agent endpoint without session");
        harness_check(needs != NEEDS_AGENT_CSRF || (session && csrf), "agent POST without CSRF");
        harness_check(needs != NEEDS_LISTENER || visitor || session || ticket,
                      "push stream without credentials");
        harness_check(needs != NEEDS_ADMIN, "an admin route for an agent who is none");
    }
    if (r->json && !req->head_only && r->status != 101 && !r->chunked) {
        json_error_t error;
        json_t *root = json_loadb(in->data + r->head_len, r->content_length, 0, &error);
        harness_check(json_is_object(root), "JSON response is an object");
        harness_check_numbers(root);
        if (r->status >= 200 && r->status < 300 && req->routed != NULL)
            check_messages(req, root);
        if (r->status >= 400)
            harness_check(json_is_string(json_object_get(json_object_get(root, "error"), "code")),
                          "error response has error.code");
        json_decref(root);
    }
}

/* The fixture's session is what most inputs ride on: a successful logout must not end it for
 * every later input. */
static void restore_session(void)
{
    char hash[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex(HARNESS_SESSION_TOKEN, strlen(HARNESS_SESSION_TOKEN), hash);
    kf_store_sync_session_delete(harness.store, hash);
    harness_check(kf_store_sync_session_create(harness.store, hash, harness.agent_id,
                                               HARNESS_CSRF_TOKEN, kf_clock_wall_ms(),
                                               HARNESS_FAR_FUTURE_MS) == 0,
                  "session restored");
}

static void drop_client(void)
{
    if (client >= 0)
        close(client);
    client = -1;
}

/* Sends the request and reads its response into in. Returns true with *r filled, or false when
 * the request was held (a long poll, a body that never comes) and the connection is dropped. */
static bool exchange(const request_t *req, kf_buf_t *in, response_t *r)
{
    for (int attempt = 0;; attempt++) {
        if (client < 0)
            client = harness_connect();
        kf_buf_reset(in);
        bool sent = harness_send(client, req->bytes.data, req->bytes.len) == 0;
        int idle = 0;
        long got = 0;
        while (sent) {
            got = harness_receive(client, in);
            if (parse_response(in, req->head_only, r))
                return true;
            if (got < 0)
                break;
            if (got == 0)
                harness_commit(); /* an answer waits for the store (reads and the writer) */
            idle = got > 0 ? 0 : idle + 1;
            if (idle >= HARNESS_IDLE_TURNS) {
                drop_client();
                return false;
            }
        }
        /* A response cut short is a server bug; a keep-alive connection the server had already
         * closed (it idled out while the fuzzer was busy elsewhere) is not: try a fresh one. */
        harness_check(in->len == 0 && attempt == 0, "connection closed without a response");
        drop_client();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    harness_start();
    trace = getenv("KF_FUZZ_TRACE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return -1;
    request_t req = {.routed = NULL};
    kf_buf_t in;
    response_t r;
    kf_buf_init(&req.bytes);
    kf_buf_init(&in);
    build_request(data, size, &req);
    bool answered = exchange(&req, &in, &r);
    if (trace)
        fprintf(stderr, "%.*s -> %d %.*s\n", (int)(strchr(req.bytes.data, '\r') - req.bytes.data),
                req.bytes.data, answered ? r.status : 0,
                answered && r.json ? (int)(in.len - r.head_len) : 0,
                answered && r.json ? in.data + r.head_len : "");
    if (answered) {
        check_response(&req, &in, &r);
        bool stream = r.status == 101 || r.chunked;
        size_t used = r.head_len + (req.head_only ? 0 : r.content_length);
        /* A request refused as malformed is answered with a body even when it said HEAD (the
         * server cannot trust its method), and then the connection closes. */
        harness_check(stream || in.len == used ||
                          (r.close && in.len <= r.head_len + r.content_length),
                      "no bytes after the response");
        if (stream || r.close)
            drop_client();
        if (req.logout && r.status == 200)
            restore_session();
    }
    kf_buf_free(&req.bytes);
    kf_buf_free(&in);
    return 0;
}

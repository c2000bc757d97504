/* attachment_api.c: files in a conversation (docs/API.md, "Attachments"): a visitor's or an
 * agent's upload, its type judged from its bytes (base/sniff.h) and stored as a message carrying
 * it, and the download, for agents and the conversation's own visitor only. An upload's body is
 * the file itself, not a form: nothing to parse but the bytes, and the server's body limit for
 * these two routes is --max-upload-bytes (kf_app_body_limit). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/sniff.h"
#include "chat/handlers.h"

/* Longest file name kept, in bytes (store.h's limit). */
#define MAX_NAME_BYTES 255

#define NAME_RULE "name must be 1 to 255 bytes of UTF-8 text, without control characters"

/* Whether name is valid UTF-8 without control characters (C0, DEL, C1). */
static bool is_clean_name(const char *name, size_t len)
{
    json_t *probe = json_stringn(name, len); /* NULL for invalid UTF-8 or a NUL inside */
    if (probe == NULL)
        return false;
    json_decref(probe);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == 0xc2 && i + 1 < len && (unsigned char)name[i + 1] < 0xa0)
            return false; /* U+0080 to U+009F */
    }
    return true;
}

/* The file name of an upload without one: "file" and the extension of its type. */
static void default_name(const char *type, char out[MAX_NAME_BYTES + 1])
{
    static const struct {
        const char *type;
        const char *ext;
    } exts[] = {{"image/png", "png"},
                {"image/jpeg", "jpg"},
                {"image/gif", "gif"},
                {"image/webp", "webp"},
                {"application/pdf", "pdf"},
                {"text/plain", "txt"},
                {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
                {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"}};
    const char *ext = "bin";
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        if (strcmp(exts[i].type, type) == 0)
            ext = exts[i].ext;
    }
    snprintf(out, MAX_NAME_BYTES + 1, "file.%s", ext);
}

/* Whether the body's Content-Type is one a cross-site HTML form can send. Agents' uploads carry
 * the CSRF token and visitors' a bearer token, so such a form cannot upload anyway; refusing its
 * types as well keeps every write of the API out of a form's reach (docs/SECURITY.md). */
static bool is_form_type(kf_req_t *req)
{
    const kf_str_t *type = kf_http_header_get(req->head, "Content-Type");
    if (type == NULL)
        return false;
    static const char *const forms[] = {"text/plain", "application/x-www-form-urlencoded",
                                        "multipart/form-data"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t len = strlen(forms[i]);
        if (type->len >= len && strncasecmp(type->ptr, forms[i], len) == 0 &&
            (type->len == len || type->ptr[len] == ';' || type->ptr[len] == ' '))
            return true;
    }
    return false;
}

/* The upload's file name from ?name= (percent-encoded UTF-8), its folders dropped (a browser may
 * send a path), into out; "" when there is none. Answers 422 and returns false when it is bad. */
static bool upload_name(kf_req_t *req, char out[MAX_NAME_BYTES + 1])
{
    char raw[4 * MAX_NAME_BYTES + 1];
    int len = kf_http_query_get(req->head->query, "name", raw, sizeof raw);
    if (len == KF_ENOTFOUND) {
        out[0] = '\0';
        return true;
    }
    if (len < 0) {
        kf_call_fail(req, KF_EINVAL, NAME_RULE);
        return false;
    }
    const char *base = raw;
    for (int i = 0; i < len; i++) {
        if (raw[i] == '/' || raw[i] == '\\')
            base = raw + i + 1;
    }
    size_t base_len = (size_t)len - (size_t)(base - raw);
    while (base_len > 0 && base[0] == ' ') {
        base++;
        base_len--;
    }
    while (base_len > 0 && base[base_len - 1] == ' ')
        base_len--;
    if (base_len == 0 || base_len > MAX_NAME_BYTES || !is_clean_name(base, base_len)) {
        kf_call_fail(req, KF_EINVAL, NAME_RULE);
        return false;
    }
    memcpy(out, base, base_len);
    out[base_len] = '\0';
    return true;
}

/* Checks an upload and sends it as who's message in conversation_id (0: the visitor's own). */
static void upload(const kf_call_t *call, kf_actor_t who, int64_t conversation_id)
{
    kf_req_t *req = call->req;
    if (is_form_type(req)) {
        kf_resp_error(req, 415, "unsupported_media_type",
                      "send the file as the body, as application/octet-stream or its own type "
                      "(not text/plain or a form)");
        return;
    }
    char name[MAX_NAME_BYTES + 1];
    if (!upload_name(req, name))
        return;
    if (req->body_len == 0) {
        kf_call_fail(req, KF_EINVAL, "the file is empty");
        return;
    }
    /* The HTTP layer refused a larger Content-Length already; this is the same rule. */
    if (req->body_len > call->app->config.max_upload_bytes) {
        kf_resp_error(req, 413, "too_large", "the file is larger than the server accepts");
        return;
    }
    const char *type = kf_sniff_type(req->body, req->body_len);
    if (type == NULL) {
        kf_call_log(req, "an upload of a type not allowed");
        kf_resp_error(req, 415, "file_type_not_allowed",
                      "only images (PNG, JPEG, GIF, WebP), PDF, Word and Excel documents and "
                      "plain text can be attached");
        return;
    }
    if (name[0] == '\0')
        default_name(type, name);
    kf_attachment_new_t attachment = {
        .name = name, .type = type, .bytes = req->body, .size = req->body_len};
    kf_call_send_attachment(call, who, conversation_id, &attachment);
}

void kf_visitor_attachment_post(const kf_call_t *call)
{
    int64_t wait_ms = 0;
    if (!kf_limits_visitor_message(call->app->limits, call->who->visitor.id, &wait_ms)) {
        kf_call_rate_limited(call->req, wait_ms, "messages");
        return;
    }
    upload(call, (kf_actor_t){'v', call->who->visitor.id, NULL}, 0);
}

void kf_conversation_attachment_post(const kf_call_t *call)
{
    const kf_agent_auth_t *a = &call->who->agent;
    upload(call, (kf_actor_t){'a', a->id, a->name}, call->ids[0]);
}

/* ---- download ---- */

typedef struct download_wait {
    kf_wait_t base;
    char kind; /* who asks: 'v' or 'a' */
    int64_t visitor_id;
} download_wait_t;

/* Writes the file name as Content-Disposition wants it (RFC 6266): an ASCII fallback in quotes,
 * then the exact name percent-encoded as UTF-8 (RFC 8187). */
static void disposition(const char *name, bool inline_image, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    char fallback[MAX_NAME_BYTES + 1];
    char encoded[3 * MAX_NAME_BYTES + 1];
    size_t f = 0;
    size_t e = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '-' || c == '_';
        /* One '_' for each character the fallback cannot hold, not one per byte. */
        if (f < MAX_NAME_BYTES && (c < 0x80 || c >= 0xc0))
            fallback[f++] = plain || c == ' ' ? (char)c : '_';
        if (e + 3 < sizeof encoded) {
            if (plain) {
                encoded[e++] = (char)c;
            } else {
                encoded[e++] = '%';
                encoded[e++] = hex[c >> 4];
                encoded[e++] = hex[c & 15];
            }
        }
    }
    fallback[f] = '\0';
    encoded[e] = '\0';
    snprintf(out, size, "%s; filename=\"%s\"; filename*=UTF-8''%s",
             inline_image ? "inline" : "attachment", fallback, encoded);
}

static void download_cb(void *ctx, const kf_store_result_t *r)
{
    download_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    char kind = w->kind;
    int64_t visitor_id = w->visitor_id;
    free(w);
    if (req == NULL)
        return;
    if (r->rc != 0) {
        kf_call_fail(req, r->rc, r->rc == KF_ENOTFOUND ? "no such attachment" : NULL);
        return;
    }
    const kf_attachment_t *a = r->attachment;
    /* Another visitor's file, or a note's, does not exist for this one: 404, not 403, so that
     * ids tell nobody what is there. */
    if (kind == 'v' && (a->visitor_id != visitor_id || a->is_private)) {
        kf_call_log(req, "a visitor asked for another conversation's attachment");
        kf_call_fail(req, KF_ENOTFOUND, "no such attachment");
        return;
    }
    bool image = kf_sniff_is_image(a->type);
    char header[8 * MAX_NAME_BYTES];
    disposition(a->name, image, header, sizeof header);
    kf_resp_header(req, "Content-Disposition", header);
    kf_resp_header(req, "Content-Security-Policy",
                   "default-src 'none'; sandbox; frame-ancestors 'none'");
    kf_resp_header(req, "Cache-Control", "private, max-age=86400");
    kf_resp_header(req, "Cross-Origin-Resource-Policy", "same-origin");
    const char *type = strcmp(a->type, "text/plain") == 0 ? "text/plain; charset=utf-8" : a->type;
    kf_resp_send(req, 200, type, a->bytes, (size_t)a->size);
}

void kf_attachment_get(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    download_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->kind = call->who->kind;
    w->visitor_id = call->who->kind == 'v' ? call->who->visitor.id : 0;
    kf_call_hold(call->req, w,
                 app->store->ops->attachment_get(app->store, call->ids[0], download_cb, w));
}

size_t kf_app_body_limit(void *app_ptr, const kf_http_request_t *head)
{
    static const char visitor_path[] = "/api/visitor/attachments";
    static const char agent_prefix[] = "/api/conversations/";
    static const char agent_suffix[] = "/attachments";
    kf_app_t *app = app_ptr;
    size_t normal = 0; /* the server's max_body */
    if (!kf_str_eq(head->method, "POST"))
        return normal;
    kf_str_t path = head->path;
    if (kf_str_eq(path, visitor_path))
        return app->config.max_upload_bytes;
    size_t prefix = sizeof agent_prefix - 1;
    size_t suffix = sizeof agent_suffix - 1;
    if (path.len > prefix + suffix && memcmp(path.ptr, agent_prefix, prefix) == 0 &&
        memcmp(path.ptr + path.len - suffix, agent_suffix, suffix) == 0)
        return app->config.max_upload_bytes;
    return normal;
}

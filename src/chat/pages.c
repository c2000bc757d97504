/* pages.c: the pages (the visitor's chat, the agent console, the website widget and its loader),
 * the embedded static files and the health check. */
#include <string.h>

#include "base/buf.h"
#include "chat/handlers.h"
#include "chat/internal.h"
#include "chat/widget_settings.h"
#include "http/assets.h"

/* Pages may load only from kefu itself, and be framed only by it (the push iframe). */
#define PAGE_POLICY                                                                                \
    "default-src 'self'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'self'; "         \
    "base-uri 'none'; form-action 'self'; object-src 'none'"

/* The website widget's chat, framed by customers' sites: the sites an admin lists, or any site
 * when none is listed (docs/SECURITY.md, "The website widget": it holds only the visitor's own
 * chat, which a framing page cannot read, and asks the visitor for nothing a clickjacker could
 * steal), so it has no X-Frame-Options. The frame-ancestors directive goes between the two. */
#define WIDGET_POLICY_HEAD "default-src 'self'; img-src 'self' data:; frame-src 'self'; "
#define WIDGET_POLICY_TAIL "; base-uri 'none'; form-action 'self'; object-src 'none'"

/* How long a browser keeps the loader without asking again: each page view of a customer's site
 * would otherwise cost a request (a 304); an upgrade reaches every visitor within it. */
#define LOADER_CACHE "public, max-age=600"

void kf_page_static(kf_req_t *req, const char *name, size_t name_len)
{
    const kf_asset_t *asset = kf_asset_find(name, name_len);
    if (asset == NULL) {
        kf_resp_error(req, 404, "not_found", "no such file");
        return;
    }
    if (strncmp(kf_asset_content_type(asset->name), "text/html", 9) == 0) {
        kf_resp_header(req, "Content-Security-Policy", PAGE_POLICY);
        kf_resp_header(req, "X-Frame-Options", "SAMEORIGIN");
    }
    kf_asset_serve(req, asset);
}

void kf_page_root(const kf_call_t *call)
{
    kf_resp_header(call->req, "Location", "/chat");
    kf_resp_send(call->req, 302, NULL, NULL, 0);
}

void kf_page_chat(const kf_call_t *call)
{
    kf_page_static(call->req, "chat.html", 9);
}

void kf_page_agent(const kf_call_t *call)
{
    kf_page_static(call->req, "agent.html", 10);
}

/* Alive and answering: 200 either way, since reads, streams and replays go on while the database
 * refuses writes and a restart would not free the disk; "degraded" tells a monitor to look. */
void kf_page_widget(const kf_call_t *call)
{
    const kf_asset_t *asset = kf_asset_find("widget.html", 11);
    if (asset == NULL) {
        kf_resp_error(call->req, 404, "not_found", "no such file");
        return;
    }
    kf_buf_t policy;
    kf_buf_init(&policy);
    kf_buf_append_str(&policy, WIDGET_POLICY_HEAD);
    kf_widget_frame_ancestors(((kf_app_t *)call->req->app)->widget, &policy);
    kf_buf_append_str(&policy, WIDGET_POLICY_TAIL);
    kf_buf_append(&policy, "", 1);
    kf_resp_header(call->req, "Content-Security-Policy", policy.data);
    kf_buf_free(&policy);
    kf_asset_serve(call->req, asset);
}

void kf_page_widget_loader(const kf_call_t *call)
{
    const kf_asset_t *asset = kf_asset_find("widget.js", 9);
    if (asset == NULL) {
        kf_resp_error(call->req, 404, "not_found", "no such file");
        return;
    }
    kf_asset_serve_cached(call->req, asset, LOADER_CACHE);
}

void kf_page_health(const kf_call_t *call)
{
    bool writable = kf_store_writable(call->app->store);
    kf_resp_json(
        call->req, 200,
        json_pack("{s:s,s:b}", "status", writable ? "ok" : "degraded", "writable", writable));
}

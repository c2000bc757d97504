/* widget_settings.h: the website widget's settings an admin edits (colour, corner, texts,
 * language, business hours, the pages that show it, the pre-chat form) as one JSON object, how a
 * change to them is checked, and whether the business hours have the desk open at a given time.
 * Pure functions of their arguments (the zone's offsets come from base/tz): any thread. */
#ifndef KF_CHAT_WIDGET_SETTINGS_H
#define KF_CHAT_WIDGET_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/tz.h"

/* The settings' key in the store's settings (one JSON text). */
#define KF_WIDGET_SETTINGS_KEY "widget"

/* A new object with every field at its default (docs/API.md, "Widget settings"). */
json_t *kf_widget_defaults(void);
/* Checks change (an object of some of the fields) and applies it over current (a full settings
 * object, left as it is). 0 and *out (a new full object) and *tz (the zone of out's time_zone,
 * loaded from tz_dir, NULL: KF_TZ_DIR; the caller frees both); KF_EPROTO with *why (a static
 * sentence naming the field) for a field that is unknown or a value that is not allowed,
 * KF_ENOTFOUND with *why for a time zone that has no file. */
int kf_widget_settings_merge(const json_t *current, const json_t *change, const char *tz_dir,
                             json_t **out, kf_tz_t **tz, const char **why);
/* Whether the business hours of settings (in tz, the zone of its time_zone) have the desk open at
 * now_ms (UTC). No hours set: always open. *changes_at: the next moment (UTC ms, after now_ms,
 * within a week) at which a day's opening or closing time falls, when the answer may change; 0
 * when it never does. */
bool kf_widget_open_at(const json_t *settings, const kf_tz_t *tz, int64_t now_ms,
                       int64_t *changes_at);
/* Appends the CSP directive for the widget's frame: "frame-ancestors *" when settings list no
 * sites, else "frame-ancestors 'self' " and the sites (the browser then refuses to show the
 * frame inside any other site's page). */
void kf_widget_frame_ancestors(const json_t *settings, kf_buf_t *out);

#endif

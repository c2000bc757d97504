/* widget_settings.c: the widget's settings checked field by field, and the business hours read
 * in the desk's time zone. The zone's offsets come from its TZif file (base/tz), never from the
 * C library's localtime: that one follows the process's TZ, which two callers cannot share. */
#include "chat/widget_settings.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define TITLE_MAX 80     /* bytes: a header line */
#define GREETING_MAX 500 /* bytes: a short first message */
#define AVATAR_MAX 40    /* bytes: initials or a display name */
#define PAGES_MAX 20     /* page rules */
#define PAGE_MAX 200     /* bytes of one rule */
#define FIELDS_MAX 10    /* the pre-chat form's own fields */
#define LABEL_MAX 80     /* bytes of a field's label */
#define CONSENT_MAX 500  /* bytes of the consent text */
#define SITES_MAX 20     /* sites that may show the widget */
#define SITE_MAX 200     /* bytes of one */
#define DAY_MS 86400000LL
#define MINUTE_MS 60000LL

/* The weekdays as the hours name them, Monday first. */
static const char *const DAYS[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

json_t *kf_widget_defaults(void)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:n,s:b,s:[],s:{s:b,s:[],s:s},s:[]}", "color",
                     "#2159cc", "position", "bottom-right", "title", "", "greeting", "", "avatar",
                     "", "language", "auto", "time_zone", "UTC", "hours", "offline_form", 0,
                     "pages", "prechat", "required", 0, "fields", "consent", "", "sites");
}

/* A string of at most max bytes with no control characters (all of it is shown as text). */
static bool text_ok(const json_t *value, size_t max)
{
    if (!json_is_string(value) || json_string_length(value) > max)
        return false;
    const char *s = json_string_value(value);
    for (size_t i = 0; i < json_string_length(value); i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\n')
            return false;
    return true;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "#rgb" or "#rrggbb", kept lower-case: what a CSS colour may be without a name or a function,
 * so that it can go into a style sheet as it is. */
static json_t *color_value(const json_t *value)
{
    if (!json_is_string(value))
        return NULL;
    const char *s = json_string_value(value);
    size_t len = json_string_length(value);
    if ((len != 4 && len != 7) || s[0] != '#')
        return NULL;
    char lower[8];
    lower[0] = '#';
    for (size_t i = 1; i < len; i++) {
        if (!is_hex(s[i]))
            return NULL;
        lower[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    }
    lower[len] = '\0';
    return json_string(lower);
}

/* "HH:MM" as minutes after midnight; "24:00" only where allowed (a closing time). -1 otherwise. */
static int minutes_of(const json_t *value, bool closing)
{
    if (!json_is_string(value) || json_string_length(value) != 5)
        return -1;
    const char *s = json_string_value(value);
    if (s[2] != ':' || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[3] < '0' ||
        s[3] > '5' || s[4] < '0' || s[4] > '9')
        return -1;
    int hours = (s[0] - '0') * 10 + (s[1] - '0');
    int minutes = (s[3] - '0') * 10 + (s[4] - '0');
    if (hours > 24 || (hours == 24 && (minutes != 0 || !closing)))
        return -1;
    return hours * 60 + minutes;
}

/* null (always open) or {"mon": {"open": "09:00", "close": "17:00"}, …}: a day left out is closed
 * all day; a day's window does not pass midnight. */
static bool hours_ok(const json_t *value)
{
    if (json_is_null(value))
        return true;
    if (!json_is_object(value))
        return false;
    size_t known = 0;
    for (size_t day = 0; day < 7; day++) {
        const json_t *window = json_object_get(value, DAYS[day]);
        if (window == NULL)
            continue;
        known++;
        if (!json_is_object(window) || json_object_size(window) != 2)
            return false;
        int open = minutes_of(json_object_get(window, "open"), false);
        int close = minutes_of(json_object_get(window, "close"), true);
        if (open < 0 || close < 0 || close <= open)
            return false;
    }
    return known == json_object_size(value);
}

/* A path rule (it matches the paths it starts, a star standing for any characters): it starts
 * with a slash and has no spaces or controls. */
static bool pages_ok(const json_t *value)
{
    if (!json_is_array(value) || json_array_size(value) > PAGES_MAX)
        return false;
    size_t i;
    const json_t *rule;
    json_array_foreach(value, i, rule)
    {
        if (!json_is_string(rule) || json_string_length(rule) == 0 ||
            json_string_length(rule) > PAGE_MAX || json_string_value(rule)[0] != '/')
            return false;
        for (const char *c = json_string_value(rule); *c != '\0'; c++)
            if ((unsigned char)*c <= 0x20 || *c == 0x7f)
                return false;
    }
    return true;
}

/* An origin a site is served from, as a CSP source: http:// or https://, a lower-case host name
 * (a leading "*." for every subdomain) or a bracketed IPv6 address, an optional :port, no path.
 * Nothing that could end the header's directive (spaces, ';', ',', quotes) gets through. */
static bool site_ok(const json_t *value)
{
    const char *s = json_string_value(value);
    if (s == NULL || json_string_length(value) > SITE_MAX)
        return false;
    const char *host = strncmp(s, "https://", 8) == 0  ? s + 8
                       : strncmp(s, "http://", 7) == 0 ? s + 7
                                                       : NULL;
    if (host == NULL)
        return false;
    const char *c = host;
    if (*c == '[') {
        for (c++; (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || *c == ':'; c++)
            ;
        if (*c++ != ']' || c - host < 4)
            return false;
    } else {
        if (strncmp(c, "*.", 2) == 0)
            c += 2;
        const char *start = c;
        for (; (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'; c++)
            ;
        if (c == start || *start == '.' || *start == '-' || c[-1] == '.' || c[-1] == '-')
            return false;
    }
    if (*c == ':') {
        char *end;
        long port = strtol(c + 1, &end, 10);
        if (c[1] < '0' || c[1] > '9' || port < 1 || port > 65535 || end - (c + 1) > 5)
            return false;
        c = end;
    }
    return *c == '\0';
}

/* The sites that may show the widget: at most SITES_MAX origins (none: any site). */
static bool sites_ok(const json_t *value)
{
    if (!json_is_array(value) || json_array_size(value) > SITES_MAX)
        return false;
    size_t i;
    const json_t *site;
    json_array_foreach(value, i, site)
    {
        if (!site_ok(site))
            return false;
    }
    return true;
}

void kf_widget_frame_ancestors(const json_t *settings, kf_buf_t *out)
{
    const json_t *sites = json_object_get(settings, "sites");
    if (!json_is_array(sites) || json_array_size(sites) == 0) {
        kf_buf_append_str(out, "frame-ancestors *");
        return;
    }
    kf_buf_append_str(out, "frame-ancestors 'self'");
    size_t i;
    const json_t *site;
    json_array_foreach(sites, i, site)
    {
        if (!site_ok(site)) /* as stored, so checked; checked again since it goes in a header */
            continue;
        kf_buf_append_str(out, " ");
        kf_buf_append_str(out, json_string_value(site));
    }
}

/* {"required": bool, "fields": [{"label", "required"}…], "consent": text}, all three present. */
static bool prechat_ok(const json_t *value)
{
    if (!json_is_object(value) || json_object_size(value) != 3 ||
        !json_is_boolean(json_object_get(value, "required")) ||
        !text_ok(json_object_get(value, "consent"), CONSENT_MAX))
        return false;
    const json_t *fields = json_object_get(value, "fields");
    if (!json_is_array(fields) || json_array_size(fields) > FIELDS_MAX)
        return false;
    size_t i;
    const json_t *field;
    json_array_foreach(fields, i, field)
    {
        const json_t *label = json_object_get(field, "label");
        if (!json_is_object(field) || json_object_size(field) != 2 || !text_ok(label, LABEL_MAX) ||
            json_string_length(label) == 0 || strchr(json_string_value(label), '\n') != NULL ||
            !json_is_boolean(json_object_get(field, "required")))
            return false;
    }
    return true;
}

static bool one_of(const json_t *value, const char *a, const char *b, const char *c)
{
    const char *s = json_string_value(value);
    return s != NULL &&
           (strcmp(s, a) == 0 || strcmp(s, b) == 0 || (c != NULL && strcmp(s, c) == 0));
}

/* The value to store for key, or NULL with *why when it is not allowed. */
static json_t *checked(const char *key, json_t *value, const char **why)
{
    if (strcmp(key, "color") == 0) {
        json_t *color = color_value(value);
        *why = "color: a hex colour, #rgb or #rrggbb";
        return color;
    }
    bool ok;
    if (strcmp(key, "position") == 0) {
        ok = one_of(value, "bottom-right", "bottom-left", NULL);
        *why = "position: \"bottom-right\" or \"bottom-left\"";
    } else if (strcmp(key, "title") == 0) {
        ok = text_ok(value, TITLE_MAX) && strchr(json_string_value(value), '\n') == NULL;
        *why = "title: one line of at most 80 bytes";
    } else if (strcmp(key, "greeting") == 0) {
        ok = text_ok(value, GREETING_MAX);
        *why = "greeting: text of at most 500 bytes";
    } else if (strcmp(key, "avatar") == 0) {
        ok = text_ok(value, AVATAR_MAX) && strchr(json_string_value(value), '\n') == NULL;
        *why = "avatar: initials or a name, one line of at most 40 bytes";
    } else if (strcmp(key, "language") == 0) {
        ok = one_of(value, "auto", "en", "zh-CN");
        *why = "language: \"auto\", \"en\" or \"zh-CN\"";
    } else if (strcmp(key, "time_zone") == 0) {
        ok = json_is_string(value) && kf_tz_name_valid(json_string_value(value));
        *why = "time_zone: an IANA zone name such as \"Asia/Shanghai\"";
    } else if (strcmp(key, "hours") == 0) {
        ok = hours_ok(value);
        *why = "hours: null or {\"mon\": {\"open\": \"HH:MM\", \"close\": \"HH:MM\"}, …} with "
               "close after open";
    } else if (strcmp(key, "offline_form") == 0) {
        ok = json_is_boolean(value);
        *why = "offline_form: true or false";
    } else if (strcmp(key, "pages") == 0) {
        ok = pages_ok(value);
        *why = "pages: at most 20 paths starting with /, without spaces";
    } else if (strcmp(key, "sites") == 0) {
        ok = sites_ok(value);
        *why = "sites: at most 20 origins such as \"https://shop.example.com\" (scheme, host and "
               "port; \"https://*.example.com\" for every subdomain); none: any site";
    } else if (strcmp(key, "prechat") == 0) {
        ok = prechat_ok(value);
        *why =
            "prechat: {\"required\": bool, \"fields\": [{\"label\", \"required\"}] (at most 10), "
            "\"consent\": text}";
    } else {
        ok = false;
        *why = "no such widget setting";
    }
    return ok ? json_deep_copy(value) : NULL;
}

int kf_widget_settings_merge(const json_t *current, const json_t *change, const char *tz_dir,
                             json_t **out, kf_tz_t **tz, const char **why)
{
    if (!json_is_object(change) || json_object_size(change) == 0) {
        *why = "widget: an object of the settings to change";
        return KF_EPROTO;
    }
    json_t *merged = json_deep_copy(current);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)change, key, value)
    {
        json_t *stored = checked(key, value, why);
        if (stored == NULL) {
            json_decref(merged);
            return KF_EPROTO;
        }
        json_object_set_new(merged, key, stored);
    }
    int rc = kf_tz_load(tz_dir, json_string_value(json_object_get(merged, "time_zone")), tz);
    if (rc != 0) {
        json_decref(merged);
        *why = rc == KF_ENOTFOUND ? "time_zone: no such zone" : "time_zone: the zone is unreadable";
        return rc == KF_ENOTFOUND ? KF_ENOTFOUND : KF_EPROTO;
    }
    *out = merged;
    return 0;
}

/* Floor division: days before 1970 count down, not toward zero. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The UTC time of a local time: the offset in force there, found from a first guess. A local time
 * a DST jump skips maps to the moment of the jump's far side, near enough for a boundary. */
static int64_t local_to_utc(const kf_tz_t *tz, int64_t local)
{
    int64_t guess = local - kf_tz_offset(tz, local);
    return local - kf_tz_offset(tz, guess);
}

bool kf_widget_open_at(const json_t *settings, const kf_tz_t *tz, int64_t now_ms,
                       int64_t *changes_at)
{
    const json_t *hours = json_object_get(settings, "hours");
    *changes_at = 0;
    if (!json_is_object(hours))
        return true;
    int open[7];
    int close[7];
    for (size_t day = 0; day < 7; day++) {
        const json_t *window = json_object_get(hours, DAYS[day]);
        open[day] = window != NULL ? minutes_of(json_object_get(window, "open"), false) : -1;
        close[day] = window != NULL ? minutes_of(json_object_get(window, "close"), true) : -1;
    }
    int64_t local = now_ms + kf_tz_offset(tz, now_ms);
    int64_t days = floor_div(local, DAY_MS);
    int64_t minute = (local - days * DAY_MS) / MINUTE_MS;
    size_t today = (size_t)((days % 7 + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
    bool is_open = open[today] >= 0 && minute >= open[today] && minute < close[today];
    /* The boundaries of the next eight local days: a week on, the same day's opening comes back. */
    for (int64_t k = 0; k <= 7; k++) {
        size_t weekday = (today + (size_t)k) % 7;
        if (open[weekday] < 0)
            continue;
        int64_t bounds[2] = {open[weekday], close[weekday]};
        for (size_t b = 0; b < 2; b++) {
            int64_t at = local_to_utc(tz, (days + k) * DAY_MS + bounds[b] * MINUTE_MS);
            if (at > now_ms && (*changes_at == 0 || at < *changes_at))
                *changes_at = at;
        }
    }
    return is_open;
}

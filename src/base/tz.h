/* tz.h: a time zone's UTC offsets, read from the system's zone files (tzdata's TZif files under
 * /usr/share/zoneinfo, named as IANA names them: "Asia/Shanghai", "Europe/Berlin"). What reports
 * need to cut a period into local days across daylight saving time, without the C library's
 * localtime, whose zone is the whole process's (TZ) and so cannot serve two callers at once. */
#ifndef KF_TZ_H
#define KF_TZ_H

#include <stddef.h>
#include <stdint.h>

/* A zone's offsets over time. */
typedef struct kf_tz kf_tz_t;

/* Where zone files are looked up unless a test says otherwise. */
#define KF_TZ_DIR "/usr/share/zoneinfo"

/* Whether name has the form of a zone's name: 1 to 64 bytes of ASCII letters, digits, '_', '-',
 * '+' and '/', no part empty or starting with '.' (so no path can leave the directory). */
int kf_tz_name_valid(const char *name);
/* Reads zone name from dir (NULL: KF_TZ_DIR). 0 and *out (free it with kf_tz_free), KF_EINVAL
 * for a name of the wrong form, KF_ENOTFOUND when there is no such file, KF_EPROTO when the file
 * is not a TZif file of version 2 or later (64-bit times). Blocks on the file: a few KB. */
int kf_tz_load(const char *dir, const char *name, kf_tz_t **out);
void kf_tz_free(kf_tz_t *tz);
/* The offset east of UTC in force at utc_ms, in ms. Before the first transition, the zone's
 * first local time type; after the last one in the file (2037 in Debian's files), the last. */
int64_t kf_tz_offset(const kf_tz_t *tz, int64_t utc_ms);
/* The UTC ms at which each local day that [from, to) touches starts, ascending: *starts
 * (malloc'd, the caller frees it) and *count, the first at or before from. A day whose midnight
 * falls in a daylight saving jump starts where the jump lands. KF_EINVAL for from >= to or more
 * than max_days days. */
int kf_tz_day_starts(const kf_tz_t *tz, int64_t from, int64_t to, size_t max_days, int64_t **starts,
                     size_t *count);

#endif

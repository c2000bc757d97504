/* config.h: where kefu's settings come from: the defaults, a config file (--config FILE or
 * KEFU_CONFIG), KEFU_* environment variables and the flags, each overriding the ones before
 * (docs/CONFIG.md). The settings themselves are cli/flags.h's one table.
 *
 * The file is `key = value` lines: a key is a setting's name (a flag without its dashes), the value
 * is the rest of the line with the spaces around it removed (or within double quotes, taken as
 * they are); blank lines and lines whose first non-blank character is '#' are skipped. A list
 * setting takes several values separated by commas, or its key repeated; in the environment, the
 * commas. A list from a later source replaces the earlier one's, it is not added to it. Strict:
 * an unknown key, a setting given twice, a line without '=', a NUL byte or a bad value is an
 * error naming the file and line; an unknown KEFU_ variable whose name starts like a setting's
 * (KEFU_LISTEN_PORT, KEFU_MAX_PUSH) is an error too, others (KEFU_BIN, used by the tests) are
 * not kefu's settings and are left alone. */
#ifndef KF_CLI_CONFIG_H
#define KF_CLI_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "cli/flags.h"

/* The text the settings point into (the file's, split lists'): kept until kf_config_free. */
typedef struct kf_config {
    char **blocks; /* owned, each from malloc */
    size_t count, capacity;
} kf_config_t;

/* Fills flags from every source: kf_flags_init, the file (argv's --config, else KEFU_CONFIG,
 * else none), envp (NULL-terminated "NAME=value" strings, which must outlive flags), then argv's
 * flags, then kf_flags_check. Returns as kf_flags_parse does: 0 to go on, 1 after --help printed
 * to out, 2 after printing why to err. config must be freed with kf_config_free either way. */
int kf_config_load(kf_flags_t *flags, kf_config_t *config, int argc, char **argv, char *const *envp,
                   FILE *out, FILE *err);
/* The defaults, then the file at path (NULL: KEFU_CONFIG's, or none), then envp's KEFU_*
 * variables, without the flags and unchecked together: for the subcommands (`kefu backup`, `kefu
 * user add`), which parse their own few flags and take what they need from these. Returns 0, or
 * 2 after printing why to err; config must be freed either way. */
int kf_config_load_base(kf_flags_t *flags, kf_config_t *config, const char *path, char *const *envp,
                        FILE *err);
/* Applies one config file's text (len bytes, any bytes; copied) to flags; path is for messages.
 * Returns 0, or 2 after printing "kefu: PATH:LINE: why" to err. */
int kf_config_apply_file(kf_flags_t *flags, kf_config_t *config, const char *path, const char *text,
                         size_t len, FILE *err);
/* Applies the KEFU_* variables of envp to flags (KEFU_CONFIG is the file's, skipped). Returns 0,
 * or 2 after printing why to err. */
int kf_config_apply_env(kf_flags_t *flags, kf_config_t *config, char *const *envp, FILE *err);
void kf_config_free(kf_config_t *config);

#endif

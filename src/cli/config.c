/* config.c: the config file's parser, the KEFU_* environment variables, and their order with the
 * defaults and the flags (cli/config.h). */
#include "cli/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* A config file larger than this is surely not one (a few dozen lines are). */
#define CONFIG_MAX_BYTES (1024 * 1024)

/* Keeps a copy of len bytes of text, NUL-terminated, until kf_config_free. */
static char *keep(kf_config_t *config, const char *text, size_t len)
{
    if (config->count == config->capacity) {
        size_t capacity = config->capacity == 0 ? 8 : config->capacity * 2;
        char **blocks = realloc(config->blocks, capacity * sizeof *blocks);
        if (blocks == NULL)
            abort();
        config->blocks = blocks;
        config->capacity = capacity;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        abort();
    memcpy(copy, text, len);
    copy[len] = '\0';
    config->blocks[config->count++] = copy;
    return copy;
}

void kf_config_free(kf_config_t *config)
{
    for (size_t i = 0; i < config->count; i++)
        free(config->blocks[i]);
    free(config->blocks);
    *config = (kf_config_t){0};
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Sets a list setting from one value: comma-separated items, the spaces around each removed; an
 * empty value is an empty list. Replaces what an earlier source gave (the caller resets it the
 * first time a source names it). value is modified in place. */
static int set_list(kf_flags_t *flags, kf_flag_id_t id, char *value, const char *label, FILE *err)
{
    flags->given[id] = true;
    if (value[0] == '\0')
        return 0;
    for (char *item = value;;) {
        char *comma = strchr(item, ',');
        if (comma != NULL)
            *comma = '\0';
        while (is_blank(*item))
            item++;
        size_t len = strlen(item);
        while (len > 0 && is_blank(item[len - 1]))
            item[--len] = '\0';
        if (len == 0) {
            fprintf(err, "kefu: %s has an empty item in its list\n", label);
            return 2;
        }
        int rc = kf_flags_set(flags, id, item, label, err);
        if (rc != 0)
            return rc;
        if (comma == NULL)
            return 0;
        item = comma + 1;
    }
}

static bool is_list(kf_flag_id_t id)
{
    return kf_flags_kind(id) == KF_FLAG_LIST;
}

/* One line of a config file (NUL-terminated, no line end). 0, or 2 after saying why. */
static int apply_line(kf_flags_t *flags, char *line, const char *path, size_t number,
                      size_t first_line[KF_FLAG__COUNT], FILE *err)
{
    while (is_blank(*line))
        line++;
    size_t len = strlen(line);
    while (len > 0 && (is_blank(line[len - 1]) || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (len == 0 || line[0] == '#')
        return 0;
    size_t key_len = 0;
    while ((line[key_len] >= 'a' && line[key_len] <= 'z') ||
           (line[key_len] >= '0' && line[key_len] <= '9') || line[key_len] == '-')
        key_len++;
    char *rest = line + key_len;
    while (is_blank(*rest))
        rest++;
    if (key_len == 0 || *rest != '=') {
        fprintf(err, "kefu: %s:%zu: expected key = value (a setting's name in lower case)\n", path,
                number);
        return 2;
    }
    int found = kf_flags_lookup(line, key_len);
    line[key_len] = '\0';
    if (found < 0) {
        fprintf(err, "kefu: %s:%zu: unknown setting %s (kefu --help lists them)\n", path, number,
                line);
        return 2;
    }
    kf_flag_id_t id = (kf_flag_id_t)found;
    char *value = rest + 1;
    while (is_blank(*value))
        value++;
    if (value[0] == '"') {
        char *close = strchr(value + 1, '"');
        if (close == NULL || close[1] != '\0') {
            fprintf(err, "kefu: %s:%zu: a value in quotes ends with its quote, at the line's end\n",
                    path, number);
            return 2;
        }
        *close = '\0';
        value++;
    }
    char label[512];
    snprintf(label, sizeof label, "%s:%zu: %s", path, number, line);
    bool list = is_list(id);
    if (first_line[id] != 0 && !list) {
        fprintf(err, "kefu: %s is set twice (first on line %zu)\n", label, first_line[id]);
        return 2;
    }
    if (first_line[id] == 0) {
        first_line[id] = number;
        if (list) /* this file's list replaces the defaults' */
            flags->v[id].item_count = 0;
    }
    if (list)
        return set_list(flags, id, value, label, err);
    return kf_flags_set(flags, id, value, label, err);
}

int kf_config_apply_file(kf_flags_t *flags, kf_config_t *config, const char *path, const char *text,
                         size_t len, FILE *err)
{
    const char *nul = memchr(text, '\0', len);
    if (nul != NULL) {
        size_t number = 1;
        for (const char *p = text; p < nul; p++)
            number += *p == '\n';
        fprintf(err, "kefu: %s:%zu: a NUL byte (is this a text file?)\n", path, number);
        return 2;
    }
    char *copy = keep(config, text, len);
    size_t first_line[KF_FLAG__COUNT] = {0};
    size_t number = 1;
    for (char *line = copy; line != NULL; number++) {
        char *end = strchr(line, '\n');
        if (end != NULL)
            *end = '\0';
        int rc = apply_line(flags, line, path, number, first_line, err);
        if (rc != 0)
            return rc;
        line = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

/* Whether an unknown KEFU_ name is a setting misspelt: it starts as a setting's name does. */
static bool looks_like_setting(const char *suffix)
{
    for (int i = 0; i < KF_FLAG__COUNT; i++) {
        char env[96];
        kf_flags_env_name((kf_flag_id_t)i, env, sizeof env);
        const char *word = env + 5;
        size_t word_len = strcspn(word, "_");
        if (strncmp(suffix, word, word_len) == 0)
            return true;
    }
    return strncmp(suffix, "CONFIG", 6) == 0;
}

int kf_config_apply_env(kf_flags_t *flags, kf_config_t *config, char *const *envp, FILE *err)
{
    for (; envp != NULL && *envp != NULL; envp++) {
        const char *entry = *envp;
        const char *equals = strchr(entry, '=');
        if (strncmp(entry, "KEFU_", 5) != 0 || equals == NULL)
            continue;
        size_t name_len = (size_t)(equals - entry);
        if (name_len == 11 && strncmp(entry, "KEFU_CONFIG", 11) == 0)
            continue;
        char name[96];
        bool plain = name_len - 5 < sizeof name;
        for (size_t i = 5; plain && i < name_len; i++) {
            char c = entry[i];
            plain = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
            name[i - 5] = c == '_' ? '-' : (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        int found = plain ? kf_flags_lookup(name, name_len - 5) : -1;
        char label[128];
        snprintf(label, sizeof label, "%.*s", (int)(name_len < 100 ? name_len : 100), entry);
        if (found < 0) {
            if (looks_like_setting(label + 5)) {
                fprintf(err,
                        "kefu: unknown setting in the environment: %s (kefu --help lists them)\n",
                        label);
                return 2;
            }
            continue;
        }
        kf_flag_id_t id = (kf_flag_id_t)found;
        const char *value = equals + 1;
        int rc;
        if (is_list(id)) {
            flags->v[id].item_count = 0;
            rc = set_list(flags, id, keep(config, value, strlen(value)), label, err);
        } else {
            rc = kf_flags_set(flags, id, value, label, err);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Reads and applies the file at path. */
static int apply_path(kf_flags_t *flags, kf_config_t *config, const char *path, FILE *err)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(err, "kefu: cannot read the config file %s: %s\n", path, strerror(errno));
        return 2;
    }
    char *text = malloc(CONFIG_MAX_BYTES + 1);
    if (text == NULL)
        abort();
    size_t len = fread(text, 1, CONFIG_MAX_BYTES + 1, file);
    bool failed = ferror(file) != 0;
    fclose(file);
    int rc = 2;
    if (failed)
        fprintf(err, "kefu: cannot read the config file %s\n", path);
    else if (len > CONFIG_MAX_BYTES)
        fprintf(err, "kefu: the config file %s is over %d bytes\n", path, CONFIG_MAX_BYTES);
    else
        rc = kf_config_apply_file(flags, config, path, text, len, err);
    free(text);
    return rc;
}

int kf_config_load_base(kf_flags_t *flags, kf_config_t *config, const char *path, char *const *envp,
                        FILE *err)
{
    kf_flags_init(flags);
    for (char *const *e = envp; path == NULL && e != NULL && *e != NULL; e++) {
        if (strncmp(*e, "KEFU_CONFIG=", 12) == 0)
            path = *e + 12;
    }
    if (path != NULL && path[0] == '\0') {
        fputs("kefu: --config (or KEFU_CONFIG) needs a file\n", err);
        return 2;
    }
    if (path != NULL && apply_path(flags, config, path, err) != 0)
        return 2;
    flags->config_path = path;
    return kf_config_apply_env(flags, config, envp, err);
}

int kf_config_load(kf_flags_t *flags, kf_config_t *config, int argc, char **argv, char *const *envp,
                   FILE *out, FILE *err)
{
    kf_flags_t cli;
    kf_flags_init(&cli);
    int rc = kf_flags_parse_args(&cli, argc, argv, out, err);
    if (rc != 0)
        return rc;
    rc = kf_config_load_base(flags, config, cli.config_path, envp, err);
    if (rc != 0)
        return rc;
    for (int i = 0; i < KF_FLAG__COUNT; i++) {
        if (cli.given[i]) {
            flags->v[i] = cli.v[i];
            flags->given[i] = true;
        }
    }
    return kf_flags_check(flags, err);
}

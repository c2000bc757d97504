/* transfer.h: `kefu export` and `kefu import`: every table's rows as JSON lines, read from one
 * backend and written to the other (or the same: a backup and its restore). The format is
 * docs/DEPLOY.md's ("Moving between backends"); transfer.c holds it and the table list, and each
 * backend's side is a small kf_transfer_backend_t (transfer_sqlite.c, transfer_pg.c) that reads
 * rows in one snapshot or writes them in batched transactions. Blocking: command-line tools and
 * tests only, never a serving loop. */
#ifndef KF_STORE_TRANSFER_H
#define KF_STORE_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The format's version: a reader refuses any other (a change that an older reader would
 * misread takes a new version). */
#define KF_TRANSFER_FORMAT_VERSION 1
/* The schema the table list describes, in the SQLite backend's numbering (its settings'
 * schema_version; PostgreSQL's schema 2 is SQLite's 19: SQLite's 17 to 19 and 21 add tables of
 * its own that no file holds, and its 20 changes only what one of those holds). A file of a newer
 * schema is refused; a file of an older one is read, its missing columns taking their defaults. */
#define KF_TRANSFER_SCHEMA 19
/* The settings key an import holds while it runs: a store that has it is a half-done import
 * (kefu refuses to serve it, export and import refuse it). */
#define KF_TRANSFER_INCOMPLETE_KEY "import_incomplete"
/* Rows per transaction of an import: large enough that commits cost little, small enough that
 * a batch's locks and WAL stay small. */
#define KF_TRANSFER_BATCH_ROWS 10000

/* One column of the table list: its name, and how its value is kept. */
typedef struct kf_transfer_column {
    const char *name;
    char type;            /* 'i' an integer, 't' text, 'b' bytes (base64 in the file) */
    bool nullable;        /* the value may be null */
    const char *fallback; /* for a file of an older schema without it: a literal of type (NULL:
                           * the column is required, or null when nullable) */
} kf_transfer_column_t;

/* One table, in the order an import writes them (every row a foreign key names comes first). */
typedef struct kf_transfer_table {
    const char *name;
    const kf_transfer_column_t *columns;
    int column_count;
    const char *const *order; /* the key columns rows are exported in, NULL-terminated */
    bool id_sequence;         /* an identity id: PostgreSQL's sequence is set past it */
    bool keep_sequence;       /* the id's high-water mark is exported too: ids never reused */
} kf_transfer_table_t;

/* The tables, in import order; NULL past the last. */
const kf_transfer_table_t *kf_transfer_table(size_t index);
const kf_transfer_table_t *kf_transfer_table_named(const char *name);

/* The query of table's rows in export order, the same on both backends but for: bytes (false:
 * the 'b' column reads as NULL, its bytes being elsewhere) and text_order (appended to each text
 * key column: PostgreSQL's COLLATE "C" orders by bytes as SQLite does). A new string. */
char *kf_transfer_select_sql(const kf_transfer_table_t *table, bool bytes, const char *text_order);
/* The insert of one row of table, parameters numbered with prefix ("?" or "$"), the 'b' column
 * left out when not bytes. A new string. */
char *kf_transfer_insert_sql(const kf_transfer_table_t *table, bool bytes, const char *prefix);
/* The settings rows an export leaves out: the schema version and the import marker. */
#define KF_TRANSFER_SETTINGS_SKIPPED "('schema_version', '" KF_TRANSFER_INCOMPLETE_KEY "')"

/* A value of a row (the column's type says which member holds it). */
typedef struct kf_transfer_value {
    bool null;
    int64_t integer;  /* 'i' */
    const char *data; /* 't' (NUL-terminated) and 'b': borrowed, valid during the call */
    size_t len;
} kf_transfer_value_t;

/* Hands one row (values in the table's column order) to an export; 0 or a KF_E* code that
 * stops the walk. */
typedef int (*kf_transfer_row_cb)(void *arg, const kf_transfer_table_t *table,
                                  const kf_transfer_value_t *values);

/* A backend's side of a transfer. Every function returns 0 or a KF_E* code, with a sentence in
 * error (what failed, in the backend's words) for the person who runs the command. */
typedef struct kf_transfer_backend kf_transfer_backend_t;
struct kf_transfer_backend {
    /* Export: opens one read snapshot that every later read sees. */
    int (*snapshot)(kf_transfer_backend_t *b);
    /* Calls row for each row of table in its key order, holding one row at a time. */
    int (*each_row)(kf_transfer_backend_t *b, const kf_transfer_table_t *table,
                    kf_transfer_row_cb row, void *arg);
    /* The highest id table's identity has handed out (0 for none). */
    int (*sequence)(kf_transfer_backend_t *b, const kf_transfer_table_t *table, int64_t *value);
    /* Import: whether the store holds no rows (settings aside from its schema version); *what
     * names a table that has rows when not. */
    int (*is_empty)(kf_transfer_backend_t *b, bool *empty, const char **what);
    int (*begin)(kf_transfer_backend_t *b);
    /* Inserts one row as it is (ids included), feeding the search index for messages and
     * visitors; inside begin's transaction. A backend may send the row on and learn of its
     * refusal later (PostgreSQL's pipeline), from a later insert or the commit: whichever call
     * fails then sets failed_tag to the refused row's tag (the import's line number). */
    int (*insert)(kf_transfer_backend_t *b, const kf_transfer_table_t *table,
                  const kf_transfer_value_t *values, size_t tag);
    int (*commit)(kf_transfer_backend_t *b);
    void (*rollback)(kf_transfer_backend_t *b);
    /* Sets table's identity past value and past its highest id (after the last row). */
    int (*set_sequence)(kf_transfer_backend_t *b, const kf_transfer_table_t *table, int64_t value);
    /* Writes the settings row key (value NULL: deletes it), inside begin's transaction. */
    int (*setting)(kf_transfer_backend_t *b, const char *key, const char *value);
    /* Reads the settings row key into a new string (*value NULL when absent). */
    int (*setting_get)(kf_transfer_backend_t *b, const char *key, char **value);
    void (*close)(kf_transfer_backend_t *b);
    char error[512];
    size_t failed_tag; /* the tag of the row the store refused, 0 for none */
};

/* Opens the SQLite database at db_path (attachments' bytes in its blob directory beside it),
 * whose schema must be current (open it as a store first). NULL with why filled on failure. */
kf_transfer_backend_t *kf_transfer_sqlite_open(const char *db_path, char *why, size_t why_len);
/* Opens a PostgreSQL connection to conninfo (a URL or key=value), schema current. */
kf_transfer_backend_t *kf_transfer_pg_open(const char *conninfo, char *why, size_t why_len);

/* Writes every table's rows of b's one snapshot to out: the header line, a line a row, the
 * kept sequences and the end line. Returns 0 and the row count in *rows_out (may be NULL), or a
 * KF_E* code with why filled (out then holds a file without its end line, which import refuses
 * as truncated). */
int kf_transfer_export(kf_transfer_backend_t *b, FILE *out, size_t *rows_out, char *why,
                       size_t why_len);

/* Reads and checks the header line of in: KF_EPROTO with why filled for a file that is not an
 * export, of another format version or of a newer schema. */
int kf_transfer_read_header(FILE *in, char *why, size_t why_len);
/* Loads the lines after the header into b's store, which must be empty (KF_EEXISTS otherwise:
 * nothing written). In batches of KF_TRANSFER_BATCH_ROWS rows, the first of which marks the
 * store KF_TRANSFER_INCOMPLETE_KEY and the last (after the end line, the sequences set) unmarks
 * it. A malformed line, a missing end line or a row the store refuses is KF_EPROTO (or the
 * store's code) with why naming the line; the batches committed before stay, marked incomplete.
 * Returns 0 and the row count in *rows_out (may be NULL). */
int kf_transfer_import(kf_transfer_backend_t *b, FILE *in, size_t *rows_out, char *why,
                       size_t why_len);

/* What one line of a file is (kf_transfer_parse_line). */
typedef enum kf_transfer_line_kind {
    KF_TRANSFER_LINE_ROW,
    KF_TRANSFER_LINE_SEQUENCE,
    KF_TRANSFER_LINE_END,
} kf_transfer_line_kind_t;

/* A parsed line. Values point into the line's decoded JSON and bytes: valid until
 * kf_transfer_line_free. */
typedef struct kf_transfer_line {
    kf_transfer_line_kind_t kind;
    const kf_transfer_table_t *table; /* ROW, SEQUENCE */
    kf_transfer_value_t *values;      /* ROW: table->column_count of them */
    int64_t number;                   /* SEQUENCE: the value; END: the row count */
    void *json;                       /* owned */
    char **decoded;                   /* owned: each 'b' column's bytes */
} kf_transfer_line_t;

/* Parses one line (len bytes, no line end needed, not NUL-terminated): 0, or KF_EPROTO with why
 * saying what is wrong with it. On success free it with kf_transfer_line_free. Any bytes. */
int kf_transfer_parse_line(const char *line, size_t len, kf_transfer_line_t *out, char *why,
                           size_t why_len);
void kf_transfer_line_free(kf_transfer_line_t *line);

#endif

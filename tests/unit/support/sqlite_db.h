/* sqlite_db.h: temporary SQLite databases for the store's tests: a database file in a fresh
 * directory, SQLite's own consistency checks on what a store left there, and removal. */
#ifndef KF_TEST_SQLITE_DB_H
#define KF_TEST_SQLITE_DB_H

typedef struct sqlite_db {
    char dir[64];   /* the fresh temporary directory */
    char path[128]; /* the database file inside it (not created yet) */
} sqlite_db_t;

/* A new temporary directory for a database; NULL when it cannot be made. */
sqlite_db_t *sqlite_db_create(void);
/* After the store is closed: PRAGMA integrity_check answers ok and foreign_key_check nothing (a
 * cmocka assertion fails otherwise). */
void sqlite_db_check(const sqlite_db_t *db);
/* Removes the directory and everything in it (the database, its WAL and shm files). */
void sqlite_db_destroy(sqlite_db_t *db);

#endif

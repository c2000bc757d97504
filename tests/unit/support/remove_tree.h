/* remove_tree.h: removing a test's temporary directory and all it holds, for the unit tests and
 * the fuzzers alike (header only: the fuzzers do not link the test helpers). */
#ifndef KF_TEST_REMOVE_TREE_H
#define KF_TEST_REMOVE_TREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int remove_tree_entry(const char *path, const struct stat *st, int flag,
                                    struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* Depth first, without following links: the store makes directories of its own in a data
 * directory (attachments/). 0, or -1 when something stayed. */
static inline int remove_tree(const char *dir)
{
    return nftw(dir, remove_tree_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#endif

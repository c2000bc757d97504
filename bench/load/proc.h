/* proc.h: a process's memory, CPU time and open files, from /proc, for the load tools' figures. */
#ifndef KF_LOAD_PROC_H
#define KF_LOAD_PROC_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct load_proc_stat {
    bool ok;                   /* the figures could be read */
    long rss_kb;               /* VmRSS, summed over the process and its direct children */
    double cpu_s;              /* user + system CPU seconds, summed likewise */
    unsigned long long majflt; /* major page faults (pages read from disk), summed likewise */
} load_proc_stat_t;

/* The process and its direct children (nginx's master and workers; kefu has none); not ok when
 * pid is 0 or gone. */
load_proc_stat_t load_proc_sample(pid_t pid);

/* This process: CPU from getrusage, VmRSS from /proc. */
load_proc_stat_t load_self_sample(void);

/* CPU time of a process's threads, summed by thread name (kefu names its threads: "kefu" for
 * the first loop, "kefu-loop-N", "kefu-writer", "kefu-checkpoint"...), to show where a server's
 * CPU per message goes. */
#define LOAD_THREAD_NAMES 16
typedef struct load_thread_cpu {
    char name[16];
    double user_s;
    double sys_s;
} load_thread_cpu_t;

typedef struct load_threads {
    bool ok;
    size_t count;
    load_thread_cpu_t v[LOAD_THREAD_NAMES]; /* names past the last slot are summed into it */
} load_threads_t;

load_threads_t load_proc_threads(pid_t pid);

/* The process's open file descriptors (the entries of /proc/PID/fd), or -1 when they cannot be
 * read. */
int load_proc_fds(pid_t pid);

#endif

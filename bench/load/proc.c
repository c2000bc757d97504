/* proc.c: process figures from /proc (Linux). */
#include "load/proc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The major page faults and the user and system CPU ticks of /proc/.../stat's text; false when
 * they are not there. */
static bool stat_ticks(const char *buf, unsigned long long *majflt, unsigned long long *utime,
                       unsigned long long *stime)
{
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    const char *p = strrchr(buf, ')');
    return p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %llu %*u %llu %llu",
                               majflt, utime, stime) == 3;
}

/* Reads a small /proc file whole into buf (NUL-terminated); false when it cannot be read. */
static bool read_small(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return true;
}

/* Reads one process's VmRSS, CPU time and major faults; false when it is gone. */
static bool read_one(pid_t pid, long *rss_kb, double *cpu_s, unsigned long long *majflt)
{
    char path[64];
    char line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    *rss_kb = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            *rss_kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char buf[1024];
    unsigned long long utime, stime;
    if (!read_small(path, buf, sizeof buf) || !stat_ticks(buf, majflt, &utime, &stime))
        return false;
    *cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    return true;
}

load_proc_stat_t load_proc_sample(pid_t pid)
{
    load_proc_stat_t stat = {0};
    if (pid <= 0 || !read_one(pid, &stat.rss_kb, &stat.cpu_s, &stat.majflt))
        return stat;
    stat.ok = true;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return stat;
    int child;
    while (fscanf(f, "%d", &child) == 1) {
        long rss;
        double cpu;
        unsigned long long majflt;
        if (read_one(child, &rss, &cpu, &majflt)) {
            stat.rss_kb += rss;
            stat.cpu_s += cpu;
            stat.majflt += majflt;
        }
    }
    fclose(f);
    return stat;
}

load_threads_t load_proc_threads(pid_t pid)
{
    load_threads_t t = {0};
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = pid > 0 ? opendir(path) : NULL;
    if (dir == NULL)
        return t;
    double tick = (double)sysconf(_SC_CLK_TCK);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char file[300], name[32], buf[1024];
        unsigned long long majflt, utime, stime;
        snprintf(file, sizeof file, "/proc/%d/task/%s/comm", (int)pid, e->d_name);
        if (!read_small(file, name, sizeof name))
            continue;
        name[strcspn(name, "\n")] = '\0';
        snprintf(file, sizeof file, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        if (!read_small(file, buf, sizeof buf) || !stat_ticks(buf, &majflt, &utime, &stime))
            continue; /* the thread ended meanwhile */
        size_t i = 0;
        while (i < t.count && strcmp(t.v[i].name, name) != 0)
            i++;
        if (i == t.count) {
            if (t.count < LOAD_THREAD_NAMES)
                t.count++;
            else
                i = LOAD_THREAD_NAMES - 1;
            const char *src = i == LOAD_THREAD_NAMES - 1 ? "others" : name;
            size_t len = strnlen(src, sizeof t.v[i].name - 1); /* comm: 15 bytes at most */
            memcpy(t.v[i].name, src, len);
            t.v[i].name[len] = '\0';
        }
        t.v[i].user_s += (double)utime / tick;
        t.v[i].sys_s += (double)stime / tick;
    }
    closedir(dir);
    t.ok = true;
    return t;
}

load_proc_stat_t load_self_sample(void)
{
    load_proc_stat_t stat = {.ok = true};
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    stat.cpu_s = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                 (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    double ignored;
    read_one(getpid(), &stat.rss_kb, &ignored, &stat.majflt);
    return stat;
}

int load_proc_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return -1;
    int count = 0;
    const struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] != '.')
            count++;
    }
    closedir(dir);
    return count;
}

/* proc.c: process figures from /proc (Linux). */
#include "load/proc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads one process's VmRSS and CPU time; false when it is gone. */
static bool read_one(pid_t pid, long *rss_kb, double *cpu_s)
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
    f = fopen(path, "r");
    if (f == NULL)
        return false;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return false;
    *cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    return true;
}

load_proc_stat_t load_proc_sample(pid_t pid)
{
    load_proc_stat_t stat = {0};
    if (pid <= 0 || !read_one(pid, &stat.rss_kb, &stat.cpu_s))
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
        if (read_one(child, &rss, &cpu)) {
            stat.rss_kb += rss;
            stat.cpu_s += cpu;
        }
    }
    fclose(f);
    return stat;
}

load_proc_stat_t load_self_sample(void)
{
    load_proc_stat_t stat = {.ok = true};
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    stat.cpu_s = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                 (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    double ignored;
    read_one(getpid(), &stat.rss_kb, &ignored);
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

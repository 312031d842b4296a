#define _GNU_SOURCE
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <pthread.h>
#include "CLinuxShims.h"

void *logcast_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len) {
    return memmem(haystack, haystack_len, needle, needle_len);
}

int logcast_thread_nice(void) {
    return getpriority(PRIO_PROCESS, (id_t)gettid());
}

int logcast_raise_thread_nice(int increment) {
    int nice = logcast_thread_nice() + increment;
    if (nice > 19) nice = 19;
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), nice) != 0) return -1;
    return nice;
}

int logcast_set_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

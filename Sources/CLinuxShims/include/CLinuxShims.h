#ifndef LOGCAST_CLINUXSHIMS_H
#define LOGCAST_CLINUXSHIMS_H
/* Linux interfaces that Swift's Glibc module does not expose, or exposes only
 * behind _GNU_SOURCE. Thin static inline wrappers, no logic. */
#include <stddef.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/eventfd.h>

void *logcast_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len);

/* Adds `increment` to the nice value of the calling thread alone (Linux
 * keeps one per thread), at most up to 19; returns the new value, or -1 with
 * errno set. */
int logcast_raise_thread_nice(int increment);

/* The nice value of the calling thread. */
int logcast_thread_nice(void);

/* Names the calling thread (at most 15 bytes are kept), as ps and perf show it. */
int logcast_set_thread_name(const char *name);

#endif

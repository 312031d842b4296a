#ifndef LOGCAST_CLINUXSHIMS_H
#define LOGCAST_CLINUXSHIMS_H
/* Linux interfaces that Swift's Glibc module does not expose, or exposes only
 * behind _GNU_SOURCE. Thin static inline wrappers, no logic. */
#include <stddef.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/eventfd.h>

void *logcast_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len);

#endif

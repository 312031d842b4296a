#ifndef LOGCAST_CSYSTEMD_SHIM_H
#define LOGCAST_CSYSTEMD_SHIM_H
// libsystemd's journal reader and the service manager protocol (sd_notify, sd_listen_fds).
#include <systemd/sd-journal.h>
#include <systemd/sd-daemon.h>
#endif

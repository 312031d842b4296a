#ifndef LOGCAST_CNATS_SHIM_H
#define LOGCAST_CNATS_SHIM_H
// The NATS C client (cnats, Debian's libnats-dev 3.4.1): connections, JetStream streams, publishing and consumers.
#include <nats/nats.h>
#endif

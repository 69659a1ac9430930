#ifndef DIT_CZMQ_SHIM_H
#define DIT_CZMQ_SHIM_H
// libzmq (Debian: libzmq3-dev).
#include <zmq.h>
#endif

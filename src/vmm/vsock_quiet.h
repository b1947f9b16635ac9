/* vsock_quiet.h - bangerd's open connections to each VM's vsock socket,
 * and a way to keep them all still while the VM is paused. */
#ifndef BANGER_VMM_VSOCK_QUIET_H
#define BANGER_VMM_VSOCK_QUIET_H

#include <stdbool.h>

#include "common/err.h"

/* A non-blocking AF_UNIX stream socket for a dial to uds_path, counted
 * as one of its connections.  While uds_path is quiet it waits for the
 * VM to run again, until deadline_ms (time_mono_ms clock), then fails
 * with BN_ESTATE. */
int vsock_conn_socket(const char *uds_path, long long deadline_ms,
    struct bn_err *err);
/* Close a socket from vsock_conn_socket (no-op for fd < 0). */
void vsock_conn_close(int fd);
/* How many connections to uds_path are open now. */
int vsock_conn_count(const char *uds_path);

/* Make uds_path quiet: new dials wait (vsock_conn_socket).  With
 * end_open, every open connection is also shut down, and the call
 * waits up to wait_ms for their owners to close them; when some are
 * still open then, it fails (BN_ESTATE) and leaves uds_path as it was.
 * Without end_open it never fails. */
int vsock_quiesce(const char *uds_path, bool end_open, int wait_ms,
    struct bn_err *err);
/* Let dials to uds_path go on (no-op when it is not quiet). */
void vsock_unquiesce(const char *uds_path);
bool vsock_is_quiet(const char *uds_path);

#endif

/* proc.h - spawning processes with argv (never a shell), and watching them. */
#ifndef BANGER_PROC_H
#define BANGER_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "err.h"

/* Start argv[0] (a path) detached from us: in its own session, reparented
 * away from bangerd (double fork), so it survives a daemon restart.
 * stdin is /dev/null, stdout and stderr append to out_path (or /dev/null).
 * Returns the grandchild's pid, after its exec succeeded. */
int proc_spawn_detached(char *const argv[], const char *out_path,
    pid_t *ret_pid, struct bn_err *err);
/* The same, in directory cwd (NULL: bangerd's own). */
int proc_spawn_detached_in(char *const argv[], const char *cwd,
    const char *out_path, pid_t *ret_pid, struct bn_err *err);
/* The same, with prep(arg) run in the new process just before its exec
 * (after the redirection): it returns 0, or an errno that fails the spawn
 * ("prepare the process of ...") with nothing left running. */
int proc_spawn_detached_prep(char *const argv[], const char *cwd,
    const char *out_path, int (*prep)(void *), void *arg, pid_t *ret_pid,
    struct bn_err *err);

/* Run argv to completion (stdout/stderr to /dev/null unless capture is
 * given, which receives up to capsz-1 bytes of stderr+stdout).  Fails with
 * BN_ESYS if it cannot run and BN_EINTERNAL-like error text if it exits
 * non-zero; *ret_status gets the exit status when not NULL. */
int proc_run(char *const argv[], int timeout_ms, char *capture, size_t capsz,
    int *ret_status, struct bn_err *err);

/* Start argv as our child with stdin /dev/null, stdout into a pipe whose
 * read end is returned in *ret_fd (O_CLOEXEC), and stderr appended to
 * err_path.  The child leads a new process group (pgid = its pid).
 * Reap it with proc_wait_child(). */
int proc_spawn_piped(char *const argv[], const char *err_path, pid_t *ret_pid,
    int *ret_fd, struct bn_err *err);
/* Wait for our child; returns its exit status (128+signal when killed). */
int proc_wait_child(pid_t pid);

/* True when pid is alive (and not a zombie). */
bool proc_alive(pid_t pid);
/* True when /proc/<pid>/cmdline contains every string in needles as an
 * exact argument. */
bool proc_cmdline_has(pid_t pid, const char *const needles[], int n);
/* Wait until pid is gone or timeout_ms passes; returns true if gone. */
bool proc_wait_gone(pid_t pid, int timeout_ms);

/* Locate an executable: absolute/relative path as-is, else search PATH.
 * Writes into out. */
int proc_find_exe(const char *name, char *out, size_t outsz,
    struct bn_err *err);

/* The gid of group "banger" from /etc/group (read directly: a local
 * group, and no NSS modules loaded into the daemon for it). */
bool banger_group(gid_t *ret);

#endif

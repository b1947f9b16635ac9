/* cmd_vm_exec_tty.c - banger vm exec -t NAME -- COMMAND: the command on a
 * terminal of its own in the VM (POST /v1/vms/NAME/exec with "tty": true,
 * the connection upgraded: api_upgrade), as ssh -t or docker exec -it.
 *
 * After the 101 the connection carries frames both ways (openapi.yaml):
 * the terminal's output and the exit come from the VM; input, the
 * window's size, signals and the end of input go to it.  When standard
 * input is a terminal it is put in raw mode, so that every key, Ctrl-C
 * and Ctrl-Z included, goes to the command's terminal (whose line
 * discipline makes the signals there), and the window's size is sent at
 * the start and on each SIGWINCH.  Otherwise (a pipe, a file) it is sent
 * as it is, then an end-of-input frame.
 *
 * Signals to banger itself: SIGINT and SIGQUIT are passed on to the
 * command's foreground process group; SIGTERM and SIGHUP end banger
 * (128 + N), and bangerd's agent then hangs the session up.  The terminal
 * is restored on every way out.  Frames to bangerd are queued and sent
 * without blocking, and output is read meanwhile: a command that neither
 * reads its input nor stops writing cannot wedge the two against each
 * other. */
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#define FRAME_HEAD 8
#define FRAME_MAX (1 << 20)     /* a frame from bangerd larger: broken */
#define INPUT_CHUNK (32 * 1024) /* one read of standard input */
#define WINSIZE_MAX 9999
enum { FR_INPUT = 0, FR_OUTPUT = 1, FR_EXIT = 3, FR_RESIZE = 4,
	FR_SIGNAL = 5, FR_EOF = 6 };

static volatile sig_atomic_t got_winch, got_int, got_quit, got_end;

static void
on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else if (sig == SIGINT)
		got_int = 1;
	else if (sig == SIGQUIT)
		got_quit = 1;
	else
		got_end = sig;
}

struct tty_session {
	int fd;                 /* the upgraded connection */
	bool raw;               /* standard input is a terminal, made raw */
	struct termios saved;
	bool input_open;        /* standard input is still read */
	/* To bangerd: frames queued, not sent yet. */
	unsigned char *q;
	size_t qoff, qlen, qcap;
	/* From bangerd: what came and is not a whole frame yet. */
	unsigned char *in;
	size_t ilen, icap;
	bool exited, timed_out;
	int exit_code, signal;
	const char *broken;     /* why the stream cannot go on */
};

static void
queue_frame(struct tty_session *s, int type, const void *p, size_t n)
{
	if (s->qoff == s->qlen)
		s->qoff = s->qlen = 0;
	if (s->qlen + FRAME_HEAD + n > s->qcap) {
		s->qcap = s->qlen + FRAME_HEAD + n + 4096;
		s->q = xrealloc(s->q, s->qcap);
	}
	unsigned char *h = s->q + s->qlen;
	h[0] = (unsigned char)type;
	h[1] = h[2] = h[3] = 0;
	h[4] = (unsigned char)(n >> 24);
	h[5] = (unsigned char)(n >> 16);
	h[6] = (unsigned char)(n >> 8);
	h[7] = (unsigned char)n;
	if (n > 0)
		memcpy(h + FRAME_HEAD, p, n);
	s->qlen += FRAME_HEAD + n;
}

/* The window's size, from standard input or else standard output. */
static bool
window_size(unsigned *rows, unsigned *cols)
{
	struct winsize ws;

	if ((ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 &&
	    ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0) || ws.ws_row == 0 ||
	    ws.ws_col == 0)
		return false;
	*rows = ws.ws_row > WINSIZE_MAX ? WINSIZE_MAX : ws.ws_row;
	*cols = ws.ws_col > WINSIZE_MAX ? WINSIZE_MAX : ws.ws_col;
	return true;
}

static void
queue_resize(struct tty_session *s)
{
	unsigned rows, cols;

	if (!window_size(&rows, &cols))
		return;
	unsigned char p[4] = { (unsigned char)(rows >> 8), (unsigned char)rows,
		(unsigned char)(cols >> 8), (unsigned char)cols };
	queue_frame(s, FR_RESIZE, p, sizeof(p));
}

/* Send what the queue holds, as much as the connection takes now. */
static int
flush_queue(struct tty_session *s)
{
	while (s->qoff < s->qlen) {
		ssize_t n = send(s->fd, s->q + s->qoff, s->qlen - s->qoff,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0) {
			s->broken = "the connection to bangerd broke";
			return -1;
		}
		s->qoff += (size_t)n;
	}
	return 0;
}

static void
write_out(const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { STDOUT_FILENO, POLLOUT, 0 };
			poll(&pf, 1, 1000);
			continue;
		}
		if (w <= 0)
			return;     /* stdout is gone; the session goes on */
		p += w;
		n -= (size_t)w;
	}
}

static void
parse_exit(struct tty_session *s, const char *text)
{
	const char *v;

	s->exited = true;
	s->exit_code = (v = strstr(text, "exit_code=")) ? atoi(v + 10) : -1;
	s->signal = (v = strstr(text, "signal=")) ? atoi(v + 7) : 0;
	s->timed_out = (v = strstr(text, "timed_out=")) && v[10] == '1';
}

/* The whole frames received so far. */
static int
take_frames(struct tty_session *s)
{
	size_t off = 0;

	while (!s->exited && s->ilen - off >= FRAME_HEAD) {
		const unsigned char *h = s->in + off;
		size_t n = (size_t)h[4] << 24 | (size_t)h[5] << 16 |
		    (size_t)h[6] << 8 | h[7];
		if ((h[0] != FR_OUTPUT && h[0] != FR_EXIT) || n > FRAME_MAX) {
			s->broken = "bangerd sent a bad frame";
			return -1;
		}
		if (s->ilen - off < FRAME_HEAD + n) {
			if (FRAME_HEAD + n > s->icap) {
				s->icap = FRAME_HEAD + n;
				memmove(s->in, s->in + off, s->ilen - off);
				s->ilen -= off;
				off = 0;
				s->in = xrealloc(s->in, s->icap);
			}
			break;
		}
		if (h[0] == FR_OUTPUT) {
			write_out(h + FRAME_HEAD, n);
		} else {
			char text[128];
			snprintf(text, sizeof(text), "%.*s", (int)(n < 127 ? n : 127),
			    (const char *)h + FRAME_HEAD);
			parse_exit(s, text);
		}
		off += FRAME_HEAD + n;
	}
	memmove(s->in, s->in + off, s->ilen - off);
	s->ilen -= off;
	return 0;
}

/* Read what bangerd sent; -1 once the stream ended or broke. */
static int
read_conn(struct tty_session *s)
{
	if (s->ilen == s->icap) {
		s->icap = s->icap * 2;
		s->in = xrealloc(s->in, s->icap);
	}
	ssize_t n = recv(s->fd, s->in + s->ilen, s->icap - s->ilen,
	    MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0) {
		s->broken = "the session ended before the command's exit";
		return -1;
	}
	s->ilen += (size_t)n;
	return take_frames(s);
}

static void
read_input(struct tty_session *s, unsigned char *buf)
{
	ssize_t n = read(STDIN_FILENO, buf, INPUT_CHUNK);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		queue_frame(s, FR_INPUT, buf, (size_t)n);
		return;
	}
	/* Its end (or an error, which ends it too): the terminal's EOF. */
	queue_frame(s, FR_EOF, NULL, 0);
	s->input_open = false;
}

/* Pass frames until the exit frame, a broken stream, or SIGTERM/SIGHUP
 * (got_end). */
static void
session_loop(struct tty_session *s, const sigset_t *waitmask)
{
	unsigned char *buf = xmalloc(INPUT_CHUNK);

	while (!s->exited && s->broken == NULL && !got_end) {
		if (got_winch) {
			got_winch = 0;
			queue_resize(s);
		}
		if (got_int || got_quit) {
			unsigned char sig = got_int ? SIGINT : SIGQUIT;
			got_int = got_quit = 0;
			queue_frame(s, FR_SIGNAL, &sig, 1);
		}
		if (flush_queue(s) < 0)
			break;
		struct pollfd p[2] = {
			{ s->fd, POLLIN, 0 },
			{ s->input_open && s->qoff == s->qlen ? STDIN_FILENO : -1,
			  POLLIN, 0 },
		};
		if (s->qoff < s->qlen)
			p[0].events |= POLLOUT;
		/* The signals are blocked but here: none is missed between
		 * the checks above and the wait. */
		if (ppoll(p, 2, NULL, waitmask) < 0) {
			if (errno == EINTR)
				continue;
			s->broken = strerror(errno);
			break;
		}
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    read_conn(s) < 0)
			break;
		if (p[1].revents)
			read_input(s, buf);
	}
	free(buf);
}

/* Raw mode, as ssh -t sets it: no echo, no line editing, no signals from
 * keys, no output processing (the VM's terminal does all that). */
static void
raw_on(struct tty_session *s)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &s->saved) < 0)
		return;
	t = s->saved;
	cfmakeraw(&t);
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) == 0)
		s->raw = true;
}

static void
raw_off(struct tty_session *s)
{
	if (s->raw)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &s->saved);
	s->raw = false;
}

/* "tty", the size and TERM added to the exec request. */
static char *
session_body(json_t *body)
{
	json_t *env = json_object_get(body, WIRE_ENV);
	const char *term = getenv("TERM");
	unsigned rows, cols;

	json_object_set_new(body, WIRE_TTY, json_true());
	if (window_size(&rows, &cols)) {
		json_object_set_new(body, WIRE_ROWS, json_integer(rows));
		json_object_set_new(body, WIRE_COLS, json_integer(cols));
	}
	if (term != NULL && term[0] != '\0' && json_is_object(env) &&
	    json_object_get(env, "TERM") == NULL)
		json_object_set_new(env, "TERM", json_string(term));
	return json_dumps(body, JSON_COMPACT);
}

int
exec_tty_session(struct cli *cli, const char *vm, json_t *body,
    bool send_input)
{
	static const int sigs[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGWINCH };
	struct tty_session s = { .fd = -1, .input_open = send_input };
	struct sigaction sa, old[5];
	struct api_upgrade u;
	sigset_t block, waitmask;
	char cname[128];
	int rc;

	out_clean(vm, cname, sizeof(cname));
	cli_socket_resolve(cli);
	char *text = session_body(body);
	char *path = api_path("/v1/vms/", vm, "/exec");
	rc = api_upgrade(cli, path, text, &u);
	free(path);
	free(text);
	if (rc < 0) {
		fprintf(stderr, "banger: cannot reach bangerd at %s\n",
		    cli->socket_path);
		api_upgrade_close(&u);
		return CLI_EXIT_UNREACHABLE;
	}
	if (u.status != 101) {
		rc = u.error != NULL ? api_report_error(u.error, u.status) :
		    (fprintf(stderr, "banger: bangerd answered HTTP %d\n",
		    u.status), api_exit_status(NULL, u.status));
		api_upgrade_close(&u);
		return rc;
	}

	s.fd = u.fd;
	s.icap = u.npre > 65536 ? u.npre : 65536;
	s.in = xmalloc(s.icap);
	memcpy(s.in, u.pre, u.npre);
	s.ilen = u.npre;

	sigemptyset(&block);
	for (size_t i = 0; i < 5; i++)
		sigaddset(&block, sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGQUIT);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGHUP);
	sigdelset(&waitmask, SIGWINCH);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	for (size_t i = 0; i < 5; i++)
		sigaction(sigs[i], &sa, &old[i]);
	got_winch = got_int = got_quit = got_end = 0;

	raw_on(&s);
	if (s.raw)
		queue_resize(&s);   /* the size may have changed since */
	if (take_frames(&s) == 0)
		session_loop(&s, &waitmask);
	raw_off(&s);

	for (size_t i = 0; i < 5; i++)
		sigaction(sigs[i], &old[i], NULL);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	api_upgrade_close(&u);
	free(s.q);
	free(s.in);

	if (got_end)
		return 128 + got_end;
	if (!s.exited) {
		fprintf(stderr, "banger: %s: %s\n", cname, s.broken ? s.broken :
		    "the session ended before the command's exit");
		return CLI_EXIT_SERVER;
	}
	if (s.timed_out) {
		fprintf(stderr, "banger: the command ran out of time "
		    "(--timeout)\n");
		return 124;
	}
	return s.signal > 0 ? 128 + s.signal : s.exit_code;
}

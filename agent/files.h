/* files.h - what the "files" capability's two halves share: files.c (the
 * routes, the user, GET /files) and files_put.c (PUT /files, the
 * extraction). */
#ifndef BANGER_AGENT_FILES_H
#define BANGER_AGENT_FILES_H

#include "agent.h"

#define FILES_IO (64 * 1024)       /* one read of a file or of the body */
#define FILES_MAX_PATH 4096        /* the query's path */
#define FILES_MAX_DEPTH 128        /* directories inside directories */
#define FILES_TAR_TYPE "application/x-tar"

/* The request, as the query asked for it. */
struct files_req {
	char path[FILES_MAX_PATH + 1];  /* absolute */
	char user_name[64];             /* "" when not given: root */
	struct agent_user user;
};

/* PUT /files: extract the request body, a tar stream, into the directory
 * dirfd (the query's path, already opened as the user) and reply.  The
 * fs credentials are already the user's. */
void files_put(struct agent_request *rq, int dirfd);

#endif

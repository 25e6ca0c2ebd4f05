/*
 * buildinfo.h - what this binary is: its version and the versions of the libraries it runs
 * with (read at run time, so a user sees the shared objects actually loaded).
 *
 * Thread-safety: hp_buildinfo_get only reads static data and may be called from any thread.
 */
#ifndef HOSTPATROL_BUILDINFO_H
#define HOSTPATROL_BUILDINFO_H

#include <jansson.h>

#include "hostpatrol/rc.h"

struct hp_buildinfo {
    const char *version;  /* hostpatrol's version (git describe at build time) */
    const char *commit;   /* git commit, "unknown" outside a checkout */
    const char *compiler; /* the C compiler that built it */
    const char *curl;     /* libcurl at run time */
    const char *jansson;  /* jansson at run time */
    const char *yaml;     /* libyaml at run time */
    const char *lws;      /* libwebsockets at run time */
    const char *openssl;  /* OpenSSL at run time */
};

/* hp_buildinfo_get: fill bi. Every string is static or library-owned (borrowed); none is
 * NULL. */
void hp_buildinfo_get(struct hp_buildinfo *bi);

/* hp_buildinfo_json: bi as a new JSON object (owned: json_decref it). NULL on NOMEM. */
json_t *hp_buildinfo_json(const struct hp_buildinfo *bi);

#endif

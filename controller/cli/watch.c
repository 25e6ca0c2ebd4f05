/* watch.c - `hostpatrol watch`: follow the controller's /ws stream of committed results and
 * print one line per result (table) or each message as it came (json), until SIGINT/SIGTERM
 * (exit 0) or the connection ends (exit 1). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"
#include "hostpatrol/kube_config.h"
#include "hostpatrol/term_text.h"

#define WATCH_DEFAULT_SERVER "wss://127.0.0.1:8443"
#define WATCH_TOKEN_MAX      (64u * 1024)        /* a longer token file is refused */
#define WATCH_MSG_MAX        (64u * 1024 * 1024) /* a longer message is refused */
#define WATCH_TICK_MS        100                 /* how often the loop looks at the stop flag */
#define WATCH_TABLE_FMT      "%-20s  %-16s  %-24s  %-16s  %-24s  %-7s  %s\n"

struct watch_flags {
    const char *server, *ns, *name, *format;
    /* the secure server: who we are, and whom we trust */
    const char *token, *token_file, *kubeconfig, *context, *ca_file;
    bool insecure;
};

/* The connection's state; only the main thread (lws service) touches it. */
struct watch {
    FILE *out, *errout;
    const char *server;
    bool json, established, closed, failed;
    char why[256];       /* connection error detail */
    char *auth;          /* "Bearer TOKEN" (owned, wiped), or NULL */
    int http_status;     /* the server's answer to a refused upgrade, or 0 */
    char close_why[128]; /* the server's close reason, "" if none */
    struct hp_buf msg;   /* the message being assembled, at most WATCH_MSG_MAX bytes */
    lws_sorted_usec_list_t tick;
    struct lws_context *ctx; /* borrowed */
};

static volatile sig_atomic_t stop_sig;

static void on_stop_signal(int sig)
{
    stop_sig = sig;
}

static void watch_usage(FILE *f)
{
    fprintf(
        f, "Usage: hostpatrol watch [--server wss://HOST:PORT] [-n NS] [NAME] [-o table|json]\n"
           "Follow the results the controller commits, as they are committed (its /ws\n"
           "stream on the metrics address), until Ctrl-C.\n\n"
           "  --server URL                    the controller, wss:// (default " WATCH_DEFAULT_SERVER
           ")\n"
           "                                  or ws:// for one run with --metrics-secure=false\n"
           "  --token TOKEN                   bearer token (e.g. kubectl create token SA)\n"
           "  --token-file FILE               bearer token read from FILE\n"
           "  --kubeconfig FILE --context NAME  else the token (or tokenFile) of the kubeconfig's\n"
           "                                  user ($KUBECONFIG, ~/.kube/config)\n"
           "  --ca-file FILE                  CA bundle that signed the server's certificate\n"
           "                                  (also --certificate-authority)\n"
           "  --insecure-skip-tls-verify      do not verify the server's certificate (the\n"
           "                                  default self-signed one)\n"
           "  -n, --namespace NS              only this namespace (default: all)\n"
           "  NAME                            only this HostInspection (needs -n)\n"
           "  -o, --output table|json         one line per result, or each message as JSON\n");
}

/* watch_parse_flags: argv -> fl. Returns -1 to go on, else the exit status. */
static int watch_parse_flags(int argc, char **argv, struct watch_flags *fl, FILE *out, FILE *errout)
{
    enum { O_SERVER = 256, O_TOKEN, O_TOKEN_FILE, O_KUBECONFIG, O_CONTEXT, O_CA, O_INSECURE };
    static const struct option opts[] = {
        {"server", required_argument, NULL, O_SERVER},
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
        {"context", required_argument, NULL, O_CONTEXT},
        {"ca-file", required_argument, NULL, O_CA},
        {"certificate-authority", required_argument, NULL, O_CA},
        {"insecure-skip-tls-verify", no_argument, NULL, O_INSECURE},
        {"namespace", required_argument, NULL, 'n'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;

    fl->server = WATCH_DEFAULT_SERVER;
    fl->format = "table";
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, HP_OPTSTRING("n:o:h"), opts, NULL)) != -1) {
        switch (c) {
        case O_SERVER:
            fl->server = optarg;
            break;
        case O_TOKEN:
            fl->token = optarg;
            break;
        case O_TOKEN_FILE:
            fl->token_file = optarg;
            break;
        case O_KUBECONFIG:
            fl->kubeconfig = optarg;
            break;
        case O_CONTEXT:
            fl->context = optarg;
            break;
        case O_CA:
            fl->ca_file = optarg;
            break;
        case O_INSECURE:
            fl->insecure = true;
            break;
        case 'n':
            fl->ns = optarg;
            break;
        case 'o':
            fl->format = optarg;
            break;
        case 'h':
            watch_usage(out);
            return HP_EXIT_OK;
        default:
            hp_cli_bad_flag(errout, "watch", c, argv);
            watch_usage(errout);
            return HP_EXIT_USAGE;
        }
    }
    if (optind < argc)
        fl->name = argv[optind++];
    if (optind < argc) {
        fprintf(errout, "hostpatrol watch: unexpected argument '%s' (at most one NAME)\n",
                argv[optind]);
        return HP_EXIT_USAGE;
    }
    if (strcmp(fl->format, "table") && strcmp(fl->format, "json")) {
        fprintf(errout, "hostpatrol watch: --output '%s' is not one of table, json\n", fl->format);
        return HP_EXIT_USAGE;
    }
    if (fl->name && !fl->ns) {
        fprintf(errout, "hostpatrol watch: NAME '%s' needs --namespace\n", fl->name);
        return HP_EXIT_USAGE;
    }
    if (fl->token && fl->token_file) {
        fprintf(errout, "hostpatrol watch: --token and --token-file exclude each other\n");
        return HP_EXIT_USAGE;
    }
    if ((fl->ns && !fl->ns[0]) || (fl->name && !fl->name[0])) {
        fprintf(errout, "hostpatrol watch: --namespace and NAME must not be empty\n");
        return HP_EXIT_USAGE;
    }
    return -1;
}

/* parse_server: "ws[s]://HOST[:PORT][/]" -> host (into buf), port, and whether it is wss.
 * Returns false if not one. */
static bool parse_server(const char *url, char *host, size_t host_size, int *port, bool *tls)
{
    const char *h, *colon, *end;
    char *endp = NULL;
    size_t n;
    long p;

    *tls = !strncmp(url, "wss://", 6);
    if (!*tls && strncmp(url, "ws://", 5))
        return false;
    h = url + (*tls ? 6 : 5);
    p = *tls ? 443 : 80;
    end = h + strcspn(h, "/");
    if (end[0] && strcmp(end, "/"))
        return false; /* a path: the stream's path is fixed */
    if (h[0] == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));

        if (!close)
            return false;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (!colon && close + 1 != end)
            return false;
        n = (size_t)(close - h - 1);
        h++;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        n = (size_t)((colon ? colon : end) - h);
    }
    if (!n || n >= host_size)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    if (colon) {
        errno = 0;
        p = strtol(colon + 1, &endp, 10);
        if (errno || endp != end || colon + 1 == end || p < 1 || p > 65535)
            return false;
    }
    *port = (int)p;
    return true;
}

/* add_arg: append "&key=value" (value percent-encoded) to path; false if it does not fit. */
static bool add_arg(char *path, size_t size, const char *key, const char *value)
{
    size_t n = strlen(path);
    int w = snprintf(path + n, size - n, "%s%s=", strchr(path, '?') ? "&" : "?", key);

    if (w < 0 || (size_t)w >= size - n)
        return false;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p);

        w = snprintf(path + n, size - n, plain ? "%c" : "%%%02X", *p);
        if (w < 0 || (size_t)w >= size - n)
            return false;
        n += (size_t)w;
    }
    return true;
}

static void print_time(json_int_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "-");
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : dflt;
}

/* on_message: print one complete message. */
static void on_message(struct watch *w)
{
    json_t *m;
    const json_t *res, *dropped;
    size_t i;

    if (w->json) {
        fprintf(w->out, "%.*s\n", (int)hp_buf_len(&w->msg), hp_buf_data(&w->msg));
        fflush(w->out);
        return;
    }
    m = json_loadb(hp_buf_data(&w->msg), hp_buf_len(&w->msg), 0, NULL);
    if (!m) {
        fprintf(w->errout, "hostpatrol watch: a message from %s is not JSON; skipped\n", w->server);
        return;
    }
    dropped = json_object_get(m, "dropped");
    if (json_is_integer(dropped))
        fprintf(w->errout,
                "hostpatrol watch: %lld messages dropped by %s (this client reads too slowly)\n",
                (long long)json_integer_value(dropped), w->server);
    json_array_foreach(json_object_get(m, "results"), i, res)
    {
        /* every field comes from a resource's author or a probed host: escaped for the terminal */
        char when[32], ns[256], name[256], check[256], target[512], status[64], reason[1024];

        print_time(json_integer_value(json_object_get(res, "observed_ms")), when, sizeof(when));
        term_text_escape(str_or(m, "namespace", "-"), ns, sizeof(ns));
        term_text_escape(str_or(m, "name", "-"), name, sizeof(name));
        term_text_escape(str_or(res, "check", "-"), check, sizeof(check));
        term_text_escape(str_or(res, "target", "-"), target, sizeof(target));
        term_text_escape(str_or(res, "status", "-"), status, sizeof(status));
        term_text_escape(str_or(res, "reason", ""), reason, sizeof(reason));
        fprintf(w->out, WATCH_TABLE_FMT, when, ns, name, check, target, status, reason);
    }
    fflush(w->out);
    json_decref(m);
}

/* on_data: a piece of a message; whole messages go to on_message. Returns nonzero to close. */
static int on_data(struct watch *w, struct lws *wsi, const void *in, size_t len)
{
    switch (hp_buf_add(&w->msg, in, len)) {
    case HP_OK:
        break;
    case HP_ERR_FULL:
        snprintf(w->why, sizeof(w->why), "a message longer than %u bytes", WATCH_MSG_MAX);
        w->failed = true;
        return 1;
    default:
        snprintf(w->why, sizeof(w->why), "out of memory");
        w->failed = true;
        return 1;
    }
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        on_message(w);
        hp_buf_reset(&w->msg);
    }
    return 0;
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct watch *w = lws_context_user(lws_get_context(wsi));

    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;

        if (w->auth && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                                    (const unsigned char *)w->auth,
                                                    (int)strlen(w->auth), p, end))
            return -1;
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        w->http_status = wsi ? (int)lws_http_client_http_response(wsi) : 0;
        snprintf(w->why, sizeof(w->why), "%s", in ? (const char *)in : "connection failed");
        w->failed = true;
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* 2 bytes of close code, then the reason ("403 Forbidden: ...") */
        if (in && len > 2)
            snprintf(w->close_why, sizeof(w->close_why), "%.*s", (int)(len - 2),
                     (const char *)in + 2);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        w->established = true;
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_data(w, wsi, in, len) ? -1 : 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        w->closed = true;
        return 0;
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS:
        return 0; /* the CA comes from --ca-file or the system's store */
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* on_tick: wakes the service loop every WATCH_TICK_MS so it sees the stop flag. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct watch *w = lws_container_of(sul, struct watch, tick);

    lws_sul_schedule(w->ctx, 0, &w->tick, on_tick, WATCH_TICK_MS * LWS_US_PER_MS);
}

/* read_token: the token in path (owned, trailing white space cut), or NULL with why set. */
static char *read_token(const char *path, char *why, size_t why_len)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    if (!f) {
        snprintf(why, why_len, "cannot read token file %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = hp_malloc(WATCH_TOKEN_MAX + 1);
    if (!buf) {
        fclose(f);
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, WATCH_TOKEN_MAX + 1, f);
    fclose(f);
    if (n > WATCH_TOKEN_MAX) {
        hp_free(buf);
        snprintf(why, why_len, "token file %s is longer than %u bytes", path, WATCH_TOKEN_MAX);
        return NULL;
    }
    while (n && strchr(" \t\r\n", buf[n - 1]))
        n--;
    buf[n] = '\0';
    if (!n) {
        hp_free(buf);
        snprintf(why, why_len, "token file %s is empty", path);
        return NULL;
    }
    return buf;
}

/* watch_auth: "Bearer TOKEN" (owned) from --token, --token-file, or (wss only) the kubeconfig
 * user's token or tokenFile; *out NULL when there is none. Returns nonzero (why set) when an
 * explicitly named source cannot be read. */
static int watch_auth(const struct watch_flags *fl, bool tls, char **out, char *why, size_t why_len)
{
    const struct kube_config_opts ko = {.kubeconfig = fl->kubeconfig, .context = fl->context};
    struct kube_config kc = {0};
    struct hp_err err = {0};
    char *token = NULL;
    size_t n;

    *out = NULL;
    if (fl->token) {
        token = hp_strdup(fl->token);
    } else if (fl->token_file) {
        if (!(token = read_token(fl->token_file, why, why_len)))
            return 1;
    } else if (tls) {
        /* never sent in clear: a ws:// server gets no token from the kubeconfig */
        if (kube_config_load(&ko, &kc, &err)) {
            if (fl->kubeconfig || fl->context) {
                snprintf(why, why_len, "%.200s", err.msg);
                return 1;
            }
            return 0; /* no kubeconfig: no token */
        }
        if (kc.token)
            token = hp_strdup(kc.token);
        else if (kc.token_file)
            token = read_token(kc.token_file, why, why_len);
        kube_config_release(&kc);
    }
    if (!token)
        return 0;
    n = strlen(token) + 8;
    *out = hp_malloc(n);
    if (*out)
        snprintf(*out, n, "Bearer %s", token);
    explicit_bzero(token, strlen(token));
    hp_free(token);
    return 0;
}

/* explain: why the connection failed, in the user's terms. */
static void explain(const struct watch *w, const struct watch_flags *fl, FILE *errout)
{
    if (w->http_status == 401)
        fprintf(errout,
                "hostpatrol watch: %s refused the connection: 401 Unauthorized (%s; pass "
                "--token, --token-file or a kubeconfig user with a token)\n",
                fl->server, w->auth ? "the token was not accepted" : "no bearer token sent");
    else if (w->http_status == 403)
        fprintf(errout,
                "hostpatrol watch: %s refused the connection: 403 Forbidden (the token's user "
                "may not get hostinspections.hostpatrol.io%s%s)\n",
                fl->server, fl->ns ? " in namespace " : "", fl->ns ? fl->ns : "");
    else if (w->http_status)
        fprintf(errout, "hostpatrol watch: %s refused the connection: HTTP %d\n", fl->server,
                w->http_status);
    else if (strstr(w->why, "certificate") || strstr(w->why, "verify") || strstr(w->why, "SSL"))
        fprintf(errout,
                "hostpatrol watch: cannot connect to %s: %s (is the server's certificate "
                "trusted? pass --ca-file, or --insecure-skip-tls-verify for its self-signed "
                "one)\n",
                fl->server, w->why);
    else
        fprintf(errout, "hostpatrol watch: cannot connect to %s: %s\n", fl->server, w->why);
}

static const struct lws_protocols watch_protocols[] = {
    {.name = "hostpatrol-watch", .callback = on_event}, {0}, /* terminator */
};

int hp_cmd_watch(int argc, char **argv, FILE *out, FILE *errout)
{
    struct watch_flags fl = {0};
    struct watch w = {.out = out, .errout = errout};
    struct lws_context_creation_info info;
    struct lws_client_connect_info ci;
    struct sigaction sa;
    char host[256], path[1024] = "/ws";
    int port = 0, status;
    bool tls = false;

    hp_buf_init(&w.msg, WATCH_MSG_MAX);
    status = watch_parse_flags(argc, argv, &fl, out, errout);
    if (status >= 0)
        return status;
    if (!parse_server(fl.server, host, sizeof(host), &port, &tls)) {
        fprintf(errout,
                "hostpatrol watch: --server '%s' must be wss://HOST:PORT or ws://HOST:PORT\n",
                fl.server);
        return HP_EXIT_USAGE;
    }
    if (watch_auth(&fl, tls, &w.auth, w.why, sizeof(w.why))) {
        fprintf(errout, "hostpatrol watch: %s\n", w.why);
        return HP_EXIT_USAGE;
    }
    w.why[0] = '\0';
    if ((fl.ns && !add_arg(path, sizeof(path), "namespace", fl.ns)) ||
        (fl.name && !add_arg(path, sizeof(path), "name", fl.name))) {
        fprintf(errout, "hostpatrol watch: --namespace or NAME is too long\n");
        return HP_EXIT_USAGE;
    }
    w.server = fl.server;
    w.json = !strcmp(fl.format, "json");

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    lws_set_log_level(0, NULL);
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = watch_protocols;
    info.user = &w;
    if (tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = fl.ca_file;
    }
    w.ctx = lws_create_context(&info);
    if (!w.ctx) {
        fprintf(errout, "hostpatrol watch: cannot create the websocket client\n");
        return HP_EXIT_FAIL;
    }
    memset(&ci, 0, sizeof(ci));
    ci.context = w.ctx;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.local_protocol_name = watch_protocols[0].name;
    if (tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (fl.insecure)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
        ci.alpn = "http/1.1";
    }
    status = HP_EXIT_FAIL;
    if (!lws_client_connect_via_info(&ci)) {
        fprintf(errout, "hostpatrol watch: cannot connect to %s\n", fl.server);
        goto out;
    }
    if (!w.json)
        fprintf(out, WATCH_TABLE_FMT, "TIME", "NAMESPACE", "NAME", "CHECK", "TARGET", "STATUS",
                "REASON");
    fflush(out);
    lws_sul_schedule(w.ctx, 0, &w.tick, on_tick, WATCH_TICK_MS * LWS_US_PER_MS);
    while (!stop_sig && !w.failed && !w.closed)
        if (lws_service(w.ctx, 0) < 0)
            break;
    if (stop_sig)
        status = HP_EXIT_OK;
    else if (w.failed && !w.established)
        explain(&w, &fl, errout);
    else if (w.close_why[0])
        fprintf(errout, "hostpatrol watch: %s closed the connection: %s\n", fl.server, w.close_why);
    else if (w.failed)
        fprintf(errout, "hostpatrol watch: connection to %s ended: %s\n", fl.server, w.why);
    else
        fprintf(errout, "hostpatrol watch: connection to %s closed\n", fl.server);
out:
    lws_sul_cancel(&w.tick);
    lws_context_destroy(w.ctx);
    hp_buf_release(&w.msg);
    if (w.auth) {
        explicit_bzero(w.auth, strlen(w.auth));
        hp_free(w.auth);
    }
    return status;
}

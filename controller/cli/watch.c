/* watch.c - `hostpatrol watch`: follow the controller's /ws stream of committed results and
 * print one line per result (table) or each message as it came (json), until SIGINT/SIGTERM
 * (exit 0) or the connection ends (exit 1). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/kube_config.h"
#include "hostpatrol/term_text.h"
#include "hostpatrol/ws_client.h"

#define WATCH_DEFAULT_SERVER "wss://127.0.0.1:8443"
#define WATCH_TOKEN_MAX      (64u * 1024)        /* a longer token file is refused */
#define WATCH_MSG_MAX        (64u * 1024 * 1024) /* a longer message is refused */
#define WATCH_TABLE_FMT      "%-20s  %-16s  %-24s  %-16s  %-24s  %-7s  %s\n"

struct watch_flags {
    const char *server, *ns, *name, *format;
    /* the secure server: who we are, and whom we trust */
    const char *token, *token_file, *kubeconfig, *context, *ca_file;
    bool insecure;
};

/* What the printer needs; only the main thread (the client's loop) touches it. */
struct watch {
    FILE *out, *errout;
    const char *server;
    bool json;
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

/* on_message: the client's on_message: print one complete message (arg: the struct watch). */
static void on_message(void *arg, const char *data, size_t len)
{
    struct watch *w = arg;
    json_t *m;
    const json_t *res, *dropped;
    size_t i;

    if (w->json) {
        fprintf(w->out, "%.*s\n", (int)len, data);
        fflush(w->out);
        return;
    }
    m = json_loadb(data, len, 0, NULL);
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
static void explain(const struct ws_client *w, const struct watch_flags *fl, FILE *errout)
{
    if (w->http_status == 401)
        fprintf(errout,
                "hostpatrol watch: %s refused the connection: 401 Unauthorized (%s; pass "
                "--token, --token-file or a kubeconfig user with a token)\n",
                fl->server, w->cfg.auth ? "the token was not accepted" : "no bearer token sent");
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

/* report: how the stream ended, on errout; the exit status */
static int report(const struct ws_client *c, const struct watch_flags *fl, FILE *errout)
{
    if (stop_sig)
        return HP_EXIT_OK;
    if (c->failed && !c->established)
        explain(c, fl, errout);
    else if (c->close_why[0])
        fprintf(errout, "hostpatrol watch: %s closed the connection: %s\n", fl->server,
                c->close_why);
    else if (c->failed)
        fprintf(errout, "hostpatrol watch: connection to %s ended: %s\n", fl->server, c->why);
    else
        fprintf(errout, "hostpatrol watch: connection to %s closed\n", fl->server);
    return HP_EXIT_FAIL;
}

/* prepare: the connection's settings from the flags: cfg, host and path filled in (*auth
 * owned); -1 to go on, else the exit status (the message printed) */
static int prepare(const struct watch_flags *fl, struct ws_client_config *cfg, char *host,
                   size_t host_size, char *path, size_t path_size, char **auth, FILE *errout)
{
    char why[256] = "";

    if (!ws_client_parse_url(fl->server, host, host_size, &cfg->port, &cfg->tls)) {
        fprintf(errout,
                "hostpatrol watch: --server '%s' must be wss://HOST:PORT or ws://HOST:PORT\n",
                fl->server);
        return HP_EXIT_USAGE;
    }
    if (watch_auth(fl, cfg->tls, auth, why, sizeof(why))) {
        fprintf(errout, "hostpatrol watch: %s\n", why);
        return HP_EXIT_USAGE;
    }
    if ((fl->ns && !ws_client_add_query(path, path_size, "namespace", fl->ns)) ||
        (fl->name && !ws_client_add_query(path, path_size, "name", fl->name))) {
        fprintf(errout, "hostpatrol watch: --namespace or NAME is too long\n");
        return HP_EXIT_USAGE;
    }
    cfg->host = host;
    cfg->path = path;
    cfg->auth = *auth;
    cfg->ca_file = fl->ca_file;
    cfg->insecure = fl->insecure;
    cfg->protocol = "hostpatrol-watch";
    cfg->max_message = WATCH_MSG_MAX;
    cfg->on_message = on_message;
    cfg->stop = &stop_sig;
    return -1;
}

int hp_cmd_watch(int argc, char **argv, FILE *out, FILE *errout)
{
    struct watch_flags fl = {0};
    struct watch w = {.out = out, .errout = errout};
    struct ws_client_config cfg = {.arg = &w};
    struct ws_client client;
    struct hp_err err = {0};
    struct sigaction sa;
    char host[256], path[1024] = "/ws", *auth = NULL;
    int status;

    status = watch_parse_flags(argc, argv, &fl, out, errout);
    if (status >= 0)
        return status;
    status = prepare(&fl, &cfg, host, sizeof(host), path, sizeof(path), &auth, errout);
    if (status >= 0)
        goto out;
    w.server = fl.server;
    w.json = !strcmp(fl.format, "json");

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    ws_client_init(&client, &cfg);
    status = HP_EXIT_FAIL;
    switch (ws_client_connect(&client, &err)) {
    case HP_OK:
        if (!w.json)
            fprintf(out, WATCH_TABLE_FMT, "TIME", "NAMESPACE", "NAME", "CHECK", "TARGET", "STATUS",
                    "REASON");
        fflush(out);
        ws_client_run(&client);
        status = report(&client, &fl, errout);
        break;
    case HP_ERR_UNAVAILABLE:
        fprintf(errout, "hostpatrol watch: cannot connect to %s\n", fl.server);
        break;
    default:
        fprintf(errout, "hostpatrol watch: cannot create the websocket client\n");
        break;
    }
    ws_client_release(&client);
out:
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        hp_free(auth);
    }
    return status;
}

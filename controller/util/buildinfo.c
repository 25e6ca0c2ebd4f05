/* buildinfo.c - version of hostpatrol and of the libraries it runs with. */
#include "hostpatrol/buildinfo.h"

#include <curl/curl.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "hp_version.h"

#ifndef HP_VERSION
#define HP_VERSION "0.0.0-dev"
#endif
#ifndef HP_COMMIT
#define HP_COMMIT "unknown"
#endif

void hp_buildinfo_get(struct hp_buildinfo *bi)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

    bi->version = HP_VERSION;
    bi->commit = HP_COMMIT;
    bi->compiler = "gcc " __VERSION__;
    bi->curl = cv && cv->version ? cv->version : "unknown";
    bi->jansson = jansson_version_str();
    bi->yaml = yaml_get_version_string();
    bi->lws = lws_get_library_version();
    bi->openssl = OpenSSL_version(OPENSSL_VERSION);
}

json_t *hp_buildinfo_json(const struct hp_buildinfo *bi)
{
    /* json_pack returns NULL (and leaks nothing) when an allocation fails. */
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}}", "version", bi->version,
                     "commit", bi->commit, "compiler", bi->compiler, "libraries", "libcurl",
                     bi->curl, "jansson", bi->jansson, "libyaml", bi->yaml, "libwebsockets",
                     bi->lws, "openssl", bi->openssl);
}

/* test-inspect_policy.c - unit tests of controller/inspect/inspect_policy.c: the admin's rules
 * (namespaces for node checks, cmdlineRegex, probe allow/deny, probes per run) refuse what they
 * should, name the field and the flag, and let the rest through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "hostpatrol/inspect_policy.h"

static void spec_of(const char *text, struct inspection_spec *s)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    struct hp_err err = {0};

    if (!j)
        fail_msg("bad test JSON: %s: %s", je.text, text);
    memset(s, 0, sizeof(*s));
    if (inspection_spec_parse(j, s, &err))
        fail_msg("spec did not parse: %s", err.msg);
    json_decref(j);
}

static void policy_of(struct inspect_policy *p, const char *ns, bool cmdline, const char *allow,
                      const char *deny, size_t max_probes)
{
    struct inspect_policy_flags f = {ns, cmdline, allow, deny, max_probes};
    struct hp_err err = {0};

    if (inspect_policy_init(p, &f, &err))
        fail_msg("policy did not parse: %s", err.msg);
}

static void node_checks_only_from_allowed_namespaces(void **state)
{
    struct inspect_policy p;
    struct inspection_spec s;
    struct hp_err err = {0};

    (void)state;
    policy_of(&p, "hostpatrol-system,ops", false, NULL, NULL, 0);
    spec_of("{\"checks\":[{\"name\":\"h\",\"http\":{\"url\":\"http://127.0.0.1/\"}},"
            "{\"name\":\"d\",\"disk\":{}}]}",
            &s);
    assert_int_equal(inspect_policy_admit(&p, "ops", &s, &err), HP_OK);
    assert_int_equal(inspect_policy_admit(&p, "hostpatrol-system", &s, &err), HP_OK);
    assert_int_equal(inspect_policy_admit(&p, "team-a", &s, &err), HP_ERR_AUTH);
    assert_string_equal(err.field, "spec.checks[1].disk");
    assert_non_null(strstr(err.msg, "namespace \"team-a\""));
    assert_non_null(strstr(err.msg, "--node-checks-namespaces: hostpatrol-system,ops"));
    assert_int_equal(inspect_policy_admit(&p, "op", &s, &err), HP_ERR_AUTH); /* no prefixes */
    inspection_spec_release(&s);
    /* nodeCondition reads the Node objects: the same rule */
    spec_of("{\"checks\":[{\"name\":\"r\",\"nodeCondition\":{\"type\":\"Ready\"}}]}", &s);
    assert_int_equal(inspect_policy_admit(&p, "team-a", &s, &err), HP_ERR_AUTH);
    inspection_spec_release(&s);
    /* endpoint checks alone are fine anywhere */
    spec_of("{\"checks\":[{\"name\":\"h\",\"http\":{\"url\":\"http://127.0.0.1/\"}}]}", &s);
    assert_int_equal(inspect_policy_admit(&p, "team-a", &s, &err), HP_OK);
    inspection_spec_release(&s);
    inspect_policy_release(&p);

    policy_of(&p, "*", false, NULL, NULL, 0);
    spec_of("{\"checks\":[{\"name\":\"d\",\"disk\":{}}]}", &s);
    assert_int_equal(inspect_policy_admit(&p, "anything", &s, &err), HP_OK);
    inspect_policy_release(&p);
    policy_of(&p, "", false, NULL, NULL, 0); /* none */
    assert_int_equal(inspect_policy_admit(&p, "default", &s, &err), HP_ERR_AUTH);
    assert_non_null(strstr(err.msg, "--node-checks-namespaces: none"));
    inspection_spec_release(&s);
    inspect_policy_release(&p);
}

static void cmdline_regex_needs_the_admins_consent(void **state)
{
    struct inspect_policy p;
    struct inspection_spec s;
    struct hp_err err = {0};

    (void)state;
    spec_of("{\"checks\":[{\"name\":\"n\",\"process\":{\"name\":\"sshd\"}},{\"name\":\"p\","
            "\"process\":{\"cmdlineRegex\":\"--db-password=a\"}}]}",
            &s);
    policy_of(&p, "*", false, NULL, NULL, 0);
    assert_int_equal(inspect_policy_admit(&p, "ops", &s, &err), HP_ERR_AUTH);
    assert_string_equal(err.field, "spec.checks[1].process.cmdlineRegex");
    assert_non_null(strstr(err.msg, "--allow-cmdline-regex"));
    inspect_policy_release(&p);
    policy_of(&p, "*", true, NULL, NULL, 0);
    assert_int_equal(inspect_policy_admit(&p, "ops", &s, &err), HP_OK);
    inspect_policy_release(&p);
    inspection_spec_release(&s);
}

static void metadata_and_link_local_are_denied_by_default(void **state)
{
    struct inspect_policy p;
    struct inspection_spec s;
    struct hp_err err = {0};
    char why[256];

    (void)state;
    policy_of(&p, "*", false, NULL, NULL, 0);
    spec_of("{\"checks\":[{\"name\":\"h\",\"http\":{\"url\":\"http://169.254.169.254/latest/"
            "meta-data/\"}}]}",
            &s);
    assert_int_equal(inspect_policy_admit(&p, "a", &s, &err), HP_ERR_AUTH);
    assert_string_equal(err.field, "spec.checks[0].http.url");
    assert_non_null(strstr(err.msg, "169.254.0.0/16"));
    inspection_spec_release(&s);
    spec_of("{\"targets\":[{\"name\":\"ok\",\"address\":\"10.0.0.1\"},{\"name\":\"md\","
            "\"address\":\"Metadata.Google.Internal.\"}],\"checks\":[{\"name\":\"t\",\"tcp\":"
            "{\"port\":80}}]}",
            &s);
    assert_int_equal(inspect_policy_admit(&p, "a", &s, &err), HP_ERR_AUTH);
    assert_string_equal(err.field, "spec.targets[1].address");
    inspection_spec_release(&s);
    assert_false(inspect_policy_host_ok(&p, "fe80::1", why, sizeof(why)));
    assert_false(inspect_policy_host_ok(&p, "[fd00:ec2::254]", why, sizeof(why)));
    assert_false(inspect_policy_host_ok(&p, "::ffff:169.254.169.254", why, sizeof(why)));
    assert_true(inspect_policy_host_ok(&p, "127.0.0.1", why, sizeof(why)));
    assert_true(inspect_policy_host_ok(&p, "example.com", why, sizeof(why)));
    /* the addresses embedding a denied one: NAT64, AWS's whole fd00:ec2::/32 */
    assert_false(inspect_policy_host_ok(&p, "64:ff9b::a9fe:a9fe", why, sizeof(why)));
    assert_false(inspect_policy_host_ok(&p, "fd00:ec2::23", why, sizeof(why)));
    assert_false(inspect_policy_host_ok(&p, "168.63.129.16", why, sizeof(why)));
    inspect_policy_release(&p);
    /* 0.0.0.0/8 and :: reach loopback: denying loopback denies them too */
    policy_of(&p, "*", false, NULL, "127.0.0.0/8,::1", 0);
    assert_false(inspect_policy_host_ok(&p, "0.0.0.0", why, sizeof(why)));
    assert_false(inspect_policy_host_ok(&p, "0.1.2.3", why, sizeof(why)));
    assert_false(inspect_policy_host_ok(&p, "::", why, sizeof(why)));
    assert_false(inspect_policy_host_ok(&p, "[::]", why, sizeof(why)));
    assert_true(inspect_policy_host_ok(&p, "10.0.0.1", why, sizeof(why)));
    inspect_policy_release(&p);
    /* the admin may clear the default */
    policy_of(&p, "*", false, NULL, "", 0);
    assert_true(inspect_policy_host_ok(&p, "169.254.169.254", why, sizeof(why)));
    inspect_policy_release(&p);
}

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return ss;
}

/* A name that resolves to a denied address is refused where the connection is made. */
static void resolved_addresses_are_checked(void **state)
{
    struct inspect_policy p;
    struct sockaddr_storage a;
    char why[256];

    (void)state;
    policy_of(&p, "*", false, "10.0.0.0/8,.corp.example,api.example.com", NULL, 0);
    a = addr("169.254.169.254");
    assert_false(
        inspect_policy_addr_ok(&p, (struct sockaddr *)&a, "evil.corp.example", why, sizeof(why)));
    assert_non_null(strstr(why, "--probe-deny 169.254.0.0/16"));
    a = addr("10.9.8.7");
    assert_true(inspect_policy_addr_ok(&p, (struct sockaddr *)&a, NULL, why, sizeof(why)));
    a = addr("192.168.1.1");
    assert_false(
        inspect_policy_addr_ok(&p, (struct sockaddr *)&a, "other.example", why, sizeof(why)));
    assert_non_null(strstr(why, "--probe-allow"));
    /* a name the allow list names allows its addresses; subdomains of a .domain rule too */
    assert_true(
        inspect_policy_addr_ok(&p, (struct sockaddr *)&a, "db.corp.example", why, sizeof(why)));
    assert_true(
        inspect_policy_addr_ok(&p, (struct sockaddr *)&a, "API.example.com.", why, sizeof(why)));
    assert_false(
        inspect_policy_addr_ok(&p, (struct sockaddr *)&a, "xcorp.example", why, sizeof(why)));
    a = addr("::ffff:10.1.1.1"); /* IPv4-mapped: judged as the IPv4 address */
    assert_true(inspect_policy_addr_ok(&p, (struct sockaddr *)&a, NULL, why, sizeof(why)));
    inspect_policy_release(&p);
}

static void probes_per_run_are_capped(void **state)
{
    struct inspect_policy p;
    struct inspection_spec s;
    struct hp_err err = {0};

    (void)state;
    spec_of("{\"targets\":[{\"name\":\"a\",\"address\":\"10.0.0.1\"},{\"name\":\"b\","
            "\"address\":\"10.0.0.2\"},{\"name\":\"c\",\"address\":\"10.0.0.3\"}],\"checks\":["
            "{\"name\":\"t\",\"tcp\":{\"port\":80}},{\"name\":\"s\",\"tls\":{\"port\":443}},{"
            "\"name\":\"h\","
            "\"http\":{\"url\":\"http://10.0.0.1/\"}}]}",
            &s);
    assert_int_equal(inspect_policy_probes(&s), 7);
    policy_of(&p, "*", false, NULL, NULL, 7);
    assert_int_equal(inspect_policy_admit(&p, "a", &s, &err), HP_OK);
    inspect_policy_release(&p);
    policy_of(&p, "*", false, NULL, NULL, 6);
    assert_int_equal(inspect_policy_admit(&p, "a", &s, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "spec.targets");
    assert_non_null(strstr(err.msg, "7 probes"));
    assert_non_null(strstr(err.msg, "--max-probes-per-inspection"));
    inspect_policy_release(&p);
    inspection_spec_release(&s);
}

static void bad_flags_name_the_flag_and_rule(void **state)
{
    struct inspect_policy p;
    struct hp_err err = {0};
    struct inspect_policy_flags f = {"*", false, "10.0.0.0/33", NULL, 0};

    (void)state;
    assert_int_equal(inspect_policy_init(&p, &f, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "--probe-allow");
    assert_non_null(strstr(err.msg, "10.0.0.0/33"));
    inspect_policy_release(&p);
    f = (struct inspect_policy_flags){"*", false, NULL, "bad name!", 0};
    assert_int_equal(inspect_policy_init(&p, &f, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "--probe-deny");
    inspect_policy_release(&p);
    f = (struct inspect_policy_flags){"ops,Team_A", false, NULL, NULL, 0};
    assert_int_equal(inspect_policy_init(&p, &f, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "--node-checks-namespaces");
    assert_non_null(strstr(err.msg, "Team_A"));
    inspect_policy_release(&p);
    inspect_policy_release(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(node_checks_only_from_allowed_namespaces),
        cmocka_unit_test(cmdline_regex_needs_the_admins_consent),
        cmocka_unit_test(metadata_and_link_local_are_denied_by_default),
        cmocka_unit_test(resolved_addresses_are_checked),
        cmocka_unit_test(probes_per_run_are_capped),
        cmocka_unit_test(bad_flags_name_the_flag_and_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

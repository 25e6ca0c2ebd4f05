#!/usr/bin/env bash
# test-cli.sh - the hostpatrol binary's command line: help, version, errors that name the input.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

test_help_lists_the_subcommands() {
  local out
  out=$("$HOSTPATROL" --help) || t_fail "--help exited $?"
  for c in controller agent version; do
    grep -qE "^  $c " <<< "$out" || t_fail "subcommand $c not in --help: $out"
  done
}

test_no_arguments_is_a_usage_error() {
  local rc=0
  "$HOSTPATROL" > /dev/null 2>&1 || rc=$?
  t_eq "$rc" 2
}

test_unknown_command_is_named() {
  local out rc=0
  out=$("$HOSTPATROL" frobnicate 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "unknown command 'frobnicate'"
}

test_version_text_and_json_agree() {
  local text json
  text=$("$HOSTPATROL" version) || t_fail "version exited $?"
  json=$("$HOSTPATROL" version -o json) || t_fail "version -o json exited $?"
  t_contains "$text" "hostpatrol $(jq -r .version <<< "$json")"
  t_contains "$text" "libcurl $(jq -r .libraries.libcurl <<< "$json")"
  t_eq "$(jq -r .libraries.libcurl <<< "$json")" "$(curl-config --version | awk '{print $2}')" \
    "the libcurl the binary runs with"
  t_eq "$(jq -r .version <<< "$json")" \
    "$(git -C "$HP_H_ROOT" describe --tags --always --dirty 2> /dev/null || echo 0.0.0-dev)" \
    "version is git describe of the build"
}

test_version_rejects_a_bad_output_format() {
  local out rc=0
  out=$("$HOSTPATROL" version -o yaml 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--output 'yaml' is not one of text, json"
}

test_planned_commands_say_so_and_fail() {
  local out rc=0
  out=$("$HOSTPATROL" controller 2>&1) || rc=$?
  t_eq "$rc" 1
  t_contains "$out" "not in this build yet"
}

t_main

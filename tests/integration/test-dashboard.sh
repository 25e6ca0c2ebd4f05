#!/usr/bin/env bash
# test-dashboard.sh - the live dashboard at / in a REAL browser (Debian's chromium, headless,
# driven through chromedriver's WebDriver HTTP API with curl + jq) against a running controller
# on a REAL kube-apiserver + etcd: the page and its assets are served by the binary with a strict
# Content-Security-Policy and nothing from elsewhere; an unauthenticated visitor sees the token
# prompt and no data (and /ws answers 401); a token of another namespace sees nothing of ours; a
# token that may read our namespace sees the result OK, then CRIT without a reload when the
# endpoint flips 200 -> 503; a standby replica (leader election) says it is one; --dashboard=false
# answers / with 404; no token reaches the controllers' logs. Screenshots are kept in
# build/artifacts/test-dashboard/ (HP_ARTIFACT_DIR), and the good one is docs/dashboard.png's
# source (HP_DASH_SCREENSHOT=FILE copies it there).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HOSTPATROL
T_TIMEOUT=120
ART=${HP_ARTIFACT_DIR:-$HP_H_ROOT/build/artifacts/test-dashboard}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}

setup() {
  [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ] || { echo "chromium and chromium-driver are needed (make deps)"; return 1; }
  setup_cluster hp-dash hp-other || return 1
  mkdir -p "$ART" || return 1
  local ns
  # viewer: get hostinspections in hp-dash; other: only in hp-other
  kc -n hp-dash create serviceaccount viewer > /dev/null || return 1
  kc -n hp-other create serviceaccount other > /dev/null || return 1
  for ns in hp-dash hp-other; do
    kc -n $ns create role hi-reader --verb=get,list,watch --resource=hostinspections.hostpatrol.io > /dev/null || return 1
  done
  kc -n hp-dash create rolebinding viewer --role=hi-reader --serviceaccount=hp-dash:viewer > /dev/null || return 1
  kc -n hp-other create rolebinding other --role=hi-reader --serviceaccount=hp-other:other > /dev/null || return 1
  kc -n hp-dash create token viewer --duration=1h > "$HP_H_DIR/token-viewer" || return 1
  # reader: /metrics only
  kc -n hp-dash create serviceaccount reader > /dev/null || return 1
  kc create clusterrole hp-dash-metrics --verb=get --non-resource-url=/metrics > /dev/null || return 1
  kc create clusterrolebinding hp-dash-metrics --clusterrole=hp-dash-metrics --serviceaccount=hp-dash:reader > /dev/null || return 1
  kc -n hp-dash create token reader --duration=1h > "$HP_H_DIR/token-reader" || return 1
  kc -n hp-other create token other --duration=1h > "$HP_H_DIR/token-other" || return 1
  # the endpoint under watch: 200, or 503 while $HP_H_DIR/flip exists
  WEB_PORT=$(hp_h_port)
  cat > "$HP_H_DIR/flipper.py" << 'PY'
import http.server, os, sys
flip = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 503 if os.path.exists(flip) else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
  hp_h_spawn flipper python3 "$HP_H_DIR/flipper.py" "$WEB_PORT" "$HP_H_DIR/flip"
  METRICS_PORT=$(hp_h_port)
  start_hp -w controller controller --log-format text --metrics-bind-address "127.0.0.1:$METRICS_PORT"
  hp_h_wait controller "$HP_H_LASTPID" curl -sk -o /dev/null "https://127.0.0.1:$METRICS_PORT/" || return 1
  apply << YAML || return 1
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: web, namespace: hp-dash}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: home, http: {url: "http://127.0.0.1:$WEB_PORT/", expectStatus: [200]}}
---
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: elsewhere, namespace: hp-other}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: home, http: {url: "http://127.0.0.1:$WEB_PORT/", expectStatus: [200]}}
YAML
  WD_PORT=$(hp_h_port)
  hp_h_spawn chromedriver "$CHROMEDRIVER" --port="$WD_PORT" --allowed-ips=127.0.0.1 --log-path="$HP_H_DIR/chromedriver.log"
  hp_h_wait chromedriver "$HP_H_LASTPID" curl -sf "http://127.0.0.1:$WD_PORT/status" || return 1
}

URL() { echo "https://127.0.0.1:$METRICS_PORT/"; }

t_on_fail() {
  show_tails 8 "$HP_H_DIR"/controller.log "$HP_H_DIR"/chromedriver.log
  [ -n "${SID:-}" ] && shot "failed-$(date +%s)" && echo "# screenshot of the failure in $ART"
}

# wd METHOD PATH [JSON]: one WebDriver call; prints its JSON answer
wd() {
  curl -sS --max-time 60 -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} \
    "http://127.0.0.1:$WD_PORT$2"
}
# browser: a new headless Chromium session (fresh profile: empty sessionStorage) in SID
browser() {
  local caps
  caps=$(jq -n --arg bin "$CHROMIUM" --arg dir "$HP_H_DIR/profile-$RANDOM$RANDOM" '{capabilities: {alwaysMatch: {
    browserName: "chrome", acceptInsecureCerts: true,
    "goog:chromeOptions": {binary: $bin, args: ["--headless", "--no-sandbox", "--disable-gpu",
      "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,860", "--ignore-certificate-errors",
      ("--user-data-dir=" + $dir)]}}}}')
  SID=$(wd POST /session "$caps" | jq -r '.value.sessionId // empty')
  [ -n "$SID" ] || t_fail "no WebDriver session"
}
browser_quit() { [ -n "${SID:-}" ] && wd DELETE "/session/$SID" > /dev/null; SID=; }
go() { wd POST "/session/$SID/url" "$(jq -n --arg u "$1" '{url: $u}')" > /dev/null; }
# js SCRIPT [ARG]: run SCRIPT in the page (arguments[0] = ARG), print its value (JSON)
js() {
  wd POST "/session/$SID/execute/sync" "$(jq -n --arg s "$1" --arg a "${2:-}" '{script: $s, args: [$a]}')" | jq -c '.value'
}
# shot NAME: a screenshot of the page into $ART/NAME.png
shot() { wd GET "/session/$SID/screenshot" | jq -r '.value' | base64 -d > "$ART/$1.png"; }
# view: what the page shows, as JSON
view() {
  js "const \$ = (id) => document.getElementById(id);
    return {conn: \$('conn').dataset.state, login: !\$('login').hidden, main: !\$('main').hidden,
      msg: \$('login-msg').textContent,
      results: [...document.querySelectorAll('#results tbody tr')].map((tr) => tr.dataset.key + ' ' + tr.dataset.status),
      inspections: [...document.querySelectorAll('#inspections tbody tr')].map((tr) => tr.dataset.key + ' ' + tr.dataset.ready + ' ' + tr.dataset.degraded),
      text: document.body.innerText};"
}
# view_is JQ-EXPR: the page's view satisfies the jq boolean expression
view_is() { view | jq -e "$1" > /dev/null; }
# login TOKEN-NAME: type the token into the prompt and connect
login() {
  js "document.getElementById('token').value = arguments[0];
      document.getElementById('login-form').requestSubmit(); return true;" "$(cat "$HP_H_DIR/token-$1")" > /dev/null
}

test_assets_are_served_by_the_binary_with_a_strict_policy() {
  local h p
  h=$(curl -sk -D - -o "$HP_H_DIR/index.html" "$(URL)")
  t_match "$(head -n1 <<< "$h")" " 200"
  t_match "$h" "content-type: text/html; charset=utf-8"
  t_match "$h" "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';"
  t_match "$h" "connect-src 'self'"
  t_match "$h" "x-content-type-options: nosniff"
  t_match "$h" "cache-control: no-cache"
  t_match "$(curl -sk -D - -o /dev/null "$(URL)dashboard.js")" "content-type: text/javascript"
  t_match "$(curl -sk -D - -o /dev/null "$(URL)dashboard.css")" "content-type: text/css"
  # the page as served is the source file, and nothing comes from elsewhere or runs inline
  t_ok cmp -s "$HP_H_DIR/index.html" "$HP_H_ROOT/controller/server/dashboard/index.html"
  for p in index.html dashboard.js dashboard.css; do
    t_not grep -Eq '(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/' "$HP_H_ROOT/controller/server/dashboard/$p"
    t_not grep -q 'innerHTML\|outerHTML\|insertAdjacentHTML\|document.write\|eval(' "$HP_H_ROOT/controller/server/dashboard/$p"
  done
  t_not grep -Eq '<script>|<script [^>]*>[^<]|<style| on[a-z]+=' "$HP_H_DIR/index.html"
  # /ws without a token: 401; with the dashboard's protocol the upgrade is accepted (a browser
  # cannot send the header: the token must be the first message) but nothing comes without one
  h=$(curl -sk -i --max-time 5 -H "Connection: Upgrade" -H "Upgrade: websocket" \
    -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" "$(URL)ws")
  t_match "$(head -n1 <<< "$h")" " 401 "
  h=$(curl -sk -i --max-time 4 -H "Connection: Upgrade" -H "Upgrade: websocket" \
    -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" \
    -H "Sec-WebSocket-Protocol: hostpatrol.dashboard.v1" "$(URL)ws")
  t_match "$(head -n1 <<< "$h")" " 101 "
  t_not grep -q 'namespace' <<< "$h"
}

test_an_unauthenticated_visitor_sees_the_prompt_and_nothing_else() {
  browser
  go "$(URL)"
  t_eventually 20 view_is '.conn == "refused" and .login and (.main | not)'
  local v
  v=$(view)
  t_eq "$(jq '.results | length' <<< "$v")" 0 "result rows without a token"
  t_eq "$(jq '.inspections | length' <<< "$v")" 0 "inspection rows without a token"
  t_not grep -q 'hp-dash\|hp-other' <<< "$(jq -r .text <<< "$v")"
  t_contains "$(jq -r .msg <<< "$v")" "needs a bearer token"
  shot unauthenticated
  # a bad token: refused, still nothing
  js "document.getElementById('token').value = 'bogus'; document.getElementById('login-form').requestSubmit(); return 1;" > /dev/null
  t_eventually 20 view_is '.conn == "refused" and .login and (.msg | contains("refused"))'
  t_eq "$(view | jq '.results | length')" 0 "result rows with a bad token"
  browser_quit
}

test_a_token_sees_the_result_and_its_change_live() {
  rm -f "$HP_H_DIR/flip"
  browser
  go "$(URL)"
  t_eventually 20 view_is '.login'
  login viewer
  t_eventually 30 view_is '.conn == "live" and (.results | index("hp-dash/web/home/- OK"))'
  t_eventually 30 view_is '.inspections | index("hp-dash/web True False")'
  # only what the token may read: never the other namespace's
  t_not grep -q 'hp-other' <<< "$(view)"
  shot live-ok
  # what the controller keeps for it: each HostInspection's state and latest run (2 of each)
  local m kept bytes
  m=$(curl -sk -H "Authorization: Bearer $(cat "$HP_H_DIR/token-reader")" "$(URL)metrics")
  kept=$(awk '$1 == "hostpatrol_dashboard_kept_messages" {print $2}' <<< "$m")
  bytes=$(awk '$1 == "hostpatrol_dashboard_kept_bytes" {print $2}' <<< "$m")
  t_eq "$kept" 4 "kept messages (2 HostInspections: state and latest run)"
  t_ge "$(awk '$1 == "hostpatrol_ws_clients" {print $2}' <<< "$m")" 1 "websocket clients"
  echo "# dashboard state kept: $kept messages, $bytes bytes for 2 HostInspections of one http check"
  # the endpoint fails: the same page (no reload) shows it CRIT
  js "window.__same_page = 42; return 1;" > /dev/null
  touch "$HP_H_DIR/flip"
  t_eventually 30 view_is '.results | index("hp-dash/web/home/- CRIT")'
  t_eq "$(js 'return window.__same_page;')" 42 "the page was not reloaded"
  t_eventually 30 view_is '.inspections | index("hp-dash/web True True")'
  t_contains "$(view | jq -r .text)" "status 503"
  shot live-crit
  # and back
  rm -f "$HP_H_DIR/flip"
  t_eventually 30 view_is '.results | index("hp-dash/web/home/- OK")'
  # the filters: a status filter hides the OK row, a namespace filter that matches nothing hides all
  js "const s = document.getElementById('f-status'); s.value = 'CRIT'; s.dispatchEvent(new Event('input')); return 1;" > /dev/null
  t_eventually 5 view_is '.results | length == 0'
  js "const s = document.getElementById('f-status'); s.value = ''; s.dispatchEvent(new Event('input'));
      const n = document.getElementById('f-ns'); n.value = 'nope'; n.dispatchEvent(new Event('input')); return 1;" > /dev/null
  t_eventually 5 view_is '(.results | length == 0) and (.inspections | length == 0)'
  # a new tab of the same session (reconnect): the snapshot brings the state back at once
  go "$(URL)"
  t_eventually 15 view_is '.conn == "live" and (.results | index("hp-dash/web/home/- OK"))'
  shot live-ok-again
  [ -n "${HP_DASH_SCREENSHOT:-}" ] && cp "$ART/live-crit.png" "$HP_DASH_SCREENSHOT"
  browser_quit
}

test_a_token_of_another_namespace_sees_nothing_of_ours() {
  browser
  go "$(URL)"
  t_eventually 20 view_is '.login'
  login other
  t_eventually 30 view_is '.conn == "live" and (.results | index("hp-other/elsewhere/home/- OK"))'
  sleep 5 # several runs of ours (interval 2 s) land meanwhile
  t_not grep -q 'hp-dash' <<< "$(view)"
  shot other-namespace
  # deleted: its rows leave the open page (finalizer cleanup, then the watch's DELETED)
  kc -n hp-other delete hostinspection elsewhere --wait=false > /dev/null
  t_eventually 30 view_is '(.results | length == 0) and (.inspections | length == 0)'
  browser_quit
}

# le_controller NAME PORT: a controller electing a leader through the Lease hp-dash/dash-le,
# reconciling namespace hp-le (empty)
le_controller() {
  start_hp -w "$1" controller --namespace hp-le --log-level info --log-format text --identity "$1" \
    --leader-elect --leader-elect-namespace hp-dash --leader-elect-id dash-le \
    --metrics-bind-address "127.0.0.1:$2"
}
standby_shown() { view | jq -e '.conn == "live"' > /dev/null && js "return !document.getElementById('standby').hidden;"; }

test_a_standby_replica_says_so() {
  local pa pb
  pa=$(hp_h_port); pb=$(hp_h_port)
  le_controller le-a "$pa"
  t_eventually 30 grep -q "became leader" "$HP_H_DIR/le-a.log"
  le_controller le-b "$pb"
  t_eventually 20 grep -q "waiting for leadership" "$HP_H_DIR/le-b.log"
  browser
  go "https://127.0.0.1:$pb/"
  t_eventually 20 view_is '.login'
  login viewer
  t_eventually 20 view_is '.conn == "live"'
  t_eventually 10 test "$(standby_shown)" = true
  t_contains "$(view | jq -r .text)" "is a standby"
  shot standby
  go "https://127.0.0.1:$pa/" # another origin: its own sessionStorage, the token again
  t_eventually 20 view_is '.login'
  login viewer
  t_eventually 20 view_is '.conn == "live"'
  t_eq "$(standby_shown)" false "the standby notice on the leader's page"
  browser_quit
}

test_dashboard_false_serves_no_page() {
  local port pid
  port=$(hp_h_port)
  start_hp -w nodash controller --namespace hp-none --log-level info --log-format text --dashboard=false \
    --metrics-bind-address "127.0.0.1:$port"
  pid=$HP_H_LASTPID
  t_eventually 20 curl -sk -o /dev/null "https://127.0.0.1:$port/metrics"
  t_eq "$(http_code "https://127.0.0.1:$port/")" 404 "/ with --dashboard=false"
  t_eq "$(http_code "https://127.0.0.1:$port/dashboard.js")" 404
  t_eq "$(http_code "https://127.0.0.1:$port/metrics")" 401 "/metrics still served"
  kill -TERM "$pid"
  local out
  out=$("$HP" controller --dashboard=maybe 2>&1)
  t_eq "$?" 2
  t_contains "$out" "--dashboard 'maybe' is not true or false"
}

test_tokens_are_never_logged() {
  # every log but chromedriver's (it records the WebDriver commands: the test typing the token)
  t_no_token_logged chromedriver.log
}

t_main

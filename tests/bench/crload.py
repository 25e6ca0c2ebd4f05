#!/usr/bin/env python3
"""crload.py - load generator for the controller benchmark (tests/bench/controller.sh).

Creates HostInspections through the REAL apiserver (admin client certificate) while a watch on
the same namespace notes, with millisecond precision, when each one first shows Ready=True.
Prints one JSON object: counts, create->Ready latency p50/p90/p99/max in ms.

  crload.py --server URL --ca F --cert F --key F --ns NS --prefix P --count N --rate R
            --url HEALTH_URL [--wait S]
rate 0 means as fast as one connection can create them.
"""
import argparse
import http.client
import json
import ssl
import sys
import threading
import time
import urllib.parse


def conn(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    u = urllib.parse.urlparse(args.server)
    return http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)


def main():
    p = argparse.ArgumentParser()
    for f in ("server", "ca", "cert", "key", "ns", "prefix", "url"):
        p.add_argument("--" + f, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--wait", type=float, default=120)
    args = p.parse_args()
    base = "/apis/hostpatrol.io/v1alpha1/namespaces/%s/hostinspections" % args.ns

    c = conn(args)
    c.request("GET", base + "?limit=1")
    rv = json.loads(c.getresponse().read())["metadata"]["resourceVersion"]

    created, ready = {}, {}
    lock = threading.Lock()
    done = threading.Event()

    def watch():
        w = conn(args)
        w.timeout = None
        w.request("GET", base + "?watch=1&resourceVersion=%s&timeoutSeconds=%d" % (rv, int(args.wait) + 600))
        r = w.getresponse()
        for line in r:
            t = time.time()
            ev = json.loads(line)
            o = ev.get("object", {})
            name = o.get("metadata", {}).get("name", "")
            if not name.startswith(args.prefix):
                continue
            conds = o.get("status", {}).get("conditions", [])
            if any(x.get("type") == "Ready" and x.get("status") == "True" for x in conds):
                with lock:
                    ready.setdefault(name, t)
                    if len(ready) >= args.count:
                        done.set()
                        return

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    time.sleep(0.5)
    start = time.time()
    for i in range(args.count):
        name = "%s%05d" % (args.prefix, i)
        body = json.dumps({
            "apiVersion": "hostpatrol.io/v1alpha1", "kind": "HostInspection",
            "metadata": {"name": name, "namespace": args.ns},
            "spec": {"interval": "1h", "timeout": "5s",
                     "checks": [{"name": "health", "http": {"url": args.url}}]}})
        if args.rate > 0:
            due = start + i / args.rate
            if due > time.time():
                time.sleep(due - time.time())
        t = time.time()
        c.request("POST", base, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            print("create %s: HTTP %d" % (name, r.status), file=sys.stderr)
            sys.exit(1)
        with lock:
            created[name] = t
    create_s = time.time() - start
    done.wait(args.wait)
    with lock:
        lat = sorted((ready[n] - created[n]) * 1000 for n in created if n in ready)
    def pct(q):
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None
    print(json.dumps({"created": len(created), "ready": len(lat), "create_s": round(create_s, 1),
                      "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
                      "max_ms": round(lat[-1], 1) if lat else None}))
    return 0 if len(lat) == len(created) else 1


if __name__ == "__main__":
    sys.exit(main())

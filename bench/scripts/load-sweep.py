#!/usr/bin/env python3
"""Runs tern-load against a freshly started `tern serve` at rising video bitrates, to find the
saturation point of a scenario (the highest egress rate with no loss and no setup failure), then
measures at 50% and 90% of it. Prints one Markdown table row per run and writes every run's
JSON next to OUT_DIR.

usage: load-sweep.py OUT_DIR NAME -- TERN_LOAD_ARGS...   (without --video/--json/--url/--token)
environment: SWEEP_RATES (kbps list, default 1500,3000,6000,12000,24000,48000),
             SWEEP_DURATION (search runs, default 6s), FINAL_DURATION (default 20s)
"""
import json, os, subprocess, sys, time, signal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TERN = os.path.join(ROOT, "target/release/tern")
LOAD = os.path.join(ROOT, "target/release/tern-load")
SECRET = "load-sweep-secret"


def start_relay(out_dir):
    cfg = os.path.join(out_dir, "relay.toml")
    with open(cfg, "w") as f:
        f.write('[http]\nlisten = "127.0.0.1:0"\n[media]\nport_base = 0\nplacement = "unbound"\n'
                '[limits]\nsessions_per_ip = 10000\nrequests_per_minute = 1000000\n'
                'max_subscribers_per_stream = 10000\n')
    env = dict(os.environ, TERN_JWT_SECRET=SECRET)
    p = subprocess.Popen([TERN, "serve", "--config", cfg], env=env, stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True)
    for line in p.stderr:
        if "tern: serving" in line:
            url = "http://" + line.split("http://")[1].split()[0]
            return p, url, env
    raise SystemExit("relay did not start")


def run(out_dir, name, rate, duration, extra):
    relay, url, env = start_relay(out_dir)
    try:
        token = subprocess.check_output([TERN, "token", "--room", "load", "--publish",
                                         "--subscribe"], env=env, text=True).strip()
        js = os.path.join(out_dir, f"{name}-{rate}kbps-{duration}.json")
        subprocess.run([LOAD, "--url", url, "--token", token, "--video", f"{rate}kbps",
                        "--duration", duration, "--relay-pid", str(relay.pid), "--json", js,
                        "--quiet"] + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(js) as f:
            return json.load(f)
    finally:
        relay.send_signal(signal.SIGINT)
        relay.wait()


def row(name, rate, d):
    lat = d["latency_us"]
    return (f"| {name} | {rate} | {d['egress_pps']:.0f} | {d['loss_ratio']*100:.3f}% | "
            f"{lat['p50']} | {lat['p90']} | {lat['p99']} | {lat['p999']} | {lat['max']} | "
            f"{d.get('relay_cpu_ns_per_egress', 0):.0f} | {d['subscribers_failed']} |")


def ok(d):
    return d["subscribers_failed"] == 0 and d["loss_ratio"] == 0 and d["egress_pps"] > 0


def main():
    out_dir, name = sys.argv[1], sys.argv[2]
    extra = sys.argv[sys.argv.index("--") + 1:]
    os.makedirs(out_dir, exist_ok=True)
    rates = [int(r) for r in os.environ.get("SWEEP_RATES", "1500,3000,6000,12000,24000,48000").split(",")]
    search, final = os.environ.get("SWEEP_DURATION", "6s"), os.environ.get("FINAL_DURATION", "20s")
    print("| run | video kbps | egress pps | loss | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | relay ns/egress | failed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    best, worst = None, None
    for rate in rates:
        d = run(out_dir, name, rate, search, extra)
        print(row(f"{name} search", rate, d), flush=True)
        if not ok(d):
            worst = rate
            break
        best = rate
    # Two bisection steps between the last clean rate and the first lossy one.
    for _ in range(2):
        if best is None or worst is None:
            break
        rate = (best + worst) // 2
        d = run(out_dir, name, rate, search, extra)
        print(row(f"{name} search", rate, d), flush=True)
        if ok(d):
            best = rate
        else:
            worst = rate
    if best is None:
        print(f"| {name} | no clean rate | | | | | | | | | |")
        return
    for frac in (0.5, 0.9):
        rate = max(1, int(best * frac))
        d = run(out_dir, name, rate, final, extra)
        print(row(f"{name} {int(frac*100)}% of {best}", rate, d), flush=True)


if __name__ == "__main__":
    main()

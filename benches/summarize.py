#!/usr/bin/env python3
"""Turns criterion's estimates (target/criterion) into the markdown tables of
BENCHMARKS.md: GB/s of payload, frames (or calls) per second, and each
crate's ratio to wsproto. Uses the median point estimate of each benchmark.

    python3 benches/summarize.py [CRITERION_DIR]   # default: $CARGO_TARGET_DIR/criterion or target/criterion
    python3 benches/summarize.py --echo TABLE.md   # side-by-side msg/s from benches/echo.sh's table
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "--echo" else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")

# Frames per decode iteration, as in benches/benches/codec.rs (SIZES).
FRAMES = {16: 4096, 1024: 512, 65536: 16, 1048576: 4}


def load():
    results = {}
    for dirpath, _, files in os.walk(root):
        if "benchmark.json" not in files or not dirpath.endswith("new"):
            continue
        bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
        est = json.load(open(os.path.join(dirpath, "estimates.json")))
        ns = est["median"]["point_estimate"]
        thr = bench.get("throughput") or {}
        results[(bench["group_id"], bench["function_id"], bench.get("value_str"))] = (ns, thr)
    return results


def size_label(s):
    s = int(s)
    if s >= 1 << 20:
        return f"{s >> 20} MiB"
    if s >= 1024:
        return f"{s >> 10} KiB"
    return f"{s} B"


def rate(count, ns):
    per_s = count / (ns * 1e-9)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_s >= div:
            return f"{per_s / div:.2f} {unit}"
    return f"{per_s:.0f}"


def table(results, group, base, per_frame):
    rows = sorted({f for (g, f, _) in results if g == group})
    sizes = sorted({int(v) for (g, _, v) in results if g == group and v}, key=int)
    if not rows:
        return
    print(f"\n### {group}\n")
    head = "| crate | " + " | ".join(size_label(s) for s in sizes) + " |"
    print(head)
    print("|---|" + "---:|" * len(sizes))
    order = [base] + [r for r in rows if r != base]
    for f in order:
        cells = []
        for s in sizes:
            key = (group, f, str(s))
            if key not in results:
                cells.append("–")
                continue
            ns, thr = results[key]
            nbytes = thr.get("Bytes", 0)
            frames = FRAMES.get(s, 1) if per_frame else 1
            gbs = nbytes / ns  # bytes per ns == GB/s
            cell = f"{gbs:.2f} GB/s, {rate(frames, ns)}fr/s, {ns / frames:.1f} ns/fr"
            bkey = (group, base, str(s))
            if f != base and bkey in results:
                cell += f" (×{results[bkey][0] / ns:.2f})"
            cells.append(cell)
        print(f"| {f} | " + " | ".join(cells) + " |")
    print(f"\n(×r = that crate's throughput / {base}'s; above 1 means faster than {base}.)")


def flat(results, group, base):
    rows = sorted((f, v) for (g, f, v) in results if g == group)
    if not rows:
        return
    print(f"\n### {group}\n")
    print("| benchmark | time | rate | ratio to " + base + " |")
    print("|---|---:|---:|---:|")
    for f, v in rows:
        ns, thr = results[(group, f, v)]
        name = f if v is None else f"{f}/{v}"
        if "Bytes" in thr:
            r = f"{thr['Bytes'] / ns:.2f} GB/s"
        else:
            r = f"{rate(thr.get('Elements', 1), ns)}/s"
        b = results.get((group, base, v))
        ratio = f"×{b[0] / ns:.2f}" if b else ""
        print(f"| {name} | {ns:.1f} ns | {r} | {ratio} |")


def main():
    results = load()
    for group in ("decode_binary", "decode_text"):
        table(results, group, "wsproto_inplace", True)
    for group in ("encode_server", "encode_client"):
        table(results, group, "wsproto", False)
    flat(results, "handshake", "wsproto")
    # benches/deflate.rs: one message client -> server, "fr/s" = messages/s.
    table(results, "deflate_roundtrip", "plain", False)
    utf = {k: v for k, v in results.items() if k[0] == "utf8"}
    if utf:
        print("\n### utf8\n")
        print("| validator | input | 16 B | 1 KiB | 64 KiB |")
        print("|---|---|---:|---:|---:|")
        names = sorted({f for (_, f, _) in utf})
        for f in names:
            who, _, kind = f.rpartition("_")
            cells = []
            for s in ("16", "1024", "65536"):
                if ("utf8", f, s) in utf:
                    ns, thr = utf[("utf8", f, s)]
                    cells.append(f"{thr['Bytes'] / ns:.2f} GB/s")
                else:
                    cells.append("–")
            print(f"| {who} | {kind} | " + " | ".join(cells) + " |")


def echo(path):
    """The loopback table of benches/echo.sh, one row per workload: each
    server's msg/s, the better wsproto driver over fastwebsockets and over
    tokio-tungstenite."""
    rate = {}
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 8 or not cells[1].isdigit():
            continue
        server, size, conns, inflight, msgs = cells[:5]
        rate[(int(size), int(conns), int(inflight), server)] = float(msgs)
    servers = ["wsproto-blocking", "wsproto-tokio", "tungstenite", "fastwebsockets"]
    print("| size | conns | in flight | " + " | ".join(servers)
          + " | best wsproto / fastwebsockets | best wsproto / tungstenite |")
    print("|---:|---:|---:|" + "---:|" * (len(servers) + 2))
    for key in sorted({k[:3] for k in rate}):
        got = [rate.get(key + (s,)) for s in servers]
        ours = max((r for r in got[:2] if r is not None), default=None)

        def ratio(peer):
            return f"{ours / peer:.2f}×" if ours and peer else "–"

        cells = [f"{r:.0f}" if r is not None else "–" for r in got]
        print(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells)
              + f" | {ratio(got[3])} | {ratio(got[2])} |")


if len(sys.argv) > 2 and sys.argv[1] == "--echo":
    echo(sys.argv[2])
else:
    main()

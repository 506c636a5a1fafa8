"""Turn pytest-benchmark's JSON into the Markdown tables of ``BENCHMARKS.md``.

Usage::

    python -m pytest benchmarks/bench_mlp.py --benchmark-json=bench_mlp.json
    python benchmarks/report.py bench_mlp.json [--title "Networks (MNIST 784-50-10)"]
                                               [--command "the command that made the JSON"]

One table per benchmark group: the median time of each method, its
dense-equivalent GFLOP/s when the benchmark recorded ``flops`` (see the
benchmark file for how they are counted), and its speed-up over each peer
of the same group measured in the same run (``peer median / this median``:
above 1 means faster than that peer).  Methods are named by the
``method`` recorded in ``extra_info`` (``fastnet[numba]``,
``numpy reference``, ``PyTorch``, ``JAX``, ``scikit-learn``...).

For the MLP benchmarks a last table checks the targets of the Numba issue
(ratios from this same run).
"""
import argparse
import json
import platform
import sys

#: peer columns, in order: (column title, predicate on the method name)
PEERS = [
    ("numpy ref.", lambda m: m == "numpy reference"),
    ("PyTorch", lambda m: m.startswith("PyTorch")),
    ("JAX", lambda m: m.startswith("JAX")),
    ("scikit-learn", lambda m: m.startswith("scikit-learn")),
]


def _fmt_time(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms" if s >= 0.01 else f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} µs"


def _fmt_ratio(r):
    return f"{r:.0f}×" if r >= 100 else (f"{r:.1f}×" if r >= 10 else f"{r:.2f}×")


def load(path):
    with open(path) as fh:
        data = json.load(fh)
    groups = {}
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        row = {"method": info.get("method", b["name"]), "median": b["stats"]["median"],
               "rounds": b["stats"]["rounds"], "flops": info.get("flops"), "name": b["name"]}
        groups.setdefault(b["group"] or b["name"], []).append(row)
    return data, groups


def _order(row):
    m = row["method"]
    if m.startswith("fastnet["):
        return (0, m)
    if m == "numpy reference":
        return (1, m)
    return (2, m)


def group_table(rows):
    rows = sorted(rows, key=_order)
    peers = [(title, next((r for r in rows if pred(r["method"])), None)) for title, pred in PEERS]
    peers = [(t, r) for t, r in peers if r is not None]
    has_flops = any(r["flops"] for r in rows)
    head = ["method", "median"] + (["GFLOP/s"] if has_flops else []) + \
        [f"vs {t}" for t, _ in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"**{r['method']}**" if r["method"].startswith("fastnet[") else r["method"],
                 _fmt_time(r["median"])]
        if has_flops:
            cells.append(f"{r['flops'] / r['median'] / 1e9:.1f}" if r["flops"] else "")
        for _, p in peers:
            cells.append("—" if p is r else _fmt_ratio(p["median"] / r["median"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _find(groups, needle, method_pred):
    for g, rows in groups.items():
        if needle in g:
            for r in rows:
                if method_pred(r["method"]):
                    return r
    return None


def targets_table(groups, backend="numba"):
    """The Numba issue's targets, checked with this run's ratios (MLP groups only)."""
    me = lambda m: m == f"fastnet[{backend}]"  # noqa: E731
    ref = lambda m: m == "numpy reference"  # noqa: E731
    torch = lambda m: m.startswith("PyTorch")  # noqa: E731
    jax = lambda m: m.startswith("JAX")  # noqa: E731
    skl = lambda m: m.startswith("scikit-learn")  # noqa: E731
    rows = []

    def ratio(group, peer, need, label):
        a, b = _find(groups, group, me), _find(groups, group, peer)
        if a is None or b is None:
            rows.append((label, "not measured", f"≥ {need}×", "—"))
            return
        r = b["median"] / a["median"]
        rows.append((label, _fmt_ratio(r), f"≥ {need}×", "yes" if r >= need else "**no**"))

    ratio("backprop f64", ref, 20, "course `backprop` f64 vs numpy reference")
    ratio("online f32", jax, 1.5, "online epoch vs JAX lax.scan")
    for peer, name in ((torch, "PyTorch"), (jax, "JAX"), (skl, "scikit-learn")):
        ratio("batch 128", peer, 2, f"batch 128 epoch vs {name}")
    ratio("batch 32", torch, 4, "batch 32 epoch vs PyTorch")
    ratio("batch 32", jax, 2, "batch 32 epoch vs JAX")
    ratio("full batch", torch, 1, "full-batch epoch vs PyTorch")
    full = _find(groups, "full batch", me)
    mm = _find(groups, "numpy float32 matmul", lambda m: m == "numpy matmul")
    if full and mm and full["flops"] and mm["flops"]:
        gf = full["flops"] / full["median"] / 1e9
        gm = mm["flops"] / mm["median"] / 1e9
        rows.append(("full-batch GFLOP/s (dense-equivalent) vs numpy float32 matmul",
                     f"{gf:.0f} vs {gm:.0f} GFLOP/s = {100 * gf / gm:.0f} %", "≥ 80 %",
                     "yes" if gf >= 0.8 * gm else "**no**"))
    lines = ["| target | measured | wanted | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def render(path, title, command):
    data, groups = load(path)
    mi = data.get("machine_info", {})
    cpu = mi.get("cpu", {}).get("brand_raw") or platform.processor() or "unknown CPU"
    out = [f"## {title}", ""]
    out.append(f"Measured {data.get('datetime', '')[:16].replace('T', ' ')} on {cpu} "
               f"({mi.get('cpu', {}).get('count', '?')} cores), Python "
               f"{mi.get('python_version', platform.python_version())}.  Command:")
    out += ["", "```", command, "```", ""]
    for g in sorted(groups):
        out += [f"### {g}", "", group_table(groups[g]), ""]
    if any("mlp " in g for g in groups):
        out += ["### Targets (ratios from this run)", "", targets_table(groups), ""]
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="pytest-benchmark JSON file (--benchmark-json)")
    ap.add_argument("--title", default="Networks (MNIST 784-50-10)")
    ap.add_argument("--command", default="python -m pytest benchmarks/bench_mlp.py "
                    "--benchmark-json=bench_mlp.json && python benchmarks/report.py bench_mlp.json")
    args = ap.parse_args(argv)
    sys.stdout.write(render(args.json, args.title, args.command) + "\n")


if __name__ == "__main__":
    main()

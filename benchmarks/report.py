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

For the benchmark matrix (``bench_matrix.py``) the groups are gathered into
one table (rows: input and network; columns: batch size) giving, in each
cell, the default backend's median, its speed-up over the best peer (PyTorch
or JAX) and its executed GFLOP/s, each marked against the targets of the
GEMM issue; a second table gives every method of every cell.  For the older
MLP benchmarks a last table checks the targets of the Numba issue.
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
               "rounds": b["stats"]["rounds"], "flops": info.get("flops"), "name": b["name"],
               "info": info}
        groups.setdefault(b["group"] or b["name"], []).append(row)
    return data, groups


# ------------------------------------------------------------------ the matrix
#: the GEMM issue's targets: speed-up over the best peer per batch, and the full batch's
#: share of numpy's sgemm GFLOP/s
MATRIX_TARGETS = {1: 1.5, 32: 1.5, 128: 1.2, 8000: 1.0}
SGEMM_SHARE = 0.85


def _is_peer(method):
    return method.startswith("PyTorch") or method.startswith("JAX")


def _sgemm(groups):
    mm = _find(groups, "numpy float32 matmul", lambda m: m == "numpy matmul")
    return mm["flops"] / mm["median"] / 1e9 if mm else None


def matrix_tables(groups):
    """The matrix (default backend vs best peer per cell) and the table of every method."""
    cells = {g: rows for g, rows in groups.items() if g.startswith("matrix |")}
    if not cells:
        return ""
    sgemm = _sgemm(groups)
    keys = {}
    for g, rows in cells.items():
        _, inp, net, _ = [x.strip() for x in g.split("|")]
        batch = rows[0]["info"].get("batch")
        keys[(inp, net, batch)] = rows
    inputs = sorted({k[0] for k in keys}, key=lambda i: (i != "raw", i))
    nets = sorted({k[1] for k in keys}, key=lambda n: (len(n.split("-")), n))
    batches = sorted({k[2] for k in keys})
    head = ["input", "network"] + [("full batch" if b == 8000 else f"batch {b}") for b in batches]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    detail = ["| input | network | batch | method | path | median | GFLOP/s | vs best peer |",
              "|---|---|---|---|---|---|---|---|"]
    met, total = 0, 0
    for inp in inputs:
        for net in nets:
            line = [inp, net]
            for b in batches:
                rows = keys.get((inp, net, b))
                if not rows:
                    line.append("—")
                    continue
                peers = [r for r in rows if _is_peer(r["method"])]
                best = min(peers, key=lambda r: r["median"]) if peers else None
                me = next((r for r in rows if r["info"].get("default")), None)
                for r in sorted(rows, key=lambda r: (not r["method"].startswith("fastnet"),
                                                     r["method"])):
                    gf = r["flops"] / r["median"] / 1e9 if r["flops"] else float("nan")
                    vs = _fmt_ratio(best["median"] / r["median"]) if best else "—"
                    detail.append(f"| {inp} | {net} | {b} | {r['method']} | "
                                  f"{r['info'].get('path', '')} | {_fmt_time(r['median'])} | "
                                  f"{gf:.1f} | {vs} |")
                if me is None or best is None:
                    line.append("not measured")
                    continue
                ratio = best["median"] / me["median"]
                gf = me["flops"] / me["median"] / 1e9
                ok = ratio >= MATRIX_TARGETS.get(b, 1.0)
                extra = ""
                if b == 8000 and sgemm:
                    share = gf / sgemm
                    ok = ok and share >= SGEMM_SHARE
                    extra = f", {100 * share:.0f} % of sgemm"
                met += ok
                total += 1
                line.append(f"{'' if ok else '**'}{_fmt_ratio(ratio)}{'' if ok else '**'} "
                            f"({_fmt_time(me['median'])} vs {best['method']} "
                            f"{_fmt_time(best['median'])}; {gf:.0f} GF/s{extra}; "
                            f"{me['info'].get('path', '')})")
            out.append("| " + " | ".join(line) + " |")
    notes = [f"Each cell: the default backend's speed-up over the best of PyTorch and JAX in "
             f"this run (its median vs the peer's), its executed GFLOP/s and the path it ran. "
             f"Targets: ≥ 1.5× at batch 1 and 32, ≥ 1.2× at 128, ≥ 1.0× and ≥ "
             f"{100 * SGEMM_SHARE:.0f} % of numpy's sgemm GFLOP/s"
             + (f" ({sgemm:.0f} GFLOP/s in this run)" if sgemm else "")
             + f" at full batch; **bold**: missed.  {met} of {total} cells meet their target."]
    return "\n".join(out + [""] + notes + ["", "#### Every method of every cell", ""] + detail)


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
    matrix = matrix_tables(groups)
    if matrix:
        cpu_names = {r["info"].get("numba_cpu") for rows in groups.values() for r in rows
                     if r["info"].get("numba_cpu")}
        out += ["### Benchmark matrix", "",
                f"Numba target CPU: {', '.join(sorted(cpu_names)) or 'host'}.", "", matrix, ""]
    for g in sorted(groups):
        if g.startswith("matrix |"):
            continue
        out += [f"### {g}", "", group_table(groups[g]), ""]
    if any("mlp " in g for g in groups):
        out += ["### Targets (ratios from this run)", "", targets_table(groups), ""]
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="pytest-benchmark JSON file (--benchmark-json)")
    ap.add_argument("--title", default="Networks")
    ap.add_argument("--command", default="python -m pytest benchmarks/bench_matrix.py "
                    "--benchmark-json=bench.json && python benchmarks/report.py bench.json")
    args = ap.parse_args(argv)
    sys.stdout.write(render(args.json, args.title, args.command) + "\n")


if __name__ == "__main__":
    main()

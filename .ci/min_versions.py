"""Print the dependency floors of pyproject.toml as exact pins (one requirement per line).

The runtime dependencies (numpy, numba, scipy) and the build's Cython, each at the lowest
version pyproject.toml allows: CI installs exactly these (.ci/min_versions.sh) to check
that the floors are honest.  Python >= 3.11 (tomllib).
"""
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PINNED = ("numpy", "numba", "scipy", "cython")

meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
reqs = list(meta["project"]["dependencies"]) + list(meta["build-system"]["requires"])
pins = {}
for req in reqs:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*", req)
    if m and m.group(1).lower() in PINNED and m.group(1).lower() not in pins:
        pins[m.group(1).lower()] = f"{m.group(1)}=={m.group(2)}"
missing = [p for p in PINNED if p not in pins]
if missing:
    raise SystemExit(f"pyproject.toml has no '>=' floor for {missing}")
print("\n".join(pins[p] for p in PINNED))

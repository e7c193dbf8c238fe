"""Render a pytest-benchmark JSON (``make bench`` writes bench/.results.json) as markdown tables,
one per benchmark group: median seconds and the figures each row put in ``extra_info``.

    python bench/tables.py bench/.results.json >> bench/RESULTS.md
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return f"{value:.3e}"
    return str(value)


def tables(results: dict) -> str:
    """Markdown for every group of the run, rows in run order."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for bench in results["benchmarks"]:
        groups[bench.get("group") or bench["fullname"].split("::")[0]].append(bench)
    machine = results.get("machine_info", {})
    lines = [f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
             f"{machine.get('cpu', {}).get('count', '?')} logical CPUs, "
             f"Python {machine.get('python_version', '?')}; run {results.get('datetime', '?')}", ""]
    for group, rows in groups.items():
        keys = sorted({k for r in rows for k in r.get("extra_info", {})})
        lines += [f"### {group}", "", "| benchmark | median s | " + " | ".join(keys) + " |",
                  "|---" * (len(keys) + 2) + "|"]
        for r in rows:
            info = r.get("extra_info", {})
            cells = [_fmt(info[k]) if k in info else "" for k in keys]
            lines.append(f"| {r['name']} | {_fmt(r['stats']['median'])} | " + " | ".join(cells)
                         + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(tables(json.load(f)))

"""Runs every benchmarks/bench_*.py and rewrites BENCHMARKS.md.

``run.py bench_queries`` runs only the named modules and keeps the other sections of the existing
BENCHMARKS.md; ``run.py soak`` (``make soak``) runs the ten-minute soak, which ``make bench`` leaves out. Each bench module exposes ``run() -> str``: a markdown section whose numbers are measured in
this run, as ratios against a baseline measured in the same run (machines differ; ratios hold).
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # bench modules share helpers such as seed_reference


def _merge_sections(previous: str, fresh: list[str]) -> list[str]:
    """Keep the sections of an earlier run, replacing those measured now (same ``## `` title)."""

    def title(section: str) -> str:
        return section.split("\n", 1)[0]

    replaced = {title(section): section for section in fresh}
    kept = ["## " + part.rstrip() + "\n" for part in previous.split("\n## ")[1:]]
    out = [replaced.pop(title(section), section) for section in kept]
    return out + list(replaced.values())


def main() -> int:
    only = set(sys.argv[1:])
    sections = []
    for path in [*sorted(ROOT.glob("bench_*.py")), ROOT / "soak.py"]:
        if (only and path.stem not in only) or (path.stem == "soak" and "soak" not in only):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"running {path.name} ...", flush=True)
        started = time.perf_counter()
        sections.append(module.run().rstrip() + "\n")
        print(f"  done in {time.perf_counter() - started:.1f}s", flush=True)
    header = (
        "# Benchmarks\n\n"
        "Written by `make bench` (benchmarks/run.py). Every goal is a ratio against a baseline "
        "measured in the same run, so the numbers compare across machines.\n\n"
        f"Machine: {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n"
    )
    target = ROOT.parent / "BENCHMARKS.md"
    if only and target.exists():
        sections = _merge_sections(target.read_text(), sections)
        header += f"Re-run now: {', '.join(sorted(only))}; the other sections are from the previous run.\n"
    target.write_text(header + "\n" + "\n".join(sections))
    print("wrote BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

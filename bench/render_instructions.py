"""CPU instructions per invoice PDF, for comparing template or renderer changes.

    .venv/bin/python bench/render_instructions.py [--count 25] [--no-reuse] [TEMPLATES_DIR ...]

Wall-clock figures on this machine drift by 10-20% between runs (bench/render_bench.py
takes turns to cope), which hides a change worth a few percent. An instruction count does
not drift: the same code on the same input executes the same instructions, whatever else
the machine is doing (measured here: 176.8, 177.0 and 177.6 M instructions per invoice
in three runs at different times, two of them on different clones, before batch reuse;
143.2 and 142.5 M since). This script counts them with
valgrind's cachegrind (``--cache-sim=no``: instructions only), in a child process that
builds a ``PdfRenderer`` for the templates folder, renders a warm-up batch, then renders
``--count`` sample invoices as one batch. It runs that child twice, without and with the
measured batch, and prints the difference per invoice: the batch's instructions only, not
Python's start-up, imports or the warm-up.

Give several templates folders (each a copy of ``courier/documents/templates`` with a change)
to compare them in one run; with none it measures the project's own templates. Each folder
takes about half a minute (valgrind runs the renderer some 50 times slower; the two runs of
a folder go in parallel). Instructions are a proxy for time, not time: C code (Pango, HarfBuzz,
zlib) runs more instructions per cycle than Python, so confirm a change with render_bench.

``--no-reuse`` renders without :mod:`courier.documents.batch_reuse` (each invoice's text laid
out and drawn anew, as the plain way does), to see what it saves.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from courier.documents.pdf import TEMPLATES_DIR

WARM_UP_INVOICES = 10
_TOTAL = re.compile(r"I\s+refs:\s+([\d,]+)")

#: The child: renders a warm-up batch and then ``count`` invoices (0: none).
CHILD = """
import sys
from pathlib import Path
from courier.documents.pdf import PdfRenderer
from courier.sample_data import generate_invoices
templates, warm_up, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
reuse = sys.argv[4] == "reuse"
invoices = generate_invoices(warm_up + count)
renderer = PdfRenderer(templates_dir=templates, reuse_layout=reuse)
renderer.render_batch(invoices[:warm_up])
if count:
    result = renderer.render_batch(invoices[warm_up:])
    assert len(result.pdfs) == count, result.errors
"""


def instructions(templates: Path, count: int, reuse: bool) -> int:
    """Instructions valgrind counts for one child process (start-up included)."""
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-c",
        CHILD,
        str(templates),
        str(WARM_UP_INVOICES),
        str(count),
        "reuse" if reuse else "no-reuse",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    match = _TOTAL.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"{templates}: valgrind run failed:\n{done.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def per_invoice(templates: Path, count: int, reuse: bool) -> float:
    with ThreadPoolExecutor(max_workers=2) as pool:
        without, with_batch = pool.map(lambda n: instructions(templates, n, reuse), (0, count))
    return (with_batch - without) / count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("templates", nargs="*", type=Path, help="templates folders to compare")
    parser.add_argument("--count", type=int, default=25, help="invoices measured (default 25)")
    parser.add_argument(
        "--no-reuse", action="store_true", help="render without batch reuse (batch_reuse.py)"
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian package valgrind)", file=sys.stderr)
        return 2
    folders: list[Path] = args.templates or [TEMPLATES_DIR]
    reuse = not args.no_reuse
    print(
        f"{args.count} sample invoices in one batch, after a warm-up of {WARM_UP_INVOICES}"
        + ("" if reuse else "; without batch reuse")
    )
    baseline = per_invoice(folders[0], args.count, reuse)
    print(f"{baseline / 1e6:8.1f} M instructions/invoice  {folders[0]}")
    for folder in folders[1:]:
        measured = per_invoice(folder, args.count, reuse)
        change = 100 * (measured - baseline) / baseline
        print(f"{measured / 1e6:8.1f} M instructions/invoice  {folder}  {change:+.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

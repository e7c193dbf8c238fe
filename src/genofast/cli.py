"""The `genofast` command: one sub-command per job, each a thin layer over the library.

Each sub-command has one `_add_<name>` function that declares its arguments and points at a
`_run_<name>` handler; heavy imports happen inside the handlers so `genofast --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (FileNotFoundError, ValueError) as err:
        print(f"genofast {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `genofast info X | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genofast",
        description="Synthetic SNP genotype cohorts: simulate, train, sample, evaluate.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_info(sub)
    return parser


# --- info --------------------------------------------------------------------------------------


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="summarise a PLINK fileset",
        description="Individuals, SNPs, SNPs per chromosome, missing rate and allele frequencies "
        "of a PLINK .bed/.bim/.fam fileset.",
    )
    p.add_argument("prefix", help="PLINK prefix (PREFIX.bed, PREFIX.bim, PREFIX.fam)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from genofast.io.summary import format_summary, summarize

    summary = summarize(args.prefix)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

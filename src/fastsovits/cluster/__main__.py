"""``python -m fastsovits.cluster serve [serve options] [--ray options]``: the same as ``fastsovits serve --ray``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from fastsovits.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "serve":
        print("usage: python -m fastsovits.cluster serve [serve options] [--ray options]", file=sys.stderr)
        return 2
    if "--ray" not in args:
        args.append("--ray")
    return cli_main(args)


if __name__ == "__main__":
    raise SystemExit(main())

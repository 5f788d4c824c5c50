"""``python -m fastsovits.cluster serve [serve options] [--ray options]``: ``fastsovits serve --ray`` without cli.py.

The ``serve`` parser and its config-building are the main CLI's own; only the last step (run the
plain server) is replaced by ``run_cluster``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from fastsovits import cli
    from fastsovits.cluster.cli import add_ray_args, run_cluster
    from fastsovits.runtime import configure_openmp

    configure_openmp()
    parser = cli.build_parser()
    sub = next(x for x in parser._actions if isinstance(x, argparse._SubParsersAction))
    serve_parser = sub.choices["serve"]
    if not any("--ray-address" in x.option_strings for x in serve_parser._actions):
        add_ray_args(serve_parser)
    args = parser.parse_args(argv)
    if args.func is not cli._cmd_serve:
        parser.error("python -m fastsovits.cluster runs only 'serve'")
    import fastsovits.server.app as server_app

    # cli._cmd_serve builds ServerConfig and ModelSpec from the options, then calls server.app.serve: run the
    # cluster there instead (one place builds the config).
    server_app.serve = lambda config, spec: run_cluster(args, config, spec)
    try:
        return int(args.func(args) or 0)
    except Exception as e:
        from fastsovits.errors import FastSovitsError

        if isinstance(e, FastSovitsError):
            print(f"fastsovits: error: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())

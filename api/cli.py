"""``nexpo serve``: the gateway's subcommand, registered through the ``nexpo.commands`` entry point
(pyproject.toml), so nexpo's core never imports its gateway."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

INSTALL_HINT = "nexpo serve needs the gateway's dependencies: pip install 'nexpo[api]'"


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .server import main
    except ImportError as exc:  # the gateway's dependencies are an optional extra
        print(f"{INSTALL_HINT} ({exc})", file=sys.stderr)
        return 2
    return main(args.options, prog="nexpo serve")


def add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Callable[..., int]:
    # The gateway parses its own options (generated from its settings; `nexpo serve --help` lists
    # them), so they are built only when serving: no prefix characters pass every word through.
    parser = sub.add_parser(
        "serve",
        help="run the HTTP gateway (uvicorn; needs the 'api' extra)",
        add_help=False,
        prefix_chars="\0",
    )
    parser.add_argument("options", nargs=argparse.REMAINDER)
    return _cmd_serve

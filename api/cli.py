"""``nexpo serve``: the gateway's subcommand, registered through the ``nexpo.commands`` entry point
(pyproject.toml), so nexpo's core never imports its gateway."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

INSTALL_HINT = "nexpo serve needs the gateway's dependencies: pip install 'nexpo[api]'"


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .server import run_from_args
    except ImportError as exc:  # the gateway's dependencies are an optional extra
        print(f"{INSTALL_HINT} ({exc})", file=sys.stderr)
        return 2
    return run_from_args(args)


def add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Callable[..., int]:
    parser = sub.add_parser("serve", help="run the HTTP gateway (uvicorn; needs the 'api' extra)")
    try:
        from .server import add_arguments
    except ImportError:  # without the extra: accept the usual options, then say what to install
        for option in ("--host", "--port", "--workers"):
            parser.add_argument(option, help=argparse.SUPPRESS)
        parser.epilog = INSTALL_HINT
    else:
        add_arguments(parser)
    return _cmd_serve

"""The ``nexpo`` command: ``nexpo info`` (more subcommands register in ``COMMANDS``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence


def _cmd_info(args: argparse.Namespace) -> int:
    from nexpo import info

    data = info()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    width = max(map(len, data))
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key:<{width}}  {shown}")
    return 0


def _add_info(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Callable[..., int]:
    parser = sub.add_parser("info", help="show the build, the CPU paths in use and the thread count")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return _cmd_info


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from api.server import run_from_args
    except ImportError as exc:  # the gateway's dependencies are an optional extra
        print(f"nexpo serve needs the gateway: pip install 'nexpo[api]' ({exc})", file=sys.stderr)
        return 2
    return run_from_args(args)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Callable[..., int]:
    parser = sub.add_parser("serve", help="run the HTTP gateway (uvicorn; needs the 'api' extra)")
    parser.add_argument("--host", help="interface to bind (NEXPO_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (NEXPO_PORT, default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (NEXPO_WORKERS, default 1)")
    return _cmd_serve


# name -> function that adds the subparser and returns the handler
COMMANDS: dict[str, Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], Callable[..., int]]] = {
    "info": _add_info,
    "serve": _add_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nexpo", description="nexpo: a Nim core for Python")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = {name: add(sub) for name, add in COMMANDS.items()}
    args = parser.parse_args(argv)
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m nexpo.api.transit --file F {create,rotate,list} [NAME] [--type T]``: manage transit
keys offline (a running gateway picks the change up within a second). The HTTP API
(``/v1/transit/keys/...``, admin keys only) does the same and more (config, delete)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import TransitError
from .keytypes import DEFAULT_KEY_TYPE, KEY_TYPES
from .store import create_key, read_keys, rotate_key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexpo.api.transit", description="manage transit keys")
    parser.add_argument("action", choices=["create", "rotate", "list"])
    parser.add_argument("name", nargs="?", help="key name (create, rotate)")
    parser.add_argument("--file", type=Path, required=True, help="transit keys file (JSON)")
    parser.add_argument("--type", choices=list(KEY_TYPES), default=DEFAULT_KEY_TYPE, help="key type (create)")
    args = parser.parse_intermixed_args(argv)  # 'rotate --file F NAME' as well as 'rotate NAME --file F'
    try:
        if args.action == "list":
            for key in read_keys(args.file).values():
                print(
                    f"{key.name}\tlatest=v{key.latest}\tmin_decryption_version={key.min_decryption_version}"
                    f"\ttype={key.type}"
                )
            return 0
        if not args.name:
            parser.error("a key name is required")
        key = (
            create_key(args.file, args.name, args.type)
            if args.action == "create"
            else rotate_key(args.file, args.name)
        )
    except (OSError, ValueError, TransitError) as exc:  # TimeoutError (the lock) is an OSError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{key.name}: latest version v{key.latest}")
    return 0

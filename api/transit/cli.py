"""``python -m nexpo.api.transit --file F {create,rotate,config,delete,list} [NAME] [options]``:
manage transit keys offline (a running gateway picks the change up within a second). The HTTP
API (``/v1/transit/keys/...``, admin keys only) does the same where the keys file is writable."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import TransitError
from .keyring import TransitKey
from .keytypes import DEFAULT_KEY_TYPE, KEY_TYPES
from .store import configure_key, create_key, delete_key, read_keys, rotate_key


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nexpo.api.transit", description="manage transit keys")
    parser.add_argument("action", choices=["create", "rotate", "config", "delete", "list"])
    parser.add_argument("name", nargs="?", help="key name (every action but list)")
    parser.add_argument("--file", type=Path, required=True, help="transit keys file (JSON)")
    parser.add_argument("--type", choices=list(KEY_TYPES), default=DEFAULT_KEY_TYPE, help="key type (create)")
    parser.add_argument("--min-decryption-version", type=int, help="config: oldest version that decrypts")
    parser.add_argument("--min-encryption-version", type=int, help="config: oldest version for new tokens")
    parser.add_argument(
        "--deletion-allowed", choices=["true", "false"], help="config: whether delete may remove the key"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_intermixed_args(argv)  # 'rotate --file F NAME' as well as 'rotate NAME --file F'
    try:
        if args.action == "list":
            for entry in read_keys(args.file).values():
                print(
                    f"{entry.name}\tlatest=v{entry.latest}"
                    f"\tmin_decryption_version={entry.min_decryption_version}\ttype={entry.type}"
                )
            return 0
        if not args.name:
            parser.error("a key name is required")
        if args.action == "delete":
            delete_key(args.file, args.name)
            print(f"{args.name}: deleted")
            return 0
        key: TransitKey
        if args.action == "create":
            key = create_key(args.file, args.name, args.type)
        elif args.action == "rotate":
            key = rotate_key(args.file, args.name)
        else:
            allowed = None if args.deletion_allowed is None else args.deletion_allowed == "true"
            key = configure_key(
                args.file, args.name, args.min_decryption_version, args.min_encryption_version, allowed
            )
    except (OSError, ValueError, TransitError) as exc:  # TimeoutError (the lock) is an OSError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{key.name}: latest version v{key.latest}")
    return 0

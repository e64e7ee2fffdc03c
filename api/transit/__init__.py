"""Transit encryption in the manner of Vault's transit engine: the server holds named, versioned
ChaCha20-Poly1305 keys; clients send plaintext and get tokens ``nexpo:v<N>:<base64>``, or send
tokens back for plaintext. Rotating a key adds version N+1 for new tokens while older versions still
decrypt (down to ``min_decryption_version``).

- ``keyring``: the domain — keys, tokens, and ``TransitError`` (``KeyNotFound``, ``InvalidToken``,
  ``KeysUnavailable``, ``KeyExists``); no HTTP (api/routers/transit.py maps errors to problems);
- ``store``: the keys file — format, atomic rewrite under a lock, the server's reloading view;
- ``cli``: ``python -m nexpo.api.transit --file F {create,rotate,list} NAME``.
"""

from .cli import main
from .keyring import (
    KEY_BYTES,
    KEY_NAME,
    NONCE_BYTES,
    TAG_BYTES,
    TOKEN,
    InvalidToken,
    KeyExists,
    KeyNotFound,
    Keyring,
    KeysUnavailable,
    TransitError,
    TransitKey,
)
from .store import (
    MAX_KEYS_FILE_BYTES,
    KeyringFile,
    create_key,
    dump_keys,
    ensure_default_keys_file,
    parse_keys,
    read_keys,
    rotate_key,
    write_keys,
)

__all__ = [
    "KEY_BYTES",
    "KEY_NAME",
    "MAX_KEYS_FILE_BYTES",
    "NONCE_BYTES",
    "TAG_BYTES",
    "TOKEN",
    "InvalidToken",
    "KeyExists",
    "KeyNotFound",
    "Keyring",
    "KeyringFile",
    "KeysUnavailable",
    "TransitError",
    "TransitKey",
    "create_key",
    "dump_keys",
    "ensure_default_keys_file",
    "main",
    "parse_keys",
    "read_keys",
    "rotate_key",
    "write_keys",
]

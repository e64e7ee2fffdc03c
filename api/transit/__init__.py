"""Transit encryption in the manner of Vault's transit engine: the server holds named, versioned
keys (``aes256-gcm96``, ``chacha20-poly1305``, ``ed25519``); clients send plaintext and get tokens
``nexpo:v<N>:<base64>``, send tokens back for plaintext, rewrap them, ask for data keys, HMACs and
signatures. Rotating a key adds version N+1 for new tokens while older versions still decrypt
(down to ``min_decryption_version``). Keys never leave the server: there is no export.

- ``errors``: ``TransitError`` and its kinds; no HTTP (api/routers/transit*.py map them to problems);
- ``keytypes``: the key types and the primitives of each;
- ``keyring``: keys, versions, tokens and the operations on them;
- ``store``: the keys file — format (and the format before key types), atomic changes under a
  lock, the server's reloading view;
- ``cli``: ``python -m nexpo.api.transit --file F {create,rotate,config,delete,list} NAME``.
"""

from .cli import main
from .errors import (
    DeletionNotAllowed,
    InvalidRequest,
    InvalidToken,
    KeyExists,
    KeyNotFound,
    KeysUnavailable,
    TransitError,
)
from .keyring import DATAKEY_BITS, KEY_NAME, TOKEN, Keyring, KeyVersion, TransitKey
from .keytypes import (
    AES256_GCM96,
    CHACHA20_POLY1305,
    DEFAULT_KEY_TYPE,
    ED25519,
    HMAC_ALGORITHMS,
    KEY_BYTES,
    KEY_TYPES,
    NONCE_BYTES,
    TAG_BYTES,
)
from .store import (
    MAX_KEYS_FILE_BYTES,
    KeyringFile,
    configure_key,
    create_key,
    delete_key,
    dump_keys,
    ensure_default_keys_file,
    parse_keys,
    read_keys,
    rotate_key,
    write_keys,
)

__all__ = [
    "AES256_GCM96",
    "CHACHA20_POLY1305",
    "DATAKEY_BITS",
    "DEFAULT_KEY_TYPE",
    "ED25519",
    "HMAC_ALGORITHMS",
    "KEY_BYTES",
    "KEY_NAME",
    "KEY_TYPES",
    "MAX_KEYS_FILE_BYTES",
    "NONCE_BYTES",
    "TAG_BYTES",
    "TOKEN",
    "DeletionNotAllowed",
    "InvalidRequest",
    "InvalidToken",
    "KeyExists",
    "KeyNotFound",
    "KeyVersion",
    "Keyring",
    "KeyringFile",
    "KeysUnavailable",
    "TransitError",
    "TransitKey",
    "configure_key",
    "create_key",
    "delete_key",
    "dump_keys",
    "ensure_default_keys_file",
    "main",
    "parse_keys",
    "read_keys",
    "rotate_key",
    "write_keys",
]

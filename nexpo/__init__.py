"""nexpo: native speed without leaving Python.

A Nim core (GEMM, crypto, lock-free channels, a work-stealing scheduler) compiled into one
extension, ``nexpo._core``, under small typed Python modules.
"""

from __future__ import annotations

from nexpo import kernels
from nexpo._info import info, package_version
from nexpo.channels import Channel, select
from nexpo.errors import AuthenticationError, ChannelClosed, NexpoError
from nexpo.scheduler import get_num_threads, set_num_threads

__version__ = package_version()

__all__ = [
    "AuthenticationError",
    "Channel",
    "ChannelClosed",
    "NexpoError",
    "__version__",
    "get_num_threads",
    "info",
    "kernels",
    "select",
    "set_num_threads",
]

"""What nexpo.Channel keeps in Python: asyncio integration (:mod:`.aio`) and ``select``
(:mod:`.select`), over the receives that copy through cffi (:mod:`.copying`). The channel's
own methods are the C type ``nexpo._channel.Channel`` (nexpo/_channel/)."""

"""A CONNECT proxy that tunnels fal-client's fixed storage hosts to the simulator, and nothing else.

fal-client 1.0.3 uploads to ``https://rest.fal.ai`` and ``https://v3.fal.media`` and no
variable moves them (client.REST_URL, client.CDN_URL). Its httpx clients honour
``HTTPS_PROXY``, so an unchanged client pointed at this proxy reaches the simulator's TLS port
for those two hosts: the tunnel is plain bytes, TLS runs end to end with the certificate the
simulator made for those names (tls.py), and the client trusts it through ``SSL_CERT_FILE``.
Any other host, and any request that is not ``CONNECT``, is refused with 403: the proxy never
reaches the network.
"""

from __future__ import annotations

import asyncio
import contextlib

from .tls import STORAGE_HOSTS

_MAX_HEAD = 16 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _refuse(writer: asyncio.StreamWriter, why: str) -> None:
    body = why.encode()
    writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    with contextlib.suppress(Exception):
        await writer.drain()
        writer.close()


def tunnel_handler(target_host: str, target_port: int):
    """The connection handler: CONNECT to one of fal's storage hosts → a tunnel to the simulator."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if len(head) > _MAX_HEAD:
            await _refuse(writer, "request head too long")
            return
        method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        target = rest.split(" ", 1)[0]
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or host not in STORAGE_HOSTS or port != "443":
            await _refuse(writer, f"this proxy tunnels only CONNECT to {', '.join(h + ':443' for h in STORAGE_HOSTS)} "
                                  f"(fal-client's storage hosts), not {method} {target}")
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        except OSError as err:
            await _refuse(writer, f"the simulator's fal port did not answer: {err}")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return handle

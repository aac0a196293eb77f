"""A small TCP proxy for the tests: forwards 127.0.0.1:PORT to a server, counts the bytes
sent each way, can flip a byte on the way (integrity checks), and can cut the way: every
open connection is reset and new ones are reset as soon as they are accepted, until the cut
is lifted. (Ceph RGW and moto keep no data across a restart here, so an outage is simulated
on the way to the server, not by stopping it.)"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a dropped route or a restarting proxy does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # (close() alone does not wake a pump thread blocked in recv() on this socket, and the
    # connection would live on until it returns: shutdown() does)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self.bytes_up = 0
        self.bytes_down = 0
        #: Flip the byte at this offset of the next connection that carries that many bytes
        #: in the given direction ("up" or "down"), once.
        self.corrupt_at: dict[str, int | None] = {"up": None, "down": None}
        self.corrupted = 0
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Reset every connection and refuse new ones."""
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
        for sock in doomed:
            _reset(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
            if cut:
                self.refused += 1
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                # a cut that came while connecting upstream: this connection is cut too
                cut = self._cut
                if not cut:
                    self._open |= {client, server}
            if cut:
                self.refused += 1
                _reset(client)
                _reset(server)
                continue
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _tamper(self, data: bytes, seen: int, direction: str) -> bytes:
        """``data`` (bytes ``seen`` to ``seen + len(data)`` of a connection), with the armed
        corruption applied if it falls inside."""
        with self._lock:
            offset = self.corrupt_at[direction]
            if offset is None or not seen <= offset < seen + len(data):
                return data
            self.corrupt_at[direction] = None
            self.corrupted += 1
        at = offset - seen
        return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]

    def _pump(self, source: socket.socket, target: socket.socket, upstream: bool) -> None:
        seen = 0
        try:
            while True:
                data = source.recv(1 << 16)
                if not data:
                    break
                data = self._tamper(data, seen, "up" if upstream else "down")
                seen += len(data)
                with self._lock:
                    if upstream:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with self._lock:
                    self._open.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

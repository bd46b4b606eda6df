"""Keep-alive HTTP connections to one endpoint, for :mod:`recommender.store.signed_http`.

Why the standard library's ``http.client`` and not urllib3's pool: a ``GetItem`` against DynamoDB
Local costs the API's worker noticeably less CPU straight through ``http.client`` than through
urllib3 (same signed request; ``make bench`` measures the cache miss it is most of).  The
difference is urllib3's per-request machinery: the poll of every idle connection before reuse,
timeout objects, its response wrapper and content decoders, none of which a JSON POST to one
endpoint needs.  What urllib3 gave that matters is kept here: one connection per concurrent
caller (threads or gevent greenlets), reuse when idle, separate connect and read timeouts, and a
fresh connection when a reused one turns out to have been closed by the server while it was idle.
"""

from __future__ import annotations

import http.client
import ssl
from collections import deque
from urllib.parse import urlsplit

#: What a reused keep-alive connection raises when the server closed it while it sat idle.  The
#: request is then sent once more on a new connection: safe because every call made through
#: here is idempotent (``GetItem``, ``Scan``, and ``BatchWriteItem`` of puts by key).
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _ReadTimeout:
    """Connects within ``timeout`` seconds (http.client's one timeout), then waits up to
    ``read_timeout`` for each answer (http.client already turns Nagle off)."""

    read_timeout: float = 30.0

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock.settimeout(self.read_timeout)  # type: ignore[attr-defined]


class _Connection(_ReadTimeout, http.client.HTTPConnection):
    pass


class _TlsConnection(_ReadTimeout, http.client.HTTPSConnection):
    pass


class HttpConnections:
    """POSTs to one ``http(s)://host[:port]`` endpoint over at most ``keep`` idle keep-alive connections.

    Thread- and gevent-safe: a caller takes an idle connection (or opens one) and puts it back when
    its answer has been read; ``deque.pop``/``append`` are atomic.  A burst beyond ``keep`` opens
    extra connections rather than queueing, and closes them afterwards.
    """

    def __init__(self, endpoint_url: str, *, keep: int = 10, connect_timeout: float = 5.0, read_timeout: float = 30.0):
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint URL must be http(s)://host[:port], not {endpoint_url!r}")
        self.host, self.port, self.tls = parts.hostname, parts.port, parts.scheme == "https"
        self.keep = keep
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._context = ssl.create_default_context() if self.tls else None
        self._idle: deque[http.client.HTTPConnection] = deque()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Status and body of the answer.  Raises ``OSError`` (refused, timed out, reset) or
        ``http.client.HTTPException`` (not HTTP) when no answer came."""
        try:
            conn, reused = self._idle.pop(), True
        except IndexError:
            conn, reused = self._open(), False
        try:
            status, data, closes = self._exchange(conn, path, body, headers)
        except STALE:
            conn.close()
            if not reused:
                raise
            conn = self._open()  # closed while idle: once more on a new connection
            try:
                status, data, closes = self._exchange(conn, path, body, headers)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        if closes or len(self._idle) >= self.keep:
            conn.close()
        else:
            self._idle.append(conn)
        return status, data

    @staticmethod
    def _exchange(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, bool]:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, response.will_close

    def _open(self) -> http.client.HTTPConnection:
        if self.tls:
            conn: http.client.HTTPConnection = _TlsConnection(self.host, self.port, timeout=self.connect_timeout,
                                                               context=self._context)
        else:
            conn = _Connection(self.host, self.port, timeout=self.connect_timeout)
        conn.read_timeout = self.read_timeout  # type: ignore[attr-defined]
        return conn

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

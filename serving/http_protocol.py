"""uvicorn's HTTP/1.1 protocol with a deadline for each request's headers (see serving/server.py).

uvicorn (0.54) closes a keep-alive connection left idle after a response, after
`timeout_keep_alive`, but sets no timer before that: a connection that sends nothing, or drips its
headers, stays open. This subclass of its httptools protocol (uvicorn's Config takes a protocol
class as `http`) starts a timer of the same length when the connection opens and when a request's
first byte arrives, stops it when the headers are complete, and closes the connection when it
fires. The hooks are uvicorn's own callbacks (uvicorn/protocols/http/httptools_impl.py);
tests/serving_faults_test.py replays the slow clients against the real server.
"""

from uvicorn.protocols.http import httptools_impl


class HeaderDeadlineProtocol(httptools_impl.HttpToolsProtocol):
  """uvicorn's httptools protocol, closing connections whose request headers arrive too slowly.

  The deadline starts when the connection opens and when a request's first byte arrives, and ends
  with its headers; its length is the config's `timeout_keep_alive` (run() sets both to the
  request timeout: how long a client may hold a connection without a complete request).
  """

  _header_deadline = None

  def connection_made(self, transport) -> None:  # type: ignore[override]
    super().connection_made(transport)
    self._start_header_deadline()

  def on_message_begin(self) -> None:
    super().on_message_begin()
    self._start_header_deadline()

  def on_headers_complete(self) -> None:
    self._cancel_header_deadline()
    super().on_headers_complete()

  def connection_lost(self, exc) -> None:
    self._cancel_header_deadline()
    super().connection_lost(exc)

  def _start_header_deadline(self) -> None:
    if self._header_deadline is None:
      self._header_deadline = self.loop.call_later(self.timeout_keep_alive, self._headers_late)

  def _cancel_header_deadline(self) -> None:
    if self._header_deadline is not None:
      self._header_deadline.cancel()
      self._header_deadline = None

  def _headers_late(self) -> None:
    self._header_deadline = None
    if not self.transport.is_closing():
      self.transport.close()

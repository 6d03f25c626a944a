"""Jupyter Server extension for bench/run.mjs: TCP_NODELAY on every kernel WebSocket.

Jupyter Server 1.23 leaves Nagle's algorithm on for its kernel WebSockets (tornado's
WebSocketHandler does not call set_nodelay unless asked). A reply made of several small
writes then waits for the client's delayed ACK (up to 40 ms on Linux) before its later
frames leave. This extension wraps ZMQChannelsHandler.open so that each kernel WebSocket
calls tornado's ``set_nodelay(True)`` (setsockopt TCP_NODELAY on the connection's socket)
as soon as it opens; nothing else changes.

Enabled by the bench through a config file in its private JUPYTER_CONFIG_DIR:
``{"ServerApp": {"jpserver_extensions": {"jupyter_nodelay": true}}}``, with bench/ on
PYTHONPATH.
"""

from jupyter_server.services.kernels.handlers import ZMQChannelsHandler

MARKER = "jupyter_nodelay: TCP_NODELAY is set on every kernel WebSocket"


def _jupyter_server_extension_points():
    return [{"module": "jupyter_nodelay"}]


def _load_jupyter_server_extension(serverapp):
    original_open = ZMQChannelsHandler.open
    if getattr(original_open, "_nodelay", False):
        return

    def open_with_nodelay(self, *args, **kwargs):
        self.set_nodelay(True)
        return original_open(self, *args, **kwargs)

    open_with_nodelay._nodelay = True
    ZMQChannelsHandler.open = open_with_nodelay
    serverapp.log.info(MARKER)

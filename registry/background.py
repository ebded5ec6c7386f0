"""Background work of a serving process: the outbox sender (and, later, the NATS bridge).

Started by the serving entry points (wsgi.py, the ``dev`` and ``worker`` commands), never by
``create_app`` and at most once per process.
"""

import threading

from .notifications.sender import SenderThread

_lock = threading.Lock()
_threads: list[threading.Thread] = []


def start(app) -> list[threading.Thread]:
    with _lock:
        if not _threads:
            sender = SenderThread(app)
            sender.start()
            _threads.append(sender)
        return list(_threads)


def stop() -> None:
    with _lock:
        for thread in _threads:
            thread.stop()
        for thread in _threads:
            thread.join(timeout=10)
        _threads.clear()

"""The worker's accept and keep-alive loop: one epoll over listeners, parked connections, stop.

Theory of operation: every connection that is not being served right now --
a fresh one whose head has not arrived, an idle keep-alive one, one trickling
its head in -- is *parked* in this worker's epoll. The loop serves whichever
connection becomes readable next, so a few keep-alive clients cannot own a
worker, and a slow client costs a dict entry, not a worker. A periodic sweep
closes parked connections past their deadline (header-timeout from connect or
from the previous response; keepalive-timeout while idle between requests),
but never one with bytes waiting unread: the worker may have been busy while they
came, and a request that arrived is owed an answer, not a reset.

With threads == 1 a readable connection is handled inline (no locks) and
stays registered (level-triggered) for its whole life. Readable connections
are served first come, first served: each poll appends the newly readable ones
to a FIFO (`ready`), the loop serves from its head and polls again (without
waiting) after every `_SLICE` of serving. Serving each poll's whole batch
instead starves whoever is last in it: a keep-alive client answered last has
not sent its next request by the next poll, misses that batch and goes last
again. A newly accepted connection is still served at once when its request
is there (one per wake-up): parking it unread behind the FIFO would commit it
to this worker's backlog, and a worker must not owe more requests than it
takes to reach max-requests or reload-on-rss. With threads > 1 the loop
thread hands readable connections to N handler threads through a FIFO queue;
connections are registered EPOLLONESHOT so the loop never sees one that a
thread is serving, and the thread re-arms it when it parks it again.

Stop: `stop_fd` readable (SIGTERM) or reload-on-rss reached: stop
accepting, once, after taking what waits in the accept queue (as many as it
serves at once: it may be the only worker told of them, `_take_waiting`), and
say why through `on_draining` (so the master knows every new connection now
goes to other workers and whether to replace us), close
keep-alive connections still idle after a short grace (a request sent on one
meanwhile is served with `Connection: close` rather than reset), serve every
connection that was accepted but has not sent its request yet (it is owed an
answer: closing it would drop a request), let in-flight requests finish with
`Connection: close`, return. Listeners are registered EPOLLEXCLUSIVE so one
connection wakes one worker, not all of them.

Spreading: Linux wakes the first *idle* worker in the listener's wait queue, and
a worker's place in it is where it registered; so with workers idle, the first
one would take nearly every connection, and a keep-alive connection stays with
the worker that accepted it. A worker that parks a connection it just accepted
registers the listener again, which moves it to the queue's tail: the next
connection goes to another idle worker. With one thread a new connection per
request is answered at once and never parked, so that path pays nothing; with
threads every connection parks (the loop thread, idle in epoll_wait however busy
its handler threads are, would otherwise take them all).

Hand-over: a ready connection parked on a worker that stays busy goes to the
generation's lobby, where an idle worker takes it (lobby.py has the rules; watcher.py
decides when with one thread, threads.py with several). With one thread and a lobby,
the watcher starts when the worker first parks a connection (it hands over only parked
ones), and from then on the serving thread holds the `serving` lock except inside a
connection's turn (`_step_inline`), so the watcher touches this module's tables only
while that thread is in the app.

This module never parses bytes (handlers.py, protocols/) and never raises for
anything a client does.

Its size (over the ~300 lines of STYLE.md), on purpose: `_Server` is one state machine
over one epoll and the tables it indexes (`conns`, `ready`, `queued`, the listeners, the
lobby), and every method here reads or changes those tables under the lock rules above.
What has a job of its own left: the handler threads (threads.py), the watcher
(watcher.py), the lobby's socket and its rules (lobby.py), the accept limits
(admission.py). Splitting the class itself across modules would hide which code
touches the tables, and under which lock.
"""

from __future__ import annotations

import _socket
import _thread
import os
import select
import time

from sockactd.log import get_logger
from sockactd.osapi import csignal
from sockactd.protocols.wsgi import wsgi_keys
from sockactd.worker.admission import EXHAUSTED, AcceptPause, RoomOrder
from sockactd.worker.channel import Channel
from sockactd.worker.connection import Context, Next
from sockactd.worker.handlers import handler_for

# worker/threads.py (queue, threading) only with --threads > 1; worker/watcher.py only with a
# lobby, once a connection parks.
TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections import deque  # typeshed knows it only as collections'
    from collections.abc import Callable, Sequence
    from typing import Any, Final

    from sockactd.config.model import Config
    from sockactd.sockets import Listener
    from sockactd.worker.board import Board
    from sockactd.worker.connection import ConnectionHandler as Handler
    from sockactd.worker.exchange import WSGIApp
    from sockactd.worker.lobby import Lobby
    from sockactd.worker.threads import HandlerThreads
    from sockactd.worker.watcher import Watcher
else:
    from _collections import deque  # the same class, without collections' own imports

__all__ = ["Links", "serve"]

log = get_logger(__name__)

_IN: Final = select.EPOLLIN
_LISTEN: Final = select.EPOLLIN | select.EPOLLEXCLUSIVE
_ONESHOT: Final = select.EPOLLIN | select.EPOLLONESHOT
_STREAM: Final = _socket.SOCK_STREAM
_PARK: Final = Next.PARK  # a module constant: Next.PARK is a slower class lookup
_CLOSE: Final = Next.CLOSE
_STOP_TICK: Final = 0.05
# With threads == 1, serve the FIFO of readable connections for at most this long before
# polling again, so connections that became readable meanwhile queue in arrival order.
_SLICE: Final = 0.001
# After a stop, an idle keep-alive connection stays open this long (at most the keep-alive
# timeout): a request the client sends on it meanwhile is served with `Connection: close`,
# instead of racing our close and getting a reset (clients and nginx retry, but need not).
_IDLE_GRACE: Final = 1.0
# A ready connection whose worker has been busy this long in one request (threads == 1) goes
# to the lobby (lobby.py); the watcher looks every _WATCH_PERIOD. Worst case from its request
# to an idle worker: about the sum.
_HAND_OVER_DELAY: Final = 0.05
_WATCH_PERIOD: Final = 0.025
# With threads, one that waited this long in the line for a handler thread goes to the lobby,
# where the generation's next free thread takes it (threads.py): what waits longer than this
# waits in one line for the whole generation, as uWSGI's clients do in its accept queue,
# not behind whichever worker happened to accept it. Short, but far above what a hand-over
# costs (tens of microseconds) and what a line of fast requests waits (hello world:
# under 1 ms).
_LINE_DELAY: Final = 0.010


class Links:
    """What ties one worker's loop to the rest: its stop pipe, its master, its generation.

    `stop_fd` readable (the worker's SIGTERM wakeup pipe): drain and return.
    `on_draining(why)`: told when this worker stops accepting, and why.
    `after_first_wakeup` runs once, after the first wake-up has been handled: set-up that can wait
    until the first waiting client has been served (entry.py's fd limit).
    `master_fd` (a pidfd of the master) readable: the master is gone. Drain as for
    SIGTERM, and close this worker's listening sockets at once, so that a new server
    can bind the address while in-flight requests finish here.
    `lobby`: the generation's lobby (lobby.py), shared with the other workers.
    """

    __slots__ = ("after_first_wakeup", "lobby", "master_fd", "on_draining", "stop_fd")

    def __init__(
        self,
        stop_fd: int,
        on_draining: Callable[[str], None] | None = None,
        after_first_wakeup: Callable[[], None] | None = None,
        master_fd: int = -1,
        lobby: Lobby | None = None,
    ) -> None:
        self.stop_fd = stop_fd
        self.on_draining = on_draining
        self.after_first_wakeup = after_first_wakeup
        self.master_fd = master_fd
        self.lobby = lobby


def serve(
    listeners: Sequence[Listener], app: WSGIApp, config: Config, board: Board, links: Links
) -> None:
    """Serve requests until `links.stop_fd` is readable or reload-on-rss is reached, then drain."""
    ctx = Context(app, config, board, apply_forwarded=_forwarder(config))
    if config.reload_on_rss:
        from sockactd.worker.memory import RssLimit

        ctx.memory = RssLimit(config.reload_on_rss)
    if config.threads <= 1:
        board.single_threaded()
    if board.counting:
        board.start_counting()
    server = _Server(listeners, ctx, links)
    restore = _flag_on_sigterm(ctx)
    try:
        server.run()
    finally:
        restore()
        server.close()
        board.publish_counts()


def _forwarder(config: Config) -> Callable[[dict[str, Any]], None] | None:
    if not config.trusted_proxies:
        return None
    try:
        from sockactd.protocols.proxy import TrustedProxies
    except ImportError:
        log.warning("trusted-proxies is set but sockactd.protocols.proxy is unavailable")
        return None
    return TrustedProxies(config.trusted_proxies).apply


def _flag_on_sigterm(ctx: Context) -> Callable[[], None]:
    """Chain a SIGTERM handler that marks responses `Connection: close` at once.

    The wakeup pipe only wakes the loop; a response being written inline at that
    moment must already know the worker is stopping.
    """
    previous = csignal.getsignal(csignal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        ctx.closing = True
        if callable(previous):
            previous(signum, frame)

    try:
        csignal.signal(csignal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (tests serve on threads): nothing to chain
        return lambda: None

    def restore() -> None:
        csignal.signal(csignal.SIGTERM, previous)

    return restore


class _Port:
    """One listener with what its connections need."""

    __slots__ = ("base", "factory", "sock", "tcp")

    def __init__(
        self,
        sock: _socket.socket,
        base: dict[str, Any],
        factory: type[Handler],
        tcp: bool,
    ) -> None:
        self.sock = sock
        self.base = base
        self.factory = factory
        self.tcp = tcp


def _port(listener: Listener, multithread: bool, multiprocess: bool) -> _Port:
    sock = listener.sock
    base = wsgi_keys("http", multithread, multiprocess)
    tcp = sock.family in (_socket.AF_INET, _socket.AF_INET6)
    factory = handler_for(listener.protocol)
    factory.base_environ(sock, tcp, base)
    return _Port(sock, base, factory, tcp)


class _Server:
    def __init__(self, listeners: Sequence[Listener], ctx: Context, links: Links) -> None:
        config = ctx.config
        stop_fd, master_fd, lobby = links.stop_fd, links.master_fd, links.lobby
        self.ctx = ctx
        self.stop_fd = stop_fd
        self.master_fd = master_fd
        self.on_draining = links.on_draining
        self.after_first_wakeup = links.after_first_wakeup
        self.threads = config.threads
        self.epoll = select.epoll()
        self.conns: dict[int, Handler] = {}
        self.ports: dict[int, _Port] = {}
        self.stopping = False
        self._close_idle_at: float | None = None
        self.cap = config.worker_connections
        self.pause = AcceptPause()
        self.room = RoomOrder(config.keepalive_timeout)
        # threads == 1: readable connections not served yet, oldest first; `queued` their fds
        self.ready: deque[Handler] = deque()
        self.queued: set[int] = set()
        multithread = self.threads > 1
        for listener in listeners:
            port = _port(listener, multithread, config.processes > 1)
            fd = listener.sock.fileno()
            self.ports[fd] = port
            self.epoll.register(fd, _LISTEN)
        self.port_list = list(self.ports.values())  # a lobby message names a listener by index
        self.epoll.register(stop_fd, select.EPOLLIN)
        if master_fd >= 0:
            self.epoll.register(master_fd, select.EPOLLIN)
        timeouts = [config.header_timeout, config.keepalive_timeout or config.header_timeout]
        self.tick = max(0.02, min(1.0, *(t / 4 for t in timeouts)))
        self.pool: HandlerThreads | None = None
        if self.threads > 1:
            from sockactd.worker.threads import HandlerThreads

            adopt = self._adopt_on_thread if lobby is not None else None
            self.pool = HandlerThreads(self.threads, step, self._after_step, adopt, _LINE_DELAY)
        self.lobby = lobby
        self.lobby_fd = -1
        self.lobby_polled = False
        self.lobby_ready: select.poll | None = None  # --threads: is a connection in the lobby?
        # threads == 1 with a lobby: held by this thread except inside a connection's turn
        # (watcher.py); `stepping` is the connection in that turn, never handed over
        self.serving: _thread.LockType | None = None
        self.stepping: Handler | None = None
        self.watcher: Watcher | None = None
        self.watcher_due = lobby is not None and self.pool is None  # at the first park
        if self.lobby is not None:
            self.lobby_fd = self.lobby.inbox.fileno()
            self._poll_lobby(True)
            if self.pool is not None:
                self.lobby_ready = select.poll()
                self.lobby_ready.register(self.lobby_fd, select.POLLIN)

    def _start_watcher(self) -> None:
        """threads == 1 with a lobby: start the watcher, when this worker first parks a
        connection. Not before: it only ever hands over parked connections, so until one is,
        it would have nothing to do, and importing it and starting its thread would delay
        the first answer of a cold start (docs/ARCHITECTURE.md, "Start-up order")."""
        from sockactd.worker.watcher import Watcher

        self.watcher_due = False
        self.serving = _thread.allocate_lock()
        self.serving.acquire()
        self.watcher = Watcher(
            self.serving, self.ctx.board, self._hand_over_ready, _HAND_OVER_DELAY, _WATCH_PERIOD
        )
        self.watcher.start()

    # --- loop -------------------------------------------------------------------------
    def run(self) -> None:
        poll = self.epoll.poll
        conns = self.conns
        ports = self.ports
        pool = self.pool
        next_sweep = time.monotonic() + self.tick
        while not (self.stopping and self._drained() and not self._adopt()):
            timeout = 0.0 if self.ready else (_STOP_TICK if self.stopping else self.tick)
            if self.pause.resume_at:
                timeout = min(timeout, max(0.0, self.pause.resume_at - time.monotonic()))
            if pool is not None and self.lobby is not None:
                timeout = self._before_poll_threaded(pool, timeout)
            events = poll(timeout)
            if len(events) > 1:
                # A stop goes first: it takes what waits on the listeners itself, so the
                # master hears that this worker stopped accepting before the app runs again.
                events.sort(key=lambda event: event[0] != self.stop_fd)
            for fd, _ in events:
                handler = conns.get(fd)
                if handler is not None:
                    self._ready(handler)
                elif fd in ports:
                    # `stopping`, not `ctx.closing` (set by the SIGTERM handler at once): a
                    # wake-up the kernel gave this worker alone is still this worker's
                    if not self.stopping:
                        self._accept(ports[fd])
                elif fd == self.lobby_fd:
                    self._adopt()  # also while stopping: see lobby.py
                elif fd == self.stop_fd:
                    self._drain_stop_fd()
                    self._begin_stop("SIGTERM")
                elif fd == self.master_fd:
                    self._master_gone()
            if self.ready:
                self._serve_ready()
            if self.after_first_wakeup is not None:
                once, self.after_first_wakeup = self.after_first_wakeup, None
                once()
            if self.ctx.closing and not self.stopping:
                self._begin_stop(self._why_closing())
            now = time.monotonic()
            if self.pause.resume_at and now >= self.pause.resume_at:
                self._resume_accepting()
            if self._close_idle_at is not None and now >= self._close_idle_at:
                self._close_idle()
            if now >= next_sweep:
                self._sweep(now)
                self.ctx.board.publish_counts()
                next_sweep = now + self.tick

    def _why_closing(self) -> str:
        return self.ctx.stop_reason or "SIGTERM"

    def _drained(self) -> bool:
        # Parked connections still owed a request keep the worker alive until served or
        # past their header-timeout (the sweep closes them).
        return not self.conns and (self.pool is None or self.pool.quiet())

    def _accept(self, port: _Port) -> None:
        """Accept one connection and serve what it already sent, or park it.

        One per wake-up: when more connections wait, the level-triggered epoll reports
        the listener again at once. Looping until accept() fails with EAGAIN would cost
        an exception per wake-up, and CPython's BlockingIOError (~4 us) is dearer than
        the system call it reports -- most wake-ups under load carry one connection.
        """
        # _accept skips socket.accept's Python wrapper (family/type enum lookups); the
        # new fd is blocking, as Channel wants (it passes MSG_DONTWAIT). The connection
        # is a bare _socket.socket: socket.socket's Python __init__ and close() wrappers
        # cost time on every request and add nothing a worker uses.
        if len(self.conns) >= self.cap and not self._room_at_the_cap():
            return  # accepts pause: it waits in the accept queue, or another worker takes it
        try:
            fd, address = port.sock._accept()  # type: ignore[attr-defined]
        except BlockingIOError:
            return  # another worker was faster
        except OSError as exc:
            self._accept_failed(exc)
            return
        if self._take(port, _socket.socket(port.sock.family, _STREAM, 0, fd), address):
            self._to_the_back(port.sock.fileno())

    def _take(self, port: _Port, sock: _socket.socket, address: Any) -> bool:
        """Serve a new connection's request or park it (True: it stays parked here)."""
        handler = self._handler(port, sock, address)
        channel = handler.channel
        if self.pool is not None:
            self.conns[channel.fd] = handler
            self.epoll.register(channel.fd, _ONESHOT)
            self.room.parked_new(handler)
            return True
        return self._step_inline(handler, registered=False)

    def _handler(self, port: _Port, sock: _socket.socket, address: Any) -> Handler:
        channel = Channel(sock, address, self.ctx.config.socket_timeout, port.tcp)
        return port.factory(self.ctx, channel, port.base)

    def _to_the_back(self, fd: int) -> None:
        """Register a listener (or the lobby) again: its next wake-up goes to another worker."""
        if self.pause.resume_at or self.stopping:
            return  # the listeners are not polled now; resuming registers them
        try:
            self.epoll.unregister(fd)
        except OSError:
            return
        try:
            self.epoll.register(fd, _LISTEN)
        except OSError as exc:  # ENOMEM, ENOSPC: the pause's back-off registers it again
            self.pause.exhausted(exc, time.monotonic(), len(self.conns))
            self._unregister_listeners()

    def _ready(self, handler: Handler) -> None:
        if self.pool is not None:
            self.pool.submit(handler)
        elif handler.channel.fd not in self.queued:  # level-triggered: reported until read
            self.queued.add(handler.channel.fd)
            self.ready.append(handler)

    def _serve_ready(self) -> None:
        """Serve readable connections oldest first, for one `_SLICE` (at least one)."""
        ready, queued, conns = self.ready, self.queued, self.conns
        began = time.monotonic()
        while ready:
            handler = ready.popleft()
            fd = handler.channel.fd
            queued.discard(fd)
            if conns.get(fd) is handler:  # not closed (or handed over) while it waited
                self._step_inline(handler, registered=True)
            if self.ctx.closing or time.monotonic() - began >= _SLICE:
                return  # closing: the loop begins the stop (no more accepts) first

    def _step_inline(self, handler: Handler, registered: bool) -> bool:
        """Serve what a connection sent; park it (True) or close it (False)."""
        serving = self.serving
        if serving is None:
            outcome = step(handler)
        else:  # the watcher may hand other connections over during this turn (watcher.py)
            self.stepping = handler
            serving.release()
            outcome = step(handler)
            serving.acquire()
        if outcome is _PARK and not (self.stopping and handler.between_requests()):
            if not registered:
                fd = handler.channel.fd
                self.conns[fd] = handler
                self.epoll.register(fd, _IN)
                self.room.parked_new(handler)
                if self.watcher_due:
                    self._start_watcher()
            return True
        self.close_conn(handler, registered)
        return False

    def _after_step(self, handler: Handler, outcome: Next) -> None:
        """--threads: park a connection again after a thread's turn, or close it (lock held)."""
        if outcome is _PARK and not (self.stopping and handler.between_requests()):
            fd = handler.channel.fd
            if fd in self.conns:
                self.epoll.modify(fd, _ONESHOT)
            else:  # taken from the lobby by a thread (`_adopt_on_thread`): parked here first now
                self.conns[fd] = handler
                self.epoll.register(fd, _ONESHOT)
                self.room.parked_new(handler)
        else:
            self.close_conn(handler)

    def close_conn(self, handler: Handler, registered: bool = True) -> None:
        fd = handler.channel.fd
        if registered and self.conns.pop(fd, None) is not None:
            self.room.closed(fd)
            try:
                self.epoll.unregister(fd)
            except OSError:
                pass
        handler.channel.close()

    # --- the lobby (lobby.py) ---------------------------------------------------------------
    def _hand_over_ready(self) -> None:
        """threads == 1, on the watcher's thread while this worker is in a slow request:
        every parked connection that is readable and movable goes to the lobby."""
        if self.ctx.closing:
            return
        conns = self.conns
        for fd, _ in self.epoll.poll(0):  # level-triggered: this consumes nothing
            handler = conns.get(fd)
            if handler is None or handler is self.stepping or not handler.movable():
                continue
            if not self._give_away(handler):
                return  # the lobby is full: the rest stay here

    def _give_away(self, handler: Handler) -> bool:
        """Put a connection in the lobby and forget it; False (and keep it) when full.

        Runs under the lock that orders this worker's tables (the serving lock, or the
        handler threads' lock), so no turn of this worker reads it meanwhile.
        """
        assert self.lobby is not None
        fd = handler.channel.fd
        base = getattr(handler, "base", None)  # both handlers keep their listener's environ
        index = next(i for i, port in enumerate(self.port_list) if port.base is base)
        if not self.lobby.send_nowait(fd, index):
            return False
        if self.queued:  # threads == 1: it may wait in the FIFO too
            self.queued.discard(fd)
            try:
                self.ready.remove(handler)
            except ValueError:
                pass
        self.close_conn(handler)
        return True

    def _adopt(self) -> bool:
        """Take one connection from the lobby and serve or park it here (False: none came)."""
        if self.lobby is None:
            return False
        taken = self.lobby.receive_nowait()
        if taken is None:
            return False
        received = self._received(*taken)
        if received is None:
            return True
        if len(self.conns) >= self.cap:
            self._room_at_the_cap()  # ours already: it parks here even when none may go
        if self._take(*received) and not self.stopping:
            self._to_the_back(self.lobby_fd)
        return True

    def _adopt_on_thread(self) -> Handler | None:
        """--threads: the lobby's oldest connection, for a handler thread to serve next
        instead of this worker's line (threads.py has why); None when the lobby is empty.

        Runs on that thread under the handler threads' lock. The connection enters `conns`
        and the epoll when its turn parks it (`_after_step`); until then only `busy` has
        it, so a full table (`worker-connections`) is at most one per thread over. Making
        room takes this lock, so at the cap the thread takes nothing: the loop's `_adopt` may.
        """
        if len(self.conns) >= self.cap or self.pause.resume_at or self.ctx.closing:
            return None
        assert self.lobby is not None and self.lobby_ready is not None
        if not self.lobby_ready.poll(0):  # cheaper than a receive that fails
            return None
        taken = self.lobby.receive_nowait()
        if taken is None:
            return None
        received = self._received(*taken)
        return None if received is None else self._handler(*received)

    def _received(self, fd: int, index: int) -> tuple[_Port, _socket.socket, Any] | None:
        """A connection that came from the lobby: its listener, socket and peer."""
        if index >= len(self.port_list):
            os.close(fd)  # cannot come from a worker of this generation
            return None
        port = self.port_list[index]
        sock = _socket.socket(port.sock.family, _STREAM, 0, fd)
        try:
            address = sock.getpeername()
        except OSError:
            address = ""  # the peer reset it in transit: the first read says so
        return port, sock, address

    def _poll_lobby(self, wanted: bool) -> None:
        if wanted == self.lobby_polled:
            return
        self.lobby_polled = wanted
        if wanted:
            self.epoll.register(self.lobby_fd, _LISTEN)
        else:
            self.epoll.unregister(self.lobby_fd)

    def _before_poll_threaded(self, pool: HandlerThreads, timeout: float) -> float:
        """--threads with a lobby: hand over what waited too long; poll the lobby only
        with a thread free to serve what comes from it. Returns the poll's timeout."""
        oldest = pool.oldest_wait()
        if oldest is not None and not self.ctx.closing:
            now = time.monotonic()
            if now - oldest >= _LINE_DELAY:
                # what is left late could not go: due next is the first not late yet (a
                # late one kept would make this poll's timeout 0 until a thread takes it)
                oldest = pool.hand_over_late(now - _LINE_DELAY, self._give_away)
            if oldest is not None:
                timeout = min(timeout, max(0.0, oldest + _LINE_DELAY - now))
        free = pool.idle > 0
        self._poll_lobby(free)
        # no thread free: nothing wakes this loop when one frees up, so look again soon
        return timeout if free else min(timeout, _WATCH_PERIOD)

    # --- admission (admission.py decides) -----------------------------------------------
    def _accept_failed(self, exc: OSError) -> None:
        if exc.errno not in EXHAUSTED:
            log.debug("accept failed: %s", exc)  # ECONNABORTED and the like: one client's
            return
        self._make_room()
        self.pause.exhausted(exc, time.monotonic(), len(self.conns))
        self._unregister_listeners()

    def _resume_accepting(self) -> None:
        self.pause.resumed()
        if self.stopping:
            return
        for fd in self.ports:
            try:
                self.epoll.register(fd, _LISTEN)
            except FileExistsError:
                pass

    def _unregister_listeners(self) -> None:
        for fd in self.ports:
            try:
                self.epoll.unregister(fd)
            except OSError:
                pass

    def _room_at_the_cap(self) -> bool:
        """At worker-connections: make room for one more, or pause accepts (False)."""
        if self._make_room():
            self.pause.say(
                "cap",
                time.monotonic(),
                "worker %d holds worker-connections=%d parked connections: closing one "
                "that waited for its first request, or a keep-alive one idle longest",
                os.getpid(),
                self.cap,
            )
            return True
        self.pause.full(time.monotonic(), len(self.conns))
        self._unregister_listeners()
        return False

    def _make_room(self) -> bool:
        """Close the parked connection admission.py's order names (False: none may go).

        With threads the choice and the close happen under the pool's lock: handler
        threads park and close connections, changing the tables the order reads.
        """
        pool = self.pool
        if pool is None:
            return self._close_for_room(self.queued)
        with pool.lock:
            return self._close_for_room(pool.busy)

    def _close_for_room(self, busy: set[int]) -> bool:
        def kept(handler: Handler) -> bool:
            return handler.channel.fd in busy or _bytes_waiting(handler)

        chosen = self.room.pick(self.conns, time.monotonic(), kept)
        if chosen is None:
            return False
        log.debug("closing a parked connection to make room, from %s", chosen.channel.peer[0])
        self.close_conn(chosen)
        return True

    # --- timeouts and stop -------------------------------------------------------------------
    def _sweep(self, now: float) -> None:
        """Close parked connections past their deadline -- unless bytes wait unread on one.

        Unread bytes mean the worker has not looked since they came (it was busy in a
        request, or they came just now): a request that arrived is not idle, and closing
        would reset it unanswered. The next poll reads them; a head still incomplete
        after that is closed by a later sweep.
        """
        self.ctx.board.beat(now)  # the master's liveness check (master/liveness.py)
        busy = self.pool.busy if self.pool is not None else self.queued
        for fd, handler in list(self.conns.items()):
            if fd not in busy and now > handler.idle_deadline() and not _bytes_waiting(handler):
                log.debug("closing parked connection from %s: timed out", handler.channel.peer[0])
                if self.pool is not None:
                    self.pool.close_parked(handler, self.close_conn)
                else:
                    self.close_conn(handler)

    def _master_gone(self) -> None:
        self.epoll.unregister(self.master_fd)
        self.master_fd = -1
        self._begin_stop("its master is gone")
        for port in self.ports.values():
            port.sock.close()  # only this process's reference: free the address for a restart

    def _drain_stop_fd(self) -> None:
        try:
            os.read(self.stop_fd, 4096)
        except BlockingIOError:
            pass

    def _begin_stop(self, why: str) -> None:
        """Stop accepting (once, whatever asks first), take what waits, then tell the master."""
        if self.stopping:
            return  # SIGTERM is seen twice: by the handler (`ctx.closing`) and on `stop_fd`
        self.stopping = True
        self.ctx.closing = True
        log.info("worker %d stopping (%s) after %d requests", os.getpid(), why, self.ctx.served)
        self._unregister_listeners()
        self._take_waiting()
        if self.on_draining is not None:
            self.on_draining(why)
        grace = min(_IDLE_GRACE, self.ctx.config.keepalive_timeout)
        self._close_idle_at = time.monotonic() + grace

    def _take_waiting(self) -> None:
        """Accept what waits on each listener, as many as this worker serves at once; park it.

        A new connection puts the listener on the ready list of each worker not waiting in
        epoll_wait and wakes the first one that is (EPOLLEXCLUSIVE). So this worker may have
        been told of a connection that the others hear of only when they are done with
        their requests -- or, where the kernel woke only this one, when the next connection
        comes: left in the queue, it would wait that long. At most `threads` per listener:
        a stopping worker that took a whole queue under load would serve it alone, slower
        than the workers that stay, and past worker-reload-mercy be killed with it. Parked,
        not served yet: the master hears `on_draining` without waiting for the app. After
        the listeners are unregistered, so a connection that comes later wakes another
        worker. Not while accepts pause (worker-connections, the fd limit): the listeners
        were not polled then, and the pause's reason holds. Not when it stops on its own
        (reload-on-rss): past its limit it serves nothing more, and the replacement the
        master starts finds what waits as it registers the listeners.
        """
        if self.pause.resume_at or self.ctx.stop_reason:
            return
        for port in self.port_list:
            for _ in range(self.threads):
                if len(self.conns) >= self.cap:
                    return
                try:
                    fd, address = port.sock._accept()  # type: ignore[attr-defined]
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in EXHAUSTED:
                        return
                    log.debug("accept failed: %s", exc)  # one client's (ECONNABORTED)
                    continue
                sock = _socket.socket(port.sock.family, _STREAM, 0, fd)
                handler = self._handler(port, sock, address)
                self.conns[fd] = handler
                self.epoll.register(fd, _IN if self.pool is None else _ONESHOT)
                self.room.parked_new(handler)

    def _close_idle(self) -> None:
        """Close keep-alive connections idle since the stop (fresh ones are still owed)."""
        self._close_idle_at = None
        busy = self.pool.busy if self.pool is not None else self.queued
        for fd, handler in list(self.conns.items()):
            if fd not in busy and handler.between_requests() and not _bytes_waiting(handler):
                if self.pool is not None:
                    self.pool.close_parked(handler, self.close_conn)
                else:
                    self.close_conn(handler)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.pool is not None:
            self.pool.shutdown()
        for handler in list(self.conns.values()):
            self.close_conn(handler)
        self.epoll.close()
        self.pause.close()


def step(handler: Handler) -> Next:
    """Let a handler work on its readable connection; errors close it, never the worker."""
    try:
        return handler.on_readable()
    except OSError as exc:
        log.debug("connection from %s failed: %s", handler.channel.peer[0], exc)
    except Exception:
        log.exception("unexpected error on a connection from %s", handler.channel.peer[0])
    return _CLOSE


def _bytes_waiting(handler: Handler) -> bool:
    """True when the client already sent more (a request racing our close): serve it."""
    try:
        return bool(handler.channel.sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT))
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return False

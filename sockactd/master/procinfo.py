"""What the kernel says about a process, read from /proc by the master.

Read-only and non-blocking (procfs answers from memory). A process that is
gone, or a field the kernel does not offer, gives None: callers report it as
missing, never fail on it.
"""

from __future__ import annotations

import _socket
import os
import socket
import struct

__all__ = ["listen_queue", "rss"]

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int) -> int | None:
    """Resident set size of `pid` in bytes (statm's second field), or None if it is gone."""
    sizes = memory(pid)
    return sizes[0] if sizes is not None else None


def memory(pid: int) -> tuple[int, int] | None:
    """(resident, virtual) size of `pid` in bytes, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            fields = statm.read().split()
        return int(fields[1]) * _PAGE, int(fields[0]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


# struct tcp_info: eight u8 fields, then u32 rto, ato, snd_mss, rcv_mss, unacked, sacked, ...
# On a listening socket `unacked` is the accept queue's length and `sacked` its limit.
_TCP_INFO_QUEUE = struct.Struct("=II")
_TCP_INFO_QUEUE_AT = 24
# sock_diag(7) for UNIX sockets: ask by inode for the queue lengths (UDIAG_SHOW_RQLEN),
# which on a listening socket are the accept queue's length and its limit.
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_TCP_LISTEN = 10
_UDIAG_SHOW_RQLEN = 0x10
_UNIX_DIAG_RQLEN = 4
_NLMSG = struct.Struct("=IHHII")
_UNIX_DIAG_REQ = struct.Struct("=BBHIIIII")
_UNIX_DIAG_MSG_SIZE = 16
_RTATTR = struct.Struct("=HH")


def listen_queue(sock: _socket.socket) -> tuple[int, int] | None:
    """(connections waiting to be accepted, the queue's limit) of a listening socket, or None."""
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            current, limit = _TCP_INFO_QUEUE.unpack_from(info, _TCP_INFO_QUEUE_AT)
            return current, limit
        if sock.family == socket.AF_UNIX:
            return _unix_queue(os.fstat(sock.fileno()).st_ino)
    except (OSError, struct.error):
        return None
    return None


def _unix_queue(inode: int) -> tuple[int, int] | None:
    request = _UNIX_DIAG_REQ.pack(socket.AF_UNIX, 0, 0, 1 << _TCP_LISTEN, inode,
                                  _UDIAG_SHOW_RQLEN, 0xFFFFFFFF, 0xFFFFFFFF)  # fmt: skip
    header = _NLMSG.pack(_NLMSG.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as netlink:
        netlink.settimeout(0.5)  # the kernel answers at once; never hang the master on it
        netlink.send(header + request)
        reply = netlink.recv(8192)
    length, kind = _NLMSG.unpack_from(reply)[:2]
    if kind != _SOCK_DIAG_BY_FAMILY or length > len(reply):
        return None
    offset = _NLMSG.size + _UNIX_DIAG_MSG_SIZE
    while offset + _RTATTR.size <= length:
        size, attr = _RTATTR.unpack_from(reply, offset)
        if size < _RTATTR.size:
            return None
        if attr == _UNIX_DIAG_RQLEN:
            current, limit = _TCP_INFO_QUEUE.unpack_from(reply, offset + _RTATTR.size)
            return current, limit
        offset += (size + 3) & ~3
    return None

"""Splitting a TAK stream into messages, and framing messages to send. Pure.

A TAK stream carries either of two encodings, and a device may switch between them:

- TAK protocol version 0: CoT XML, one ``<event>`` after another, split at ``</event>``
  (an XML declaration before an event is allowed);
- TAK protocol version 1, streaming: ``0xbf``, the payload's length as a protobuf varint,
  then a ``TakMessage``.

Written here rather than taken from takproto: its reader needs a whole message in hand,
and a TCP stream delivers arbitrary pieces of them. Every message is bounded
(``max_bytes``); a stream that breaks the framing cannot be resynchronised, so the
splitter refuses it and the connection is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MAGIC = 0xBF
_END = b"</event>"
_DECLARATION = b"<?xml"


class Encoding(Enum):
    XML = "xml"
    PROTOBUF = "protobuf"


@dataclass(frozen=True, slots=True)
class Message:
    encoding: Encoding
    payload: bytes  # the XML of one event, or one TakMessage without its framing


class FramingError(ValueError):
    """The stream broke the framing (an oversized message, a bad varint, a byte that starts no message): close it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Splitter:
    """``splitter.feed(chunk)`` returns the messages completed by the chunk, in order."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[Message]:
        self._buffer += chunk
        messages = []
        while (message := self._next()) is not None:
            messages.append(message)
        return messages

    def _next(self) -> Message | None:
        buffer = self._buffer
        start = 0
        while start < len(buffer) and buffer[start] in b" \t\r\n\x00":  # keep-alive whitespace between messages
            start += 1
        del buffer[:start]
        if not buffer:
            return None
        if buffer[0] == MAGIC:
            return self._protobuf()
        if buffer[0] == ord("<"):
            return self._xml()
        raise FramingError("bad_framing", f"a message starts with byte 0x{buffer[0]:02x}: neither '<' (XML) nor 0xbf (protobuf)")

    def _xml(self) -> Message | None:
        end = self._buffer.find(_END)
        if end < 0:
            if len(self._buffer) > self.max_bytes:
                raise FramingError("oversized", f"an XML message runs past {self.max_bytes} bytes without </event>")
            return None
        end += len(_END)
        if end > self.max_bytes:
            raise FramingError("oversized", f"an XML message of {end} bytes is larger than the {self.max_bytes} allowed")
        payload = bytes(self._buffer[:end])
        del self._buffer[:end]
        if payload.startswith(_DECLARATION):
            payload = payload[payload.find(b"?>") + 2 :].lstrip()
        return Message(Encoding.XML, payload)

    def _protobuf(self) -> Message | None:
        length, at = 0, 1
        for shift in range(0, 64, 7):
            if at >= len(self._buffer):
                return None  # the varint is not all here yet
            byte = self._buffer[at]
            at += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
        else:
            raise FramingError("bad_varint", "a protobuf message's length is a varint of more than 64 bits")
        if length == 0 or length > self.max_bytes:
            raise FramingError("oversized", f"a protobuf message of {length} bytes is outside 1 to {self.max_bytes}")
        if len(self._buffer) < at + length:
            return None
        payload = bytes(self._buffer[at : at + length])
        del self._buffer[: at + length]
        return Message(Encoding.PROTOBUF, payload)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def frame(message: Message) -> bytes:
    """A message as it goes on a stream."""
    if message.encoding is Encoding.XML:
        return message.payload
    return bytes([MAGIC]) + varint(len(message.payload)) + message.payload

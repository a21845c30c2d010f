"""Integer codes for the string tokens of one long byte string (a ``group_concat`` of a column), worked
out by numpy rather than a dict lookup per token.

A dict keyed by Python strings costs a cache miss per event once it holds 100,000 item ids (the new
string is compared with the stored key): at 5 million events the item column's dict took 2 s, more
than the store's own query. Here each token becomes a fixed-width key (its length and bytes packed
into 64-bit words), keys are hashed, made unique with a sort, and looked up in the sorted hashes of
the values seen so far. Every hash that stands for more than one token is checked byte for byte
against the token it was first given to: a collision, or a token longer than :data:`MAX_TOKEN_BYTES`,
moves the column over to a dict (the codes already given stay as they are).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The longest token (in UTF-8 bytes) that gets a fixed-width key: 8 words of 64 bits, less the
#: length byte. Longer ones move their column to the dict.
MAX_TOKEN_BYTES = 63
#: Up to this many known values, a block's values are first looked up directly (the known hashes
#: stay in cache): no sort where every value is known already.
_FEW = 4096
#: Per word position, an odd multiplier: a key's hash is the sum of its mixed words times these (a
#: word of zeros adds nothing, so a key and the same key widened with zero words hash alike).
_MULTIPLIERS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
     0x85EBCA77C2B2AE63, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)  # fmt: skip


def _mixed(words: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser: a bijection that maps 0 to 0 and spreads every input bit."""
    x = words ^ (words >> np.uint64(33))
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


def _hashes(words: np.ndarray) -> np.ndarray:
    """One uint64 per key (row of ``words``); exact (a bijection) for one-word keys."""
    out = _mixed(words[:, 0]) * _MULTIPLIERS[0]
    for k in range(1, words.shape[1]):
        out += _mixed(words[:, k]) * _MULTIPLIERS[k]
    return out


def split_tokens(data: bytes, separator: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bytes of ``data`` (padded), and each token's start and length (tokens between separators)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    cuts = np.flatnonzero(buf == separator)
    starts = np.empty(len(cuts) + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = cuts + 1
    ends = np.empty_like(starts)
    ends[:-1] = cuts
    ends[-1] = len(buf)
    return buf, starts, ends - starts


def _key_words(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, n_words: int) -> np.ndarray:
    """Per token, its length (the first byte) and then its bytes, zero-padded to ``n_words`` words.

    Each word is read as 8 bytes at once from any offset of the buffer (an unaligned view), the
    bytes past the token masked off: a gather per word rather than per byte."""
    padded = np.zeros(len(buf) + 8 * n_words + 8, dtype=np.uint8)
    padded[1 : len(buf) + 1] = buf  # word 0 starts a byte before its token: where the length goes
    at_any_offset = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    words = np.empty((len(starts), n_words), dtype="<u8")
    for k in range(n_words):
        kept = np.clip(lengths - (8 * k - 1), 0, 8)  # bytes of this word inside the token
        word = at_any_offset[starts + 8 * k] & _KEEP[kept]
        if k == 0:
            word &= ~np.uint64(0xFF)
            word |= lengths.astype(np.uint64)
        words[:, k] = word
    return words


#: The low ``c`` bytes of a word, for ``c`` in 0..8.
_KEEP = np.array([(1 << (8 * c)) - 1 for c in range(9)], dtype=np.uint64)


class TokenCodes:
    """Dense integer codes for a column's tokens, in order of first occurrence over any number of
    blocks, and at the end the vocabulary (code → string)."""

    def __init__(self) -> None:
        self._hashes = np.empty(0, dtype=np.uint64)  # sorted
        self._hash_codes = np.empty(0, dtype=np.int32)  # the code of each of _hashes
        self._words = np.zeros((0, 1), dtype="<u8")  # code → key (zero-padded to the widest seen)
        self._dict: dict[str, int] | None = None  # once the column has moved over to a dict

    def __len__(self) -> int:
        return len(self._dict) if self._dict is not None else len(self._words)

    def encode(self, data: bytes, separator: int, n: int) -> np.ndarray | None:
        """The codes of the ``n`` tokens of ``data`` (UTF-8, split at byte ``separator``); None when
        the tokens are not ``n`` (nothing is then recorded)."""
        if not n:
            return np.empty(0, dtype=np.int32)
        buf, starts, lengths = split_tokens(data, separator)
        if len(starts) != n:
            return None
        if self._dict is None and lengths.max() <= MAX_TOKEN_BYTES:
            codes = self._encode_keys(_key_words(buf, starts, lengths, int(lengths.max() + 8) // 8))
            if codes is not None:
                return codes
        return self._encode_dict(data.decode("utf-8").split(chr(separator)))

    # ------------------------------------------------------------------ keys
    def _encode_keys(self, words: np.ndarray) -> np.ndarray | None:
        n = len(words)
        hashes = _hashes(words)
        # Runs of one value (a shopper's events come together) are looked at once.
        heads = np.flatnonzero(np.concatenate(([True], hashes[1:] != hashes[:-1])))
        head_hashes = hashes[heads]
        if 0 < len(self._hashes) <= _FEW:  # a few values (event types) all known: looked up directly
            at = np.minimum(np.searchsorted(self._hashes, head_hashes), len(self._hashes) - 1)
            if np.array_equal(self._hashes[at], head_hashes):
                head_codes = self._hash_codes[at]
                codes = np.repeat(head_codes, np.diff(np.append(heads, n))) if len(heads) < n else head_codes
                return codes if _same_keys(self._words, codes, words) else None
        # Sorted, the distinct hashes fall out as runs, and their look-up among the known ones (sorted
        # too) walks forward instead of jumping about: three times faster at 200,000 item ids.
        order = np.argsort(head_hashes)
        ordered = head_hashes[order]
        starts = np.concatenate(([True], ordered[1:] != ordered[:-1]))
        distinct = ordered[starts]
        first = np.minimum.reduceat(order, np.flatnonzero(starts))  # each distinct hash's first run
        at = np.searchsorted(self._hashes, distinct)
        known = at < len(self._hashes)
        known[known] = self._hashes[at[known]] == distinct[known]
        distinct_codes = np.empty(len(distinct), dtype=np.int32)
        distinct_codes[known] = self._hash_codes[at[known]]
        new = np.flatnonzero(~known)
        new = new[np.argsort(first[new])]  # numbered in order of first occurrence
        distinct_codes[new] = np.arange(len(self._words), len(self._words) + len(new), dtype=np.int32)
        new_words = words[heads[first[new]]]
        head_codes = np.empty(len(heads), dtype=np.int32)
        head_codes[order] = distinct_codes[np.cumsum(starts) - 1]
        codes = np.repeat(head_codes, np.diff(np.append(heads, n))) if len(heads) < n else head_codes
        # Each token against the key its code stands for (a few ms a block; one-word keys cannot
        # collide, the hash being a bijection, but this keeps the codes exact whatever the hash).
        if not _same_keys(_stacked(self._words, new_words) if len(new) else self._words, codes, words):
            return None  # two tokens share a hash: nothing recorded
        if len(new):
            new.sort()  # back in hash order
            self._hashes = np.insert(self._hashes, at[new], distinct[new])
            self._hash_codes = np.insert(self._hash_codes, at[new], distinct_codes[new])
            self._words = _stacked(self._words, new_words)
        return codes

    def _vocabulary_from_keys(self) -> np.ndarray:
        keys = self._words.view(np.uint8).reshape(len(self._words), self._words.shape[1] * 8)
        if not len(keys):
            return np.empty(0, dtype=str)
        lengths, body = keys[:, 0], keys[:, 1:]
        width = int(lengths.max())
        if width == 0 or body[:, :width].max() < 0x80:  # ASCII: one byte a character
            return np.ascontiguousarray(body[:, : max(width, 1)]).astype(np.uint32).view(f"<U{max(width, 1)}")[:, 0]
        return np.array(self._strings(), dtype=str)

    # ------------------------------------------------------------------ dict
    def _encode_dict(self, values: list[str]) -> np.ndarray:
        if self._dict is None:
            self._dict = {value: code for code, value in enumerate(self._strings())}
        seen = self._dict
        return np.fromiter((seen.setdefault(v, len(seen)) for v in values), np.int32, len(values))

    def _strings(self) -> list[str]:
        keys = self._words.view(np.uint8).reshape(len(self._words), self._words.shape[1] * 8)
        return [bytes(row[1 : 1 + row[0]]).decode("utf-8") for row in keys]

    def finish(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The vocabulary (unicode, code order) and ``codes`` (already dense)."""
        if self._dict is not None:
            return np.array(list(self._dict), dtype=str), codes
        return self._vocabulary_from_keys(), codes


def _same_keys(table: np.ndarray, codes: np.ndarray, words: np.ndarray) -> bool:
    """Whether each row of ``words`` is the key ``table`` holds for its code (either zero-padded to
    the other's width)."""
    if table.shape[1] == 1 and words.shape[1] == 1:
        return bool(np.array_equal(table[:, 0][codes], words[:, 0]))
    stored = table[codes]
    width = min(stored.shape[1], words.shape[1])
    return not (np.any(stored[:, :width] != words[:, :width]) or stored[:, width:].any() or words[:, width:].any())


def _stacked(words: np.ndarray, more: np.ndarray) -> np.ndarray:
    width = max(words.shape[1], more.shape[1])

    def widened(a: np.ndarray) -> Any:
        return a if a.shape[1] == width else np.pad(a, ((0, 0), (0, width - a.shape[1])))

    return np.concatenate([widened(words), widened(more)])

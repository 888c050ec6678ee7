"""Charset decoding of HTML pages: bytes → str as a browser would read them, checked against the bytes.

:func:`decode_html` is what the WARC path runs on every page; the first rule that applies wins:

1. A byte order mark (UTF-8, UTF-16LE, UTF-16BE) decides, and is not part of the text.
2. A body that is valid UTF-8 is UTF-8, whatever the page declares (legacy text with non-ASCII
   bytes is practically never valid UTF-8; pages saved as UTF-8 that keep an old ``gb2312`` or
   ``iso-8859-1`` declaration are common). A pure-ASCII body reads the same in any of them.
3. UTF-8 with a few bad bytes (a page cut in the middle of a character, a stray legacy byte) is still
   UTF-8: at most :data:`MAX_UTF8_ERRORS` U+FFFD per non-ASCII byte (first measured on the
   :data:`UTF8_PROBE` bytes after the first bad one, then on the whole page). Legacy text read as
   UTF-8 gives far more: about one per non-ASCII byte for single-byte charsets, a half to two thirds
   for GBK, Big5, Shift_JIS, EUC-JP or EUC-KR.
4. The declared charset: the HTTP ``Content-Type`` charset, then the first ``<meta>`` charset in the
   first :data:`META_WINDOW` bytes. When the two disagree, the one resiliparse's detector agrees
   with is tried first. A declaration is used when it decodes with at most
   :data:`MAX_LEGACY_ERRORS` U+FFFD per non-ASCII byte.
5. resiliparse's ``detect_encoding`` on the bytes, if it decodes cleanly (its non-HTML5 answer through
   the label table: its HTML5 mode answers ``utf-8`` for EUC-KR); ``cp1252`` if it has no answer.
6. Otherwise the candidate (UTF-8, declared, detected) with the fewest U+FFFD per non-ASCII byte.

Labels go through the WHATWG Encoding Standard's label table (resiliparse's ``map_encoding_to_html5``),
to the Python codec that decodes what browsers decode: ``gb2312``/``gbk``/``x-gbk`` → ``gb18030`` (Python's
``gb2312`` and ``gbk`` are narrower and fail on pages browsers read fine), ``iso-8859-1``/``latin1``
/``ascii`` → ``cp1252``, ``euc-kr`` → ``cp949``, ``shift_jis`` → ``cp932``, ``big5`` →
``big5hkscs``, ``tis-620`` → ``cp874``. A ``<meta>`` that says UTF-16 means UTF-8 (the spec's rule);
unknown labels and the spec's "replacement" labels (``iso-2022-kr``, ``hz-gb-2312``, ...) are
ignored. Undecodable bytes become U+FFFD (WHATWG's 0x80 → € in GB18030 and the C1 controls of
windows-125x included); the charset returned is always the one the text was decoded with.

:func:`html_to_str` is the same without an HTTP header (a page on disk, the benchmarks).
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

#: At most this many U+FFFD per non-ASCII byte for a body that is not valid UTF-8 to be read as UTF-8.
MAX_UTF8_ERRORS = 0.2
#: At most this many U+FFFD per non-ASCII byte for a declared charset that does not decode cleanly (a
#: stray byte, a page cut in the middle of a character) to be used all the same.
MAX_LEGACY_ERRORS = 0.01
#: How far into the body a ``<meta>`` charset is looked for (the spec's prescan reads 1,024 bytes;
#: real pages put long scripts and styles before it).
META_WINDOW = 65_536
#: How many bytes past the first invalid one are read to tell UTF-8 with a few bad bytes from legacy text.
UTF8_PROBE = 16_384

# resiliparse's map_encoding_to_html5 reads a label by the WHATWG Encoding Standard's label table
# (https://encoding.spec.whatwg.org/#names-and-labels) into Python's namesake codec. Where that codec
# is narrower than what browsers decode, its superset decodes instead.
_SUPERSETS = {
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "iso8859-11": "cp874",
}
# Labels the table lacks but pages use, and the names resiliparse's detector answers with.
_EXTRA = (
    ("cp1252", "latin-1 latin_1 iso-latin-1 iso8859_1 x-user-defined"),  # x-user-defined: spec reads 1252
    ("gb18030", "euc-cn x-euc-cn cp936 windows-936 ms936 gb18030-2000 gb18030-2022"),
    ("cp949", "cp949 uhc euc_kr"),
    ("cp932", "cp932 windows-932"),
    ("big5hkscs", "cp950 big5hkscs"),
    ("euc_jp", "euc_jp"),
    ("iso2022_jp", "iso2022_jp"),
    ("mac-cyrillic", "mac-cyrillic mac_cyrillic x-mac-cyrillic x-mac-ukrainian"),
    ("mac-roman", "mac-roman mac_roman"),
    ("utf-16-le", "utf-16-le"),
    ("utf-16-be", "utf-16-be"),
)
_EXTRA_LABELS = {label: codec for codec, labels in _EXTRA for label in labels.split()}

_UTF16 = ("utf-16-le", "utf-16-be")
# Tried first, strictly: Python's gbk decodes every GBK pair as gb18030 does, and a quarter faster.
_FASTER = {"gb18030": ("gbk",)}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_HIGH_BYTES = bytes(range(0x80, 0x100))
_META = re.compile(rb"<meta\s[^>]*?charset\s*=\s*[\"']?\s*([a-z0-9_.:+-]+)", re.I)


@lru_cache(maxsize=1024)
def html5_codec(label: str | None) -> str | None:
    """The Python codec for a charset label by the WHATWG label table; None for an unknown label or
    one of the spec's "replacement" labels."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    codec = None
    for form in (label, label.replace("_", "-")):
        codec = codec or _EXTRA_LABELS.get(form) or map_encoding_to_html5(form, fallback_utf8=False)
    return _SUPERSETS.get(codec, codec) if codec else None


def meta_charset(body: bytes) -> str | None:
    """The label of the first ``<meta charset>`` / ``<meta http-equiv content="…; charset=…">`` in the
    first :data:`META_WINDOW` bytes."""
    m = _META.search(body, 0, META_WINDOW)
    return m.group(1).decode("ascii", "replace") if m else None


def _whatwg_errors(err: UnicodeError) -> tuple[str, int]:
    """U+FFFD for bytes that do not decode, except a lone 0x80 in GB18030: € for WHATWG."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    if err.encoding == "gb18030" and err.object[err.start] == 0x80:
        return "\u20ac", err.start + 1
    return "\ufffd", err.end


def _c1_errors(err: UnicodeError) -> tuple[str, int]:
    """The bytes windows-125x leave unassigned (0x81, 0x8D, ... in windows-1252) are the C1 controls of
    the same number for WHATWG; anything else is U+FFFD."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    byte = err.object[err.start]
    return (chr(byte), err.start + 1) if 0x80 <= byte <= 0x9F else ("\ufffd", err.end)


codecs.register_error("loom-whatwg", _whatwg_errors)
codecs.register_error("loom-whatwg-c1", _c1_errors)


def _high_bytes(data: bytes) -> int:
    return len(data) - len(data.translate(None, _HIGH_BYTES))


def _error_share(text: str, body: bytes) -> float:
    """U+FFFD in ``text`` per non-ASCII byte of ``body``."""
    return text.count("\ufffd") / max(_high_bytes(body), 1)


def _utf8_share(body: bytes, first_bad: int) -> float:
    """U+FFFD per non-ASCII byte when ``body`` (valid UTF-8 up to ``first_bad``) is read as UTF-8,
    measured up to :data:`UTF8_PROBE` bytes past the first bad one: legacy text shows itself there,
    so it costs no whole decode."""
    end = first_bad + UTF8_PROBE
    probe, _ = codecs.utf_8_decode(body[first_bad:end], "replace", end >= len(body))
    return probe.count("\ufffd") / max(_high_bytes(body[:end]), 1)


def _declared(body: bytes, http_codec: str | None) -> list[str]:
    """The declared codecs other than UTF-8 (already tried) in the order to try them: HTTP, then
    ``<meta>`` (UTF-16 there means UTF-8); where they disagree, the one the detector agrees with first."""
    meta_codec = html5_codec(meta_charset(body))
    if meta_codec in _UTF16:
        meta_codec = "utf-8"
    if http_codec in _UTF16:  # no BOM and no NUL bytes (see decode_html): not UTF-16
        http_codec = None
    declared = [c for c in dict.fromkeys((http_codec, meta_codec)) if c and c != "utf-8"]
    if len(declared) == 2 and _detected(body) == declared[1]:
        declared.reverse()
    return declared


def _detected(body: bytes) -> str | None:
    """resiliparse's guess, as a codec of the label table (its HTML5 mode answers ``utf-8`` for EUC-KR)."""
    guess = detect_encoding(body, html5_compatible=False)
    return html5_codec(guess)


def _decode(body: bytes, codec: str) -> tuple[str, bool]:
    """``body`` decoded with ``codec`` and whether that was clean; undecodable bytes become U+FFFD."""
    for fast in _FASTER.get(codec, ()):
        try:
            return body.decode(fast), True
        except UnicodeDecodeError:
            pass
    try:
        return body.decode(codec), True
    except UnicodeDecodeError:
        return body.decode(codec, "loom-whatwg-c1" if codec.startswith("cp125") else "loom-whatwg"), False


def decode_html(body: bytes, http_charset: str | None) -> tuple[str, str]:
    """HTML bytes → (text, the Python codec it was decoded with); see the module's docstring for the
    order. ``http_charset`` is the charset of the HTTP ``Content-Type``, if any."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, "replace"), codec
    http_codec = html5_codec(http_charset)
    if http_codec in _UTF16 and b"\x00" in body[:1024]:  # UTF-16 without a BOM: only by HTTP, and real
        return body.decode(http_codec, "replace"), http_codec
    if body.isascii():
        return _decode_ascii(body, http_codec)
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as err:
        first_bad = err.start
    share = _utf8_share(body, first_bad)
    if share <= MAX_UTF8_ERRORS:
        text = body.decode("utf-8", "replace")
        share = _error_share(text, body)
        if share <= MAX_UTF8_ERRORS:
            return text, "utf-8"
    tried: list[tuple[float, str, str | None]] = [(share, "utf-8", None)]
    candidates = _declared(body, http_codec)
    for codec in candidates:  # a clean decode of a declared charset first
        text, clean = _decode(body, codec)
        if clean:
            return text, codec
        tried.append((_error_share(text, body), codec, text))
    for share, codec, text in tried[1:]:
        if share <= MAX_LEGACY_ERRORS and text is not None:
            return text, codec
    detected = _detected(body) or "cp1252"  # the spec's default for pages that say nothing
    if detected not in _UTF16 and detected != "utf-8" and detected not in candidates:
        text, clean = _decode(body, detected)
        if clean:
            return text, detected
        tried.append((_error_share(text, body), detected, text))
    _, codec, best = min(tried, key=lambda t: t[0])  # the first of the least bad ones
    return (best if best is not None else body.decode(codec, "replace")), codec


def _decode_ascii(body: bytes, http_codec: str | None) -> tuple[str, str]:
    """A body of ASCII bytes: the same text in every ASCII-compatible charset (labelled as declared,
    else UTF-8), except ISO-2022-JP, which is 7-bit with escape sequences."""
    declared = [c for c in (http_codec, html5_codec(meta_charset(body))) if c and c not in _UTF16]
    if b"\x1b" in body and "iso2022_jp" in (declared or [_detected(body)]):
        return body.decode("iso2022_jp", "replace"), "iso2022_jp"
    codec = next((c for c in declared if c != "iso2022_jp"), "utf-8")
    return body.decode("ascii"), codec


def html_to_str(body: bytes) -> str:
    """Bytes → str the way Loom's WARC path decodes a page that came without an HTTP charset."""
    return decode_html(body, None)[0]

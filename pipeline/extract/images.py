"""Image references: which ``<img>`` is an image, its URL, declared size and alt text.

Images keep their event position in the walk, so they come out interleaved with the text blocks
around them (``assemble.py``). The URL comes from ``srcset`` (largest candidate), lazy-load
attributes (``data-src``, ``data-srcset``, …), ``src`` or a ``<picture><source>``, made absolute
against ``<base href>``; data URIs and images with a declared side below ``min_image_side``
(pixels, icons, rules) are skipped. Repeats are dropped and a ``<noscript>`` fallback replaces the
placeholder before it when the output is assembled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin


@dataclass(frozen=True)
class ImageRef:
    url: str  # absolute, after <base href> and srcset resolution
    alt: str
    width: int | None  # declared in the HTML; None when absent, unparsable or implausible (0, > 65535)
    height: int | None


_DIM = re.compile(r"\s*(\d+)(?:\.\d*)?\s*(?:px)?\s*$")
_LAZY_SRC = (
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-url",
    "data-hi-res-src",
    "data-full-src",
    "datasrc",
    "data-lazy",
    "data-original-src",
    "data-actualsrc",
    "original-src",
)
_LAZY_SRCSET = ("srcset", "data-srcset", "data-lazy-srcset", "data-original-srcset", "data-picture-srcset")
_IMAGE_EXT = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)", re.IGNORECASE)
_IMAGE_URL = re.compile(r"^\S+\.(?:jpe?g|png|gif|webp|avif|bmp)(?:[?#]\S*)?$", re.IGNORECASE)


#: The largest plausible declared width/height, in pixels (larger is junk; the record stores int32).
MAX_IMAGE_SIDE = 65_535


def _declared_dim(value: str | None) -> int | None:
    """A declared width/height as written ("300", "300px", "300.0"), any size; None for "auto",
    "50%", junk."""
    if not value:
        return None
    m = _DIM.match(value)
    return int(m.group(1)) if m else None


def _parse_dim(value: str | None) -> int | None:
    """A plausible declared width/height (1 to ``MAX_IMAGE_SIDE``), else None: "0" or
    "99999999999" say nothing about the image (and the latter would not fit the record)."""
    n = _declared_dim(value)
    return n if n is not None and 0 < n <= MAX_IMAGE_SIDE else None


def _declared_too_small(attrs: dict, min_side: int) -> bool:
    """A pixel, icon or rule: a declared side below ``min_side`` (``width="0"`` included)."""
    for key in ("width", "height"):
        n = _declared_dim(attrs.get(key))
        if n is not None and n < min_side:
            return True
    return False


def _best_from_srcset(srcset: str) -> str | None:
    """The candidate with the largest width descriptor (else highest density) of a srcset.

    URLs may contain commas (``c_fill,w_320``): a URL is a run of non-space characters, and only
    a comma that ends it or follows its descriptors separates candidates.
    """
    best, best_w, best_x = None, -1.0, -1.0
    pos, n = 0, len(srcset)
    while pos < n:
        while pos < n and (srcset[pos].isspace() or srcset[pos] == ","):
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and not srcset[pos].isspace():
            pos += 1
        url = srcset[start:pos]
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            end = srcset.find(",", pos)
            end = n if end < 0 else end
            descriptor = srcset[pos:end].strip().lower()
            pos = end + 1
        if not url or url.startswith("data:"):
            continue
        w = x = 0.0
        try:
            if descriptor.endswith("w"):
                w = float(descriptor[:-1])
            elif descriptor.endswith("x"):
                x = float(descriptor[:-1])
            else:
                x = 1.0
        except ValueError:
            x = 1.0
        if w > best_w or (w == best_w and x > best_x):
            best, best_w, best_x = url, w, x
    return best


def _usable(url: str | None) -> bool:
    return bool(url) and not url.lstrip().lower().startswith(("data:", "javascript:", "about:"))


def _image_source(attrs: dict) -> str | None:
    """srcset (largest) > lazy srcset > src > lazy src attributes > any image-looking data-* value."""
    for key in _LAZY_SRCSET:
        value = attrs.get(key)
        if value:
            url = _best_from_srcset(value)
            if _usable(url):
                return url
    src = attrs.get("src")
    if _usable(src):
        return src.strip()
    for key in _LAZY_SRC:
        value = attrs.get(key)
        if _usable(value):
            return value.strip()
    for key, value in attrs.items():
        if key.startswith("data-") and value and _IMAGE_URL.match(value.strip()) and _usable(value):
            return value.strip()
    return None


def _adopt_picture_source(img, attrs: dict) -> None:
    """An <img> of a <picture> with no usable src/srcset takes the srcset of the first <source>."""
    if attrs.get("srcset") or _usable(attrs.get("src")):
        return
    srcset = None
    node = img.prev
    while node is not None:
        if node.tag == "source":
            source = node.attributes
            srcset = source.get("srcset") or source.get("data-srcset") or srcset
        node = node.prev
    if srcset:
        attrs["data-picture-srcset"] = srcset


def _has_source(attrs: dict) -> bool:
    """Whether an <img> names any image at all (src, srcset or an image-looking data-* value)."""
    if attrs.get("src") or attrs.get("srcset") or attrs.get("data-picture-srcset"):
        return True
    return any(k.startswith("data") and v and _IMAGE_EXT.search(v) for k, v in attrs.items())


def _img_has_source(img, attrs: dict, in_picture: bool) -> bool:
    """The walk's test of an <img> node: whether it names an image (an empty lazy-load slot does
    not), after one inside a <picture> has adopted its <source>'s srcset (``attrs`` is updated)."""
    if in_picture:
        _adopt_picture_source(img, attrs)
    return _has_source(attrs)


def _image(attrs: dict, base: str, min_side: int) -> ImageRef | None:
    """An ImageRef for one <img>'s attributes, or None when it is unusable or a pixel/icon."""
    if _declared_too_small(attrs, min_side):
        return None
    src = _image_source(attrs)
    if src is None:
        return None
    try:
        url = urljoin(base, src)
    except ValueError:
        return None
    if not url.startswith(("http://", "https://")):
        return None
    alt = attrs.get("alt") or ""
    width, height = _parse_dim(attrs.get("width")), _parse_dim(attrs.get("height"))
    return ImageRef(url=url, alt=" ".join(alt.split()), width=width, height=height)

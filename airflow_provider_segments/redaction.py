"""Keeping secrets out of every text: one :class:`Redactor` per client, and one for the process.

Every secret is known in the forms an answer may echo it in (raw, URL-encoded, JSON- and HTML-escaped,
base64, and the base64 "cores" inside a longer credential string). Text quoting an answer is
redacted as a whole before it is cut, so a secret straddling the cut cannot leave its prefix behind.

Each client's redactor also tells the process-wide one (:func:`redact_known`), which every error
message of the provider (:class:`~.exceptions.SegmentsError`) and every quoted value
(:func:`~.text.preview`) passes through: a value an answer echoes reaches no text unredacted,
whichever module quotes it. (Airflow's own ``mask_secret`` does the same for the task's logs.)
"""

from __future__ import annotations

import base64
import json
import re
import threading
from bisect import bisect_right
from typing import Any

from airflow_provider_segments.secret_forms import MIN_SECRET_CHARS, encodings_of, secret_forms

#: The process-wide redactor (what every error and everything a task hands on passes through) hunts
#: a secret inside other text only from this length: a short password ("team") inside a segment's
#: name or tag is data, not a leak. A shorter one is hidden where it stands alone. (The HTTP core
#: still redacts short secrets in the answers it quotes.)
PROCESS_MIN_SECRET_CHARS = 12
#: What a secret is replaced with.
REDACTED = "***"
#: A quote as text may write it: raw (escaped by backslashes or not), HTML-escaped, URL-encoded.
_QUOTE = r"""\\*["']|&quot;|&apos;|&#0*3[49];|&#x0*2[27];|%2[27]"""
#: The names a credential goes by, whatever the spelling (``access_token``, ``accessToken``,
#: ``oauth_access_token``, ``X-Api-Key``, ``secretKey``, ``aws_secret_access_key``): any word ending
#: in a token, secret, password, authorization or api/private/access key (``token_type`` does not).
_CREDENTIAL_NAME = (
    r"(?P<name>[a-z0-9_-]*?(?:token|secret|password|passwd|authorization|(?:api|private|access)[_-]?key)"
    r"(?:[_-]?key)?)"
)
#: The authentication schemes a header-like value may start with (``Authorization: OAuth v``).
_SCHEMES = r"(?:bearer|basic|token|oauth|digest|negotiate|ntlm|hoba|mutual|mac|hawk|aws4-hmac-sha256)"
#: Names that are also plain English words: a bare value after ``name:`` is one word, not the rest
#: of the line (``Invalid token: expired`` keeps what follows).
_PLAIN_WORDS = {"token", "secret", "authorization"}
#: A credential field and how its value opens, in JSON (``"access_token": "v"``, also escaped as in
#: a repr, in JSON inside a JSON string, HTML-escaped or URL-encoded), a form or query
#: (``access_token=v``), an HTML input (``name="access_token" value="v"``) or a header-like line
#: (``client_secret: v``). Where the value ends is found by :func:`_value_end`.
_CREDENTIAL_FIELD = re.compile(
    rf"""(?:(?<![a-z0-9_-])|(?<=%[0-9a-f]{{2}})){_CREDENTIAL_NAME}"""
    rf"""(?:{_QUOTE})?(?:(?:\s+[\w-]+=(?:"[^"<>]*"|'[^'<>]*'))*\s+value)?\s*(?P<separator>[:=]|%3[ad])\s*"""
    rf"""(?P<opener>{_QUOTE}|[{{\[])?(?:{_SCHEMES}\s+)?""",
    re.IGNORECASE,
)
#: What ends a value that is not quoted: what separates the fields of a form, query or list (also
#: URL-encoded), and whitespace after ``=`` (a header-like ``name: value`` runs to the end of its line).
_BARE_VALUE_END = {
    "=": re.compile(r"[\s&,;]|%26|%2c|%3b", re.IGNORECASE),
    ":": re.compile(r"[\r\n&,;]|%26|%2c|%3b", re.IGNORECASE),
}
#: A credential as an XML element, raw or HTML-escaped (``<access_token>v</access_token>``): its
#: value runs to the next tag (or the end of a text cut short). No part can run past a tag, so a
#: page of openers is read in linear time.
_CREDENTIAL_ELEMENTS = (
    re.compile(
        rf"<(?:[\w.-]+:)?{_CREDENTIAL_NAME}(?:\s[^<>]*)?>(?P<value>(?:<!\[CDATA\[(?:(?!\]\]>).)*|[^<])+)",
        re.IGNORECASE | re.DOTALL,
    ),
    re.compile(
        rf"&lt;(?:[\w.-]+:)?{_CREDENTIAL_NAME}(?:\s(?:(?!&[lg]t;)[^<>])*)?&gt;(?P<value>(?:(?!&lt;).)+)",
        re.IGNORECASE | re.DOTALL,
    ),
)
#: What may wrap a long secret across lines: whitespace, its escape in a repr or JSON (once or more,
#: also ``\u000a``), URL-encoded, an HTML line break (``<br>``, ``&#10;``) or a quoted-printable soft
#: break (``=`` at the end of a line).
_LINE_BREAK = re.compile(
    r"(?:\s|\\+[rnt]|\\+u000[ad]|%(?:25)*0[ad]|<br\s*/?>|&#(?:0*1[03]|x0*[ad]);|=\r?\n)+", re.IGNORECASE
)
#: A printable ASCII character written another way, read as the character it stands for when looking
#: for a known secret: a JSON escape (.NET escapes ``+ & < > '``, Go ``& < >``), also escaped again by
#: a repr; percent-encoded, by any encoder's rule (JavaScript's ``encodeURIComponent`` and Java's
#: ``URLEncoder`` keep other characters than Python's ``quote``), once or twice (``%2526``); an
#: HTML numeric character reference. (Whitespace is not: it is a line break, see below.)
_ASCII_ESCAPE = re.compile(
    r"\\+u00(?P<hex>[2-7][0-9a-f])"
    r"|%(?:25)*(?P<pct>2[1-9a-f]|[3-6][0-9a-f]|7[0-9a-e])"
    r"|&#(?:x0*(?P<xref>2[1-9a-f]|[3-6][0-9a-f]|7[0-9a-e])|0*(?P<ref>3[3-9]|[4-9][0-9]|1[01][0-9]|12[0-6]));",
    re.IGNORECASE,
)
_ESCAPE_GROUPS = ("hex", "pct", "xref", "ref")
#: A letter, digit, ``_`` or ``-`` written as a JSON escape (once or more): shown as itself, so that
#: a credential's name spelled with escapes (``access_\\u0074oken``) is still a credential's name.
#: Quotes and backslashes stay escaped: decoded, they would change where a value ends.
_WORD_CHAR_ESCAPE = re.compile(
    r"\\+u00(?P<hex>3[0-9]|4[1-9a-f]|5[0-9af]|6[1-9a-f]|7[0-9a]|2d)", re.IGNORECASE
)
#: The text in pieces: a line break, an escaped character, a run of plain characters, or one other.
_PIECE = re.compile(
    rf"(?P<brk>{_LINE_BREAK.pattern})|{_ASCII_ESCAPE.pattern}|[^\\\s<&=%]+|.", re.IGNORECASE | re.DOTALL
)
#: A secret form at least this long is looked for with line breaks inside it too (shorter ones
#: would match ordinary words across a space).
WRAPPED_SECRET_CHARS = 8
#: Secrets are matched whatever the case of their ASCII letters (an echo in upper case, a host name
#: a library lower-cased): this folds it, keeping every index where it was.
_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Redactor:
    """The secrets one client knows, and the one way text quoting an answer is made safe to show."""

    def __init__(self) -> None:
        # Two clients may register secrets in two threads at once (and each tells the process-wide
        # one): a change of the forms is read, merged and written under this lock, or one is lost.
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._registered: set[Any] = set()
        self._wrapped: tuple[str, ...] = ()  # the long forms without their whitespace, case folded
        self._folded_forms: tuple[str, ...] = ()  # every form case folded, the longest first
        self._whole: frozenset[str] | set[str] = frozenset()  # short secrets hidden only whole

    def add_secret(self, value: str | None) -> None:
        """Remember ``value`` and its URL-encoded, JSON-escaped and base64 forms (the process too)."""
        if value and len(value) >= MIN_SECRET_CHARS and value not in self._registered:
            forms = secret_forms(value)
            with self._lock:
                self._registered.add(value)
                # A new set, not an update: another thread may be iterating the old one right now.
                self._set_forms(self._forms | forms)
            if self is not _PROCESS:
                _PROCESS.add_process_secret(value)

    def add_credentials(self, user: str, password: str) -> None:
        """Remember HTTP Basic credentials: the password, and the header value built from both."""
        if (user, password) in self._registered:
            return
        self._registered.add((user, password))
        if not password:
            return
        pair = f"{user}:{password}"
        forms = {pair} | {base64.b64encode(data).decode() for data in encodings_of(pair)}  # UTF-8, Latin-1
        if self is _PROCESS:  # each by the length rule (a short password only as a whole value)
            for secret in (password, *forms):
                self.add_process_secret(secret)
            return
        _PROCESS.add_credentials(user, password)
        self.add_secret(password)
        with self._lock:
            self._set_forms(self._forms | forms)

    def _set_forms(self, forms: set[str]) -> None:
        new = forms - self._forms  # (only those: a process may register thousands of tokens)
        wrapped = {_folded(_normalized(form)) for form in new}
        wrapped = {f for f in wrapped if len(f) >= WRAPPED_SECRET_CHARS}.union(self._wrapped)
        self._wrapped = tuple(sorted(wrapped, key=len))
        folded = {_folded(form) for form in new}.union(self._folded_forms)
        self._folded_forms = tuple(sorted(folded, key=len, reverse=True))
        self._forms = forms

    def __call__(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``, and the value of every credential
        field (``access_token=...``, ``"refresh_token": "..."``): a secret not known yet, such as the
        token in an answer that could not be read."""
        text = self._replace_forms(text)
        text = _WORD_CHAR_ESCAPE.sub(lambda m: chr(int(m["hex"], 16)), _redact_disguised(text, self._wrapped))
        return _redact_credential_elements(_redact_credential_fields(text))

    def add_process_secret(self, value: str) -> None:
        """For the process-wide redactor: a secret of :data:`PROCESS_MIN_SECRET_CHARS` or more in
        every form, a shorter one only as a whole value."""
        if len(value) >= PROCESS_MIN_SECRET_CHARS:
            self.add_secret(value)
        else:
            with self._lock:
                self._whole = self._whole | {value}

    @property
    def has_secrets(self) -> bool:
        """Whether any secret is known yet."""
        return bool(self._forms or self._whole)

    def known(self, text: str) -> str:
        """``text`` with every known secret, in any of its forms (split by line breaks or escaped
        too), replaced by ``***``; nothing else in it changes. A short secret is hidden where it
        stands alone: the whole text, or a whole value quoted as ``repr()`` or JSON write it."""
        folded = _folded(text)
        if any(folded == _folded(short) for short in self._whole):
            return REDACTED
        for short in self._whole:
            if _folded(short) in folded:
                for quoted, hidden in ((repr(short), repr(REDACTED)), (json.dumps(short), f'"{REDACTED}"')):
                    text = re.sub(re.escape(quoted), lambda _: hidden, text, flags=re.IGNORECASE)  # noqa: B023
        return _redact_disguised(self._replace_forms(text), self._wrapped) if self._forms else text

    def _replace_forms(self, text: str) -> str:
        folded = _folded(text)
        spans = []
        for form in self._folded_forms:  # (a search at C speed each: a process may know thousands of forms)
            at = folded.find(form)
            while at != -1:
                spans.append((at, at + len(form)))
                at = folded.find(form, at + len(form))
        return _without_spans(text, spans)

    def shorten(self, text: str, limit: int) -> str:
        """``text`` on one line, redacted, then cut to ``limit`` characters.

        Redacted before the cut (and again once its whitespace is folded, which could join a secret
        split across lines), so a secret cut in half cannot leave its prefix behind; what the cut
        leaves at its edge is redacted too when it is the start of a secret (an echo the server
        itself cut short).
        """
        text = self(" ".join(self(text).split()))
        if len(text) <= limit:
            return text
        return self.edge(text[: limit - 3]) + "..."

    def preview(self, value: Any, limit: int) -> str:
        """``repr(value)`` for a message quoting an answer: redacted, then cut (see :meth:`shorten`)."""
        return self.shorten(repr(value), limit)

    def edge(self, text: str) -> str:
        """``text`` (the start of a longer one) with a secret's start at its end redacted too."""
        folded = _folded(text)
        for form in self._folded_forms:
            for size in range(min(len(form) - 1, len(text)), MIN_SECRET_CHARS - 1, -1):
                if folded.endswith(form[:size]):
                    return text[:-size] + REDACTED
        return text


def _normalized(text: str) -> str:
    """``text`` without line breaks, escaped printable ASCII read as itself (see :data:`_PIECE`)."""
    return _LINE_BREAK.sub("", _ASCII_ESCAPE.sub(_escaped_char, text))


def _escaped_char(match: re.Match[str]) -> str:
    """The character an :data:`_ASCII_ESCAPE` match stands for."""
    code = match["hex"] or match["pct"] or match["xref"]
    return chr(int(code, 16)) if code else chr(int(match["ref"]))


def _redact_disguised(text: str, needles: tuple[str, ...]) -> str:
    """``text`` with every secret form in ``needles`` (normalized) redacted where line breaks split it
    or another JSON writer escaped some of its characters: an error page or a MIME-style base64 wraps
    a long value; .NET writes ``+`` as ``\\u002B``."""
    if not needles:
        return text
    quick = _folded(_normalized(text))
    needles = tuple(needle for needle in needles if needle in quick)
    if not needles:  # the common case, found at C speed
        return text
    # (start in the normalized text, start and end in text, a run of plain characters) of each piece
    pieces: list[tuple[int, int, int, bool]] = []
    kept: list[str] = []
    length = 0
    for piece in _PIECE.finditer(text):
        if piece["brk"] is not None:
            continue
        escaped = piece.lastgroup in _ESCAPE_GROUPS
        char = _escaped_char(piece) if escaped else piece.group()
        if char.isspace():
            continue
        pieces.append((length, piece.start(), piece.end(), not escaped))
        kept.append(char)
        length += len(char)
    normalized = _folded("".join(kept))
    piece_starts = [piece[0] for piece in pieces]

    def in_text(index: int) -> tuple[int, int]:
        start, text_start, text_end, plain = pieces[bisect_right(piece_starts, index) - 1]
        return (
            (text_start + index - start, text_start + index - start + 1) if plain else (text_start, text_end)
        )

    spans = []
    for needle in needles:
        at = normalized.find(needle)
        while at != -1:
            spans.append((in_text(at)[0], in_text(at + len(needle) - 1)[1]))
            at = normalized.find(needle, at + 1)
    return _without_spans(text, spans)


def _without_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each of ``spans`` (start, end) replaced by ``***``, overlapping ones as one."""
    if not spans:
        return text
    result: list[str] = []
    done = 0
    for start, end in sorted(spans):
        if start >= done:
            result += [text[done:start], REDACTED]
        done = max(done, end)  # an overlapping span widens the one redacted already
    return "".join([*result, text[done:]])


def _folded(text: str) -> str:
    """``text`` with its ASCII letters in lower case, every index kept (see :data:`_ASCII_FOLD`)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_FOLD)


def _redact_credential_elements(text: str) -> str:
    """``text`` with the value of every credential XML element replaced by ``***``."""
    for element in _CREDENTIAL_ELEMENTS:
        text = element.sub(lambda m: m.group()[: m.start("value") - m.start()] + REDACTED, text)
    return text


def _redact_credential_fields(text: str) -> str:
    """``text`` with the value of every credential field replaced by ``***``, to where it ends."""
    pieces: list[str] = []
    done = 0
    for field in _CREDENTIAL_FIELD.finditer(text):
        if field.start() < done:
            continue  # inside a value already redacted
        separator = "=" if field["separator"] in ("=", "%3d", "%3D") else ":"
        if field["name"].lower() in _PLAIN_WORDS:
            separator = "="  # a bare value is one word
        value_start = field.end()
        after = value_start + len(REDACTED)
        if text.startswith(REDACTED, value_start) and (after == len(text) or text[after].isspace()):
            continue  # redacted already (before the text's lines were folded into one)
        end = _value_end(text, value_start, field["opener"], separator)
        if end > field.end() and text[field.end() : end] != REDACTED:  # (one redacted already stays)
            pieces += [text[done : field.end()], REDACTED]
            done = end
    return "".join([*pieces, text[done:]])


def _value_end(text: str, start: int, opener: str | None, separator: str) -> int:
    """Where the value starting at ``start`` ends; when unsure, later (a value cut short, or an
    object, runs to the end of the text).

    A quoted value ends at the same quote escaped exactly as deeply as ``opener``: ``"`` after no
    backslash closes ``"``, one after two (an escaped quote seen through ``repr``) does not, so a
    value holding the other quote, a space, a comma or an escaped quote is redacted whole. A bare
    value ends at :data:`_BARE_VALUE_END`."""
    if opener is None:
        bare_end = _BARE_VALUE_END[separator].search(text, start)
        return bare_end.start() if bare_end else len(text)
    if opener in "{[":
        return _closing_bracket(text, start)
    quote = opener.lstrip("\\")
    escapes = len(opener) - len(quote)
    position = start
    while (position := text.find(quote, position)) != -1:
        backslashes = 0
        while position - backslashes > start and text[position - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes == escapes:
            return position - escapes  # the closing quote stays
        position += 1
    return len(text)


def _closing_bracket(text: str, start: int) -> int:
    """Where the object or list opened just before ``start`` closes (its bracket stays), skipping
    brackets in quoted strings; the end of the text when it does not close, or when it holds a
    backslash (quotes escaped as in a repr: unsure where strings end, so more is redacted)."""
    depth, quote, position = 1, "", start
    while position < len(text):
        char = text[position]
        if char == "\\":
            return len(text)
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if not depth:
                return position
        position += 1
    return len(text)


def without_userinfo(url: str) -> str:
    """``url`` with everything between its scheme and its last ``@`` shown as ``***``: a user name and
    password (raw or URL-encoded, holding ``/`` or ``@`` or not) never reach a message, whole or cut."""
    if "@" not in url:
        return url
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    return f"{scheme}{separator}{REDACTED}@{rest.rpartition('@')[2]}"


#: Every secret any client of this process was given (see the module's docstring).
_PROCESS = Redactor()
#: How much of a long text :func:`preview_known` redacts before it cuts: the preview's length plus
#: room for the longest secret form to be seen whole at the cut.
_PREVIEW_MARGIN = 4096


def redact_known(text: str) -> str:
    """``text`` with every secret known to this process redacted, in any of its forms. (Only known
    secrets: a credential field's value is the HTTP core's to redact, in the answers it quotes.)"""
    return _PROCESS.known(text) if text else text


def preview_known(value: Any, limit: int) -> str:
    """``repr(value)`` redacted of every secret known to this process, then cut to ``limit``.

    Unlike :meth:`Redactor.shorten` its whitespace is kept as it is (two spaces in a name are the
    point of some messages), unless folding it shows a secret split across it."""
    text = _PROCESS.known(repr(value)[: limit + _PREVIEW_MARGIN])
    folded = " ".join(text.split())
    if _PROCESS.known(folded) != folded:
        text = _PROCESS.known(folded)
    return text if len(text) <= limit else _PROCESS.edge(text[: limit - 3]) + "..."


def redact_known_in(value: Any) -> Any:
    """``value`` (a result handed to XCom, a record written down) with every secret known to this
    process redacted in its strings, keys included; a copy where anything changed. What a task hands
    on never carries a secret an answer echoed (a listed name, a URL holding a token)."""
    if not _PROCESS.has_secrets:
        return value
    if isinstance(value, str):
        return _PROCESS.known(value)
    if isinstance(value, dict):
        return {redact_known_in(key): redact_known_in(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(map(redact_known_in, value))
    return value

"""The forms a secret may come back in, for :mod:`~airflow_provider_segments.redaction` to look for:
raw, URL-encoded, JSON-, repr- and HTML-escaped, base64 (also inside a longer credential). Matched
whatever the case of their letters, so each form is listed in one case only."""

from __future__ import annotations

import base64
import html
import json
from urllib.parse import quote, quote_plus

#: Shorter values are not treated as secrets: redacting them would blank out ordinary words.
MIN_SECRET_CHARS = 4


def encodings_of(text: str) -> list[bytes]:
    """The bytes ``text`` may travel as: UTF-8, and Latin-1 where it differs (requests encodes the
    user and password of HTTP Basic auth as Latin-1 when they fit)."""
    utf8 = text.encode()
    try:
        latin1 = text.encode("latin-1")
    except UnicodeEncodeError:
        return [utf8]
    return [utf8] if latin1 == utf8 else [utf8, latin1]


def _html_escapes(secret: str) -> set[str]:
    """``secret`` as an HTML page may quote it: ``&amp;``, ``&lt;``, ``&gt;`` and the quotes in each
    of their spellings (``&quot;``/``&#34;``/``&#x22;``, ``&#x27;``/``&#39;``/``&apos;``)."""
    escaped = html.escape(secret, quote=False)
    forms = {escaped}
    for double in ("&quot;", "&#34;", "&#x22;"):
        for single in ("&#x27;", "&#39;", "&apos;"):
            forms.add(escaped.replace('"', double).replace("'", single))
    return forms


def secret_forms(secret: str) -> set[str]:
    """Every form of ``secret`` and of its other cases: forms are matched whatever the case of their
    ASCII letters, and a non-ASCII letter's other case (``ü``/``Ü``, ``ß``/``SS``) is listed here."""
    variants = {secret} if secret.isascii() else {secret, secret.upper(), secret.lower(), secret.casefold()}
    return {form for variant in variants for form in _forms_of(variant)}


def _forms_of(secret: str) -> set[str]:
    """The ways a secret may come back in an answer: raw, URL-encoded, JSON-escaped, HTML-escaped,
    base64; the byte-wise forms of its UTF-8 and of its Latin-1 bytes (see :func:`encodings_of`)."""
    percent = {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    # JSON as writers other than json.dumps write it too: non-ASCII kept raw, '/' escaped as '\/'
    # (PHP's default), \u escapes in upper-case hex.
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    escaped |= {repr(secret)[1:-1], ascii(secret)[1:-1]}  # in the repr of a dict an error quotes
    # a repr of a text holding both quotes escapes the one it is quoted with, whatever the secret holds
    escaped |= {form.replace(quote_char, "\\" + quote_char) for form in escaped for quote_char in "'\""}
    escaped |= {form.replace("/", "\\/") for form in escaped}
    escaped |= {form.replace("\\", "\\\\") for form in escaped}  # the JSON quoted through repr()
    forms = {
        secret,
        *percent,
        *escaped,
        *_html_escapes(secret),
    }
    for data in encodings_of(secret):
        forms |= {quote(data, safe=""), quote_plus(data)}  # a Latin-1 secret percent-encoded byte-wise
        forms.add(base64.b64encode(data).decode())
        forms.add(base64.urlsafe_b64encode(data).decode())
        # The base64 of a longer string holding the secret (an unknown user name before it) contains
        # one of three cores, depending on where the secret starts modulo 3: register the long ones.
        for offset in range(3):
            encoded = base64.b64encode(b"\0" * offset + data).decode()
            core = encoded[4 if offset else 0 : 4 * ((offset + len(data)) // 3)]
            if len(core) >= 8:
                forms.add(core)
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}

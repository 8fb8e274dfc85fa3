"""The one escaper for text that goes into a workerd config (Cap'n Proto text).

Cap'n Proto text literals take C escapes but not ``\\u``, so everything that is
not ASCII stays raw UTF-8 and only quotes, backslashes and control characters
are escaped. Every name and value a user uploaded passes through ``text``.
"""

import json
from typing import Any

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def text(value: str) -> str:
    """``value`` as a quoted Cap'n Proto text literal."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            out.append("\ufffd")  # a lone surrogate cannot be written as UTF-8
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def json_text(value: Any) -> str:
    """``value`` encoded as JSON, as a quoted text literal (for ``json =`` fields)."""
    return text(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

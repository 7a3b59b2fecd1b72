"""JSON nesting measured before parsing: ``json.loads`` recurses once per level, so a small body nested
thousands deep raises RecursionError deep inside the parser (and, chained into other exceptions, has
been seen to break error reporting later). Callers that parse untrusted JSON check the depth first."""

from __future__ import annotations


def json_depth(text: str) -> int:
    """How deeply ``text``'s JSON arrays/objects nest, counted without parsing (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest

"""A self-contained HTML page that colours each token by its contribution to the watermark decision.

Meant for looking at one text: where the green hits cluster, where an attack broke them, which positions the
scheme skipped. One file, inline CSS, no scripts or external assets, so it can be attached to a report or
opened offline. Everything that comes from the text or the caller is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from safework.core.errors import ConfigError

STATUSES: dict[str, str] = {
    "hit": "counts for the decoded payload (green list / right symbol)",
    "miss": "counts against it",
    "skipped": "not scored: warm-up, repeated context or zero-information position",
}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; color: #222; }
.text { font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.7;
        border: 1px solid #ccc; padding: 1em; border-radius: 4px; }
.tok { border-radius: 2px; }
.hit { background: #b7e4b0; }
.miss { background: #f4b4b4; }
.skipped { background: #e0e0e0; color: #666; }
.nl { color: #999; user-select: none; }
.key { padding: 0 0.5em; margin-right: 1em; border-radius: 2px; }
table { border-collapse: collapse; margin-top: 1em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
""".strip()


def _format(value: object) -> str:
    """Summary values for people: floats to 4 significant digits, everything else as ``str``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _token_html(token: str) -> str:
    # Newlines are kept (pre-wrap breaks the line) and marked with a faint, unselectable arrow so a
    # newline token is visible; copying the text still yields the original characters.
    return html.escape(token).replace("\n", '<b class="nl">\u21b5</b>\n')


def render_html(
    tokens: Sequence[str], status: Sequence[str], title: str, summary: Mapping[str, object]
) -> str:
    """The page: title, legend with counts, the coloured text (one ``span.tok`` per token), summary table.

    ``status[i]`` is ``"hit"``, ``"miss"`` or ``"skipped"`` for ``tokens[i]``; each span's ``title``
    attribute (shown on hover) gives the token's index and status.
    """
    if len(tokens) != len(status):
        raise ConfigError(
            f"render_html got {len(tokens)} tokens but {len(status)} statuses; pass one status per token"
        )
    unknown = sorted({s for s in status if s not in STATUSES})
    if unknown:
        raise ConfigError(f"unknown token status {unknown!r}; use one of {sorted(STATUSES)}")
    counts = {name: 0 for name in STATUSES}
    for s in status:
        counts[s] += 1
    spans = "".join(
        f'<span class="tok {s}" title="token {i}: {s}">{_token_html(tok)}</span>'
        for i, (tok, s) in enumerate(zip(tokens, status, strict=True))
    )
    legend = "".join(
        f'<span class="key {name}" title="{html.escape(why)}">{name}: {counts[name]}</span>'
        for name, why in STATUSES.items()
    )
    rows = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(_format(value))}</td></tr>"
        for key, value in summary.items()
    )
    safe_title = html.escape(title)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{safe_title}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
        f"<h1>{safe_title}</h1>\n"
        f'<p class="legend">{legend}</p>\n'
        f'<div class="text">{spans}</div>\n'
        f"<table>\n{rows}\n</table>\n"
        "</body>\n</html>\n"
    )

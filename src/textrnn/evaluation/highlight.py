"""Explanations shown to a person: the text with each token coloured by its score, in a terminal or a web page.

Green pushes towards the explained class, red away from it; the stronger the colour, the larger the score
relative to the text's largest one. The web page (`serve/static`) uses the same colours, computed in its script.
"""

from __future__ import annotations

import html
from typing import Sequence

from .attributions import Explanation

POSITIVE = (22, 163, 74)  # green
NEGATIVE = (220, 38, 38)  # red
PAPER = (255, 255, 255)


def scale_of(explanation: Explanation) -> float:
    return max((abs(t.score) for t in explanation.tokens if t.score is not None), default=0.0) or 1.0


def colour(score: float, scale: float) -> tuple[int, int, int]:
    """The background for a token: white blended towards green or red by |score| / scale."""
    strength = min(1.0, abs(score) / scale)
    ink = POSITIVE if score >= 0 else NEGATIVE
    return tuple(round(p + (i - p) * strength) for p, i in zip(PAPER, ink))


def _pieces(explanation: Explanation):
    """(text between tokens, None) and (token text, score) pieces covering the whole text in order."""
    text, at = explanation.text, 0
    for token in explanation.tokens:
        if token.start < at:  # subword pieces of one word can share a span; show the text once
            continue
        if token.start > at:
            yield text[at : token.start], None
        yield text[token.start : token.end], token.score
        at = token.end
    if at < len(text):
        yield text[at:], None


def headline(explanation: Explanation) -> str:
    p = explanation.probabilities[explanation.label]
    how = explanation.method.replace("-", " ")
    if explanation.delta is not None:
        how += f", {explanation.steps} steps, completeness gap {explanation.delta:+.4f}"
    return f"{explanation.label} ({p:.3f}) - {how}"


def top_tokens(explanation: Explanation, k: int = 5) -> str:
    scored = [t for t in explanation.tokens if t.score is not None]
    ups = sorted((t for t in scored if t.score > 0), key=lambda t: -t.score)[:k]
    downs = sorted((t for t in scored if t.score < 0), key=lambda t: t.score)[:k]

    def show(tokens) -> str:
        return ", ".join(f"{explanation.text[t.start:t.end]} {t.score:+.3f}" for t in tokens) or "-"

    return f"towards {explanation.label}: {show(ups)}\naway from it: {show(downs)}"


def ansi(explanation: Explanation) -> str:
    """The text with 24-bit ANSI background colours (black letters), for a terminal."""
    scale, out = scale_of(explanation), []
    for piece, score in _pieces(explanation):
        if score is None:
            out.append(piece)
        else:
            r, g, b = colour(score, scale)
            out.append(f"\x1b[38;2;0;0;0;48;2;{r};{g};{b}m{piece}\x1b[0m")
    return "".join(out)


def plain(explanation: Explanation) -> str:
    """The text with each token's score after it in brackets, for a pipe or a file."""
    return "".join(piece if score is None else f"{piece}[{score:+.2f}]" for piece, score in _pieces(explanation))


def html_page(explanations: Sequence[Explanation], title: str = "textrnn explanations") -> str:
    """One self-contained HTML page: each text coloured token by token, its label, and every class's
    probability."""
    sections = []
    for e in explanations:
        scale, spans = scale_of(e), []
        for piece, score in _pieces(e):
            if score is None:
                spans.append(html.escape(piece))
            else:
                r, g, b = colour(score, scale)
                spans.append(f'<span class="tok" style="background:rgb({r},{g},{b})" '
                             f'title="{score:+.4f}">{html.escape(piece)}</span>')
        bars = "".join(f'<div class="bar"><span>{html.escape(name)}</span><meter min="0" max="1" value="{p:.4f}">'
                       f'</meter><span>{p:.3f}</span></div>' for name, p in e.probabilities.items())
        sections.append(f'<section><h2>{html.escape(headline(e))}</h2><p class="text">{"".join(spans)}</p>'
                        f'{bars}</section>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font: 16px/1.6 system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; padding: 0 1rem; color: #111; }}
h2 {{ font-size: 1rem; }} .tok {{ border-radius: 3px; padding: 0 1px; }}
.bar {{ display: grid; grid-template-columns: 10rem 1fr 4rem; gap: .5rem; align-items: center; }}
meter {{ width: 100%; }}
</style></head><body><h1>{html.escape(title)}</h1>
<p>Green words pushed the model towards the label shown, red ones away from it (hover for the score).</p>
{"".join(sections)}
</body></html>
"""

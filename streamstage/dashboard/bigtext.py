"""Block letters for the current stage, readable from across the room (5 rows, 5 columns a glyph)."""

from __future__ import annotations

GLYPHS: dict[str, tuple[str, ...]] = {
    "W": ("█   █", "█   █", "█ █ █", "██ ██", "█   █"),
    "N": ("█   █", "██  █", "█ █ █", "█  ██", "█   █"),
    "R": ("████ ", "█   █", "████ ", "█  █ ", "█   █"),
    "E": ("█████", "█    ", "████ ", "█    ", "█████"),
    "M": ("█   █", "██ ██", "█ █ █", "█   █", "█   █"),
    "1": ("  █  ", " ██  ", "  █  ", "  █  ", " ███ "),
    "2": ("████ ", "    █", " ███ ", "█    ", "█████"),
    "3": ("████ ", "    █", " ███ ", "    █", "████ "),
    "-": ("     ", "     ", " ███ ", "     ", "     "),
}
HEIGHT = 5


def big_lines(word: str) -> list[str]:
    """``word`` in block letters, one string per row, glyphs one space apart."""
    return [" ".join(GLYPHS[char][row] for char in word) for row in range(HEIGHT)]

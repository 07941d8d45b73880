"""What every dose-screen parser shares: OCR text normalised line by line, number tokens, and the
scan-type words (spec toshiba.md §2.3, §2.5, §5). Pure functions of text.

The text is normalised before anything is matched: upper case, numbers rejoined where the OCR
split them ("352. 6", "- 40.50"), letters the OCR put inside numbers turned back into digits
(O->0, l/I/|->1), and the phantom suffix glued to its value ("9.8 (Body}" -> "9.8(BODY)")."""
from __future__ import annotations

import re
from typing import Optional

from services.toshiba_builder.screen import SCAN_TYPES

# The suffix is glued only when no ':' follows: "(Head): 58.3 (Body): -" is a label, not a suffix.
_PHANTOM_TEXT = r"[({\[]\s*(?P<ph>H\s*E\s*A\s*D|B\s*[O0Q]\s*D\s*[YV])\s*[)}\]]?+(?!\s*[:;])"
_PHANTOM_GLUE = re.compile(r"(\d|(?<=[\d.])O)\s*" + _PHANTOM_TEXT)  # "866.O( Head)": O read for 0
_DIGITISH = re.compile(r"^([+-]?)([0-9OIL|]*[0-9][0-9OIL|]*(?:\.[0-9OIL|]+)?)(\((?:HEAD|BODY)\))?$")
VALUE = re.compile(r"^(?P<num>[+-]?\d+(?:\.\d+)?)(?:\((?P<ph>HEAD|BODY)\))?$")


def normalise_line(line: str) -> str:
    s = line.upper().replace("\u2014", "-").replace("\u2013", "-").replace("\u2212", "-")
    s = re.sub(r"(\d)(?:\s+[.,]\s*|[.,]\s+)([\dO])", r"\1.\2", s)  # "352. 6", "866 .O" -> "352.6", "866.O"
    s = re.sub(r"(\d),(\d)", r"\1.\2", s)  # "12,4" -> "12.4": no screen prints thousands separators
    s = re.sub(r"(^|\s)([+-])\s+(\d)", r"\1\2\3", s)  # "- 40.50" -> "-40.50"
    s = re.sub(r":(?=\S)", ": ", s)  # "(Head):11O2.4": the value is a token of its own
    s = _PHANTOM_GLUE.sub(lambda m: f"{m.group(1)}({'HEAD' if m.group('ph')[0] == 'H' else 'BODY'})", s)
    return " ".join(_fix_digits(tok) for tok in s.split())


def _fix_digits(token: str) -> str:
    m = _DIGITISH.match(token)
    if not m:
        return token
    body = m.group(2).translate(str.maketrans({"O": "0", "I": "1", "L": "1", "|": "1"}))
    return m.group(1) + body + (m.group(3) or "")


def decimals(number_text: str) -> int:
    return len(number_text.split(".")[1]) if "." in number_text else 0


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def scan_type_of(word: str) -> Optional[str]:
    """The scan-type word a row starts with, tolerating OCR slips: letters only up to the first
    other character ("Scanoscope[2]", "Helical_CT"), digits read back as letters, and one wrong
    letter in words of six or more letters (HELLCAL, SCANOSC0PE), I and L taken as one letter,
    or a word the OCR cut after at least five letters ("SCANOSC OPE")."""
    word = word.upper().translate(str.maketrans({"0": "O", "1": "I", "5": "S", "|": "I"}))
    letters = re.match(r"[A-Z]+", word)
    if not letters:
        return None
    candidate = letters.group(0)
    if candidate in SCAN_TYPES:
        return candidate
    folded = _fold(candidate)
    for known in SCAN_TYPES:
        target = _fold(known)
        if folded == target:
            return known
        if len(known) >= 6 and abs(len(folded) - len(target)) <= 1 and _edit_distance(folded, target) <= 1:
            return known
        if len(candidate) >= 5 and target.startswith(folded):  # "SCANOSC OPE" split by the OCR
            return known
    return None


def leading_scan_type(tokens: list[str]) -> tuple[Optional[str], int]:
    """The scan type a line starts with and how many tokens it takes: the OCR may split the
    word ("Sc anosc ope"), so up to three leading all-letter pieces are tried joined, longest
    first."""
    for count in (3, 2, 1):
        if len(tokens) < count or not all(t.isalpha() for t in tokens[: count - 1]):
            continue
        if count > 1 and not tokens[count - 1].isalpha():
            continue
        found = scan_type_of("".join(tokens[:count]))
        if found:
            return found, count
    return None, 0


def _fold(word: str) -> str:
    """I and L are one letter to the OCR of small screen fonts (HeIicaI, DYNAMLC)."""
    return word.replace("L", "I")


# The letters I, l and the digit 1 (and |) are one glyph to the OCR of small screen fonts.
I_LIKE = r"[I1L|]"

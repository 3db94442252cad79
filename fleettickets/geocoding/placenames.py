"""Turns the feed's coded `location_name` values into place names to geocode."""

from __future__ import annotations

import re

# Network codes the exporter wraps around site names, as regular expressions matched
# against whole words (case-insensitively). Add new ones here as they turn up.
NETWORK_CODES: tuple[str, ...] = (
    "NW",
    "ADR",
    "MNT",
    "SDUS?",
    "MDUS?",
    "ODF",
    "POP",
    "FTTH",
    "FTTX",
    "GPON",
    r"FDT\d*",
    r"FAT\d*",
    r"FDH\d*",
    r"OLT\d*",
)

ABBREVIATIONS: dict[str, str] = {
    "RD": "Road",
    "ST": "Street",
    "AVE": "Avenue",
    "AV": "Avenue",
    "EST": "Estate",
    "MKT": "Market",
    "JN": "Junction",
    "JNC": "Junction",
    "JCT": "Junction",
    "JNCT": "Junction",
    "STG": "Stage",
    "HWY": "Highway",
    "STN": "Station",
    "CTR": "Centre",
}

# Words that take a number ("Phase 8"); after anything else a trailing number is a
# site counter (`KAYOLE_JUNCTION_2` is the second site there), not part of the name.
NUMBERED_WORDS = frozenset({"PHASE", "SECTOR", "ZONE", "BLOCK", "GATE", "ROUND"})

ROMAN_NUMERALS = frozenset({"I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"})

# Acronyms that read wrong in title case and that geocoders know as written.
ACRONYMS = frozenset({"CBD", "JKIA", "KNH", "USIU", "TRM", "GPO", "KU"})

# Spreadsheet debris and stand-ins that survive as words once punctuation is gone.
PLACEHOLDERS = frozenset({"N A", "NA", "NULL", "NONE", "NIL", "VALUE", "REF", "TBD", "UNKNOWN", "TEST"})

_CODE = re.compile("|".join(f"(?:{code})" for code in NETWORK_CODES), re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*|&")


def clean_location_name(location_name: str) -> str | None:
    """Return the place name inside a coded site name, or None if none is left.

    `NW_KAYOLE_JUNCTION_FDT3` gives "Kayole Junction" and `ADR_MNT_DONHOLM_PHASE_8`
    gives "Donholm Phase 8".
    """
    words = [w.upper() for w in _WORD.findall(location_name or "")]
    words = [w for w in words if not _CODE.fullmatch(w)]
    while len(words) > 1 and words[-1].isdigit() and words[-2] not in NUMBERED_WORDS:
        words.pop()
    if not any(any(c.isalpha() for c in w) for w in words):
        return None
    if " ".join(words) in PLACEHOLDERS:
        return None
    return " ".join(_spell(word, first=i == 0) for i, word in enumerate(words))


def _spell(word: str, *, first: bool) -> str:
    if word in ROMAN_NUMERALS or word in ACRONYMS:
        return word
    if word == "ST" and first:
        return "St"  # a leading ST is Saint ("St Teresa's"), not Street
    return ABBREVIATIONS.get(word) or word.capitalize()


def geocode_query(place: str, cluster: str | None, region: str | None, country: str = "Kenya") -> str:
    """Join the non-blank parts into one search string, each part once.

    Parts arriving all in lower case (the feed lowercases `region`) are title-cased
    so the query reads the same whichever column a part came from.
    """
    parts: list[str] = []
    seen: set[str] = set()
    for raw in (place, cluster, region, country):
        part = " ".join((raw or "").split())
        if not part or part.casefold() in seen:
            continue
        seen.add(part.casefold())
        if part.islower():
            words = part.upper().split()
            part = " ".join(_spell(w, first=i == 0) for i, w in enumerate(words))
        parts.append(part)
    return ", ".join(parts)

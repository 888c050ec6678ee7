"""Short text blocks that are page furniture whatever element holds them: datelines and photo credits.

Selection keeps or drops whole elements; some furniture sits inside the article container, in an
element with no telling name: "Updated 5:27 am CST, Wednesday, November 20, 2019", "By Regan
September 15, 2014", "Photo: Hau Dinh, AP", "Image copyright Reuters", "(Image: GETTY)". A short
block (at most :data:`MAX_WORDS` words, not a table cell or list item: a schedule or a date list is
data) is dropped when

* a **dateline**: at least 70 % of its words are dates and times (numbers, month and weekday names
  in the languages below, am/pm, time zones) or the words around them ("updated", "published",
  "by", "aktualisiert", "publié le", …), with a month or weekday name, a year or a time/date
  ("5:27", "11/18/19") among them (so "x = 2 + 3" is not a date);
* a **credit**: it starts with a credit word ("Photo:", "Foto:", "Bild:", "Image copyright",
  "Credit", "Source:", "Quelle:", "©") or is only a picture agency's name with a person or two
  (at most 6 words).

A dateline holds a digit (a day, a year, a time); "Updated Wednesday" alone is kept.

The word lists cover English, German, French, Spanish, Italian, Portuguese, Dutch and Polish.
"""

from __future__ import annotations

import re

MAX_WORDS = 14
_SHARE = 0.7

_MONTHS = """
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec
januar februar märz maerz april mai juni juli august september oktober november dezember jän
janvier février fevrier mars avril mai juin juillet août aout septembre octobre novembre décembre
enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre
gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre
janeiro fevereiro março marco abril maio junho julho agosto setembro outubro novembro dezembro
januari februari maart april mei juni juli augustus september oktober november december
stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października listopada grudnia
styczeń luty marzec kwiecień maj czerwiec lipiec sierpień wrzesień październik listopad grudzień
""".split()
_WEEKDAYS = """
monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun
montag dienstag mittwoch donnerstag freitag samstag sonntag sonnabend mo di mi do fr sa so
lundi mardi mercredi jeudi vendredi samedi dimanche
lunes martes miércoles jueves viernes sábado domingo
lunedì martedì mercoledì giovedì venerdì sabato domenica
segunda terça quarta quinta sexta sábado domingo feira
maandag dinsdag woensdag donderdag vrijdag zaterdag zondag
poniedziałek wtorek środa czwartek piątek sobota niedziela
""".split()
_AROUND = """
am pm p m et est edt cst cdt pst pdt mst gmt bst utc cet cest uhr h
updated update published posted originally original last modified on at by de du le la
aktualisiert veröffentlicht erstellt geändert am um von vom zuletzt stand
publié mis à jour modifié le par
publicado actualizado el por a las
pubblicato aggiornato il alle di
atualizado em às
gepubliceerd bijgewerkt op om door
opublikowano aktualizacja zaktualizowano dnia godz przez
today yesterday heute gestern aujourd hier hoy ayer oggi ieri hoje ontem vandaag gisteren dzisiaj wczoraj
ago vor il y a hace fa atrás geleden temu min mins minute minutes hour hours day days
""".split()
_DATE_ANCHOR = frozenset(_MONTHS) | frozenset(_WEEKDAYS)
_DATE_WORDS = _DATE_ANCHOR | frozenset(_AROUND)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_DIGIT = re.compile(r"\d")
_DATE_NUMBER = re.compile(r"\b\d{1,2}[:./]\d{1,2}\b|\b(?:19|20)\d\d\b")  # 5:27 11/18/19 20.11. 2019
_CREDIT_START = re.compile(
    r"^[(\[]?\s*(?:photo|photos|photograph|image|images|picture|pictures|foto|fotos|bild|bilder|fot\.?"
    r"|zdjęcie|zdjęcia|crédit|credit|credits|source|quelle|fuente|fonte|bron|źródło|©|\(c\)|copyright)"
    r"(?:\s*(?:credit|copyright|by|von|de|di|par|:)\b|\s*[:/|©])",
    re.IGNORECASE,
)
_AGENCY = re.compile(
    r"\b(?:getty images|ap photo|associated press|reuters|afp|dpa|epa|shutterstock|istock|imago"
    r"|picture alliance|keystone|pa images|pap)\b",
    re.IGNORECASE,
)


def is_furniture(block: str) -> bool:
    """A dateline or a photo credit (see the module's docstring); ``False`` for anything longer.

    Cheap tests first: most blocks are longer than 160 characters, or hold no digit (a dateline
    always has a day, a year or a time)."""
    if len(block) > 160:
        return False
    if _CREDIT_START.match(block):
        return len(_WORD.findall(block)) <= MAX_WORDS
    if len(block) <= 60 and _AGENCY.search(block):
        return len(_WORD.findall(block)) <= 6
    if _DIGIT.search(block) is None:
        return False
    words = _WORD.findall(block.lower())
    if len(words) > MAX_WORDS:
        return False
    dated = anchored = 0
    for w in words:
        if w.isdigit():
            dated += 1
        elif w in _DATE_WORDS:
            dated += 1
            if w in _DATE_ANCHOR:
                anchored = 1
    if dated < _SHARE * len(words):
        return False
    return bool(anchored) or _DATE_NUMBER.search(block) is not None

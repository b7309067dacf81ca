"""Reading data: NER (XtremeDistil TSV, CoNLL/WikiANN column files), sentence and sentence-pair
classification TSV, transfer sets and label lists.

Every reader decodes line by line, so a fault is reported as 'path:line: fault'. Files must use an
ASCII-compatible encoding (utf-8, latin-1, cp1252, ...).
"""
from __future__ import annotations

import codecs
import contextlib
import dataclasses
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

DEFAULT_LANGUAGE = "default"
SPLITS = ("train", "dev", "test")
TAG_SCHEMES = ("iob1", "iob2")
DOCSTART = "-DOCSTART-"

_FIELD_SEPARATOR = re.compile(r"[ \t]+")
_LANGUAGE_PREFIX = re.compile(r"([A-Za-z0-9_-]{1,12}):(.+)")
_FILENAME_LANGUAGE = re.compile(r"(?:train|dev|test)[-_]([a-z]{2,3}(?:[-_][A-Z][A-Za-z]{1,3})?)")
_TAG_LIKE = re.compile(rb"O|[A-Za-z]{1,2}-\S+")
_DETECT_SAMPLE_LINES = 200

PathLike = str | os.PathLike
Fault = tuple[int, str]  # index of the offending token, description


class DataError(ValueError):
    """Bad input; message starts with 'path:line: '."""


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence; tags is None for unlabeled (transfer) text."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None
    language: str
    source: str  # 'path:line' of the sentence's first line


@dataclasses.dataclass(frozen=True)
class TextExample:
    """One text (or pair of texts) to classify; label is None for unlabeled (transfer) text."""

    text: str
    text_b: str | None  # the pair's second text, None for single sentences
    label: str | None
    language: str
    source: str  # 'path:line'


@dataclasses.dataclass
class LoadedFile:
    """The sentences of one file, and the bad ones skipped (with skip_bad_lines=True)."""

    sentences: list[Sentence]
    skipped: int
    # one DataError message per skip
    skip_reasons: list[str] = dataclasses.field(default_factory=list)


def read_labels(path: PathLike, encoding: str = "utf-8") -> list[str]:
    """Tags of a label file, one a line, in file order; blank lines are ignored."""
    first_lines: dict[str, int] = {}
    for number, text in read_text_lines(path, encoding):
        label = text.strip()
        if label in first_lines:
            first = first_lines[label]
            raise DataError(f"{path}:{number}: duplicate label {label!r} (first on line {first})")
        if label:
            first_lines[label] = number
    if not first_lines:
        raise DataError(f"{path}: no labels")
    return list(first_lines)


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB2 tags from IOB1: an I-X that opens an entity becomes B-X; other tags are kept."""
    converted = []
    previous_type = ""
    for tag in tags:
        prefix, _, entity_type = tag.partition("-")
        if prefix == "I" and entity_type and entity_type != previous_type:
            tag = f"B-{entity_type}"
        converted.append(tag)
        previous_type = entity_type if prefix in ("B", "I") else ""
    return converted


def check_iob2(tags: Sequence[str], where: str) -> None:
    """Raise DataError(f'{where}: ...') for a malformed tag or an I-X that does not continue an
    X entity."""
    fault = _iob2_fault(tags)
    if fault:
        raise DataError(f"{where}: {fault[1]}")


def read_xtremedistil_tsv(
    path: PathLike,
    labels: Sequence[str] | None = None,
    skip_bad_lines: bool = False,
    encoding: str = "utf-8",
    tag_scheme: str = "iob2",
    language: str | None = None,
) -> LoadedFile:
    """Read 'tokens<TAB>tags' lines (space-separated, tags optionally 'lang:TAG'); blank lines are
    skipped.

    The language is the tags' prefix, else `language`, else 'default'.
    """
    _check_tag_scheme(tag_scheme)
    allowed = _allowed_tags(labels)
    loaded = LoadedFile([], 0)
    for number, text in read_text_lines(path, encoding):
        if not text.strip(" \t"):
            continue
        try:
            loaded.sentences.append(
                _parse_xtremedistil_line(text, f"{path}:{number}", allowed, tag_scheme, language)
            )
        except DataError as fault:
            _skip_or_raise(loaded, fault, skip_bad_lines)
    return _require_sentences(loaded, path)


def read_column_file(
    path: PathLike,
    language: str | None = None,
    labels: Sequence[str] | None = None,
    skip_bad_lines: bool = False,
    encoding: str = "utf-8",
    tag_scheme: str = "iob2",
) -> LoadedFile:
    """Read CoNLL/WikiANN columns: 'token [columns...] tag' a line, blank lines between sentences.

    Fields are separated by spaces or tabs; -DOCSTART- lines are skipped. The language is
    `language`, else the one in the file name, else 'default'.
    """
    _check_tag_scheme(tag_scheme)
    allowed = _allowed_tags(labels)
    language = language or language_from_filename(path) or DEFAULT_LANGUAGE
    loaded = LoadedFile([], 0)
    for block in _column_blocks(path, encoding):
        try:
            loaded.sentences.append(_parse_column_block(block, path, allowed, tag_scheme, language))
        except DataError as fault:
            _skip_or_raise(loaded, fault, skip_bad_lines)
    return _require_sentences(loaded, path)


def iter_transfer_file(
    path: PathLike, encoding: str = "utf-8", language: str | None = None
) -> Iterator[Sentence]:
    """Unlabeled sentences one at a time, never the whole file in memory.

    One a line (space-separated; text after a TAB is ignored) or columns, as detect_format says;
    column tags are ignored. The language is `language`, else the one in the file name, else
    'default'.
    """
    language = language or language_from_filename(path) or DEFAULT_LANGUAGE
    if detect_format(path) == "columns":
        for block in _column_blocks(path, encoding):
            yield Sentence(tuple(fields[0] for _, fields in block), None, language,
                           f"{path}:{block[0][0]}")
    else:
        for number, text in read_text_lines(path, encoding):
            if words := text.partition("\t")[0].strip(" \t"):
                yield Sentence(tuple(_FIELD_SEPARATOR.split(words)), None, language,
                               f"{path}:{number}")


def read_transfer_file(
    path: PathLike, encoding: str = "utf-8", language: str | None = None
) -> LoadedFile:
    """All unlabeled sentences of a file (see iter_transfer_file)."""
    return _require_sentences(
        LoadedFile(list(iter_transfer_file(path, encoding, language)), 0), path)


def read_text_file(
    path: PathLike,
    pairwise: bool = False,
    labels: Sequence[str] | None = None,
    skip_bad_lines: bool = False,
    encoding: str = "utf-8",
    language: str | None = None,
) -> LoadedFile:
    """Read 'text<TAB>label' lines ('text_a<TAB>text_b<TAB>label' when pairwise); blank lines
    are skipped. The language is the label's 'lang:' prefix, else `language`, else the one in
    the file name, else 'default'."""
    allowed = _allowed_tags(labels)
    language = language or language_from_filename(path)
    loaded = LoadedFile([], 0)
    for number, line in read_text_lines(path, encoding):
        if not line.strip(" \t"):
            continue
        where = f"{path}:{number}"
        try:
            *texts, label = _text_fields(line, 3 if pairwise else 2, where)
            match = (None if allowed is not None and label in allowed
                     else _LANGUAGE_PREFIX.fullmatch(label))
            prefix, label = (match[1], match[2]) if match else (None, label)
            if allowed is not None and label not in allowed:
                raise DataError(f"{where}: unknown label {label!r}; allowed: {', '.join(allowed)}")
            loaded.sentences.append(
                TextExample(texts[0], texts[1] if pairwise else None, label,
                            prefix or language or DEFAULT_LANGUAGE, where)
            )
        except DataError as fault:
            _skip_or_raise(loaded, fault, skip_bad_lines)
    return _require_sentences(loaded, path)


def iter_text_transfer_file(
    path: PathLike, pairwise: bool = False, encoding: str = "utf-8", language: str | None = None
) -> Iterator[TextExample]:
    """Unlabeled texts one at a time: 'text' a line ('text_a<TAB>text_b' when pairwise); blank
    lines are skipped, a line with another number of fields is a DataError."""
    language = language or language_from_filename(path) or DEFAULT_LANGUAGE
    for number, line in read_text_lines(path, encoding):
        if line.strip(" \t"):
            texts = _text_fields(line, 2 if pairwise else 1, f"{path}:{number}", labeled=False)
            yield TextExample(texts[0], texts[1] if pairwise else None, None, language,
                              f"{path}:{number}")


def derive_text_labels(examples: Iterable[TextExample]) -> list[str]:
    """Sorted label set of labeled examples."""
    return sorted({example.label for example in examples if example.label is not None})


def _text_fields(line: str, count: int, where: str, labeled: bool = True) -> list[str]:
    """The TAB-separated fields of a classification line, each stripped; DataError unless there
    are `count` of them and none is empty."""
    fields = [field.strip(" ") for field in line.split("\t")]
    names = {(1, False): ["text"], (2, False): ["text_a", "text_b"], (2, True): ["text", "label"],
             (3, True): ["text_a", "text_b", "label"]}[count, labeled]
    if len(fields) != count:
        hint = (" (a labeled file given as transfer text?)"
                if not labeled and len(fields) == count + 1 else "")
        raise DataError(f"{where}: expected {len(names)} TAB-separated "
                        f"field{'s' if count > 1 else ''} "
                        f"({'<TAB>'.join(names)}), found {len(fields)}{hint}")
    for name, field in zip(names, fields):
        if not field:
            raise DataError(f"{where}: empty {name}")
    return fields


def detect_format(path: PathLike) -> str:
    """'xtremedistil' or 'columns', judged from the first 200 non-blank lines.

    Columns if a line starts with -DOCSTART-, or if no line has several tags after a TAB and every
    line has at least two fields and either a TAB or a tag-like last field (O, B-X, ...).
    """
    sample = _first_nonblank_lines(path, _DETECT_SAMPLE_LINES)
    if not sample:
        raise DataError(f"{path}: no sentences")
    if any(line.startswith(DOCSTART.encode()) for line in sample):
        return "columns"
    if any(b" " in line.partition(b"\t")[2] for line in sample):
        return "xtremedistil"
    if all(_looks_like_column_line(line) for line in sample):
        return "columns"
    return "xtremedistil"


def read_labeled_file(path: PathLike, data_format: str = "auto", **kwargs) -> LoadedFile:
    """Read a labeled file as 'xtremedistil' or 'columns'; 'auto' asks detect_format."""
    readers = {"xtremedistil": read_xtremedistil_tsv, "columns": read_column_file}
    chosen = detect_format(path) if data_format == "auto" else data_format
    if chosen not in readers:
        raise ValueError("data_format must be 'auto', 'xtremedistil' or 'columns', "
                         f"not {data_format!r}")
    return readers[chosen](path, **kwargs)


def language_from_filename(path: PathLike) -> str | None:
    """The language code after a split name: 'train-de.tsv' -> 'de', 'dev_fr.tsv' -> 'fr',
    else None."""
    match = _FILENAME_LANGUAGE.fullmatch(Path(path).stem)
    return match[1] if match else None


def find_split_files(task_dir: PathLike, split: str) -> list[Path]:
    """Sorted files of a split in a folder: '{split}.tsv', '{split}-*.tsv' or '{split}_*.tsv'."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    folder = Path(task_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    patterns = (f"{split}.tsv", f"{split}-*.tsv", f"{split}_*.tsv")
    found = sorted({path for pattern in patterns for path in folder.glob(pattern)
                    if path.is_file()})
    if not found:
        raise DataError(f"{folder}: no {split} files (tried {', '.join(patterns)})")
    return found


def derive_labels(sentences: Iterable[Sentence]) -> list[str]:
    """Sorted tag set of the labeled sentences, 'O' first."""
    tags = {tag for sentence in sentences if sentence.tags is not None for tag in sentence.tags}
    return sorted(tags, key=lambda tag: (tag != "O", tag))


def read_text_lines(path: PathLike, encoding: str,
                    skip_bad_lines: bool = False) -> Iterator[tuple[int, str | None]]:
    """(line number, text without line ending) for each line of a file ('-': standard input);
    undecodable bytes raise DataError, or with skip_bad_lines give the text None."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r}") from None
    file_offset = 0
    with (contextlib.nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb")) as handle:
        for number, raw in enumerate(handle, 1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as error:
                if skip_bad_lines:
                    file_offset += len(raw)
                    yield number, None
                    continue
                raise DataError(
                    f"{path}:{number}: not {encoding.upper()}: cannot decode byte "
                    f"0x{raw[error.start]:02x} as {encoding} "
                    f"(byte offset {error.start} in the line, "
                    f"{file_offset + error.start} in the file); "
                    "give the file's encoding with --encoding, e.g. --encoding latin-1"
                ) from None
            file_offset += len(raw)
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text.rstrip("\r\n")


def _first_nonblank_lines(path: PathLike, limit: int) -> list[bytes]:
    """Up to `limit` non-blank lines of a file as bytes, stripped of spaces, tabs and line
    endings."""
    lines = []
    with open(path, "rb") as handle:
        for raw in handle:
            line = raw.strip(b" \t\r\n")
            if line:
                lines.append(line)
                if len(lines) == limit:
                    break
    return lines


def _looks_like_column_line(line: bytes) -> bool:
    """Whether a line reads as 'token ... tag': two fields or more, and a TAB or a tag-like
    last field."""
    fields = re.split(rb"[ \t]+", line)
    return len(fields) >= 2 and (b"\t" in line or _TAG_LIKE.fullmatch(fields[-1]) is not None)


def _column_blocks(path: PathLike, encoding: str) -> Iterator[list[tuple[int, list[str]]]]:
    """Each sentence of a column file as (line number, fields) pairs; blank and -DOCSTART-
    lines end one."""
    block: list[tuple[int, list[str]]] = []
    for number, text in read_text_lines(path, encoding):
        fields = _FIELD_SEPARATOR.split(text.strip(" \t"))
        if fields[0] and fields[0] != DOCSTART:
            block.append((number, fields))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _parse_column_block(
    block: list[tuple[int, list[str]]],
    path: PathLike,
    allowed: dict[str, None] | None,
    tag_scheme: str,
    language: str,
) -> Sentence:
    """A labeled sentence from column lines: the first field is the token, the last the tag."""
    for number, fields in block:
        if len(fields) < 2:
            raise DataError(f"{path}:{number}: token {fields[0]!r} has no tag (one column)")
    tags, fault = _check_tags([fields[-1] for _, fields in block], allowed, tag_scheme)
    if fault:
        raise DataError(f"{path}:{block[fault[0]][0]}: {fault[1]}")
    tokens = tuple(fields[0] for _, fields in block)
    return Sentence(tokens, tuple(tags), language, f"{path}:{block[0][0]}")


def _parse_xtremedistil_line(
    text: str, where: str, allowed: dict[str, None] | None, tag_scheme: str, language: str | None
) -> Sentence:
    """A labeled sentence from one 'tokens<TAB>tags' line."""
    fields = text.split("\t")
    if len(fields) != 2:
        found = "no TAB" if len(fields) == 1 else f"{len(fields) - 1} TABs"
        raise DataError(f"{where}: expected 'tokens<TAB>tags', found {found}")
    tokens = _split_on_spaces(fields[0], "token", where)
    raw_tags = _split_on_spaces(fields[1], "tag", where)
    if len(tokens) != len(raw_tags):
        raise DataError(f"{where}: {len(tokens)} tokens but {len(raw_tags)} tags")
    prefix, raw_tags = _strip_language_prefixes(raw_tags, allowed, where)
    tags, fault = _check_tags(raw_tags, allowed, tag_scheme)
    if fault:
        raise DataError(f"{where}: {fault[1]}")
    return Sentence(tuple(tokens), tuple(tags), prefix or language or DEFAULT_LANGUAGE, where)


def _split_on_spaces(field: str, item: str, where: str) -> list[str]:
    """Single-space-separated items; an empty one (double, leading or trailing space) is a fault."""
    items = field.split(" ")
    if "" in items:
        raise DataError(
            f"{where}: empty {item} at position {items.index('') + 1} "
            "(double, leading or trailing space)"
        )
    return items


def _strip_language_prefixes(
    tags: Sequence[str], allowed: dict[str, None] | None, where: str
) -> tuple[str | None, list[str]]:
    """The sentence's language prefix ('fr' of 'fr:B-PER', or None) and the bare tags.

    A tag is split at its first colon only if the part before looks like a language id and the
    whole tag is not an allowed label. All tags must share one prefix (or none).
    """
    prefixes, bare_tags = set(), []
    for tag in tags:
        match = None if allowed is not None and tag in allowed else _LANGUAGE_PREFIX.fullmatch(tag)
        prefixes.add(match[1] if match else None)
        bare_tags.append(match[2] if match else tag)
    if len(prefixes) > 1:
        names = ", ".join(sorted(prefix or "(none)" for prefix in prefixes))
        raise DataError(f"{where}: tags mix language prefixes: {names}")
    return prefixes.pop(), bare_tags


def _check_tags(
    raw_tags: Sequence[str], allowed: dict[str, None] | None, tag_scheme: str
) -> tuple[list[str], Fault | None]:
    """IOB2 tags (converted from IOB1 if asked) and the first unknown tag or IOB2 violation."""
    tags = iob1_to_iob2(raw_tags) if tag_scheme == "iob1" else list(raw_tags)
    if allowed is not None:
        for index, tag in enumerate(tags):
            if tag not in allowed:
                origin = f" (IOB1 {raw_tags[index]!r})" if tag != raw_tags[index] else ""
                fault = (f"unknown tag {tag!r}{origin} at position {index + 1}; "
                         f"allowed: {', '.join(allowed)}")
                return tags, (index, fault)
    return tags, _iob2_fault(tags)


def _iob2_fault(tags: Sequence[str]) -> Fault | None:
    """The first tag that is not O/B-X/I-X, or an I-X not preceded by B-X or I-X."""
    previous, previous_type = None, ""
    for index, tag in enumerate(tags):
        prefix, _, entity_type = tag.partition("-")
        if tag != "O" and (prefix not in ("B", "I") or not entity_type):
            return index, f"tag {tag!r} at position {index + 1} is not O, B-<type> or I-<type>"
        if prefix == "I" and entity_type != previous_type:
            after = repr(previous) if previous else "the sentence start"
            fault = f"IOB2 violation: {tag!r} at position {index + 1} follows {after}"
            return index, f"{fault} (IOB1 data? use tag scheme iob1)"
        previous, previous_type = tag, entity_type
    return None


def _allowed_tags(labels: Sequence[str] | None) -> dict[str, None] | None:
    """The label list as an ordered set, or None when any tag is allowed."""
    return None if labels is None else dict.fromkeys(labels)


def _check_tag_scheme(tag_scheme: str) -> None:
    """ValueError unless the scheme is iob1 or iob2."""
    if tag_scheme not in TAG_SCHEMES:
        raise ValueError(f"tag_scheme must be one of {', '.join(TAG_SCHEMES)}, not {tag_scheme!r}")


def _skip_or_raise(loaded: LoadedFile, fault: DataError, skip_bad_lines: bool) -> None:
    """Count a bad sentence as skipped, or raise its fault."""
    if not skip_bad_lines:
        raise fault
    loaded.skipped += 1
    loaded.skip_reasons.append(str(fault))


def _require_sentences(loaded: LoadedFile, path: PathLike) -> LoadedFile:
    """The loaded file, or DataError when it holds no sentence."""
    if not loaded.sentences:
        skipped = f" ({loaded.skipped} bad ones skipped)" if loaded.skipped else ""
        raise DataError(f"{path}: no sentences{skipped}")
    return loaded

"""Tests of xtremedistil.data: hand-made files for every format and fault, then the real shared
data."""
import re
from pathlib import Path

import pytest

from xtremedistil.data import (
    DataError,
    Sentence,
    check_iob2,
    derive_labels,
    detect_format,
    find_split_files,
    iob1_to_iob2,
    language_from_filename,
    read_column_file,
    read_labeled_file,
    read_labels,
    read_transfer_file,
    read_xtremedistil_tsv,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def raises_at(path: Path, line: int, fault: str):
    """pytest.raises for a DataError naming the file, the line and the fault."""
    return pytest.raises(DataError, match=rf"^{re.escape(str(path))}:{line}: .*{fault}")


# --- labels and tag schemes ---------------------------------------------------------------------


def test_read_labels_keeps_file_order_and_ignores_blank_lines(tmp_path):
    path = write(tmp_path, "labels.tsv", "O\n\nB-PER\r\nI-PER\n")
    assert read_labels(path) == ["O", "B-PER", "I-PER"]


def test_read_labels_rejects_duplicates_and_empty_files(tmp_path):
    duplicated = write(tmp_path, "labels.tsv", "O\nB-PER\n\nB-PER\n")
    with raises_at(duplicated, 4, "duplicate label 'B-PER' \\(first on line 2\\)"):
        read_labels(duplicated)
    empty = write(tmp_path, "empty.tsv", "\n\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(empty))}: no labels"):
        read_labels(empty)


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        (["I-PER", "I-PER", "O", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),
        (["I-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),
        (["O", "B-LOC", "I-LOC", "O"], ["O", "B-LOC", "I-LOC", "O"]),
        ([], []),
    ],
)
def test_iob1_to_iob2(iob1, iob2):
    assert iob1_to_iob2(iob1) == iob2
    assert iob1_to_iob2(iob2) == iob2


def test_check_iob2_accepts_valid_tags():
    check_iob2(["O", "B-PER", "I-PER", "B-PER", "B-LOC", "I-LOC", "I-LOC", "O"], "x")
    check_iob2([], "x")


@pytest.mark.parametrize(
    ("tags", "fault"),
    [
        (["I-PER"], "'I-PER' at position 1 follows the sentence start"),
        (["O", "I-PER"], "'I-PER' at position 2 follows 'O'"),
        (["B-LOC", "I-PER"], "'I-PER' at position 2 follows 'B-LOC'"),
        (["B-LOC", "I-LOC", "I-PER"], "'I-PER' at position 3 follows 'I-LOC'"),
        (["O", "PER"], "'PER' at position 2 is not O, B-<type> or I-<type>"),
        (["B-"], "'B-' at position 1 is not"),
    ],
)
def test_check_iob2_names_tag_and_position(tags, fault):
    with pytest.raises(DataError) as error:
        check_iob2(tags, "f.tsv:7")
    assert str(error.value).startswith("f.tsv:7: ")
    assert fault in str(error.value)


# --- XtremeDistil TSV -----------------------------------------------------------------------------


def test_xtremedistil_reads_tokens_tags_and_language_prefix(tmp_path):
    path = write(tmp_path, "train.tsv",
                 "Anna lives in Paris\tfr:B-PER fr:O fr:O fr:B-LOC\n\nHi\tzh-Hans:O\n")
    loaded = read_xtremedistil_tsv(path, labels=LABELS)
    assert loaded.skipped == 0
    assert loaded.sentences == [
        Sentence(("Anna", "lives", "in", "Paris"), ("B-PER", "O", "O", "B-LOC"), "fr", f"{path}:1"),
        Sentence(("Hi",), ("O",), "zh-Hans", f"{path}:3"),
    ]


def test_xtremedistil_language_without_prefix(tmp_path):
    path = write(tmp_path, "train.tsv", "Anna sings\tB-PER O\n")
    assert read_xtremedistil_tsv(path).sentences[0].language == "default"
    assert read_xtremedistil_tsv(path, language="de").sentences[0].language == "de"


def test_xtremedistil_splits_only_language_like_prefixes(tmp_path):
    path = write(tmp_path, "train.tsv", "a b\tB-ORG:SPORT I-ORG:SPORT\nc\tnot.a.language:O\n")
    loaded = read_xtremedistil_tsv(path, labels=["O", "B-ORG:SPORT", "I-ORG:SPORT"],
                                   skip_bad_lines=True)
    assert loaded.sentences[0].tags == ("B-ORG:SPORT", "I-ORG:SPORT")
    assert loaded.sentences[0].language == "default"
    assert "unknown tag 'not.a.language:O'" in loaded.skip_reasons[0]


def test_xtremedistil_iob1_scheme_converts(tmp_path):
    path = write(tmp_path, "train.tsv", "Anna Smith\ten:I-PER en:I-PER\n")
    assert read_xtremedistil_tsv(path, tag_scheme="iob1").sentences[0].tags == ("B-PER", "I-PER")
    with raises_at(path, 1, "IOB2 violation: 'I-PER' at position 1"):
        read_xtremedistil_tsv(path)


@pytest.mark.parametrize(
    ("line", "fault"),
    [
        ("a b c\tO O", "3 tokens but 2 tags"),
        ("a b c O O O", "expected 'tokens<TAB>tags', found no TAB"),
        ("a b\tO O\tO O", "found 2 TABs"),
        ("a  b\tO O O", "empty token at position 2"),
        ("a b\tO O ", "empty tag at position 3"),
        ("a b\tO B-MISC",
         "unknown tag 'B-MISC' at position 2; allowed: O, B-PER, I-PER, B-LOC, I-LOC"),
        ("a b c\tO O I-LOC", "IOB2 violation: 'I-LOC' at position 3 follows 'O'"),
        ("a b\tfr:O de:O", "tags mix language prefixes: de, fr"),
        ("a b\tfr:O O", "tags mix language prefixes: \\(none\\), fr"),
    ],
)
def test_xtremedistil_faults_name_file_line_and_fault(tmp_path, line, fault):
    path = write(tmp_path, "train.tsv", f"x y\tO O\n\n{line}\nz\tO\n")
    with raises_at(path, 3, fault):
        read_xtremedistil_tsv(path, labels=LABELS)
    loaded = read_xtremedistil_tsv(path, labels=LABELS, skip_bad_lines=True)
    assert [s.source for s in loaded.sentences] == [f"{path}:1", f"{path}:4"]
    assert loaded.skipped == 1
    assert loaded.skip_reasons[0].startswith(f"{path}:3: ")


def test_xtremedistil_empty_or_all_bad_file_has_no_sentences(tmp_path):
    empty = write(tmp_path, "empty.tsv", "\n \n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(empty))}: no sentences$"):
        read_xtremedistil_tsv(empty, skip_bad_lines=True)
    all_bad = write(tmp_path, "bad.tsv", "a b\tO\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(all_bad))}: "
                                        r"no sentences \(1 bad ones skipped\)"):
        read_xtremedistil_tsv(all_bad, skip_bad_lines=True)


# --- encodings -----------------------------------------------------------------------------------


def test_undecodable_bytes_name_line_offset_and_encoding_option(tmp_path):
    path = write(tmp_path, "esp.tsv",
                 "Madrid\tB-LOC\n\nLa\tO\nCoru\xf1a\tB-LOC\n".encode("latin-1"))
    fault = (r"cannot decode byte 0xf1 as utf-8 \(byte offset 4 in the line, 23 in the file\)"
             r".*--encoding")
    with raises_at(path, 4, fault):
        read_column_file(path, skip_bad_lines=True)
    assert read_column_file(path, encoding="latin-1").sentences[1].tokens == ("La", "Coruña")


def test_undecodable_bytes_are_not_skippable_in_xtremedistil_files(tmp_path):
    path = write(tmp_path, "train.tsv", b"ok\tO\n\xff\tO\n")
    with raises_at(path, 2, "cannot decode byte 0xff"):
        read_xtremedistil_tsv(path, skip_bad_lines=True)


def test_unknown_encoding_is_a_data_error(tmp_path):
    path = write(tmp_path, "train.tsv", "a\tO\n")
    with pytest.raises(DataError,
                       match=rf"^{re.escape(str(path))}: unknown encoding 'no-such-codec'"):
        read_xtremedistil_tsv(path, encoding="no-such-codec")


def test_byte_order_mark_and_crlf_are_dropped(tmp_path):
    path = write(tmp_path, "train.tsv", "\ufeffAnna sings\tB-PER O\r\n")
    assert read_xtremedistil_tsv(path).sentences[0].tokens == ("Anna", "sings")


# --- column files ---------------------------------------------------------------------------------


CONLL = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O

-DOCSTART- -X- -X- O


Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
"""


def test_column_file_skips_docstart_and_blank_runs(tmp_path):
    path = write(tmp_path, "eng.train", CONLL)
    loaded = read_column_file(path, tag_scheme="iob1")
    assert loaded.sentences == [
        Sentence(("EU", "rejects"), ("B-ORG", "O"), "default", f"{path}:3"),
        Sentence(("Peter", "Blackburn"), ("B-PER", "I-PER"), "default", f"{path}:9"),
    ]


def test_column_file_tab_separated_with_language_from_name(tmp_path):
    path = write(tmp_path, "dev-de.tsv", "Anna\tB-PER\nMüller\tI-PER\n\n\u00a0x\tO\n")
    loaded = read_column_file(path)
    assert [s.tokens for s in loaded.sentences] == [("Anna", "Müller"), ("\u00a0x",)]
    assert {s.language for s in loaded.sentences} == {"de"}
    assert read_column_file(path, language="nl").sentences[0].language == "nl"


def test_column_file_takes_first_and_last_of_ragged_columns(tmp_path):
    # like ned.train's stray bytes
    latin1 = "De Art O\nBelgi\x81EN B-LOC\nland N O\n".encode("latin-1")
    path = write(tmp_path, "ned.train", latin1)
    sentence = read_column_file(path, encoding="latin-1").sentences[0]
    assert sentence.tokens == ("De", "Belgi\x81EN", "land")
    assert sentence.tags == ("O", "B-LOC", "O")


@pytest.mark.parametrize(
    ("bad_line", "fault"),
    [
        ("Paris", "token 'Paris' has no tag \\(one column\\)"),
        ("Paris I-LOC", "IOB2 violation: 'I-LOC' at position 2 follows 'O'"),
        ("Paris B-MISC", "unknown tag 'B-MISC' at position 2; allowed: O, B-PER"),
    ],
)
def test_column_faults_name_the_offending_line(tmp_path, bad_line, fault):
    path = write(tmp_path, "train-en.tsv", f"Anna B-PER\n\nin O\n{bad_line}\n. O\n\nok O\n")
    with raises_at(path, 4, fault):
        read_column_file(path, labels=LABELS)
    loaded = read_column_file(path, labels=LABELS, skip_bad_lines=True)
    assert [s.tokens for s in loaded.sentences] == [("Anna",), ("ok",)]
    assert loaded.skipped == 1
    assert loaded.skip_reasons[0].startswith(f"{path}:4: ")


def test_column_iob1_unknown_converted_tag_names_the_original(tmp_path):
    path = write(tmp_path, "eng.testa", "x O\nParis I-LOC\n")
    with raises_at(path, 2, "unknown tag 'B-LOC' \\(IOB1 'I-LOC'\\) at position 2"):
        read_column_file(path, labels=["O", "I-LOC"], tag_scheme="iob1")


def test_column_file_without_sentences(tmp_path):
    path = write(tmp_path, "eng.testb", "-DOCSTART- -X- -X- O\n\n\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no sentences$"):
        read_column_file(path, skip_bad_lines=True)


def test_unknown_tag_scheme_is_rejected(tmp_path):
    path = write(tmp_path, "train.tsv", "a O\n")
    with pytest.raises(ValueError, match="tag_scheme"):
        read_column_file(path, tag_scheme="auto")


# --- transfer files, format detection, dispatch ---------------------------------------------------


def test_transfer_file_one_sentence_a_line(tmp_path):
    path = write(tmp_path, "transfer_set.txt",
                 "Films About  Ghosts\n\nHan var\tO O\nNever Without You ''\n")
    loaded = read_transfer_file(path)
    assert [s.tokens for s in loaded.sentences] == [
        ("Films", "About", "Ghosts"),
        ("Han", "var"),
        ("Never", "Without", "You", "''"),
    ]
    assert [s.source for s in loaded.sentences] == [f"{path}:1", f"{path}:3", f"{path}:4"]
    assert ({(s.tags, s.language, loaded.skipped) for s in loaded.sentences}
            == {(None, "default", 0)})


def test_transfer_file_in_columns_ignores_tags(tmp_path):
    path = write(tmp_path, "train-fr.tsv", "Anna\tB-PER\nchante\tO\n\nOui\tO\n")
    loaded = read_transfer_file(path, language="xx")
    assert [(s.tokens, s.tags, s.language) for s in loaded.sentences] == [
        (("Anna", "chante"), None, "xx"),
        (("Oui",), None, "xx"),
    ]


def test_transfer_file_without_sentences(tmp_path):
    path = write(tmp_path, "transfer.txt", "\n\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no sentences$"):
        read_transfer_file(path)


@pytest.mark.parametrize(
    ("content", "data_format"),
    [
        ("Anna sings\ten:B-PER en:O\n", "xtremedistil"),
        ("one sentence a line .\nanother one\n", "xtremedistil"),
        (CONLL, "columns"),
        ("Anna\tB-PER\nMüller\tI-PER\n\nx\tO\n", "columns"),
        ("De Art O\nBelgi N B-LOC\n", "columns"),
    ],
)
def test_detect_format(tmp_path, content, data_format):
    assert detect_format(write(tmp_path, "file.tsv", content)) == data_format


def test_detect_format_of_an_empty_file(tmp_path):
    path = write(tmp_path, "empty.tsv", "\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no sentences$"):
        detect_format(path)


def test_read_labeled_file_dispatches(tmp_path):
    xtremedistil = write(tmp_path, "train_small.tsv", "Anna sings\tde:I-PER de:O\n")
    columns = write(tmp_path, "train-de.tsv", "Anna I-PER\nsingt O\n")
    assert read_labeled_file(xtremedistil, tag_scheme="iob1").sentences[0].language == "de"
    assert read_labeled_file(columns, tag_scheme="iob1",
                             labels=LABELS).sentences[0].tags == ("B-PER", "O")
    with raises_at(xtremedistil, 1, "tag 'de:O' at position 1 is not O"):
        read_labeled_file(xtremedistil, data_format="columns")
    with pytest.raises(ValueError, match="data_format"):
        read_labeled_file(columns, data_format="conll")


# --- file names and label sets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("train-de.tsv", "de"),
        ("dev_fr.tsv", "fr"),
        ("/data/panx/test-zh.tsv", "zh"),
        ("train-pt-BR.tsv", "pt-BR"),
        ("train.tsv", None),
        ("train_small.tsv", None),
        ("transfer_set.txt", None),
        ("eng.train", None),
    ],
)
def test_language_from_filename(name, language):
    assert language_from_filename(name) == language


def test_find_split_files(tmp_path):
    for name in ["train-en.tsv", "train_small.tsv", "train.tsv", "train-de.tsv", "training.tsv",
                 "train.txt"]:
        write(tmp_path, name, "a O\n")
    assert [p.name for p in find_split_files(tmp_path, "train")] == [
        "train-de.tsv",
        "train-en.tsv",
        "train.tsv",
        "train_small.tsv",
    ]
    tried = re.escape("no dev files (tried dev.tsv, dev-*.tsv, dev_*.tsv)")
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path))}: {tried}"):
        find_split_files(tmp_path, "dev")
    with pytest.raises(ValueError, match="split"):
        find_split_files(tmp_path, "valid")


def test_derive_labels_puts_o_first_and_ignores_unlabeled():
    sentences = [
        Sentence(("a", "b"), ("I-PER", "O"), "en", "f:1"),
        Sentence(("c",), ("B-LOC",), "en", "f:3"),
        Sentence(("d",), None, "en", "t:1"),
    ]
    assert derive_labels(sentences) == ["O", "B-LOC", "I-PER"]


# --- real data ------------------------------------------------------------------------------------


@needs_shared
def test_xtremedistil_sample():
    sample = SHARED_DATA / "xtremedistil-sample"
    labels = read_labels(sample / "labels.tsv")
    assert len(labels) == 7
    sizes = {}
    for name in ["train_small.tsv", "dev_small.tsv", "test_small.tsv"]:
        assert detect_format(sample / name) == "xtremedistil"
        loaded = read_xtremedistil_tsv(sample / name, labels=labels, skip_bad_lines=True)
        sizes[name] = (len(loaded.sentences), loaded.skipped)
    # train lines 35, 68: token/tag count mismatch; train 36, 60 and test 49, 88: empty tokens
    # (double spaces)
    assert sizes == {"train_small.tsv": (96, 4), "dev_small.tsv": (10, 0),
                     "test_small.tsv": (98, 2)}
    with raises_at(sample / "train_small.tsv", 35, "7 tokens but 8 tags"):
        read_xtremedistil_tsv(sample / "train_small.tsv", labels=labels)
    transfer = read_transfer_file(sample / "transfer_set.txt")
    assert len(transfer.sentences) == 100


@needs_shared
@pytest.mark.parametrize(
    ("prefix", "encoding", "sizes"),
    [
        ("eng", "utf-8", (14041, 3250, 3453)),
        ("esp", "latin-1", (8323, 1915, 1517)),
        ("ned", "latin-1", (15806, 2895, 5195)),
    ],
)
def test_conll_sentence_counts(prefix, encoding, sizes):
    counts = []
    for split in ["train", "testa", "testb"]:
        path = SHARED_DATA / "conll" / f"{prefix}.{split}"
        loaded = read_labeled_file(path, encoding=encoding, tag_scheme="iob1")
        assert loaded.skipped == 0
        assert derive_labels(loaded.sentences)[0] == "O"
        counts.append(len(loaded.sentences))
    assert tuple(counts) == sizes


@needs_shared
def test_conll_faults_are_reported():
    esp = SHARED_DATA / "conll" / "esp.train"
    with raises_at(esp, 24, "cannot decode byte 0xf3 as utf-8.*--encoding"):
        read_column_file(esp)
    eng = SHARED_DATA / "conll" / "eng.train"
    with raises_at(eng, 1, "IOB2 violation: 'I-ORG' at position 1 follows the sentence start"):
        read_column_file(eng)


@needs_shared
@pytest.mark.parametrize(
    ("language", "sizes"),
    [("de", (20000, 10000, 10000)), ("is", (1000, 1000, 1000)), ("yo", (100, 100, 100))],
)
def test_panx_sentence_counts(language, sizes):
    counts = []
    for split in ["train", "dev", "test"]:
        loaded = read_labeled_file(SHARED_DATA / "panx" / f"{split}-{language}.tsv")
        assert {s.language for s in loaded.sentences} == {language}
        counts.append(len(loaded.sentences))
    assert tuple(counts) == sizes


@needs_shared
def test_panx_zh_breaks_iob2_at_hash_tokens():
    path = SHARED_DATA / "panx" / "dev-zh.tsv"
    with raises_at(path, 55, "IOB2 violation: 'I-ORG' at position 8 follows 'O'"):
        read_column_file(path)
    assert len(read_column_file(path, tag_scheme="iob1").sentences) == 10000


@needs_shared
def test_panx_split_files():
    assert len(find_split_files(SHARED_DATA / "panx", "train")) == 51

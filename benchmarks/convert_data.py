"""Converts public distributions of WikiANN (PAN-X) and CoNLL-2002/2003 into the --data_dir layout
that benchmarks/panx.py and benchmarks/conll.py read (see "Getting the data" in
benchmarks/README.md).

  # Hugging Face exports, one JSON object a line: {"tokens": [...], "ner_tags": [...], ...}
  # (Dataset.to_json's default); ner_tags as integer ids in the corpus's label order, or as strings
  python benchmarks/convert_data.py hf-json --corpus panx --language de --data_dir data/panx \
      train=de-train.jsonl validation=de-validation.jsonl test=de-test.jsonl
  python benchmarks/convert_data.py hf-json --corpus conll --language eng --data_dir data/conll \
      train=train.jsonl validation=validation.jsonl test=test.jsonl

  # raw WikiANN / PAN-X archives of Rahimi et al. (panx_dataset/<lang>.tar.gz: train, dev, test
  # with 'lang:token<TAB>tag' lines), or folders holding those three files
  python benchmarks/convert_data.py wikiann --data_dir data/panx panx_dataset/en.tar.gz ...

Writes PAN-X `{train,dev,test}-<lang>.tsv` (`token<TAB>tag` a line, a blank line between sentences,
UTF-8) or CoNLL `<set>.{train,testa,testb}` (`token tag`; eng UTF-8, esp/ned latin-1, as conll.py
reads them). Bad input stops with 'file:line: fault' before anything is written. Standard library
only.
"""

import argparse
import json
import os
import sys
import tarfile

PANX_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
CONLL_LABELS = PANX_LABELS + ["B-MISC", "I-MISC"]
LABELS = {"panx": PANX_LABELS, "conll": CONLL_LABELS}
SPLITS = {"train": "train", "validation": "dev", "dev": "dev", "test": "test"}
CONLL_SUFFIX = {"train": "train", "dev": "testa", "test": "testb"}
CONLL_ENCODING = {"eng": "utf-8", "esp": "latin-1", "ned": "latin-1"}
WIKIANN_FILES = ("train", "dev", "test")


class ConvertError(ValueError):
    """A fault in the input, as 'file:line: fault'."""


def check_token(token, where, index):
    if not isinstance(token, str) or not token or any(c in token for c in " \t\r\n"):
        raise ConvertError(f"{where}: token {index + 1} {token!r} is empty, not a string or "
                           "holds whitespace (the column files separate fields by spaces/tabs)")
    return token


def utf8_lines(data, name):
    """(line number, text) for each line of UTF-8 bytes; a bad byte is a 'name:line' fault."""
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            text = raw.decode("utf-8").rstrip("\r")
            yield number, text.removeprefix("\ufeff") if number == 1 else text
        except UnicodeDecodeError as error:
            raise ConvertError(f"{name}:{number}: byte 0x{raw[error.start]:02x} is not UTF-8"
                               ) from None


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def read_hf_json(path, labels):
    """[(tokens, tags)] from a JSON-lines export with 'tokens' and 'ner_tags'."""
    sentences = []
    for number, line in utf8_lines(read_bytes(path), path):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            hint = " (a JSON array? export JSON lines: Dataset.to_json(path), lines=True)" \
                if line.lstrip().startswith("[") else ""
            raise ConvertError(f"{where}: not a JSON object: {error.msg}{hint}") from None
        if not isinstance(row, dict) or not isinstance(row.get("tokens"), list) \
                or not isinstance(row.get("ner_tags"), list):
            raise ConvertError(f"{where}: expected an object with lists 'tokens' and 'ner_tags'")
        tokens, ids = row["tokens"], row["ner_tags"]
        if len(tokens) != len(ids):
            raise ConvertError(f"{where}: {len(tokens)} tokens but {len(ids)} ner_tags")
        if not tokens:
            continue
        tags = []
        for index, tag in enumerate(ids):
            if isinstance(tag, int) and not isinstance(tag, bool) and 0 <= tag < len(labels):
                tags.append(labels[tag])
            elif isinstance(tag, str) and tag in labels:
                tags.append(tag)
            else:
                raise ConvertError(f"{where}: ner_tags[{index}] = {tag!r} is not an id "
                                   f"0..{len(labels) - 1} nor a label of {','.join(labels)}")
        sentences.append(([check_token(t, where, i) for i, t in enumerate(tokens)], tags))
    return sentences


def read_wikiann(data, name):
    """(language, [(tokens, tags)]) from raw WikiANN bytes, lines 'lang:token<TAB>tag'."""
    sentences, tokens, tags, language = [], [], [], None
    for number, line in utf8_lines(data, name):
        where = f"{name}:{number}"
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ConvertError(f"{where}: expected 'lang:token<TAB>tag', found {len(fields) - 1} "
                               "TABs (XTREME's preprocessed test files have no tags: use the raw "
                               "archive)")
        prefix, colon, token = fields[0].partition(":")
        if not colon or not prefix or not token:
            raise ConvertError(f"{where}: token {fields[0]!r} has no 'lang:' prefix")
        if language is not None and prefix != language:
            raise ConvertError(f"{where}: language prefix {prefix!r}, earlier lines {language!r}")
        language = prefix
        tag = fields[1].strip()
        if tag not in PANX_LABELS:
            raise ConvertError(f"{where}: tag {tag!r} is not one of {','.join(PANX_LABELS)}")
        tokens.append(check_token(token, where, len(tokens)))
        tags.append(tag)
    if tokens:
        sentences.append((tokens, tags))
    if language is None:
        raise ConvertError(f"{name}: no sentences")
    return language, sentences


def wikiann_files(source):
    """{split: (name, bytes)} from a <lang>.tar.gz archive or a folder with train, dev, test."""
    found = {}
    if os.path.isdir(source):
        for split in WIKIANN_FILES:
            path = os.path.join(source, split)
            if os.path.isfile(path):
                found[split] = (path, read_bytes(path))
    else:
        with tarfile.open(source) as archive:
            for member in archive.getmembers():
                split = os.path.basename(member.name)
                if member.isfile() and split in WIKIANN_FILES:
                    found[split] = (f"{source}:{member.name}",
                                    archive.extractfile(member).read())
    missing = [split for split in WIKIANN_FILES if split not in found]
    if missing:
        raise ConvertError(f"{source}: no {', '.join(missing)} file (expected train, dev, test)")
    return found


def render(sentences, separator):
    return "\n".join("".join(f"{token}{separator}{tag}\n" for token, tag in zip(tokens, tags))
                     for tokens, tags in sentences)


def encode(text, encoding, path):
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as error:
        line = text.count("\n", 0, error.start) + 1
        raise ConvertError(f"{path}:{line}: {text[error.start]!r} cannot be written as {encoding}"
                           ) from None


def hf_json_outputs(args):
    labels = args.labels.split(",") if args.labels else LABELS[args.corpus]
    if args.corpus == "conll" and args.language not in CONLL_ENCODING:
        raise ConvertError(f"--language={args.language}: a CoNLL set is one of "
                           f"{', '.join(CONLL_ENCODING)}")
    outputs = {}
    for item in args.inputs:
        split, equals, path = item.partition("=")
        if not equals or split not in SPLITS:
            raise ConvertError(f"{item!r}: expected SPLIT=FILE with SPLIT one of "
                               f"{', '.join(SPLITS)}")
        sentences = read_hf_json(path, labels)
        if args.corpus == "panx":
            out = os.path.join(args.data_dir, f"{SPLITS[split]}-{args.language}.tsv")
            outputs[out] = encode(render(sentences, "\t"), "utf-8", out)
        else:
            out = os.path.join(args.data_dir, f"{args.language}.{CONLL_SUFFIX[SPLITS[split]]}")
            outputs[out] = encode(render(sentences, " "), CONLL_ENCODING[args.language], out)
    return outputs


def wikiann_outputs(args):
    outputs = {}
    for source in args.inputs:
        for split, (name, data) in wikiann_files(source).items():
            language, sentences = read_wikiann(data, name)
            out = os.path.join(args.data_dir, f"{split}-{language}.tsv")
            outputs[out] = encode(render(sentences, "\t"), "utf-8", out)
    return outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    hf = commands.add_parser("hf-json", help="Hugging Face JSON-lines exports (tokens, ner_tags)")
    hf.add_argument("--corpus", choices=sorted(LABELS), required=True)
    hf.add_argument("--language", required=True,
                    help="panx: the language code of the files (de); conll: eng, esp or ned")
    hf.add_argument("--labels", default="",
                    help="label names in id order, comma-separated (default: the corpus's, "
                         "O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC[,B-MISC,I-MISC])")
    hf.add_argument("--data_dir", required=True, help="output folder")
    hf.add_argument("inputs", nargs="+", metavar="SPLIT=FILE",
                    help="SPLIT: train, validation (or dev), test")
    raw = commands.add_parser("wikiann", help="raw WikiANN <lang>.tar.gz archives or folders")
    raw.add_argument("--data_dir", required=True, help="output folder")
    raw.add_argument("inputs", nargs="+", metavar="ARCHIVE_OR_FOLDER")
    args = parser.parse_args(argv)
    try:
        outputs = (hf_json_outputs if args.command == "hf-json" else wikiann_outputs)(args)
    except (ConvertError, OSError, tarfile.TarError) as error:
        print(f"convert_data.py: error: {error}", file=sys.stderr)
        return 1
    os.makedirs(args.data_dir, exist_ok=True)
    for path, data in outputs.items():
        with open(path, "wb") as handle:
            handle.write(data)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/convert_data.py: small hand-written public-format inputs converted in tmp_path and
read back with the project's own column reader and the benchmarks' loaders."""

import io
import json
import tarfile

from benchmarks import conll
from benchmarks import convert_data
from benchmarks import panx
from xtremedistil import data as data_lib

# Hugging Face ids: O B-PER I-PER B-ORG I-ORG B-LOC I-LOC (B-MISC I-MISC)
HF_ROWS = [{"tokens": ["Angela", "Merkel", "besuchte", "New", "York", "."],
            "ner_tags": [1, 2, 0, 5, 6, 0], "langs": ["de"] * 6},
           {"tokens": ["Die", "UN", "tagt", "um", "10:30", "in", "Genf"],
            "ner_tags": [0, 3, 0, 0, 0, 0, 5], "langs": ["de"] * 7}]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
                    encoding="utf-8")
    return path


def read_columns(path, labels, **kwargs):
    loaded = data_lib.read_labeled_file(path, data_format="columns", labels=labels, **kwargs)
    return [(list(s.tokens), list(s.tags)) for s in loaded.sentences]


def test_hf_json_panx(tmp_path):
    inputs = [f"{split}={write_jsonl(tmp_path / f'{split}.jsonl', HF_ROWS)}"
              for split in ("train", "validation", "test")]
    out = tmp_path / "panx"
    assert convert_data.main(["hf-json", "--corpus=panx", "--language=de",
                              f"--data_dir={out}"] + inputs) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dev-de.tsv", "test-de.tsv", "train-de.tsv"]
    assert read_columns(out / "train-de.tsv", panx.PANX_TAGS) == [
        (["Angela", "Merkel", "besuchte", "New", "York", "."],
         ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]),
        (["Die", "UN", "tagt", "um", "10:30", "in", "Genf"],
         ["O", "B-ORG", "O", "O", "O", "O", "B-LOC"])]
    splits, _, counts = panx.load_panx(str(out), ["de"], 1, 0, 0, 1)  # what panx.py reads
    assert counts["de"] == {"train": 1, "dev": 2, "test": 2, "transfer": 1}
    assert splits["test"][1].language == "de"


def test_hf_json_conll_spanish_is_latin1_with_string_tags(tmp_path):
    rows = [{"tokens": ["El", "Real", "Madrid", "jugó", "en", "Bogotá"],
             "ner_tags": [0, 3, 4, 0, 0, 5]},
            {"tokens": ["Copa", "América"], "ner_tags": ["B-MISC", "I-MISC"]}]
    inputs = [f"{split}={write_jsonl(tmp_path / f'{split}.jsonl', rows)}"
              for split in ("train", "dev", "test")]
    out = tmp_path / "conll"
    assert convert_data.main(["hf-json", "--corpus=conll", "--language=esp",
                              f"--data_dir={out}"] + inputs) == 0
    assert sorted(p.name for p in out.iterdir()) == ["esp.testa", "esp.testb", "esp.train"]
    assert "Bogotá".encode("latin-1") in (out / "esp.train").read_bytes()
    assert read_columns(out / "esp.testb", conll.CONLL_TAGS, encoding="latin-1") == [
        (["El", "Real", "Madrid", "jugó", "en", "Bogotá"],
         ["O", "B-ORG", "I-ORG", "O", "O", "B-LOC"]),
        (["Copa", "América"], ["B-MISC", "I-MISC"])]
    splits, _, counts = conll.load_conll(str(out), ["esp"], 0, 0, 0, 0)  # what conll.py reads
    assert counts["es"]["train"] == 2 and splits["dev"][0].tokens[5] == "Bogotá"


def raw_wikiann(lines):
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_wikiann_archive_strips_language_prefixes(tmp_path):
    files = {"train": ["en:New\tB-LOC", "en:York\tI-LOC", "en:a:b\tO", "",
                       "en:Alan\tB-PER", "en:Turing\tI-PER", ""],
             "dev": ["en:IBM\tB-ORG", ""], "test": ["en:Paris\tB-LOC", "en:Ünïcode\tO"]}
    archive = tmp_path / "en.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, lines in files.items():
            data = raw_wikiann(lines)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "panx"
    assert convert_data.main(["wikiann", f"--data_dir={out}", str(archive)]) == 0
    assert read_columns(out / "train-en.tsv", panx.PANX_TAGS) == [
        (["New", "York", "a:b"], ["B-LOC", "I-LOC", "O"]), (["Alan", "Turing"], ["B-PER", "I-PER"])]
    assert read_columns(out / "test-en.tsv", panx.PANX_TAGS) == [
        (["Paris", "Ünïcode"], ["B-LOC", "O"])]
    assert panx.load_panx(str(out), ["en"], 1, 0, 0, 1)[2]["en"]["dev"] == 1


def test_bad_lines_give_file_and_line(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "train.jsonl", [HF_ROWS[0], {"tokens": ["x"], "ner_tags": [9]}])
    out = tmp_path / "out"
    assert convert_data.main(["hf-json", "--corpus=panx", "--language=de", f"--data_dir={out}",
                              f"train={bad}"]) == 1
    assert f"{bad}:2: ner_tags[0] = 9 is not an id 0..6" in capsys.readouterr().err
    assert not out.exists()  # nothing written

    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "train").write_bytes(raw_wikiann(["en:A\tO", "", "en:B\tO", "C"]))
    (folder / "dev").write_bytes(raw_wikiann(["en:A\tO"]))
    (folder / "test").write_bytes(raw_wikiann(["en:A\tO"]))
    assert convert_data.main(["wikiann", f"--data_dir={out}", str(folder)]) == 1
    assert f"{folder / 'train'}:4: expected 'lang:token<TAB>tag'" in capsys.readouterr().err
    assert not out.exists()

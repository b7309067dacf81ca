"""Tagging or classifying raw text with the exported SavedModel.

NER (tagging): one raw sentence a line, split into words by the SavedModel as the teacher's
basic tokenizer splits (export/spans.py, twin of words.split_words: "Paris." is "Paris" and
"."), its entities merged from the tags in the graph too. A line that does not decode stops the
run with 'file:line: not UTF-8: cannot decode byte ...' before anything is written, or with
skip_bad_lines gives an empty result (counted). Output formats:
  conll  'token<TAB>tag' lines; every sentence, empty ones too, ends with one blank line, so
         an empty input line gives a lone blank line and sentence n ends at blank line n.
  jsonl  one {"tokens": [...], "tags": [...], "probabilities": [...]} object a line.
  spans  one {"text": line, "entities": [{"text", "type", "start", "end", "score"}]} object a
         line; start/end count Unicode characters of the line, text[start:end] is the entity.

Classification: one text a line (pairs: 'text_a<TAB>text_b'); blank lines are skipped, a line
with another number of fields or an empty text stops with 'file:line: fault'. Output formats:
  tsv    'text<TAB>label<TAB>probability' (pairs 'text_a<TAB>text_b<TAB>label<TAB>probability')
         a line, one per non-blank input line, in order;
  jsonl  one {"line": n, "text": ..., ("text_b": ...,) "label": ..., "probability": p,
         "probabilities": {label: p, ...}} object a line (n: the input line number).
'auto' is conll for NER, tsv for classification.
"""

import dataclasses
import json
import os

import tensorflow as tf
from absl import logging

from xtremedistil import data as data_lib
from xtremedistil import export
from xtremedistil import tasks
from xtremedistil import training
from xtremedistil import words as words_lib
from xtremedistil.manifest import Manifest

OUTPUT_FORMATS = ("auto", "conll", "tsv", "jsonl", "spans")
# Output formats of what the student predicts (students.Dims.output); the first is 'auto'.
TASK_FORMATS = {"tokens": ("conll", "jsonl", "spans"), "sentence": ("tsv", "jsonl"),
                "pair": ("tsv", "jsonl")}


def latest_saved_model(model_dir, name="student"):
    """The highest numeric version folder of model_dir/export/saved_model/<name>, or None."""
    base = os.path.dirname(export.saved_model_dir(model_dir, name, 0))
    versions = [int(v) for v in os.listdir(base) if v.isdigit()] if os.path.isdir(base) else []
    versions = [v for v in versions if os.path.exists(
        os.path.join(base, str(v), "saved_model.pb"))]
    return os.path.join(base, str(max(versions))) if versions else None


def load_tagger(model_dir, name="student"):
    """The 'serving_default' signature of the exported SavedModel (a tagger, or for
    classification runs a classifier); exports first if missing."""
    path = latest_saved_model(model_dir, name)
    if path is None:
        export.export_all(model_dir, name)
        path = latest_saved_model(model_dir, name)
    if path is None:  # export_all skips the SavedModel of BPE teachers
        raise export.UnsupportedTokenizerError(
            f"--model_dir={model_dir} has no SavedModel: its teacher's tokenizer is neither "
            "BERT WordPiece nor SentencePiece Unigram, which --mode=predict needs (it tags "
            "through the SavedModel). Use the TFLite files in export/tflite/ with "
            "xtremedistil/reference.py instead.")
    return tf.saved_model.load(path).signatures[export.SERVING_SIGNATURE]


def tag_lines(tagger, lines, batch_size=256, progress=None):
    """[TaggedLine] of each raw line, in order, as the SavedModel splits and tags it; empty
    lines, and None (a skipped line), give empty lists. progress(done): called after each
    batch."""
    results = []
    for start in range(0, len(lines), batch_size):
        batch = [line or "" for line in lines[start:start + batch_size]]
        outputs = {k: v.numpy() for k, v in tagger(sentences=tf.constant(batch)).items()}
        for row, count in enumerate(outputs["num_words"]):
            results.append(_tagged_line(outputs, row, count))
        if progress is not None:
            progress(start + len(batch))
    return results


def _tagged_line(outputs, row, count):
    """The TaggedLine of row `row` of the serving signature's outputs (count words)."""
    def text(values):
        return [v.decode("utf-8") for v in values]

    word_list = [words_lib.Word(w, int(s), int(e)) for w, s, e in zip(
        text(outputs["words"][row, :count]), outputs["word_start"][row, :count],
        outputs["word_end"][row, :count])]
    found = outputs["num_entities"][row]
    entities = [{"text": t.decode("utf-8"), "type": k.decode("utf-8"), "start": int(s),
                 "end": int(e), "score": round(float(p), 6)}
                for t, k, s, e, p in zip(*(outputs[f"entity_{name}"][row, :found] for name in (
                    "text", "type", "start", "end", "score")))]
    return TaggedLine(word_list, text(outputs["tags"][row, :count]),
                      [round(float(p), 6) for p in outputs["probabilities"][row, :count]],
                      entities)


@dataclasses.dataclass
class TaggedLine:
    words: list  # [words.Word]
    tags: list  # [str], one per word
    probabilities: list  # [float], one per word
    entities: list  # [{"text", "type", "start", "end", "score"}]


def format_conll(lines, results):
    blocks = ["".join(f"{word.text}\t{tag}\n" for word, tag in zip(r.words, r.tags)) + "\n"
              for r in results]
    return "".join(blocks)


def format_jsonl(lines, results):
    return "".join(json.dumps({"tokens": [w.text for w in r.words], "tags": r.tags,
                               "probabilities": r.probabilities}, ensure_ascii=False) + "\n"
                   for r in results)


def format_spans(lines, results):
    return "".join(json.dumps({"text": line or "", "entities": r.entities},
                              ensure_ascii=False) + "\n" for line, r in zip(lines, results))


TAGGING_FORMATS = {"conll": format_conll, "jsonl": format_jsonl, "spans": format_spans}


def classify_examples(classifier, examples, pairwise, batch_size=256):
    """[(label, probability, {label: probability})] of each TextExample, in order."""
    results = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start:start + batch_size]
        inputs = {"sentences": tf.constant([e.text for e in batch])}
        if pairwise:
            inputs["sentences_b"] = tf.constant([e.text_b for e in batch])
        outputs = classifier(**inputs)
        names = [n.decode("utf-8") for n in outputs["labels"].numpy()[0]]
        for label, row in zip(outputs["label"].numpy(), outputs["probabilities"].numpy()):
            probabilities = {n: round(float(p), 6) for n, p in zip(names, row)}
            label = label.decode("utf-8")
            results.append((label, probabilities[label], probabilities))
    return results


def read_texts(path, pairwise, encoding="utf-8"):
    """TextExamples of an input file: 'text' a line ('text_a<TAB>text_b' when pairwise), each
    text stripped of surrounding spaces; blank lines skipped; a bad line raises
    data.DataError naming file:line."""
    try:
        return list(data_lib.iter_text_transfer_file(path, pairwise, encoding))
    except data_lib.DataError as error:
        raise data_lib.DataError(str(error).replace(
            "a labeled file given as transfer text?", "a labeled file given as --input?")) from None


def format_tsv(examples, results):
    return "".join("\t".join([e.text] + ([e.text_b] if e.text_b is not None else [])
                             + [label, str(probability)]) + "\n"
                   for e, (label, probability, _) in zip(examples, results))


def format_classification_jsonl(examples, results):
    lines = []
    for example, (label, probability, probabilities) in zip(examples, results):
        record = {"line": int(example.source.rsplit(":", 1)[1]), "text": example.text}
        if example.text_b is not None:
            record["text_b"] = example.text_b
        record.update(label=label, probability=probability, probabilities=probabilities)
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)


def read_lines(path, encoding="utf-8"):
    """The lines of a text file, without line endings (only '\\n' ends a line)."""
    return [text for _, text in data_lib.read_text_lines(path, encoding)]


def predict_file(model_dir, input_path, output_path, output_format="auto", name="student",
                 batch_size=256, encoding="utf-8", skip_bad_lines=False):
    """Tags (NER) or classifies every line of input_path ('-': standard input) and writes
    output_path; returns the number of sentences (classification: of texts or pairs, blank
    lines skipped). Logs progress every 10 s on long files, and the throughput at the end."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"--output_format={output_format}: expected one of "
                         f"{', '.join(OUTPUT_FORMATS)}.")
    if input_path != "-" and not os.path.exists(input_path):
        raise ValueError(f"--input={input_path} does not exist.")
    task = Manifest.read(model_dir, require_trained=False).task
    student_output = tasks.get(task).student_output
    formats = TASK_FORMATS[student_output]
    if output_format == "auto":
        output_format = formats[0]
    if output_format not in formats:
        raise ValueError(f"--output_format={output_format}: the {task} task of "
                         f"--model_dir={model_dir} writes {' or '.join(formats)}.")
    if student_output == "tokens":
        lines = [text for _, text in data_lib.read_text_lines(input_path, encoding,
                                                              skip_bad_lines)]
        progress = training.ProgressLog("predict", "lines", len(lines), every_seconds=10)
        results = tag_lines(load_tagger(model_dir, name), lines, batch_size, progress.update)
        text = TAGGING_FORMATS[output_format](lines, results)
        skipped = lines.count(None)
        logging.info("predict: %d lines tagged (%.0f lines/s)%s", len(lines),
                     progress.rate(len(lines)),
                     f"; {skipped} not {encoding.upper()}, written as empty results"
                     if skipped else "")
    else:
        pairwise = student_output == "pair"
        examples = read_texts(input_path, pairwise, encoding)  # the whole file checked first
        results = classify_examples(load_tagger(model_dir, name), examples, pairwise,
                                    batch_size)
        text = (format_tsv(examples, results) if output_format == "tsv"
                else format_classification_jsonl(examples, results))
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    with open(output_path, "w", encoding="utf-8") as f:
        f.write(text)
    return len(results)

"""Tagging or classifying raw text with the exported SavedModel.

NER (tagging): one sentence a line, whitespace tokens. Output formats:
  conll  'token<TAB>tag' lines; every sentence, empty ones too, ends with one blank line, so
         an empty input line gives a lone blank line and sentence n ends at blank line n.
  jsonl  one {"tokens": [...], "tags": [...], "probabilities": [...]} object a line.

Classification: one text a line (pairs: 'text_a<TAB>text_b'); blank lines are skipped, a line
with another number of fields or an empty text stops with 'file:line: fault'. Output formats:
  tsv    'text<TAB>label<TAB>probability' (pairs 'text_a<TAB>text_b<TAB>label<TAB>probability')
         a line, one per non-blank input line, in order;
  jsonl  one {"line": n, "text": ..., ("text_b": ...,) "label": ..., "probability": p,
         "probabilities": {label: p, ...}} object a line (n: the input line number).
'auto' is conll for NER, tsv for classification.
"""

import json
import os

import tensorflow as tf

from xtremedistil import data as data_lib
from xtremedistil import export
from xtremedistil import tasks
from xtremedistil.manifest import Manifest

OUTPUT_FORMATS = ("auto", "conll", "tsv", "jsonl")
# Output formats of what the student predicts (students.Dims.output); the first is 'auto'.
TASK_FORMATS = {"tokens": ("conll", "jsonl"), "sentence": ("tsv", "jsonl"),
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
    if path is None:  # export_all skips the SavedModel of non-WordPiece teachers
        raise export.UnsupportedTokenizerError(
            f"--model_dir={model_dir} has no SavedModel: its teacher's tokenizer is not BERT "
            "WordPiece, which --mode=predict needs (it tags through the SavedModel). Use the "
            "TFLite files in export/tflite/ with the teacher's tokenizer instead.")
    return tf.saved_model.load(path).signatures[export.SERVING_SIGNATURE]


def tag_lines(tagger, lines, batch_size=256):
    """[(tokens, tags, probabilities)] for each line, in order; empty lines give empty lists."""
    results = []
    for start in range(0, len(lines), batch_size):
        outputs = tagger(sentences=tf.constant(lines[start:start + batch_size]))
        words, tags = outputs["words"].numpy(), outputs["tags"].numpy()
        probabilities = outputs["probabilities"].numpy()
        for i, count in enumerate(outputs["num_words"].numpy()):
            results.append(([w.decode("utf-8") for w in words[i, :count]],
                            [t.decode("utf-8") for t in tags[i, :count]],
                            [round(float(p), 6) for p in probabilities[i, :count]]))
    return results


def format_conll(results):
    blocks = ["".join(f"{token}\t{tag}\n" for token, tag, _ in zip(*result)) + "\n"
              for result in results]
    return "".join(blocks)


def format_jsonl(results):
    return "".join(json.dumps({"tokens": tokens, "tags": tags, "probabilities": probabilities},
                              ensure_ascii=False) + "\n"
                   for tokens, tags, probabilities in results)


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
    """The '\\n'-separated lines of a text file ('\\r\\n' too); a final newline adds no line.

    Only newlines end a line: other characters str.splitlines() breaks at (form feed,
    U+2028, ...) stay inside the sentence.
    """
    with open(path, encoding=encoding, newline="") as f:
        text = f.read()
    if not text:
        return []
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def predict_file(model_dir, input_path, output_path, output_format="auto", name="student",
                 batch_size=256, encoding="utf-8"):
    """Tags (NER) or classifies every line of input_path and writes output_path; returns the
    number of sentences (classification: of texts or pairs, blank lines skipped)."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"--output_format={output_format}: expected one of "
                         f"{', '.join(OUTPUT_FORMATS)}.")
    if not os.path.exists(input_path):
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
        lines = read_lines(input_path, encoding)
        results = tag_lines(load_tagger(model_dir, name), lines, batch_size)
        text = format_conll(results) if output_format == "conll" else format_jsonl(results)
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

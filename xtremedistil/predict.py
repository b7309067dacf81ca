"""Tagging raw text with the exported SavedModel: one sentence a line, whitespace tokens.

Output formats:
  conll  'token<TAB>tag' lines; every sentence, empty ones too, ends with one blank line, so
         an empty input line gives a lone blank line and sentence n ends at blank line n.
  jsonl  one {"tokens": [...], "tags": [...], "probabilities": [...]} object a line.
"""

import json
import os

import tensorflow as tf

from xtremedistil import export

OUTPUT_FORMATS = ("conll", "jsonl")


def latest_saved_model(model_dir, name="student"):
    """The highest numeric version folder of model_dir/export/saved_model/<name>, or None."""
    base = os.path.dirname(export.saved_model_dir(model_dir, name, 0))
    versions = [int(v) for v in os.listdir(base) if v.isdigit()] if os.path.isdir(base) else []
    versions = [v for v in versions if os.path.exists(
        os.path.join(base, str(v), "saved_model.pb"))]
    return os.path.join(base, str(max(versions))) if versions else None


def load_tagger(model_dir, name="student"):
    """The 'serving_default' signature of the exported SavedModel; exports first if missing."""
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


def predict_file(model_dir, input_path, output_path, output_format="conll", name="student",
                 batch_size=256, encoding="utf-8"):
    """Tags every line of input_path and writes output_path; returns the number of sentences."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"--output_format={output_format}: expected one of "
                         f"{', '.join(OUTPUT_FORMATS)}.")
    if not os.path.exists(input_path):
        raise ValueError(f"--input={input_path} does not exist.")
    lines = read_lines(input_path, encoding)
    results = tag_lines(load_tagger(model_dir, name), lines, batch_size)
    text = format_conll(results) if output_format == "conll" else format_jsonl(results)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    with open(output_path, "w", encoding="utf-8") as f:
        f.write(text)
    return len(results)

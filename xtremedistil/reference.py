"""Raw text -> entity spans with the exported TFLite (or ONNX) student, in plain Python.

What an app does around the interpreter, written once so that its test checks it against the
SavedModel (which does the same in its graph): split the text into words (words.split_words),
tokenise each word with the teacher's tokenizer, map pieces to student ids (vocab.txt), run
the student, take each word's first-piece tag, merge B-/I- tags into entities
(words.entity_spans). Needs numpy, transformers' tokenizer and the runtime, not TensorFlow:

    from xtremedistil import reference
    tagger = reference.Tagger(
        "models/demo/export/tflite",
        reference.tflite_runner("models/demo/export/tflite/student_int8.tflite"))
    tagger.spans("Angela Merkel visited Paris.")
    # [{'text': 'Angela Merkel', 'type': 'PER', 'start': 0, 'end': 13, 'score': 0.99...}, ...]

Legend: T seq_len, W words, C tags.
"""

import json
import os

import numpy as np

from xtremedistil import words as words_lib


def tflite_runner(path, num_threads=None):
    """student ids [T] -> logits [T, C] with a TFLite file (ai_edge_litert).

    The fused LSTM ops keep the last sentence's state in variable tensors, so they are reset
    before each sentence (README "TFLite in an app" says why this cannot be converted away).
    """
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
    interpreter = Interpreter(model_path=path, num_threads=num_threads)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def logits(student_ids):
        interpreter.reset_all_variables()
        interpreter.set_tensor(input_index, np.asarray([student_ids], np.int32))
        interpreter.invoke()
        return interpreter.get_tensor(output_index)[0]

    return logits


def onnx_runner(path):
    """student ids [T] -> logits [T, C] with an ONNX file (onnxruntime; no state to reset)."""
    import onnxruntime  # pylint: disable=import-outside-toplevel
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def logits(student_ids):
        return session.run(None, {input_name: np.asarray([student_ids], np.int32)})[0][0]

    return logits


def _read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def teacher_tokenizer(tflite_dir, sidecar):
    """The teacher's fast tokenizer as the sidecar describes it: BERT WordPiece from
    teacher_vocab.txt, or the teacher's own tokenizer folder (SentencePiece, BPE)."""
    import transformers  # pylint: disable=import-outside-toplevel
    if "teacher_tokenizer" in sidecar:
        return transformers.AutoTokenizer.from_pretrained(
            os.path.join(tflite_dir, sidecar["teacher_tokenizer"]))
    return transformers.BertTokenizerFast(
        os.path.join(tflite_dir, sidecar["teacher_vocab"]),
        do_lower_case=sidecar["do_lower_case"], strip_accents=sidecar["strip_accents"])


class Tagger:
    """Tags raw text with an exported student: `spans(text)`, `tag(text)`, `encode(text)`.

    tflite_dir: the export's tflite/ folder (its sidecar student_tflite.json, vocab.txt,
    labels.txt and the teacher's tokenizer); run_logits: student ids [T] -> logits [T, C]
    (`tflite_runner` or `onnx_runner`).
    """

    def __init__(self, tflite_dir, run_logits):
        with open(os.path.join(tflite_dir, "student_tflite.json"), encoding="utf-8") as f:
            self.sidecar = json.load(f)
        self.student_ids = {p: i for i, p in enumerate(
            _read_lines(os.path.join(tflite_dir, self.sidecar["vocab"])))}
        self.labels = _read_lines(os.path.join(tflite_dir, self.sidecar["labels"]))
        self.tokenizer = teacher_tokenizer(tflite_dir, self.sidecar)
        self.run_logits = run_logits

    def encode(self, text):
        """(words [W] (words.Word), student ids [T], first-piece position of each word [W];
        positions >= T - 1 mean the word was cut off)."""
        words = words_lib.split_words(text)
        sidecar, seq_len = self.sidecar, self.sidecar["seq_len"]
        pieces = [[] for _ in words]
        if words:
            encoded = self.tokenizer([w.text for w in words], is_split_into_words=True,
                                     add_special_tokens=False)
            for piece, word in zip(encoded.tokens(), encoded.word_ids()):
                pieces[word].append(self.student_ids.get(piece, sidecar["unk_id"]))
        ids, first_piece = [sidecar["cls_id"]], []
        for word_pieces in pieces:
            first_piece.append(len(ids))
            ids += word_pieces or [sidecar["unk_id"]]  # a word with no piece: the unknown one
        ids = ids[:seq_len - 1] + [sidecar["sep_id"]]
        return words, ids + [sidecar["pad_id"]] * (seq_len - len(ids)), first_piece

    def tag(self, text):
        """(words [W], tags [W], probabilities [W]); words cut off by seq_len get 'O', 1.0."""
        words, ids, first_piece = self.encode(text)
        logits = self.run_logits(ids)  # [T, C]
        probabilities = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        cut_off = self.sidecar["seq_len"] - 1
        tags = [self.labels[int(probabilities[p].argmax())] if p < cut_off
                else self.sidecar["outside_tag"] for p in first_piece]
        scores = [float(probabilities[p].max()) if p < cut_off else 1.0 for p in first_piece]
        return words, tags, scores

    def spans(self, text):
        """[{"text", "type", "start", "end", "score"}] of text's entities; text[start:end] is
        the entity, score the mean probability of its words' tags."""
        return words_lib.entity_spans(text, *self.tag(text))

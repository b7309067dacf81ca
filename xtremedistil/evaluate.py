"""Word-level tags from token logits, and seqeval scores per language.

Words cut off by seq_len count as predicted 'O', so every gold entity is scored.
"""

import collections

import numpy as np
from seqeval import metrics


def word_tags(predicted_ids, sentences, word_starts, tags):
    """Tag per word of every sentence from [N, T] predicted tag ids at first pieces."""
    result = []
    for ids, sentence, starts in zip(predicted_ids, sentences, word_starts):
        kept = [tags[i] for i in ids[starts]]
        result.append(kept + ["O"] * (len(sentence.tokens) - len(kept)))
    return result


def score(gold, predicted):
    """Entity-level precision, recall, F1 (conlleval style) as fractions."""
    return {
        "precision": float(metrics.precision_score(gold, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(gold, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(gold, predicted, zero_division=0)),
    }


def score_by_language(sentences, predicted):
    """{"per_language": {lang: {precision, recall, f1, sentences}}, "mean_f1": macro mean}."""
    by_language = collections.defaultdict(lambda: ([], []))
    for sentence, tags in zip(sentences, predicted):
        gold_list, predicted_list = by_language[sentence.language]
        gold_list.append(list(sentence.tags))
        predicted_list.append(tags)
    per_language = {}
    for language in sorted(by_language):
        gold_list, predicted_list = by_language[language]
        per_language[language] = dict(score(gold_list, predicted_list),
                                      sentences=len(gold_list))
    mean_f1 = float(np.mean([s["f1"] for s in per_language.values()])) if per_language else 0.0
    return {"per_language": per_language, "mean_f1": mean_f1}


def evaluate_tagger(predict_logits, encoded, sentences, tags):
    """Scores a tagger given a function from an Encoded set to logits [N, T, C]."""
    predicted_ids = np.argmax(predict_logits(encoded), axis=-1)
    return score_by_language(sentences, word_tags(predicted_ids, sentences,
                                                  encoded.word_starts, tags))


def results_table(teacher_scores, student_scores):
    """Markdown table: language | teacher F1 | student F1 | retention."""
    lines = ["| language | teacher F1 | student F1 | retention |", "|---|---|---|---|"]

    def row(name, teacher_f1, student_f1):
        retention = student_f1 / teacher_f1 if teacher_f1 else 0.0
        return f"| {name} | {100 * teacher_f1:.1f} | {100 * student_f1:.1f} | {100 * retention:.1f}% |"

    for language, teacher in teacher_scores["per_language"].items():
        student = student_scores["per_language"][language]
        lines.append(row(language, teacher["f1"], student["f1"]))
    lines.append(row("mean", teacher_scores["mean_f1"], student_scores["mean_f1"]))
    return "\n".join(lines)

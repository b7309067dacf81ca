"""Token tagging (NER): word-level tags, first-piece alignment, seqeval F1 per language.

Legend: N sentences, T = seq_len word pieces, C tags.
The first piece of each word carries the word's tag; other pieces, special tokens and padding
are masked out of the label loss and of evaluation (label_weights == 0). Words cut off by
seq_len count as predicted 'O', so every gold entity is scored.
"""

import collections
import itertools

import numpy as np
import tf_keras
from seqeval import metrics

from xtremedistil import data as data_lib
from xtremedistil import tasks
from xtremedistil import teacher as teacher_lib


class TaggingTask(tasks.Task):
    name = "tagging"
    head = "TokenClassification"
    metric = "mean_f1"
    teacher_outputs = {"hidden": "hidden states of --teacher_layer [T, H]",
                       "logits": "tag logits [T, C]"}

    def transfer_mask(self, options):
        return options.transfer_mask

    def student_head_weights(self, hf_model):
        """The teacher's token classifier: it maps the last layer's states, which stage 1
        teaches the student's 'hidden', to the logits."""
        return teacher_lib.classifier_weights(hf_model)

    # === Data ===

    def read_labeled(self, options):
        """Reads train/dev/test and the tag set ('O' first)."""
        def read_file(path, labels):
            return data_lib.read_labeled_file(
                path, data_format=options.data_format, labels=labels,
                skip_bad_lines=options.skip_bad_lines, encoding=options.encoding,
                tag_scheme=options.tag_scheme, language=options.language or None)

        def tag_set(given, train):
            tags = given or data_lib.derive_labels(train)
            return ["O"] + [t for t in tags if t != "O"] if "O" in tags else tags

        return tasks.read_labeled_splits(options, read_file, tag_set)

    def transfer_examples(self, options):
        """A fresh iterator over the transfer sentences (at most --max_transfer)."""
        if not options.transfer_file:
            return iter(())
        sentences = data_lib.iter_transfer_file(options.transfer_file, encoding=options.encoding,
                                                language=options.language or None)
        return itertools.islice(sentences, options.max_transfer or None)

    def encode(self, examples, tokenizer, seq_len, labels=None):
        return encode(examples, tokenizer, seq_len,
                      None if labels is None else {tag: i for i, tag in enumerate(labels)})

    # === Teacher ===

    def teacher_output_tensors(self, hf_outputs, layer):
        return {"hidden": hf_outputs.hidden_states[layer], "logits": hf_outputs.logits}

    def teacher_targets(self, encoded, every_piece=False):
        """With every_piece, every real piece carries a tag: continuation pieces the I- tag
        of their word, [CLS] and [SEP] 'O' (the original code gives them classes of their own,
        'X', [CLS], [SEP], which this label set has not)."""
        if not every_piece:
            return encoded.label_ids, encoded.label_weights
        return encoded.extras["piece_label_ids"], encoded.attention_mask.astype(np.float32)

    # === Loss and scores ===

    def label_loss(self, label_ids, logits):
        """Sparse cross-entropy per piece, [B, T]."""
        return tf_keras.losses.sparse_categorical_crossentropy(label_ids, logits,
                                                               from_logits=True)

    def score(self, logits, encoded, examples, labels):
        predicted_ids = np.argmax(logits, axis=-1)
        return score_by_language(examples, word_tags(predicted_ids, examples,
                                                     encoded.extras["word_starts"], labels))

    def results_table(self, scores):
        """language | teacher F1 | student F1 | retention (and baseline F1 when present)."""
        return tasks.retention_table(scores, "F1", "f1", "mean_f1")


# === Encoding ===

def _word_starts(word_ids):
    """Positions of the first piece of each word, in word order."""
    starts, previous = [], None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            starts.append(position)
        previous = word
    return starts


def _replace_pieceless_words(tokens, word_ids, unk_token, filled):
    """Words the tokenizer drops entirely (e.g. lone control characters) become [UNK].

    When the encoding `filled` seq_len, words after the last one kept may be truncated rather
    than piece-less, so only the words before it are checked.
    """
    present = {w for w in word_ids if w is not None}
    last = (max(present) if present else -1) if filled else len(tokens) - 1
    missing = [i for i in range(last + 1) if i not in present]
    if not missing:
        return None
    return [unk_token if i in missing else token for i, token in enumerate(tokens)]


def encode(sentences, tokenizer, seq_len, tag_to_id=None):
    """Encodes sentences into teacher word pieces with first-piece tag alignment.

    masks: 'tokens' every real piece (attention mask), 'words' the first piece of each word.
    extras: 'word_starts' (first-piece positions per sentence) and, with tags,
    'piece_label_ids' [N, T]: a tag at every real piece (TaggingTask.teacher_targets).
    """
    n = len(sentences)
    input_ids = np.zeros((n, seq_len), np.int32)
    attention_mask = np.zeros((n, seq_len), np.int32)
    label_ids = np.zeros((n, seq_len), np.int32)
    label_mask = np.zeros((n, seq_len), np.float32)
    piece_label_ids = np.zeros((n, seq_len), np.int32)
    word_starts, truncated = [], 0
    batch = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True,
                      truncation=True, max_length=seq_len, padding="max_length")
    for i, sentence in enumerate(sentences):
        ids, mask, word_ids = batch["input_ids"][i], batch["attention_mask"][i], batch.word_ids(i)
        fixed_tokens = _replace_pieceless_words(sentence.tokens, word_ids, tokenizer.unk_token,
                                                filled=sum(mask) == seq_len)
        if fixed_tokens is not None:
            single = tokenizer([fixed_tokens], is_split_into_words=True, truncation=True,
                               max_length=seq_len, padding="max_length")
            ids, mask, word_ids = (single["input_ids"][0], single["attention_mask"][0],
                                   single.word_ids(0))
        starts = _word_starts(word_ids)
        truncated += len(starts) < len(sentence.tokens)
        input_ids[i] = ids
        attention_mask[i] = mask
        label_mask[i, starts] = 1.0
        if tag_to_id is not None and sentence.tags is not None:
            label_ids[i, starts] = [tag_to_id[t] for t in sentence.tags[:len(starts)]]
            piece_label_ids[i] = _piece_tags(word_ids, mask, sentence.tags, tag_to_id)
        word_starts.append(np.asarray(starts, np.int32))
    masks = {"tokens": attention_mask.astype(np.float32), "words": label_mask}
    return tasks.Encoded(input_ids, attention_mask, label_ids, label_mask, masks, truncated,
                         {"word_starts": word_starts, "piece_label_ids": piece_label_ids})


def _piece_tags(word_ids, mask, tags, tag_to_id):
    """[T] tag ids of every real piece: a word's first piece its tag, its other pieces the
    I- tag of its entity (the tag itself for O), special tokens O; padding 0."""
    outside = tag_to_id.get("O", 0)
    result, previous = np.zeros(len(word_ids), np.int32), None
    for position, (word, real) in enumerate(zip(word_ids, mask)):
        if word is None:
            result[position] = outside if real else 0
        else:
            tag = tags[word]
            if word == previous and tag.startswith("B-"):
                tag = "I-" + tag[2:] if "I-" + tag[2:] in tag_to_id else tag
            result[position] = tag_to_id[tag]
        previous = word
    return result


# === Scores ===

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

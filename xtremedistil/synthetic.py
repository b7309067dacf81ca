"""An easy synthetic multilingual NER task and a tiny random BERT, for tests and benchmarks.

The pattern: entity words give their type; every other word is 'O'. A random tagger scores
near 0 F1 on it; a model that learns scores near 1.
"""

import pathlib
import random

# The easy pattern: entity words give their type; fillers are 'O'.
ENTITIES = {
    "PER": [["alice"], ["bob", "smith"], ["carol"], ["dave", "jones"], ["erin"]],
    "LOC": [["paris"], ["new", "york"], ["rome"], ["oslo"], ["san", "jose"]],
    "ORG": [["acme"], ["globex", "corp"], ["initech"], ["umbrella"], ["hooli"]],
}
FILLERS = ["the", "a", "met", "in", "at", "from", "visited", "works", "for", "and", "with",
           "today", "said", "near", "city", "big", "company", "people", "went", "to"]
LANGUAGES = ("xx", "yy", "zz")
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def synthetic_sentence(rng, with_entities=True):
    tokens, tags = [], []
    for _ in range(rng.randint(3, 8)):
        if with_entities and rng.random() < 0.35:
            kind = rng.choice(sorted(ENTITIES))
            words = rng.choice(ENTITIES[kind])
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        else:
            tokens.append(rng.choice(FILLERS))
            tags.append("O")
    return tokens, tags


def write_task(folder, seed=0, sizes=(("train", 300), ("dev", 60), ("test", 90)), transfer=600):
    """Writes train/dev/test.tsv (XtremeDistil format, language-prefixed tags) and transfer.txt."""
    rng = random.Random(seed)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in sizes:
        lines = []
        for i in range(count):
            language = LANGUAGES[i % len(LANGUAGES)]
            tokens, tags = synthetic_sentence(rng)
            lines.append(" ".join(tokens) + "\t" + " ".join(f"{language}:{t}" for t in tags))
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    transfer_lines = [" ".join(synthetic_sentence(rng)[0]) for _ in range(transfer)]
    (folder / "transfer.txt").write_text("\n".join(transfer_lines) + "\n", encoding="utf-8")
    return folder


def task_words():
    """Every word the synthetic task uses, sorted."""
    return sorted({w for spans in ENTITIES.values() for span in spans for w in span}
                  | set(FILLERS))


def write_tiny_bert(folder, hidden=32, layers=2, seed=0):
    """A random-weight BERT checkpoint in the real one's layout: config, vocab, safetensors."""
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    folder = pathlib.Path(folder)
    words = task_words()
    pieces = sorted({"##" + c for c in "abcdefghijklmnopqrstuvwxyz"} | set("abcdefghijklmnopqrstuvwxyz.,"))
    vocab = SPECIAL + words + [p for p in pieces if p not in words]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64)
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(folder, safe_serialization=True)
    transformers.BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    return folder


def write_tiny_roberta(folder, hidden=32, layers=2, seed=0):
    """A random-weight RoBERTa checkpoint with a byte-level BPE tokenizer learnt on the task's
    words: a teacher whose tokenizer is not WordPiece."""
    import tokenizers  # pylint: disable=import-outside-toplevel
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = task_words()
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(words)] * 10, vocab_size=400,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tokenizer = transformers.RobertaTokenizerFast(str(folder / "vocab.json"),
                                                  str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    config = transformers.RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=66)
    torch.manual_seed(seed)
    transformers.RobertaModel(config).save_pretrained(folder, safe_serialization=True)
    return folder



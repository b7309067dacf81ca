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


def classification_text(rng, kind):
    """Filler words around one entity of type `kind`."""
    words = [rng.choice(FILLERS) for _ in range(rng.randint(2, 6))]
    words.insert(rng.randint(0, len(words)), " ".join(rng.choice(ENTITIES[kind])))
    return " ".join(words)


def write_classification_task(folder, pairwise=False, seed=0,
                              sizes=(("train", 300), ("dev", 60), ("test", 90)), transfer=600):
    """Writes an easy classification task: train/dev/test.tsv ('text<TAB>lang:label'), labels.tsv
    and transfer.txt (unlabeled). A text's label is the type of the one entity it names
    (PER, LOC, ORG: chance 1/3); a pair ('text_a<TAB>text_b<TAB>lang:label') is 'both' when
    both texts name a person, else 'not' (each text does with probability 0.7: about
    balanced, chance 1/2; neither text alone tells the label)."""
    rng = random.Random(seed)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kinds = sorted(ENTITIES)

    def example():
        kind = rng.choice(kinds)
        if not pairwise:
            return [classification_text(rng, kind)], kind
        pair = [rng.choice(["LOC", "ORG"]) if rng.random() < 0.3 else "PER" for _ in range(2)]
        return ([classification_text(rng, k) for k in pair],
                "both" if pair == ["PER", "PER"] else "not")

    for split, count in sizes:
        lines = []
        for i in range(count):
            texts, label = example()
            lines.append("\t".join(texts) + f"\t{LANGUAGES[i % len(LANGUAGES)]}:{label}")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    labels = ["both", "not"] if pairwise else kinds
    (folder / "labels.tsv").write_text("\n".join(labels) + "\n", encoding="utf-8")
    transfer_lines = ["\t".join(example()[0]) for _ in range(transfer)]
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
    pieces = sorted({"##" + c for c in "abcdefghijklmnopqrstuvwxyz"}
                    | set("abcdefghijklmnopqrstuvwxyz.,"))
    vocab = SPECIAL + words + [p for p in pieces if p not in words]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64)
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(folder, safe_serialization=True)
    transformers.BertTokenizerFast(str(folder / "vocab.txt"),
                                   do_lower_case=True).save_pretrained(folder)
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


# Charsmap rules of the tiny XLM-R's Precompiled normaliser: spaces, a deleted control
# character, full-width letters, a composition and a ligature, as XLM-R's charsmap has them.
TINY_CHARSMAP_RULES = {"\t": " ", "\n": " ", "\u00a0": " ", "\u3000": " ", "\u2581": " ",
                       "\x01": "", "\uff21": "A", "\uff41": "a", "\uff42": "b",
                       "e\u0301": "\u00e9", "\ufb01": "fi"}


def precompiled_charsmap(rules):
    """A SentencePiece precompiled_charsmap for {key: output}: u32 trie size, a darts-clone
    double array of the keys' bytes (unit: bit 31 value, bits 0-7 label, bit 8 has a value,
    offset << 10), then the NUL-terminated outputs."""
    outputs, trie = b"", {}
    for key, output in sorted(rules.items()):
        node = trie
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[0] = len(outputs)  # label 0: the value of the key ending here
        outputs += output.encode("utf-8") + b"\x00"
    units, bases = [0], set()
    pending = [(0, trie)]
    while pending:
        position, node = pending.pop(0)
        labels = sorted(node)
        # A base (position ^ offset) of its own, so a label found at base ^ label is a child.
        offset = next(o for o in range(1, 1 << 20) if position ^ o not in bases and all(
            (position ^ o ^ label) != 0 and ((position ^ o ^ label) >= len(units)
                                             or units[position ^ o ^ label] == 0)
            for label in labels))
        bases.add(position ^ offset)
        units[position] |= offset << 10
        for label in labels:
            child = position ^ offset ^ label
            units.extend([0] * (child + 1 - len(units)))
            if label == 0:
                units[child] = (1 << 31) | node[0]
            else:
                units[child] = label | ((0 in node[label]) << 8)
                pending.append((child, node[label]))
    trie_bytes = b"".join(unit.to_bytes(4, "little") for unit in units)
    return len(trie_bytes).to_bytes(4, "little") + trie_bytes + outputs


def write_tiny_xlmr(folder, hidden=32, layers=2, seed=0):
    """A random-weight XLM-R checkpoint with a SentencePiece Unigram tokenizer learnt on the
    task's words, laid out as XLM-R's tokenizer.json is: '<s>' '<pad>' '</s>' '<unk>' first,
    a Precompiled normaliser (TINY_CHARSMAP_RULES) then Replace(' {2,}', ' '), Metaspace,
    '<mask>' (lstrip) last."""
    import tokenizers  # pylint: disable=import-outside-toplevel
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    from tokenizers import (  # pylint: disable=import-outside-toplevel
        normalizers, pre_tokenizers, processors)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    unigram = tokenizers.Tokenizer(tokenizers.models.Unigram())
    unigram.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(TINY_CHARSMAP_RULES)),
        normalizers.Replace(tokenizers.Regex(" {2,}"), " ")])
    unigram.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581",
                                                     prepend_scheme="always")
    unigram.decoder = tokenizers.decoders.Metaspace(replacement="\u2581",
                                                    prepend_scheme="always")
    trainer = tokenizers.trainers.UnigramTrainer(
        vocab_size=150, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>")
    unigram.train_from_iterator([" ".join(task_words() + ["Acme", "café", "fine"])] * 10,
                                trainer=trainer)
    unigram.add_special_tokens([tokenizers.AddedToken("<mask>", lstrip=True)])
    unigram.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = transformers.XLMRobertaTokenizerFast(
        tokenizer_object=unigram, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    tokenizer.save_pretrained(folder)
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=66,
        pad_token_id=1, bos_token_id=0, eos_token_id=2)
    torch.manual_seed(seed)
    transformers.XLMRobertaModel(config).save_pretrained(folder, safe_serialization=True)
    return folder

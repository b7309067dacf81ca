"""Shared fixtures: a tiny BERT teacher checkpoint, an easy synthetic task, a trained model_dir.

The CPU is split into 2 logical devices before TensorFlow starts, so MirroredStrategy runs
with 2 replicas as it would on 2 GPUs.
"""

import os
import pathlib
import random

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=wrong-import-position

from xtremedistil import distribute  # pylint: disable=wrong-import-position

distribute.split_cpu(2)

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"

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


def write_tiny_bert(folder, hidden=32, layers=2, seed=0):
    """A random-weight BERT checkpoint in the real one's layout: config, vocab, safetensors."""
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    folder = pathlib.Path(folder)
    words = sorted({w for spans in ENTITIES.values() for span in spans for w in span}
                   | set(FILLERS))
    pieces = sorted({"##" + c for c in "abcdefghijklmnopqrstuvwxyz"} | set("abcdefghijklmnopqrstuvwxyz.,"))
    vocab = SPECIAL + words + pieces
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64)
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(folder, safe_serialization=True)
    transformers.BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    return folder


def tiny_config(tmp, **overrides):
    """Options for a fast run of the whole pipeline on the synthetic task."""
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    tmp = pathlib.Path(tmp)
    task = tmp / "task"
    if not task.exists():
        write_task(task)
    teacher = tmp / "tiny_bert"
    if not teacher.exists():
        write_tiny_bert(teacher)
    options = dict(task=str(task), transfer_file=str(task / "transfer.txt"),
                   model_dir=str(tmp / "model"), pt_teacher_checkpoint=str(teacher), seq_len=16,
                   word_emb_dim=16, bilstm_hidden_size=16, ft_epochs=10, ft_learning_rate=3e-3,
                   ft_batch_size=8, distil_batch_size=8, distil_epochs=4,
                   distil_learning_rate=3e-3, distil_chunk_size=200, patience=2,
                   strategy="mirrored", seed=1, baseline=True)
    options.update(overrides)
    return pipeline.Config(**options)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One full pipeline run on the synthetic task: (config, metrics)."""
    from xtremedistil import pipeline  # pylint: disable=import-outside-toplevel
    config = tiny_config(tmp_path_factory.mktemp("trained"))
    metrics = pipeline.run(config)
    return config, metrics


def script_flags(config):
    """The run_xtreme_distil.py flags that reproduce a pipeline.Config."""
    import dataclasses  # pylint: disable=import-outside-toplevel
    return [f"--{field.name}={getattr(config, field.name)}"
            for field in dataclasses.fields(config)]

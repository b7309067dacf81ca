#!/usr/bin/env python3
"""Generate the small sentence-classification and sentence-pair demo sets.

Both are synthetic: every sentence is produced from the hand-written templates and word
lists below (written for this project, not taken from any data set).

``data/demo_classification/``: binary sentiment of short product and film reviews in
English, Spanish and German. The label is decided by the polarity words the template is
filled with (adjectives, closing phrases); in "contrast" sentences ("... looked awful at
first, but in the end it was superb.") by the word after "but".

    train.tsv     136 reviews per language   text<TAB>lang:label   (e.g. en:positive)
    dev.tsv        34 reviews per language
    test.tsv       68 reviews per language
    labels.tsv    negative, positive
    transfer.txt  668 unlabeled reviews per language

The languages are shuffled together in every file, so the first N lines of a file hold all
three (benchmarks/classification.py takes the first --labeled train lines).
Reviews come in minimal pairs (one frame filled once with positive, once with negative words),
so template and item words say nothing about the label. A quarter of the polarity words and
phrases of each language are *held out*: they never occur in train.tsv, fill 15% of the
polarity slots in dev/test and occur freely in the transfer set, so a student can learn them
from the teacher on the transfer set.

``data/demo_pairs/``: English-Spanish translation pairs. ``match``: text_b is the Spanish
translation of text_a; ``mismatch``: text_b is the translation of another sentence (at least
two of its four slots differ). No language prefix on the labels (one language pair).

    train.tsv     400 pairs    text_a<TAB>text_b<TAB>label
    dev.tsv       100 pairs
    test.tsv      200 pairs
    labels.tsv    match, mismatch
    transfer.txt  2000 unlabeled pairs, text_a<TAB>text_b

Every split is balanced; an English sentence is text_a in one split only.

Standard library only and fully deterministic (string seeds, no set iteration):
``python data/make_classification_demo.py`` regenerates byte-identical files. The script
asserts the format and that both tasks are learnable from the words: for sentiment a naive Bayes
classifier over words, trained on train.tsv, reaches >90% test accuracy (a bag of words misses
the contrast reviews and the held-out words it never saw); for the pairs a word-translation
table read off the templates decides every label.
"""

import hashlib
import math
import os
import random
import sys
from collections import Counter

SEED = 20250611
HERE = os.path.dirname(os.path.abspath(__file__))
SPLITS = ("train", "dev", "test")

# === Sentiment ===

SENTIMENT_DIR = os.path.join(HERE, "demo_classification")
SENTIMENT_LABELS = ["negative", "positive"]
SENTIMENT_LANGS = ["en", "es", "de"]
SENTIMENT_SIZES = {"train": 136, "dev": 34, "test": 68, "transfer": 668}  # per language, even
HELD_OUT_FRACTION = 0.25   # share of each polarity list never used in train
P_HELD_EVAL = 0.15         # chance that a polarity slot in dev/test takes a held-out entry
P_INTENSIFIER = 0.5        # chance of "really", "muy", "sehr" ... before an adjective

# Items: "noun|article|gender" (gender m/f/n; the article is the definite one, nominative).
# Templates: {THE} the item with its article, {THIS} with a demonstrative, {NOUN} bare,
# {PRON} its pronoun, {ADJ} a polarity adjective (with an optional intensifier), {PHRASE} a
# polarity phrase, {OPP} an adjective of the opposite polarity (contrast templates only: the
# label follows {ADJ}, which comes after it).
SENTIMENT = {
    "en": {
        "items": ["film", "movie", "book", "phone", "camera", "laptop", "hotel", "restaurant",
                  "song", "game", "chair", "jacket", "series", "album", "coffee machine",
                  "keyboard"],
        "intensifiers": ["really", "very", "truly", "quite"],
        "positive": ["great", "wonderful", "excellent", "brilliant", "delightful", "superb",
                     "charming", "reliable", "beautiful", "fantastic", "enjoyable", "impressive",
                     "lovely", "outstanding", "marvellous", "pleasant"],
        "negative": ["terrible", "awful", "boring", "disappointing", "poor", "dreadful",
                     "useless", "ugly", "annoying", "mediocre", "horrible", "weak", "flimsy",
                     "pathetic", "tedious", "unpleasant"],
        "positive_phrases": ["I loved it", "I would buy it again", "highly recommended",
                             "worth every penny", "a real pleasure", "I am very happy with it",
                             "five stars from me", "my family loves it"],
        "negative_phrases": ["I hated it", "a waste of money", "I want my money back",
                             "avoid it", "a real letdown", "I regret buying it",
                             "one star is too many", "never again"],
        "templates": [
            "The {NOUN} is {ADJ}.",
            "This {NOUN} was {ADJ}, {PHRASE}.",
            "I found the {NOUN} {ADJ}.",
            "My friends said the {NOUN} was {ADJ}, and they were right.",
            "{PHRASE}: the {NOUN} is {ADJ}.",
            "Honestly, the {NOUN} felt {ADJ} from start to finish.",
            "After a week with this {NOUN}, I can say it is {ADJ}.",
            "We tried the {NOUN} last weekend and it was {ADJ}.",
            "The price was fair and the {NOUN} is {ADJ}.",
            "{PHRASE}, the {NOUN} is simply {ADJ}.",
        ],
        "contrast": [
            "The {NOUN} looked {OPP} at first, but in the end it was {ADJ}.",
            "Some reviews called the {NOUN} {OPP}, but to me it is {ADJ}.",
        ],
    },
    "es": {
        "items": ["película|la|f", "libro|el|m", "móvil|el|m", "cámara|la|f", "portátil|el|m",
                  "hotel|el|m", "restaurante|el|m", "canción|la|f", "juego|el|m", "silla|la|f",
                  "chaqueta|la|f", "serie|la|f", "disco|el|m", "cafetera|la|f",
                  "teclado|el|m", "novela|la|f"],
        "intensifiers": ["muy", "realmente", "bastante", "tremendamente"],
        # Adjectives in their masculine form; those ending in -o agree with the item.
        "positive": ["excelente", "genial", "increíble", "impresionante", "espectacular",
                     "agradable", "fiable", "brillante", "formidable", "admirable",
                     "inmejorable", "entrañable", "sobresaliente", "memorable", "estupendo",
                     "fenomenal"],
        "negative": ["terrible", "horrible", "insoportable", "lamentable", "deplorable",
                     "decepcionante", "mediocre", "inútil", "frágil", "débil",
                     "desagradable", "irritante", "insufrible", "pésimo", "aburrido",
                     "espantoso"],
        "positive_phrases": ["me encantó", "lo volvería a comprar", "muy recomendable",
                             "vale cada céntimo", "un verdadero placer", "estoy muy contento",
                             "cinco estrellas", "a mi familia le encanta"],
        "negative_phrases": ["lo odié", "una pérdida de dinero", "quiero que me devuelvan el "
                             "dinero", "mejor evitarlo", "una gran decepción",
                             "me arrepiento de comprarlo", "una estrella es demasiado",
                             "nunca más"],
        "templates": [
            "{THE} {NOUN} es {ADJ}.",
            "{THIS} {NOUN} fue {ADJ}, {PHRASE}.",
            "{THE} {NOUN} me pareció {ADJ}.",
            "Mis amigos dijeron que {THE} {NOUN} era {ADJ}, y tenían razón.",
            "{PHRASE}: {THE} {NOUN} es {ADJ}.",
            "Sinceramente, {THE} {NOUN} fue {ADJ} de principio a fin.",
            "Después de una semana con {THIS} {NOUN}, puedo decir que es {ADJ}.",
            "Probamos {THE} {NOUN} el fin de semana pasado y fue {ADJ}.",
            "El precio era justo y {THE} {NOUN} es {ADJ}.",
            "{PHRASE}, {THE} {NOUN} es simplemente {ADJ}.",
        ],
        "contrast": [
            "Al principio {THE} {NOUN} parecía {OPP}, pero al final fue {ADJ}.",
            "Algunas críticas dijeron que {THE} {NOUN} era {OPP}, pero para mí es {ADJ}.",
        ],
    },
    "de": {
        "items": ["Film|der|m", "Buch|das|n", "Handy|das|n", "Kamera|die|f", "Laptop|der|m",
                  "Hotel|das|n", "Restaurant|das|n", "Lied|das|n", "Spiel|das|n",
                  "Stuhl|der|m", "Jacke|die|f", "Serie|die|f", "Album|das|n",
                  "Kaffeemaschine|die|f", "Kopfhörer|der|m", "Roman|der|m"],
        "intensifiers": ["sehr", "wirklich", "echt", "ziemlich"],
        # Predicative adjectives: German does not inflect them.
        "positive": ["großartig", "wunderbar", "ausgezeichnet", "hervorragend", "herrlich",
                     "fantastisch", "zuverlässig", "wunderschön", "beeindruckend",
                     "erstklassig", "gelungen", "spannend", "toll", "prima", "genial",
                     "angenehm"],
        "negative": ["schrecklich", "furchtbar", "langweilig", "enttäuschend", "miserabel",
                     "nutzlos", "hässlich", "nervig", "mittelmäßig", "grauenhaft", "schwach",
                     "ärgerlich", "billig", "peinlich", "öde", "unangenehm"],
        "positive_phrases": ["ich habe es geliebt", "ich würde es wieder kaufen",
                             "absolut empfehlenswert", "jeden Cent wert", "ein echtes Vergnügen",
                             "ich bin sehr zufrieden", "fünf Sterne von mir",
                             "meine Familie liebt es"],
        "negative_phrases": ["ich habe es gehasst", "reine Geldverschwendung",
                             "ich will mein Geld zurück", "Finger weg", "eine echte Enttäuschung",
                             "ich bereue den Kauf", "ein Stern ist zu viel", "nie wieder"],
        "templates": [
            "{THE} {NOUN} ist {ADJ}.",
            "{THIS} {NOUN} war {ADJ}, {PHRASE}.",
            "Ich fand {THE_ACC} {NOUN} {ADJ}.",
            "Meine Freunde sagten, {THE} {NOUN} sei {ADJ}, und sie hatten recht.",
            "{PHRASE}: {THE} {NOUN} ist {ADJ}.",
            "Ehrlich gesagt war {THE} {NOUN} von Anfang bis Ende {ADJ}.",
            "Nach einer Woche kann ich sagen: {THE} {NOUN} ist {ADJ}.",
            "Wir haben {THE_ACC} {NOUN} am Wochenende ausprobiert und {PRON} war {ADJ}.",
            "Der Preis war fair und {THE} {NOUN} ist {ADJ}.",
            "{PHRASE}, {THE} {NOUN} ist einfach {ADJ}.",
        ],
        "contrast": [
            "Zuerst wirkte {THE} {NOUN} {OPP}, aber am Ende war {PRON} {ADJ}.",
            "Manche Kritiken nannten {THE_ACC} {NOUN} {OPP}, aber für mich ist {PRON} {ADJ}.",
        ],
    },
}
P_CONTRAST = 0.08  # share of reviews from the contrast templates

# Forms that depend on the item's gender (m, f, n).
GENDER_FORMS = {
    "es": {"THIS": {"m": "este", "f": "esta"}},
    "de": {"THIS": {"m": "dieser", "f": "diese", "n": "dieses"},
           "THE_ACC": {"m": "den", "f": "die", "n": "das"},
           "PRON": {"m": "er", "f": "sie", "n": "es"}},
}


def _item(lang, spec):
    """(noun, article, gender) of an item spec 'noun|article|gender' (English: noun only)."""
    if lang == "en":
        return spec, "the", "n"
    noun, article, gender = spec.split("|")
    return noun, article, gender


def _spanish_agree(word, gender):
    """Spanish adjectives ending in -o agree with the item (estupendo, estupenda)."""
    return word[:-1] + "a" if gender == "f" and word.endswith("o") else word


def held_out(words):
    """The HELD_OUT_FRACTION of `words` with the smallest hash (deterministic, order-free)."""
    ranked = sorted(words, key=lambda w: hashlib.sha1(w.encode("utf-8")).hexdigest())
    return set(ranked[:max(1, round(HELD_OUT_FRACTION * len(words)))])


def pick(rng, words, held, mode):
    """A word for a slot: train never takes a held-out entry; dev/test take one with
    probability P_HELD_EVAL; transfer takes any."""
    seen = [w for w in words if w not in held]
    if mode == "train":
        return rng.choice(seen)
    if mode == "eval":
        return rng.choice(sorted(held) if rng.random() < P_HELD_EVAL else seen)
    return rng.choice(words)


def make_reviews(rng, lang, mode):
    """A minimal pair of reviews: the same frame (template, item, intensifiers) once with
    positive and once with negative polarity words, [(text, label)] * 2. Everything but the
    polarity words occurs equally often with both labels, so only they tell the label."""
    data = SENTIMENT[lang]
    contrast = rng.random() < P_CONTRAST
    template = rng.choice(data["contrast"] if contrast else data["templates"])
    noun, article, gender = _item(lang, rng.choice(data["items"]))
    intensifier = rng.choice(data["intensifiers"]) if rng.random() < P_INTENSIFIER else ""
    fills = {"NOUN": noun, "THE": article}
    fills.update({slot: forms[gender] for slot, forms in GENDER_FORMS.get(lang, {}).items()})

    def adjective(polarity):
        word = pick(rng, data[polarity], held_out(data[polarity]), mode)
        return _spanish_agree(word, gender) if lang == "es" else word

    reviews = []
    for label in SENTIMENT_LABELS:
        other = SENTIMENT_LABELS[1 - SENTIMENT_LABELS.index(label)]
        fills["OPP"] = adjective(other) if contrast else ""
        fills["ADJ"] = " ".join(w for w in (intensifier, adjective(label)) if w)
        if "{PHRASE}" in template:
            phrases = data[label + "_phrases"]
            fills["PHRASE"] = pick(rng, phrases, held_out(phrases), mode)
        text = template.format(**fills)
        reviews.append((text[0].upper() + text[1:], label))
    return reviews


def generate_sentiment():
    """{split: [(lang, text, label)]}, the transfer [(lang, text)] and the transfer with its
    labels (for the learnability report); no text twice."""
    seen_text = set()
    splits = {split: [] for split in SPLITS}
    transfer = []
    for lang in SENTIMENT_LANGS:
        for split, n in SENTIMENT_SIZES.items():
            rng = random.Random(f"{SEED}:sentiment:{lang}:{split}")
            mode = {"train": "train", "transfer": "transfer"}.get(split, "eval")
            rows = []
            while len(rows) < n:
                for _ in range(1000):
                    reviews = make_reviews(rng, lang, mode)
                    texts = {text for text, _ in reviews}
                    if len(texts) == 2 and not texts & seen_text:
                        break
                else:
                    raise RuntimeError(f"cannot generate new {lang} reviews for {split}")
                seen_text |= texts
                rows += [(lang, text, label) for text, label in reviews]
            rng.shuffle(rows)
            (transfer if split == "transfer" else splits[split]).extend(rows)
    for name, rows in [*splits.items(), ("transfer", transfer)]:  # languages mixed: any
        random.Random(f"{SEED}:sentiment:shuffle-{name}").shuffle(rows)  # first N has all
    _check_held_out(splits)
    return splits, [(lang, text) for lang, text, _ in transfer], transfer


def _check_held_out(splits):
    """No held-out polarity entry occurs in train (as a whole word or phrase)."""
    for lang in SENTIMENT_LANGS:
        data = SENTIMENT[lang]
        held = set()
        for key in ("positive", "negative", "positive_phrases", "negative_phrases"):
            held |= held_out(data[key])
        for row_lang, text, _ in splits["train"]:
            if row_lang != lang:
                continue
            words = set(_words(text))
            for entry in held:
                forms = [entry] + ([_spanish_agree(entry, "f")] if lang == "es" else [])
                assert not any(_contains(text, words, f) for f in forms), (entry, text)


def _words(text):
    return [w.strip(".,:!?¡¿").lower() for w in text.split()]


def _contains(text, words, entry):
    if " " in entry:
        return entry.lower() in text.lower()
    return entry.lower() in words


# === Sentence pairs ===

PAIRS_DIR = os.path.join(HERE, "demo_pairs")
PAIR_LABELS = ["match", "mismatch"]
PAIR_SIZES = {"train": 400, "dev": 100, "test": 200, "transfer": 2000}
MIN_SLOTS_CHANGED = 2  # a mismatch's text_b differs from text_a's translation in >= 2 slots

# Slots of "{SUBJECT} {VERB} {OBJECT} {TIME}." as (English, Spanish) pairs. Past tense, singular
# subjects: neither language inflects anything across slots.
PAIR_SLOTS = [
    [("My brother", "Mi hermano"), ("My sister", "Mi hermana"), ("The teacher", "El profesor"),
     ("Our neighbour", "Nuestro vecino"), ("The old man", "El anciano"),
     ("The doctor", "El médico"), ("My grandmother", "Mi abuela"),
     ("The little girl", "La niña"), ("The driver", "El conductor"),
     ("My friend", "Mi amigo"), ("The cook", "El cocinero"), ("The farmer", "El granjero")],
    [("bought", "compró"), ("found", "encontró"), ("lost", "perdió"), ("sold", "vendió"),
     ("painted", "pintó"), ("cleaned", "limpió"), ("repaired", "arregló"),
     ("forgot", "olvidó"), ("saw", "vio"), ("carried", "llevó")],
    [("the bicycle", "la bicicleta"), ("the red car", "el coche rojo"),
     ("an old chair", "una silla vieja"), ("the kitchen table", "la mesa de la cocina"),
     ("a small boat", "un barco pequeño"), ("the blue door", "la puerta azul"),
     ("the wooden box", "la caja de madera"), ("a new lamp", "una lámpara nueva"),
     ("the garden fence", "la valla del jardín"), ("the window", "la ventana"),
     ("a big umbrella", "un paraguas grande"), ("the green bag", "la bolsa verde")],
    [("yesterday", "ayer"), ("last week", "la semana pasada"), ("this morning", "esta mañana"),
     ("on Sunday", "el domingo"), ("two days ago", "hace dos días"),
     ("last night", "anoche"), ("in the afternoon", "por la tarde")],
]


def pair_sentence(choice, language):
    """The sentence of slot indices `choice` in language 0 (English) or 1 (Spanish)."""
    words = [PAIR_SLOTS[slot][index][language] for slot, index in enumerate(choice)]
    return " ".join(words) + "."


def generate_pairs():
    """{split: [(text_a, text_b, label)]} and the transfer [(text_a, text_b)]."""
    space = [(s, v, o, t) for s in range(len(PAIR_SLOTS[0])) for v in range(len(PAIR_SLOTS[1]))
             for o in range(len(PAIR_SLOTS[2])) for t in range(len(PAIR_SLOTS[3]))]
    random.Random(f"{SEED}:pairs:space").shuffle(space)
    splits, transfer, start = {}, [], 0
    for split, n in PAIR_SIZES.items():
        rng = random.Random(f"{SEED}:pairs:{split}")
        rows = []
        for i, choice in enumerate(space[start:start + n]):  # text_a: this split's own
            label = PAIR_LABELS[i % 2]
            other = choice
            if label == "mismatch":
                while sum(a != b for a, b in zip(choice, other)) < MIN_SLOTS_CHANGED:
                    other = tuple(rng.randrange(len(slot)) for slot in PAIR_SLOTS)
            rows.append((pair_sentence(choice, 0), pair_sentence(other, 1), label))
        start += n
        rng.shuffle(rows)
        if split == "transfer":
            transfer = [(a, b) for a, b, _ in rows]
        else:
            splits[split] = rows
    return splits, transfer


def translation_label(text_a, text_b):
    """The label a reader with the templates' word table gives a pair (the learnability check)."""
    table = {en: es for slot in PAIR_SLOTS for en, es in slot}
    rest, translated = text_a[:-1], []
    for slot in PAIR_SLOTS:  # longest-match the slots in order
        en = max((e for e, _ in slot if rest.startswith(e)), key=len)
        translated.append(table[en])
        rest = rest[len(en):].lstrip()
    return "match" if " ".join(translated) + "." == text_b else "mismatch"


# === Validation ===

def check_text(text, where):
    assert text and text == text.strip(), f"{where}: empty or padded text {text!r}"
    assert not any(c in text for c in "\t\r\n"), f"{where}: tab or newline in {text!r}"


def check_files(folder, pairwise):
    """Reads the written files back and asserts the format: field counts, no empty text, no
    tabs inside texts, labels in labels.tsv (after an optional 'lang:'), no example twice."""
    fields = 3 if pairwise else 2
    with open(os.path.join(folder, "labels.tsv"), encoding="utf-8") as f:
        labels = f.read().splitlines()
    assert labels and len(set(labels)) == len(labels) and all(labels), labels
    seen = {}
    for name in [f"{split}.tsv" for split in SPLITS] + ["transfer.txt"]:
        width = fields if name.endswith(".tsv") else fields - 1
        with open(os.path.join(folder, name), encoding="utf-8", newline="") as f:
            content = f.read()
        assert content.endswith("\n") and "\r" not in content, name
        for number, line in enumerate(content[:-1].split("\n"), 1):
            where = f"{folder}/{name}:{number}"
            parts = line.split("\t")
            assert len(parts) == width, f"{where}: {len(parts)} fields, expected {width}"
            texts = parts[:fields - 1]
            for text in texts:
                check_text(text, where)
            if name.endswith(".tsv"):
                label = parts[-1].split(":", 1)[-1]
                assert label in labels, f"{where}: label {parts[-1]!r} not in labels.tsv"
            key = tuple(texts)
            assert key not in seen, f"{where}: example also at {seen[key]}"
            seen[key] = where


def naive_bayes_accuracy(train, test):
    """Test accuracy of a multinomial naive Bayes over lower-cased words (add-one smoothing),
    per language: a model that only reads the words."""
    counts, totals, priors, vocab = {}, Counter(), Counter(), set()
    for lang, text, label in train:
        key = (lang, label)
        priors[key] += 1
        words = _words(text)
        counts.setdefault(key, Counter()).update(words)
        totals[key] += len(words)
        vocab.update(words)
    correct = 0
    for lang, text, label in test:
        def score(candidate):
            key = (lang, candidate)
            return math.log(priors[key]) + sum(
                math.log((counts[key][w] + 1) / (totals[key] + len(vocab))) for w in _words(text))
        correct += max(SENTIMENT_LABELS, key=score) == label
    return correct / len(test)


# === Output ===

def write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(line + "\n" for line in lines))


def write_sentiment(splits, transfer):
    os.makedirs(SENTIMENT_DIR, exist_ok=True)
    for split, rows in splits.items():
        write_lines(os.path.join(SENTIMENT_DIR, f"{split}.tsv"),
                    [f"{text}\t{lang}:{label}" for lang, text, label in rows])
    write_lines(os.path.join(SENTIMENT_DIR, "labels.tsv"), SENTIMENT_LABELS)
    write_lines(os.path.join(SENTIMENT_DIR, "transfer.txt"), [text for _, text in transfer])
    check_files(SENTIMENT_DIR, pairwise=False)


def write_pairs(splits, transfer):
    os.makedirs(PAIRS_DIR, exist_ok=True)
    for split, rows in splits.items():
        write_lines(os.path.join(PAIRS_DIR, f"{split}.tsv"), ["\t".join(row) for row in rows])
    write_lines(os.path.join(PAIRS_DIR, "labels.tsv"), PAIR_LABELS)
    write_lines(os.path.join(PAIRS_DIR, "transfer.txt"), ["\t".join(row) for row in transfer])
    check_files(PAIRS_DIR, pairwise=True)


def main():
    sentiment, sentiment_transfer, labeled_transfer = generate_sentiment()
    pairs, pairs_transfer = generate_pairs()
    write_sentiment(sentiment, sentiment_transfer)
    write_pairs(pairs, pairs_transfer)

    # Learnable from the words: naive Bayes on train alone; the held-out words it has never
    # seen cost it a few points, which the transfer set (teacher labels) can win back.
    accuracy = naive_bayes_accuracy(sentiment["train"], sentiment["test"])
    with_transfer = naive_bayes_accuracy(sentiment["train"] + labeled_transfer,
                                         sentiment["test"])
    assert accuracy > 0.9 and with_transfer > 0.9, (
        f"sentiment: naive Bayes test accuracy {accuracy:.3f} / {with_transfer:.3f} <= 0.9")
    for rows in pairs.values():
        for text_a, text_b, label in rows:
            assert translation_label(text_a, text_b) == label, (text_a, text_b, label)
    if "-q" in sys.argv[1:]:
        return
    print(f"written to {SENTIMENT_DIR} and {PAIRS_DIR}")
    for split, rows in sentiment.items():
        print(f"sentiment {split:8s} {len(rows):4d} ({_counts(f'{l}:{y}' for l, _, y in rows)})")
    print(f"sentiment transfer {len(sentiment_transfer):4d} "
          f"({_counts(lang for lang, _ in sentiment_transfer)})")
    print(f"sentiment: naive Bayes over words, test accuracy {100 * accuracy:.1f}% from train, "
          f"{100 * with_transfer:.1f}% from train + the transfer set's true labels")
    for split, rows in pairs.items():
        print(f"pairs     {split:8s} {len(rows):4d} ({_counts(y for _, _, y in rows)})")
    print(f"pairs     transfer {len(pairs_transfer):4d}")


def _counts(values):
    return " ".join(f"{key}={n}" for key, n in sorted(Counter(values).items()))

if __name__ == "__main__":
    main()

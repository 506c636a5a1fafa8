"""fastnet.CharLM: training, bits per character, sampling, save/load, bad input."""
import numpy as np
import pytest

import fastnet
from conftest import BACKENDS, need

TEXT = ("the cat sat on the mat and the dog sat on the log and the cat and the dog ran "
        "to the mat ") * 20


def small(**kw):
    kw = {"hidden_size": 16, "seq_len": 12, "batch_size": 4, "lr": 0.01, "max_epochs": 6,
          "random_state": 0, "verbose": 0, **kw}
    return fastnet.CharLM(**kw)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_learns_a_repetitive_text(backend_name, cell):
    with fastnet.use_backend(backend_name):
        m = small(cell=cell, max_epochs=10).fit(TEXT, validation_text=TEXT[:200])
        bits = m.bits_per_char(TEXT[:300])
    assert m.vocabulary_ == "".join(sorted(set(TEXT)))
    h = m.history_
    assert h["bits"][-1] < 0.7 * h["bits"][0]
    assert h["val_bits"][-1] < h["val_bits"][0] and len(h["val_bits"]) == 10
    assert bits < np.log2(len(m.vocabulary_)) * 0.7          # well under a uniform guess
    assert m.score(TEXT[:300]) == pytest.approx(-bits)


def test_backends_train_the_same_model():
    models = []
    for name in BACKENDS:
        with fastnet.use_backend(name):
            models.append(small(num_layers=2, max_epochs=2, dtype="float64").fit(TEXT))
    for m in models[1:]:
        np.testing.assert_allclose(m.params_, models[0].params_, rtol=1e-9, atol=1e-12)


def test_sampling_is_seeded_and_uses_the_vocabulary():
    m = small().fit(TEXT)
    a = m.sample(200, prime="the ", temperature=0.8, random_state=1)
    assert a == m.sample(200, prime="the ", temperature=0.8, random_state=1)
    assert len(a) == 200 and set(a) <= set(m.vocabulary_)
    assert m.sample(50, random_state=2) != m.sample(50, random_state=3)
    assert m.sample(0) == ""
    cold = m.sample(300, prime="the ", temperature=0.05, random_state=0)
    assert "the" in cold          # nearly greedy: the commonest word comes back


def test_bits_per_char_matches_the_log_likelihood_by_hand():
    """bits_per_char is the mean of -log2 p(next | prefix), prefix read from the start."""
    m = small(max_epochs=2).fit(TEXT)
    text = "the dog sat"
    by_hand = 0.0
    for k in range(1, len(text)):
        logp, _ = m._run(m._encode(text[:k]), None)
        by_hand -= logp[-1, m.vocabulary_.index(text[k])] / np.log(2)
    assert m.bits_per_char(text) == pytest.approx(by_hand / (len(text) - 1), rel=1e-6)


def test_save_and_load_keep_the_vocabulary(tmp_path):
    m = small(max_epochs=2).fit(TEXT)
    path = tmp_path / "lm.npz"
    m.save(path)
    m2 = fastnet.load(path)
    assert isinstance(m2, fastnet.CharLM) and m2.vocabulary_ == m.vocabulary_
    assert m2.bits_per_char(TEXT[:100]) == m.bits_per_char(TEXT[:100])
    assert m2.sample(40, prime="the", random_state=5) == m.sample(40, prime="the", random_state=5)
    assert fastnet.io.read_metadata(path)["class"] == "CharLM"


def test_bad_text_is_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="text is empty"):
        small().fit("")
    with pytest.raises(TypeError, match="text must be a str"):
        small().fit(b"abc")
    with pytest.raises(ValueError, match="seq_len=50 is longer than the text"):
        small(seq_len=50).fit("abcdefgh")
    with pytest.raises(ValueError, match="batch_size=4 streams need at least 5"):
        small(seq_len=2, batch_size=4).fit("abcd")
    with pytest.raises(ValueError, match="'hidden_size'"):
        small(hidden_size=0).fit(TEXT)
    with pytest.raises(ValueError, match="'dtype'"):
        small(dtype="float16").fit(TEXT)
    m = small(max_epochs=1).fit(TEXT)
    with pytest.raises(ValueError, match=r"1 character\(s\) not seen by fit \('Z'\)"):
        m.bits_per_char("the Zone")
    with pytest.raises(ValueError, match="text is empty"):
        m.bits_per_char("")
    with pytest.raises(ValueError, match="prime holds"):
        m.sample(10, prime="!")
    with pytest.raises(ValueError, match="temperature"):
        m.sample(10, temperature=0)
    with pytest.raises(ValueError, match="validation_text holds"):
        small(max_epochs=1).fit(TEXT, validation_text="the ?")
    with pytest.raises(Exception, match="not fitted"):
        fastnet.CharLM().sample(5)


@pytest.mark.data
def test_gutenberg_text_trains_below_a_uniform_guess(data_dir):
    path = need(data_dir, "corpus", "gutenberg_mix.txt")
    text = path.read_text(encoding="utf-8")[:40000]
    m = fastnet.CharLM(hidden_size=64, seq_len=50, batch_size=16, lr=5e-3, max_epochs=3,
                       random_state=0, verbose=0).fit(text[:36000])
    assert m.bits_per_char(text[36000:]) < 3.3 < np.log2(len(m.vocabulary_))

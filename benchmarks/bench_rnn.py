"""Recurrent networks: fastnet's backends side by side with PyTorch (issue 15's targets).

Groups (one table each in ``BENCHMARKS.md``):

* ``charlm lstm H=128``: one training epoch of a character-level LSTM over
  the first 300,000 characters of the Gutenberg corpus (29 symbols): hidden
  128, truncated BPTT over 100 characters, 32 streams, one-hot input, Adam
  (lr 2e-3), gradient-norm clipping at 5, float32.  fastnet: one
  ``rnn_lm_epoch`` kernel call (what ``CharLM.fit`` runs per epoch);
  PyTorch (2 threads): ``nn.LSTM`` + ``nn.Linear``, a loop over the chunks of
  forward, ``cross_entropy``, ``backward``, ``clip_grad_norm_``,
  ``Adam.step``, the state carried (detached) from chunk to chunk;
* ``charlm lstm H=512``: the same with hidden 512, over the first 64,000
  characters (20 chunks);
* ``online rnn H=32``: the course's online learning: a plain tanh RNN
  classifier (8 features, 30 steps, hidden 32, 2 classes) trained by SGD one
  sequence at a time, 500 sequences.  fastnet: one ``rnn_seq_epoch`` call
  with ``batch_size=1``; PyTorch: ``nn.RNN`` + ``nn.Linear``, a loop over the
  sequences of forward, backward, ``SGD.step``;
* ``lengths lstm H=128``: a many-to-one LSTM epoch (2,048 sequences of up to
  100 steps, 8 features, batch 32) with lengths uniform in [50, 100]
  (``lengths``) against the same sequences padded to 100 steps (``padded``):
  the issue asks for at most 10 % over the padded cost.

GFLOP/s count the recurrent and output layers' products (forward, the
input-gradient and weight-gradient products of BPTT), not the elementwise gates.
"""
import numpy as np
import pytest

from fastnet import _backend
from fastnet._codes import Act, Cell, Optimizer
from fastnet.estimators._rnn import init_network
from _helpers import data_root, fastnet_backends, peer, run

S, B = 100, 32


def _corpus(n_chars):
    path = data_root() / "corpus" / "gutenberg_mix.txt"
    if not path.exists():
        pytest.skip(f"the Gutenberg corpus is not at {path} (set FASTNET_DATA)")
    text = path.read_text(encoding="utf-8")[:n_chars]
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    vocab, tokens = np.unique(codes, return_inverse=True)
    L = (len(tokens) - 1) // B
    streams = np.stack([tokens[b * L:b * L + L + 1] for b in range(B)]).astype(np.int64)
    return streams, vocab.shape[0]


def _lm_flops(V, H, n_pred):
    G = 4 * H
    per = 2 * H * G * 3 + 2 * H * V * 3     # recurrent: fwd, dh, dU; output: fwd, dH, dV
    return per * n_pred


def _methods(kernel):
    return [b for b in fastnet_backends(kernel) if b != "reference"] + ["torch"]


def _label(method):
    return "PyTorch (2 threads)" if method == "torch" else f"fastnet[{method}]"


def _lm_fn(method, streams, V, H):
    sizes = np.array([V, H, V], dtype=np.int64)
    params0 = init_network(Cell.LSTM, sizes, np.random.default_rng(0), np.float32)
    if method != "torch":
        K = _backend.backend_kernels(method)
        box = {}

        def setup():
            box["p"] = params0.copy()
            box["st"] = np.zeros(2 * params0.size, np.float32)

        def fn():
            hs = np.zeros(B * H, np.float32)
            cs = np.zeros(B * H, np.float32)
            return K.rnn_lm_epoch(int(Cell.LSTM), int(Act.TANH), box["p"], sizes, streams, S,
                                  hs, cs, int(Optimizer.ADAM), 2e-3, 0.9, 0.999, 1e-8, 5.0,
                                  box["st"], 0)
        setup()  # compile (or load Numba's cache) on a short text, untimed
        K.rnn_lm_epoch(int(Cell.LSTM), int(Act.TANH), box["p"], sizes, streams[:, :S + 1].copy(),
                       S, np.zeros(B * H, np.float32), np.zeros(B * H, np.float32),
                       int(Optimizer.ADAM), 2e-3, 0.9, 0.999, 1e-8, 5.0, box["st"], 0)
        return fn, setup
    torch = peer("torch")
    F = torch.nn.functional
    toks = torch.from_numpy(np.ascontiguousarray(streams.T))       # (N + 1, B)
    eye = torch.eye(V)

    def setup():
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(V, H)
        lin = torch.nn.Linear(H, V)
        params = list(lstm.parameters()) + list(lin.parameters())
        setup.model = (lstm, lin, params, torch.optim.Adam(params, lr=2e-3))

    def fn():
        lstm, lin, params, opt = setup.model
        state = None
        N = toks.shape[0] - 1
        for start in range(0, N, S):
            stop = min(N, start + S)
            out, state = lstm(eye[toks[start:stop]], state)
            loss = F.cross_entropy(lin(out).reshape(-1, V), toks[start + 1:stop + 1].reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            state = tuple(s.detach() for s in state)
    setup()  # first-call costs (one chunk forward and backward), untimed
    lstm, lin = setup.model[:2]
    out, _ = lstm(eye[toks[:S]])
    F.cross_entropy(lin(out).reshape(-1, V), toks[1:S + 1].reshape(-1)).backward()
    return fn, setup


@pytest.mark.parametrize("method", _methods("rnn_lm_epoch"))
def test_charlm_lstm_h128(benchmark, method):
    benchmark.group = "charlm lstm H=128 (epoch of 300,000 characters)"
    streams, V = _corpus(300_000)
    fn, setup = _lm_fn(method, streams, V, 128)
    run(benchmark, fn, setup=setup, rounds=3, warmup=0, method=_label(method),
        flops=_lm_flops(V, 128, streams.shape[0] * (streams.shape[1] - 1)))


@pytest.mark.parametrize("method", _methods("rnn_lm_epoch"))
def test_charlm_lstm_h512(benchmark, method):
    benchmark.group = "charlm lstm H=512 (64,000 characters, 20 chunks)"
    streams, V = _corpus(64_001)
    fn, setup = _lm_fn(method, streams, V, 512)
    run(benchmark, fn, setup=setup, rounds=2, warmup=0, method=_label(method),
        flops=_lm_flops(V, 512, streams.shape[0] * (streams.shape[1] - 1)))


# ------------------------------------------------------------------------ online RNN
N_ON, T_ON, D_ON, H_ON = 500, 30, 8, 32


def _online_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_ON, T_ON, D_ON)).astype(np.float32)
    y = (X[:, 0, 0] > 0).astype(np.int64)
    return X, y


@pytest.mark.parametrize("method", _methods("rnn_seq_epoch"))
def test_online_rnn(benchmark, method):
    benchmark.group = "online rnn H=32 (500 sequences of 30 steps, batch 1, SGD)"
    X, y = _online_data()
    sizes = np.array([D_ON, H_ON, 2], dtype=np.int64)
    params0 = init_network(Cell.RNN, sizes, np.random.default_rng(0), np.float32)
    order = np.arange(N_ON, dtype=np.int64)
    flops = N_ON * T_ON * 3 * 2 * H_ON * (D_ON + H_ON)
    if method != "torch":
        K = _backend.backend_kernels(method)
        lengths = np.full(N_ON, T_ON, dtype=np.int64)
        box = {}

        def setup():
            box["p"] = params0.copy()

        def fn():
            return K.rnn_seq_epoch(int(Cell.RNN), int(Act.TANH), box["p"], sizes, X, lengths, y,
                                   order, 1, int(Optimizer.SGD), 0.01, 0.9, 0.9, 1e-8, np.inf,
                                   np.zeros(2 * params0.size, np.float32), 0)
        run(benchmark, fn, setup=setup, rounds=5, method=_label(method), flops=flops)
        return
    torch = peer("torch")
    F = torch.nn.functional
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)

    def setup():
        torch.manual_seed(0)
        rnn = torch.nn.RNN(D_ON, H_ON, batch_first=True)
        lin = torch.nn.Linear(H_ON, 2)
        params = list(rnn.parameters()) + list(lin.parameters())
        setup.model = (rnn, lin, torch.optim.SGD(params, lr=0.01))

    def fn():
        rnn, lin, opt = setup.model
        for i in range(N_ON):
            _, h = rnn(Xt[i:i + 1])
            loss = F.cross_entropy(lin(h[0]), yt[i:i + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
    run(benchmark, fn, setup=setup, rounds=2, method=_label(method), flops=flops)


# ------------------------------------------------------------------- variable lengths
@pytest.mark.parametrize("variant", ["lengths", "padded"])
@pytest.mark.parametrize("backend", [b for b in fastnet_backends("rnn_seq_epoch")
                                     if b != "reference"])
def test_lengths_against_padding(benchmark, backend, variant):
    benchmark.group = "lengths lstm H=128 (2,048 sequences of 50 to 100 steps, batch 32)"
    rng = np.random.default_rng(1)
    n, T, D, H = 2048, 100, 8, 128
    X = rng.standard_normal((n, T, D)).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.int64)
    lengths = rng.integers(T // 2, T + 1, n).astype(np.int64) if variant == "lengths" \
        else np.full(n, T, dtype=np.int64)
    if variant == "lengths":
        X[np.arange(T)[None, :] >= lengths[:, None]] = 0
    sizes = np.array([D, H, 2], dtype=np.int64)
    params0 = init_network(Cell.LSTM, sizes, np.random.default_rng(0), np.float32)
    order = np.random.default_rng(2).permutation(n).astype(np.int64)
    K = _backend.backend_kernels(backend)
    box = {}

    def setup():
        box["p"] = params0.copy()
        box["st"] = np.zeros(2 * params0.size, np.float32)

    def fn():
        return K.rnn_seq_epoch(int(Cell.LSTM), int(Act.TANH), box["p"], sizes, X, lengths, y,
                               order, 32, int(Optimizer.ADAM), 1e-3, 0.9, 0.999, 1e-8, 5.0,
                               box["st"], 0)
    run(benchmark, fn, setup=setup, rounds=3, method=f"fastnet[{backend}] {variant}",
        flops=int(lengths.sum()) * 3 * 2 * 4 * H * (D + H))

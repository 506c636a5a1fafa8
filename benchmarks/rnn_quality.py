"""What the recurrent networks learn (issue 15's accuracy targets), printed as Markdown.

* the memory task: the label is the sign of the first of 30 standard-normal
  steps (one feature); 8,000 sequences to train, 2,000 to test;
  ``RNNClassifier(32, cell='lstm' | 'rnn', lr=0.005, max_epochs=30)``;
* the character-level LSTM of ``bench_rnn.py`` (hidden 128, 100 steps, 32
  streams, Adam 2e-3, clipping 5, float32) trained 8 epochs on the first
  300,000 characters of the Gutenberg corpus, measured on the next 30,000
  (held out), with a sample of its output; ``--torch`` trains the same model in
  PyTorch for comparison.

Usage::

    python benchmarks/rnn_quality.py [--torch] [--epochs 8]
"""
import argparse
import time
from pathlib import Path

import numpy as np

import fastnet

REPO = Path(__file__).resolve().parent.parent


def memory_task(n, rng, T=30):
    X = rng.standard_normal((n, T, 1)).astype(np.float32)
    return X, (X[:, 0, 0] > 0).astype(np.int64)


def corpus():
    import os
    root = Path(os.environ.get("FASTNET_DATA", REPO.parent / "shared" / "data"))
    return (root / "corpus" / "gutenberg_mix.txt").read_text(encoding="utf-8")


def torch_bits(train, val, epochs, H=128, S=100, B=32):
    import torch
    torch.set_num_threads(2)
    torch.manual_seed(0)
    vocab = sorted(set(train))
    idx = {c: i for i, c in enumerate(vocab)}
    tok = torch.tensor([idx[c] for c in train])
    V = len(vocab)
    L = (len(tok) - 1) // B
    streams = torch.stack([tok[b * L:b * L + L + 1] for b in range(B)]).T
    lstm, lin = torch.nn.LSTM(V, H), torch.nn.Linear(H, V)
    params = list(lstm.parameters()) + list(lin.parameters())
    opt = torch.optim.Adam(params, lr=2e-3)
    eye = torch.eye(V)
    for _ in range(epochs):
        state = None
        for start in range(0, L, S):
            stop = min(L, start + S)
            out, state = lstm(eye[streams[start:stop]], state)
            loss = torch.nn.functional.cross_entropy(lin(out).reshape(-1, V),
                                                     streams[start + 1:stop + 1].reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            state = tuple(s.detach() for s in state)
    with torch.no_grad():
        vt = torch.tensor([idx[c] for c in val])
        out, _ = lstm(eye[vt[:-1]][:, None, :])
        nats = torch.nn.functional.cross_entropy(lin(out[:, 0]), vt[1:]).item()
    return nats / np.log(2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torch", action="store_true", help="also train the LSTM in PyTorch")
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args(argv)
    print(f"backend: {fastnet.get_backend()}\n")
    print("| model | test accuracy | epochs | seconds |\n|---|---|---|---|")
    for cell in ("lstm", "rnn"):
        rng = np.random.default_rng(0)
        X, y = memory_task(8000, rng)
        Xt, yt = memory_task(2000, rng)
        t0 = time.perf_counter()
        m = fastnet.RNNClassifier(32, cell=cell, lr=0.005, max_epochs=30, random_state=0,
                                  verbose=0).fit(X, y)
        print(f"| memory task, RNNClassifier(32, cell={cell!r}) | {100 * m.score(Xt, yt):.2f} % "
              f"| 30 | {time.perf_counter() - t0:.0f} |")
    text = corpus()
    train, val = text[:300_000], text[300_000:330_000]
    t0 = time.perf_counter()
    lm = fastnet.CharLM(max_epochs=args.epochs, random_state=0, verbose=0).fit(
        train, validation_text=val)
    secs = time.perf_counter() - t0
    print(f"\nCharLM (LSTM 128, Gutenberg 300,000 characters), held-out bits per character by "
          f"epoch: {', '.join(f'{b:.3f}' for b in lm.history_['val_bits'])} "
          f"(training bits {lm.history_['bits'][-1]:.3f}; {secs:.0f} s with validation)")
    if args.torch:
        print(f"PyTorch, same model and data, after {args.epochs} epochs: "
              f"{torch_bits(train, val, args.epochs):.3f} bits per character")
    print("\nSample (prime 'the ', temperature 0.7, random_state 0):\n")
    print("> " + lm.sample(400, prime="the ", temperature=0.7, random_state=0)
          .replace("\n", "\n> "))


if __name__ == "__main__":
    main()

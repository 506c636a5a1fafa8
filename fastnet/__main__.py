"""Command line: ``python -m fastnet demo`` (more commands: ``--help``)."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastnet", description="fastnet command line")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="train the course's network on bundled digits and report speed")
    d.add_argument("--epochs", type=int, default=30)
    d.add_argument("--source", default="auto", choices=["auto", "sklearn", "mnist", "generated"])
    d.add_argument("--backend", default=None)
    d.add_argument("--batch-size", type=int, default=1)
    d.add_argument("--lr", type=float, default=0.5)
    d.add_argument("--hidden", type=int, default=50)
    d.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--plots", default=None, metavar="DIR")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from fastnet.demo import run
        try:
            run(epochs=args.epochs, source=args.source, backend=args.backend,
                batch_size=args.batch_size, lr=args.lr, hidden=args.hidden, dtype=args.dtype,
                seed=args.seed, plots=args.plots)
        except (ValueError, TypeError, KeyError) as exc:
            print(f"fastnet demo: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

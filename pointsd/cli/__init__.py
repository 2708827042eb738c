"""The ``pointsd`` command line: the only interface the Snakemake and DVC DAGs use.

Each module in this package owns one topic and exposes ``register(subparsers)``, which adds its
sub-commands with ``set_defaults(func=handler)``. A handler receives the parsed namespace,
validates it, calls the library and returns an exit code. Modules are discovered, so adding a
command means adding a file here, nothing else. Command modules import only what their flags need
(no torch, diffusers or transformers): heavy libraries are imported inside the handlers, so
``pointsd --help`` and the light commands start fast.

Every failure ends in one line on stderr that names the file, folder or key and what to do, and a
non-zero exit: 2 for a :class:`PointSDError` (bad input, parameter, checkpoint, a refused write),
1 for anything unexpected, 130 for Ctrl-C, 75 (:data:`pointsd.errors.EXIT_STOPPED`) for a training run
that SIGTERM or SIGUSR1 stopped after a whole step with its progress saved (the same command resumes it). ``pointsd --debug COMMAND`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import pkgutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from pointsd.cli import _defaults
from pointsd.cli._args import Parser
from pointsd.errors import EXIT_STOPPED, PointSDError, RunStopped, first_line, is_write_refusal, write_error
from pointsd.utils import atomic, staging
from pointsd.utils.run_info import git_commit
from pointsd.utils.run_lock import is_main_rank, run_lock

EXIT_USER, EXIT_INTERNAL, EXIT_INTERRUPTED = 2, 1, 130


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every command module's sub-commands registered."""
    parser = Parser(prog="pointsd", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="on failure, show the traceback")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn every failure into one line on stderr and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "stage_for") and _defaults.missing_settings(args.command_parser, args):
        try:
            args = _with_params_defaults(parser, argv, args)
        except PointSDError as err:
            return _fail(args, f"error: {err}", EXIT_USER)
    # transformers warns on import that torchvision is missing (it falls back to PIL): not our user's concern.
    logging.getLogger("transformers.utils.import_utils").setLevel(logging.ERROR)
    git_commit()
    try:
        with _output_ready(args):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        return _fail(args, f"interrupted; {_resume_hint(args)}", EXIT_INTERRUPTED)
    except RunStopped as stop:
        return _fail(args, str(stop), EXIT_STOPPED)
    except PointSDError as err:
        if args.debug:
            raise
        return _fail(args, f"error: {err}", EXIT_USER)
    except Exception as err:  # the one place where every other failure becomes one line
        if args.debug:
            raise
        return _fail(args, *_explain(err, args))


def _with_params_defaults(parser: argparse.ArgumentParser, argv: list[str],
                          args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with every value not given taken from params.yaml (:mod:`pointsd.cli._defaults`);
    a setting still without a value is a usage error naming it. Called only when a setting is missing:
    a command given every setting (the pipeline's, a test's) reads no params file, so its ``--profile``
    may be any label."""
    command = args.command_parser
    words, source = _defaults.stage_defaults(args, _defaults.given_flags(command, args))
    if words:
        args = parser.parse_args([*argv, *words])
    missing = _defaults.missing_settings(command, args)
    if missing:
        where = f"not in {source}" if source else "and no params.yaml to take them from (pass --params FILE)"
        command.error(f"{', '.join(missing)}: not given, {where}")
    return args


def _explain(err: Exception, args: argparse.Namespace) -> tuple[str, int]:
    """The one line and the exit code for a failure that is not a :class:`PointSDError`."""
    if is_write_refusal(err):
        where = getattr(err, "filename", None) or getattr(args, "out", None) or "the output folder"
        return f"error: {write_error(where, err)}", EXIT_USER
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":  # torch's, without importing it
        return (f"error: out of memory ({first_line(err)}); lower --batch-size (and --eval-batch-size), "
                "or use a machine with more memory"), EXIT_USER
    if isinstance(err, OSError) and err.filename:
        return f"error: {err.filename}: {err.strerror}", EXIT_USER
    return (f"unexpected error: {type(err).__name__}: {first_line(err)} "
            f"(pointsd --debug {args.command} ... shows the traceback)"), EXIT_INTERNAL


@contextlib.contextmanager
def _output_ready(args: argparse.Namespace) -> Iterator[None]:
    """Around a command: a training run's folder locked (main process only: :mod:`pointsd.utils.run_lock`),
    then what a killed earlier run of this job left removed (its temporaries beside ``--out`` and inside it)."""
    out = getattr(args, "out", None)
    if out is None:
        yield
        return
    out = Path(out)
    if getattr(args, "run_folder", False):
        if not is_main_rank():  # the main process cleans and writes
            yield
            return
        with run_lock(out):
            _clean_leftovers(out)
            yield
        return
    _clean_leftovers(out)
    yield


def _clean_leftovers(out: Path) -> None:
    """Remove what a killed earlier run of this job left: its temporaries beside ``out``, inside it and
    inside its work folders (:mod:`pointsd.utils.staging`)."""
    atomic.clean_interrupted(out.parent, target=out.name)
    for folder in [out, *staging.partials(out)]:
        if folder.is_dir():
            atomic.clean_interrupted(folder)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    """Print ``pointsd COMMAND: message`` as one line on stderr; return ``code``."""
    print(f"pointsd {args.command}: {' '.join(message.split())}", file=sys.stderr)
    return code


def _resume_hint(args: argparse.Namespace) -> str:
    """What to do after Ctrl-C: resume from the run folder's state, or simply run again."""
    out = getattr(args, "out", None)
    saved = [p / "state" / "last.pt" for p in staging.partials(Path(out))] if out is not None else []
    state = next((p for p in saved if p.is_file()), None)
    if state is not None:
        return f"progress is saved in {state}; rerun the same command to resume"
    return "nothing half-written is kept; rerun the same command to start again"


if __name__ == "__main__":
    sys.exit(main())

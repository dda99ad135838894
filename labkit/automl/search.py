"""``run_search``: the best int8 model for a board budget, found by an Optuna study.

Each trial: the sampler proposes a candidate (:mod:`labkit.automl.space`); the kit measures it
as linked for the board *before training* (:mod:`labkit.automl.costs`); a candidate over the
budget is recorded with its figures and never trained; one that fits is trained (a pruner stops
hopeless ones after an epoch), converted to int8 and scored by its int8 accuracy on a validation
split. Optuna's constrained optimisation (``trial.set_constraint``, which replaced
``constraints_func`` in Optuna 5) sees the measured figures, so TPE / NSGA-II learn where the
feasible region is. The study lives in an RDB storage (an SQLite file in the output folder by
default, PostgreSQL for a study shared by a class), so a killed search resumes where it stopped.
The final stage retrains the best candidate on all the training data, converts it, and verifies
the C bit for bit on the host and the emulated Cortex-M4.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labkit.automl.budget import Budget, netscore
from labkit.automl.costs import input_bytes, measure_candidate
from labkit.automl.space import check_families, suggest_model
from labkit.errors import DatasetError, LabkitError

FINISHED = ("COMPLETE", "PRUNED")
SAMPLERS = ("tpe", "random", "nsga2")
KEY = "labkit"  # the study's user attribute describing what it was made for
MARKER = ".labkit-search"  # in an output folder the search made (it writes only into such folders)


class SearchInterrupted(LabkitError):
    """Ctrl-C: the search stopped after recording (or discarding) the running trial."""


def check_data(x: np.ndarray, y: np.ndarray, what: str = "data") -> None:
    """Samples and labels a classifier search can use, or a DatasetError saying what is wrong."""
    if x.ndim not in (2, 3, 4):
        raise DatasetError(f"{what}: 'x' has shape {x.shape}; expected feature vectors (N, features), sensor windows "
                           "(N, time, channels) or images (N, height, width, channels)")
    if len(x) != len(y):
        raise DatasetError(f"{what}: 'x' has {len(x)} samples but 'y' has {len(y)}")
    if not np.all(np.isfinite(x)):
        raise DatasetError(f"{what}: 'x' holds NaN or infinite values; clean or drop those samples")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DatasetError(f"{what}: every label is {classes[0] if len(classes) else 'missing'}: a classifier needs "
                           "samples of at least two classes")
    if classes.min() < 0:
        raise DatasetError(f"{what}: labels must be class indices 0, 1, 2 ..., got {classes.min()}")
    if counts.min() < 4:
        raise DatasetError(f"{what}: class {classes[np.argmin(counts)]} has only {counts.min()} samples; each class "
                           "needs at least 4 (some for training, some for the validation split)")


def fingerprint(x: np.ndarray, y: np.ndarray) -> dict:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x, np.float32).tobytes())
    h.update(np.ascontiguousarray(y, np.int64).tobytes())
    return {"input_shape": list(map(int, x.shape[1:])), "classes": int(y.max()) + 1, "samples": int(len(x)),
            "sha256": h.hexdigest()[:16]}


def redact(url: str) -> str:
    """The storage URL without its password."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def open_storage(url: str):
    """Optuna's RDB storage at ``url``, with heartbeats so that a killed worker's trial is failed, not kept running."""
    import optuna

    engine_kwargs = {}
    if url.startswith(("postgresql://", "postgres://")):
        # SQLAlchemy 2.1 picks psycopg (3) for a bare postgresql:// URL; the kit ships psycopg2-binary
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif url.startswith("postgresql"):
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    import warnings

    error: Exception | None = None
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=5,
                                                  grace_period=20)
        except Exception as e:  # sqlalchemy's OperationalError, ArgumentError, a missing driver ...
            error = e
            # two workers creating the tables of a new database at once: the loser's CREATE fails
            # on a unique index, and a second try finds the tables there
            if "UniqueViolation" not in str(e) and "already exists" not in str(e):
                break
            time.sleep(0.5 + attempt)
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise LabkitError(f"cannot open the study storage {redact(url)}: {first}. Check that the database server "
                      "is running and the URL is right (postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or "
                      "sqlite:///path/study.db)") from None


@dataclass
class _State:
    stop: bool = False


def _trial_row(t) -> dict:
    row = {"number": t.number, "state": t.state.name}
    ua = t.user_attrs
    for k in ("family", "worker", "fits", "reason", "int8_accuracy", "float_accuracy", "flash_bytes", "ram_bytes",
              "instructions", "macs", "params", "netscore", "measure_seconds", "train_seconds"):
        row[k] = ua.get(k)
    row["seconds"] = (t.duration.total_seconds() if t.duration is not None else None)
    row.update({f"param_{k}": v for k, v in t.params.items()})
    return row


def finished_trials(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name in FINISHED]


def _feasible(t) -> bool:
    return t.state.name == "COMPLETE" and bool(t.user_attrs.get("fits")) and t.user_attrs.get("int8_accuracy") is not None


def best_trial(trials):
    """The feasible trial with the highest int8 accuracy (then less flash, then fewer instructions)."""
    ok = [t for t in trials if _feasible(t)]
    if not ok:
        return None
    return max(ok, key=lambda t: (t.user_attrs["int8_accuracy"], -(t.user_attrs.get("flash_bytes") or 0),
                                  -(t.user_attrs.get("instructions") or 0)))


def pareto_front(trials) -> list:
    """Feasible trials that no other feasible trial beats in int8 accuracy, flash and instructions at once."""
    ok = [t for t in trials if _feasible(t)]

    def key(t):
        ua = t.user_attrs
        return (-ua["int8_accuracy"], ua.get("flash_bytes") or 0, ua.get("instructions") or 0)

    front = []
    for t in ok:
        a = key(t)
        if not any(all(bi <= ai for ai, bi in zip(a, key(o))) and key(o) != a for o in ok):
            front.append(t)
    return sorted(front, key=lambda t: t.user_attrs.get("flash_bytes") or 0)


def plot_pareto(trials, budget: Budget, path: Path) -> None:
    """int8 accuracy against flash, coloured by instructions; the Pareto front joined; the flash limit."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from labkit.fileio import write_atomic

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ok = [t for t in trials if _feasible(t)]
    over = [t for t in trials if t.state.name == "COMPLETE" and not t.user_attrs.get("fits")
            and t.user_attrs.get("flash_bytes")]
    if over:
        ax.scatter([t.user_attrs["flash_bytes"] for t in over], [0.0] * len(over), marker="x", color="0.6",
                   label="over the budget (not trained)")
    if ok:
        sc = ax.scatter([t.user_attrs["flash_bytes"] for t in ok], [t.user_attrs["int8_accuracy"] for t in ok],
                        c=[t.user_attrs.get("instructions") or 0 for t in ok], cmap="viridis", label="fits")
        fig.colorbar(sc, ax=ax, label="instructions per inference")
        front = pareto_front(trials)
        ax.plot([t.user_attrs["flash_bytes"] for t in front], [t.user_attrs["int8_accuracy"] for t in front],
                color="crimson", lw=1.5, label="Pareto front")
    ax.axvline(budget.flash_bytes, color="k", ls="--", lw=1, label="flash limit")
    ax.set_xlabel("flash (bytes, as linked for the nRF52840)")
    ax.set_ylabel("int8 accuracy (validation)")
    fits = sum(bool(t.user_attrs.get("fits")) for t in trials)
    ax.set_title(f"{len(trials)} trials: {fits} fit the budget, {len(ok)} of them trained to the end")
    ax.legend(loc="lower right", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    write_atomic(path, buf.getvalue())


def write_trials_csv(trials, path: Path) -> None:
    import pandas as pd

    from labkit.fileio import write_atomic

    write_atomic(path, pd.DataFrame([_trial_row(t) for t in trials]).to_csv(index=False))


def _format_trial(t, k: int, total: int | None, best) -> str:
    ua = t.user_attrs
    head = (f"trial {k} of {total}" if total else f"trial {k}") + f" (#{t.number})"
    fam = ua.get("family", t.params.get("family", "?"))
    if t.state.name == "PRUNED":
        what = f"{fam}: fits, stopped early by the pruner"
    elif t.state.name != "COMPLETE":
        what = f"{fam}: {t.state.name.lower()}"
    elif not ua.get("fits"):
        what = f"{fam}: does not fit: {ua.get('reason')}"
    else:
        what = (f"{fam}: fits (flash {ua['flash_bytes']:,} B, RAM {ua['ram_bytes']:,} B, "
                f"{ua['instructions']:,} instructions), int8 accuracy {ua['int8_accuracy']:.4f}"
                if ua.get("instructions") is not None else
                f"{fam}: fits (flash {ua['flash_bytes']:,} B, RAM {ua['ram_bytes']:,} B), int8 accuracy "
                f"{ua['int8_accuracy']:.4f}")
    so_far = (f"best so far {best.user_attrs['int8_accuracy']:.4f} (#{best.number})" if best is not None
              else "no candidate fits yet")
    return f"{head}: {what}; {so_far}"


def run_search(
    x: np.ndarray,
    y: np.ndarray,
    budget: Budget,
    out,
    *,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    families=None,
    trials: int | None = 20,
    minutes: float | None = None,
    max_epochs: int = 20,
    seed: int = 0,
    storage: str | None = None,
    study_name: str = "labkit-search",
    sampler: str = "tpe",
    multi_objective: bool = False,
    final: bool = True,
    qat: bool | None = False,
    trial_samples: int | None = None,
    verify_samples: int = 50,
    log=print,
) -> dict:
    """Search ``families`` for the int8 classifier of (``x``, ``y``) with the best validation accuracy
    that fits ``budget``; write ``out``/best.keras, best.tflite, trials.csv, pareto.png, report.json.

    ``trials``: finished trials the study should hold in all (a resumed or shared study counts
    the ones already there); ``minutes``: stop starting new trials after that long (either or both).
    ``sampler``: "tpe" (default; NSGA-II when ``multi_objective``), "random" or "nsga2".
    ``multi_objective``: maximise int8 accuracy and minimise flash and instructions together (the
    Pareto front) instead of accuracy alone. ``trial_samples``: train each trial on at most this
    many samples of the training split (a stratified subset: a proxy that ranks candidates for a
    fraction of the time on large data; the final stage trains on everything). ``qat``: in the
    final stage, False (default) post-training quantization, True quantization-aware fine-tuning,
    None both and the better on the validation split. Returns the report.
    """
    import optuna

    t_start = time.monotonic()
    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"'y' must hold integer class indices, got dtype {y.dtype}")
    check_data(x, y, "training data")
    input_shape = tuple(int(d) for d in x.shape[1:])
    if x_test is not None:
        x_test = np.asarray(x_test, np.float32)
        if tuple(x_test.shape[1:]) != input_shape:
            raise DatasetError(f"test data: samples of shape {tuple(x_test.shape[1:])}, the training data's are "
                               f"{input_shape}")
    families = check_families(families, input_shape)
    if trials is None and minutes is None:
        raise LabkitError("give a number of trials or a time limit in minutes (or both)")
    if sampler not in SAMPLERS:
        raise LabkitError(f"sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
    need = input_bytes(input_shape)
    if budget.ram_bytes < need:
        raise LabkitError(f"a RAM budget of {budget.ram_bytes:,} B is below the int8 input alone ({need:,} B for "
                          f"samples of shape {input_shape}): no model fits; raise --ram or use smaller inputs "
                          "(shorter windows, fewer channels, smaller images)")
    n_classes = int(y.max()) + 1
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LabkitError(f"--out {out} is a file; give a folder (it is created if missing)")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise LabkitError(f"--out {out} is not empty and was not written by labkit search; nothing was changed. "
                          "Give a new or empty folder, or the folder of an earlier search to resume it")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).exists():
        from labkit.fileio import write_atomic

        write_atomic(out / MARKER, "written by labkit search: the same command resumes its study and may overwrite "
                                   "best.keras, best.tflite, trials.csv, pareto.png, report.json\n")
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"

    settings = {"data": fingerprint(x, y), "budget": budget.as_dict(), "families": list(families),
                "multi_objective": bool(multi_objective), "max_epochs": int(max_epochs), "seed": int(seed),
                "trial_samples": None if trial_samples is None else int(trial_samples)}

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(url)
    directions = ["maximize", "minimize", "minimize"] if multi_objective else ["maximize"]
    try:
        existing = {s.study_name: s for s in optuna.get_all_study_summaries(store, include_best_trial=False)}
    except Exception as e:
        raise LabkitError(f"cannot read the studies in {redact(url)}: {str(e).splitlines()[0]}") from None
    if study_name in existing:
        made_for = existing[study_name].user_attrs.get(KEY)
        if made_for is None and existing[study_name].n_trials == 0:
            made_for = settings  # another worker is creating it this very moment
        if made_for is None:
            raise LabkitError(f"study {study_name!r} in {redact(url)} was not made by labkit search; choose another "
                              "--study name")
        for k, label in (("data", "other data"), ("budget", "another budget"), ("families", "other families"),
                         ("multi_objective", "another objective"), ("max_epochs", "another --epochs"),
                         ("trial_samples", "another --trial-samples")):
            if made_for.get(k) != settings[k]:
                raise LabkitError(
                    f"study {study_name!r} in {redact(url)} was made for {label} ({k}: {made_for.get(k)}, now "
                    f"{settings[k]}); resume it with the same data and options, or start a new one with another "
                    "--study name or --out folder")

    n_existing = existing[study_name].n_trials if study_name in existing else 0
    shared = storage is not None and not url.startswith("sqlite")
    sampler_seed = seed + 1000 * n_existing + (os.getpid() % 1000 if shared else 0)
    startup = max(3, min(10, (trials or 30) // 3))
    if sampler == "random":
        smp = optuna.samplers.RandomSampler(seed=sampler_seed)
    elif sampler == "nsga2" or multi_objective:
        smp = optuna.samplers.NSGAIISampler(seed=sampler_seed, population_size=max(4, min(50, (trials or 60) // 3)))
    else:
        smp = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=startup)
    pruner = (optuna.pruners.NopPruner() if multi_objective
              else optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, max_epochs // 4)))
    study = optuna.create_study(storage=store, sampler=smp, pruner=pruner, study_name=study_name,
                                directions=directions, load_if_exists=True)
    if KEY not in study.user_attrs:
        study.set_user_attr(KEY, settings)
    # one validation split for the whole study: the one of the seed it was made with (a worker's
    # own --seed then changes only its sampler's and its trainings' random numbers)
    from sklearn.model_selection import train_test_split

    split_seed = int(study.user_attrs.get(KEY, settings).get("seed", seed))
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=0.2, stratify=y, random_state=split_seed)
    x_fit, y_fit = x_tr, y_tr  # what each trial trains on
    if trial_samples is not None and trial_samples < len(x_tr):
        if trial_samples < 2 * n_classes:
            raise LabkitError(f"--trial-samples {trial_samples}: too few for {n_classes} classes; give at least "
                              f"{2 * n_classes} (or leave it out to train trials on all {len(x_tr):,})")
        x_fit, _, y_fit, _ = train_test_split(x_tr, y_tr, train_size=int(trial_samples), stratify=y_tr,
                                              random_state=split_seed)

    x_repr = x_tr[:64]
    import socket

    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial):
        from labkit.keras import keras
        from labkit.compress.quantize import evaluate_tflite, to_int8_tflite
        from labkit.train import accuracy, fit_classifier, set_seed

        keras.backend.clear_session()
        set_seed(seed + trial.number)
        cand = suggest_model(trial, input_shape, n_classes, families, max_epochs)
        fig = measure_candidate(cand.model, x_repr, budget, instructions=True, seed=seed)
        trial.set_user_attr("family", cand.family)
        trial.set_user_attr("worker", worker)
        for k in ("params", "macs", "flash_bytes", "ram_bytes", "instructions", "arena_bytes", "fits", "reason",
                  "measure_seconds"):
            trial.set_user_attr(k, fig[k])
        for name, value in budget.constraints(fig).items():  # Optuna's constrained optimisation: <= 0 fits
            trial.set_constraint(name, value)
        if not fig["fits"]:
            trial.set_user_attr("int8_accuracy", None)
            if multi_objective:
                return 0.0, float(fig["flash_bytes"] or 2 * budget.flash_bytes), float(fig["instructions"] or 1e12)
            return 0.0
        t0 = time.monotonic()
        pruned = {"at": None}

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if multi_objective:
                    return
                trial.report(float((logs or {}).get("val_accuracy", 0.0)), epoch)
                if trial.should_prune():
                    pruned["at"] = epoch
                    self.model.stop_training = True

        fit_classifier(cand.model, x_fit, y_fit, epochs=cand.epochs, batch_size=cand.batch_size,
                       learning_rate=cand.learning_rate, validation_data=(x_val, y_val), seed=seed + trial.number,
                       callbacks=[Report()])
        trial.set_user_attr("train_seconds", round(time.monotonic() - t0, 2))
        if pruned["at"] is not None:
            raise optuna.TrialPruned(f"validation accuracy after epoch {pruned['at'] + 1} below the median")
        float_acc = accuracy(cand.model, x_val, y_val)
        tflite = to_int8_tflite(cand.model, x_tr, seed=seed)
        acc = evaluate_tflite(tflite, x_val, y_val)
        trial.set_user_attr("float_accuracy", float_acc)
        trial.set_user_attr("int8_accuracy", acc)
        trial.set_user_attr("netscore", netscore(acc, fig["params"], fig["macs"]))
        if multi_objective:
            return acc, float(fig["flash_bytes"]), float(fig["instructions"])
        return acc

    state = _State()

    def progress(study_, trial) -> None:
        done = finished_trials(study_)
        if trial.state.name in FINISHED:
            log(_format_trial(trial, len(done), trials, best_trial(done)))
        if state.stop or (trials is not None and len(done) >= trials):
            study_.stop()

    def on_sigint(signum, frame):
        state.stop = True
        log("Ctrl-C: the search stops after the running trial is recorded (Ctrl-C again discards it)")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    done = finished_trials(study)
    remaining = None if trials is None else trials - len(done)
    if done:
        log(f"resuming study {study_name!r} ({redact(url)}): {len(done)} finished trials")
    old = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    try:
        if remaining is None or remaining > 0:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # a killed worker's trial: failed, not left running
            try:
                study.optimize(objective, n_trials=remaining, timeout=None if minutes is None else minutes * 60,
                               callbacks=[progress], catch=())
            except Exception:
                if not state.stop:
                    raise
                # Ctrl-C in a terminal reaches the compiler or QEMU of the running trial too: Optuna
                # records that trial as failed (discarded); the finished ones are all in the study
                log("the running trial was discarded")
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    all_trials = study.get_trials(deepcopy=False)
    done = finished_trials(study)
    write_trials_csv(all_trials, out / "trials.csv")
    plot_pareto(done, budget, out / "pareto.png")
    if state.stop:
        raise SearchInterrupted(f"interrupted after {len(done)} finished trials (recorded in {redact(url)}); "
                                "run the same command again to resume")
    best = best_trial(done)
    report = {
        "int8_accuracy": None, "float_accuracy": None, "accuracy_on": None, "flash_bytes": None, "ram_bytes": None,
        "instructions": None, "macs": None, "params": None, "netscore": None, "bit_exact": None, "verified_on": None,
        "trials": len(done), "feasible_trials": sum(bool(t.user_attrs.get("fits")) for t in done),
        "trained_trials": sum(_feasible(t) for t in done),
        "pruned_trials": sum(t.state.name == "PRUNED" for t in done),
        "infeasible_trials": sum(t.state.name == "COMPLETE" and not t.user_attrs.get("fits") for t in done),
        "best_trial": None, "pareto_trials": [t.number for t in pareto_front(done)],
        "seconds": None, "budget": budget.as_dict(), "study": study_name, "storage": redact(url),
        "sampler": type(smp).__name__, "qat": {None: "auto", True: "yes", False: "no"}[qat],
        "trial_samples": len(x_fit),
    }
    if best is None and not final:
        log(f"{len(done)} finished trials in the study, none fits the budget yet")
        report["seconds"] = round(time.monotonic() - t_start, 1)
        from labkit.fileio import write_json

        write_json(out / "report.json", report)
        return report
    if best is None:
        report["seconds"] = round(time.monotonic() - t_start, 1)
        from labkit.fileio import write_json

        write_json(out / "report.json", report)
        measured = [t.user_attrs for t in done if t.user_attrs.get("flash_bytes")]
        smallest = (f"; the smallest measured: flash {min(u['flash_bytes'] for u in measured):,} B, RAM "
                    f"{min(u['ram_bytes'] for u in measured):,} B" if measured else "")
        raise LabkitError(f"none of the {len(done)} candidates fits flash {budget.flash_bytes:,} B, RAM "
                          f"{budget.ram_bytes:,} B" + (f", {budget.instructions:,} instructions" if budget.instructions
                                                       else "") + smallest +
                          ": raise the budget, run more --trials, or try other --family")
    report["best_trial"] = {"number": best.number, "family": best.user_attrs.get("family"), "params": best.params,
                            "validation_int8_accuracy": best.user_attrs["int8_accuracy"]}
    if not final:
        log(f"{len(done)} finished trials in the study; final stage left out (run without --no-final for it)")
    elif _up_to_date(out, report):
        log(f"the final stage of trial {best.number} is in {out} already (report.json, best.keras, best.tflite)")
        previous = json.loads((out / "report.json").read_text())
        report.update({k: previous.get(k) for k in FINAL_KEYS})
    else:
        report.update(final_stage(best, x, y, x_tr, x_val, y_val, x_test, y_test, input_shape, n_classes, families,
                                  max_epochs, seed, out, verify_samples, log, qat=qat))
    report["seconds"] = round(time.monotonic() - t_start, 1)
    from labkit.fileio import write_json

    write_json(out / "report.json", report)
    return report


FINAL_KEYS = ("float_accuracy", "int8_accuracy", "accuracy_on", "flash_bytes", "ram_bytes", "instructions", "macs",
              "params", "netscore", "bit_exact", "verified_on", "verify_samples", "tflite_bytes", "tflite_sha256",
              "quantization")


def _up_to_date(out: Path, report: dict) -> bool:
    """True when ``out`` holds the final stage of this very study state (same best trial, same trials, same budget)."""
    try:
        previous = json.loads((out / "report.json").read_text())
        tflite = (out / "best.tflite").read_bytes()
    except (OSError, ValueError):
        return False
    same = all(previous.get(k) == report[k] for k in ("best_trial", "trials", "budget", "study", "storage", "qat"))
    return (same and (out / "best.keras").is_file() and previous.get("bit_exact") is not None
            and previous.get("tflite_sha256") == hashlib.sha256(tflite).hexdigest())


def final_stage(best, x, y, x_tr, x_val, y_val, x_test, y_test, input_shape, n_classes, families, max_epochs, seed,
                out: Path, verify_samples: int, log, qat: bool | None = False) -> dict:
    """Retrain the best candidate on all training data, convert to int8 (post-training, or
    quantization-aware fine-tuning per ``qat``: see :func:`run_search`), verify its C on host and Cortex-M4."""
    import optuna

    from labkit.compress.quantize import evaluate_tflite, quantize, to_int8_tflite
    from labkit.fileio import save_keras_model, write_atomic
    from labkit.keras import keras
    from labkit.reference import io_details
    from labkit.train import accuracy, fit_classifier, set_seed
    from labkit.verify import verify

    log(f"final stage: retraining trial {best.number} ({best.user_attrs.get('family')}) on all {len(x)} training "
        "samples")
    keras.backend.clear_session()
    set_seed(seed + best.number)
    cand = suggest_model(optuna.trial.FixedTrial(best.params), input_shape, n_classes, families, max_epochs)
    fit_classifier(cand.model, x, y, epochs=cand.epochs, batch_size=cand.batch_size, learning_rate=cand.learning_rate,
                   seed=seed + best.number)
    tflite = to_int8_tflite(cand.model, x, seed=seed)
    if qat is not False:
        from labkit.compress.qat import prefer_qat

        log("final stage: quantization-aware fine-tuning" + (" (kept if better on the validation split)"
                                                              if qat is None else ""))
        tflite, used_qat = prefer_qat(cand.model, tflite, x, y, x_val, y_val, qat=qat,
                                      epochs=max(1, cand.epochs // 4), seed=seed, log=log)
    else:
        used_qat = False
    if x_test is not None:
        ex, ey, on = x_test, y_test, "test"
    else:
        ex, ey, on = x_val, y_val, "validation split (also trained on in the final stage: give --test for an unbiased figure)"
    result = {"float_accuracy": accuracy(cand.model, ex, ey), "int8_accuracy": evaluate_tflite(tflite, ex, ey),
              "accuracy_on": on}
    save_keras_model(cand.model, out / "best.keras")
    write_atomic(out / "best.tflite", tflite)
    (inp,), _ = io_details(tflite)
    inputs = quantize(ex[:verify_samples], inp.scale, inp.zero_point)
    log(f"verifying best.tflite's C on the host and the emulated Cortex-M4 ({len(inputs)} samples)")
    host = verify(tflite, inputs=inputs, target="host")  # both references: TFLite Micro's and LiteRT's arithmetic
    m4 = verify(tflite, inputs=inputs, target="cortex-m4", references=("tflm",))  # the C a sketch ships
    from labkit.measure import count_macs

    params, macs = int(cand.model.count_params()), int(count_macs(cand.model))
    result.update({
        "flash_bytes": int(m4.metrics["flash_bytes"]), "ram_bytes": int(m4.metrics["ram_bytes"]),
        "instructions": int(m4.metrics["instructions"]), "macs": macs, "params": params,
        "netscore": netscore(result["int8_accuracy"], params, macs),
        "bit_exact": bool(host.bit_exact and m4.bit_exact), "verified_on": "host+cortex-m4",
        "verify_samples": len(inputs), "tflite_bytes": len(tflite),
        "tflite_sha256": hashlib.sha256(tflite).hexdigest(),
        "quantization": "quantization-aware" if used_qat else "post-training",
    })
    if not result["bit_exact"]:
        log("warning: the generated C does not match the reference interpreters on this model: please report it")
    return result

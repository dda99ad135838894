"""Continuous recognition: gestures found in an endless stream of IMU readings, not only in
windows cut by the 2.5 g trigger.

A ring buffer keeps the last ``window`` readings (already quantized, as the board keeps them);
every ``hop`` readings the model scores that window, and a small state machine turns the
scores into events:

  1. the window's class is the first largest score (argmax, as the sketch computes it);
     it counts only if it is not the idle class and its int8 score is at least the
     threshold (``threshold_q``, the float threshold as an int8 score, rounded up);
  2. debouncing: a class must win ``debounce`` consecutive hops before it becomes an event,
     and one unbroken run of hops gives at most one event (no repeat until something else,
     idle included, wins a hop);
  3. refractory period: the ``refractory`` hops after an event make no event (a run that
     is still going when they end gives its event then).

Everything the rule compares is an integer (int8 scores, counters), so the gesture sketch's
continuous mode (``labkit sketch --mode continuous``) makes exactly the same decisions as
:class:`StreamRecognizer` on the int8 model: same events, same sample indices. A float
Keras model can be used too (scores compared as floats), to try the rule before quantizing;
only the int8 path is what the board runs.

Sample indices: an event's ``sample`` is the number of readings taken when it was decided
(the window is readings ``sample - window`` .. ``sample - 1``); ``start`` is that window's
first reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from labkit.errors import LabkitError

EVENT_COLUMNS = ("sample", "start", "label", "score", "score_q")


def quantize_readings(normalized: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float32 readings (already divided by the sensor's full scale) to int8 exactly as the
    sketch's ``quantize()`` does: float32 division by the input scale, ``lroundf`` (half away
    from zero), plus the zero point, clamped. The rounding is done in float64 on the float32
    quotient, which is exact, so no tie rounds differently from C."""
    v = (np.asarray(normalized, np.float32) / np.float32(scale)).astype(np.float64)
    r = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def threshold_q(threshold: float, scale: float, zero_point: int) -> int:
    """The smallest int8 score whose value ``(q - zero_point) * scale`` reaches ``threshold``.

    The decision ``q >= threshold_q`` then means "score >= threshold" for every int8 score,
    and the sketch compares the same integer."""
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise LabkitError(f"threshold must be a number, got {threshold!r}")
    q = math.ceil(threshold / scale - 1e-9) + zero_point  # 1e-9: an exact multiple of the scale stays itself
    while q > -128 and (q - 1 - zero_point) * scale >= threshold:
        q -= 1
    while q <= 127 and (q - zero_point) * scale < threshold:
        q += 1
    if q > 127:
        top = (127 - zero_point) * scale
        raise LabkitError(f"threshold {threshold} is above the largest score the model can give ({top:.4f}): "
                          "lower it")
    return max(int(q), -128)


@dataclass(frozen=True)
class StreamConfig:
    """The continuous-recognition settings, shared by Python and the generated sketch."""

    window: int  # readings per window (the model's input length)
    hop: int  # readings between two inferences
    threshold_q: int  # int8 score the winning class needs (or, for a float model, see threshold)
    debounce: int  # consecutive hops a class must win
    refractory: int  # hops after an event during which no other event is made
    idle: int  # index of the idle class, -1: none
    threshold: float = 0.0  # the float threshold threshold_q was made from


def check_config(window: int, hop: int, debounce: int, refractory: int | None) -> int:
    """Validate the integer settings; returns the refractory period in hops (default: one window)."""
    for what, v in (("window", window), ("hop", hop), ("debounce", debounce)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise LabkitError(f"{what} must be a whole number >= 1, got {v!r}")
    if hop > window:
        raise LabkitError(f"hop {hop} is longer than the window {window}: readings between windows would never "
                          "be looked at; use a hop of at most the window (e.g. a tenth of it)")
    if refractory is None:
        refractory = -(-window // hop)  # about one window: one gesture, one event
    if not isinstance(refractory, (int, np.integer)) or isinstance(refractory, bool) or refractory < 0:
        raise LabkitError(f"refractory must be a whole number of hops >= 0, got {refractory!r}")
    if max(window, hop, debounce, refractory) >= 2**15:
        raise LabkitError("window, hop, debounce and refractory must each be below 32768 (the sketch's counters)")
    return int(refractory)


class Debouncer:
    """The decision rule of the module docstring, one hop at a time (the sketch's ``decide()``)."""

    def __init__(self, debounce: int, refractory: int, idle: int):
        self.debounce, self.refractory, self.idle = debounce, refractory, idle
        self.reset()

    def reset(self) -> None:
        self.candidate, self.run, self.fired, self.cooldown = -1, 0, False, 0

    def step(self, best: int, confident: bool) -> int:
        """The class to report for this hop, or -1."""
        label = best if confident and best != self.idle else -1
        if label == self.candidate:
            if label >= 0:
                self.run += 1
        else:
            self.candidate, self.run, self.fired = label, (1 if label >= 0 else 0), False
        if self.cooldown > 0:  # within the refractory period: no event this hop
            self.cooldown -= 1
        elif self.candidate >= 0 and not self.fired and self.run >= self.debounce:
            self.fired, self.cooldown = True, self.refractory
            return self.candidate
        return -1


class StreamRecognizer:
    """Sliding-window recognition over a stream of IMU readings (n, 6: aX, aY, aZ in g, gX, gY,
    gZ in deg/s), with a confidence threshold and debouncing.

    ``model``: an int8 ``.tflite`` (bytes or path), run by the reference interpreter
    ``reference`` (TFLite Micro by default, bit-exact with the board's C), or a float Keras
    model. ``labels``: one name per model output; ``idle``: the name of the class that means
    "no gesture" (ignored if absent from ``labels``). ``threshold``: the score the winning
    class needs (softmax scores: 0..1). ``hop``, ``debounce`` and ``refractory`` (hops; default
    one window) as in the module docstring.

    :meth:`push` takes readings as they come and returns the events they complete; the
    recogniser keeps only the last ``window - 1`` readings between calls (constant memory).
    :meth:`run` resets and recognises a whole recorded stream.
    """

    def __init__(self, model, labels: Sequence[str], hop: int = 10, threshold: float = 0.8, debounce: int = 2,
                 refractory: int | None = None, idle: str = "idle", reference: str = "tflm"):
        from labkit.datasets.gestures import FULL_SCALE

        self.labels = [str(l) for l in labels]
        self._full_scale = np.asarray(FULL_SCALE, np.float32)
        self._keras = not isinstance(model, (bytes, bytearray, str)) and not hasattr(model, "__fspath__")
        if self._keras:
            shape = tuple(model.input_shape[1:])
            outputs = int(model.output_shape[-1])
            self.model, self.reference = model, "float"
            self.in_quant = self.out_quant = None
            thr_q = 0
        else:
            from labkit import reference as ref

            data = ref._as_bytes(model)
            (inp,), (out,) = ref.io_details(data)
            if inp.dtype != np.int8 or out.dtype != np.int8:
                raise LabkitError("the .tflite must have int8 input and output (labkit.compress.quantize."
                                  "to_int8_tflite makes one); for a float model pass the Keras model itself")
            if reference not in ref.REFERENCES:
                raise LabkitError(f"unknown reference {reference!r}: use one of {', '.join(ref.REFERENCES)}")
            shape, outputs = tuple(inp.shape[1:]), int(np.prod(out.shape[1:]))
            self.model, self.reference = data, reference
            self.in_quant, self.out_quant = (inp.scale, inp.zero_point), (out.scale, out.zero_point)
            thr_q = threshold_q(threshold, *self.out_quant)
        if len(shape) < 1 or int(np.prod(shape)) % 6 or int(np.prod(shape)) < 6:
            raise LabkitError(f"the model takes input of shape {list(shape)}; continuous recognition needs a window "
                              "of readings with 6 channels (aX,aY,aZ,gX,gY,gZ), e.g. 119 x 6")
        self._input_shape = shape
        window = int(np.prod(shape)) // 6
        if len(self.labels) != outputs:
            raise LabkitError(f"{len(self.labels)} labels given but the model has {outputs} outputs")
        if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise LabkitError(f"threshold must be a number, got {threshold!r}")
        refractory = check_config(window, hop, debounce, refractory)
        idle_index = self.labels.index(idle) if idle in self.labels else -1
        self.config = StreamConfig(window, int(hop), thr_q, int(debounce), refractory, idle_index, float(threshold))
        self._debouncer = Debouncer(self.config.debounce, refractory, idle_index)
        self.reset()

    # ---- the stream -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the readings and the debouncing state: the next reading is sample 0."""
        dtype = np.float32 if self._keras else np.int8
        self._tail = np.zeros((0, 6), dtype)  # the last window - 1 readings (quantized for an int8 model)
        self._count = 0  # readings taken so far
        self._debouncer.reset()

    def _prepare(self, readings: np.ndarray) -> np.ndarray:
        normalized = np.asarray(readings, np.float32) / self._full_scale
        return normalized if self._keras else quantize_readings(normalized, *self.in_quant)

    def push(self, readings: np.ndarray) -> list[dict]:
        """Feed the next readings (n, 6); returns the events they complete, oldest first."""
        from labkit.datacheck import check_samples

        readings = np.asarray(readings)
        if readings.ndim != 2 or readings.shape[1] != 6 or not np.issubdtype(readings.dtype, np.number):
            raise LabkitError(f"readings must be an array of shape (n, 6) (aX,aY,aZ,gX,gY,gZ), got shape "
                              f"{readings.shape} of {readings.dtype}")
        if len(readings) == 0:
            return []
        check_samples(readings.astype(np.float32), "the readings", harm="the model cannot score them")
        c = self.config
        data = np.concatenate([self._tail, self._prepare(readings)])
        first = self._count - len(self._tail)  # sample index of data[0]
        self._count += len(readings)
        # inferences after reading n (n = W, W + H, ...), for the readings just added
        ends = [n for n in range(max(c.window, first + len(self._tail) + 1), self._count + 1)
                if (n - c.window) % c.hop == 0]
        self._tail = data[max(len(data) - (c.window - 1), 0):]
        if not ends:
            return []
        windows = np.stack([data[n - c.window - first:n - first] for n in ends])
        scores = self._scores(windows)
        events = []
        for n, s in zip(ends, scores):
            best = int(np.argmax(s))  # the first largest, as the sketch's loop keeps it
            confident = (s[best] >= c.threshold) if self._keras else (int(s[best]) >= c.threshold_q)
            k = self._debouncer.step(best, bool(confident))
            if k >= 0:
                score = float(s[k]) if self._keras else float((int(s[k]) - self.out_quant[1]) * self.out_quant[0])
                events.append(dict(sample=n, start=n - c.window, label=self.labels[k], score=score,
                                   score_q=None if self._keras else int(s[k])))
        return events

    def _scores(self, windows: np.ndarray) -> np.ndarray:
        """Each window's scores: int8 from the reference interpreter, or the float model's."""
        batch = windows.reshape(len(windows), *self._input_shape)
        if self._keras:
            return np.asarray(self.model(batch, training=False), np.float32).reshape(len(windows), -1)
        from labkit import reference as ref

        return ref.run(self.model, batch, self.reference)[0].reshape(len(windows), -1)

    def run(self, stream: np.ndarray) -> pd.DataFrame:
        """Events found in a whole recorded stream (n, 6), from a fresh start: a DataFrame with
        columns sample, start, label, score, score_q (the int8 score; None for a float model)."""
        self.reset()
        return events_frame(self.push(stream))


def events_frame(events: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    return frame.astype({"sample": "int64", "start": "int64"}) if len(frame) else frame


def recognize(model, stream: np.ndarray, labels: Sequence[str], **settings) -> pd.DataFrame:
    """``StreamRecognizer(model, labels, **settings).run(stream)``: the events in a recorded stream."""
    return StreamRecognizer(model, labels, **settings).run(stream)


# ---- training data for it -----------------------------------------------------------------------


def stream_windows(stream: np.ndarray, truth, labels: Sequence[str], window: int = 119,
                   shifts: Sequence[int] = tuple(range(-20, 13, 4)), n_idle: int = 100, min_gap: int = 40,
                   idle: str = "idle", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training windows cut from a recorded stream the way the ring buffer sees it: ``(x, y)``.

    A window classifier trained only on trigger-aligned gestures meets other windows in a
    stream: the hop lands a few readings before or after a gesture's start, and most windows
    hold rest, or only the beginning or the end of a gesture. So, for every true gesture of
    ``truth`` (a DataFrame with ``start`` and ``label``, as :func:`labkit.datasets.make_gesture_stream`
    gives), a window starting at ``start + d`` for each ``d`` in ``shifts``, labelled with the
    gesture; and ``n_idle`` windows at random places whose start is at least ``min_gap``
    readings from every gesture's start, labelled ``idle`` — those that catch only part of a
    gesture teach the model to wait until the window holds it (one event per gesture).

    ``labels``: the model's class names (``y`` indexes them); ``idle`` must be one of them.
    Returns float32 ``(m, window, 6)`` readings as in the stream (not normalized) and int64 labels.
    """
    x = np.asarray(stream)
    if x.ndim != 2 or x.shape[1] != 6 or not np.issubdtype(x.dtype, np.number):
        raise LabkitError(f"stream must be an array of shape (n, 6) (aX,aY,aZ,gX,gY,gZ), got shape {x.shape}")
    labels = [str(l) for l in labels]
    if idle not in labels:
        raise LabkitError(f"the idle class {idle!r} is not among the labels {labels}; windows away from the "
                          "gestures need a class of their own")
    for what, v, lo in (("window", window, 1), ("n_idle", n_idle, 0), ("min_gap", min_gap, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise LabkitError(f"{what} must be a whole number >= {lo}, got {v!r}")
    if len(x) < window:
        raise LabkitError(f"the stream has {len(x)} readings, fewer than one window of {window}")
    if isinstance(truth, pd.DataFrame):
        if not {"start", "label"} <= set(truth.columns):
            raise LabkitError(f"truth needs columns 'start' and 'label', got {list(truth.columns)}")
        pairs = list(zip(truth["start"].astype(int), truth["label"].astype(str)))
    else:
        pairs = [(int(s), str(l)) for s, l in truth]
    unknown = sorted({l for _, l in pairs} - set(labels))
    if unknown:
        raise LabkitError(f"truth has gestures {unknown} that are not among the labels {labels}")
    shifts = [int(d) for d in shifts]
    xs, ys = [], []
    for start, label in pairs:
        for d in shifts:
            if 0 <= start + d <= len(x) - window:
                xs.append(x[start + d:start + d + window])
                ys.append(labels.index(label))
    starts = np.array([s for s, _ in pairs], dtype=np.int64)
    free = np.arange(len(x) - window + 1)
    if len(starts):
        free = free[np.abs(free[:, None] - starts[None, :]).min(axis=1) >= min_gap]
    if n_idle and not len(free):
        raise LabkitError(f"no window of the stream starts {min_gap} or more readings away from every gesture: "
                          "lower min_gap or record more rest")
    rng = np.random.default_rng(seed)
    for s in rng.choice(free, size=n_idle, replace=len(free) < n_idle) if n_idle else []:
        xs.append(x[s:s + window])
        ys.append(labels.index(idle))
    if not xs:
        return np.zeros((0, window, 6), np.float32), np.zeros(0, np.int64)
    return np.stack(xs).astype(np.float32), np.array(ys, dtype=np.int64)


# ---- how good is it ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamScore:
    hits: int  # true gestures found with the right label
    misses: int  # true gestures not found (or found only with a wrong label)
    false_alarms: int  # events that match no true gesture (wrong label included)
    minutes: float  # length of the stream
    false_alarms_per_minute: float

    @property
    def recall(self) -> float:
        return self.hits / max(self.hits + self.misses, 1)


def score_events(events: pd.DataFrame, truth, n_samples: int, window: int = 119, tolerance: int | None = None,
                 sample_rate_hz: float = 119.0) -> StreamScore:
    """Count hits, misses and false alarms of detected ``events`` against the true ones.

    ``truth``: the gestures in the stream, a DataFrame with columns ``start`` (the index of
    the gesture's first reading) and ``label``, or (start, label) pairs. An event matches a
    true gesture with the same label if the start of its window is within ``tolerance``
    readings (default: half a window) of the gesture's start; each true gesture matches at
    most one event (the earliest). ``n_samples`` and ``sample_rate_hz`` give the stream's
    length, for false alarms per minute.
    """
    if isinstance(truth, pd.DataFrame):
        if not {"start", "label"} <= set(truth.columns):
            raise LabkitError(f"truth needs columns 'start' and 'label', got {list(truth.columns)}")
        pairs = list(zip(truth["start"], truth["label"]))
    else:
        pairs = [tuple(p) for p in truth]
    missing = {"start", "label"} - set(events.columns)
    if missing:
        raise LabkitError(f"events need columns 'start' and 'label' (StreamRecognizer.run makes them), missing "
                          f"{sorted(missing)}")
    if n_samples < 1 or sample_rate_hz <= 0:
        raise LabkitError(f"n_samples must be >= 1 and sample_rate_hz > 0, got {n_samples} and {sample_rate_hz}")
    tol = window // 2 if tolerance is None else int(tolerance)
    truth_sorted = sorted((int(s), str(l)) for s, l in pairs)
    used = [False] * len(truth_sorted)
    hits = false_alarms = 0
    for start, label in sorted(zip(events["start"].astype(int), events["label"].astype(str))):
        match = next((i for i, (s, l) in enumerate(truth_sorted)
                      if not used[i] and l == label and abs(start - s) <= tol), None)
        if match is None:
            false_alarms += 1
        else:
            used[match] = True
            hits += 1
    minutes = n_samples / sample_rate_hz / 60.0
    return StreamScore(hits, len(truth_sorted) - hits, false_alarms, minutes, false_alarms / minutes)


# ---- recorded streams ----------------------------------------------------------------------------


def load_stream(path) -> tuple[np.ndarray, pd.DataFrame | None]:
    """A recorded stream of IMU readings (n, 6) and, if the file holds them, its true gestures.

    ``.csv``: a header ``aX,aY,aZ,gX,gY,gZ`` and one reading per row (g and deg/s).
    ``.npy``: an (n, 6) array. ``.npz``: an array ``x`` (n, 6), and optionally ``start`` and
    ``label`` (the true gestures: each one's first reading and its name)."""
    from pathlib import Path

    from labkit.datacheck import check_samples
    from labkit.datasets.gestures import CHANNELS, HEADER

    p = Path(path)
    if not p.is_file():
        raise LabkitError(f"{p}: no such file (a recorded stream: .csv with header {HEADER}, .npy or .npz)")
    truth = None
    try:
        if p.suffix.lower() == ".csv":
            frame = pd.read_csv(p)
            if [c.strip() for c in frame.columns] != list(CHANNELS):
                raise LabkitError(f"{p}: the header is {','.join(map(str, frame.columns))}; expected {HEADER}")
            x = frame.to_numpy()
        elif p.suffix.lower() in (".npy", ".npz"):
            data = np.load(p, allow_pickle=False)
            if isinstance(data, np.lib.npyio.NpzFile):
                if "x" not in data.files:
                    raise LabkitError(f"{p} holds arrays {data.files}; expected one named 'x' with the readings")
                x = data["x"]
                if "start" in data.files and "label" in data.files:
                    truth = pd.DataFrame({"start": data["start"].astype(np.int64), "label": data["label"].astype(str)})
            else:
                x = data
        else:
            raise LabkitError(f"{p}: a recorded stream is a .csv (header {HEADER}), .npy or .npz file")
    except (OSError, ValueError, pd.errors.ParserError) as e:
        hint = " (save text as a string array, e.g. label=np.array(labels, dtype=str))" if "pickle" in str(e) else ""
        raise LabkitError(f"cannot read {p}: {e}{hint}") from None
    if x.ndim != 2 or x.shape[1] != 6:
        raise LabkitError(f"{p}: the readings have shape {x.shape}; expected (n, 6) for {HEADER}")
    return check_samples(x, str(p), harm="the model cannot score them"), truth

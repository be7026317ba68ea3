"""Each view's main state in the address bar: a reload, back/forward or a link sent to someone opens the same view.

    from ui import urlstate
    urlstate.sync("latent_map")      # views.open_page does it: the URL's values in, the session's out

    ?run=tutorial&perplexity=40&seed=1&point=9999     (Latent map: run, T-SNE settings, the clicked digit)

Each parameter names one settings key of ui.settings (the widget's session key).
A parameter is read into the session the first time the session meets it (a
link, a reload: each opens a new session), and from then on the session's
values are written back, so the bar says what the page shows. Later values in
the bar are not read: the browser carries the bar's parameters into the next
view's address, and a click made before the last write arrived carried a
stale run (seen in the browser test, a run picked on Train replaced by the one
before it). Back and forward reopen the earlier view with the session's state.
Nothing from the address bar is trusted: each value is parsed against the
same bounds as its widget, and a bad one is ignored with a note that names it.
The run (`run=`) is the sidebar picker's, read and written by ui.picker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st

from ui.settings import DRAWN, TEST

RUN_PARAM = "run"  # the picked run, on every view
RUN = "_url_run"  # session key: the picked run's name, set by ui.picker, written with the view's parameters
SEEN = "_url_seen"  # session key: {parameter: the value last read from or written to the address bar}
_NOTES = "_url_notes"  # session key: notes on values the address bar held that were refused
SEED_MAX = 2**31 - 1
TEST_LAST = 9_999  # the last index of the 10,000 MNIST test digits


def whole(low: int, high: int) -> Callable[[str], int]:
    """A parser of whole numbers from `low` to `high`; a ValueError says which range."""
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"is not a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"is outside {low} to {high}")
        return value
    return parse


def choice(options: tuple[str, ...]) -> Callable[[str], str]:
    """A parser of one of `options`, spelled as in the URL (lower case, dashes for spaces)."""
    spelled = {option.lower().replace(" ", "-"): option for option in options}

    def parse(raw: str) -> str:
        if raw not in spelled:
            raise ValueError(f"is not one of {', '.join(spelled)}")
        return spelled[raw]
    return parse


def spell(value: object) -> str:
    """A session value as the address bar shows it."""
    return value.lower().replace(" ", "-") if isinstance(value, str) else str(value)


def indices(raw: str) -> str:
    """Test indices, comma separated (Reconstructions' "By index")."""
    parts = [p for p in raw.replace(" ", "").split(",") if p]
    if not parts or len(parts) > 16 or not all(p.isdigit() and int(p) <= TEST_LAST for p in parts):
        raise ValueError(f"is not 1 to 16 test indices from 0 to {TEST_LAST}, comma separated")
    return ", ".join(parts)


@dataclass(frozen=True)
class Param:
    key: str  # the session key it sets (a settings widget's)
    parse: Callable[[str], object]  # raw text -> value; ValueError says what is wrong
    when: Callable[[], bool] = lambda: True  # shown in the address bar only while this holds
    also: dict | None = None  # session keys to set beside it when read (e.g. "A is a test digit")


def _from_test(end: str) -> Callable[[], bool]:
    return lambda: st.session_state.get(f"pair_{end}_from") == TEST


PARAMS: dict[str, dict[str, Param]] = {
    "samples": {"n": Param("samples_n", whole(16, 400)), "seed": Param("samples_seed", whole(0, SEED_MAX))},
    "reconstructions": {
        "how": Param("rec_how", choice(("Random", "By digit", "By index"))),
        "indices": Param("rec_indices", indices, when=lambda: st.session_state.get("rec_how") == "By index"),
        "digit": Param("rec_digit", whole(0, 9), when=lambda: st.session_state.get("rec_how") == "By digit"),
        "seed": Param("rec_seed", whole(0, SEED_MAX)),
    },
    "latent_map": {
        "perplexity": Param("map_perplexity", whole(5, 100)),
        "seed": Param("map_seed", whole(0, SEED_MAX)),
        "point": Param("map_picked", whole(0, TEST_LAST), when=lambda: "map_picked" in st.session_state),
    },
    "interpolate": {
        "a": Param("pair_a", whole(0, TEST_LAST), when=_from_test("a"), also={"pair_a_from": TEST}),
        "b": Param("pair_b", whole(0, TEST_LAST), when=_from_test("b"), also={"pair_b_from": TEST}),
        "steps": Param("pair_steps", whole(8, 32)),
    },
    "traverse": {"index": Param("trav_index", whole(0, TEST_LAST))},
    "evaluate": {
        "n": Param("eval_images", whole(100, 10_000)),
        "k": Param("eval_k", whole(1, 5_000)),
        "seed": Param("eval_seed", whole(0, SEED_MAX)),
    },
}
assert DRAWN != TEST  # an end drawn by hand has no address: it is left out of the URL


def read(view: str) -> list[str]:
    """Set the session from the address bar's values for `view` the session has not met yet; notes on refused ones."""
    seen = st.session_state.setdefault(SEEN, {})
    notes = []
    for name, param in PARAMS.get(view, {}).items():
        raw = st.query_params.get(name)
        if raw is None or name in seen:  # only a session's first look: later, the bar may lag the session
            continue
        seen[name] = raw
        try:
            value = param.parse(raw)
        except ValueError as exc:
            notes.append(f"The link's {name}={raw!r} {exc}: it is ignored.")
            continue
        st.session_state[param.key] = value
        for key, fixed in (param.also or {}).items():
            st.session_state[key] = fixed
    return notes


def write(view: str) -> None:
    """Put the session's values of `view`'s parameters in the address bar (and drop those that do not apply).

    Only a change is sent, all at once: each message the browser gets adds an entry to its history, and
    Back should step over views and changed settings, not over reruns."""
    seen = st.session_state.setdefault(SEEN, {})
    wanted, stale = {}, []
    if st.session_state.get(RUN):
        wanted[RUN_PARAM] = st.session_state[RUN]
    for name, param in PARAMS.get(view, {}).items():
        if param.key in st.session_state and param.when():
            wanted[name] = seen[name] = spell(st.session_state[param.key])
        elif name in st.query_params:
            stale.append(name)
    update(wanted, stale)


def update(values: dict[str, str], drop: list[str] = ()) -> None:
    """Set `values` and remove `drop` in the address bar, in one message, and only when something changes."""
    current = st.query_params.to_dict()
    after = {**{k: v for k, v in current.items() if k not in drop}, **values}
    if after != current:
        st.query_params.from_dict(after)


def sync(view: str) -> None:
    """The address bar's new values in, then the session's values out; a refused value gets a note on the page."""
    for note in read(view):
        st.info(note, icon=":material/link:")
    write(view)

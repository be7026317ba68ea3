"""A view that fails shows what went wrong in the user's words, with the details folded away; never a traceback."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def failing_view() -> None:
    from ui.views import guarded

    def view() -> None:
        raise KeyError("latent")  # what a bug deep inside a view looks like

    guarded(view)


def failing_fragment() -> None:
    from ui.views import fragment

    def body() -> None:
        raise ValueError("a fragment's redraw failed")

    fragment(body)()


def stopping_view() -> None:
    import streamlit as st

    from ui.views import guarded

    def view() -> None:
        st.info("There is no trained model yet.")
        st.stop()

    guarded(view)
    st.write("never drawn: st.stop ends the script")


def test_a_failing_view_shows_a_message_and_no_traceback():
    at = AppTest.from_function(failing_view).run()
    assert not at.exception
    assert "This view failed while drawing." in at.error[0].value
    assert at.expander[0].label == "Details"
    assert "KeyError: 'latent'" in at.expander[0].code[0].value


def test_a_failing_fragment_shows_the_same_message():
    at = AppTest.from_function(failing_fragment).run()
    assert not at.exception
    assert "This view failed while drawing." in at.error[0].value


def test_st_stop_passes_through_the_guard():
    at = AppTest.from_function(stopping_view).run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown] == []

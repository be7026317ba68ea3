"""Streamlit glue the views share: runs and cached loaders, figures, training jobs."""

# The glue that never imports torch, beside vae_core.TORCH_FREE: what the entry script and Home import
# (the sidebar's picker, the Train form, jobs, figures) paints before torch loads.
TORCH_FREE = ("ui.figures", "ui.home", "ui.jobs", "ui.picker", "ui.settings", "ui.timeline_figures", "ui.train_form",
              "ui.urlstate", "ui.views")

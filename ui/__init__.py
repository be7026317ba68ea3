"""Streamlit glue the views share: runs and cached loaders, figures, training jobs."""

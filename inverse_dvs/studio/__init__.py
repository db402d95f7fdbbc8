"""The studio: design a camera path on the video's own point cloud, preview the warp, save it, run it.

`python -m inverse_dvs.studio [--config config.yml] [--port N]` (README → Studio). `session.Studio` is the work
without any web framework; `app` is the page (Gradio, the `studio` extra).
"""

"""The self-hosted target: Orthanc (Debian) and the OHIF build behind nginx, with per-study share links.

`apply` renders the configuration files in a target directory (`render.py`, `deploy.py`: pure functions of a
`site.Site`) and reconciles them as engine resources (`resources.py`); `up`/`down` run them locally
(`stack.py`); `share` signs links that the orthanc-python filter (`orthanc_filter.py` + `sharetoken.py`, which
provision imports too) checks on every request; `verify` proves it from outside. See docs/orthanc.md.
"""

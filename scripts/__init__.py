"""The project's commands, installed as console scripts (see pyproject.toml: s2s-train,
s2s-translate, s2s-evaluate, s2s-serve, ...); also runnable as ``python -m scripts.NAME``."""

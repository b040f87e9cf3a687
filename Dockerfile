# s2s image: the translation service (default command, s2s-serve) and training (s2s-train).
#   GPU build (PyPI's torch wheel is the CUDA build):  docker build -t s2s .
#   CPU-only build (smaller):  docker build -t s2s:cpu --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu .
# Run: docker run --gpus all -p 8000:8000 -v "$PWD/models:/models:ro" s2s
FROM python:3.11-slim

ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=https://pypi.org/simple

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN pip install --index-url "$TORCH_INDEX" "$TORCH_SPEC"
COPY pyproject.toml README.md ./
COPY s2s s2s
COPY service service
COPY scripts scripts
RUN pip install .
COPY configs configs

RUN useradd --create-home --uid 1000 s2s && mkdir -p /models /app/runs /app/data \
    && chown s2s /app/runs /app/data
USER s2s

# Service settings (service/settings.py): any field as S2S_<FIELD>.
ENV S2S_HOST=0.0.0.0 \
    S2S_PORT=8000 \
    S2S_MODELS_DIR=/models
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=3)"
STOPSIGNAL SIGTERM
CMD ["s2s-serve"]

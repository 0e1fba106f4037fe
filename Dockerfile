# CNN Lens server image. Build: docker build -t cnn-lens .   Run: docker run -p 8501:8501 cnn-lens
# Weights for the torchvision zoo: mount a prefetched folder (python -m vizlib.fetch_weights --all) at /app/checkpoints.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    CNN_LENS_CHECKPOINTS=/app/checkpoints
WORKDIR /app

# Debian's opencv-doc: OpenCV's sample photos (the photos "What a channel wants" searches) and digits.png (the
# digits lesson). The slim image tells dpkg to drop /usr/share/doc/*: let the package's 22 MB of example data
# through (not its 240 MB of HTML manual). Debian's dataset-fashion-mnist: the garments "Why convolutions" trains
# on and shifts (30 MB under /usr/share/datasets).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o 'Dpkg::Options::=--path-include=/usr/share/doc/opencv-doc/examples/data/*' opencv-doc \
        dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --create-home --uid 1000 lens && chown -R lens /app/checkpoints
USER lens

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]

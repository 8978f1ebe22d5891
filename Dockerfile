# The orders service image: the API (`orders-api`) and the projector (`projector run`,
# `rebuild-projection NAME`). Dependencies come from the same constraints file as development.
FROM python:3.13.0-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system app && useradd --system --gid app --home-dir /app --no-create-home app
WORKDIR /app

COPY pyproject.toml constraints.txt README.md ./
COPY shared ./shared
COPY write_side ./write_side
COPY read_side ./read_side
COPY projector ./projector
COPY orders_api ./orders_api
COPY embedded ./embedded
RUN pip install -c constraints.txt . && chown -R app:app /app

USER app
EXPOSE 8000 9100
CMD ["orders-api", "--host", "0.0.0.0", "--port", "8000"]

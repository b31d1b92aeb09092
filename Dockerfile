# simpost on Airflow's official image: every Airflow service of docker-compose.yaml (api-server,
# scheduler, dag-processor, triggerer, Celery workers on any host) runs this one image, so the DAG
# code, the plugins and the installed `simpost` distribution are the same everywhere. The
# connection type `storage_backend` needs the distribution installed (Airflow 3 reads connection
# types only from installed providers), not just the plugins folder.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION
# A C compiler for the results engine's native .vec reader (compiled on first use; without it the
# numpy fallback is used, slower but correct).
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data/results /data/work /data/cloud \
 && chown airflow:0 /data/work /data/cloud && chmod g+w /data/work /data/cloud

USER airflow
WORKDIR /opt/simpost
# Pinned dependencies first (a layer that changes only with requirements.txt). Airflow itself is
# pinned to the base image's version so pip never up- or downgrades it.
COPY --chown=airflow:0 requirements.txt /opt/simpost/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/simpost/requirements.txt

# The project: DAGs and plugins are read from here (see docker-compose.yaml), the packages are
# installed so the provider entry point registers the connection type.
COPY --chown=airflow:0 . /opt/simpost
RUN pip install --no-cache-dir --no-deps /opt/simpost \
 && python -c "import storage_backends, local_cloud, omnetpp_results" \
 && mkdir -p /opt/simpost/cache

# plugins/ holds Python packages, no Airflow plugin: they are put on PYTHONPATH instead of being
# the Airflow plugins folder (which would import each module top-level under its file name).
ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/simpost/dags \
    PYTHONPATH=/opt/simpost/plugins \
    OMNETPP_RESULTS_CACHE=/opt/simpost/cache \
    SIMPOST_RESULTS_ROOT=/data/results \
    SIMPOST_WORK_DIR=/data/work
WORKDIR /opt/airflow

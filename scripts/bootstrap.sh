#!/usr/bin/env bash
# Installs everything grec needs into the repository, idempotently:
#   .venv            Python environment (pinned: requirements/*.txt), grec installed editable
#   .grec/jars       Delta Lake (and, when served, GraphFrames) JARs, fetched once with Maven, and
#                    grec-jvm.jar compiled from etl/jvm
#   .grec/conf       spark-defaults.conf naming those local JARs, so Spark never resolves packages
#   .grec/env.sh     JAVA_HOME (17), SPARK_CONF_DIR, PYSPARK_PYTHON, PATH; sourced by make targets
# Each step is skipped when a stamp says its inputs have not changed.
# Not installed: Chromium (large), which only the slow Data Docs case of `make test-all` opens; that
# case skips without it (install: apt-get install -y chromium; docs/etl.md, "Data Docs").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE="$ROOT/.grec"
mkdir -p "$STATE"
log() { printf '[bootstrap] %s\n' "$*" >&2; }
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# ---- Java 17 --------------------------------------------------------------------------------
find_java17() {
  local c
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk* \
           /usr/lib/jvm/temurin-17* /usr/lib/jvm/*17*; do
    [ -n "$c" ] && [ -x "$c/bin/java" ] || continue
    if "$c/bin/java" -version 2>&1 | grep -qE 'version "17\.'; then echo "$c"; return 0; fi
  done
  return 1
}
if ! JAVA17=$(find_java17); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing OpenJDK 17 (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
    JAVA17=$(find_java17)
  else
    log "ERROR: Java 17 not found. pyspark 4.1 needs Java 17 (Java 25 breaks Parquet writes). Install it and set JAVA_HOME."
    exit 1
  fi
fi

# ---- Python environment ---------------------------------------------------------------------
PY=${GREC_PYTHON:-python3}
"$PY" -c 'import sys; assert (3,10) <= sys.version_info[:2] < (3,13), sys.version' 2>/dev/null || {
  log "ERROR: $PY must be Python 3.10-3.12 (pinned wheels); set GREC_PYTHON to one."; exit 1; }
VENV_STAMP=$(stamp_of requirements/*.txt pyproject.toml)
if [ "$(cat .venv/.grec-stamp 2>/dev/null)" != "$VENV_STAMP" ]; then
  log "creating .venv (torch, pyspark, delta-spark, great-expectations, petastorm, ...)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # uv installs the pinned wheels (about 6 GB unpacked, most of it torch's CUDA libraries) with
  # parallel downloads and hard links from its cache: about 2 minutes cold where pip took about 6
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/bootstrap.txt
  UV=".venv/bin/uv pip install --quiet --python .venv/bin/python"
  $UV "pip>=24" "setuptools>=77" wheel
  $UV -r requirements/torch.txt -r requirements/etl.txt -r requirements/petastorm-deps.txt \
      -r requirements/notebooks.txt -r requirements/lint.txt -r requirements/tracking.txt
  $UV --no-deps -r requirements/petastorm.txt
  # setuptools warns about editable installs on stderr; keep it in a log unless the step fails
  $UV --no-deps --no-build-isolation -e . 2>"$STATE/pip-editable.log" || { cat "$STATE/pip-editable.log" >&2; exit 1; }
  echo "$VENV_STAMP" > .venv/.grec-stamp
else
  log ".venv up to date"
fi
# Bytecode: uv installs none, and a Python told not to write any (PYTHONDONTWRITEBYTECODE, set on
# some machines) compiles every module it imports from source, in every process: importing
# great_expectations took 9.7 s that way and 4.1 s from bytecode. Files that do not compile under
# this Python (a few of torch's, written for newer ones) are left as they are.
if [ "$(cat .venv/.grec-bytecode 2>/dev/null)" != "$VENV_STAMP" ]; then
  log "compiling .venv's modules to bytecode (about 30 s, once)"
  .venv/bin/python -m compileall -q -j 0 .venv/lib/python*/site-packages >"$STATE/compileall.log" 2>&1 || true
  echo "$VENV_STAMP" > .venv/.grec-bytecode
fi

# ---- JARs -----------------------------------------------------------------------------------
JARS="$STATE/jars"
JAR_STAMP=$(stamp_of jars/pom.xml)
if [ "$(cat "$JARS/.grec-stamp" 2>/dev/null)" != "$JAR_STAMP" ]; then
  command -v mvn >/dev/null || {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing Maven (apt-get)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
    else log "ERROR: Maven (mvn) is needed once to fetch the Delta JARs"; exit 1; fi; }
  log "fetching Delta Lake JARs from Maven Central into $JARS"
  rm -rf "$JARS"; mkdir -p "$JARS"
  MVN="mvn -q -B -f jars/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$JARS"
  JAVA_HOME="$JAVA17" $MVN -DincludeGroupIds=io.delta,io.unitycatalog,com.fasterxml.jackson.datatype >"$STATE/mvn.log" 2>&1 || {
    cat "$STATE/mvn.log" >&2; log "ERROR: could not fetch the Delta JARs (see above)"; exit 1; }
  if JAVA_HOME="$JAVA17" $MVN -Pgraphframes -DincludeGroupIds=io.graphframes >>"$STATE/mvn.log" 2>&1; then
    log "GraphFrames JARs fetched"
  else
    log "GraphFrames JARs are not served by this registry: graph statistics use grec's DataFrame implementation"
  fi
  echo "$JAR_STAMP" > "$JARS/.grec-stamp"
else
  log "JARs up to date"
fi

# ---- grec's own JVM code (etl/jvm: Swing's per-user pair work) ----------------------------------
# Compiled against the Spark JARs pyspark ships, into the JAR folder Spark is given.
UDF_STAMP=$(stamp_of $(find etl/jvm -name '*.java' | sort) jars/pom.xml requirements/etl.txt)
if [ "$(cat "$JARS/.grec-jvm-stamp" 2>/dev/null)" != "$UDF_STAMP" ] || [ ! -f "$JARS/grec-jvm.jar" ]; then
  if [ ! -x "$JAVA17/bin/javac" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing the Java 17 compiler (apt-get openjdk-17-jdk-headless)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
  fi
  [ -x "$JAVA17/bin/javac" ] || { log "ERROR: $JAVA17 has no javac: install a Java 17 JDK (openjdk-17-jdk-headless)"; exit 1; }
  SPARK_JARS=$(.venv/bin/python -c "import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")
  log "compiling etl/jvm into $JARS/grec-jvm.jar"
  BUILD=$(mktemp -d)
  "$JAVA17/bin/javac" --release 17 -Xlint:all,-path -Werror -cp "$SPARK_JARS/*" -d "$BUILD" $(find etl/jvm -name '*.java')
  "$JAVA17/bin/jar" --create --file "$JARS/grec-jvm.jar" -C "$BUILD" .
  rm -rf "$BUILD"
  echo "$UDF_STAMP" > "$JARS/.grec-jvm-stamp"
else
  log "grec-jvm.jar up to date"
fi

# ---- Spark configuration and shell environment ----------------------------------------------
mkdir -p "$STATE/conf"
JAR_LIST=$(ls "$JARS"/*.jar | paste -sd, -)
cat > "$STATE/conf/spark-defaults.conf" <<CONF
# generated by scripts/bootstrap.sh: local JARs only, Spark resolves nothing at start-up
spark.jars                       $JAR_LIST
spark.sql.extensions             io.delta.sql.DeltaSparkSessionExtension
spark.sql.catalog.spark_catalog  org.apache.spark.sql.delta.catalog.DeltaCatalog
spark.pyspark.python             $ROOT/.venv/bin/python
spark.pyspark.driver.python      $ROOT/.venv/bin/python
CONF
cp scripts/log4j2.properties "$STATE/conf/log4j2.properties"
cat > "$STATE/env.sh" <<ENV
# generated by scripts/bootstrap.sh; source it to use spark-submit and grec from this checkout
export JAVA_HOME="$JAVA17"
export SPARK_CONF_DIR="$STATE/conf"
export GREC_JARS_DIR="$JARS"
export PYSPARK_PYTHON="$ROOT/.venv/bin/python"
export PYSPARK_DRIVER_PYTHON="$ROOT/.venv/bin/python"
export PATH="$ROOT/.venv/bin:\$PATH"
ENV
log "ready: source .grec/env.sh (make targets do) — $(ls "$JARS"/*.jar | wc -l) JARs, Java $JAVA17"

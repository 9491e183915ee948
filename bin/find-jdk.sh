# Sourced by ./mvnw and ./predcode: sets JAVA_HOME to a JDK >= 22 (the FFM API is final from 22;
# the build targets 25). Looks at $JAVA_HOME, then `java` on PATH, then /usr/lib/jvm/*.
predcode_java_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}
predcode_find_jdk() {
  local need=${PREDCODE_MIN_JDK:-25} candidate major
  for candidate in "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")" /usr/lib/jvm/* /opt/java/* /opt/jdk*; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] && [ -x "$candidate/bin/javac" ] || continue
    major=$(predcode_java_major "$candidate")
    if [ -n "$major" ] && [ "$major" -ge "$need" ]; then
      export JAVA_HOME="$candidate"
      return 0
    fi
  done
  echo "predcode: no JDK >= $need found (looked at \$JAVA_HOME, java on PATH, /usr/lib/jvm/*). Install one, e.g. 'apt-get install temurin-25-jdk' or from https://adoptium.net, and set JAVA_HOME." >&2
  return 1
}

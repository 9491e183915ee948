# Sourced by the bench scripts (from the repository root): finds a JDK >= 25, builds the bench module
# and what it needs, and sets $cp to its class path.
. bin/find-jdk.sh
predcode_find_jdk || exit 1
./mvnw -q -B -DskipTests -pl bench -am install
cp="bench/target/classes:$(cat bench/target/classpath.txt)"

# Sourced by bench/spark.sh and bench/spark-soak.sh: builds the CLI with its jars (Spark's among
# them) and defines spark_java, a JVM on their class path with the flags Spark needs on Java 25.
. bin/find-jdk.sh
predcode_find_jdk
./mvnw -q -B -DskipTests -pl modules/predcode-cli -am install
spark_cp="modules/predcode-cli/target/predcode-cli.jar:$(ls modules/predcode-cli/target/lib/*.jar | tr '\n' ':')"
spark_java() {
  "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -cp "$spark_cp" \
    -Dlog4j2.configurationFile=modules/predcode-cli/src/main/resources/log4j2.properties "$@"
}

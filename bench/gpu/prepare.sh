#!/usr/bin/env bash
# Run HERE (not on the GPU machine): builds everything the GPU check needs into .device/ (git-ignored,
# ~48 MB): a jlinked Java runtime (java.xml included: JUnit writes XML reports), the CLI and its jars,
# the test classes, JUnit's console launcher at the project's JUnit version, and the golden cases.
# The device then needs no network. Run there (see bench/gpu/check.sh; bench/gpu/peer.sh after it times the same steps
# in the machine's PyTorch), keeping what comes back to a few files (the device tool returns 8):
#   tar xzf .device/jre.tgz -C /tmp && export JAVA=/tmp/jre/bin/java && D=$OUT && export OUT=/tmp/kit &&
#   bash bench/gpu/check.sh > $D/gpu-check.log 2>&1; bash bench/gpu/peer.sh > $D/peer.log 2>&1; tar czf $D/kit.tgz -C /tmp kit
# Try the whole kit here first, on the host simulator of CUDA:
#   PREDCODE_CUDA_DRIVER=$PWD/modules/predcode-cuda/target/cudasim/libpredcode-cudasim.so JAVA=/tmp/predcode-jre/bin/java bash bench/gpu/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. bin/find-jdk.sh
predcode_find_jdk || exit 1
./mvnw -q -B -DskipTests install
rm -rf .device && mkdir -p .device/lib .device/test .device/golden
# The CLI and its dependencies but Spark's (about 215 MB the check never loads; the device tool carries 64 MiB in all):
# the jars of the CLI's dependency tree outside predcode-spark's subtree.
cp modules/predcode-cli/target/predcode-cli.jar .device/lib/
./mvnw -q -B dependency:tree -pl modules/predcode-cli -DoutputFile="$PWD/.device/tree.txt" >/dev/null
awk '/^[+\\]- / { spark = ($0 ~ /:predcode-spark:/) }
     !spark && /:(compile|runtime)$/ {
       line = $0; sub(/^[|+\\ -]*/, "", line); n = split(line, f, ":")
       if (n == 5) print f[2] "-" f[4] ".jar"; else if (n == 6) print f[2] "-" f[5] "-" f[4] ".jar"
     }' .device/tree.txt | while read -r jar; do cp "modules/predcode-cli/target/lib/$jar" .device/lib/; done
rm .device/tree.txt
# The check does not draw charts: leave out XChart's PDF and SVG libraries.
rm -f .device/lib/pdfbox-*.jar .device/lib/fontbox-*.jar .device/lib/VectorGraphics2D-*.jar .device/lib/JUnit* 2>/dev/null || true
# OpenBLAS's natives jar holds JNI wrappers of its whole API (48 MB unpacked) besides the library itself; predcode calls
# the library through FFM and loads only the small no-LAPACK wrapper. Without them the kit fits the tool's 64 MiB.
zip -q -d .device/lib/openblas-*-linux-x86_64.jar '*/libjniopenblas_full.so' '*/libjniopenblas.so' 'org/bytedeco/openblas/linux-x86_64/include/*'
for m in spi cpu cuda core; do
  (cd "modules/predcode-$m/target/test-classes" && "$JAVA_HOME/bin/jar" cf "../../../../.device/test/predcode-$m-tests.jar" .)
done
junit=$(./mvnw -q -B help:evaluate -Dexpression=junit.version -DforceStdout)
./mvnw -q -B dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$junit" -DoutputDirectory=.device/test -Dmdep.stripVersion=true
cp modules/predcode-core/src/test/resources/golden/*.json .device/golden/
# Of the drawn cases (all 70 run in CI, on the simulator), the ten deep STRICT ones: the tests' time limit holds them.
cp modules/predcode-core/src/test/resources/golden/generated/*s11_*.json .device/golden/
[ -n "${PREDCODE_GOLDEN_DIR:-}" ] && cp "$PREDCODE_GOLDEN_DIR"/*.json .device/golden/ || true
rm -rf /tmp/predcode-jre
"$JAVA_HOME/bin/jlink" --add-modules java.base,jdk.unsupported,java.management,jdk.management,java.logging,java.xml \
  --strip-debug --no-header-files --no-man-pages --compress=zip-9 --output /tmp/predcode-jre
tar czf .device/jre.tgz -C /tmp --transform 's,^predcode-jre,jre,' predcode-jre
du -sh .device

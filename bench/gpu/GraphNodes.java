// Counts the nodes of the CUDA graph one training step replays, those on its longest chain of dependencies, and the
// host's submissions in a step (kernels, copies, GEMMs issued outside a graph, and graph launches) and its waits for the device
// (what a GPU runs one after another; -Dpredcode.cuda.branches=serial for a step without branches on streams), on the host simulator:
//   ./mvnw -q -DskipTests install && java --enable-native-access=ALL-UNNAMED [-Dpredcode.cuda.branches=serial] \
//     -Dpredcode.cuda.driver=modules/predcode-cuda/target/cudasim/libpredcode-cudasim.so [-Dbatch=8] [-Dmodels=example-cnn,mlp] [-Dalgs=STRICT] \
//     [-Dn=5] [-Dloss=mse] [-Dbelief=sgd:0.1] [-Denergy=sample] [-Dcondense=NEVER] [-Dguard=false (the energy not checked: Trainer.guardEnergy(false); train and the library's default check it)] [-Dchain=true (names the longest chain's nodes)] \
//     -cp "modules/predcode-cli/target/predcode-cli.jar:modules/predcode-cli/target/lib/*" bench/gpu/GraphNodes.java
import io.predcode.core.nn.*; import io.predcode.core.pc.*; import io.predcode.core.optim.*; import io.predcode.spi.*;
import java.lang.foreign.*; import java.nio.file.Path;
public class GraphNodes { public static void main(String[] a) throws Throwable {
  var lib = SymbolLookup.libraryLookup(Path.of(System.getProperty("predcode.cuda.driver")), Arena.global());
  var nodes = Linker.nativeLinker().downcallHandle(lib.find("cusimLastGraphNodes").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_LONG));
  var depth = Linker.nativeLinker().downcallHandle(lib.find("cusimLastGraphDepth").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_LONG));
  var submissions = Linker.nativeLinker().downcallHandle(lib.find("cusimSubmissions").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_LONG));
  var waits = Linker.nativeLinker().downcallHandle(lib.find("cusimSynchronizations").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_LONG));
  var chain = Linker.nativeLinker().downcallHandle(lib.find("cusimLastGraphChain").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS));
  for (String model : System.getProperty("models", "example-cnn,mlp,digits-mlp").split(",")) for (Algorithm alg : Algorithm.values()) { if (!java.util.List.of(System.getProperty("algs", "STRICT,FIXED_PRED,EXACT,BACKPROP").split(",")).contains(alg.name())) continue;
    try (Backend be = Backends.open("cuda"); Model m = Model.create(BuiltinModels.resolve(model), be, 0); PcEngine e = new PcEngine(m, Loss.parse(System.getProperty("loss", "cross-entropy")))) {
      e.condense(PcEngine.Condense.valueOf(System.getProperty("condense", "AUTO")));
      if (alg.standard()) e.beliefOptimizer(BeliefOptimizer.parse(System.getProperty("belief", "sgd"))).energy(Energy.parse(System.getProperty("energy", "sample")));
      int batch = Integer.getInteger("batch", 8), n = !alg.relaxes() ? 1 : Integer.getInteger("n", alg == Algorithm.STRICT ? 20 : alg == Algorithm.FIXED_PRED ? m.depth() : 5);
      Trainer t = new Trainer(e, new Adam(m, 0.001f), alg, 0.1f, n).guardEnergy(!"false".equals(System.getProperty("guard")));
      float[] x = new float[batch * e.inputSize()], y = new float[batch * e.targetSize()];
      for (int s = 0; s < 3; s++) t.step(x, y, batch);
      long before = (long) submissions.invokeExact(), waited = (long) waits.invokeExact();
      t.step(x, y, batch);
      long submitted = (long) submissions.invokeExact() - before;
      waited = (long) waits.invokeExact() - waited;
      System.out.printf("%-12s %-10s n=%-3d blocks=%d graph nodes per step: %d, on the longest chain: %d; host submissions per step: %d, waits: %d%n", model, alg, n, m.depth(), (long) nodes.invokeExact(), (long) depth.invokeExact(), submitted, waited);
      if (Boolean.getBoolean("chain")) System.out.println("  longest chain: " + ((MemorySegment) chain.invokeExact()).reinterpret(1 << 16).getString(0));
    }
  }
}}

// Steps with branches run at once against the same steps with every branch in order (ops split across
// the threads as usual), alternated step by step in one process so that a noisy machine slows both alike:
//   ./mvnw -q -DskipTests install && java --enable-native-access=ALL-UNNAMED [-Dthreads=2] [-Dsteps=300] \
//     [-Dmodels=bench/models/pcx-mlp-gelu.json] [-Dalgs=PC,BACKPROP] [-Dbatch=128] [-Dn=5] [-Deta=0.026] \
//     [-Dloss=mse] [-Dbelief=sgd:0.1] [-Denergy=sample] \
//     -cp "modules/predcode-cli/target/predcode-cli.jar:modules/predcode-cli/target/lib/*" bench/branches/BranchesAB.java
// Prints per configuration the median step of each and their ratio; bench/results/branches-2026-12-01.md has the usual set's commands.
import io.predcode.core.nn.*; import io.predcode.core.pc.*; import io.predcode.core.optim.*; import io.predcode.spi.*;
import java.util.*;
public class BranchesAB {
  static Backend open(String order, int threads) {
    System.setProperty("predcode.cpu.branches", order); // read once, when the backend opens
    try { return Backends.open("cpu", new BackendOptions(threads, 0)); } finally { System.clearProperty("predcode.cpu.branches"); }
  }
  public static void main(String[] a) throws Exception {
    int threads = Integer.getInteger("threads", 2), steps = Integer.getInteger("steps", 300), batch = Integer.getInteger("batch", 128);
    float eta = Float.parseFloat(System.getProperty("eta", "0.026070879231635192"));
    try (Backend together = open("together", threads); Backend serial = open("serial", threads)) {
      for (String model : System.getProperty("models", "bench/models/pcx-mlp-gelu.json").split(","))
        for (String alg : System.getProperty("algs", "PC,BACKPROP").split(",")) {
          Algorithm algorithm = Algorithm.parse(alg.toLowerCase(Locale.ROOT));
          int n = Integer.getInteger("n", 5);
          List<Trainer> ts = new ArrayList<>(); List<AutoCloseable> close = new ArrayList<>();
          float[] x = null, y = null;
          for (Backend be : new Backend[]{together, serial}) {
            Model m = Model.create(BuiltinModels.resolve(model), be, 0);
            PcEngine e = new PcEngine(m, Loss.parse(System.getProperty("loss", "mse")));
            if (algorithm.standard()) e.beliefOptimizer(BeliefOptimizer.parse(System.getProperty("belief", "sgd:0.1"))).energy(Energy.parse(System.getProperty("energy", "sample")));
            ts.add(new Trainer(e, new Adam(m, 1e-4f), algorithm, eta, n));
            close.add(e); close.add(m);
            if (x == null) {
              java.util.Random r = new java.util.Random(1);
              x = new float[batch * e.inputSize()]; y = new float[batch * e.targetSize()];
              for (int i = 0; i < x.length; i++) x[i] = r.nextFloat();
              int classes = m.activationShape(m.depth())[0];
              for (int i = 0; i < batch; i++) { int c = r.nextInt(classes); if (e.targetSize() == 1) y[i] = c; else y[i * classes + c] = 1f; }
            }
          }
          double[][] ms = new double[2][steps];
          long warm = System.nanoTime() + 3_000_000_000L;
          while (System.nanoTime() < warm) for (Trainer t : ts) t.step(x, y, batch);
          for (int s = 0; s < steps; s++)
            for (int k = 0; k < 2; k++) { int i = (s + k) % 2; long t0 = System.nanoTime(); ts.get(i).step(x, y, batch); ms[i][s] = (System.nanoTime() - t0) / 1e6; }
          double tg = median(ms[0]), se = median(ms[1]);
          System.out.printf("%-34s %-9s batch %4d, %d threads: branches at once %.3f ms, in order %.3f ms: %.2fx%n", model, alg, batch, threads, tg, se, se / tg);
          for (AutoCloseable c : close) c.close();
        }
    }
  }
  static double median(double[] v) { double[] c = v.clone(); Arrays.sort(c); return c[c.length / 2]; }
}
